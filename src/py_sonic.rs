//! The parser comparison of issue 20, kept so its figures can be reproduced (`--features sonic`, never in a
//! wheel): sonic-rs (SIMD) parses the whole text into its DOM, and [`SonicWalk`] walks that DOM behind the
//! same [`Pull`] interface the builder reads [`Scan`](rpcwire_core::pull::Scan) and jiter through.
//! Big integers beyond `u64` become floats in sonic-rs's DOM, so this build is for benchmarks, not for use.

use jiter::{JiterError, JiterErrorType, JiterResult, JsonErrorType, NumberAny, NumberInt, Peek};
use rpcwire_core::pull::Pull;
use sonic_rs::{JsonContainerTrait, JsonType, JsonValueTrait, Value};

enum Frame<'d> {
    Object(sonic_rs::value::object::Iter<'d>),
    Array(std::slice::Iter<'d, Value>),
}

/// A walk over a parsed sonic-rs document, in the order the builder reads it.
pub struct SonicWalk<'d> {
    next: Option<&'d Value>,
    stack: Vec<Frame<'d>>,
}

impl<'d> SonicWalk<'d> {
    pub fn new(root: &'d Value) -> Self {
        Self {
            next: Some(root),
            stack: Vec::new(),
        }
    }

    fn take(&mut self) -> JiterResult<&'d Value> {
        self.next.take().ok_or_else(not_here)
    }

    fn peek_of(value: &Value) -> Peek {
        match value.get_type() {
            JsonType::Null => Peek::Null,
            JsonType::Boolean if value.as_bool() == Some(true) => Peek::True,
            JsonType::Boolean => Peek::False,
            JsonType::Number => Peek::new(b'0'),
            JsonType::String => Peek::String,
            JsonType::Object => Peek::Object,
            JsonType::Array => Peek::Array,
        }
    }

    fn object_step(&mut self) -> Option<&'d str> {
        let Some(Frame::Object(members)) = self.stack.last_mut() else {
            return None;
        };
        if let Some((key, value)) = members.next() {
            self.next = Some(value);
            return Some(key);
        }
        self.stack.pop();
        None
    }

    fn array_next(&mut self) -> Option<Peek> {
        let Some(Frame::Array(items)) = self.stack.last_mut() else {
            return None;
        };
        if let Some(value) = items.next() {
            self.next = Some(value);
            return Some(Self::peek_of(value));
        }
        self.stack.pop();
        None
    }
}

fn not_here() -> JiterError {
    JiterError {
        error_type: JiterErrorType::JsonError(JsonErrorType::ExpectedSomeValue),
        index: 0,
    }
}

impl<'d> Pull<'d> for SonicWalk<'d> {
    fn peek(&mut self) -> JiterResult<Peek> {
        self.next.map(Self::peek_of).ok_or_else(not_here)
    }
    fn known_str(&mut self) -> JiterResult<&str> {
        self.take()?.as_str().ok_or_else(not_here)
    }
    fn known_object(&mut self) -> JiterResult<Option<&str>> {
        let object = self.take()?.as_object().ok_or_else(not_here)?;
        self.stack.push(Frame::Object(object.iter()));
        Ok(self.object_step())
    }
    fn next_key(&mut self) -> JiterResult<Option<&str>> {
        Ok(self.object_step())
    }
    fn known_array(&mut self) -> JiterResult<Option<Peek>> {
        let array = self.take()?.as_array().ok_or_else(not_here)?;
        self.stack.push(Frame::Array(array.iter()));
        Ok(self.array_next())
    }
    fn array_step(&mut self) -> JiterResult<Option<Peek>> {
        Ok(self.array_next())
    }
    fn known_null(&mut self) -> JiterResult<()> {
        self.take().map(|_| ())
    }
    fn known_bool(&mut self, _peek: Peek) -> JiterResult<bool> {
        self.take()?.as_bool().ok_or_else(not_here)
    }
    fn known_number(&mut self, _peek: Peek) -> JiterResult<NumberAny> {
        let value = self.take()?;
        if let Some(i) = value.as_i64() {
            return Ok(NumberAny::Int(NumberInt::Int(i)));
        }
        if let Some(u) = value.as_u64() {
            return Ok(NumberAny::Int(NumberInt::BigInt(u.into())));
        }
        value.as_f64().map(NumberAny::Float).ok_or_else(not_here)
    }
    fn finish(&mut self) -> JiterResult<()> {
        Ok(())
    }
    fn current_index(&self) -> usize {
        0
    }
}
