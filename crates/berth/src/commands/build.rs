//! `berth build`: the context (a directory, a tar or a Dockerfile on
//! stdin, a git repository or an http(s) URL), Docker's flags, BuildKit's
//! progress on stderr (plain, or the live tty display), `-q`, `--iidfile`
//! and `--output`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use berth_engine::{
    BuildContext, BuildExport, BuildOptions, BuildRequest, DockerfileSource, Engine, ProgressMode,
    StageWorkers, WorkerTask,
};

use crate::cli::BuildArgs;
use crate::exit::CliError;

/// `KEY=VALUE` flags into a map; `KEY` alone takes the caller's
/// environment value (as Docker's `--build-arg KEY` does) or is skipped.
fn key_values(values: &[String], from_env: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) => {
                out.insert(k.to_string(), val.to_string());
            }
            None if from_env => {
                if let Ok(val) = std::env::var(v) {
                    out.insert(v.clone(), val);
                }
            }
            None => {
                out.insert(v.clone(), String::new());
            }
        }
    }
    out
}

/// Reads up to `n` bytes.
fn read_head(reader: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

/// True for bytes that start a tar archive (plain, gzip, zstd, bzip2, xz).
fn looks_like_archive(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        &[0x28, 0xb5, 0x2f, 0xfd],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
    ];
    MAGICS.iter().any(|m| head.starts_with(m)) || head.get(257..262) == Some(b"ustar")
}

/// This same command line, to start stage workers with.
fn stage_workers() -> Option<StageWorkers> {
    Some(StageWorkers {
        program: std::env::current_exe().ok()?,
        args: std::env::args_os().skip(1).collect(),
    })
}

pub fn build(engine: &mut Engine, args: &BuildArgs) -> Result<(), CliError> {
    let progress = match (args.quiet, args.progress.as_str()) {
        (true, _) | (_, "quiet") => ProgressMode::Quiet,
        (false, "plain") => ProgressMode::Plain,
        (false, "tty") => ProgressMode::Tty,
        (false, "auto") if std::io::stderr().is_terminal() => ProgressMode::Tty,
        (false, "auto") => ProgressMode::Plain,
        (false, other) => {
            return Err(CliError::usage(format!(
                "invalid progress mode {other:?}: use auto, plain, tty or quiet"
            )))
        }
    };
    let export = match args.output.as_slice() {
        [] => BuildExport::default(),
        [one] => BuildExport::parse(one).map_err(|e| CliError::usage(e.to_string()))?,
        _ => {
            return Err(CliError::usage(
                "invalid output: multiple outputs are not supported (give one --output)",
            ))
        }
    };
    if export.writes_stdout() && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "invalid output: dest file is required for this exporter, refusing to write to console",
        ));
    }
    let network = match args.network.as_str() {
        "default" => berth_engine::BuildNetwork::Default,
        "host" => berth_engine::BuildNetwork::Host,
        "none" => berth_engine::BuildNetwork::None,
        other => {
            return Err(CliError::usage(format!(
                "network mode {other:?} is not supported by berth build yet (use default, host or none)"
            )))
        }
    };
    let stdin_dockerfile = args.file.as_deref() == Some("-");
    let mut dockerfile = match args.file.as_deref() {
        None => DockerfileSource::Default,
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                CliError::failure(format!("reading the Dockerfile from STDIN: {e}"))
            })?;
            DockerfileSource::Bytes(buf)
        }
        Some(path) => DockerfileSource::Path(PathBuf::from(path)),
    };
    let mut context = if args.context == "-" {
        if stdin_dockerfile {
            return Err(CliError::usage(
                "invalid argument: can't use stdin for both build context and dockerfile",
            ));
        }
        let mut stdin = std::io::stdin().lock();
        let head = read_head(&mut stdin, 512)
            .map_err(|e| CliError::failure(format!("reading STDIN: {e}")))?;
        if looks_like_archive(&head) {
            let scratch = engine
                .store()
                .scratch_dir("build-context")
                .map_err(|e| CliError::failure(e.to_string()))?;
            let reader = std::io::Cursor::new(head).chain(stdin);
            BuildContext::from_tar(reader, scratch).map_err(|e| CliError::failure(e.to_string()))?
        } else {
            let mut buf = head;
            stdin
                .read_to_end(&mut buf)
                .map_err(|e| CliError::failure(format!("reading STDIN: {e}")))?;
            dockerfile = DockerfileSource::Bytes(buf);
            BuildContext::empty()
        }
    } else if BuildContext::is_remote(&args.context) {
        let scratch = engine
            .store()
            .scratch_dir("build-context")
            .map_err(|e| CliError::failure(e.to_string()))?;
        // BuildKit keeps a git context's .git on request only.
        let keep_git_dir = key_values(&args.build_args, true)
            .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
        let mut remote = BuildContext::remote(&args.context, scratch, keep_git_dir)
            .map_err(|e| CliError::failure(format!("unable to prepare context: {e}")))?;
        dockerfile = remote
            .pick_dockerfile(dockerfile)
            .map_err(|e| CliError::failure(e.to_string()))?;
        remote.context
    } else {
        BuildContext::dir(args.context.as_ref()).map_err(|e| CliError::failure(e.to_string()))?
    };
    let mut secrets = BTreeMap::new();
    for flag in &args.secrets {
        let (id, source) = berth_engine::parse_secret_flag(flag, |name| std::env::var_os(name))
            .map_err(|e| CliError::failure(e.to_string()))?;
        match source {
            Some(source) => {
                secrets.insert(id, source);
            }
            None => {
                secrets.remove(&id);
            }
        }
    }
    if args.pull {
        tracing::warn!("--pull: pulling is not supported yet; local images are used");
    }
    let worker = args
        .stage_worker
        .as_deref()
        .map(WorkerTask::parse)
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    // Under a tty display a worker's progress goes to a log its parent
    // keeps (see berth-build's parallel.rs), as plain lines.
    let progress = match (&worker, progress) {
        (Some(_), ProgressMode::Tty) => ProgressMode::Plain,
        (_, mode) => mode,
    };
    // Independent stages build in worker processes that re-read the same
    // inputs, so only a context and Dockerfile that can be read again.
    let parallel = (worker.is_none()
        && !stdin_dockerfile
        && context.root().is_some()
        && !context.is_temporary())
    .then(stage_workers)
    .flatten();
    let request = BuildRequest {
        options: BuildOptions {
            dockerfile,
            build_args: key_values(&args.build_args, true),
            target: args.target.clone(),
            no_cache: args.no_cache,
            labels: key_values(&args.labels, false),
            platform: args.platform.clone(),
            debug_cache: args.debug_cache,
            network,
            progress,
            parallel,
            worker,
            secrets,
        },
        tags: args.tags.clone(),
        export,
    };
    let mut stderr = std::io::stderr();
    if request.options.worker.is_some() {
        // Dies with the parent build.
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        return engine
            .build_for_parent(&mut context, &request.options, &mut stderr)
            .map_err(|e| CliError::failure(e.to_string()));
    }
    let out = engine
        .build(&mut context, &request, &mut stderr)
        .map_err(|e| CliError::failure(e.to_string()))?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, out.id.to_string()).map_err(|e| {
            CliError::failure(format!("writing image ID file: {}: {e}", path.display()))
        })?;
    }
    if args.quiet {
        // Standard output may carry the export itself.
        if !request.export.writes_stdout() {
            println!("{}", out.id);
        }
    } else if let BuildExport::Image { names } = &request.export {
        for tag in args.tags.iter().chain(names) {
            eprintln!("naming to {tag} done");
        }
    }
    Ok(())
}
