//! The patterns of `${V#p}`, `${V%p}`, `${V/p/r}` and friends.
//!
//! BuildKit turns such a pattern into a Go regular expression and lets Go's
//! `regexp` package find the match. That gives these rules, reproduced here
//! without a regex engine:
//!
//! * `*` is `.*` (greedy) or `.*?` (lazy) and `?` is `.`; in Go neither
//!   matches a newline.
//! * `\*`, `\?` and `\\` are literal characters. `\}` and `\/` drop the
//!   backslash (it only protected the character from the `${...}` parser).
//!   Any other backslash escape, and a lone trailing backslash, is an error.
//! * Everything else, `[`, `]` included, is a literal character: there are no
//!   bracket expressions.
//! * A match is the *leftmost-first* one (Perl semantics, as Go's `regexp`):
//!   the program below is run by a Pike VM that keeps threads in priority
//!   order, which is what Go's own NFA does.
//! * Like Go's `text/scanner`, which reads the pattern, a U+FEFF at the very
//!   start of the pattern is skipped.

use super::unicode::{is_digit, is_letter};

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A literal character.
    Lit(char),
    /// `?`: any one character but `\n`.
    Any,
    /// `*`: any run of characters without `\n`.
    Star,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    insts: Vec<Inst>,
}

/// Pike VM instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    Char(char),
    AnyNotNl,
    /// Try `.0` first, then `.1`.
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// Why a pattern was rejected: the text after `invalid pattern (...) in
/// substitution: `.
pub(crate) type PatternError = String;

impl Pattern {
    /// Compiles a pattern; `greedy` picks `.*` over `.*?` for every `*`.
    pub(crate) fn compile(pattern: &str, greedy: bool) -> Result<Self, PatternError> {
        let items = parse(pattern)?;
        let mut insts = Vec::with_capacity(items.len() * 3 + 1);
        for item in items {
            match item {
                Item::Lit(c) => insts.push(Inst::Char(c)),
                Item::Any => insts.push(Inst::AnyNotNl),
                Item::Star => {
                    let at = insts.len();
                    let (take, skip) = (at + 1, at + 3);
                    insts.push(if greedy {
                        Inst::Split(take, skip)
                    } else {
                        Inst::Split(skip, take)
                    });
                    insts.push(Inst::AnyNotNl);
                    insts.push(Inst::Jmp(at));
                }
            }
        }
        insts.push(Inst::Match);
        Ok(Pattern { insts })
    }

    /// The leftmost-first match in `text` at or after `from`, as char
    /// indices; with `anchored` only a match starting at index 0 counts.
    pub(crate) fn find(
        &self,
        text: &[char],
        from: usize,
        anchored: bool,
    ) -> Option<(usize, usize)> {
        let n = self.insts.len();
        let mut run = ThreadList::new(n);
        let mut next = ThreadList::new(n);
        let mut stack = Vec::new();
        let mut found = None;
        let mut pos = from;
        loop {
            if run.threads.is_empty() && ((anchored && pos != 0) || found.is_some()) {
                break;
            }
            if found.is_none() && (!anchored || pos == 0) {
                run.add(&self.insts, 0, pos, &mut stack);
            }
            let c = text.get(pos).copied();
            next.clear();
            for &(pc, start) in &run.threads {
                match self.insts.get(pc) {
                    Some(Inst::Match) => {
                        // Lower-priority threads are cut off.
                        found = Some((start, pos));
                        break;
                    }
                    Some(&Inst::Char(want)) if c == Some(want) => {
                        next.add(&self.insts, pc + 1, start, &mut stack);
                    }
                    Some(Inst::AnyNotNl) if c.is_some_and(|c| c != '\n') => {
                        next.add(&self.insts, pc + 1, start, &mut stack);
                    }
                    _ => {}
                }
            }
            if c.is_none() {
                break;
            }
            pos += 1;
            std::mem::swap(&mut run, &mut next);
        }
        found
    }
}

/// The threads of one VM step, in priority order, and which program counters
/// were already reached in this step.
#[derive(Debug)]
struct ThreadList {
    threads: Vec<(usize, usize)>,
    seen: Vec<u64>,
    generation: u64,
}

impl ThreadList {
    fn new(n: usize) -> Self {
        ThreadList {
            threads: Vec::new(),
            seen: vec![0; n],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        self.threads.clear();
        self.generation += 1;
    }

    /// Adds the thread at `pc` and follows jumps and splits, depth first so
    /// that priority order is kept. Iterative: patterns can be long.
    fn add(&mut self, insts: &[Inst], pc: usize, start: usize, stack: &mut Vec<usize>) {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            let Some(seen) = self.seen.get_mut(pc) else {
                continue;
            };
            if *seen == self.generation {
                continue;
            }
            *seen = self.generation;
            match insts.get(pc) {
                Some(&Inst::Split(first, second)) => {
                    stack.push(second);
                    stack.push(first);
                }
                Some(&Inst::Jmp(to)) => stack.push(to),
                Some(_) => self.threads.push((pc, start)),
                None => {}
            }
        }
    }
}

/// Reads a pattern the way BuildKit's `convertShellPatternToRegex` does.
fn parse(pattern: &str) -> Result<Vec<Item>, PatternError> {
    let mut chars = pattern.chars().peekable();
    if chars.peek() == Some(&'\u{FEFF}') {
        chars.next();
    }
    let mut items = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '*' => items.push(Item::Star),
            '?' => items.push(Item::Any),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => items.push(Item::Lit(e)),
                    Some(e) => return Err(format!("invalid escape '\\{e}'")),
                    // Go formats the end-of-input rune (-1) with `%c`.
                    None => return Err("invalid escape '\\%!c(int32=-1)'".to_string()),
                }
            }
            _ => items.push(Item::Lit(c)),
        }
    }
    Ok(items)
}

/// Reverses a pattern but keeps each backslash in front of the character it
/// escapes (`a\*c` becomes `c\*a`). A trailing lone backslash stays a single
/// character.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut rest = chars.as_slice();
    while !rest.is_empty() {
        let take = if rest.first() == Some(&'\\') && rest.len() > 1 {
            2
        } else {
            1
        };
        let (unit, tail) = rest.split_at(take);
        units.push(unit);
        rest = tail;
    }
    units.iter().rev().flat_map(|u| u.iter()).collect()
}

/// `${V#p}` / `${V##p}`: removes the leftmost-first anchored match.
pub(crate) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, PatternError> {
    let re = Pattern::compile(pattern, greedy)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match re.find(&text, 0, true) {
        Some((_, end)) => text.get(end..).unwrap_or_default().iter().collect(),
        None => value.to_string(),
    })
}

/// Replaces the first match of `re` in `value` by `replacement`, taken
/// literally (Go's `FindStringIndex` and slicing).
pub(crate) fn replace_first(re: &Pattern, value: &str, replacement: &str) -> String {
    let text: Vec<char> = value.chars().collect();
    match re.find(&text, 0, false) {
        Some((start, end)) => {
            let mut out: String = slice(&text, 0, start).collect();
            out.push_str(replacement);
            out.extend(slice(&text, end, text.len()));
            out
        }
        None => value.to_string(),
    }
}

/// Go's `Regexp.ReplaceAllString`: every non-overlapping match is replaced,
/// an empty match right after a match is not, and `$` in the replacement is a
/// template (`$0`/`${0}` is the match, `$$` a dollar, other names are empty,
/// a malformed reference is kept as text).
pub(crate) fn replace_all(re: &Pattern, value: &str, replacement: &str) -> String {
    let text: Vec<char> = value.chars().collect();
    let end = text.len();
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    let mut search = 0;
    while search <= end {
        let Some((a, b)) = re.find(&text, search, false) else {
            break;
        };
        out.extend(slice(&text, last, a));
        if b > last || a == 0 {
            expand_template(&mut out, replacement, &text, a, b);
        }
        last = b;
        let width = usize::from(search < end);
        if search + width > b {
            search += width;
        } else if search + 1 > b {
            search += 1;
        } else {
            search = b;
        }
    }
    out.extend(slice(&text, last, end));
    out
}

fn slice(text: &[char], from: usize, to: usize) -> impl Iterator<Item = &char> {
    text.iter().take(to).skip(from)
}

/// Go's `Regexp.Expand` for a pattern without capture groups.
fn expand_template(out: &mut String, template: &str, text: &[char], a: usize, b: usize) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(rest.get(..i).unwrap_or_default());
        rest = rest.get(i + 1..).unwrap_or_default();
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match extract_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.extend(slice(text, a, b));
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Go's `regexp.extract`: a name (letters, digits, `_`), optionally in
/// braces. Returns the name and the text after the reference.
fn extract_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| is_letter(c) || is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = body.get(..len)?;
    let mut after = body.get(len..)?;
    if braced {
        after = after.strip_prefix('}')?;
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn reverse_keeps_escapes() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn invalid_patterns() {
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::compile(p, true).is_err(), "{p}");
        }
        assert_eq!(
            Pattern::compile("\\", true).err().as_deref(),
            Some("invalid escape '\\%!c(int32=-1)'")
        );
        assert!(Pattern::compile("()[]{\\}^$.\\*\\?|\\\\", true).is_ok());
    }

    #[test]
    fn leftmost_first() {
        let lazy = Pattern::compile("*x", false).ok();
        let greedy = Pattern::compile("*x", true).ok();
        let t = chars("axbxc");
        assert_eq!(lazy.and_then(|p| p.find(&t, 0, true)), Some((0, 2)));
        assert_eq!(greedy.and_then(|p| p.find(&t, 0, true)), Some((0, 4)));
        // `*` does not cross a newline, as Go's `.`.
        let p = Pattern::compile("*b", true).ok();
        assert_eq!(p.and_then(|p| p.find(&chars("a\nb"), 0, true)), None);
    }

    #[test]
    fn replace_all_like_go() {
        let Ok(empty) = Pattern::compile("", true) else {
            return;
        };
        assert_eq!(replace_all(&empty, "ab", "-"), "-a-b-");
        let Ok(star) = Pattern::compile("*", true) else {
            return;
        };
        assert_eq!(replace_all(&star, "ab", "-"), "-");
        let Ok(b) = Pattern::compile("b", true) else {
            return;
        };
        assert_eq!(
            replace_all(&b, "abcb", "[$0|${0}|$$|$1|$x|${0|$.]"),
            "a[b|b|$|||${0|$.]c[b|b|$|||${0|$.]"
        );
        assert_eq!(replace_first(&b, "abcb", "$0"), "a$0cb");
    }
}
