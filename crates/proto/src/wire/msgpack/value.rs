//! A generic msgpack value, for diagnostics, captures and test-vector comparison.

/// Any msgpack value. `Str` (raw/str family) and `Bytes` (bin family) are kept apart because the
/// distinction matters to Go's older decoders.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Looks a key up in a map value whose keys are strings.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) | Value::Bytes(s) if s == key.as_bytes()))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}
