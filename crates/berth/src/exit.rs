//! Errors and exit codes, as the docker CLI reports them: `Error: …` on
//! standard error; 125 for usage errors, 1 for failures.

use std::fmt;
use std::process::ExitCode;

/// A command failure and the exit status it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    message: String,
    /// Already formatted for the user: print as is, no `Error:` prefix.
    preformatted: bool,
}

impl CliError {
    /// A failure of the operation (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
            preformatted: false,
        }
    }

    /// Bad flags or arguments (exit 125, as docker).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 125,
            message: message.into(),
            preformatted: false,
        }
    }

    /// An exit status with nothing to print (a container's own status).
    pub fn exit(code: u8) -> Self {
        CliError {
            code,
            message: String::new(),
            preformatted: true,
        }
    }

    /// A failure with a specific status (`docker run`'s 125, 126, 127).
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            preformatted: false,
        }
    }

    /// A failure whose report (for example lint findings) is already written.
    pub fn reported(text: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: text.into(),
            preformatted: true,
        }
    }

    /// Prints the error and returns the exit code.
    pub fn report(&self) -> ExitCode {
        if self.preformatted {
            eprint!("{}", self.message);
        } else {
            eprintln!("Error: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl CliError {
    /// An engine error: `Error: …`, exit 1, as the docker CLI shows daemon
    /// errors.
    pub fn from_engine(e: berth_engine::Error) -> Self {
        CliError::failure(e.to_string())
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::failure(format!("{e:#}"))
    }
}
