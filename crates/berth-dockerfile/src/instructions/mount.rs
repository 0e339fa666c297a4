//! `RUN --mount=type=…,target=…` options, as BuildKit's `instructions`
//! package parses them.

/// What a mount provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    pub from: Option<String>,
    pub read_only: bool,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    pub size: Option<u64>,
    pub env: Option<String>,
}

/// Parses one `--mount` value (comma-separated `key[=value]` fields).
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let fields: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let kind = fields.iter().find_map(|f| f.strip_prefix("type=")).map_or(
        Ok(MountType::Bind),
        |t| match t.to_ascii_lowercase().as_str() {
            "bind" => Ok(MountType::Bind),
            "cache" => Ok(MountType::Cache),
            "tmpfs" => Ok(MountType::Tmpfs),
            "secret" => Ok(MountType::Secret),
            "ssh" => Ok(MountType::Ssh),
            other => Err(format!(
                "unsupported mount type {}",
                crate::text::go_quote(other)
            )),
        },
    )?;
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        read_only: matches!(kind, MountType::Bind | MountType::Secret | MountType::Ssh),
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        let boolean = |v: Option<&str>| -> Result<bool, String> {
            match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(_) => Err(format!("invalid value for {key}: {}", v.unwrap_or(""))),
            }
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = Some(need(val)?),
            "source" | "src" => m.source = Some(need(val)?),
            "from" => m.from = Some(need(val)?),
            "readonly" | "ro" => m.read_only = boolean(val)?,
            "readwrite" | "rw" => m.read_only = !boolean(val)?,
            "id" => m.id = Some(need(val)?),
            "sharing" => {
                m.sharing = match need(val)?.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => {
                        return Err(format!(
                            "unsupported sharing value {}",
                            crate::text::go_quote(other)
                        ))
                    }
                }
            }
            "mode" => {
                let v = need(val)?;
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid value {v} for mode"))?,
                );
            }
            "uid" | "gid" => {
                let v = need(val)?;
                let n = v
                    .parse::<u32>()
                    .map_err(|_| format!("invalid value {v} for {key}"))?;
                if key == "uid" {
                    m.uid = Some(n);
                } else {
                    m.gid = Some(n);
                }
            }
            "required" => m.required = boolean(val)?,
            "size" => {
                let v = need(val)?;
                m.size = Some(parse_size(&v).ok_or_else(|| format!("invalid value {v} for size"))?);
            }
            "env" => m.env = Some(need(val)?),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    let needs_target = matches!(
        m.kind,
        MountType::Bind | MountType::Cache | MountType::Tmpfs
    );
    if needs_target && m.target.as_deref().is_none_or(str::is_empty) {
        return Err("mount target must be set".to_string());
    }
    if m.kind == MountType::Secret && m.target.is_none() && m.id.is_none() && m.env.is_none() {
        return Err("secret mount requires an id, a target or an env".to_string());
    }
    Ok(m)
}

/// `64m`, `1g`, `1024` (bytes).
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, mult) = match trimmed.chars().last()? {
        'k' => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        'm' => (&trimmed[..trimmed.len() - 1], 1 << 20),
        'g' => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert!(!m.read_only);
    }

    #[test]
    fn bad_mounts() {
        assert!(parse_mount("type=nope,target=/x").is_err());
        assert!(parse_mount("type=bind").is_err());
        assert!(parse_mount("target=/x,bogus=1")
            .unwrap_err()
            .contains("unexpected key"));
    }
}
