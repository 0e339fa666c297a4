//! Lexical path cleaning with the rules of Go's `filepath.Clean` (Unix
//! flavour), plus the matching `filepath.Dir`.

use std::borrow::Cow;

/// Returns the shortest path equivalent to `path` by purely lexical
/// processing, exactly like Go's `filepath.Clean` on Unix:
///
/// * runs of `/` collapse into one;
/// * `.` elements are removed;
/// * an inner `..` removes the element before it, and a `..` right after the
///   root is dropped (`/..` becomes `/`);
/// * a trailing `/` is removed unless the result is the root `/`;
/// * an empty result becomes `.`.
///
/// The input is borrowed back unchanged when it is already clean, so cleaning
/// a clean path does not allocate.
///
/// ```
/// use berth_dockerignore::clean_path;
/// assert_eq!(clean_path("./a//b/../c/"), "a/c");
/// assert_eq!(clean_path("/../x"), "/x");
/// assert_eq!(clean_path(""), ".");
/// ```
pub fn clean_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed(".");
    }
    let src = path.as_bytes();
    let n = src.len();
    let rooted = src.first() == Some(&b'/');
    let mut out = LazyBuf::new(src);
    let mut r = 0;
    let mut dotdot = 0;
    if rooted {
        out.append(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let c0 = src.get(r).copied();
        let c1 = src.get(r + 1).copied();
        let c2 = src.get(r + 2).copied();
        let ends_at = |c: Option<u8>| c.is_none() || c == Some(b'/');
        if c0 == Some(b'/') {
            // Empty element.
            r += 1;
        } else if c0 == Some(b'.') && ends_at(c1) {
            // `.` element.
            r += 1;
        } else if c0 == Some(b'.') && c1 == Some(b'.') && ends_at(c2) {
            // `..` element: drop the previous element if there is one.
            r += 2;
            if out.w > dotdot {
                out.w -= 1;
                while out.w > dotdot && out.index(out.w) != Some(b'/') {
                    out.w -= 1;
                }
            } else if !rooted {
                // Cannot go back further in a relative path: keep the `..`.
                if out.w > 0 {
                    out.append(b'/');
                }
                out.append(b'.');
                out.append(b'.');
                dotdot = out.w;
            }
        } else {
            // A real element: add a separator if needed, then copy it.
            if (rooted && out.w != 1) || (!rooted && out.w != 0) {
                out.append(b'/');
            }
            while let Some(&b) = src.get(r) {
                if b == b'/' {
                    break;
                }
                out.append(b);
                r += 1;
            }
        }
    }
    if out.w == 0 {
        return Cow::Borrowed(".");
    }
    out.finish(path)
}

/// Go's `filepath.Dir` on Unix: everything up to the last `/`, cleaned; `.`
/// when there is no `/`.
pub(crate) fn parent_dir(path: &str) -> Cow<'_, str> {
    match path.rfind('/') {
        Some(i) => clean_path(path.get(..=i).unwrap_or("")),
        None => Cow::Borrowed("."),
    }
}

/// Output buffer that only allocates once the output diverges from the input.
struct LazyBuf<'a> {
    src: &'a [u8],
    buf: Option<Vec<u8>>,
    w: usize,
}

impl<'a> LazyBuf<'a> {
    fn new(src: &'a [u8]) -> Self {
        LazyBuf {
            src,
            buf: None,
            w: 0,
        }
    }

    fn index(&self, i: usize) -> Option<u8> {
        match &self.buf {
            Some(b) => b.get(i).copied(),
            None => self.src.get(i).copied(),
        }
    }

    fn append(&mut self, c: u8) {
        match &mut self.buf {
            Some(b) => {
                b.truncate(self.w);
                b.push(c);
            }
            None => {
                if self.src.get(self.w) != Some(&c) {
                    let mut b = Vec::with_capacity(self.src.len());
                    b.extend_from_slice(self.src.get(..self.w).unwrap_or(&[]));
                    b.push(c);
                    self.buf = Some(b);
                }
            }
        }
        self.w += 1;
    }

    fn finish(self, path: &'a str) -> Cow<'a, str> {
        match self.buf {
            None => match path.get(..self.w) {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(String::from_utf8_lossy(self.src).into_owned()),
            },
            Some(mut b) => {
                b.truncate(self.w);
                match String::from_utf8(b) {
                    Ok(s) => Cow::Owned(s),
                    Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // Table from Go's path/filepath tests (Unix cases).
        let cases = [
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("", "."),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("!./x", "!./x"),
            ("é//ü/", "é/ü"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean({input:?})");
        }
        assert!(matches!(clean_path("a/b"), Cow::Borrowed(_)));
    }

    #[test]
    fn dir_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/.", "/"),
            ("/", "/"),
            ("////", "/"),
            ("/foo", "/"),
            ("x/", "x"),
            ("abc", "."),
            ("abc/def", "abc"),
            ("a/b/.x", "a/b"),
            ("a/b/c.", "a/b"),
            ("a/b/c.x", "a/b"),
            ("file/", "file"),
            ("dir/file/", "dir/file"),
            ("/any/path/there", "/any/path"),
        ];
        for (input, want) in cases {
            assert_eq!(parent_dir(input), want, "dir({input:?})");
        }
    }
}
