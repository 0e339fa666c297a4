//! `created_by` texts of history entries, as BuildKit writes them.

use berth_dockerfile::instructions::{Command, CommandLine, Healthcheck};

fn json_array(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The `created_by` of a metadata instruction (already expanded).
pub(crate) fn metadata(command: &Command, argv: Option<&[String]>) -> String {
    match command {
        Command::Cmd(_) | Command::Entrypoint(_) => {
            format!(
                "{} {}",
                command.name(),
                json_array(argv.unwrap_or_default())
            )
        }
        Command::Env(kvs) | Command::Label(kvs) => format!(
            "{} {}",
            command.name(),
            kvs.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Command::Expose(ports) => format!(
            "EXPOSE map[{}]",
            ports
                .iter()
                .map(|p| {
                    let t = &p.text;
                    if t.contains('/') {
                        format!("{t}:{{}}")
                    } else {
                        format!("{t}/tcp:{{}}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Command::Volume(v) => format!(
            "VOLUME [{}]",
            v.iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Command::User(w) | Command::Workdir(w) | Command::StopSignal(w) => {
            format!("{} {}", command.name(), w.text)
        }
        Command::Arg(args) => format!(
            "ARG {}",
            args.iter()
                .map(|a| match &a.default {
                    Some(d) => format!("{}={d}", a.name),
                    None => a.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Command::Shell(s) => format!("SHELL [{}]", s.join(" ")),
        Command::Maintainer(m) => format!("MAINTAINER {m}"),
        Command::Onbuild(e) => format!("ONBUILD {e}"),
        Command::Healthcheck(Healthcheck::None) => "HEALTHCHECK NONE".into(),
        Command::Healthcheck(Healthcheck::Check { test, .. }) => {
            format!("HEALTHCHECK {}", json_array(test))
        }
        other => other.name().to_string(),
    }
}

/// `RUN [|N K=V…] argv… # buildkit`.
pub(crate) fn run(argv: &[String], args: &[(String, String)]) -> String {
    let mut out = String::from("RUN ");
    if !args.is_empty() {
        out.push_str(&format!("|{} ", args.len()));
        for (k, v) in args {
            out.push_str(&format!("{k}={v} "));
        }
    }
    out.push_str(&argv.join(" "));
    out.push_str(" # buildkit");
    out
}

/// The argv of a RUN/CMD line: exec form as is, shell form wrapped.
pub(crate) fn argv(line: &CommandLine, shell: &[String]) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}
