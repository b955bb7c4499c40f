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
    /// A top-level member the rules read (a node that records them by key answers without a name lookup).
    #[inline]
    fn rule_member(&self, key: RuleKey) -> Option<Self> {
        self.member(key.name())
    }
    /// A member of the `"error"` object the rules read.
    #[inline]
    fn error_member(&self, key: ErrorKey) -> Option<Self> {
        self.member(key.name())
    }
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
    match msg.rule_member(RuleKey::Jsonrpc) {
        Some(v) if v.is_str(VERSION) => {}
        Some(_) => return Err("\"jsonrpc\" must be the string \"2.0\""),
        None => return Err("missing \"jsonrpc\": \"2.0\""),
    }
    let id = msg.rule_member(RuleKey::Id).map(|v| v.kind());
    if let Some(id) = id {
        if !is_valid_id(id) {
            return Err("\"id\" must be a string, an integer or null");
        }
    }
    if let Some(method) = msg.rule_member(RuleKey::Method) {
        if method.kind() != JsonKind::Str {
            return Err("\"method\" must be a string");
        }
        if let Some(params) = msg.rule_member(RuleKey::Params) {
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
    match (msg.rule_member(RuleKey::Result), msg.rule_member(RuleKey::Error)) {
        (Some(_), None) => Ok(MessageKind::Response),
        (None, Some(error)) => {
            if error.kind() != JsonKind::Object {
                return Err("\"error\" must be an object");
            }
            if error.error_member(ErrorKey::Code).map(|c| c.kind()) != Some(JsonKind::Int) {
                return Err("\"error.code\" must be an integer");
            }
            if error.error_member(ErrorKey::Message).map(|m| m.kind()) != Some(JsonKind::Str) {
                return Err("\"error.message\" must be a string");
            }
            Ok(MessageKind::Error)
        }
        (Some(_), Some(_)) => Err("a response must not have both \"result\" and \"error\""),
        (None, None) => Err("a response must have \"result\" or \"error\""),
    }
}

/// The string the `"jsonrpc"` member must hold.
pub const VERSION: &str = "2.0";

/// A member [`classify`] reads, as seen while decoding: its kind and, for a string, whether it is [`VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub kind: JsonKind,
    pub is_version: bool,
}

impl Seen {
    /// A member that is not the string [`VERSION`].
    #[must_use]
    pub fn of(kind: JsonKind) -> Self {
        Self {
            kind,
            is_version: false,
        }
    }
}

/// The top-level members [`classify`] reads (in the order [`Recorded`] keeps them; `Error` stays last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKey {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
}

impl RuleKey {
    /// How many there are.
    pub const COUNT: usize = Self::Error as usize + 1;

    /// The rule key a member name is, if any.
    #[inline]
    #[must_use]
    pub fn of(key: &str) -> Option<Self> {
        match key {
            "jsonrpc" => Some(Self::Jsonrpc),
            "id" => Some(Self::Id),
            "method" => Some(Self::Method),
            "params" => Some(Self::Params),
            "result" => Some(Self::Result),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    /// The member name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonrpc => "jsonrpc",
            Self::Id => "id",
            Self::Method => "method",
            Self::Params => "params",
            Self::Result => "result",
            Self::Error => "error",
        }
    }
}

/// The members of an `"error"` object [`classify`] reads: the kinds of `code` and `message`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErrorMembers {
    pub code: Option<JsonKind>,
    pub message: Option<JsonKind>,
}

/// The members of an `"error"` object [`classify`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKey {
    Code,
    Message,
}

impl ErrorKey {
    /// The error-object key a member name is, if any.
    #[inline]
    #[must_use]
    pub fn of(key: &str) -> Option<Self> {
        match key {
            "code" => Some(Self::Code),
            "message" => Some(Self::Message),
            _ => None,
        }
    }

    /// The member name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Message => "message",
        }
    }
}

impl ErrorMembers {
    /// Note member `key` of an error object; a repeated key wins over earlier ones.
    #[inline]
    pub fn note(&mut self, key: ErrorKey, kind: JsonKind) {
        match key {
            ErrorKey::Code => self.code = Some(kind),
            ErrorKey::Message => self.message = Some(kind),
        }
    }
}

/// What [`classify`] needs of one object, recorded member by member while the object is decoded, so that
/// classifying it needs no lookups in the built value. A repeated key wins over earlier ones, as in the
/// decoded object. Classify it through [`Recorded::node`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Per [`RuleKey`] (its discriminant is the index), the member as seen, if present.
    members: [Option<Seen>; RuleKey::COUNT],
    /// `code` and `message` of the `"error"` member when it is an object.
    error_members: ErrorMembers,
}

impl Recorded {
    /// Note the member `key`; `error_members` is only read for [`RuleKey::Error`] with an object value.
    #[inline]
    pub fn note(&mut self, key: RuleKey, seen: Seen, error_members: ErrorMembers) {
        if key == RuleKey::Error {
            self.error_members = error_members;
        }
        self.members[key as usize] = Some(seen);
    }

    /// The recorded object as a [`JsonNode`] for [`classify`].
    #[must_use]
    pub fn node(&self) -> RecordedNode<'_> {
        RecordedNode::Object(self)
    }
}

/// A [`JsonNode`] over a [`Recorded`] object. It knows only what the rules ask: the members named by
/// [`RuleKey`] (and `error.code` / `error.message`), and of strings only whether they are [`VERSION`].
#[derive(Debug, Clone, Copy)]
pub enum RecordedNode<'a> {
    Object(&'a Recorded),
    ErrorObject(ErrorMembers),
    Value(Seen),
}

impl JsonNode for RecordedNode<'_> {
    fn kind(&self) -> JsonKind {
        match self {
            Self::Object(_) | Self::ErrorObject(_) => JsonKind::Object,
            Self::Value(seen) => seen.kind,
        }
    }

    fn member(&self, key: &str) -> Option<Self> {
        match self {
            Self::Object(_) => self.rule_member(RuleKey::of(key)?),
            Self::ErrorObject(_) => self.error_member(ErrorKey::of(key)?),
            Self::Value(_) => None,
        }
    }

    #[inline]
    fn rule_member(&self, key: RuleKey) -> Option<Self> {
        let Self::Object(rec) = self else {
            return None;
        };
        let seen = rec.members[key as usize]?;
        Some(if key == RuleKey::Error && seen.kind == JsonKind::Object {
            Self::ErrorObject(rec.error_members)
        } else {
            Self::Value(seen)
        })
    }

    #[inline]
    fn error_member(&self, key: ErrorKey) -> Option<Self> {
        let Self::ErrorObject(members) = self else {
            return None;
        };
        let kind = match key {
            ErrorKey::Code => members.code,
            ErrorKey::Message => members.message,
        }?;
        Some(Self::Value(Seen::of(kind)))
    }

    fn is_str(&self, s: &str) -> bool {
        // The rules compare one string, VERSION; the node cannot answer for any other.
        debug_assert_eq!(s, VERSION, "RecordedNode only knows whether a string is VERSION");
        matches!(self, Self::Value(seen) if seen.is_version && s == VERSION)
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
/// Default `max_batch`: most elements a received batch (and records a received multi envelope) may hold
/// (docs/security.md). Past it the whole batch is one Invalid Request item, found after building at most this
/// many elements, so a small frame cannot make a receiver build millions of error items. rpcwire's writers
/// put at most this many records in one envelope; JSON-RPC clients batch far fewer.
pub const DEFAULT_MAX_BATCH: usize = 1024;

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

    /// What a decoder records of an object, member by member in order.
    fn record(value: &JsonValue<'_>) -> Option<Recorded> {
        let JsonValue::Object(obj) = value else {
            return None;
        };
        let mut rec = Recorded::default();
        for (key, member) in obj.iter() {
            let Some(rule_key) = RuleKey::of(key) else {
                continue;
            };
            let mut error_members = ErrorMembers::default();
            if let (RuleKey::Error, JsonValue::Object(error)) = (rule_key, member) {
                for (k, v) in error.iter() {
                    if let Some(error_key) = ErrorKey::of(k) {
                        error_members.note(error_key, (&v).kind());
                    }
                }
            }
            let seen = Seen {
                kind: (&member).kind(),
                is_version: matches!(member, JsonValue::Str(v) if v == VERSION),
            };
            rec.note(rule_key, seen, error_members);
        }
        Some(rec)
    }

    /// `classify` on the recorded members says what it says on the value itself.
    fn same_when_recorded(json: &str) {
        let Ok(value) = JsonValue::parse(json.as_bytes(), false) else {
            panic!("not JSON: {json}");
        };
        let elements: Vec<&JsonValue<'_>> = match &value {
            JsonValue::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for element in elements {
            if let Some(rec) = record(element) {
                assert_eq!(classify(&rec.node()), classify(&element), "{json}");
            }
        }
    }

    #[test]
    fn recorded_repeated_keys_last_wins() {
        same_when_recorded(r#"{"jsonrpc":"1.0","jsonrpc":"2.0","id":1,"method":"x"}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"x"}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"error":{"code":1}}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1},"error":{"code":1,"message":"m"}}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","code":"x"}}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"error":3}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","id":true,"id":1,"result":1}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","method":1,"method":"a"}"#);
        same_when_recorded(r#"{"jsonrpc":"2.0","code":1,"message":"m","id":1,"result":{"jsonrpc":"1.0"}}"#);
    }

    #[test]
    fn recorded_node_kinds() {
        let mut rec = Recorded::default();
        assert_eq!(rec.node().kind(), JsonKind::Object);
        assert!(rec.node().member("jsonrpc").is_none());
        rec.note(
            RuleKey::Jsonrpc,
            Seen {
                kind: JsonKind::Str,
                is_version: true,
            },
            ErrorMembers::default(),
        );
        rec.note(
            RuleKey::Error,
            Seen::of(JsonKind::Object),
            ErrorMembers {
                code: Some(JsonKind::Int),
                message: None,
            },
        );
        assert!(rec.node().member("jsonrpc").is_some_and(|v| v.is_str(VERSION)));
        assert!(rec.node().member("other").is_none());
        let error = rec.node().member("error");
        assert_eq!(error.map(|e| e.kind()), Some(JsonKind::Object));
        assert_eq!(
            error.and_then(|e| e.member("code")).map(|c| c.kind()),
            Some(JsonKind::Int)
        );
        assert!(error.and_then(|e| e.member("message")).is_none());
        assert!(rec.node().member("error").and_then(|e| e.member("jsonrpc")).is_none());
    }

    macro_rules! rule_tests {
        (ok { $($name:ident => $json:expr, $kind:expr;)* } err { $($ename:ident => $ejson:expr, $needle:expr;)* }) => {
            $(
                #[test]
                fn $name() {
                    assert_eq!(top($json), Ok($kind.to_string()));
                    same_when_recorded($json);
                }
            )*
            $(
                #[test]
                fn $ename() {
                    same_when_recorded($ejson);
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
