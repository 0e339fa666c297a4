//! `berth version`.

use crate::cli::VersionArgs;
use crate::exit::CliError;

/// Prints the client's version block, or one field with `--format`.
pub fn run(args: &VersionArgs) -> Result<(), CliError> {
    let version = env!("CARGO_PKG_VERSION");
    let arch = berth_oci::Platform::host().architecture;
    let os_arch = format!("{}/{arch}", std::env::consts::OS);
    if let Some(format) = &args.format {
        let out = format
            .replace("{{.Client.Version}}", version)
            .replace("{{.Client.Os}}", std::env::consts::OS)
            .replace("{{.Client.Arch}}", &arch);
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
