//! `berth dockerfile dump|lint FILE|-`.

use std::io::Read;

use berth_dockerfile::lint::{lint, render_finding, Finding, Severity};

use crate::cli::DockerfileCommand;
use crate::exit::CliError;

pub fn run(cmd: &DockerfileCommand) -> Result<(), CliError> {
    match cmd {
        DockerfileCommand::Dump { file } => dump(file),
        DockerfileCommand::Lint { file } => lint_file(file),
    }
}

/// Reads FILE, or standard input for `-`; returns the display name too.
fn read_input(file: &str) -> Result<(String, Vec<u8>), CliError> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::failure(format!("reading standard input: {e}")))?;
        return Ok(("<stdin>".to_string(), buf));
    }
    let bytes = std::fs::read(file).map_err(|e| CliError::failure(format!("{file}: {e}")))?;
    Ok((file.to_string(), bytes))
}

fn dump(file: &str) -> Result<(), CliError> {
    let (name, bytes) = read_input(file)?;
    match berth_dockerfile::parse(&bytes) {
        Ok(df) => {
            print!("{}", berth_dockerfile::dump(&df));
            Ok(())
        }
        Err(e) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let finding = Finding {
                severity: Severity::Error,
                rule: "",
                message: e.message(),
                span: e.span,
            };
            Err(CliError::reported(render_finding(&name, &lines, &finding)))
        }
    }
}

fn lint_file(file: &str) -> Result<(), CliError> {
    let (name, bytes) = read_input(file)?;
    let report = lint(&bytes);
    let rendered = report.render(&name, &String::from_utf8_lossy(&bytes));
    if report.has_errors() {
        return Err(CliError::reported(rendered));
    }
    print!("{rendered}");
    Ok(())
}
