//! Reading ignore files and choosing which one applies to a build.

use crate::clean::clean_path;
use crate::error::IgnoreError;
use crate::matcher::matches_legacy;
use std::io;
use std::path::Path;

/// Name of the context-wide ignore file.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// Dockerfile name used when none is given.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// Go's `bufio.Scanner` gives up on lines of this many bytes or more.
const MAX_LINE: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads ignore-file contents into patterns (upstream `ignorefile.ReadAll`).
///
/// Lines are split on `\n` with one trailing `\r` dropped. Then, per line:
///
/// * a UTF-8 byte-order mark is dropped from the first line;
/// * a line whose *first character* is `#` is a comment;
/// * surrounding whitespace is trimmed and empty lines are skipped;
/// * after a leading `!`, whitespace is trimmed again;
/// * the path is cleaned (see [`clean_path`]) and one leading `/` removed, so
///   `/foo` and `foo` are the same;
/// * the `!` is put back.
///
/// A lone `!` is kept; [`PatternMatcher::new`](crate::PatternMatcher::new)
/// rejects it. Bytes that are not valid UTF-8 are replaced with U+FFFD.
///
/// # Errors
///
/// [`IgnoreError::LineTooLong`] when a line is 64 KiB or longer, as Docker
/// refuses such files.
pub fn read_patterns(bytes: &[u8]) -> Result<Vec<String>, IgnoreError> {
    let mut patterns = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.len() >= MAX_LINE {
            return Err(IgnoreError::LineTooLong { line: index + 1 });
        }
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        if index == 0 {
            line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
        }
        let text = String::from_utf8_lossy(line);
        if text.starts_with('#') {
            continue;
        }
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (invert, body) = match text.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        let mut pattern = String::with_capacity(body.len() + 1);
        if invert {
            pattern.push('!');
        }
        if !body.is_empty() {
            let cleaned = clean_path(body);
            let relative = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest,
                _ => cleaned.as_ref(),
            };
            pattern.push_str(relative);
        }
        patterns.push(pattern);
    }
    Ok(patterns)
}

fn dockerfile_or_default(dockerfile_rel: &str) -> &str {
    if dockerfile_rel.is_empty() {
        DEFAULT_DOCKERFILE
    } else {
        dockerfile_rel
    }
}

/// The ignore files that may apply to a build, most specific first, as paths
/// relative to the context directory (no I/O).
///
/// BuildKit first looks for `<Dockerfile path>.dockerignore` beside the
/// Dockerfile (for `build/app.Dockerfile` that is
/// `build/app.Dockerfile.dockerignore`) and only if there is none uses the
/// context's `.dockerignore`. The first one that exists is used on its own;
/// the files are never merged. An empty `dockerfile_rel` means `Dockerfile`.
/// The Dockerfile path is cleaned; if it is absolute or starts with `..`,
/// so is the first candidate (it still sits beside the Dockerfile).
///
/// ```
/// use berth_dockerignore::ignore_file_candidates;
/// assert_eq!(
///     ignore_file_candidates("build/app.Dockerfile"),
///     ["build/app.Dockerfile.dockerignore", ".dockerignore"],
/// );
/// ```
pub fn ignore_file_candidates(dockerfile_rel: &str) -> [String; 2] {
    let dockerfile = clean_path(dockerfile_or_default(dockerfile_rel));
    [
        format!("{dockerfile}{DOCKERIGNORE}"),
        DOCKERIGNORE.to_owned(),
    ]
}

/// An ignore file that was found and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFile {
    /// Which candidate was used, relative to the context directory.
    pub path: String,
    /// Its patterns, as returned by [`read_patterns`].
    pub patterns: Vec<String>,
}

/// Finds and reads the ignore file for a build: the first of
/// [`ignore_file_candidates`] that exists as a regular file (paths are joined
/// onto `context_dir`). Returns `Ok(None)` when there is none, which means
/// nothing is excluded.
///
/// # Errors
///
/// I/O errors other than "not found", and
/// [`IgnoreError::LineTooLong`] wrapped in an [`io::Error`] of kind
/// [`io::ErrorKind::InvalidData`].
pub fn read_ignore_file(
    context_dir: &Path,
    dockerfile_rel: &str,
) -> io::Result<Option<IgnoreFile>> {
    for candidate in ignore_file_candidates(dockerfile_rel) {
        let full = context_dir.join(&candidate);
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_file() => {
                let bytes = std::fs::read(&full)?;
                let patterns = read_patterns(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok(Some(IgnoreFile {
                    path: candidate,
                    patterns,
                }));
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The two context paths that always reach the builder even when a pattern
/// ignores them: the Dockerfile (cleaned; `Dockerfile` when empty) and
/// `.dockerignore`.
///
/// How a caller honours this: the builder reads the Dockerfile and the ignore
/// file straight from the context directory (or via
/// [`read_ignore_file`]) *before* filtering, so they are available whatever
/// the patterns say, while the filtered context that `COPY`/`ADD` see still
/// leaves them out when they are ignored (that is what BuildKit does). A
/// caller that instead ships a filtered context to another process and wants
/// the Docker CLI's behaviour can use [`trim_build_files_from_excludes`].
pub fn always_included(dockerfile_rel: &str) -> [String; 2] {
    [
        clean_path(dockerfile_or_default(dockerfile_rel)).into_owned(),
        DOCKERIGNORE.to_owned(),
    ]
}

/// The Docker CLI's `TrimBuildFilesFromExcludes`: when the patterns would
/// exclude `.dockerignore` or the Dockerfile, appends `!.dockerignore` and
/// `!<dockerfile>` so both still reach the daemon, which then drops them from
/// the final context itself. The CLI decides with the legacy matcher
/// ([`matches_legacy`]) and ignores its errors. Nothing is appended for the
/// Dockerfile when it comes from standard input.
pub fn trim_build_files_from_excludes(
    excludes: &[String],
    dockerfile: &str,
    dockerfile_from_stdin: bool,
) -> Vec<String> {
    let mut out = excludes.to_vec();
    if matches_legacy(DOCKERIGNORE, &out).unwrap_or(false) {
        out.push(format!("!{DOCKERIGNORE}"));
    }
    if matches_legacy(dockerfile, &out).unwrap_or(false) && !dockerfile_from_stdin {
        out.push(format!("!{dockerfile}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_limits() {
        let ok = "a".repeat(MAX_LINE - 1);
        assert_eq!(read_patterns(ok.as_bytes()).unwrap(), vec![ok.clone()]);
        let terminated = format!("{ok}\nb\n");
        assert_eq!(read_patterns(terminated.as_bytes()).unwrap().len(), 2);
        let long = format!("x\n{}", "a".repeat(MAX_LINE));
        assert_eq!(
            read_patterns(long.as_bytes()),
            Err(IgnoreError::LineTooLong { line: 2 })
        );
    }

    #[test]
    fn reader_rules() {
        let got =
            read_patterns(b"\xEF\xBB\xBF#c\r\n  #x \n/\n!\t/a/../b/\r\n\n\xEF\xBB\xBFz").unwrap();
        assert_eq!(got, vec!["#x", "/", "!b", "\u{FEFF}z"]);
        assert!(read_patterns(b"").unwrap().is_empty());
    }

    #[test]
    fn trim_build_files() {
        let ex = vec!["*".to_owned()];
        assert_eq!(
            trim_build_files_from_excludes(&ex, "Dockerfile", false),
            vec!["*", "!.dockerignore", "!Dockerfile"]
        );
        assert_eq!(
            trim_build_files_from_excludes(&ex, "Dockerfile", true),
            vec!["*", "!.dockerignore"]
        );
        let ex = vec!["src".to_owned()];
        assert_eq!(trim_build_files_from_excludes(&ex, "Dockerfile", false), ex);
    }
}
