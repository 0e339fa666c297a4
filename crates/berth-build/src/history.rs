//! The texts of steps: how BuildKit shows an instruction, the argv of a
//! RUN, and the `created_by` of history entries.

use berth_dockerfile::instructions::{Command, CommandLine, Healthcheck, Run};

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

/// The instruction words BuildKit shows for a step.
pub(crate) fn describe(command: &Command) -> String {
    match command {
        Command::Run(r) => match &r.command {
            CommandLine::Shell(s) => format!("RUN {s}"),
            CommandLine::Exec(v) => format!("RUN {}", serde_json::to_string(v).unwrap_or_default()),
        },
        Command::Copy(c) => {
            let mut s = String::from("COPY ");
            if let Some(f) = &c.from {
                s.push_str(&format!("--from={f} "));
            }
            if let Some(o) = &c.chown {
                s.push_str(&format!("--chown={o} "));
            }
            if let Some(m) = &c.chmod {
                s.push_str(&format!("--chmod={m} "));
            }
            for e in &c.exclude {
                s.push_str(&format!("--exclude={e} "));
            }
            if c.parents {
                s.push_str("--parents ");
            }
            for w in &c.paths.sources {
                s.push_str(&w.text);
                s.push(' ');
            }
            for f in &c.paths.inline {
                s.push_str(&format!("<<{} ", f.name));
            }
            s.push_str(&c.paths.dest.text);
            s
        }
        Command::Add(a) => {
            let mut s = String::from("ADD ");
            if let Some(o) = &a.chown {
                s.push_str(&format!("--chown={o} "));
            }
            if let Some(m) = &a.chmod {
                s.push_str(&format!("--chmod={m} "));
            }
            for w in &a.paths.sources {
                s.push_str(&w.text);
                s.push(' ');
            }
            s.push_str(&a.paths.dest.text);
            s
        }
        Command::Workdir(w) => format!("WORKDIR {}", w.text),
        other => other.name().to_string(),
    }
}

/// How a RUN runs: its argv, and a script for its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunCommand {
    pub argv: Vec<String>,
    /// A heredoc with a `#!` line: its interpreter reads it from stdin.
    pub stdin: Option<String>,
}

/// The argv of a RUN: exec form as is; shell form in SHELL; a heredoc
/// script given to the shell with its body, or, when it starts with `#!`,
/// to its interpreter on standard input.
pub(crate) fn run_command(run: &Run, shell: &[String]) -> RunCommand {
    let argv = |script: String| {
        let mut v = shell.to_vec();
        v.push(script);
        RunCommand {
            argv: v,
            stdin: None,
        }
    };
    match &run.command {
        CommandLine::Exec(v) => RunCommand {
            argv: v.clone(),
            stdin: None,
        },
        CommandLine::Shell(s) if run.files.is_empty() => argv(s.clone()),
        CommandLine::Shell(s) => {
            let trimmed = s.trim();
            let only_heredoc = trimmed.starts_with("<<")
                && !trimmed.contains(char::is_whitespace)
                && run.files.len() == 1;
            match (only_heredoc, run.files.first()) {
                (true, Some(f)) => match f.data.strip_prefix("#!") {
                    Some(rest) => {
                        let line = rest.lines().next().unwrap_or_default();
                        let interpreter: Vec<String> =
                            line.split_whitespace().map(str::to_string).collect();
                        if interpreter.is_empty() {
                            argv(f.data.clone())
                        } else {
                            RunCommand {
                                argv: interpreter,
                                stdin: Some(f.data.clone()),
                            }
                        }
                    }
                    None => argv(f.data.clone()),
                },
                _ => {
                    let mut script = s.clone();
                    for f in &run.files {
                        script.push('\n');
                        script.push_str(&f.data);
                        if !f.data.ends_with('\n') {
                            script.push('\n');
                        }
                        script.push_str(&f.name);
                    }
                    argv(script)
                }
            }
        }
    }
}
