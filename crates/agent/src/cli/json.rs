//! JSON as Go's `json.MarshalIndent(v, "", "  ")` writes it, for `-format=json`: struct fields in
//! declaration order, map keys sorted, HTML-sensitive characters escaped (`<` → `\u003c`), invalid
//! UTF-8 replaced by `\ufffd`. serde_json differs on the last two, and scripts compare outputs.

/// A JSON value; strings are bytes because Go strings need not be UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Str(Vec<u8>),
    Int(i64),
    /// Members in output order (callers sort map keys, as Go does).
    Object(Vec<(Vec<u8>, Json)>),
    Array(Vec<Json>),
}

impl Json {
    pub fn str(s: impl AsRef<[u8]>) -> Json {
        Json::Str(s.as_ref().to_vec())
    }

    /// A Go `map[string]string`: `None` is a nil map, written `null`.
    pub fn string_map<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        map: Option<impl IntoIterator<Item = (K, V)>>,
    ) -> Json {
        match map {
            None => Json::Null,
            Some(entries) => {
                let mut members: Vec<(Vec<u8>, Json)> = entries
                    .into_iter()
                    .map(|(k, v)| (k.as_ref().to_vec(), Json::str(v)))
                    .collect();
                members.sort_by(|a, b| a.0.cmp(&b.0));
                Json::Object(members)
            }
        }
    }

    /// Indented with two spaces, no trailing newline.
    pub fn to_indented(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Str(s) => write_str(out, s),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(members) if members.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    separator(out, i, depth + 1);
                    item.write(out, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    separator(out, i, depth + 1);
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }
}

fn separator(out: &mut String, index: usize, depth: usize) {
    if index > 0 {
        out.push(',');
    }
    newline(out, depth);
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Go's `encodeState.string` with HTML escaping on.
fn write_str(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        // Go replaces each byte that does not start a valid sequence.
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn layout_matches_marshal_indent() {
        let v = Json::Object(vec![
            (b"Acks".to_vec(), Json::Null),
            (b"Empty".to_vec(), Json::Array(vec![])),
            (
                b"List".to_vec(),
                Json::Array(vec![Json::str("a"), Json::Int(5)]),
            ),
            (
                b"Responses".to_vec(),
                Json::string_map(Some([("n2", "y"), ("n1", "x")])),
            ),
            (
                b"Tags".to_vec(),
                Json::string_map(Some(Vec::<(&str, &str)>::new())),
            ),
        ]);
        assert_eq!(
            v.to_indented(),
            "{\n  \"Acks\": null,\n  \"Empty\": [],\n  \"List\": [\n    \"a\",\n    5\n  ],\n  \
             \"Responses\": {\n    \"n1\": \"x\",\n    \"n2\": \"y\"\n  },\n  \"Tags\": {}\n}"
        );
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        let s = Json::str(b"a<b>&\"\\\n\x01\x7f\xe2\x80\xa8\xff\xfe\xc3\xa9");
        assert_eq!(
            s.to_indented(),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\u{7f}\\u2028\\ufffd\\ufffdé\""
        );
    }
}
