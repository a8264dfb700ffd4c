//! Go's `encoding/json` error texts for the files HashiCorp's agent reads with it: the tags
//! file, the keyring file and the config files. The agent prints the decoder's error as it
//! is (`Failed to decode tags file: invalid character 'v' looking for beginning of value`), so
//! the syntax is checked here by a port of Go's scanner, and values of the wrong type are
//! reported as Go's `UnmarshalTypeError`.

use std::collections::BTreeMap;

/// Go's limit on nesting.
const MAX_DEPTH: usize = 10_000;

/// What a document is decoded into, as the Go type HashiCorp's agent declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `map[string]string` (the tags file).
    StringMap,
    /// `[]string` (the keyring file).
    StringList,
}

/// A decoded document of a [`Target`] type.
pub trait Decoded: Sized {
    fn from_value(value: serde_json::Value) -> Self;
}

impl Decoded for BTreeMap<String, String> {
    fn from_value(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }
}

impl Decoded for Vec<String> {
    fn from_value(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `json.Unmarshal(data, &v)` for `v` of the `target` type: Go's syntax errors first (the
/// whole input is checked before decoding), then the first value of the wrong type. As in Go,
/// `null` leaves a value at its zero value.
pub fn unmarshal<T: Decoded>(data: &[u8], target: Target) -> Result<T, String> {
    check_valid(data)?;
    let value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("json: {e}"))?;
    let wrong = |kind: &str, go_type: &str| {
        format!("json: cannot unmarshal {kind} into Go value of type {go_type}")
    };
    match (target, &value) {
        (_, serde_json::Value::Null) => {}
        (Target::StringMap, serde_json::Value::Object(map)) => {
            // Go decodes members in document order; serde_json's map is sorted, so find the
            // first offender by position in the input.
            let first = map
                .iter()
                .filter(|(_, v)| !v.is_string() && !v.is_null())
                .min_by_key(|(k, _)| key_position(data, k));
            if let Some((_, v)) = first {
                return Err(wrong(kind(v), "string"));
            }
        }
        (Target::StringMap, other) => return Err(wrong(kind(other), "map[string]string")),
        (Target::StringList, serde_json::Value::Array(items)) => {
            if let Some(v) = items.iter().find(|v| !v.is_string() && !v.is_null()) {
                return Err(wrong(kind(v), "string"));
            }
        }
        (Target::StringList, other) => return Err(wrong(kind(other), "[]string")),
    }
    Ok(T::from_value(value))
}

/// Where `"key"` first appears in the document (a key's position, for ordering errors).
fn key_position(data: &[u8], key: &str) -> usize {
    let needle = serde_json::to_string(key).unwrap_or_default();
    let text = String::from_utf8_lossy(data);
    text.find(&needle).unwrap_or(usize::MAX)
}

/// Go's name for a JSON value's kind in `UnmarshalTypeError`.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The type of a field of a Go struct that HashiCorp's config reader (mapstructure, not
/// weakly typed, unused keys an error) fills from decoded JSON.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    Str,
    Int,
    Bool,
    StrList,
    StrMap,
    /// A nested struct: its Go type name and fields.
    Struct(&'static str, &'static [(&'static str, Field)]),
}

/// mapstructure's decoding of a JSON document into a Go struct, for its error texts and its
/// leniency: keys match case-insensitively, numbers fill integers (truncated), `null` leaves a
/// field alone. Returns the document with the struct's own key names, integers as integers
/// and nulls dropped, ready for a strict decoder; or mapstructure's error.
pub fn map_struct(
    value: serde_json::Value,
    go_type: &str,
    fields: &[(&str, Field)],
) -> Result<serde_json::Value, String> {
    if value.is_null() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let mut errors = Vec::new();
    let out = struct_from(&value, "", go_type, fields, &mut errors);
    match out {
        Err(e) => Err(e),
        Ok(_) if !errors.is_empty() => Err(format!(
            "decoding failed due to the following error(s):\n\n{}",
            errors.join("\n")
        )),
        Ok(v) => Ok(v),
    }
}

/// Go's `reflect.TypeOf` name for a value `encoding/json` decoded into `interface{}`.
fn go_type_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "<nil>",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "float64",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "[]interface {}",
        serde_json::Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `reflect.Kind` name for such a value.
fn go_kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "invalid",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "float64",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "slice",
        serde_json::Value::Object(_) => "map",
    }
}

/// A struct from a map: `Err` for input that is not a map (mapstructure's unwrapped error);
/// field errors are appended to `errors`, in field order, unused keys last.
fn struct_from(
    value: &serde_json::Value,
    name: &str,
    go_type: &str,
    fields: &[(&str, Field)],
    errors: &mut Vec<String>,
) -> Result<serde_json::Value, String> {
    let serde_json::Value::Object(map) = value else {
        return Err(format!(
            "'{name}' expected a map or struct, got \"{}\"",
            go_kind_of(value)
        ));
    };
    let mut unused: Vec<&String> = map.keys().collect();
    let mut out = serde_json::Map::new();
    for (field, kind) in fields {
        let key = if map.contains_key(*field) {
            map.get_key_value(*field).map(|(k, _)| k)
        } else {
            map.keys()
                .find(|k| k.to_lowercase() == field.to_lowercase())
        };
        let Some(key) = key else { continue };
        unused.retain(|k| *k != key);
        let v = &map[key];
        if v.is_null() {
            continue;
        }
        let path = if name.is_empty() {
            field.to_string()
        } else {
            format!("{name}.{field}")
        };
        if let Some(decoded) = field_from(v, &path, *kind, errors) {
            out.insert(field.to_string(), decoded);
        }
    }
    if !unused.is_empty() {
        let mut keys: Vec<&str> = unused.iter().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        let shown = if name.is_empty() { go_type } else { name };
        errors.push(format!("'{shown}' has invalid keys: {}", keys.join(", ")));
    }
    Ok(serde_json::Value::Object(out))
}

/// One field's value, or `None` after recording why it does not fit.
fn field_from(
    v: &serde_json::Value,
    path: &str,
    kind: Field,
    errors: &mut Vec<String>,
) -> Option<serde_json::Value> {
    let unconvertible = |errors: &mut Vec<String>, want: &str, v: &serde_json::Value| {
        errors.push(format!(
            "'{path}' expected type '{want}', got unconvertible type '{}'",
            go_type_of(v)
        ));
        None
    };
    match kind {
        Field::Str => match v {
            serde_json::Value::String(_) => Some(v.clone()),
            _ => unconvertible(errors, "string", v),
        },
        Field::Bool => match v {
            serde_json::Value::Bool(_) => Some(v.clone()),
            _ => unconvertible(errors, "bool", v),
        },
        Field::Int => match v.as_f64() {
            Some(f) => Some(serde_json::Value::from(f.trunc() as i64)),
            None => unconvertible(errors, "int", v),
        },
        Field::StrList => {
            let serde_json::Value::Array(items) = v else {
                errors.push(format!(
                    "'{path}' source data must be an array or slice, got {}",
                    go_kind_of(v)
                ));
                return None;
            };
            let mut list = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match item {
                    serde_json::Value::String(_) => list.push(item.clone()),
                    serde_json::Value::Null => list.push(serde_json::Value::from("")),
                    other => {
                        ok = false;
                        errors.push(format!(
                            "'{path}[{i}]' expected type 'string', got unconvertible type '{}'",
                            go_type_of(other)
                        ));
                    }
                }
            }
            ok.then_some(serde_json::Value::Array(list))
        }
        Field::StrMap => {
            let serde_json::Value::Object(map) = v else {
                return unconvertible(errors, "map[string]string", v);
            };
            let mut ok = true;
            for (k, item) in map {
                if !item.is_string() && !item.is_null() {
                    ok = false;
                    errors.push(format!(
                        "'{path}[{k}]' expected type 'string', got unconvertible type '{}'",
                        go_type_of(item)
                    ));
                }
            }
            let cleaned: serde_json::Map<String, serde_json::Value> = map
                .iter()
                .map(|(k, item)| {
                    let text = item.as_str().unwrap_or_default();
                    (k.clone(), serde_json::Value::from(text))
                })
                .collect();
            ok.then_some(serde_json::Value::Object(cleaned))
        }
        Field::Struct(go_type, fields) => match struct_from(v, path, go_type, fields, errors) {
            Ok(decoded) => Some(decoded),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    }
}

/// Go's `checkValid`: the whole input must be one JSON value, surrounded by white space only.
pub fn check_valid(data: &[u8]) -> Result<(), String> {
    let mut s = Scanner::new();
    for &c in data {
        s.step(c)?;
    }
    s.eof()
}

/// Go's `json.NewDecoder(r).Decode(&v)` syntax check, as HashiCorp's config reader uses it:
/// only the first value counts (what follows it is not read), an empty input is `EOF` and a
/// cut-off one `unexpected EOF`.
pub fn check_first_value(data: &[u8]) -> Result<(), String> {
    let mut s = Scanner::new();
    let mut started = false;
    for &c in data {
        if !started && is_space(c) {
            continue;
        }
        started = true;
        s.step(c)?;
        if s.end_top {
            return Ok(());
        }
        // A value that needs no delimiter ends with its last byte.
        if s.stack.is_empty() && s.state == State::EndValue {
            return Ok(());
        }
    }
    if !started {
        return Err("EOF".into());
    }
    // A top-level number is complete at the end of the input.
    if s.stack.is_empty()
        && matches!(
            s.state,
            State::Number1 | State::Number0 | State::Dot0 | State::Exp0
        )
    {
        return Ok(());
    }
    Err("unexpected EOF".into())
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    BeginValue,
    BeginValueOrEmpty,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    /// Inside `\u`, with this many hex digits read.
    InStringEscU(u8),
    Neg,
    Number1,
    Number0,
    Dot,
    Dot0,
    Exp,
    ExpSign,
    Exp0,
    /// Inside a literal (`true`, `false`, `null`), this many bytes in.
    Literal(&'static [u8], usize),
}

/// A port of Go's `encoding/json` scanner, for its error texts.
struct Scanner {
    state: State,
    stack: Vec<Parse>,
    end_top: bool,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            state: State::BeginValue,
            stack: Vec::new(),
            end_top: false,
        }
    }

    fn error(c: u8, context: &str) -> Result<(), String> {
        Err(format!("invalid character {} {context}", quote_char(c)))
    }

    fn push(&mut self, p: Parse) -> Result<(), String> {
        self.stack.push(p);
        if self.stack.len() > MAX_DEPTH {
            return Err("exceeded max depth".into());
        }
        Ok(())
    }

    fn eof(&mut self) -> Result<(), String> {
        if self.end_top {
            return Ok(());
        }
        self.step(b' ')?;
        if self.end_top {
            return Ok(());
        }
        Err("unexpected end of JSON input".into())
    }

    fn step(&mut self, c: u8) -> Result<(), String> {
        match self.state {
            State::BeginValueOrEmpty => {
                if is_space(c) {
                    return Ok(());
                }
                if c == b']' {
                    return self.end_value(c);
                }
                self.begin_value(c)
            }
            State::BeginValue => self.begin_value(c),
            State::BeginStringOrEmpty => {
                if is_space(c) {
                    return Ok(());
                }
                if c == b'}' {
                    if let Some(top) = self.stack.last_mut() {
                        *top = Parse::ObjectValue;
                    }
                    return self.end_value(c);
                }
                self.begin_string(c)
            }
            State::BeginString => self.begin_string(c),
            State::EndValue => self.end_value(c),
            State::EndTop => {
                if !is_space(c) {
                    return Self::error(c, "after top-level value");
                }
                Ok(())
            }
            State::InString => {
                match c {
                    b'"' => self.state = State::EndValue,
                    b'\\' => self.state = State::InStringEsc,
                    c if c < 0x20 => return Self::error(c, "in string literal"),
                    _ => {}
                }
                Ok(())
            }
            State::InStringEsc => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {
                    self.state = State::InString;
                    Ok(())
                }
                b'u' => {
                    self.state = State::InStringEscU(0);
                    Ok(())
                }
                _ => Self::error(c, "in string escape code"),
            },
            State::InStringEscU(n) => {
                if !c.is_ascii_hexdigit() {
                    return Self::error(c, "in \\u hexadecimal character escape");
                }
                self.state = if n == 3 {
                    State::InString
                } else {
                    State::InStringEscU(n + 1)
                };
                Ok(())
            }
            State::Neg => match c {
                b'0' => {
                    self.state = State::Number0;
                    Ok(())
                }
                b'1'..=b'9' => {
                    self.state = State::Number1;
                    Ok(())
                }
                _ => Self::error(c, "in numeric literal"),
            },
            State::Number1 => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                self.number0(c)
            }
            State::Number0 => self.number0(c),
            State::Dot => {
                if c.is_ascii_digit() {
                    self.state = State::Dot0;
                    return Ok(());
                }
                Self::error(c, "after decimal point in numeric literal")
            }
            State::Dot0 => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                if c == b'e' || c == b'E' {
                    self.state = State::Exp;
                    return Ok(());
                }
                self.end_value(c)
            }
            State::Exp => {
                if c == b'+' || c == b'-' {
                    self.state = State::ExpSign;
                    return Ok(());
                }
                self.exp_sign(c)
            }
            State::ExpSign => self.exp_sign(c),
            State::Exp0 => {
                if c.is_ascii_digit() {
                    return Ok(());
                }
                self.end_value(c)
            }
            State::Literal(word, at) => {
                if c != word[at] {
                    let name = String::from_utf8_lossy(word);
                    return Self::error(
                        c,
                        &format!("in literal {name} (expecting {})", quote_char(word[at])),
                    );
                }
                self.state = if at + 1 == word.len() {
                    State::EndValue
                } else {
                    State::Literal(word, at + 1)
                };
                Ok(())
            }
        }
    }

    fn begin_value(&mut self, c: u8) -> Result<(), String> {
        if is_space(c) {
            return Ok(());
        }
        self.state = match c {
            b'{' => {
                self.state = State::BeginStringOrEmpty;
                return self.push(Parse::ObjectKey);
            }
            b'[' => {
                self.state = State::BeginValueOrEmpty;
                return self.push(Parse::ArrayValue);
            }
            b'"' => State::InString,
            b'-' => State::Neg,
            b'0' => State::Number0,
            b't' => State::Literal(b"true", 1),
            b'f' => State::Literal(b"false", 1),
            b'n' => State::Literal(b"null", 1),
            b'1'..=b'9' => State::Number1,
            _ => return Self::error(c, "looking for beginning of value"),
        };
        Ok(())
    }

    fn begin_string(&mut self, c: u8) -> Result<(), String> {
        if is_space(c) {
            return Ok(());
        }
        if c == b'"' {
            self.state = State::InString;
            return Ok(());
        }
        Self::error(c, "looking for beginning of object key string")
    }

    fn number0(&mut self, c: u8) -> Result<(), String> {
        match c {
            b'.' => {
                self.state = State::Dot;
                Ok(())
            }
            b'e' | b'E' => {
                self.state = State::Exp;
                Ok(())
            }
            _ => self.end_value(c),
        }
    }

    fn exp_sign(&mut self, c: u8) -> Result<(), String> {
        if c.is_ascii_digit() {
            self.state = State::Exp0;
            return Ok(());
        }
        Self::error(c, "in exponent of numeric literal")
    }

    fn end_value(&mut self, c: u8) -> Result<(), String> {
        let Some(&top) = self.stack.last() else {
            self.state = State::EndTop;
            self.end_top = true;
            return self.step(c);
        };
        if is_space(c) {
            self.state = State::EndValue;
            return Ok(());
        }
        match top {
            Parse::ObjectKey => {
                if c == b':' {
                    *self.stack.last_mut().expect("non-empty") = Parse::ObjectValue;
                    self.state = State::BeginValue;
                    return Ok(());
                }
                Self::error(c, "after object key")
            }
            Parse::ObjectValue | Parse::ArrayValue => {
                let in_object = matches!(top, Parse::ObjectValue);
                let (close, context) = if in_object {
                    (b'}', "after object key:value pair")
                } else {
                    (b']', "after array element")
                };
                if c == close {
                    self.pop();
                } else if c != b',' {
                    return Self::error(c, context);
                } else if in_object {
                    *self.stack.last_mut().expect("non-empty") = Parse::ObjectKey;
                    self.state = State::BeginString;
                } else {
                    self.state = State::BeginValue;
                }
                Ok(())
            }
        }
    }

    fn pop(&mut self) {
        self.stack.pop();
        if self.stack.is_empty() {
            self.end_top = true;
            self.state = State::EndTop;
        } else {
            self.state = State::EndValue;
        }
    }
}

/// Go's `quoteChar`: the byte in single quotes, escaped as Go quotes strings.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        _ => {
            let ch = char::from(c);
            let inner = match ch {
                '\u{7}' => r"\a".to_string(),
                '\u{8}' => r"\b".to_string(),
                '\u{c}' => r"\f".to_string(),
                '\n' => r"\n".to_string(),
                '\r' => r"\r".to_string(),
                '\t' => r"\t".to_string(),
                '\u{b}' => r"\v".to_string(),
                '\\' => r"\\".to_string(),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02x}", c as u32),
                c if (0x80..0xa0).contains(&(c as u32)) => format!("\\u{:04x}", c as u32),
                c if c as u32 == 0xad => r"\u00ad".to_string(),
                c => c.to_string(),
            };
            format!("'{inner}'")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        check_valid(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn syntax_errors_read_as_gos() {
        for (text, error) in [
            (
                "vm\n",
                "invalid character 'v' looking for beginning of value",
            ),
            ("", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            (
                "{1",
                "invalid character '1' looking for beginning of object key string",
            ),
            ("{\"a\" 1", "invalid character '1' after object key"),
            (
                "{\"a\":1 2",
                "invalid character '2' after object key:value pair",
            ),
            ("[1 2", "invalid character '2' after array element"),
            ("{} x", "invalid character 'x' after top-level value"),
            ("\"a\nb\"", "invalid character '\\n' in string literal"),
            ("\"\\x\"", "invalid character 'x' in string escape code"),
            (
                "\"\\u12g4\"",
                "invalid character 'g' in \\u hexadecimal character escape",
            ),
            ("-x", "invalid character 'x' in numeric literal"),
            (
                "1.x",
                "invalid character 'x' after decimal point in numeric literal",
            ),
            (
                "1ex",
                "invalid character 'x' in exponent of numeric literal",
            ),
            // At the end, Go feeds the scanner a space: a cut-off literal fails on it.
            (
                "tru",
                "invalid character ' ' in literal true (expecting 'e')",
            ),
            (
                "1.",
                "invalid character ' ' after decimal point in numeric literal",
            ),
            (
                "trux",
                "invalid character 'x' in literal true (expecting 'e')",
            ),
            (
                "nul1",
                "invalid character '1' in literal null (expecting 'l')",
            ),
            (
                "'a'",
                "invalid character '\\'' looking for beginning of value",
            ),
            (
                "[,]",
                "invalid character ',' looking for beginning of value",
            ),
            ("01", "invalid character '1' after top-level value"),
        ] {
            assert_eq!(err(text), error, "{text:?}");
        }
        for ok in [
            "{}",
            " [ ] ",
            "{\"a\":[1,-2.5e+3,true,false,null,\"\\u00e9\"]}",
            "0",
        ] {
            assert_eq!(check_valid(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_decoder_reads_only_the_first_value() {
        assert_eq!(check_first_value(b"{} x"), Ok(()));
        assert_eq!(check_first_value(b"  "), Err("EOF".into()));
        assert_eq!(check_first_value(b"{\"a\":"), Err("unexpected EOF".into()));
        assert_eq!(check_first_value(b"12"), Ok(()));
        assert_eq!(
            check_first_value(b"{\"a\" 1}"),
            Err("invalid character '1' after object key".into())
        );
    }

    #[test]
    fn values_of_the_wrong_type_read_as_gos() {
        let tags = |t: &str| unmarshal::<BTreeMap<String, String>>(t.as_bytes(), Target::StringMap);
        let keys = |t: &str| unmarshal::<Vec<String>>(t.as_bytes(), Target::StringList);
        assert_eq!(
            tags("[1]").unwrap_err(),
            "json: cannot unmarshal array into Go value of type map[string]string"
        );
        assert_eq!(tags("{\"a\":\"b\",\"c\":null}").unwrap()["a"], "b");
        assert_eq!(
            tags("{\"a\":\"b\",\"c\":true}").unwrap_err(),
            "json: cannot unmarshal bool into Go value of type string"
        );
        assert_eq!(tags("null").unwrap().len(), 0);
        assert_eq!(
            keys("{}").unwrap_err(),
            "json: cannot unmarshal object into Go value of type []string"
        );
        assert_eq!(
            keys("[\"a\",1]").unwrap_err(),
            "json: cannot unmarshal number into Go value of type string"
        );
        assert_eq!(keys("[\"a\"]").unwrap(), ["a"]);
    }
}
