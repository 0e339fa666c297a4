//! A small subset of Go's text/template, enough for Docker's `--format`:
//! `{{.Field}}`, `{{.A.B}}`, `{{json .X}}`, `{{json .}}`, `{{upper .X}}`,
//! `{{lower .X}}`, and the `table` prefix. Values render as Go prints them.

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    /// `table …`: print a header row first.
    pub table: bool,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Action {
        func: Option<String>,
        path: Vec<String>,
    },
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("template: unclosed action in {text:?}"))?;
            let action = after[..end]
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            let words: Vec<&str> = action.split_whitespace().collect();
            let (func, target) = match words.as_slice() {
                [path] => (None, *path),
                [func, path] if matches!(*func, "json" | "upper" | "lower" | "println") => {
                    (Some(func.to_string()), *path)
                }
                _ => return Err(format!("template: unsupported action {{{{{action}}}}}")),
            };
            let path = target
                .strip_prefix('.')
                .ok_or_else(|| format!("template: unsupported action {{{{{action}}}}}"))?;
            let path = path
                .split('.')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            parts.push(Part::Action { func, path });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts, table })
    }

    /// The header row of a `table` template: each field name upper-cased
    /// with Docker's column names.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action { path, .. } => {
                    out.push_str(&header_name(path.last().map_or("", String::as_str)))
                }
            }
        }
        out
    }

    /// Renders against `value`.
    pub fn render(&self, value: &Value) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action { func, path } => {
                    let mut v = value;
                    for key in path {
                        v = v
                            .get(key)
                            .ok_or_else(|| format!("template: can't evaluate field {key}"))?;
                    }
                    match func.as_deref() {
                        Some("json") => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
                        Some("upper") => out.push_str(&go_print(v).to_uppercase()),
                        Some("lower") => out.push_str(&go_print(v).to_lowercase()),
                        Some("println") => {
                            out.push_str(&go_print(v));
                            out.push('\n');
                        }
                        _ => out.push_str(&go_print(v)),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn header_name(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" | "CreatedAt" => "CREATED".into(),
        other => other.to_uppercase(),
    }
}

/// How Go's `fmt.Print` shows a decoded JSON value.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_print).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_json() {
        let v = serde_json::json!({"Id": "sha256:ab", "Config": {"Cmd": ["sh", "-c"]}});
        let t = Template::parse("{{.Id}} {{json .Config.Cmd}} {{.Config.Cmd}}").unwrap();
        assert_eq!(t.render(&v).unwrap(), "sha256:ab [\"sh\",\"-c\"] [sh -c]");
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(t.render(&serde_json::json!({})).is_err());
    }

    #[test]
    fn table_header() {
        let t = Template::parse("table {{.Repository}}\\t{{.ID}}").unwrap();
        assert!(t.table);
        assert_eq!(t.header(), "REPOSITORY\tIMAGE ID");
    }
}
