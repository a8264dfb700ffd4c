//! Go's duration syntax (`time.ParseDuration`): `300ms`, `1.5h`, `2h45m`, `0`. Flags such as
//! `-retry-interval` and config keys such as `reconnect_timeout` are written this way.

use std::time::Duration;

/// Parses a Go duration that must not be negative (a config file's timeouts): a negative one
/// is refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let ns = parse_signed(text)?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| format!("negative duration \"{text}\" is not allowed"))
}

/// Go's `time.ParseDuration`, word for word in its errors: nanoseconds, possibly negative,
/// within an `int64`.
pub fn parse_signed(text: &str) -> Result<i64, String> {
    const UNITS: [(&str, u64); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),
        ("\u{3bc}s", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    const LIMIT: u64 = 1 << 63;
    let invalid = || format!("time: invalid duration {}", quote(text));
    let mut s = text.as_bytes();
    let mut negative = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            negative = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Whole part: overflow is an error.
        let mut whole: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if whole > LIMIT / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(s[i] - b'0');
            if whole > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction: digits past what fits are ignored.
        let (mut fraction, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut overflow = false;
            let mut i = 0;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if fraction > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let next = fraction * 10 + u64::from(s[i] - b'0');
                        if next > LIMIT {
                            overflow = true;
                        } else {
                            fraction = next;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|c| *c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(text)));
        }
        let unit_text = String::from_utf8_lossy(&s[..unit_len]).into_owned();
        s = &s[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_text) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(&unit_text),
                quote(text)
            ));
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `time.quote`: in double quotes, `"` and `\` escaped, other bytes outside printable
/// ASCII as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        if !(' '..='\u{7f}').contains(&ch) {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
    }
    out.push('"');
    out
}

/// Formats like Go's `Duration.String()` for the common cases (`1s`, `1m30s`, `250ms`).
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}µs", trim(n as f64 / 1e3)),
            n => format!("{}ms", trim(n as f64 / 1e6)),
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac = d.subsec_nanos();
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", trim(s as f64 + frac as f64 / 1e9))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_parses() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86400)));
    }

    #[test]
    fn bad_durations_say_why() {
        for (given, error) in [
            ("5", "time: missing unit in duration \"5\""),
            ("5x", "time: unknown unit \"x\" in duration \"5x\""),
            ("1h1x", "time: unknown unit \"x\" in duration \"1h1x\""),
            ("3000000h", "time: invalid duration \"3000000h\""),
            ("\u{e9}", "time: invalid duration \"\\xc3\\xa9\""),
            ("1\"", "time: unknown unit \"\\\"\" in duration \"1\\\"\""),
        ] {
            assert_eq!(parse_signed(given).unwrap_err(), error);
        }
        for given in ["", "s", "1..2s", "-1s"] {
            assert!(parse(given).is_err(), "{given:?}");
        }
        assert_eq!(parse_signed("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(parse_signed("-0"), Ok(0));
        assert_eq!(parse_signed(".5s"), Ok(500_000_000));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(1)), "1s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
    }
}
