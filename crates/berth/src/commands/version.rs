//! `berth version`.

use crate::cli::VersionArgs;
use crate::exit::CliError;

/// Prints the client's version block, or one field with `--format`.
pub fn run(args: &VersionArgs) -> Result<(), CliError> {
    let version = env!("CARGO_PKG_VERSION");
    let os_arch = format!("{}/{}", std::env::consts::OS, go_arch());
    if let Some(format) = &args.format {
        let out = format
            .replace("{{.Client.Version}}", version)
            .replace("{{.Client.Os}}", std::env::consts::OS)
            .replace("{{.Client.Arch}}", go_arch());
        if out.contains("{{") {
            return Err(CliError::usage(format!(
                "template: unsupported field in {format:?} (supported: .Client.Version, .Client.Os, .Client.Arch)"
            )));
        }
        println!("{out}");
        return Ok(());
    }
    println!("Client: berth");
    println!(" Version:           {version}");
    println!(" Rust version:      {}", env!("BERTH_RUSTC_VERSION"));
    println!(" Git commit:        {}", env!("BERTH_GIT_COMMIT"));
    println!(" OS/Arch:           {os_arch}");
    Ok(())
}

/// The architecture as Go (and so Docker and OCI) names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
