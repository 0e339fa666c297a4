//! Filesystem steps: RUN, WORKDIR, COPY and ADD, each looked up in the
//! cache and otherwise run in a mounted step root and committed.

use berth_dockerfile::instructions::{Command, InlineFile};
use berth_dockerfile::stages::{Env, StageRef};
use berth_dockerfile::Span;
use berth_oci::{ContainerConfig, Digest};
use berth_runtime::NetworkNamespace;

use super::{Builder, State};
use crate::config_edit::{join_workdir, DEFAULT_SHELL};
use crate::context::source_trees;
use crate::copy::{self, Attrs, CopyPlan, Source};
use crate::history::{describe, run_command};
use crate::layer::{ReadView, StepDir};
use crate::{exec, history, run_mounts, Error, Result};

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
    /// ADD: URLs and git repositories are sources too.
    remote: Option<crate::remote::AddRemoteFlags>,
}

impl Builder<'_, '_> {
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
    pub(super) fn fs_step(
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
                if run.security == Some(berth_dockerfile::instructions::Security::Insecure) {
                    return Err(self.err_at("RUN --security=insecure is not supported", span));
                }
                let container = state.container_ref();
                let shell: Vec<String> = if container.shell.is_empty() {
                    DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
                } else {
                    container.shell.clone()
                };
                let command = run_command(run, &shell);
                let argv = command.argv.clone();
                use berth_dockerfile::instructions::NetworkMode;
                let network = match run.network {
                    Some(NetworkMode::None) => "none",
                    Some(NetworkMode::Host) => "host",
                    Some(NetworkMode::Default) | None => match self.opts.network {
                        crate::BuildNetwork::Default => "default",
                        crate::BuildNetwork::Host => "host",
                        crate::BuildNetwork::None => "none",
                    },
                };
                let workdir = container.working_dir.clone();
                let mounts =
                    self.plan_run_mounts(stage_index, &run.mounts, &workdir, span, path)?;
                let mut inputs = format!(
                    "step={step_text}\nparent={parent}\n{}args={}\nnetwork={network}\nargv={}\nstdin={}\n",
                    Self::config_inputs(state),
                    serde_json::to_string(&arg_pairs).unwrap_or_default(),
                    serde_json::to_string(&argv).unwrap_or_default(),
                    serde_json::to_string(&command.stdin).unwrap_or_default(),
                );
                if !mounts.is_empty() {
                    inputs.push_str(&format!("mounts={}\n", run_mounts::cache_key(&mounts)));
                }
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
                let mut prepared = run_mounts::prepare(
                    &mounts,
                    &run_mounts::MountInputs {
                        store: self.backend.store(),
                        rootfs: &step.rootfs,
                        context_root: self.context.root(),
                        context_filtered: self.context.has_ignore_patterns(),
                        secrets: &self.opts.secrets,
                    },
                )
                .map_err(|e| self.mount_error(e, span))?;
                // Docker's default for RUN: the default bridge, with NAT
                // to the outside (pip and apt-get reach their registries).
                let bridged = match network {
                    "default" => Some(exec::StepNetwork::setup(
                        self.backend.store_mut().meta_mut(),
                        &step,
                    )?),
                    _ => None,
                };
                let ns = match (&bridged, network) {
                    (Some(net), _) => NetworkNamespace::Join(net.netns().to_path_buf()),
                    (None, "none") => NetworkNamespace::New,
                    (None, _) => NetworkNamespace::Host,
                };
                let progress = &mut self.progress;
                let result = exec::run_step(
                    &step,
                    &config,
                    &command,
                    ns,
                    bridged.as_ref().map(|n| n.files()),
                    &prepared,
                    &mut |line| progress.line(n, t, line),
                );
                if let Some(net) = bridged {
                    net.teardown(self.backend.store_mut().meta_mut(), &step);
                }
                prepared.remove_stubs(&step.rootfs);
                drop(prepared);
                let result = result?;
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
                    remote: None,
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
                    remote: Some(crate::remote::AddRemoteFlags {
                        checksum: c.checksum.clone(),
                        keep_git_dir: c.keep_git_dir,
                    }),
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
        // Scratch directories of fetched sources: alive until the copy.
        let mut fetched = Vec::new();
        for src in &a.sources {
            if let Some(flags) = &a.remote {
                let remote = crate::remote::RemoteSource::parse(src)
                    .map_err(|e| self.err_at(e.to_string(), span))?;
                if let Some(remote) = remote {
                    let f = crate::remote::fetch_add_source(self.backend.store(), &remote, flags)
                        .map_err(|e| self.err_at(e.to_string(), span))?;
                    fetched.push(f.scratch);
                    sources.push(f.source);
                    continue;
                }
                if flags.checksum.is_some() {
                    return Err(
                        self.err_at("checksum can't be specified for non-HTTP(S) sources", span)
                    );
                }
            }
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
                sources.push(Source {
                    name,
                    entries,
                    fetched: false,
                });
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
        let sources_digest = self.sources_digest(&plan, view.is_none())?;
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
        drop(fetched);
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
}
