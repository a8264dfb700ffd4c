//! Command-line flags with the semantics of Go's `flag` package, which HashiCorp's `serf` binary
//! uses for every subcommand. Scripts written against that binary depend on its quirks, which
//! common Rust parsers do not share: single-dash long names (`-rpc-addr`), `-name value` and
//! `-name=value` alike, booleans that only take a value through `=`, parsing that stops at the
//! first positional argument (later `-x` are positional), and Go's exact error lines.
//!
//! ```
//! use serf_agent::flags::FlagSet;
//! let mut fs = FlagSet::new("Usage: serf members [options]");
//! let detailed = fs.bool("detailed", false);
//! let tags = fs.list("tag");
//! let rest = fs.try_parse(&["-detailed", "-tag", "a=b", "--tag=c=d", "x", "-y"]).unwrap();
//! assert!(detailed.get());
//! assert_eq!(tags.get(), ["a=b", "c=d"]);
//! assert_eq!(rest, ["x", "-y"]);
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use thiserror::Error;

use crate::duration;

/// A flag's value, readable once the set has been parsed. Cloning shares the value, which is how
/// two flags can feed one list (Go's `-config-file` and `-config-dir`).
#[derive(Debug, Clone, Default)]
pub struct Value<T>(Rc<RefCell<T>>);

impl<T: Clone> Value<T> {
    fn new(initial: T) -> Self {
        Value(Rc::new(RefCell::new(initial)))
    }

    /// The default, or the last value given on the command line (lists: every value, in order).
    pub fn get(&self) -> T {
        self.0.borrow().clone()
    }

    fn set(&self, value: T) {
        *self.0.borrow_mut() = value;
    }
}

/// Where a flag's text goes, and how it is converted.
#[derive(Debug)]
enum Slot {
    Bool(Value<bool>),
    Str(Value<String>),
    Int(Value<i64>),
    Duration(Value<i64>),
    List(Value<Vec<String>>),
}

/// Why parsing stopped. The messages are Go's, word for word: wrappers and tests match on them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlagError {
    /// `-h`, `-help` (or `--h`, `-h=…`) was given and not defined: show the usage.
    #[error("flag: help requested")]
    Help,
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid boolean value {value:?} for -{name}: parse error")]
    BadBool { name: String, value: String },
    #[error("invalid value {value:?} for flag -{name}: {reason}")]
    BadValue {
        name: String,
        value: String,
        reason: &'static str,
    },
}

/// The flags of one command, with the usage text shown when parsing fails.
#[derive(Debug)]
pub struct FlagSet {
    usage: String,
    flags: Vec<(String, Slot)>,
}

impl FlagSet {
    /// `usage` is printed (to stdout, as HashiCorp's commands do) when parsing fails.
    pub fn new(usage: impl Into<String>) -> Self {
        FlagSet {
            usage: usage.into(),
            flags: Vec::new(),
        }
    }

    fn define<T: Clone>(
        &mut self,
        name: &str,
        value: Value<T>,
        slot: fn(Value<T>) -> Slot,
    ) -> Value<T> {
        debug_assert!(self.lookup(name).is_none(), "flag -{name} defined twice");
        self.flags.push((name.to_string(), slot(value.clone())));
        value
    }

    /// A boolean: `-name` sets it, `-name=false` clears it; `-name false` does not.
    pub fn bool(&mut self, name: &str, default: bool) -> Value<bool> {
        self.define(name, Value::new(default), Slot::Bool)
    }

    pub fn string(&mut self, name: &str, default: &str) -> Value<String> {
        self.define(name, Value::new(default.to_string()), Slot::Str)
    }

    /// A Go `int`: decimal, or `0x`/`0o`/`0b`/leading-`0` prefixed, `_` between digits.
    pub fn int(&mut self, name: &str, default: i64) -> Value<i64> {
        self.define(name, Value::new(default), Slot::Int)
    }

    /// A Go duration (`300ms`, `1m30s`, `-1s`), in nanoseconds: Go's `time.Duration`, which
    /// may be negative.
    pub fn duration(&mut self, name: &str, default: i64) -> Value<i64> {
        self.define(name, Value::new(default), Slot::Duration)
    }

    /// A repeatable flag collecting every value in order (Go's `AppendSliceValue`).
    pub fn list(&mut self, name: &str) -> Value<Vec<String>> {
        self.define(name, Value::new(Vec::new()), Slot::List)
    }

    /// A repeatable flag appending to a list that another flag also feeds.
    pub fn list_into(&mut self, name: &str, shared: &Value<Vec<String>>) {
        self.define(name, shared.clone(), Slot::List);
    }

    fn lookup(&self, name: &str) -> Option<&Slot> {
        self.flags.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Parses like Go's `FlagSet.Parse` and returns the positional arguments.
    pub fn try_parse<S: AsRef<str>>(&self, args: &[S]) -> Result<Vec<String>, FlagError> {
        let mut rest = args.iter().map(|a| a.as_ref().to_string());
        while let Some(arg) = rest.next() {
            if arg.len() < 2 || !arg.starts_with('-') {
                return Ok(std::iter::once(arg).chain(rest).collect());
            }
            let name = match arg.strip_prefix("--") {
                Some("") => return Ok(rest.collect()),
                Some(name) => name,
                None => &arg[1..],
            };
            if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
                return Err(FlagError::BadSyntax(arg.clone()));
            }
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            let Some(slot) = self.lookup(name) else {
                return Err(if name == "help" || name == "h" {
                    FlagError::Help
                } else {
                    FlagError::Undefined(name.to_string())
                });
            };
            if let Slot::Bool(v) = slot {
                let text = inline.unwrap_or_else(|| "true".to_string());
                let parsed = parse_bool(&text).ok_or_else(|| FlagError::BadBool {
                    name: name.to_string(),
                    value: text.clone(),
                })?;
                v.set(parsed);
                continue;
            }
            let value = inline
                .or_else(|| rest.next())
                .ok_or_else(|| FlagError::MissingValue(name.to_string()))?;
            let bad = |reason| FlagError::BadValue {
                name: name.to_string(),
                value: value.clone(),
                reason,
            };
            match slot {
                Slot::Bool(_) => unreachable!("handled above"),
                Slot::Str(v) => v.set(value.clone()),
                Slot::Int(v) => v.set(parse_int(&value).map_err(bad)?),
                Slot::Duration(v) => {
                    v.set(duration::parse_signed(&value).map_err(|_| bad("parse error"))?)
                }
                Slot::List(v) => v.0.borrow_mut().push(value.clone()),
            }
        }
        Ok(Vec::new())
    }

    /// Parses like [`try_parse`](Self::try_parse), reporting failures as HashiCorp's commands do:
    /// the error line on stderr, then the usage on stdout (only the usage for `-h`). `None` means
    /// the command should exit with status 1.
    pub fn parse<S: AsRef<str>>(&self, args: &[S]) -> Option<Vec<String>> {
        match self.try_parse(args) {
            Ok(rest) => Some(rest),
            Err(e) => {
                if e != FlagError::Help {
                    eprintln!("{e}");
                }
                println!("{}", self.usage);
                None
            }
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)`, failing with Go's flag error reason.
fn parse_int(text: &str) -> Result<i64, &'static str> {
    const SYNTAX: &str = "parse error";
    const RANGE: &str = "value out of range";
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if lower.len() >= 3 && lower.starts_with("0x") {
        (16, &unsigned[2..])
    } else if lower.len() >= 3 && lower.starts_with("0b") {
        (2, &unsigned[2..])
    } else if lower.len() >= 3 && lower.starts_with("0o") {
        (8, &unsigned[2..])
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !underscores_ok(unsigned) {
        return Err(SYNTAX);
    }
    let mut magnitude: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or(SYNTAX)?;
        magnitude = magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
            .ok_or(RANGE)?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude).ok_or(RANGE)
    } else {
        i64::try_from(magnitude).map_err(|_| RANGE)
    }
}

/// Go's rule for `_` in base-0 literals: only between digits, where a base prefix counts as one.
fn underscores_ok(literal: &str) -> bool {
    let bytes = literal.as_bytes();
    let lower = literal.to_ascii_lowercase();
    let prefixed = bytes.len() >= 2 && ["0x", "0b", "0o"].iter().any(|p| lower.starts_with(p));
    let body = if prefixed { &bytes[2..] } else { bytes };
    let mut previous_digit = prefixed;
    for &b in body {
        if b == b'_' {
            if !previous_digit {
                return false;
            }
            previous_digit = false;
        } else {
            previous_digit = true;
        }
    }
    previous_digit || body.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> (FlagSet, Value<bool>, Value<String>, Value<i64>, Value<i64>) {
        let mut fs = FlagSet::new("usage");
        let b = fs.bool("detailed", false);
        let s = fs.string("rpc-addr", "127.0.0.1:7373");
        let i = fs.int("relay-factor", 0);
        let d = fs.duration("timeout", 0);
        (fs, b, s, i, d)
    }

    #[test]
    fn every_spelling_of_a_value_is_accepted() {
        let (fs, b, s, i, d) = set();
        let rest = fs
            .try_parse(&[
                "--rpc-addr",
                "a:1",
                "-relay-factor=0x10",
                "-detailed",
                "--timeout=1m30s",
            ])
            .unwrap();
        assert!(rest.is_empty());
        assert_eq!((b.get(), s.get(), i.get()), (true, "a:1".to_string(), 16));
        assert_eq!(d.get(), 90_000_000_000);
        fs.try_parse(&["-timeout=-1s"]).unwrap();
        assert_eq!(d.get(), -1_000_000_000);
        fs.try_parse(&["-rpc-addr=b=c", "-detailed=false"]).unwrap();
        assert_eq!((b.get(), s.get()), (false, "b=c".to_string()));
    }

    #[test]
    fn parsing_stops_at_the_first_positional_or_double_dash() {
        let (fs, b, ..) = set();
        assert_eq!(
            fs.try_parse(&["x", "-detailed"]).unwrap(),
            ["x", "-detailed"]
        );
        assert!(!b.get());
        assert_eq!(fs.try_parse(&["--", "-detailed"]).unwrap(), ["-detailed"]);
        assert_eq!(fs.try_parse(&["-", "y"]).unwrap(), ["-", "y"]);
        // A boolean does not take the next argument as its value.
        assert_eq!(fs.try_parse(&["-detailed", "false"]).unwrap(), ["false"]);
        assert!(b.get());
    }

    #[test]
    fn errors_read_as_go_prints_them() {
        let (fs, ..) = set();
        let msg = |args: &[&str]| fs.try_parse(args).unwrap_err().to_string();
        assert_eq!(msg(&["-x"]), "flag provided but not defined: -x");
        assert_eq!(msg(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(msg(&["-=x"]), "bad flag syntax: -=x");
        assert_eq!(msg(&["-rpc-addr"]), "flag needs an argument: -rpc-addr");
        assert_eq!(
            msg(&["-detailed=foo"]),
            "invalid boolean value \"foo\" for -detailed: parse error"
        );
        assert_eq!(
            msg(&["-relay-factor=x"]),
            "invalid value \"x\" for flag -relay-factor: parse error"
        );
        assert_eq!(
            msg(&["-relay-factor=99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -relay-factor: value out of range"
        );
        assert_eq!(
            msg(&["-timeout=5"]),
            "invalid value \"5\" for flag -timeout: parse error"
        );
        assert_eq!(fs.try_parse(&["-h"]), Err(FlagError::Help));
        assert_eq!(fs.try_parse(&["--help=1"]), Err(FlagError::Help));
    }

    #[test]
    fn go_integer_literals() {
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("-0b11"), Ok(-3));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("0x_1f"), Ok(31));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_int("9223372036854775808"), Err("value out of range"));
        for bad in ["", "-", "_1", "1_", "1__0", "0x", "08", "1.5"] {
            assert_eq!(parse_int(bad), Err("parse error"), "{bad}");
        }
    }

    #[test]
    fn lists_collect_in_order_and_can_be_shared() {
        let mut fs = FlagSet::new("usage");
        let files = fs.list("config-file");
        fs.list_into("config-dir", &files);
        fs.try_parse(&["-config-file=a", "-config-dir", "b", "-config-file", "c"])
            .unwrap();
        assert_eq!(files.get(), ["a", "b", "c"]);
    }
}
