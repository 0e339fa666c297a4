//! `berth run`: a container in the foreground; berth exits with its status.

use berth_engine::Engine;
use berth_runtime::{resolve_env_flag, NetworkNamespace, RunOptions, TmpfsMount};

use crate::cli::RunArgs;
use crate::exit::CliError;

pub fn run(engine: &mut Engine, args: &RunArgs) -> Result<(), CliError> {
    if args.detach {
        return Err(CliError::with_code(
            125,
            "detached containers (-d) need the container shim, which is not built yet",
        ));
    }
    if args.tty {
        return Err(CliError::with_code(125, "-t is not supported yet"));
    }
    let network = match args.network.as_str() {
        "none" => NetworkNamespace::New,
        "host" => NetworkNamespace::Host,
        other => {
            return Err(CliError::with_code(
                125,
                format!("network {other} not found (this berth has: none, host)"),
            ))
        }
    };
    let mut tmpfs = Vec::new();
    for t in &args.tmpfs {
        tmpfs.push(TmpfsMount::parse(t).map_err(|e| CliError::with_code(125, e.to_string()))?);
    }
    let opts = RunOptions {
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        command: args.command.clone(),
        env: args
            .env
            .iter()
            .map(|e| resolve_env_flag(e, |k| std::env::var(k).ok()))
            .collect(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        group_add: args.group_add.clone(),
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        read_only: args.read_only,
        privileged: args.privileged,
        tmpfs,
        network,
        ..RunOptions::default()
    };
    match engine.run_foreground(&args.image, &opts) {
        Ok(0) => Ok(()),
        Ok(code) => Err(CliError::exit(u8::try_from(code).unwrap_or(255))),
        Err(failure) => Err(CliError::with_code(
            u8::try_from(failure.status).unwrap_or(125),
            failure.error.to_string(),
        )),
    }
}
