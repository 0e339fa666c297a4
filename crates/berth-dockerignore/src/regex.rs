//! A small regular-expression engine for the Go (RE2) dialect.
//!
//! Upstream turns a pattern that needs more than a plain string comparison
//! into a Go regular expression and compiles it with `regexp.Compile`. To
//! reproduce that exactly, including how bracket expressions, `\` escapes,
//! `^`, `|` and `{n,m}` are read by Go's regexp parser, this module parses
//! the same expression text with Go's rules (Perl flags: `^`/`$` anchor the
//! whole text, `.` does not match `\n`, negated classes do) and runs it as a
//! Thompson NFA. The simulation visits each (instruction, position) pair at
//! most once, so matching is `O(len(text) * len(program))` whatever the
//! pattern: no backtracking blow-up. Program size is bounded the way Go
//! bounds it (counted repetition at most 1000, nested counts multiplying to
//! at most 1000, an estimated size of at most 128 MiB of Go instructions).
//!
//! Supported: literals, `.`, `^`, `$`, groups, `|`, `*`, `+`, `?`, `{n}`,
//! `{n,}`, `{n,m}` (and the lazy forms, which match the same texts), bracket
//! expressions with ranges, negation, escapes, Perl classes (`\d\s\w` and
//! negations) and POSIX classes (`[:alpha:]`), the escapes `\a\f\n\r\t\v`,
//! octal, `\x` hex, escaped punctuation, `\A`, `\z`, `\b`, `\B` and
//! `\Q...\E`. Not supported (reported as a compile error): Unicode classes
//! `\p`/`\P` and `(?` groups. The translation of `.dockerignore` patterns
//! never produces `(?`; `\p` only arises from a pattern that escapes the
//! letter `p`.

use std::cell::RefCell;

const MAX_RUNE: u32 = 0x10_FFFF;
/// Go's limit on how deeply an expression may nest.
const MAX_HEIGHT: usize = 1000;
/// Go's limit on a counted repetition (and on nested counts multiplied).
const MAX_REPEAT: i64 = 1000;
/// Go's limit on the estimated compiled size: 128 MiB of 40-byte
/// instructions.
const MAX_SIZE: u64 = (128 << 20) / 40;
/// Programs larger than this use a throw-away scratch rather than the cached
/// per-thread one, so one huge pattern does not pin memory.
const CACHED_SCRATCH_LIMIT: usize = 1 << 16;

/// Zero-width assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Begin,
    End,
    WordBoundary,
    NotWordBoundary,
}

#[derive(Debug, Clone, Copy)]
enum Repeat {
    Star,
    Plus,
    Quest,
    /// `{min,max}`; `max == None` is unbounded.
    Count {
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Debug)]
enum Node {
    Lit(u32),
    /// Index into the parser's class table.
    Class(u32),
    AnyNotNl,
    Look(Look),
    Cat(Vec<Node>),
    Alt(Vec<Node>),
    Group(Box<Node>),
    Repeat(Box<Node>, Repeat),
}

/// Marker for any parse or compile failure; the caller maps it to
/// `ErrBadPattern` like upstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompileError;

type PResult<T> = Result<T, CompileError>;

/// Sorted, merged inclusive code-point ranges of one character class.
type ClassRanges = Box<[(u32, u32)]>;

#[derive(Debug, Clone, Copy)]
enum Inst {
    Char(u32),
    /// Index into [`Regex::classes`].
    Class(u32),
    AnyNotNl,
    Look(Look),
    Split(u32, u32),
    Jmp(u32),
    Match,
}

/// A compiled expression, matched with Go's `MatchString` semantics (is there
/// a match anywhere in the text).
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    prog: Box<[Inst]>,
    classes: Box<[ClassRanges]>,
    /// The expression starts with `^`: only a thread started at offset 0 can
    /// succeed.
    anchored: bool,
    /// Literal text that must start the subject (anchored expressions only).
    prefix: String,
    /// Literal text that must end the subject (expressions ending in `$`).
    suffix: String,
    /// The longest run of literal text that every match contains.
    required: String,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Regex {
    /// Parses and compiles `src` with Go's syntax rules.
    pub(crate) fn new(src: &str) -> PResult<Regex> {
        let mut parser = Parser {
            src,
            pos: 0,
            classes: Vec::new(),
        };
        let (node, _) = parser.parse_alt(0)?;
        if parser.pos < src.len() {
            // Only an unmatched `)` stops the top-level parse early.
            return Err(CompileError);
        }
        if go_size(&node) > MAX_SIZE {
            return Err(CompileError); // expression too large
        }
        let Hints {
            anchored,
            prefix,
            suffix,
            required,
        } = literal_hints(&node);
        let mut prog = Vec::new();
        emit(&mut prog, &node);
        prog.push(Inst::Match);
        Ok(Regex {
            prog: prog.into_boxed_slice(),
            classes: parser.classes.into_boxed_slice(),
            anchored,
            prefix,
            suffix,
            required,
        })
    }

    /// Reports whether the expression matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        if !text.starts_with(self.prefix.as_str())
            || !text.ends_with(self.suffix.as_str())
            || !text.contains(self.required.as_str())
        {
            return false;
        }
        if self.prog.len() > CACHED_SCRATCH_LIMIT {
            return self.run(text, &mut Scratch::default());
        }
        let res = SCRATCH.try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut scratch| self.run(text, &mut scratch))
        });
        match res {
            Ok(Some(found)) => found,
            _ => self.run(text, &mut Scratch::default()),
        }
    }

    fn class_has(&self, index: u32, c: char) -> bool {
        let c = c as u32;
        self.classes
            .get(index as usize)
            .is_some_and(|ranges| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi))
    }

    fn run(&self, text: &str, scratch: &mut Scratch) -> bool {
        let n = self.prog.len();
        let Scratch {
            current,
            next,
            stack,
        } = scratch;
        current.reset(n);
        next.reset(n);

        let mut chars = text.chars();
        let mut prev: Option<char> = None;
        let mut cur = chars.next();
        let mut ahead = chars.next();
        let mut at_start = true;
        loop {
            let here = Context {
                at_start,
                at_end: cur.is_none(),
                word_before: is_word(prev),
                word_after: is_word(cur),
            };
            if at_start || !self.anchored {
                add_thread(&self.prog, current, stack, 0, here);
            } else if current.is_empty() {
                return false;
            }
            let after = Context {
                at_start: false,
                at_end: ahead.is_none(),
                word_before: is_word(cur),
                word_after: is_word(ahead),
            };
            for &pc in current.as_slice() {
                let advance = match self.prog.get(pc as usize) {
                    Some(Inst::Match) => return true,
                    Some(Inst::Char(want)) => cur.is_some_and(|c| c as u32 == *want),
                    Some(Inst::Class(index)) => cur.is_some_and(|c| self.class_has(*index, c)),
                    Some(Inst::AnyNotNl) => cur.is_some_and(|c| c != '\n'),
                    _ => false,
                };
                if advance {
                    add_thread(&self.prog, next, stack, pc.saturating_add(1), after);
                }
            }
            if cur.is_none() {
                return false;
            }
            std::mem::swap(current, next);
            next.clear();
            prev = cur;
            cur = ahead;
            ahead = chars.next();
            at_start = false;
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reusable simulation state, kept per thread so matching does not allocate.
#[derive(Debug, Default)]
struct Scratch {
    current: SparseSet,
    next: SparseSet,
    stack: Vec<u32>,
}

/// Set of instruction indexes with O(1) insert, lookup and clear.
#[derive(Debug, Default)]
struct SparseSet {
    dense: Vec<u32>,
    sparse: Vec<u32>,
    len: usize,
}

impl SparseSet {
    fn reset(&mut self, capacity: usize) {
        if self.sparse.len() < capacity {
            self.sparse.resize(capacity, 0);
            self.dense.resize(capacity, 0);
        }
        self.len = 0;
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn contains(&self, i: u32) -> bool {
        match self.sparse.get(i as usize) {
            Some(&slot) => (slot as usize) < self.len && self.dense.get(slot as usize) == Some(&i),
            None => true, // out of range: treat as present so it is never added
        }
    }

    fn insert(&mut self, i: u32) {
        if let (Some(d), Some(s)) = (
            self.dense.get_mut(self.len),
            self.sparse.get_mut(i as usize),
        ) {
            *d = i;
            *s = to_u32(self.len);
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u32] {
        self.dense.get(..self.len).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Copy)]
struct Context {
    at_start: bool,
    at_end: bool,
    word_before: bool,
    word_after: bool,
}

impl Context {
    fn holds(self, look: Look) -> bool {
        match look {
            Look::Begin => self.at_start,
            Look::End => self.at_end,
            Look::WordBoundary => self.word_before != self.word_after,
            Look::NotWordBoundary => self.word_before == self.word_after,
        }
    }
}

/// Go's `\b` uses ASCII word characters.
fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Adds `pc` and everything reachable from it through empty transitions that
/// hold in `ctx`.
fn add_thread(prog: &[Inst], set: &mut SparseSet, stack: &mut Vec<u32>, pc: u32, ctx: Context) {
    stack.clear();
    stack.push(pc);
    while let Some(pc) = stack.pop() {
        if set.contains(pc) {
            continue;
        }
        set.insert(pc);
        match prog.get(pc as usize) {
            Some(Inst::Jmp(to)) => stack.push(*to),
            Some(Inst::Split(a, b)) => {
                stack.push(*b);
                stack.push(*a);
            }
            Some(Inst::Look(look)) if ctx.holds(*look) => stack.push(pc.saturating_add(1)),
            _ => {}
        }
    }
}

/// Go's estimate of the compiled size of `node` (`calcSize`), saturating.
fn go_size(node: &Node) -> u64 {
    let size = match node {
        Node::Lit(_) | Node::Class(_) | Node::AnyNotNl | Node::Look(_) => 1,
        Node::Cat(items) => items.iter().map(go_size).fold(0, u64::saturating_add),
        Node::Alt(branches) => branches
            .iter()
            .map(go_size)
            .fold(0, u64::saturating_add)
            .saturating_add(branches.len().saturating_sub(1) as u64),
        Node::Group(sub) => go_size(sub).saturating_add(2),
        Node::Repeat(sub, kind) => {
            let sub = go_size(sub);
            match *kind {
                Repeat::Star => sub.saturating_add(2),
                Repeat::Plus | Repeat::Quest => sub.saturating_add(1),
                Repeat::Count { min: 0, max: None } => sub.saturating_add(2),
                Repeat::Count { min, max: None } => {
                    u64::from(min).saturating_mul(sub).saturating_add(1)
                }
                Repeat::Count {
                    min,
                    max: Some(max),
                } => u64::from(max)
                    .saturating_mul(sub)
                    .saturating_add(u64::from(max.saturating_sub(min))),
            }
        }
    };
    size.max(1)
}

/// Go's `repeatIsValid`: nested counted repetitions may not multiply to more
/// than `n` copies of the innermost expression.
fn repeat_is_valid(node: &Node, mut n: u32) -> bool {
    if let Node::Repeat(_, Repeat::Count { min, max }) = node {
        let m = match max {
            Some(0) => return true,
            Some(m) => *m,
            None => *min,
        };
        if m > n {
            return false;
        }
        n = n.checked_div(m).unwrap_or(n);
    }
    match node {
        Node::Cat(items) | Node::Alt(items) => items.iter().all(|i| repeat_is_valid(i, n)),
        Node::Group(sub) | Node::Repeat(sub, _) => repeat_is_valid(sub, n),
        _ => true,
    }
}

/// Appends the instructions for `node`; control falls through to whatever is
/// emitted next. Recursion depth is bounded by [`MAX_HEIGHT`], size by
/// [`MAX_SIZE`] (checked before emitting).
fn emit(prog: &mut Vec<Inst>, node: &Node) {
    fn patch(prog: &mut [Inst], at: usize, inst: Inst) {
        if let Some(slot) = prog.get_mut(at) {
            *slot = inst;
        }
    }
    fn here(prog: &[Inst]) -> u32 {
        to_u32(prog.len())
    }
    fn star(prog: &mut Vec<Inst>, sub: &Node) {
        let start = prog.len();
        prog.push(Inst::Jmp(0));
        emit(prog, sub);
        prog.push(Inst::Jmp(to_u32(start)));
        let end = here(prog);
        patch(prog, start, Inst::Split(to_u32(start + 1), end));
    }
    match node {
        Node::Lit(c) => prog.push(Inst::Char(*c)),
        Node::Class(index) => prog.push(Inst::Class(*index)),
        Node::AnyNotNl => prog.push(Inst::AnyNotNl),
        Node::Look(look) => prog.push(Inst::Look(*look)),
        Node::Cat(items) => {
            for item in items {
                emit(prog, item);
            }
        }
        Node::Group(sub) => emit(prog, sub),
        Node::Alt(branches) => {
            let mut exits = Vec::new();
            let last = branches.len().saturating_sub(1);
            for (i, branch) in branches.iter().enumerate() {
                if i < last {
                    let split = prog.len();
                    prog.push(Inst::Jmp(0));
                    emit(prog, branch);
                    exits.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = here(prog);
                    patch(prog, split, Inst::Split(to_u32(split + 1), next));
                } else {
                    emit(prog, branch);
                }
            }
            let end = here(prog);
            for at in exits {
                patch(prog, at, Inst::Jmp(end));
            }
        }
        Node::Repeat(sub, Repeat::Star) => star(prog, sub),
        Node::Repeat(sub, Repeat::Plus) => {
            let start = here(prog);
            emit(prog, sub);
            let end = here(prog).saturating_add(1);
            prog.push(Inst::Split(start, end));
        }
        Node::Repeat(sub, Repeat::Quest) => {
            let start = prog.len();
            prog.push(Inst::Jmp(0));
            emit(prog, sub);
            let end = here(prog);
            patch(prog, start, Inst::Split(to_u32(start + 1), end));
        }
        Node::Repeat(sub, Repeat::Count { min, max }) => {
            for _ in 0..*min {
                emit(prog, sub);
            }
            match max {
                None => star(prog, sub),
                Some(max) => {
                    // Each optional copy may be skipped, ending the repeat.
                    let mut skips = Vec::new();
                    for _ in *min..*max {
                        skips.push(prog.len());
                        prog.push(Inst::Jmp(0));
                        emit(prog, sub);
                    }
                    let end = here(prog);
                    for at in skips {
                        patch(prog, at, Inst::Split(to_u32(at + 1), end));
                    }
                }
            }
        }
    }
}

/// Cheap necessary conditions for a match, used to reject most subjects
/// without running the automaton.
#[derive(Debug, Default)]
struct Hints {
    /// The expression starts with `^`.
    anchored: bool,
    /// Literal text right after a leading `^`.
    prefix: String,
    /// Literal text right before a trailing `$`.
    suffix: String,
    /// Longest run of consecutive literals in the top-level sequence.
    required: String,
}

/// Derives [`Hints`] from the top-level sequence of the expression (nothing
/// for an alternation, whose branches are not all required).
fn literal_hints(node: &Node) -> Hints {
    let Node::Cat(items) = node else {
        return Hints::default();
    };
    let anchored = matches!(items.first(), Some(Node::Look(Look::Begin)));
    let literal = |n: &Node| match n {
        Node::Lit(c) => char::from_u32(*c),
        _ => None,
    };
    let mut prefix = String::new();
    if anchored {
        for c in items.iter().skip(1).map_while(literal) {
            prefix.push(c);
        }
    }
    let mut suffix = String::new();
    if matches!(items.last(), Some(Node::Look(Look::End))) {
        let rev: Vec<char> = items.iter().rev().skip(1).map_while(literal).collect();
        suffix.extend(rev.iter().rev());
    }
    let mut required = String::new();
    let mut run = String::new();
    for item in items {
        match literal(item) {
            Some(c) => run.push(c),
            None => {
                if run.len() > required.len() {
                    required = std::mem::take(&mut run);
                }
                run.clear();
            }
        }
    }
    if run.len() > required.len() {
        required = run;
    }
    Hints {
        anchored,
        prefix,
        suffix,
        required,
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    classes: Vec<ClassRanges>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip(&mut self, bytes: usize) {
        self.pos = (self.pos + bytes).min(self.src.len());
    }

    fn class_node(&mut self, ranges: Vec<(u32, u32)>) -> Node {
        self.classes.push(ranges.into_boxed_slice());
        Node::Class(to_u32(self.classes.len() - 1))
    }

    /// `branch ('|' branch)*`, stopping before `)` or at the end.
    fn parse_alt(&mut self, depth: usize) -> PResult<(Node, usize)> {
        let mut branches = vec![self.parse_cat(depth)?];
        while self.peek() == Some('|') {
            self.skip(1);
            branches.push(self.parse_cat(depth)?);
        }
        if branches.len() == 1 {
            if let Some(only) = branches.pop() {
                return Ok(only);
            }
        }
        let height = 1 + branches.iter().map(|b| b.1).max().unwrap_or(0);
        check_height(height)?;
        Ok((
            Node::Alt(branches.into_iter().map(|b| b.0).collect()),
            height,
        ))
    }

    /// Applies a repetition operator to the last item, with Go's checks.
    fn repeat(
        &mut self,
        items: &mut Vec<(Node, usize)>,
        kind: Repeat,
        after_repeat: bool,
    ) -> PResult<()> {
        if self.peek() == Some('?') {
            // Lazy form: matches the same texts.
            self.skip(1);
        }
        if after_repeat {
            return Err(CompileError); // invalid nested repetition operator
        }
        let Some((sub, h)) = items.pop() else {
            return Err(CompileError); // missing argument to repetition operator
        };
        let node = Node::Repeat(Box::new(sub), kind);
        if let Repeat::Count { min, max } = kind {
            if (min >= 2 || max.is_some_and(|m| m >= 2)) && !repeat_is_valid(&node, 1000) {
                return Err(CompileError); // invalid repeat count
            }
        }
        check_height(h + 1)?;
        items.push((node, h + 1));
        Ok(())
    }

    /// A sequence of quantified atoms, stopping before `|`, `)` or the end.
    fn parse_cat(&mut self, depth: usize) -> PResult<(Node, usize)> {
        let mut items: Vec<(Node, usize)> = Vec::new();
        let mut after_repeat = false;
        while let Some(c) = self.peek() {
            let mut is_repeat = false;
            match c {
                '|' | ')' => break,
                '(' => {
                    if self.rest().starts_with("(?") || depth >= MAX_HEIGHT {
                        return Err(CompileError);
                    }
                    self.skip(1);
                    let (inner, h) = self.parse_alt(depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err(CompileError); // missing closing )
                    }
                    self.skip(1);
                    check_height(h + 1)?;
                    items.push((Node::Group(Box::new(inner)), h + 1));
                }
                '*' | '+' | '?' => {
                    self.skip(1);
                    let kind = match c {
                        '*' => Repeat::Star,
                        '+' => Repeat::Plus,
                        _ => Repeat::Quest,
                    };
                    self.repeat(&mut items, kind, after_repeat)?;
                    is_repeat = true;
                }
                '{' => match parse_counted(self.rest()) {
                    None => {
                        // Not a valid count: a literal `{`.
                        self.skip(1);
                        items.push((Node::Lit('{' as u32), 1));
                    }
                    Some((min, max, used)) => {
                        if !(0..=MAX_REPEAT).contains(&min)
                            || max > MAX_REPEAT
                            || (max >= 0 && min > max)
                        {
                            return Err(CompileError); // invalid repeat count
                        }
                        self.skip(used);
                        let min = u32::try_from(min).map_err(|_| CompileError)?;
                        let max = u32::try_from(max).ok();
                        self.repeat(&mut items, Repeat::Count { min, max }, after_repeat)?;
                        is_repeat = true;
                    }
                },
                '^' => {
                    self.skip(1);
                    items.push((Node::Look(Look::Begin), 1));
                }
                '$' => {
                    self.skip(1);
                    items.push((Node::Look(Look::End), 1));
                }
                '.' => {
                    self.skip(1);
                    items.push((Node::AnyNotNl, 1));
                }
                '[' => {
                    let ranges = self.parse_class()?;
                    let node = self.class_node(ranges);
                    items.push((node, 1));
                }
                '\\' => self.parse_backslash(&mut items)?,
                _ => {
                    self.skip(c.len_utf8());
                    items.push((Node::Lit(c as u32), 1));
                }
            }
            after_repeat = is_repeat;
        }
        let height = 1 + items.iter().map(|i| i.1).max().unwrap_or(0);
        check_height(height)?;
        Ok((Node::Cat(items.into_iter().map(|i| i.0).collect()), height))
    }

    /// A `\` outside brackets: assertions, `\Q...\E`, classes or an escaped
    /// character.
    fn parse_backslash(&mut self, items: &mut Vec<(Node, usize)>) -> PResult<()> {
        let rest = self.rest();
        let next = rest.chars().nth(1);
        let look = match next {
            Some('A') => Some(Look::Begin),
            Some('z') => Some(Look::End),
            Some('b') => Some(Look::WordBoundary),
            Some('B') => Some(Look::NotWordBoundary),
            _ => None,
        };
        if let Some(look) = look {
            self.skip(2);
            items.push((Node::Look(look), 1));
            return Ok(());
        }
        match next {
            Some('C') | Some('p') | Some('P') => Err(CompileError),
            Some('Q') => {
                self.skip(2);
                let quoted = self.rest();
                let (text, used) = match quoted.find("\\E") {
                    Some(i) => (quoted.get(..i).unwrap_or(""), i + 2),
                    None => (quoted, quoted.len()),
                };
                for c in text.chars() {
                    items.push((Node::Lit(c as u32), 1));
                }
                self.skip(used);
                Ok(())
            }
            Some(letter) => {
                if let Some(ranges) = perl_class(letter) {
                    self.skip(2);
                    let node = self.class_node(ranges);
                    items.push((node, 1));
                    return Ok(());
                }
                let (c, used) = parse_escape(rest)?;
                self.skip(used);
                items.push((Node::Lit(c), 1));
                Ok(())
            }
            None => Err(CompileError), // trailing backslash
        }
    }

    /// A bracket expression starting at `[`, with Go's rules: a `]` right
    /// after `[` or `[^` is literal, `-` is literal unless between two
    /// characters, POSIX `[:name:]` and Perl `\d`-style classes may appear.
    fn parse_class(&mut self) -> PResult<Vec<(u32, u32)>> {
        self.skip(1); // [
        let negated = self.peek() == Some('^');
        if negated {
            self.skip(1);
        }
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let mut first = true;
        loop {
            let t = self.rest();
            if !first && t.starts_with(']') {
                self.skip(1);
                break;
            }
            first = false;
            if t.is_empty() {
                return Err(CompileError); // missing closing ]
            }
            if t.len() > 2 && t.starts_with("[:") {
                if let Some(i) = t.get(2..).and_then(|s| s.find(":]")) {
                    let name = t.get(..i + 4).unwrap_or("");
                    ranges.extend(posix_class(name).ok_or(CompileError)?);
                    self.skip(name.len());
                    continue;
                }
            }
            if t.starts_with("\\p") || t.starts_with("\\P") {
                return Err(CompileError); // Unicode classes are not supported
            }
            if let Some(letter) = t.strip_prefix('\\').and_then(|s| s.chars().next()) {
                if let Some(class) = perl_class(letter) {
                    ranges.extend(class);
                    self.skip(2);
                    continue;
                }
            }
            let (lo, used) = class_char(t)?;
            self.skip(used);
            let mut hi = lo;
            let t = self.rest();
            if t.len() >= 2 && t.starts_with('-') && !t.get(1..).is_some_and(|s| s.starts_with(']'))
            {
                self.skip(1);
                let (h, used) = class_char(self.rest())?;
                self.skip(used);
                if h < lo {
                    return Err(CompileError); // invalid character class range
                }
                hi = h;
            }
            ranges.push((lo, hi));
        }
        let ranges = normalize(ranges);
        Ok(if negated { negate(&ranges) } else { ranges })
    }
}

fn check_height(height: usize) -> PResult<()> {
    if height > MAX_HEIGHT {
        Err(CompileError)
    } else {
        Ok(())
    }
}

/// Go's `parseRepeat`: reads `{n}`, `{n,}` or `{n,m}` at the start of `s`.
/// Returns `(min, max, bytes used)` with `max == -1` for "unbounded" and a
/// negative `min` for numbers too large to represent; `None` when the text is
/// not a repetition (Go then reads the `{` literally).
fn parse_counted(s: &str) -> Option<(i64, i64, usize)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = 1;
    let (mut min, used) = parse_go_int(b.get(i..)?)?;
    i += used;
    let max = match b.get(i)? {
        b',' => {
            i += 1;
            if *b.get(i)? == b'}' {
                -1
            } else {
                let (max, used) = parse_go_int(b.get(i..)?)?;
                i += used;
                if max < 0 {
                    min = -1;
                }
                max
            }
        }
        _ => min,
    };
    if b.get(i) != Some(&b'}') {
        return None;
    }
    Some((min, max, i + 1))
}

/// Go's `parseInt` for repetition counts: decimal digits without a leading
/// zero; values of 10^8 or more come back as -1.
fn parse_go_int(b: &[u8]) -> Option<(i64, usize)> {
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if b.first() == Some(&b'0') && b.get(1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut value: i64 = 0;
    for &d in b.iter().take(digits) {
        if value >= 100_000_000 {
            value = -1;
            break;
        }
        value = value * 10 + i64::from(d - b'0');
    }
    Some((value, digits))
}

/// A single character inside brackets: an escape or a plain character.
fn class_char(t: &str) -> PResult<(u32, usize)> {
    match t.chars().next() {
        None => Err(CompileError),
        Some('\\') => parse_escape(t),
        Some(c) => Ok((c as u32, c.len_utf8())),
    }
}

/// Go's `parseEscape`: `t` starts with `\`. Returns the character and the
/// number of bytes used.
fn parse_escape(t: &str) -> PResult<(u32, usize)> {
    let body = t.get(1..).unwrap_or("");
    let mut chars = body.chars();
    let c = chars.next().ok_or(CompileError)?;
    let mut used = 1 + c.len_utf8();
    let octal = |b: Option<&u8>| {
        b.filter(|b| (b'0'..=b'7').contains(b))
            .map(|b| u32::from(b - b'0'))
    };
    match c {
        '0'..='7' => {
            let bytes = t.as_bytes();
            // A lone non-zero digit would be a back-reference: unsupported.
            if c != '0' && octal(bytes.get(used)).is_none() {
                return Err(CompileError);
            }
            let mut r = c as u32 - '0' as u32;
            for _ in 0..2 {
                match octal(bytes.get(used)) {
                    Some(d) => {
                        r = r * 8 + d;
                        used += 1;
                    }
                    None => break,
                }
            }
            Ok((r, used))
        }
        'x' => match chars.next() {
            Some('{') => {
                used += 1;
                let mut r: u32 = 0;
                let mut digits = 0;
                loop {
                    let h = chars.next().ok_or(CompileError)?;
                    used += h.len_utf8();
                    if h == '}' {
                        break;
                    }
                    r = r * 16 + h.to_digit(16).ok_or(CompileError)?;
                    if r > MAX_RUNE {
                        return Err(CompileError);
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(CompileError);
                }
                Ok((r, used))
            }
            Some(h1) => {
                let x = h1.to_digit(16).ok_or(CompileError)?;
                let y = chars
                    .next()
                    .and_then(|h| h.to_digit(16))
                    .ok_or(CompileError)?;
                Ok((x * 16 + y, used + 2))
            }
            None => Err(CompileError),
        },
        'a' => Ok((0x07, used)),
        'f' => Ok((0x0C, used)),
        'n' => Ok((0x0A, used)),
        'r' => Ok((0x0D, used)),
        't' => Ok((0x09, used)),
        'v' => Ok((0x0B, used)),
        _ if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c as u32, used)),
        _ => Err(CompileError),
    }
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const SPACE_PERL: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// `\d \D \s \S \w \W` (ASCII, as in Go).
fn perl_class(letter: char) -> Option<Vec<(u32, u32)>> {
    let (base, negated) = match letter {
        'd' => (DIGIT, false),
        'D' => (DIGIT, true),
        's' => (SPACE_PERL, false),
        'S' => (SPACE_PERL, true),
        'w' => (WORD, false),
        'W' => (WORD, true),
        _ => return None,
    };
    Some(if negated { negate(base) } else { base.to_vec() })
}

/// `[:name:]` and `[:^name:]` (ASCII, as in Go). `None` for unknown names.
fn posix_class(full: &str) -> Option<Vec<(u32, u32)>> {
    let name = full.strip_prefix("[:")?.strip_suffix(":]")?;
    let (name, negated) = match name.strip_prefix('^') {
        Some(n) => (n, true),
        None => (name, false),
    };
    let base: &[(u32, u32)] = match name {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => &[(0x00, 0x7F)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => DIGIT,
        "graph" => &[(0x21, 0x7E)],
        "lower" => &[(0x61, 0x7A)],
        "print" => &[(0x20, 0x7E)],
        "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => &[(0x09, 0x0D), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5A)],
        "word" => WORD,
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some(if negated { negate(base) } else { base.to_vec() })
}

/// Sorts and merges overlapping or adjacent ranges.
fn normalize(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Complement of sorted, merged ranges within `0..=MAX_RUNE`.
fn negate(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    let mut next = 0u32;
    for &(lo, hi) in ranges {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi.saturating_add(1);
    }
    if next <= MAX_RUNE {
        out.push((next, MAX_RUNE));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn m(re: &str, text: &str) -> bool {
        Regex::new(re)
            .unwrap_or_else(|e| panic!("{re:?}: {e:?}"))
            .is_match(text)
    }

    #[test]
    fn basics() {
        assert!(m("^abc$", "abc"));
        assert!(!m("^abc$", "abcd"));
        assert!(m("abc", "xxabcxx"));
        assert!(m("^(.*/)?dir2/[^/]*$", "a/b/dir2/x"));
        assert!(!m("^(.*/)?dir2/[^/]*$", "a/b/dir2/x/y"));
        assert!(m("^(.*/)?(.*/)?[^/]*\\.txt$", "file.txt"));
        assert!(!m("^.*$", "a\nb"));
        assert!(m("^[^/]*$", "a\nb"));
        assert!(m("^a|b$", "xxb"));
        assert!(m("^a+b?$", "aaa"));
        assert!(m("^(a*)*$", "aaaa"));
        assert!(m("^\\Qa.b\\E$", "a.b"));
        assert!(!m("^\\Qa.b\\E$", "axb"));
        assert!(m("^\\Qa.b$", "a.b$"));
        assert!(m("^a\\d$", "a7"));
        assert!(!m("^a\\d$", "ad"));
        assert!(m("^\\x41\\x{1F600}\\101$", "A😀A"));
        assert!(m("^[[:alpha:]]$", "q"));
        assert!(!m("^[[:^alpha:]]$", "q"));
        assert!(m("^[]a]$", "]"));
        assert!(m("^[a-]$", "-"));
        assert!(m("^\\bab\\b$", "ab"));
        assert!(!m("^a^b$", "a^b"));
        assert!(m("^[[^/]*]$", "[^^]"));
        // `|` and `{n,m}` as Go reads them.
        assert!(m("^a|b$", "b"));
        assert!(m("^a{2}$", "aa"));
        assert!(!m("^a{2}$", "aaa"));
        assert!(m("^a{2,}$", "aaaa"));
        assert!(!m("^a{2,3}$", "a"));
        assert!(m("^a{2,3}$", "aaa"));
        assert!(m("^a{0}b$", "b"));
        assert!(m("^a{,2}$", "a{,2}"));
        assert!(m("^a{01}$", "a{01}"));
    }

    #[test]
    fn compile_errors() {
        for bad in [
            "[z-a]",
            "[[:nope:]]",
            "a**",
            "*a",
            "(a",
            "a)",
            "\\",
            "\\e",
            "\\1",
            "\\8",
            "\\pL",
            "[\\b]",
            "\\x",
            "\\x4",
            "\\x{}",
            "\\x{110000}",
            "(?i)a",
            "\\é",
            "[a",
            "a{1001}",
            "a{3,2}",
            "{2}",
            "a{2}{3}",
            "a*{2}",
            "a{2}*",
            "a{100}\\Q\\E{11}",
            "a{99999999999}",
            "a{1,99999999999}",
        ] {
            assert!(Regex::new(bad).is_err(), "{bad:?} should not compile");
        }
        for ok in [
            "a{",
            "a{,2}",
            "a{01}",
            "a{1,02}",
            "}",
            "a{2}?",
            "a{100}\\Q\\E{10}",
        ] {
            assert!(Regex::new(ok).is_ok(), "{ok:?} should compile");
        }
        assert!(Regex::new("\\_").is_ok());
    }

    #[test]
    fn size_limit() {
        assert!(Regex::new(&"[ab]{1000}".repeat(3000)).is_ok());
        assert!(Regex::new(&"[ab]{1000}".repeat(3400)).is_err());
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowing() {
        let mut src = String::from("a");
        for _ in 0..5000 {
            src.push_str("*\\Q\\E");
        }
        assert!(Regex::new(&src).is_err());
    }

    #[test]
    fn no_exponential_blowup() {
        let mut re = String::from("^");
        for _ in 0..200 {
            re.push_str("(.*/)?");
        }
        re.push_str("a$");
        let re = Regex::new(&re).unwrap();
        let text = "x/".repeat(2000) + "b";
        let start = std::time::Instant::now();
        assert!(!re.is_match(&text));
        assert!(start.elapsed().as_secs() < 5);
    }
}
