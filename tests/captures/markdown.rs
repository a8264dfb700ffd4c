//! Reading the `.md` files an independent decoder wrote next to each capture: count tables,
//! numbers in listing lines, and Go maps made comparable.

use std::collections::BTreeSet;

use crate::support::{ensure, Counts};

/// The `| `name` | count |` rows of the first table after the line starting with `intro`.
pub(crate) fn md_table(md: &str, intro: &str) -> Result<Counts, String> {
    let mut lines = md.lines().skip_while(|l| !l.starts_with(intro));
    lines.next().ok_or(format!("no table after {intro:?}"))?;
    let rows = lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    let counts: Counts = rows
        .skip(2) // header and separator
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let count = cells.get(2).and_then(|c| c.parse().ok());
            let name = cells.get(1).map(|c| c.trim_matches('`').to_string());
            name.zip(count).ok_or(format!("bad table row {row:?}"))
        })
        .collect::<Result<_, _>>()?;
    ensure_nonempty(counts, intro)
}

/// Guards against a parser that silently finds nothing (a changed `.md` must not pass vacuously).
pub(crate) fn ensure_nonempty<T>(t: T, what: &str) -> Result<T, String>
where
    for<'a> &'a T: IntoIterator,
{
    let empty = (&t).into_iter().next().is_none();
    ensure!(!empty, "nothing found for {what:?}");
    Ok(t)
}

/// The number right after `key` in `line` (`"… Nodes=2 …"`, `"… agent :7383 …"`).
pub(crate) fn num_after<T: std::str::FromStr>(line: &str, key: &str) -> Result<T, String> {
    let rest = &line[line.find(key).ok_or(format!("no {key:?} in {line:?}"))? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("no number after {key:?} in {line:?}"))
}

/// Every `start…end` substring of `text`, without the delimiters.
pub(crate) fn all_between<'a>(text: &'a str, start: &str, end: &str) -> BTreeSet<&'a str> {
    text.split(start)
        .skip(1)
        .filter_map(|s| s.split_once(end).map(|(inside, _)| inside))
        .collect()
}

/// Sorts the comma-separated items inside every `{…}`: Go writes maps in random order, and the
/// codec returns them sorted, so only the sets can be compared.
pub(crate) fn sort_braces(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((before, after)) = rest.split_once('{') {
        let (inside, tail) = after.split_once('}').unwrap_or((after, ""));
        let mut items: Vec<&str> = inside.split(',').collect();
        items.sort();
        out += &format!("{before}{{{}}}", items.join(","));
        rest = tail;
    }
    out + rest
}
