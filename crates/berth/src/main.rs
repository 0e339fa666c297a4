//! The `berth` binary: the docker-compatible command line.

mod cli;
mod commands;
mod exit;
mod output;
mod settings;
mod template;

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
        Some(Command::Info) | Some(Command::System(cli::SystemCommand::Info)) => {
            commands::info::run(&settings)
        }
        Some(Command::Dockerfile(cmd)) => commands::dockerfile::run(cmd),
        Some(command) => {
            let mut engine = berth_engine::Engine::open(&settings.root).map_err(|e| {
                CliError::failure(format!("opening store {}: {e}", settings.root.display()))
            })?;
            run_engine_command(&mut engine, command)
        }
    }
}

/// Verbs that work on the store.
fn run_engine_command(
    engine: &mut berth_engine::Engine,
    command: &Command,
) -> Result<(), CliError> {
    use cli::{ImageCommand, SystemCommand};
    use commands::images;
    match command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(engine, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(engine, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(engine, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(engine, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(engine, a)
        }
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => {
            images::inspect(engine, a)
        }
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            commands::archive::save(engine, a)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            commands::archive::load(engine, a)
        }
        Command::Image(ImageCommand::Prune(a)) => commands::system::prune(engine, a),
        Command::Run(a) => commands::run::run(engine, a),
        Command::Build(a) => commands::build::build(engine, a),
        Command::System(SystemCommand::Check) => commands::system::check(engine),
        Command::System(SystemCommand::Df) => commands::system::df(engine),
        Command::Version(_)
        | Command::Info
        | Command::System(SystemCommand::Info)
        | Command::Dockerfile(_) => Ok(()),
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
