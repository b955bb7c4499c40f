//! JSON-RPC 2.0 validation rules (docs/wire-format.md 1, "Validation"), independent of how the decoded
//! value is represented: the binding implements [`JsonNode`] for Python objects, the tests for
//! `jiter::JsonValue`.

/// The JSON type of a decoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Array,
    Object,
    /// Not a JSON value at all (only reachable from caller-built Python objects).
    Other,
}

/// A view of a decoded JSON value: just enough to check the rules.
pub trait JsonNode: Sized {
    /// The value's JSON type.
    fn kind(&self) -> JsonKind;
    /// An object member, `None` when absent (or when `self` is not an object).
    fn member(&self, key: &str) -> Option<Self>;
    /// True when the value is the string `s`.
    fn is_str(&self, s: &str) -> bool;
}

/// The four shapes of a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    Response,
    Error,
}

impl MessageKind {
    /// The Python-facing name returned by `rpcwire.kind`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Notification => "notification",
            Self::Response => "response",
            Self::Error => "error",
        }
    }
}

/// True for an id a response can carry: string, integer or null (booleans and floats are not ids).
#[must_use]
pub fn is_valid_id(kind: JsonKind) -> bool {
    matches!(kind, JsonKind::Str | JsonKind::Int | JsonKind::Null)
}

/// Check one message (not a batch) and say which kind it is; `Err` names the broken rule.
pub fn classify<N: JsonNode>(msg: &N) -> Result<MessageKind, &'static str> {
    if msg.kind() != JsonKind::Object {
        return Err(match msg.kind() {
            JsonKind::Array => "a batch element must be an object, not an array",
            _ => "a message must be a JSON object",
        });
    }
    match msg.member("jsonrpc") {
        Some(v) if v.is_str("2.0") => {}
        Some(_) => return Err("\"jsonrpc\" must be the string \"2.0\""),
        None => return Err("missing \"jsonrpc\": \"2.0\""),
    }
    let id = msg.member("id").map(|v| v.kind());
    if let Some(id) = id {
        if !is_valid_id(id) {
            return Err("\"id\" must be a string, an integer or null");
        }
    }
    if let Some(method) = msg.member("method") {
        if method.kind() != JsonKind::Str {
            return Err("\"method\" must be a string");
        }
        if let Some(params) = msg.member("params") {
            if !matches!(params.kind(), JsonKind::Object | JsonKind::Array) {
                return Err("\"params\" must be an object or an array");
            }
        }
        return Ok(if id.is_some() {
            MessageKind::Request
        } else {
            MessageKind::Notification
        });
    }
    if id.is_none() {
        return Err("a message without \"method\" must have an \"id\"");
    }
    match (msg.member("result"), msg.member("error")) {
        (Some(_), None) => Ok(MessageKind::Response),
        (None, Some(error)) => {
            if error.kind() != JsonKind::Object {
                return Err("\"error\" must be an object");
            }
            if error.member("code").map(|c| c.kind()) != Some(JsonKind::Int) {
                return Err("\"error.code\" must be an integer");
            }
            if error.member("message").map(|m| m.kind()) != Some(JsonKind::Str) {
                return Err("\"error.message\" must be a string");
            }
            Ok(MessageKind::Error)
        }
        (Some(_), Some(_)) => Err("a response must not have both \"result\" and \"error\""),
        (None, None) => Err("a response must have \"result\" or \"error\""),
    }
}

/// What a whole decoded frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopLevel {
    /// A valid message.
    Message(MessageKind),
    /// A non-empty array: check each element with [`classify`].
    Batch,
    /// Not a message; the detail says why.
    Invalid(&'static str),
}

/// Classify a decoded frame: one message, a batch, or invalid.
pub fn classify_top<N: JsonNode>(value: &N) -> TopLevel {
    match value.kind() {
        JsonKind::Object => match classify(value) {
            Ok(kind) => TopLevel::Message(kind),
            Err(detail) => TopLevel::Invalid(detail),
        },
        JsonKind::Array => TopLevel::Batch,
        _ => TopLevel::Invalid("a message must be a JSON object or a non-empty array (batch)"),
    }
}

/// The detail for an empty batch.
pub const EMPTY_BATCH: &str = "a batch must not be empty";

#[cfg(test)]
mod tests {
    use super::*;
    use jiter::JsonValue;

    impl JsonNode for &JsonValue<'_> {
        fn kind(&self) -> JsonKind {
            match self {
                JsonValue::Null => JsonKind::Null,
                JsonValue::Bool(_) => JsonKind::Bool,
                JsonValue::Int(_) | JsonValue::BigInt(_) => JsonKind::Int,
                JsonValue::Float(_) => JsonKind::Float,
                JsonValue::Str(_) => JsonKind::Str,
                JsonValue::Array(_) => JsonKind::Array,
                JsonValue::Object(_) => JsonKind::Object,
            }
        }

        fn member(&self, key: &str) -> Option<Self> {
            match self {
                JsonValue::Object(obj) => obj.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        fn is_str(&self, s: &str) -> bool {
            matches!(self, JsonValue::Str(v) if v == s)
        }
    }

    fn top(json: &str) -> Result<String, String> {
        let value = JsonValue::parse(json.as_bytes(), false).map_err(|e| format!("json: {e}"))?;
        match classify_top(&&value) {
            TopLevel::Message(kind) => Ok(kind.name().to_string()),
            TopLevel::Batch => {
                let JsonValue::Array(items) = &value else {
                    return Err("not an array".into());
                };
                if items.is_empty() {
                    return Err(EMPTY_BATCH.into());
                }
                let kinds: Vec<String> = items
                    .iter()
                    .map(|v| match classify(&v) {
                        Ok(k) => k.name().to_string(),
                        Err(_) => "invalid".to_string(),
                    })
                    .collect();
                Ok(format!("batch[{}]", kinds.join(",")))
            }
            TopLevel::Invalid(detail) => Err(detail.to_string()),
        }
    }

    macro_rules! rule_tests {
        (ok { $($name:ident => $json:expr, $kind:expr;)* } err { $($ename:ident => $ejson:expr, $needle:expr;)* }) => {
            $(
                #[test]
                fn $name() {
                    assert_eq!(top($json), Ok($kind.to_string()));
                }
            )*
            $(
                #[test]
                fn $ename() {
                    match top($ejson) {
                        Err(detail) => assert!(detail.contains($needle), "{detail:?} lacks {:?}", $needle),
                        Ok(kind) => panic!("{} was accepted as {kind}", $ejson),
                    }
                }
            )*
        };
    }

    rule_tests! {
        ok {
        request_int_id => r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, "request";
        request_str_id => r#"{"jsonrpc":"2.0","id":"a","method":"ping","params":{}}"#, "request";
        request_null_id => r#"{"jsonrpc":"2.0","id":null,"method":"ping","params":[1]}"#, "request";
        request_big_id => r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"x"}"#, "request";
        request_extra_members_kept => r#"{"jsonrpc":"2.0","id":1,"method":"x","_meta":{}}"#, "request";
        notification => r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, "notification";
        response => r#"{"jsonrpc":"2.0","id":1,"result":null}"#, "response";
        response_null_id => r#"{"jsonrpc":"2.0","id":null,"result":{}}"#, "response";
        error => r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#, "error";
        error_with_data => r#"{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m","data":[1]}}"#, "error";
        batch_mixed => r#"[{"jsonrpc":"2.0","method":"a"},1,{"jsonrpc":"2.0","id":1,"result":2}]"#,
            "batch[notification,invalid,response]";
        batch_nested => r#"[[{"jsonrpc":"2.0","method":"a"}]]"#, "batch[invalid]";
        whitespace => " { \"jsonrpc\" : \"2.0\" , \"method\" : \"a\" } ", "notification";
        }
        err {
        missing_jsonrpc => r#"{"id":1,"method":"x"}"#, "missing \"jsonrpc\"";
        wrong_version => r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "\"2.0\"";
        version_number => r#"{"jsonrpc":2.0,"id":1,"method":"x"}"#, "\"2.0\"";
        bool_id => r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#, "\"id\"";
        float_id => r#"{"jsonrpc":"2.0","id":1.0,"method":"x"}"#, "\"id\"";
        object_id => r#"{"jsonrpc":"2.0","id":{},"result":1}"#, "\"id\"";
        method_not_str => r#"{"jsonrpc":"2.0","id":1,"method":1}"#, "\"method\"";
        params_scalar => r#"{"jsonrpc":"2.0","id":1,"method":"x","params":1}"#, "\"params\"";
        params_null => r#"{"jsonrpc":"2.0","method":"x","params":null}"#, "\"params\"";
        response_no_id => r#"{"jsonrpc":"2.0","result":1}"#, "\"id\"";
        result_and_error => r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#, "both";
        neither => r#"{"jsonrpc":"2.0","id":1}"#, "\"result\" or \"error\"";
        error_not_object => r#"{"jsonrpc":"2.0","id":1,"error":"bad"}"#, "\"error\" must";
        error_code_float => r#"{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}}"#, "code";
        error_code_missing => r#"{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}"#, "code";
        error_message_missing => r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#, "message";
        scalar => "1", "object";
        string => r#""x""#, "object";
        empty_batch => "[]", "empty";
        }
    }

    #[test]
    fn ids_that_can_be_answered() {
        assert!(is_valid_id(JsonKind::Str));
        assert!(is_valid_id(JsonKind::Int));
        assert!(is_valid_id(JsonKind::Null));
        assert!(!is_valid_id(JsonKind::Bool));
        assert!(!is_valid_id(JsonKind::Float));
        assert!(!is_valid_id(JsonKind::Object));
    }
}
