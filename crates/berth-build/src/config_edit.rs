//! Applies Dockerfile metadata instructions to an image's container config,
//! with Docker's rules: shell form wraps in the image's SHELL (default
//! `/bin/sh -c`), ENTRYPOINT resets an inherited CMD, relative WORKDIRs
//! join the previous one, EXPOSE defaults to tcp and expands ranges. Used by
//! `import --change` (through the engine) and by the builder.

use berth_dockerfile::instructions::{Command, CommandLine, Healthcheck};
use berth_oci::{ContainerConfig, Healthcheck as ConfigHealthcheck};

use crate::{Error, Result};

/// Docker's default shell for the shell form.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Edits one image config; remembers whether CMD was set here (so that a
/// later ENTRYPOINT keeps it).
#[derive(Debug)]
pub struct ConfigEditor<'a> {
    pub config: &'a mut ContainerConfig,
    cmd_set: bool,
}

impl<'a> ConfigEditor<'a> {
    pub fn new(config: &'a mut ContainerConfig) -> Self {
        ConfigEditor {
            config,
            cmd_set: false,
        }
    }

    /// An editor that knows whether an earlier instruction of the same
    /// stage set CMD (the builder edits one instruction at a time).
    pub fn with_cmd_set(config: &'a mut ContainerConfig, cmd_set: bool) -> Self {
        ConfigEditor { config, cmd_set }
    }

    /// True once CMD was set through this editor (or before it).
    pub fn cmd_set(&self) -> bool {
        self.cmd_set
    }

    fn shell(&self) -> Vec<String> {
        if self.config.shell.is_empty() {
            DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
        } else {
            self.config.shell.clone()
        }
    }

    fn argv(&self, line: &CommandLine) -> Vec<String> {
        match line {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => {
                let mut argv = self.shell();
                argv.push(text.clone());
                argv
            }
        }
    }

    /// The value of `key` in the config's environment.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.config.env.iter().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
        })
    }

    /// Sets `key=value` in the environment, replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .config
            .env
            .iter_mut()
            .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = entry,
            None => self.config.env.push(entry),
        }
    }

    /// Applies one metadata instruction (already expanded). Instructions
    /// that change the filesystem are refused.
    pub fn apply(&mut self, command: &Command) -> Result<()> {
        match command {
            Command::Cmd(line) => {
                self.config.cmd = self.argv(line);
                self.cmd_set = true;
                if !line.is_exec() {
                    self.config.args_escaped = false;
                }
            }
            Command::Entrypoint(line) => {
                self.config.entrypoint = self.argv(line);
                if !self.cmd_set {
                    self.config.cmd.clear();
                }
            }
            Command::Env(kvs) => {
                for kv in kvs {
                    self.set_env(&kv.key, &kv.value);
                }
            }
            Command::Label(kvs) => {
                for kv in kvs {
                    self.config.labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Command::Expose(ports) => {
                for port in ports {
                    for p in expand_port(&port.text)? {
                        self.config.exposed_ports.insert(p);
                    }
                }
            }
            Command::Volume(vols) => {
                for v in vols {
                    self.config.volumes.insert(v.text.clone());
                }
            }
            Command::User(u) => self.config.user = u.text.clone(),
            Command::Workdir(w) => {
                self.config.working_dir = join_workdir(&self.config.working_dir, &w.text);
            }
            Command::StopSignal(s) => self.config.stop_signal = s.text.clone(),
            Command::Onbuild(expr) => self.config.on_build.push(expr.clone()),
            Command::Shell(args) => self.config.shell = args.clone(),
            Command::Healthcheck(h) => self.config.healthcheck = Some(healthcheck(h)),
            Command::Maintainer(_) | Command::Arg(_) => {}
            other => {
                return Err(Error::Invalid(format!(
                    "{} changes the filesystem and cannot be applied to an image config",
                    other.name()
                )))
            }
        }
        Ok(())
    }
}

/// `WORKDIR` semantics: absolute replaces, relative joins the previous
/// (default `/`); the result is cleaned.
pub fn join_workdir(previous: &str, next: &str) -> String {
    let joined = if next.starts_with('/') {
        next.to_string()
    } else {
        let base = if previous.is_empty() { "/" } else { previous };
        format!("{}/{next}", base.trim_end_matches('/'))
    };
    berth_runtime::spec::clean_path(&joined)
}

/// `80` → `80/tcp`; `8000-8002/udp` → three entries.
pub fn expand_port(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::Invalid(format!("invalid proto: {proto}")));
    }
    let bad = || Error::Invalid(format!("invalid containerPort: {ports}"));
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if start == 0 || end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck(h: &Healthcheck) -> ConfigHealthcheck {
    let nanos = |d: &Option<std::time::Duration>| {
        d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    match h {
        Healthcheck::None => ConfigHealthcheck {
            test: vec!["NONE".into()],
            ..ConfigHealthcheck::default()
        },
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => ConfigHealthcheck {
            test: test.clone(),
            interval: nanos(interval),
            timeout: nanos(timeout),
            start_period: nanos(start_period),
            start_interval: nanos(start_interval),
            retries: retries.map_or(0, i64::from),
        },
    }
}

/// Parses and applies `--change` instructions (as `docker import` and
/// `docker commit` take them), expanding variables against the config's
/// environment.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    const ALLOWED: [&str; 12] = [
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "LABEL",
        "ONBUILD",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    let mut editor = ConfigEditor::new(config);
    for change in changes {
        let df = berth_dockerfile::parse_str(change)
            .map_err(|e| Error::Invalid(format!("--change {change:?}: {}", e.message())))?;
        for node in &df.instructions {
            let name = node.name();
            if !ALLOWED.contains(&name.as_ref()) {
                return Err(Error::Invalid(format!(
                    "{name} is not a valid change command"
                )));
            }
            let command = berth_dockerfile::instructions::parse_instruction(node)
                .map_err(|e| Error::Invalid(format!("--change {change:?}: {e}")))?;
            let mut env = berth_dockerfile::stages::Env::new();
            for kv in &editor.config.env {
                if let Some((k, v)) = kv.split_once('=') {
                    env.set(k, v);
                }
            }
            let (command, _) = berth_dockerfile::stages::expand_command(&command, '\\', &env)
                .map_err(|e| Error::Invalid(format!("--change {change:?}: {e}")))?;
            editor.apply(&command)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_docker_rules() {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &[
                "ENV PATH=/usr/bin".into(),
                "ENV APP=/srv PATH=$PATH:/opt".into(),
                "WORKDIR $APP".into(),
                "WORKDIR sub/../web".into(),
                "EXPOSE 80 8000-8001/udp".into(),
                "CMD python3 app.py".into(),
                "ENTRYPOINT [\"tini\", \"--\"]".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.env, ["PATH=/usr/bin:/opt", "APP=/srv"]);
        assert_eq!(c.working_dir, "/srv/web");
        assert_eq!(
            c.exposed_ports.iter().cloned().collect::<Vec<_>>(),
            ["80/tcp", "8000/udp", "8001/udp"]
        );
        assert_eq!(c.cmd, ["/bin/sh", "-c", "python3 app.py"]);
        assert_eq!(c.entrypoint, ["tini", "--"]);
        assert!(apply_changes(&mut c, &["RUN rm -rf /".into()])
            .unwrap_err()
            .to_string()
            .contains("not a valid change command"));
    }

    #[test]
    fn entrypoint_resets_an_inherited_cmd() {
        let mut c = ContainerConfig {
            cmd: vec!["bash".into()],
            ..ContainerConfig::default()
        };
        ConfigEditor::new(&mut c)
            .apply(&Command::Entrypoint(CommandLine::Exec(vec!["x".into()])))
            .unwrap();
        assert!(c.cmd.is_empty());
    }
}
