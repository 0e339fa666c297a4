//! The `berth` binary: the docker-compatible command line.

mod cli;
mod commands;
mod exit;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// mimalloc: the frontend and store allocate many small objects; it is
/// markedly faster than glibc's allocator for them (see bench/frontend.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use exit::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    if cli.version {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            env!("BERTH_GIT_COMMIT")
        );
        return Ok(());
    }
    settings::init_logging(cli.global.log_level);
    let settings = settings::Settings::resolve(&cli.global)?;
    tracing::debug!(root = %settings.root.display(), "settings resolved");
    match &cli.command {
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(())
        }
        Some(Command::Version(args)) => commands::version::run(args),
        Some(Command::Info) => commands::info::run(&settings),
        Some(Command::Dockerfile(cmd)) => commands::dockerfile::run(cmd),
    }
}

/// Help and version go to stdout with status 0; usage errors exit 125 with
/// docker's "See 'berth --help'." hint.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(125)
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("berth: {first}\nSee 'berth --help'.");
            ExitCode::from(125)
        }
    }
}
