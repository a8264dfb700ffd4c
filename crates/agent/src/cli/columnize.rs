//! Column layout as `github.com/ryanuber/columnize`'s `SimpleFormat`, which HashiCorp's CLI uses
//! for `members` and `keys`: scripts parse that output, so spacing must match byte for byte.
//!
//! Each line is split on `|`, fields are trimmed, every column but a line's last is left-aligned
//! to the widest field of that column (in characters) and followed by two spaces. A line's last
//! field is not padded, so an empty last field leaves the two spaces of glue behind it.

/// Lays out `lines` in columns; the result has no trailing newline.
pub fn columnize<S: AsRef<str>>(lines: &[S]) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.as_ref().split('|').map(str::trim).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, field) in row.iter().enumerate() {
            let w = field.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, field) in row.iter().enumerate() {
            out.push_str(field);
            if i + 1 < row.len() {
                let pad = widths[i] - field.chars().count();
                out.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::columnize;

    #[test]
    fn columns_align_and_an_empty_last_field_keeps_its_glue() {
        let out = columnize(&[
            "ref-a|127.0.0.1:7946|alive|role=web",
            "ref-bb|127.0.0.1:7947|alive|",
        ]);
        assert_eq!(
            out,
            "ref-a   127.0.0.1:7946  alive  role=web\nref-bb  127.0.0.1:7947  alive  "
        );
    }

    #[test]
    fn fields_are_trimmed_and_short_lines_keep_earlier_widths() {
        assert_eq!(columnize(&["a | bb | c", "dddd|e"]), "a     bb  c\ndddd  e");
        assert_eq!(columnize::<&str>(&[]), "");
        assert_eq!(columnize(&["é|x", "ab|y"]), "é   x\nab  y");
    }
}
