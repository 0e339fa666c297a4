//! The `berth` binary: the docker-compatible command line.

mod cli;
mod commands;
mod exit;
mod output;
mod settings;
mod signals;
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
    signals::unignore();
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
        Some(Command::Shim { dir }) => match berth_engine::containers::shim::main(dir) {
            0 => Ok(()),
            code => Err(CliError::exit(u8::try_from(code).unwrap_or(1))),
        },
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
    use cli::{ContainerCommand, ImageCommand, SystemCommand};
    use commands::{containers, images};
    match command {
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(engine, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(engine, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(engine, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(engine, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(engine, a)
        }
        Command::Inspect(a) => containers::inspect(engine, a, true),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(engine, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            commands::archive::save(engine, a)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            commands::archive::load(engine, a)
        }
        Command::Image(ImageCommand::Prune(a)) => commands::system::prune(engine, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            commands::run::run(engine, a)
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            commands::run::create(engine, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            containers::start(engine, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            containers::stop(engine, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            containers::restart(engine, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            containers::kill(engine, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(engine, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(engine, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            containers::logs(engine, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            containers::exec_command(engine, a)
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            containers::attach(engine, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            containers::wait(engine, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            containers::port(engine, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            containers::top(engine, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            containers::rename(engine, a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            containers::pause(engine, a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            containers::pause(engine, a, false)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => commands::cp::cp(engine, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            commands::stats::stats(engine, a)
        }
        Command::Container(ContainerCommand::Inspect(a)) => containers::inspect(engine, a, false),
        Command::Container(ContainerCommand::Prune(a)) => containers::prune(engine, a),
        Command::Build(a) => commands::build::build(engine, a),
        Command::Builder(cli::BuilderCommand::Prune(a)) => commands::builder::prune(engine, a),
        Command::System(SystemCommand::Check) => commands::system::check(engine),
        Command::System(SystemCommand::Df) => commands::system::df(engine),
        Command::System(SystemCommand::Prune(a)) => commands::system::system_prune(engine, a),
        Command::Network(cmd) => commands::network::run(engine, cmd),
        Command::Volume(cmd) => run_volume_command(engine, cmd),
        Command::Version(_)
        | Command::Info
        | Command::System(SystemCommand::Info)
        | Command::Dockerfile(_)
        | Command::Shim { .. } => Ok(()),
    }
}

fn run_volume_command(
    engine: &mut berth_engine::Engine,
    command: &cli::VolumeCommand,
) -> Result<(), CliError> {
    use cli::VolumeCommand;
    use commands::volume;
    match command {
        VolumeCommand::Create(a) => volume::create(engine, a),
        VolumeCommand::Ls(a) => volume::ls(engine, a),
        VolumeCommand::Inspect(a) => volume::inspect(engine, a),
        VolumeCommand::Rm(a) => volume::rm(engine, a),
        VolumeCommand::Prune(a) => volume::prune(engine, a),
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
