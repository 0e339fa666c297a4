//! The build driver: preflight (parse, type, stage graph), then each
//! needed stage in dependency order, each step looked up in the cache or
//! run, then the final image recorded.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Instant;

use berth_dockerfile::instructions::{Command, CommandLine, InlineFile};
use berth_dockerfile::lint::{render_finding, Finding, Severity};
use berth_dockerfile::stages::{self, Env, Plan, StageRef};
use berth_dockerfile::Span;
use berth_oci::{chain_ids, ContainerConfig, Digest, History, ImageConfig, Platform, RootFs};
use berth_runtime::NetworkNamespace;
use berth_store::{CacheRecord, LayerRecord};

use crate::config_edit::{join_workdir, ConfigEditor, DEFAULT_SHELL};
use crate::context::{source_trees, stat_key, Context, SourceEntry};
use crate::copy::{self, Attrs, CopyPlan, Source};
use crate::layer::{ReadView, StepDir};
use crate::{exec, history, BuildOptions, BuildOutput, Error, ImageBackend, ProgressMode, Result};

/// The comment BuildKit puts on every history entry it writes.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// Marks a cache record of a step that changed nothing.
const EMPTY_LAYER: &str = "empty";

/// A stage's image as the build goes.
#[derive(Debug, Clone)]
struct State {
    config: ImageConfig,
    layers: Vec<LayerRecord>,
    chain: Option<Digest>,
    /// The history time of the last step (cached steps keep theirs, so a
    /// no-op rebuild gives the same image ID).
    time: String,
}

impl State {
    fn container(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn container_ref(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    fn diff_ids(&self) -> Vec<Digest> {
        self.config.diff_ids().to_vec()
    }

    fn push_history(&mut self, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: Some(self.time.clone()),
            created_by,
            comment: HISTORY_COMMENT.into(),
            empty_layer,
            ..History::default()
        });
    }
}

/// Plain progress output, BuildKit style.
struct Progress<'w> {
    out: &'w mut dyn Write,
    quiet: bool,
    next: usize,
}

impl Progress<'_> {
    fn start(&mut self, name: &str) -> (usize, Instant) {
        self.next += 1;
        if !self.quiet {
            let _ = writeln!(self.out, "#{} {name}", self.next);
        }
        (self.next, Instant::now())
    }

    fn line(&mut self, n: usize, since: Instant, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} {:.3} {text}", since.elapsed().as_secs_f64());
        }
    }

    fn note(&mut self, n: usize, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} {text}");
        }
    }

    fn done(&mut self, n: usize, since: Instant) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} DONE {:.1}s", since.elapsed().as_secs_f64());
            let _ = writeln!(self.out);
        }
    }

    fn cached(&mut self, n: usize) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} CACHED");
            let _ = writeln!(self.out);
        }
    }
}

struct Builder<'a, 'w> {
    backend: &'a mut dyn ImageBackend,
    context: &'a Context,
    opts: &'a BuildOptions,
    plan: Plan,
    /// The stages each stage needs (its base and `--from`s).
    deps: Vec<Vec<usize>>,
    meta_env: Env,
    file: String,
    lines: Vec<String>,
    done: HashMap<usize, State>,
    progress: Progress<'w>,
    epoch: Option<i64>,
    build_time: String,
    steps: usize,
    cached: usize,
    /// Context checksums learnt this build, written at the end.
    new_sums: Vec<(String, String, String)>,
    /// ARG names declared by the stages that were built.
    consumed: std::collections::BTreeSet<String>,
}

/// Runs a build: `context` supplies the files, `opts` the Dockerfile and
/// flags; progress goes to `progress`. Must run in a single-threaded
/// process (RUN starts containers with `berth-launch`).
pub fn build(
    backend: &mut dyn ImageBackend,
    context: &mut Context,
    opts: &BuildOptions,
    progress: &mut dyn Write,
) -> Result<BuildOutput> {
    if let Some(p) = &opts.platform {
        let wanted = Platform::parse(p)
            .map_err(|e| Error::Invalid(format!("invalid platform {p:?}: {e}")))?
            .normalize();
        let host = Platform::host().normalize();
        if wanted.os != host.os || wanted.architecture != host.architecture {
            return Err(Error::Unsupported(format!(
                "platform {p} is not supported: berth builds for {}/{} only (no emulation)",
                host.os, host.architecture
            )));
        }
    }
    let mut progress = Progress {
        out: progress,
        quiet: opts.progress == ProgressMode::Quiet,
        next: 0,
    };
    let (n, t) = progress.start("[internal] load build definition from Dockerfile");
    let (file, dockerfile_rel, bytes) = context.read_dockerfile(&opts.dockerfile)?;
    context.load_ignore(&dockerfile_rel)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let render = |message: String, span: Span| {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let finding = Finding {
            severity: Severity::Error,
            rule: "",
            message,
            span,
        };
        Error::Dockerfile(render_finding(&file, &refs, &finding).trim_end().replacen(
            ": error: ",
            ": ",
            1,
        ))
    };
    let df = berth_dockerfile::parse(&bytes).map_err(|e| render(e.message(), e.span))?;
    let plan = match stages::plan(&df) {
        Ok(p) => p,
        Err(errors) => {
            let first = errors
                .into_iter()
                .next()
                .ok_or_else(|| Error::Invalid("invalid Dockerfile".into()))?;
            return Err(render(first.message, first.span));
        }
    };
    progress.done(n, t);

    let host = Platform::host();
    let builtins = stages::platform_args(&host.os, &host.architecture, &host.variant);
    let meta_env = plan
        .meta_env(&opts.build_args, &builtins)
        .map_err(|e| render(e.to_string(), e.span))?;
    let target = plan
        .target(opts.target.as_deref())
        .map_err(Error::Invalid)?;

    // Preflight: every stage expands, and the graph has no cycle.
    let mut deps = Vec::new();
    for stage in &plan.stages {
        let expanded = plan
            .expand_stage(stage, &opts.build_args, &meta_env)
            .map_err(|e| render(e.to_string(), e.span))?;
        deps.push(plan.dependencies(&expanded));
    }
    if let Some(cycle) = Plan::find_cycle(&deps) {
        return Err(Error::Invalid(format!(
            "circular dependency detected on stage: {}",
            plan.stages
                .get(cycle)
                .and_then(|s| s.name.clone())
                .unwrap_or_else(|| cycle.to_string())
        )));
    }

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    let build_time = now_rfc3339(epoch);
    let _guard = backend.store().begin_write()?;
    let mut builder = Builder {
        backend,
        context,
        opts,
        plan,
        deps,
        meta_env,
        file,
        lines,
        done: HashMap::new(),
        progress,
        epoch,
        build_time,
        steps: 0,
        cached: 0,
        new_sums: Vec::new(),
        consumed: std::collections::BTreeSet::new(),
    };
    let result = builder.stage(target, &mut Vec::new());
    if result.is_ok() {
        let unused: Vec<&str> = opts
            .build_args
            .keys()
            .map(String::as_str)
            .filter(|k| {
                !builder.consumed.contains(*k)
                    && !stages::PREDEFINED_ARGS.contains(k)
                    && !builder.plan.meta_args.iter().any(|a| a.name == *k)
            })
            .collect();
        if !unused.is_empty() && !builder.progress.quiet {
            let _ = writeln!(
                builder.progress.out,
                "[Warning] One or more build-args [{}] were not consumed",
                unused.join(" ")
            );
        }
    }
    let sums = std::mem::take(&mut builder.new_sums);
    builder
        .backend
        .store_mut()
        .meta_mut()
        .put_context_sums(&sums)?;
    let mut state = result?;

    let (n, t) = builder.progress.start("exporting to image");
    for (k, v) in &opts.labels {
        state.container().labels.insert(k.clone(), v.clone());
    }
    state.config.created = Some(state.time.clone());
    if state.config.architecture.is_empty() {
        state.config.architecture = host.architecture.clone();
    }
    if state.config.os.is_empty() {
        state.config.os = "linux".into();
    }
    let config_bytes = state.config.to_canonical_json()?;
    let id = builder
        .backend
        .store_image(&config_bytes, &state.config, &state.layers)?;
    builder
        .progress
        .note(n, &format!("writing image {id} done"));
    builder.progress.done(n, t);
    Ok(BuildOutput {
        id,
        steps: builder.steps,
        cached: builder.cached,
    })
}

fn now_rfc3339(epoch: Option<i64>) -> String {
    let (secs, nanos) = match epoch {
        Some(e) => (e, 0),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos())),
    };
    rfc3339(secs, nanos)
}

/// RFC 3339 in UTC with nanoseconds, as Docker writes times.
fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The instruction words BuildKit shows for a step.
fn describe(command: &Command) -> String {
    match command {
        Command::Run(r) => match &r.command {
            CommandLine::Shell(s) => format!("RUN {s}"),
            CommandLine::Exec(v) => format!("RUN {}", serde_json::to_string(v).unwrap_or_default()),
        },
        Command::Copy(c) => {
            let mut s = String::from("COPY ");
            if let Some(f) = &c.from {
                s.push_str(&format!("--from={f} "));
            }
            if let Some(o) = &c.chown {
                s.push_str(&format!("--chown={o} "));
            }
            if let Some(m) = &c.chmod {
                s.push_str(&format!("--chmod={m} "));
            }
            for e in &c.exclude {
                s.push_str(&format!("--exclude={e} "));
            }
            if c.parents {
                s.push_str("--parents ");
            }
            for w in &c.paths.sources {
                s.push_str(&w.text);
                s.push(' ');
            }
            for f in &c.paths.inline {
                s.push_str(&format!("<<{} ", f.name));
            }
            s.push_str(&c.paths.dest.text);
            s
        }
        Command::Add(a) => {
            let mut s = String::from("ADD ");
            if let Some(o) = &a.chown {
                s.push_str(&format!("--chown={o} "));
            }
            if let Some(m) = &a.chmod {
                s.push_str(&format!("--chmod={m} "));
            }
            for w in &a.paths.sources {
                s.push_str(&w.text);
                s.push(' ');
            }
            s.push_str(&a.paths.dest.text);
            s
        }
        Command::Workdir(w) => format!("WORKDIR {}", w.text),
        other => other.name().to_string(),
    }
}

/// A COPY or ADD, unified.
struct CopyArgs<'c> {
    sources: Vec<String>,
    inline: &'c [InlineFile],
    dest: String,
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<String>,
    exclude: Vec<String>,
    parents: bool,
    add: bool,
}

impl<'a, 'w> Builder<'a, 'w> {
    fn err_at(&self, message: impl Into<String>, span: Span) -> Error {
        let refs: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let finding = Finding {
            severity: Severity::Error,
            rule: "",
            message: message.into(),
            span,
        };
        Error::Dockerfile(
            render_finding(&self.file, &refs, &finding)
                .trim_end()
                .replacen(": error: ", ": ", 1),
        )
    }

    /// The state of stage `index`, built (with its dependencies) on first
    /// use.
    fn stage(&mut self, index: usize, path: &mut Vec<usize>) -> Result<State> {
        if let Some(s) = self.done.get(&index) {
            return Ok(s.clone());
        }
        if path.contains(&index) {
            return Err(Error::Invalid(format!(
                "circular dependency detected on stage: {index}"
            )));
        }
        path.push(index);
        let state = self.run_stage(index, path);
        path.pop();
        let state = state?;
        self.done.insert(index, state.clone());
        Ok(state)
    }

    fn stage_label(&self, index: usize, step: usize, total: usize) -> String {
        let name = self
            .plan
            .stages
            .get(index)
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| format!("stage-{index}"));
        if self.plan.stages.len() == 1 {
            format!("[{step}/{total}]")
        } else {
            format!("[{name} {step}/{total}]")
        }
    }

    fn run_stage(&mut self, index: usize, path: &mut Vec<usize>) -> Result<State> {
        let stage = self
            .plan
            .stages
            .get(index)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("no stage {index}")))?;
        let total = 1 + stage
            .instructions
            .iter()
            .filter(|i| {
                matches!(
                    i.command,
                    Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_)
                )
            })
            .count();
        let mut step_no = 1;
        // Stages this one needs are built first (as BuildKit schedules them).
        for dep in self.deps.get(index).cloned().unwrap_or_default() {
            self.stage(dep, path)?;
        }
        // FROM, expanded with the global ARGs only.
        let base_name = berth_dockerfile::shell::Lexer::new(self.plan.escape)
            .process_word(&stage.from.image.text, &self.meta_env)
            .map_err(|e| self.err_at(e.to_string(), stage.from.image.span))?;
        let mut state = match self.plan.resolve(&base_name, index, true) {
            StageRef::Stage(i) => self.stage(i, path)?,
            StageRef::Image(name) => {
                let label = format!("{} FROM {name}", self.stage_label(index, step_no, total));
                let (n, t) = self.progress.start(&label);
                let state = self.base_image(&name, stage.from.image.span)?;
                self.progress.done(n, t);
                state
            }
        };
        // A stage's history time starts at the base's.
        if state.time.is_empty() {
            state.time = self.build_time.clone();
        }
        // BuildKit gives every stage a PATH when its base has none.
        let container = state.container();
        if !container.env.iter().any(|e| e.starts_with("PATH=")) {
            container
                .env
                .insert(0, format!("PATH={}", berth_runtime::spec::DEFAULT_PATH));
        }
        // The base's ONBUILD triggers run first, and are not inherited.
        let triggers = std::mem::take(&mut state.container().on_build);
        let mut instructions = Vec::new();
        for trigger in &triggers {
            let df = berth_dockerfile::parse_str(trigger).map_err(|e| {
                self.err_at(format!("ONBUILD {trigger}: {}", e.message()), stage.span)
            })?;
            for node in &df.instructions {
                let command = berth_dockerfile::instructions::parse_instruction(node)
                    .map_err(|e| self.err_at(format!("ONBUILD {trigger}: {e}"), stage.span))?;
                instructions.push((
                    berth_dockerfile::stages::StageInstruction {
                        command,
                        keyword_span: stage.from.image.span,
                        span: stage.from.image.span,
                    },
                    true,
                ));
            }
        }
        instructions.extend(stage.instructions.iter().cloned().map(|i| (i, false)));
        let mut args = Env::new();
        // Whether this stage set CMD (a later ENTRYPOINT then keeps it).
        let mut cmd_set = false;
        let meta_names: Vec<String> = self.plan.meta_args.iter().map(|a| a.name.clone()).collect();
        for (inst, is_trigger) in &instructions {
            let span = inst.span;
            if let Command::Arg(decls) = &inst.command {
                let mut resolved = Vec::new();
                for decl in decls {
                    self.consumed.insert(decl.name.clone());
                    let env = self.expansion_env(&args, &state);
                    let default = match &decl.default {
                        Some(d) => Some(
                            berth_dockerfile::shell::Lexer::new(self.plan.escape)
                                .process_word(d, &env)
                                .map_err(|e| self.err_at(e.to_string(), span))?,
                        ),
                        None => None,
                    };
                    let value = self
                        .opts
                        .build_args
                        .get(&decl.name)
                        .cloned()
                        .or(default)
                        .or_else(|| {
                            meta_names
                                .contains(&decl.name)
                                .then(|| self.meta_env.get(&decl.name).map(str::to_string))
                                .flatten()
                        })
                        .or_else(|| {
                            stages::PLATFORM_ARGS
                                .contains(&decl.name.as_str())
                                .then(|| self.meta_env.get(&decl.name).map(str::to_string))
                                .flatten()
                        });
                    if let Some(v) = &value {
                        args.set(&decl.name, v);
                    }
                    resolved.push(berth_dockerfile::instructions::ArgDecl {
                        name: decl.name.clone(),
                        default: value,
                        span: decl.span,
                    });
                }
                let created_by = history::metadata(&Command::Arg(resolved), None);
                state.push_history(created_by, true);
                continue;
            }
            let env = self.expansion_env(&args, &state);
            let (command, _) = stages::expand_command(&inst.command, self.plan.escape, &env)
                .map_err(|e| self.err_at(e.to_string(), span))?;
            match &command {
                Command::Run(_) | Command::Copy(_) | Command::Add(_) | Command::Workdir(_) => {
                    let label = if *is_trigger {
                        format!(
                            "{} ONBUILD {}",
                            self.stage_label(index, step_no, total),
                            describe(&command)
                        )
                    } else {
                        step_no += 1;
                        format!(
                            "{} {}",
                            self.stage_label(index, step_no, total),
                            describe(&command)
                        )
                    };
                    self.fs_step(index, &command, &label, &args, &mut state, span, path)?;
                }
                other => {
                    let mut container = state.container_ref();
                    let shell = if container.shell.is_empty() {
                        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
                    } else {
                        container.shell.clone()
                    };
                    let mut editor = ConfigEditor::with_cmd_set(&mut container, cmd_set);
                    editor
                        .apply(other)
                        .map_err(|e| self.err_at(e.to_string(), span))?;
                    cmd_set = editor.cmd_set();
                    let argv = match other {
                        Command::Cmd(l) | Command::Entrypoint(l) => Some(history::argv(l, &shell)),
                        _ => None,
                    };
                    state.config.config = Some(container);
                    let created_by = history::metadata(other, argv.as_deref());
                    state.push_history(created_by, true);
                }
            }
        }
        Ok(state)
    }

    /// Build args in scope, then the config's ENV (which wins).
    fn expansion_env(&self, args: &Env, state: &State) -> Env {
        let mut env = args.clone();
        if let Some(c) = &state.config.config {
            for kv in &c.env {
                if let Some((k, v)) = kv.split_once('=') {
                    env.set(k, v);
                }
            }
        }
        env
    }

    fn base_image(&mut self, name: &str, span: Span) -> Result<State> {
        if name == "scratch" {
            let host = Platform::host();
            return Ok(State {
                config: ImageConfig {
                    architecture: host.architecture,
                    os: "linux".into(),
                    config: Some(ContainerConfig::default()),
                    rootfs: Some(RootFs {
                        kind: "layers".into(),
                        ..RootFs::default()
                    }),
                    ..ImageConfig::default()
                },
                layers: Vec::new(),
                chain: None,
                time: String::new(),
            });
        }
        let Some(id) = self.backend.find_image(name)? else {
            return Err(self.err_at(
                format!(
                    "base image {name:?} is not in the local store (pulling from registries is not supported yet; import or load it first)"
                ),
                span,
            ));
        };
        let mut config = self.backend.image_config(&id)?;
        if config.config.is_none() {
            config.config = Some(ContainerConfig::default());
        }
        let meta = self.backend.store().meta();
        let record = meta
            .image(&id)?
            .ok_or_else(|| Error::NotFound(format!("image {id}")))?;
        let mut layers = Vec::new();
        for l in &record.layers {
            let blobs = meta.layer_blobs(&l.diff_id)?;
            let found = blobs
                .into_iter()
                .find(|b| b.blob == l.blob)
                .ok_or_else(|| Error::NotFound(format!("layer {} of {name}", l.blob)))?;
            layers.push(found);
        }
        let chain = chain_ids(config.diff_ids()).last().cloned();
        if let Some(c) = &chain {
            if self.backend.store().snapshots().get(meta, c)?.is_none() {
                self.ensure_chain(config.diff_ids(), &layers)?;
            }
        }
        let time = config.created.clone().unwrap_or_default();
        Ok(State {
            config,
            layers,
            chain,
            time,
        })
    }

    /// Unpacks any snapshot of the chain that is missing.
    fn ensure_chain(&mut self, diff_ids: &[Digest], layers: &[LayerRecord]) -> Result<()> {
        let chain = chain_ids(diff_ids);
        for (i, layer) in layers.iter().enumerate() {
            let Some(c) = chain.get(i) else { break };
            let parent = i.checked_sub(1).and_then(|p| chain.get(p));
            self.backend
                .store_mut()
                .unpack_layer(c, parent, &layer.diff_id, &layer.blob)?;
        }
        Ok(())
    }

    /// The parts of the config a filesystem step depends on.
    fn config_inputs(state: &State) -> String {
        let c = state.container_ref();
        format!(
            "env={}\nworkdir={}\nuser={}\nshell={}\n",
            serde_json::to_string(&c.env).unwrap_or_default(),
            c.working_dir,
            c.user,
            serde_json::to_string(&c.shell).unwrap_or_default()
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn fs_step(
        &mut self,
        stage_index: usize,
        command: &Command,
        label: &str,
        args: &Env,
        state: &mut State,
        span: Span,
        path: &mut Vec<usize>,
    ) -> Result<()> {
        self.steps += 1;
        let step_text = describe(command);
        let parent = state
            .chain
            .as_ref()
            .map_or_else(|| "scratch".to_string(), Digest::to_string);
        let arg_pairs: Vec<(String, String)> = args.pairs().to_vec();
        match command {
            Command::Run(run) => {
                if let Some(m) = run.mounts.first() {
                    return Err(self.err_at(
                        format!("RUN --mount (type {:?}) is not supported yet", m.kind),
                        span,
                    ));
                }
                if run.security == Some(berth_dockerfile::instructions::Security::Insecure) {
                    return Err(self.err_at("RUN --security=insecure is not supported", span));
                }
                let container = state.container_ref();
                let shell: Vec<String> = if container.shell.is_empty() {
                    DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
                } else {
                    container.shell.clone()
                };
                let argv = run_argv(run, &shell);
                use berth_dockerfile::instructions::NetworkMode;
                let network = match run.network {
                    Some(NetworkMode::None) => "none",
                    Some(NetworkMode::Host) => "host",
                    Some(NetworkMode::Default) | None if self.opts.network_none => "none",
                    Some(NetworkMode::Default) | None => "host",
                };
                let inputs = format!(
                    "step={step_text}\nparent={parent}\n{}args={}\nnetwork={network}\nargv={}\n",
                    Self::config_inputs(state),
                    serde_json::to_string(&arg_pairs).unwrap_or_default(),
                    serde_json::to_string(&argv).unwrap_or_default(),
                );
                let created_by = history::run(&argv, &arg_pairs);
                let (n, t) = self.progress.start(label);
                if self.try_cache(&inputs, &step_text, n, state, &created_by)? {
                    return Ok(());
                }
                let mut config = state.config.clone();
                {
                    let c = config.config.get_or_insert_with(ContainerConfig::default);
                    // Build args are in the environment; ENV wins.
                    let mut env: Vec<String> = arg_pairs
                        .iter()
                        .filter(|(k, _)| {
                            !c.env
                                .iter()
                                .any(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k))
                        })
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    env.extend(c.env.iter().cloned());
                    c.env = env;
                }
                let step = StepDir::mount(self.backend.store(), state.chain.as_ref())?;
                let ns = if network == "none" {
                    NetworkNamespace::New
                } else {
                    NetworkNamespace::Host
                };
                let progress = &mut self.progress;
                let result = exec::run_step(&step, &config, argv.clone(), ns, &mut |line| {
                    progress.line(n, t, line)
                })?;
                if result.code != 0 {
                    return Err(self.run_failed(&argv, &result, span, n));
                }
                self.commit(step, state, &inputs, n, t, created_by)
            }
            Command::Workdir(w) => {
                let previous = state.container_ref().working_dir;
                let dir = join_workdir(&previous, &w.text);
                state.container().working_dir = dir.clone();
                let created_by = format!("WORKDIR {dir}");
                let inputs = format!(
                    "step={step_text}\nparent={parent}\n{}",
                    Self::config_inputs(state)
                );
                let (n, t) = self.progress.start(label);
                if self.try_cache(&inputs, &step_text, n, state, &created_by)? {
                    return Ok(());
                }
                let step = StepDir::mount(self.backend.store(), state.chain.as_ref())?;
                copy::mkdir_in_root(&step.rootfs, &dir, None)?;
                self.commit(step, state, &inputs, n, t, created_by)
            }
            Command::Copy(c) => {
                let a = CopyArgs {
                    sources: c.paths.sources.iter().map(|w| w.text.clone()).collect(),
                    inline: &c.paths.inline,
                    dest: c.paths.dest.text.clone(),
                    from: c.from.clone(),
                    chown: c.chown.clone(),
                    chmod: c.chmod.clone(),
                    exclude: c.exclude.clone(),
                    parents: c.parents,
                    add: false,
                };
                self.copy_step(
                    stage_index,
                    a,
                    label,
                    &step_text,
                    &parent,
                    state,
                    span,
                    path,
                )
            }
            Command::Add(c) => {
                if let Some(url) = c
                    .paths
                    .sources
                    .iter()
                    .find(|w| w.text.contains("://") || w.text.starts_with("git@"))
                {
                    return Err(self.err_at(
                        format!(
                            "ADD from a URL or git repository ({}) is not supported yet",
                            url.text
                        ),
                        span,
                    ));
                }
                let a = CopyArgs {
                    sources: c.paths.sources.iter().map(|w| w.text.clone()).collect(),
                    inline: &c.paths.inline,
                    dest: c.paths.dest.text.clone(),
                    from: None,
                    chown: c.chown.clone(),
                    chmod: c.chmod.clone(),
                    exclude: c.exclude.clone(),
                    parents: false,
                    add: c.unpack != Some(false),
                };
                self.copy_step(
                    stage_index,
                    a,
                    label,
                    &step_text,
                    &parent,
                    state,
                    span,
                    path,
                )
            }
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &mut self,
        stage_index: usize,
        a: CopyArgs<'_>,
        label: &str,
        step_text: &str,
        parent: &str,
        state: &mut State,
        span: Span,
        path: &mut Vec<usize>,
    ) -> Result<()> {
        // Where the sources come from.
        let from_state = match &a.from {
            None => None,
            Some(f) => match self.plan.resolve(f, stage_index, false) {
                StageRef::Stage(i) if i == stage_index => {
                    return Err(self.err_at(format!("stage {f} cannot copy from itself"), span))
                }
                StageRef::Stage(i) => Some(self.stage(i, path)?),
                StageRef::Image(name) => Some(self.base_image(&name, span)?),
            },
        };
        let view = match &from_state {
            Some(s) => Some(ReadView::of(self.backend.store(), s.chain.as_ref())?),
            None => None,
        };
        let exclude = if a.exclude.is_empty() {
            None
        } else {
            Some(
                berth_dockerignore::PatternMatcher::new(&a.exclude)
                    .map_err(|e| self.err_at(format!("--exclude: {e}"), span))?,
            )
        };
        let mut sources = Vec::new();
        for src in &a.sources {
            let trees = match &view {
                Some(v) => {
                    let rel = crate::context::clean_relative(src)
                        .map_err(|e| self.err_at(e.to_string(), span))?;
                    source_trees(&v.root, &rel, None)
                }
                None => self.context.sources(src),
            }
            .map_err(|e| self.err_at(e.to_string(), span))?;
            let base = crate::context::clean_relative(src).unwrap_or_default();
            for mut entries in trees {
                if let Some(m) = &exclude {
                    // Patterns apply below the source (BuildKit copies with
                    // the source as root), and to a matched top entry's name.
                    let top_excluded = entries.first().is_some_and(|top| {
                        let name = top
                            .path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        !top.meta.is_dir() && m.matches_or_parent_matches(&name).unwrap_or(false)
                    });
                    if top_excluded {
                        continue;
                    }
                    entries.retain(|e| {
                        e.rel.is_empty() || !m.matches_or_parent_matches(&e.rel).unwrap_or(false)
                    });
                }
                let name = entries
                    .first()
                    .map(|e| {
                        let root = view
                            .as_ref()
                            .map(|v| v.root.clone())
                            .or_else(|| self.context.root().map(|r| r.to_path_buf()))
                            .unwrap_or_default();
                        e.path
                            .strip_prefix(&root)
                            .map(|r| r.to_string_lossy().into_owned())
                            .unwrap_or_else(|_| base.clone())
                    })
                    .unwrap_or_default();
                sources.push(Source { name, entries });
            }
        }
        let count = sources.len() + a.inline.len();
        if count > 1 && !a.dest.ends_with('/') {
            return Err(self.err_at(
                "When using COPY with more than one source file, the destination must be a directory and end with a /",
                span,
            ));
        }
        let workdir = state.container_ref().working_dir;
        let mut dest = if a.dest.starts_with('/') {
            a.dest.clone()
        } else {
            let base = if workdir.is_empty() {
                "/".to_string()
            } else {
                workdir
            };
            format!("{}/{}", base.trim_end_matches('/'), a.dest)
        };
        if (a.dest == "." || a.dest.ends_with("/.")) && !dest.ends_with('/') {
            dest.push('/');
        }
        let mode = a
            .chmod
            .as_deref()
            .map(copy::parse_chmod)
            .transpose()
            .map_err(|e| self.err_at(e.to_string(), span))?;
        let mut plan = CopyPlan {
            sources,
            inline: a.inline.to_vec(),
            dest,
            attrs: Attrs {
                owner: if view.is_none() { Some((0, 0)) } else { None },
                mode,
            },
            extract: a.add,
            parents: a.parents,
        };
        // Source checksums (content and metadata, never mtimes).
        let from_context = view.is_none();
        let mut known: HashMap<String, (String, String)> = HashMap::new();
        if from_context {
            let paths: Vec<String> = plan
                .sources
                .iter()
                .flat_map(|s| s.entries.iter())
                .filter(|e| e.meta.is_file())
                .map(|e| e.path.to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let rows = self.backend.store().meta().context_sums(&refs)?;
            for (p, row) in paths.iter().zip(rows) {
                if let Some(r) = row {
                    known.insert(p.clone(), r);
                }
            }
        }
        let new_sums = &mut self.new_sums;
        let sources_digest = copy::sources_digest(&plan, &mut |e: &SourceEntry| {
            if !from_context {
                return copy::file_digest(&e.path);
            }
            let key = e.path.to_string_lossy().into_owned();
            let stat = stat_key(&e.meta);
            if let Some((s, sum)) = known.get(&key) {
                if *s == stat {
                    return Ok(sum.clone());
                }
            }
            let sum = copy::file_digest(&e.path)?;
            new_sums.push((key, stat, sum.clone()));
            Ok(sum)
        })?;
        let chown_text = a.chown.clone().unwrap_or_default();
        let inputs = format!(
            "step={step_text}\nparent={parent}\n{}dest={}\nchown={chown_text}\nchmod={:?}\nsources={sources_digest}\n",
            Self::config_inputs(state),
            plan.dest,
            mode,
        );
        let created_by = format!("{step_text} # buildkit");
        let (n, t) = self.progress.start(label);
        if self.try_cache(&inputs, step_text, n, state, &created_by)? {
            return Ok(());
        }
        let step = StepDir::mount(self.backend.store(), state.chain.as_ref())?;
        if let Some(spec) = &a.chown {
            let owner = copy::resolve_chown(spec, &step.rootfs)
                .map_err(|e| self.err_at(e.to_string(), span))?;
            plan.attrs.owner = Some(owner);
        }
        copy::apply(&step.rootfs, &plan).map_err(|e| self.err_at(e.to_string(), span))?;
        drop(view);
        self.commit(step, state, &inputs, n, t, created_by)
    }

    /// Docker's report of a failed RUN: the process, its exit code, the
    /// Dockerfile line and the tail of its output.
    fn run_failed(
        &mut self,
        argv: &[String],
        result: &exec::RunResult,
        span: Span,
        n: usize,
    ) -> Error {
        let process = argv.join(" ");
        let mut err = format!(
            "process \"{process}\" did not complete successfully: exit code: {}",
            result.code
        );
        self.progress.note(n, &format!("ERROR: {err}"));
        let line = span.start.line;
        if let Some(text) = (line as usize)
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
        {
            err = format!(
                "{err}\n{}:{line}\n--------------------\n {line:>3} | >>> {text}\n--------------------",
                self.file
            );
        }
        if !result.tail.is_empty() {
            err = format!(
                "{err}\noutput (last {} lines):\n{}",
                result.tail.len(),
                result.tail.join("\n")
            );
        }
        Error::StepFailed(err)
    }

    /// Reuses a cached result for `inputs`; false on a miss.
    fn try_cache(
        &mut self,
        inputs: &str,
        step_text: &str,
        n: usize,
        state: &mut State,
        created_by: &str,
    ) -> Result<bool> {
        let key = Digest::sha256_of(inputs.as_bytes());
        if self.opts.no_cache {
            return Ok(false);
        }
        let record = self.backend.store().meta().cache_record(&key)?;
        let Some(record) = record else {
            if self.opts.debug_cache {
                self.explain_miss(inputs, step_text, n)?;
            }
            return Ok(false);
        };
        if record.media_type == EMPTY_LAYER {
            state.time = record.created.clone();
            state.push_history(created_by.to_string(), true);
            self.cached += 1;
            self.progress.cached(n);
            return Ok(true);
        }
        let store = self.backend.store();
        if store.content().size(&record.blob)?.is_none() {
            return Ok(false);
        }
        let mut diff_ids = state.diff_ids();
        diff_ids.push(record.diff_id.clone());
        let chain = chain_ids(&diff_ids);
        if chain.last() != Some(&record.chain_id) {
            return Ok(false);
        }
        if store
            .snapshots()
            .get(store.meta(), &record.chain_id)?
            .is_none()
        {
            let parent = state.chain.clone();
            self.backend.store_mut().unpack_layer(
                &record.chain_id,
                parent.as_ref(),
                &record.diff_id,
                &record.blob,
            )?;
        }
        let (secs, _) = now_secs();
        let mut touched = record.clone();
        touched.key = key;
        self.backend
            .store_mut()
            .meta_mut()
            .put_cache_record(&touched, secs)?;
        state.time = record.created.clone();
        self.apply_layer(
            state,
            record.chain_id.clone(),
            LayerRecord {
                diff_id: record.diff_id,
                blob: record.blob,
                media_type: record.media_type,
                size: record.size,
            },
        );
        state.push_history(created_by.to_string(), false);
        self.cached += 1;
        self.progress.cached(n);
        Ok(true)
    }

    fn explain_miss(&mut self, inputs: &str, step_text: &str, n: usize) -> Result<()> {
        let prefix = format!("step={step_text}\n");
        let previous = self.backend.store().meta().cache_inputs_like(&prefix)?;
        let Some(previous) = previous else {
            self.progress
                .note(n, "cache miss: this instruction was never built before");
            return Ok(());
        };
        let old: BTreeMap<&str, &str> =
            previous.lines().filter_map(|l| l.split_once('=')).collect();
        let new: BTreeMap<&str, &str> = inputs.lines().filter_map(|l| l.split_once('=')).collect();
        let changed: Vec<&str> = new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, _)| *k)
            .collect();
        let what = changed
            .iter()
            .map(|k| match *k {
                "parent" => "the parent layer (an earlier step or the base image changed)",
                "sources" => "the source files (content or metadata)",
                "args" => "build args",
                "env" => "the environment (ENV)",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.progress
            .note(n, &format!("cache miss: changed: {what}"));
        Ok(())
    }

    fn apply_layer(&self, state: &mut State, chain: Digest, layer: LayerRecord) {
        let rootfs = state.config.rootfs.get_or_insert_with(|| RootFs {
            kind: "layers".into(),
            ..RootFs::default()
        });
        if rootfs.kind.is_empty() {
            rootfs.kind = "layers".into();
        }
        rootfs.diff_ids.push(layer.diff_id.clone());
        state.layers.push(layer);
        state.chain = Some(chain);
    }

    fn commit(
        &mut self,
        step: StepDir,
        state: &mut State,
        inputs: &str,
        n: usize,
        t: Instant,
        created_by: String,
    ) -> Result<()> {
        let diff_ids = state.diff_ids();
        let committed = step.commit(self.backend.store_mut(), &diff_ids, self.epoch)?;
        state.time = self.build_time.clone();
        let key = Digest::sha256_of(inputs.as_bytes());
        let (secs, _) = now_secs();
        let empty = Digest::sha256_of(b"");
        let record = match &committed {
            Some(c) => CacheRecord {
                key,
                inputs: inputs.to_string(),
                chain_id: c.chain_id.clone(),
                diff_id: c.layer.diff_id.clone(),
                blob: c.layer.blob.clone(),
                media_type: c.layer.media_type.clone(),
                size: c.layer.size,
                created: state.time.clone(),
            },
            None => CacheRecord {
                key,
                inputs: inputs.to_string(),
                chain_id: empty.clone(),
                diff_id: empty.clone(),
                blob: empty,
                media_type: EMPTY_LAYER.into(),
                size: 0,
                created: state.time.clone(),
            },
        };
        self.backend
            .store_mut()
            .meta_mut()
            .put_cache_record(&record, secs)?;
        match committed {
            Some(c) => {
                self.apply_layer(state, c.chain_id, c.layer);
                state.push_history(created_by, false);
            }
            None => state.push_history(created_by, true),
        }
        self.progress.done(n, t);
        Ok(())
    }
}

fn now_secs() -> (i64, u32) {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos()))
}

/// The argv of a RUN: exec form as is; shell form in SHELL; a heredoc
/// script given to the shell with its body.
fn run_argv(run: &berth_dockerfile::instructions::Run, shell: &[String]) -> Vec<String> {
    match &run.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) if run.files.is_empty() => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
        CommandLine::Shell(s) => {
            let trimmed = s.trim();
            let only_heredoc = trimmed.starts_with("<<")
                && !trimmed.contains(char::is_whitespace)
                && run.files.len() == 1;
            let script = match (only_heredoc, run.files.first()) {
                (true, Some(f)) => f.data.clone(),
                _ => {
                    let mut script = s.clone();
                    for f in &run.files {
                        script.push('\n');
                        script.push_str(&f.data);
                        if !f.data.ends_with('\n') {
                            script.push('\n');
                        }
                        script.push_str(&f.name);
                    }
                    script
                }
            };
            let mut v = shell.to_vec();
            v.push(script);
            v
        }
    }
}
