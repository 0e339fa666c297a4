//! `berth save` and `berth load` (and their `image …` forms), with the
//! docker CLI's checks and output.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use berth_engine::Engine;

use crate::cli::{LoadArgs, SaveArgs};
use crate::exit::CliError;

/// `berth save [-o FILE] IMAGE…`: to the file (written atomically) or to
/// standard output, which must not be a terminal.
pub fn save(engine: &Engine, args: &SaveArgs) -> Result<(), CliError> {
    match &args.output {
        Some(path) => {
            let path = Path::new(path);
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(CliError::failure(format!(
                    "failed to save image: invalid output path: directory \"{}\" does not exist",
                    dir.display()
                )));
            }
            engine
                .save_to_path(&args.images, path)
                .map_err(CliError::from_engine)
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(CliError::failure(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
            engine
                .save(&args.images, &mut out)
                .map_err(CliError::from_engine)?;
            out.flush()
                .map_err(|e| CliError::failure(format!("writing to standard output: {e}")))
        }
    }
}

/// `berth load [-i FILE] [-q]`: from the file or standard input, printing
/// `Loaded image: NAME` / `Loaded image ID: sha256:…` (also with `-q`, as
/// docker: it only silences progress).
pub fn load(engine: &mut Engine, args: &LoadArgs) -> Result<(), CliError> {
    let reader: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(
            std::fs::File::open(path).map_err(|e| CliError::failure(format!("{path}: {e}")))?,
        ),
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(CliError::failure(
                    "requested load from stdin, but stdin is empty",
                ));
            }
            Box::new(stdin.lock())
        }
    };
    let loaded = engine
        .load(std::io::BufReader::with_capacity(256 * 1024, reader))
        .map_err(CliError::from_engine)?;
    for line in loaded {
        println!("{line}");
    }
    Ok(())
}
