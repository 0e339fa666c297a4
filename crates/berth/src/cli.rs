//! The command line, as clap types. Verbs and flags follow Docker's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth: build, ship and run containers, Docker-compatible, in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    disable_version_flag = true,
    about = "A Docker-compatible container engine in one binary",
    after_help = "Run 'berth COMMAND --help' for more information on a command."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    /// Print version information and quit
    #[arg(short = 'v', long = "version", global = false)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalOptions {
    /// Root of berth's store (default /var/lib/berth for root,
    /// $XDG_DATA_HOME/berth otherwise)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Configuration file (default /etc/berth/config.toml)
    #[arg(long, global = true, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set the logging level
    #[arg(short = 'l', long, global = true, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// Logging levels, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the berth version information
    Version(VersionArgs),
    /// Display system-wide information
    Info,
    /// Work with Dockerfiles: dump the parse tree, lint
    #[command(subcommand)]
    Dockerfile(DockerfileCommand),
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format the output using the given Go-style template ({{.Client.Version}})
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Print the parse tree in BuildKit's dump format
    Dump {
        /// The Dockerfile, or - for standard input
        file: String,
    },
    /// Check a Dockerfile: syntax, instructions, stages, build checks
    Lint {
        /// The Dockerfile, or - for standard input
        file: String,
    },
}
