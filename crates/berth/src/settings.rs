//! Where berth keeps its store and reads its configuration, from the global
//! flags, the environment and the defaults in DESIGN.md §3-4.

use std::path::{Path, PathBuf};

use crate::cli::{GlobalOptions, LogLevel};
use crate::exit::CliError;

/// Resolved global settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub config: PathBuf,
    /// Whether the configuration file exists.
    pub config_found: bool,
}

impl Settings {
    pub fn resolve(opts: &GlobalOptions) -> Result<Self, CliError> {
        let root = match &opts.root {
            Some(r) => r.clone(),
            None => default_root(
                rustix::process::getuid().is_root(),
                std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
                std::env::var_os("HOME").map(PathBuf::from),
            ),
        };
        let (config, explicit) = match &opts.config {
            Some(c) => (c.clone(), true),
            None => (PathBuf::from("/etc/berth/config.toml"), false),
        };
        let config_found = config.is_file();
        if explicit && !config_found {
            return Err(CliError::failure(format!(
                "configuration file {} not found",
                config.display()
            )));
        }
        Ok(Settings {
            root,
            config,
            config_found,
        })
    }
}

/// `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (or
/// `~/.local/share/berth`) otherwise.
pub fn default_root(
    is_root: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> PathBuf {
    if is_root {
        return PathBuf::from("/var/lib/berth");
    }
    match (xdg_data_home, home) {
        (Some(xdg), _) if xdg.is_absolute() => xdg.join("berth"),
        (_, Some(home)) => home.join(".local/share/berth"),
        _ => Path::new("/tmp").join(format!("berth-{}", rustix::process::getuid().as_raw())),
    }
}

/// Sends `tracing` output at `level` and above to standard error: berth's
/// own crates at `level`, libraries only for errors (libcontainer reports
/// its cgroup choices at info and warn on every container).
pub fn init_logging(level: LogLevel) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let ours = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error | LogLevel::Fatal => tracing::Level::ERROR,
    };
    let mut filter = tracing_subscriber::filter::Targets::new().with_default(tracing::Level::ERROR);
    for krate in [
        "berth",
        "berth_engine",
        "berth_store",
        "berth_fs",
        "berth_runtime",
        "berth_launch",
        "berth_dockerfile",
        "berth_oci",
    ] {
        filter = filter.with_target(krate, ours);
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roots() {
        assert_eq!(
            default_root(true, None, None),
            PathBuf::from("/var/lib/berth")
        );
        assert_eq!(
            default_root(false, Some("/x/data".into()), Some("/home/u".into())),
            PathBuf::from("/x/data/berth")
        );
        assert_eq!(
            default_root(false, Some("relative".into()), Some("/home/u".into())),
            PathBuf::from("/home/u/.local/share/berth")
        );
    }
}
