//! Build secrets: `berth build --secret id=ID[,src=PATH|,env=VAR]` parsed
//! as buildx does, and read when a `RUN --mount=type=secret` needs them.
//! A secret's bytes never reach a layer, the image config, its history or
//! a cache key, and [`SecretSource`]'s `Debug` never prints them.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use crate::{Error, Result};

/// BuildKit's limit on one secret (`MaxSecretSize`, 500 KiB).
pub const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// Where a build secret's bytes come from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, read when a step mounts the secret.
    File(PathBuf),
    /// The bytes themselves (an environment variable's value).
    Value(Vec<u8>),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSource::Value(_) => f.write_str("Value(***)"),
        }
    }
}

impl SecretSource {
    /// The secret's bytes (at most [`MAX_SECRET_BYTES`]).
    pub(crate) fn read(&self, id: &str) -> Result<Vec<u8>> {
        match self {
            SecretSource::Value(v) => Ok(v.clone()),
            SecretSource::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
                let mut bytes = Vec::new();
                file.take(MAX_SECRET_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(path.display(), e))?;
                if bytes.len() as u64 > MAX_SECRET_BYTES {
                    return Err(too_big(id));
                }
                Ok(bytes)
            }
        }
    }
}

fn too_big(id: &str) -> Error {
    Error::Invalid(format!("secret {id} too big. max size 500KB"))
}

/// Parses one `--secret` value: `id=ID` with `src=PATH` (or `source=`),
/// `env=VAR`, and `type=file|env`. Without a source, the variable named
/// `ID` is used when `env` has it, else the file `ID` (buildx's rule). A
/// file must exist now; a variable that is unset makes the secret
/// missing (`None`), which a mount without `required` skips.
pub fn parse_secret_flag(
    value: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<(String, Option<SecretSource>)> {
    let mut kind = None;
    let mut id = String::new();
    let mut src = String::new();
    let mut var = String::new();
    for field in value.split(',').filter(|f| !f.is_empty()) {
        let Some((key, val)) = field.split_once('=') else {
            return Err(Error::Invalid(format!(
                "invalid field '{field}' must be a key=value pair"
            )));
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => match val {
                "file" | "env" => kind = Some(val.to_string()),
                other => {
                    return Err(Error::Invalid(format!(
                        "unsupported secret type \"{other}\""
                    )))
                }
            },
            "id" => id = val.to_string(),
            "source" | "src" => src = val.to_string(),
            "env" => var = val.to_string(),
            other => {
                return Err(Error::Invalid(format!(
                    "unexpected key '{other}' in '{field}'"
                )))
            }
        }
    }
    if kind.as_deref() == Some("env") && var.is_empty() {
        var = std::mem::take(&mut src);
    }
    if id.is_empty() {
        return Err(Error::Invalid(format!(
            "invalid secret {value:?}: an id is required (id=ID[,src=PATH|,env=VAR])"
        )));
    }
    if src.is_empty() && var.is_empty() {
        if env(&id).is_some() {
            var = id.clone();
        } else {
            src = id.clone();
        }
    }
    if !var.is_empty() {
        let found = env(&var).map(|v| {
            use std::os::unix::ffi::OsStringExt;
            SecretSource::Value(v.into_vec())
        });
        if let Some(SecretSource::Value(v)) = &found {
            if v.len() as u64 > MAX_SECRET_BYTES {
                return Err(too_big(&id));
            }
        }
        return Ok((id, found));
    }
    let path = std::path::absolute(&src).map_err(|e| Error::io(&src, e))?;
    let meta = std::fs::metadata(&path)
        .map_err(|e| Error::Invalid(format!("failed to stat {src}: stat {src}: {e}")))?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(too_big(&id));
    }
    Ok((id, Some(SecretSource::File(path))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn secret_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "s3cr3t").unwrap();
        let flag = format!("id=tok,src={}", file.display());
        let (id, src) = parse_secret_flag(&flag, no_env).unwrap();
        assert_eq!(id, "tok");
        assert_eq!(src, Some(SecretSource::File(file.clone())));
        assert_eq!(src.unwrap().read("tok").unwrap(), b"s3cr3t");

        let env = |k: &str| (k == "TOKEN").then(|| OsString::from("from-env"));
        let (_, src) = parse_secret_flag("id=a,env=TOKEN", env).unwrap();
        assert_eq!(src, Some(SecretSource::Value(b"from-env".to_vec())));
        // `type=env` reads the variable named by src.
        let (_, src) = parse_secret_flag("id=a,type=env,src=TOKEN", env).unwrap();
        assert_eq!(src, Some(SecretSource::Value(b"from-env".to_vec())));
        // No source: the variable named like the ID, else a file.
        let (_, src) = parse_secret_flag("id=TOKEN", env).unwrap();
        assert_eq!(src, Some(SecretSource::Value(b"from-env".to_vec())));
        let e = parse_secret_flag("id=nope-no-such-file", env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to stat nope-no-such-file"),
            "{e}"
        );
        // A named variable that is unset: missing, not an error.
        assert_eq!(parse_secret_flag("id=a,env=UNSET", env).unwrap().1, None);

        assert!(parse_secret_flag("src=x", no_env).is_err());
        assert!(parse_secret_flag("id=a,type=ssh", no_env).is_err());
        assert!(parse_secret_flag("id=a,bogus=1", no_env).is_err());
        assert_eq!(
            format!("{:?}", SecretSource::Value(b"hunter2".to_vec())),
            "Value(***)"
        );
    }

    #[test]
    fn oversized_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        let e = parse_secret_flag(&format!("id=big,src={}", file.display()), no_env).unwrap_err();
        assert!(e.to_string().contains("too big"), "{e}");
    }
}
