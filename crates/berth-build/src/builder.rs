//! The build driver: preflight (parse, type, stage graph), then each
//! needed stage in dependency order, each step looked up in the cache or
//! run, then the final image recorded.

mod cache;
mod mounts;
mod parallel;
mod steps;

use std::collections::HashMap;
use std::io::Write;

use berth_dockerfile::instructions::Command;
use berth_dockerfile::lint::{render_finding, Finding, Severity};
use berth_dockerfile::stages::{self, Env, Plan, StageRef};
use berth_dockerfile::Span;
use berth_oci::{chain_ids, ContainerConfig, Digest, History, ImageConfig, Platform, RootFs};
use berth_store::LayerRecord;

use crate::config_edit::{ConfigEditor, DEFAULT_SHELL};
use crate::context::Context;
use crate::history::describe;
use crate::progress::Progress;
use crate::{history, BuildOptions, BuildOutput, Error, ImageBackend, Result};

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
    progress: &'a mut Progress<'w>,
    epoch: Option<i64>,
    build_time: String,
    steps: usize,
    cached: usize,
    /// Context checksums learnt this build, written at the end.
    new_sums: Vec<(String, String, String)>,
    /// ARG names declared by the stages that were built.
    consumed: std::collections::BTreeSet<String>,
    /// Cache records reused this build.
    reused: Vec<Digest>,
    /// Stage workers started so far (numbers their progress).
    worker_count: usize,
    /// Held for the build: content written meanwhile is safe from GC.
    _write: berth_store::WriteGuard,
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
    let mut display = Progress::new(opts.progress, progress);
    let result = build_with_progress(backend, context, opts, &mut display);
    display.finish(result.is_ok());
    result
}

/// [`build`] with the caller's progress display, which it finishes
/// itself: it may show more steps (an export) after the build's.
pub fn build_with_progress(
    backend: &mut dyn ImageBackend,
    context: &mut Context,
    opts: &BuildOptions,
    progress: &mut Progress<'_>,
) -> Result<BuildOutput> {
    let (mut builder, target) = prepare(backend, context, opts, progress)?;
    let result = builder.stage(target, &mut Vec::new());
    builder.finish(result)
}

/// Runs a stage worker's part of a build (`opts.worker`): the stage and
/// what it needs are built into the store and their states written for
/// the parent build, which goes on from there.
pub fn build_for_parent(
    backend: &mut dyn ImageBackend,
    context: &mut Context,
    opts: &BuildOptions,
    progress: &mut dyn Write,
) -> Result<()> {
    let task = opts
        .worker
        .clone()
        .ok_or_else(|| Error::Invalid("not a stage worker".into()))?;
    let mut display = Progress::new(opts.progress, progress);
    let result = (|| {
        let (mut builder, _) = prepare(backend, context, opts, &mut display)?;
        builder.progress.number_from(task.progress_offset);
        let result = builder.stage(task.stage, &mut Vec::new());
        builder.save_sums()?;
        result?;
        builder.write_worker_result(&task.output)
    })();
    display.finish(result.is_ok());
    result
}

/// Preflight: the Dockerfile read and parsed, every stage expanded, the
/// graph checked; returns the builder and the target stage.
fn prepare<'a, 'w>(
    backend: &'a mut dyn ImageBackend,
    context: &'a mut Context,
    opts: &'a BuildOptions,
    progress: &'a mut Progress<'w>,
) -> Result<(Builder<'a, 'w>, usize)> {
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

    let epoch = crate::time::source_date_epoch();
    let build_time = {
        let (secs, nanos) = crate::time::now();
        crate::time::rfc3339(secs, nanos)
    };
    let write = backend.store().begin_write()?;
    let builder = Builder {
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
        reused: Vec::new(),
        worker_count: 0,
        _write: write,
    };
    Ok((builder, target))
}

impl<'a, 'w> Builder<'a, 'w> {
    /// Records what the build learnt and, when it succeeded, the image.
    fn finish(mut self, result: Result<State>) -> Result<BuildOutput> {
        let builder = &mut self;
        let opts = builder.opts;
        if result.is_ok() {
            let unused: Vec<&str> = opts
                .build_args
                .keys()
                .map(String::as_str)
                .filter(|k| {
                    !builder.consumed.contains(*k)
                        && !stages::PREDEFINED_ARGS.contains(k)
                        // BuildKit's own switches (BUILDKIT_CONTEXT_KEEP_GIT_DIR, …).
                        && !k.starts_with("BUILDKIT_")
                        && !builder.plan.meta_args.iter().any(|a| a.name == *k)
                })
                .collect();
            if !unused.is_empty() {
                builder.progress.warn(&format!(
                    "[Warning] One or more build-args [{}] were not consumed",
                    unused.join(" ")
                ));
            }
        }
        builder.save_sums()?;
        let mut state = result?;
        let host = Platform::host();

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

    /// Writes the context checksums learnt and marks reused records used.
    fn save_sums(&mut self) -> Result<()> {
        let sums = std::mem::take(&mut self.new_sums);
        let temporary = self.context.is_temporary();
        let reused = std::mem::take(&mut self.reused);
        let meta = self.backend.store_mut().meta_mut();
        if !temporary {
            meta.put_context_sums(&sums)?;
        }
        meta.touch_cache_records(&reused, crate::time::wall_now())?;
        Ok(())
    }

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

    /// A stage's name, or `stage-N` for an unnamed one.
    fn stage_name(&self, index: usize) -> String {
        self.plan
            .stages
            .get(index)
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| format!("stage-{index}"))
    }

    fn stage_label(&self, index: usize, step: usize, total: usize) -> String {
        let name = self.stage_name(index);
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
        // Independent ones in parallel, in worker processes.
        let deps = self.deps.get(index).cloned().unwrap_or_default();
        let workers = self.start_workers(&deps)?;
        for &dep in &deps {
            if !workers.builds(dep) {
                self.stage(dep, path)?;
            }
        }
        self.join_workers(workers)?;
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
                    if let Command::Maintainer(name) = other {
                        state.config.author = name.clone();
                    }
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
}
