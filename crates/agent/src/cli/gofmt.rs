//! The Go `fmt` renderings that HashiCorp's CLI output contains: `%q` (`strconv.Quote`) and `%#v`
//! of a stream record as Go's msgpack decoder types it (`serf monitor`'s "Event Info" lines).

use serf::api::wire::msgpack::Decoder;
use serf::api::wire::DecodeResult;

/// `strconv.Quote`: double quotes, Go escapes, invalid UTF-8 bytes as `\xNN`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                ' ' => out.push(' '),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                // Go's `unicode.IsPrint`, approximated: no control, space or format characters.
                c if c.is_control() || c.is_whitespace() || is_format(c) => {
                    if (c as u32) < 0x10000 {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        out.push_str(&format!("\\U{:08x}", c as u32));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// The common invisible formatting characters (Unicode category Cf).
fn is_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// A msgpack value typed as go-msgpack's `decodeNaked` types it for an `interface{}` (with
/// `RawToString`): positive fixints become `int64`, `uint8…uint64` markers `uint64`, str
/// `string`, bin `[]byte`, nested maps `map[interface{}]interface{}`.
#[derive(Debug, Clone, PartialEq)]
enum Naked {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(Vec<u8>),
    Bytes(Vec<u8>),
    Array(Vec<Naked>),
    Map(Vec<(Naked, Naked)>),
}

fn naked(dec: &mut Decoder<'_>) -> DecodeResult<Naked> {
    let marker = dec.peek()?;
    Ok(match marker {
        0xc0 => {
            dec.try_nil();
            Naked::Nil
        }
        0xc2 | 0xc3 => Naked::Bool(dec.bool()?),
        0xca | 0xcb => Naked::Float(dec.float()?),
        0xa0..=0xbf | 0xd9..=0xdb => Naked::Str(dec.bytes()?.to_vec()),
        0xc4..=0xc6 => Naked::Bytes(dec.bytes()?.to_vec()),
        0x80..=0x8f | 0xde | 0xdf => dec.nested(|d| {
            let n = d.map_len()?;
            let mut entries = Vec::new();
            for _ in 0..n {
                entries.push((naked(d)?, naked(d)?));
            }
            Ok(Naked::Map(entries))
        })?,
        0x90..=0x9f | 0xdc | 0xdd => dec.nested(|d| {
            let n = d.array_len()?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(naked(d)?);
            }
            Ok(Naked::Array(items))
        })?,
        0xcc..=0xcf => Naked::Uint(dec.int()?.as_i128() as u64),
        _ => Naked::Int(dec.int()?.as_i128() as i64),
    })
}

/// The `\t<key>: <%#v of value>` lines Go's monitor prints for one event record (a map), in key
/// order (Go's map iteration order is random, so no order is more faithful than another).
pub fn event_lines(record: &[u8]) -> DecodeResult<Vec<String>> {
    let Naked::Map(mut entries) = naked(&mut Decoder::new(record))? else {
        return Ok(Vec::new());
    };
    entries.sort_by_key(|(k, _)| key_text(k));
    Ok(entries
        .iter()
        .map(|(k, v)| format!("\t{}: {}", key_text(k), sharp_v(v, true)))
        .collect())
}

/// A top-level key as `%s` prints a string.
fn key_text(key: &Naked) -> String {
    match key {
        Naked::Str(s) | Naked::Bytes(s) => String::from_utf8_lossy(s).into_owned(),
        other => sharp_v(other, true),
    }
}

/// `%#v`. At the top level Go sees the concrete value; nested inside a slice or map it sees an
/// `interface{}` element, which changes how nil and byte slices are named.
fn sharp_v(v: &Naked, top: bool) -> String {
    match v {
        Naked::Nil if top => "<nil>".to_string(),
        Naked::Nil => "interface {}(nil)".to_string(),
        Naked::Bool(b) => b.to_string(),
        Naked::Int(n) => n.to_string(),
        Naked::Uint(n) => format!("{n:#x}"),
        Naked::Float(f) => f.to_string(),
        Naked::Str(s) => quote(s),
        Naked::Bytes(b) => {
            let items: Vec<String> = b.iter().map(|x| format!("{x:#x}")).collect();
            let name = if top { "[]byte" } else { "[]uint8" };
            format!("{name}{{{}}}", items.join(", "))
        }
        Naked::Array(items) => {
            let items: Vec<String> = items.iter().map(|x| sharp_v(x, false)).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Naked::Map(entries) => {
            let mut entries: Vec<(String, String)> = entries
                .iter()
                .map(|(k, v)| (sharp_v(k, false), sharp_v(v, false)))
                .collect();
            entries.sort();
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            format!(
                "map[interface {{}}]interface {{}}{{{}}}",
                entries.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_strconv() {
        assert_eq!(quote(b"nosuch"), "\"nosuch\"");
        assert_eq!(
            quote(b"a\"b\\c\n\x01\x7f\xff\xc3\xa9 \xe2\x80\x8b"),
            "\"a\\\"b\\\\c\\n\\x01\\x7f\\xffé \\u200b\""
        );
    }

    #[test]
    fn member_events_print_as_go_monitor_does() {
        // {"Event": "member-update", "Members": [{"Addr": bin 127.0.0.1, "DelegateCur": 5,
        //  "Port": uint16 17946, "Tags": {"a": "b"}}]} as the Go agent encodes it.
        let mut rec = vec![0x82, 0xa5];
        rec.extend(b"Event");
        rec.push(0xad);
        rec.extend(b"member-update");
        rec.push(0xa7);
        rec.extend(b"Members");
        rec.extend([0x91, 0x84, 0xa4]);
        rec.extend(b"Addr");
        rec.extend([0xc4, 4, 127, 0, 0, 1, 0xab]);
        rec.extend(b"DelegateCur");
        rec.extend([0x05, 0xa4]);
        rec.extend(b"Port");
        rec.extend([0xcd, 0x46, 0x1a, 0xa4]);
        rec.extend(b"Tags");
        rec.extend([0x81, 0xa1, b'a', 0xa1, b'b']);
        assert_eq!(
            event_lines(&rec).unwrap(),
            [
                "\tEvent: \"member-update\"",
                "\tMembers: []interface {}{map[interface {}]interface {}{\"Addr\":[]uint8{0x7f, 0x0, \
                 0x0, 0x1}, \"DelegateCur\":5, \"Port\":0x461a, \"Tags\":map[interface {}]interface \
                 {}{\"a\":\"b\"}}}"
            ]
        );
    }

    #[test]
    fn user_events_print_payload_bytes_and_nil() {
        let mut rec = vec![0x83, 0xa8];
        rec.extend(b"Coalesce");
        rec.extend([0xc3, 0xa7]);
        rec.extend(b"Payload");
        rec.extend([0xc4, 2, b'h', b'i', 0xa5]);
        rec.extend(b"LTime");
        rec.push(0xc0);
        assert_eq!(
            event_lines(&rec).unwrap(),
            [
                "\tCoalesce: true",
                "\tLTime: <nil>",
                "\tPayload: []byte{0x68, 0x69}"
            ]
        );
    }
}
