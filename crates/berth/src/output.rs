//! Output helpers shared by the verbs: Docker's column layout (Go's
//! tabwriter with min width 10, padding 3), human sizes, JSON with
//! Docker's four-space indent.

/// Renders rows as aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let columns = header.len();
    let mut widths = vec![0usize; columns];
    let all = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>();
    for row in &all {
        for (i, cell) in row.iter().enumerate().take(columns) {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count() + PADDING).max(MIN_WIDTH);
            }
        }
    }
    let mut out = String::new();
    for row in &all {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(MIN_WIDTH);
                line.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g3(size), UNITS.get(unit).copied().unwrap_or("B"))
}

/// Go's `%.3g` for values in [0, 1000).
fn go_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits_before = (v.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (3 - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// JSON with Docker's four-space indent and a final newline.
pub fn json_pretty(value: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    if value.serialize(&mut ser).is_err() {
        return "null\n".into();
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push('\n');
    s
}

/// Truncates to `max` characters with an ellipsis, as `docker history`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Docker's `inspect` output for `names`: a JSON array of what `lookup`
/// finds (or one `--format` rendering per object), then the lookup errors,
/// one per line, with exit 1.
pub fn print_inspected(
    format: Option<&str>,
    names: &[String],
    mut lookup: impl FnMut(&str) -> Result<serde_json::Value, String>,
) -> Result<(), crate::exit::CliError> {
    use crate::exit::CliError;
    let template = format
        .map(crate::template::Template::parse)
        .transpose()
        .map_err(CliError::failure)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match lookup(name) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    match &template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v).map_err(CliError::failure)?);
            }
        }
        None => print!("{}", json_pretty(&serde_json::Value::Array(found))),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(errors.join("\n")))
    }
}

/// Docker's block of what a prune removed: a heading, one line each, a
/// blank line; nothing when nothing was removed.
pub fn print_deleted<T: std::fmt::Display>(heading: &str, removed: &[T]) {
    if removed.is_empty() {
        return;
    }
    println!("{heading}");
    for item in removed {
        println!("{item}");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(123), "123B");
        assert_eq!(human_size(4_261_234), "4.26MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(45_600_000), "45.6MB");
    }

    #[test]
    fn columns() {
        let t = table(&["A", "LONGER"], &[vec!["x".into(), "y".into()]]);
        assert_eq!(t, "A         LONGER\nx         y\n");
    }
}
