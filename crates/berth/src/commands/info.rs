//! `berth info`: where the store and configuration are.

use crate::exit::CliError;
use crate::settings::Settings;

pub fn run(settings: &Settings) -> Result<(), CliError> {
    println!("Client: berth");
    println!(" Version:        {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("Server: (daemonless)");
    println!(" Berth Root Dir: {}", settings.root.display());
    println!(
        " Config File:    {}{}",
        settings.config.display(),
        if settings.config_found {
            ""
        } else {
            " (not present)"
        }
    );
    Ok(())
}
