//! The instruction layer: turns a parsed [`Instruction`] into a typed
//! [`Command`], validating its arguments and flags as BuildKit's
//! `instructions` package does (same error texts).

mod flags;
mod mount;

use std::borrow::Cow;
use std::time::Duration;

use crate::ast::{Args, Heredoc, Instruction, Word};
use crate::heredoc::{chomp_content, parse_heredoc};
use crate::span::Span;
use flags::{FlagKind, FlagSet};
pub use mount::{Mount, MountType, Sharing};

/// A typed, validated instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<Word>),
    Env(Vec<KeyValue>),
    Add(Add),
    Copy(Copy),
    Volume(Vec<Word>),
    User(Word),
    Workdir(Word),
    Arg(Vec<ArgDecl>),
    Onbuild(String),
    StopSignal(Word),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
}

impl Command {
    /// The instruction keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Expose(_) => "EXPOSE",
            Command::Env(_) => "ENV",
            Command::Add(_) => "ADD",
            Command::Copy(_) => "COPY",
            Command::Volume(_) => "VOLUME",
            Command::User(_) => "USER",
            Command::Workdir(_) => "WORKDIR",
            Command::Arg(_) => "ARG",
            Command::Onbuild(_) => "ONBUILD",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Shell(_) => "SHELL",
        }
    }
}

/// `FROM [--platform=…] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: Word,
    /// The stage name, lower-cased.
    pub name: Option<Word>,
    pub platform: Option<Word>,
}

/// Shell form (`RUN echo hi`) or exec form (`RUN ["echo", "hi"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Shell(String),
    Exec(Vec<String>),
}

impl CommandLine {
    /// True for the exec (JSON) form.
    pub fn is_exec(&self) -> bool {
        matches!(self, CommandLine::Exec(_))
    }
}

/// A file written inline with a heredoc (`COPY <<EOF /x`, `RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    pub expand: bool,
}

/// `RUN` network modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// `RUN [--mount …] [--network …] [--security …] command`.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredoc bodies; with the shell form, the first one is the script when
    /// the command is only the heredoc word.
    pub files: Vec<InlineFile>,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<Security>,
}

/// A `key=value` of ENV or LABEL, value not yet expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub span: Span,
}

/// One name of `ARG name[=default] …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
    pub span: Span,
}

/// Sources and destination of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAndDest {
    pub sources: Vec<Word>,
    pub inline: Vec<InlineFile>,
    pub dest: Word,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub paths: SourcesAndDest,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub paths: SourcesAndDest,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    pub exclude: Vec<String>,
    pub unpack: Option<bool>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        /// `["CMD", args…]` or `["CMD-SHELL", line]`, as Docker stores it.
        test: Vec<String>,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// An instruction that did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InstructionError {
    pub message: String,
    pub span: Span,
}

impl InstructionError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> Self {
        InstructionError {
            message: message.into(),
            span,
        }
    }
}

/// Types and validates one instruction.
pub fn parse_instruction(instruction: &Instruction) -> Result<Command, InstructionError> {
    Request::new(instruction).parse()
}

/// One instruction being typed.
struct Request<'a> {
    node: &'a Instruction,
    name: Cow<'static, str>,
    args: Cow<'a, [Word]>,
    span: Span,
}

impl<'a> Request<'a> {
    fn new(node: &'a Instruction) -> Self {
        let args = match &node.args {
            Args::Values(v) => Cow::Borrowed(v.as_slice()),
            Args::Trigger(sub) => Cow::Owned(vec![
                sub.keyword.clone(),
                Word {
                    text: crate::dump::dump_instruction(sub),
                    span: sub.span,
                },
            ]),
        };
        Request {
            node,
            name: node.name(),
            args,
            span: node.span,
        }
    }

    fn err(&self, message: impl Into<String>) -> InstructionError {
        InstructionError::new(message, self.span)
    }

    fn err_at(&self, message: impl Into<String>, span: Span) -> InstructionError {
        InstructionError::new(message, span)
    }

    fn flags(&self, spec: &[(&'static str, FlagKind)]) -> Result<FlagSet, InstructionError> {
        FlagSet::parse(&self.node.flags, spec)
    }

    fn at_least_one(&self) -> Result<(), InstructionError> {
        if self.args.is_empty() {
            return Err(self.err(format!("{} requires at least one argument", self.name)));
        }
        Ok(())
    }

    fn exactly_one(&self) -> Result<Word, InstructionError> {
        match self.args.as_ref() {
            [one] => Ok(one.clone()),
            _ => Err(self.err(format!("{} requires exactly one argument", self.name))),
        }
    }

    fn parse(self) -> Result<Command, InstructionError> {
        match self.name.as_ref() {
            "FROM" => self.parse_from(),
            "RUN" => self.parse_run(),
            "CMD" => {
                self.flags(&[])?;
                Ok(Command::Cmd(self.command_line()))
            }
            "ENTRYPOINT" => {
                self.flags(&[])?;
                Ok(Command::Entrypoint(self.command_line()))
            }
            "LABEL" => self.parse_key_values().map(Command::Label),
            "ENV" => self.parse_key_values().map(Command::Env),
            "MAINTAINER" => {
                self.flags(&[])?;
                Ok(Command::Maintainer(self.exactly_one()?.text))
            }
            "EXPOSE" => {
                self.flags(&[])?;
                self.at_least_one()?;
                Ok(Command::Expose(self.args.to_vec()))
            }
            "ADD" => self.parse_add(),
            "COPY" => self.parse_copy(),
            "VOLUME" => self.parse_volume(),
            "USER" => {
                self.flags(&[])?;
                Ok(Command::User(self.exactly_one()?))
            }
            "WORKDIR" => {
                self.flags(&[])?;
                Ok(Command::Workdir(self.exactly_one()?))
            }
            "STOPSIGNAL" => {
                self.flags(&[])?;
                Ok(Command::StopSignal(self.exactly_one()?))
            }
            "ARG" => self.parse_arg(),
            "ONBUILD" => self.parse_onbuild(),
            "HEALTHCHECK" => self.parse_healthcheck(),
            "SHELL" => self.parse_shell(),
            _ => Err(self.err_at(
                unknown_instruction_message(&self.node.keyword.text),
                self.node.keyword.span,
            )),
        }
    }

    fn command_line(&self) -> CommandLine {
        let texts: Vec<String> = self.args.iter().map(|w| w.text.clone()).collect();
        if self.node.json {
            CommandLine::Exec(texts)
        } else {
            CommandLine::Shell(texts.join(" "))
        }
    }

    fn parse_from(&self) -> Result<Command, InstructionError> {
        let flags = self.flags(&[("platform", FlagKind::String)])?;
        let name = match self.args.as_ref() {
            [_] => None,
            [_, as_kw, name] if as_kw.text.eq_ignore_ascii_case("as") => {
                let lower = name.text.to_lowercase();
                if !is_valid_stage_name(&lower) {
                    return Err(self.err_at(
                        format!(
                            "invalid name for build stage: {}, name can't start with a number or contain symbols",
                            crate::text::go_quote(&name.text)
                        ),
                        name.span,
                    ));
                }
                Some(Word {
                    text: lower,
                    span: name.span,
                })
            }
            _ => return Err(self.err("FROM requires either one or three arguments")),
        };
        let image = self.args.first().cloned().unwrap_or_else(|| Word {
            text: String::new(),
            span: self.span,
        });
        Ok(Command::From(From {
            image,
            name,
            platform: flags.word("platform"),
        }))
    }

    fn parse_run(&self) -> Result<Command, InstructionError> {
        let flags = self.flags(&[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ])?;
        if self.args.is_empty() {
            return Err(self.err("RUN requires at least one argument"));
        }
        let mut mounts = Vec::new();
        for value in flags.strings_with_spans("mount") {
            mounts.push(mount::parse_mount(&value.text).map_err(|m| self.err_at(m, value.span))?);
        }
        let network = match flags.word("network") {
            None => None,
            Some(w) => Some(match w.text.as_str() {
                "default" => NetworkMode::Default,
                "none" => NetworkMode::None,
                "host" => NetworkMode::Host,
                other => {
                    return Err(self.err_at(
                        format!("unsupported network mode {}", crate::text::go_quote(other)),
                        w.span,
                    ))
                }
            }),
        };
        let security = match flags.word("security") {
            None => None,
            Some(w) => Some(match w.text.as_str() {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                other => {
                    return Err(self.err_at(
                        format!("unsupported security mode {}", crate::text::go_quote(other)),
                        w.span,
                    ))
                }
            }),
        };
        let files = self
            .node
            .heredocs
            .iter()
            .map(inline_file)
            .collect::<Vec<_>>();
        Ok(Command::Run(Run {
            command: self.command_line(),
            files,
            mounts,
            network,
            security,
        }))
    }

    fn parse_key_values(&self) -> Result<Vec<KeyValue>, InstructionError> {
        self.flags(&[])?;
        self.at_least_one()?;
        if !self.args.len().is_multiple_of(3) {
            return Err(self.err(format!("Bad input to {}, too many arguments", self.name)));
        }
        let mut out = Vec::new();
        for triple in self.args.chunks_exact(3) {
            let [key, value, _sep] = triple else { continue };
            if key.text.is_empty() {
                return Err(self.err_at(format!("{} names can not be blank", self.name), key.span));
            }
            out.push(KeyValue {
                key: key.text.clone(),
                value: value.text.clone(),
                span: Span::new(key.span.start, value.span.end),
            });
        }
        Ok(out)
    }

    fn parse_volume(&self) -> Result<Command, InstructionError> {
        self.flags(&[])?;
        self.at_least_one()?;
        for v in self.args.iter() {
            if v.text.trim().is_empty() {
                return Err(self.err_at("VOLUME specified can not be an empty string", v.span));
            }
        }
        Ok(Command::Volume(self.args.to_vec()))
    }

    fn parse_arg(&self) -> Result<Command, InstructionError> {
        self.flags(&[])?;
        self.at_least_one()?;
        let mut out = Vec::new();
        for word in self.args.iter() {
            let (name, default) = match word.text.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (word.text.clone(), None),
            };
            if name.is_empty() {
                return Err(self.err_at("ARG names can not be blank", word.span));
            }
            out.push(ArgDecl {
                name,
                default,
                span: word.span,
            });
        }
        Ok(Command::Arg(out))
    }

    fn parse_onbuild(&self) -> Result<Command, InstructionError> {
        self.flags(&[])?;
        let Some(trigger) = self.args.first() else {
            return Err(self.err("ONBUILD requires at least one argument"));
        };
        let upper = trigger.text.trim().to_uppercase();
        match upper.as_str() {
            "ONBUILD" => {
                return Err(self.err_at(
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    trigger.span,
                ))
            }
            "MAINTAINER" | "FROM" => {
                return Err(self.err_at(
                    format!("{upper} isn't allowed as an ONBUILD trigger"),
                    trigger.span,
                ))
            }
            _ => {}
        }
        let original = self.node.original.trim_start();
        let expression = original
            .get(self.node.keyword.text.len()..)
            .unwrap_or("")
            .trim_start()
            .to_string();
        let mut expression = expression;
        for heredoc in &self.node.heredocs {
            expression.push('\n');
            expression.push_str(&heredoc.content);
            expression.push_str(&heredoc.name);
        }
        Ok(Command::Onbuild(expression))
    }

    fn parse_healthcheck(&self) -> Result<Command, InstructionError> {
        let Some(kind) = self.args.first() else {
            return Err(self.err("HEALTHCHECK requires at least one argument"));
        };
        let typ = kind.text.to_uppercase();
        let rest = &self.args[1..];
        if typ == "NONE" {
            if !rest.is_empty() {
                return Err(self.err("HEALTHCHECK NONE takes no arguments"));
            }
            return Ok(Command::Healthcheck(Healthcheck::None));
        }
        let flags = self.flags(&[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ])?;
        if typ != "CMD" {
            return Err(self.err_at(
                format!(
                    "Unknown type {} in HEALTHCHECK (try CMD)",
                    crate::text::go_quote(&typ)
                ),
                kind.span,
            ));
        }
        let mut test: Vec<String> = rest.iter().map(|w| w.text.clone()).collect();
        if test.is_empty() {
            return Err(self.err("Missing command after HEALTHCHECK CMD"));
        }
        if !self.node.json {
            test = vec!["CMD-SHELL".to_string(), test.join(" ")];
        } else {
            test.insert(0, "CMD".to_string());
        }
        let duration = |name: &'static str| -> Result<Option<Duration>, InstructionError> {
            let Some(w) = flags.word(name) else {
                return Ok(None);
            };
            parse_interval(&w.text, name).map_err(|m| self.err_at(m, w.span))
        };
        let retries = match flags.word("retries") {
            None => None,
            Some(w) => {
                let n: i64 = w.text.parse().map_err(|_| {
                    self.err_at(
                        format!(
                            "strconv.ParseInt: parsing {}: invalid syntax",
                            crate::text::go_quote(&w.text)
                        ),
                        w.span,
                    )
                })?;
                if n < 0 {
                    return Err(self.err_at(format!("--retries cannot be negative ({n})"), w.span));
                }
                Some(u32::try_from(n).map_err(|_| self.err_at("--retries is too large", w.span))?)
            }
        };
        Ok(Command::Healthcheck(Healthcheck::Check {
            test,
            interval: duration("interval")?,
            timeout: duration("timeout")?,
            start_period: duration("start-period")?,
            start_interval: duration("start-interval")?,
            retries,
        }))
    }

    fn parse_shell(&self) -> Result<Command, InstructionError> {
        self.flags(&[])?;
        if self.args.is_empty() {
            return Err(self.err("SHELL requires at least one argument"));
        }
        if !self.node.json {
            return Err(self.err("SHELL requires the arguments to be in JSON form"));
        }
        Ok(Command::Shell(
            self.args.iter().map(|w| w.text.clone()).collect(),
        ))
    }

    fn sources_and_dest(&self) -> Result<SourcesAndDest, InstructionError> {
        let Some((dest, sources)) = self.args.split_last() else {
            return Err(self.err(format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined",
                self.name
            )));
        };
        if sources.is_empty() {
            return Err(self.err(format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined",
                self.name
            )));
        }
        if matches!(parse_heredoc(&dest.text), Ok(Some(_))) {
            return Err(self.err_at(
                format!("{} cannot accept a heredoc as a destination", self.name),
                dest.span,
            ));
        }
        let mut paths = Vec::new();
        let mut inline = Vec::new();
        for src in sources {
            match parse_heredoc(&src.text) {
                Ok(Some(doc)) => {
                    let body = self.node.heredocs.iter().find(|h| h.name == doc.name);
                    let mut file = body.map(inline_file).unwrap_or(InlineFile {
                        name: doc.name.clone(),
                        data: String::new(),
                        expand: doc.expand,
                    });
                    file.expand = doc.expand;
                    inline.push(file);
                }
                _ => paths.push(src.clone()),
            }
        }
        Ok(SourcesAndDest {
            sources: paths,
            inline,
            dest: dest.clone(),
        })
    }

    fn parse_copy(&self) -> Result<Command, InstructionError> {
        let flags = self.flags(&[
            ("from", FlagKind::String),
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ])?;
        let paths = self.sources_and_dest()?;
        let chmod = self.checked_chmod(&flags)?;
        Ok(Command::Copy(Copy {
            paths,
            from: flags.string("from"),
            chown: flags.string("chown"),
            chmod,
            link: flags.bool("link"),
            parents: flags.bool("parents"),
            exclude: flags.strings("exclude"),
        }))
    }

    fn parse_add(&self) -> Result<Command, InstructionError> {
        let flags = self.flags(&[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("exclude", FlagKind::Strings),
            ("unpack", FlagKind::Bool),
        ])?;
        let paths = self.sources_and_dest()?;
        let chmod = self.checked_chmod(&flags)?;
        Ok(Command::Add(Add {
            paths,
            chown: flags.string("chown"),
            chmod,
            link: flags.bool("link"),
            keep_git_dir: flags.bool("keep-git-dir"),
            checksum: flags.string("checksum"),
            exclude: flags.strings("exclude"),
            unpack: flags.is_set("unpack").then(|| flags.bool("unpack")),
        }))
    }

    fn checked_chmod(&self, flags: &FlagSet) -> Result<Option<String>, InstructionError> {
        let Some(w) = flags.word("chmod") else {
            return Ok(None);
        };
        if !is_valid_chmod(&w.text) && !w.text.contains('$') {
            return Err(self.err_at(
                format!(
                    "invalid chmod parameter: {}",
                    crate::text::go_quote(&w.text)
                ),
                w.span,
            ));
        }
        Ok(Some(w.text))
    }
}

/// The keywords of the Dockerfile reference.
pub const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// `unknown instruction: X`, with a "did you mean" for near misses.
fn unknown_instruction_message(keyword: &str) -> String {
    let upper = keyword.to_uppercase();
    let best = KEYWORDS
        .iter()
        .map(|k| (flags::edit_distance(&upper, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2 + 1)
        .min();
    match best {
        Some((_, k)) => format!(
            "unknown instruction: {keyword} (did you mean {}?)",
            if keyword == upper {
                k.to_string()
            } else {
                k.to_lowercase()
            }
        ),
        None => format!("unknown instruction: {keyword}"),
    }
}

fn inline_file(heredoc: &Heredoc) -> InlineFile {
    InlineFile {
        name: heredoc.name.clone(),
        data: if heredoc.chomp {
            chomp_content(&heredoc.content)
        } else {
            heredoc.content.clone()
        },
        expand: heredoc.expand,
    }
}

/// `^[a-z][a-z0-9-_.]*$`.
pub fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

/// An octal mode (`755`, `0644`) or a symbolic one (`u+x,go-w`).
fn is_valid_chmod(s: &str) -> bool {
    if !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(s, 8).is_ok_and(|m| m <= 0o7777);
    }
    !s.is_empty()
        && s.split(',').all(|clause| {
            let who_len = clause.len() - clause.trim_start_matches(['u', 'g', 'o', 'a']).len();
            let rest = &clause[who_len..];
            let mut ops = rest.chars().peekable();
            let mut saw_op = false;
            while let Some(op) = ops.next() {
                if !matches!(op, '+' | '-' | '=') {
                    return false;
                }
                saw_op = true;
                while let Some(&p) = ops.peek() {
                    if matches!(p, 'r' | 'w' | 'x' | 'X' | 's' | 't') {
                        ops.next();
                    } else {
                        break;
                    }
                }
            }
            saw_op
        })
}

/// Go's `time.ParseDuration` with HEALTHCHECK's bounds.
fn parse_interval(text: &str, flag: &str) -> Result<Option<Duration>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let nanos = parse_go_duration(text)
        .ok_or_else(|| format!("time: invalid duration {}", crate::text::go_quote(text)))?;
    if nanos < 0 {
        return Err(format!(
            "Interval {} cannot be negative",
            crate::text::go_quote(flag)
        ));
    }
    if nanos == 0 {
        return Ok(None);
    }
    if nanos < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            crate::text::go_quote(flag)
        ));
    }
    Ok(Some(Duration::from_nanos(nanos.unsigned_abs())))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * scale;
        rest = after;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let v = total as i64;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("x"), None);
    }

    #[test]
    fn chmod_forms() {
        assert!(is_valid_chmod("755"));
        assert!(is_valid_chmod("0644"));
        assert!(is_valid_chmod("u+x,go-w"));
        assert!(!is_valid_chmod("999"));
        assert!(!is_valid_chmod("abc"));
    }

    #[test]
    fn stage_names() {
        assert!(is_valid_stage_name("build-1.x_y"));
        assert!(!is_valid_stage_name("1build"));
        assert!(!is_valid_stage_name("a/b"));
    }
}
