//! `berth cp`: files between a container and the host, or a tar stream
//! (`-`) on stdin/stdout, with the docker CLI's argument rules.

use std::path::Path;

use berth_engine::containers::copy::CopyOptions;
use berth_engine::Engine;

use crate::cli::CpArgs;
use crate::exit::CliError;

/// `CONTAINER:PATH` or a local path. Like docker: an absolute path, or one
/// whose part before the first `:` starts with `.`, is local (so
/// `./a:b` names a local file).
fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

pub fn cp(engine: &mut Engine, args: &CpArgs) -> Result<(), CliError> {
    let (src_container, src) = split_arg(&args.source);
    let (dest_container, dest) = split_arg(&args.destination);
    let opts = CopyOptions {
        archive: args.archive,
        follow_link: args.follow_link,
    };
    let fail = |e: berth_engine::Error| CliError::failure(e.to_string());
    match (src_container, dest_container) {
        (None, None) => Err(CliError::failure(
            "must specify at least one container source",
        )),
        (Some(_), Some(_)) => Err(CliError::failure(
            "copying between containers is not supported",
        )),
        (Some(name), None) => {
            let container = engine.container(name).map_err(fail)?;
            if dest == "-" {
                let stdout = std::io::stdout();
                engine
                    .archive_from_container(&container, src, &opts, stdout.lock())
                    .map_err(fail)
            } else {
                engine
                    .copy_from_container(&container, src, Path::new(dest), &opts)
                    .map_err(fail)
            }
        }
        (None, Some(name)) => {
            let container = engine.container(name).map_err(fail)?;
            if src == "-" {
                let stdin = std::io::stdin();
                engine
                    .extract_to_container(&container, dest, stdin.lock())
                    .map_err(fail)
            } else {
                engine
                    .copy_to_container(&container, Path::new(src), dest, &opts)
                    .map_err(fail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_arg;

    #[test]
    fn container_and_local_arguments() {
        assert_eq!(split_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_arg("web:etc"), (Some("web"), "etc"));
        assert_eq!(split_arg("/abs/a:b"), (None, "/abs/a:b"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("file"), (None, "file"));
        assert_eq!(split_arg("-"), (None, "-"));
    }
}
