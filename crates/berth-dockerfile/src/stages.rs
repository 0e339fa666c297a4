//! Build stages: global ARGs before the first `FROM`, one [`Stage`] per
//! `FROM`, stage names and indices, ARG scoping and the expansion of each
//! instruction's arguments with the variables in scope.
//!
//! Which arguments expand follows BuildKit: `FROM` (image, platform; global
//! ARGs only), `ENV`/`LABEL`/`ARG` (keys and values), `COPY`/`ADD` (sources,
//! destination, `--from`, `--chown`, `--chmod`, `--exclude`, `--checksum`),
//! `EXPOSE`, `VOLUME`, `USER`, `WORKDIR`, `STOPSIGNAL`, and `RUN --mount`
//! fields. `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` and `ONBUILD`
//! are left for the shell in the container (or the image that inherits them).

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Dockerfile, Word};
use crate::instructions::{parse_instruction, ArgDecl, Command, From, InstructionError, KeyValue};
use crate::shell::{EnvLookup, ExpandError, Lexer};
use crate::span::Span;

/// ARGs every build defines without an `ARG` line (BuildKit's built-ins).
pub const PLATFORM_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Build args that are usable without being declared and never recorded.
pub const PREDEFINED_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// One instruction of a stage, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct StageInstruction {
    pub command: Command,
    /// Where the keyword stands.
    pub keyword_span: Span,
    pub span: Span,
}

/// A build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    pub from: From,
    pub span: Span,
    pub instructions: Vec<StageInstruction>,
}

/// A whole build: global ARGs and stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
    pub escape: char,
}

/// What a `FROM`, `COPY --from` or `RUN --mount from=` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRef {
    Stage(usize),
    Image(String),
}

/// Types every instruction and groups them into stages. All instruction
/// errors are collected.
pub fn plan(df: &Dockerfile) -> Result<Plan, Vec<InstructionError>> {
    let (plan, errors) = plan_lenient(df);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Like [`plan`], but keeps going: instructions that fail to validate are
/// left out of the plan and returned as errors (for lint).
pub fn plan_lenient(df: &Dockerfile) -> (Plan, Vec<InstructionError>) {
    let mut errors = Vec::new();
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &df.instructions {
        let command = match parse_instruction(node) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match command {
            Command::From(from) => {
                if let Some(name) = &from.name {
                    if stages
                        .iter()
                        .any(|s| s.name.as_deref() == Some(name.text.as_str()))
                    {
                        errors.push(InstructionError::new(
                            format!("duplicate stage name {}", crate::text::go_quote(&name.text)),
                            name.span,
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: from.name.as_ref().map(|n| n.text.clone()),
                    from,
                    span: node.span,
                    instructions: Vec::new(),
                });
            }
            command => match stages.last_mut() {
                Some(stage) => {
                    stage.span.end = node.span.end;
                    stage.instructions.push(StageInstruction {
                        command,
                        keyword_span: node.keyword.span,
                        span: node.span,
                    });
                }
                None => match command {
                    Command::Arg(args) => meta_args.extend(args),
                    _ => errors.push(InstructionError::new(
                        "no build stage in current context",
                        node.span,
                    )),
                },
            },
        }
    }
    if stages.is_empty() && errors.is_empty() {
        errors.push(InstructionError::new(
            "no build stage in current context",
            df.span,
        ));
    }
    let plan = Plan {
        meta_args,
        stages,
        escape: df.escape(),
    };
    (plan, errors)
}

/// Variables in scope, in order; later entries win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        Env::default()
    }

    /// Sets (or replaces) a variable.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(entry) = self.vars.iter_mut().find(|(k, _)| k == key) {
            entry.1 = value.to_string();
        } else {
            self.vars.push((key.to_string(), value.to_string()));
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `KEY=value` pairs in definition order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.vars
    }
}

impl EnvLookup for Env {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// A variable used but not defined, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undefined {
    pub name: String,
    pub span: Span,
}

/// An expansion failure with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ExpansionError {
    pub error: ExpandError,
    pub span: Span,
}

/// A stage with every expandable argument expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedStage {
    pub index: usize,
    pub base: String,
    pub platform: Option<String>,
    pub commands: Vec<(Command, Span)>,
    /// The environment at the end of the stage (ENV and ARG values).
    pub env: Env,
    /// Variables referenced but not defined (for lint).
    pub undefined: Vec<Undefined>,
}

impl Plan {
    /// The index of stage `name` (case-insensitive) or a numeric index.
    pub fn find_stage(&self, reference: &str) -> Option<usize> {
        let lower = reference.to_lowercase();
        if let Some(s) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&lower))
        {
            return Some(s.index);
        }
        reference
            .parse::<usize>()
            .ok()
            .filter(|&i| i < self.stages.len())
    }

    /// What `reference` means in stage `current`. `FROM` sees only earlier
    /// stages; `COPY --from` and `RUN --mount from=` see every stage.
    pub fn resolve(&self, reference: &str, current: usize, only_earlier: bool) -> StageRef {
        match self.find_stage(reference) {
            Some(i) if !only_earlier || i < current => StageRef::Stage(i),
            _ => StageRef::Image(reference.to_string()),
        }
    }

    /// The stages an expanded stage needs: its base and every `--from`.
    pub fn dependencies(&self, stage: &ExpandedStage) -> Vec<usize> {
        let mut deps = Vec::new();
        if let StageRef::Stage(i) = self.resolve(&stage.base, stage.index, true) {
            deps.push(i);
        }
        for (command, _) in &stage.commands {
            let refs: Vec<&str> = match command {
                Command::Copy(c) => c.from.as_deref().into_iter().collect(),
                Command::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
                _ => Vec::new(),
            };
            for r in refs {
                if let StageRef::Stage(i) = self.resolve(r, stage.index, false) {
                    // A stage naming itself is reported where it does so.
                    if i != stage.index && !deps.contains(&i) {
                        deps.push(i);
                    }
                }
            }
        }
        deps
    }

    /// A stage that depends on itself through `deps` (indexed by stage).
    pub fn find_cycle(deps: &[Vec<usize>]) -> Option<usize> {
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; deps.len()];
        for root in 0..deps.len() {
            if state.get(root) != Some(&0) {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            if let Some(s) = state.get_mut(root) {
                *s = 1;
            }
            while let Some((node, next)) = stack.pop() {
                let Some(&child) = deps.get(node).and_then(|d| d.get(next)) else {
                    if let Some(s) = state.get_mut(node) {
                        *s = 2;
                    }
                    continue;
                };
                stack.push((node, next + 1));
                match state.get(child) {
                    Some(1) => return Some(child),
                    Some(0) => {
                        if let Some(s) = state.get_mut(child) {
                            *s = 1;
                        }
                        stack.push((child, 0));
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// The stage to build: `target` by name, or the last one.
    pub fn target(&self, target: Option<&str>) -> Result<usize, String> {
        match target {
            None => self
                .stages
                .len()
                .checked_sub(1)
                .ok_or_else(|| "no build stage".to_string()),
            Some(t) => {
                let lower = t.to_lowercase();
                self.stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(&lower))
                    .map(|s| s.index)
                    .ok_or_else(|| {
                        format!(
                            "target stage {} could not be found",
                            crate::text::go_quote(t)
                        )
                    })
            }
        }
    }

    /// The global (meta) ARGs' values: build args override defaults, and
    /// defaults expand with the ARGs before them.
    pub fn meta_env(
        &self,
        build_args: &BTreeMap<String, String>,
        builtins: &Env,
    ) -> Result<Env, ExpansionError> {
        let lexer = Lexer::new(self.escape);
        let mut env = builtins.clone();
        for arg in &self.meta_args {
            let value = match (build_args.get(&arg.name), &arg.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(lexer.process_word(default, &env).map_err(
                    |error| ExpansionError {
                        error,
                        span: arg.span,
                    },
                )?),
                (None, None) => None,
            };
            if let Some(v) = value {
                env.set(&arg.name, &v);
            }
        }
        Ok(env)
    }

    /// Expands `stage` with the given build args and the meta environment
    /// from [`Plan::meta_env`].
    pub fn expand_stage(
        &self,
        stage: &Stage,
        build_args: &BTreeMap<String, String>,
        meta: &Env,
    ) -> Result<ExpandedStage, ExpansionError> {
        let mut ex = Expander {
            lexer: Lexer::new(self.escape),
            undefined: Vec::new(),
            env: meta.clone(),
            span: stage.span,
        };
        let base = ex.word(&stage.from.image.text, stage.from.image.span)?;
        let platform = match &stage.from.platform {
            Some(p) => Some(ex.word(&p.text, p.span)?),
            None => None,
        };
        let meta_names: BTreeSet<&str> = self.meta_args.iter().map(|a| a.name.as_str()).collect();
        // A stage starts with no ARGs or ENVs of its own: the base image's
        // ENV is added by the builder.
        ex.env = Env::new();
        let mut commands = Vec::new();
        for inst in &stage.instructions {
            ex.span = inst.span;
            let expanded = match &inst.command {
                Command::Arg(args) => {
                    let mut out = Vec::new();
                    for a in args {
                        let name = ex.word(&a.name, a.span)?;
                        let default = match &a.default {
                            Some(d) => Some(ex.word(d, a.span)?),
                            None => None,
                        };
                        let value = build_args
                            .get(&name)
                            .cloned()
                            .or_else(|| default.clone())
                            .or_else(|| {
                                meta_names
                                    .contains(name.as_str())
                                    .then(|| meta.get(&name).map(str::to_string))
                                    .flatten()
                            })
                            .or_else(|| {
                                PLATFORM_ARGS
                                    .contains(&name.as_str())
                                    .then(|| meta.get(&name).map(str::to_string))
                                    .flatten()
                            });
                        if let Some(v) = &value {
                            ex.env.set(&name, v);
                        }
                        out.push(ArgDecl {
                            name,
                            default: value,
                            span: a.span,
                        });
                    }
                    Command::Arg(out)
                }
                other => {
                    let expanded = ex.command(other)?;
                    if let Command::Env(kvs) = &expanded {
                        for kv in kvs {
                            ex.env.set(&kv.key, &kv.value);
                        }
                    }
                    expanded
                }
            };
            commands.push((expanded, inst.span));
        }
        Ok(ExpandedStage {
            index: stage.index,
            base,
            platform,
            commands,
            env: ex.env,
            undefined: ex.undefined,
        })
    }
}

/// Expands the arguments of one instruction that expand (see the module
/// docs) with `env`; returns it with the variables that were not defined.
/// ARG is returned as is: its values depend on build args and scope.
pub fn expand_command(
    command: &Command,
    escape: char,
    env: &Env,
) -> Result<(Command, Vec<Undefined>), ExpansionError> {
    let mut ex = Expander {
        lexer: Lexer::new(escape),
        env: env.clone(),
        undefined: Vec::new(),
        span: Span::default(),
    };
    let expanded = ex.command(command)?;
    Ok((expanded, ex.undefined))
}

/// Expands words with the variables in scope, remembering undefined ones.
struct Expander {
    lexer: Lexer,
    env: Env,
    undefined: Vec<Undefined>,
    span: Span,
}

impl Expander {
    /// One instruction with its expandable arguments expanded (ARG and the
    /// environment updates of ENV are the caller's).
    fn command(&mut self, command: &Command) -> Result<Command, ExpansionError> {
        Ok(match command {
            Command::Env(kvs) => Command::Env(self.key_values(kvs)?),
            Command::Label(kvs) => Command::Label(self.key_values(kvs)?),
            Command::Copy(c) => {
                let mut c = c.clone();
                self.words(&mut c.paths.sources)?;
                self.in_place(&mut c.paths.dest.text, c.paths.dest.span)?;
                self.opt(&mut c.from)?;
                self.opt(&mut c.chown)?;
                self.opt(&mut c.chmod)?;
                self.strings(&mut c.exclude)?;
                Command::Copy(c)
            }
            Command::Add(a) => {
                let mut a = a.clone();
                self.words(&mut a.paths.sources)?;
                self.in_place(&mut a.paths.dest.text, a.paths.dest.span)?;
                self.opt(&mut a.chown)?;
                self.opt(&mut a.chmod)?;
                self.opt(&mut a.checksum)?;
                self.strings(&mut a.exclude)?;
                Command::Add(a)
            }
            Command::Expose(ports) => {
                let mut ports = ports.clone();
                self.words(&mut ports)?;
                Command::Expose(ports)
            }
            Command::Volume(vols) => {
                let mut vols = vols.clone();
                self.words(&mut vols)?;
                Command::Volume(vols)
            }
            Command::User(w) => Command::User(self.one(w)?),
            Command::Workdir(w) => Command::Workdir(self.one(w)?),
            Command::StopSignal(w) => Command::StopSignal(self.one(w)?),
            Command::Run(r) => {
                let mut r = r.clone();
                for m in &mut r.mounts {
                    self.opt(&mut m.target)?;
                    self.opt(&mut m.source)?;
                    self.opt(&mut m.from)?;
                    self.opt(&mut m.id)?;
                }
                Command::Run(r)
            }
            other => other.clone(),
        })
    }

    fn word(&mut self, text: &str, span: Span) -> Result<String, ExpansionError> {
        let mut owned = text.to_string();
        self.in_place(&mut owned, span)?;
        Ok(owned)
    }

    /// Expands `text` where it stands; words without `$`, quotes or escapes
    /// are left alone (no allocation).
    fn in_place(&mut self, text: &mut String, span: Span) -> Result<(), ExpansionError> {
        if !text.contains(['$', '\'', '"', self.lexer.escape, '\u{feff}']) {
            return Ok(());
        }
        let expanded = self
            .lexer
            .process_word_tracking(text, &self.env)
            .map_err(|error| ExpansionError { error, span })?;
        for name in expanded.unmatched {
            if !PREDEFINED_ARGS.contains(&name.as_str()) {
                self.undefined.push(Undefined { name, span });
            }
        }
        *text = expanded.word;
        Ok(())
    }

    fn one(&mut self, w: &Word) -> Result<Word, ExpansionError> {
        let mut w = w.clone();
        self.in_place(&mut w.text, w.span)?;
        Ok(w)
    }

    fn words(&mut self, words: &mut [Word]) -> Result<(), ExpansionError> {
        for w in words {
            self.in_place(&mut w.text, w.span)?;
        }
        Ok(())
    }

    fn strings(&mut self, values: &mut [String]) -> Result<(), ExpansionError> {
        let span = self.span;
        for v in values {
            self.in_place(v, span)?;
        }
        Ok(())
    }

    fn opt(&mut self, value: &mut Option<String>) -> Result<(), ExpansionError> {
        if let Some(v) = value {
            let span = self.span;
            self.in_place(v, span)?;
        }
        Ok(())
    }

    fn key_values(&mut self, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, ExpansionError> {
        kvs.iter()
            .map(|kv| {
                let mut kv = kv.clone();
                self.in_place(&mut kv.key, kv.span)?;
                self.in_place(&mut kv.value, kv.span)?;
                Ok(kv)
            })
            .collect()
    }
}

/// The built-in platform ARGs for building `os/arch[/variant]` on the same
/// platform.
pub fn platform_args(os: &str, arch: &str, variant: &str) -> Env {
    let platform = if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    };
    let mut env = Env::new();
    for prefix in ["BUILD", "TARGET"] {
        env.set(&format!("{prefix}PLATFORM"), &platform);
        env.set(&format!("{prefix}OS"), os);
        env.set(&format!("{prefix}ARCH"), arch);
        env.set(&format!("{prefix}VARIANT"), variant);
    }
    env
}
