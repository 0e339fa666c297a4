//! What a container was created with (`containers/<id>/container.json`):
//! written once by `create`, read by the shim at every start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_oci::Healthcheck;
use berth_runtime::mounts::MountRequest;
use berth_runtime::RunOptions;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub(crate) const CONFIG_FILE: &str = "container.json";

/// `--restart`: Docker's policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `no`, `on-failure`, `always` or `unless-stopped`.
    pub name: String,
    /// For `on-failure[:N]`; 0 is unlimited.
    pub max_retries: u32,
}

impl RestartPolicy {
    /// Parses the value of `--restart`, with Docker's error texts.
    pub fn parse(value: &str) -> Result<RestartPolicy> {
        let (name, count) = match value.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (value, None),
        };
        let name = if name.is_empty() { "no" } else { name };
        match (name, count) {
            ("no" | "always" | "unless-stopped", None) => Ok(RestartPolicy {
                name: name.to_string(),
                max_retries: 0,
            }),
            ("no" | "always" | "unless-stopped", Some(_)) => Err(Error::Invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string())),
            ("on-failure", count) => {
                let max_retries = match count {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| {
                        Error::Invalid(format!("invalid restart policy format: maximum retry count must be an integer: {c}"))
                    })?,
                };
                Ok(RestartPolicy {
                    name: name.to_string(),
                    max_retries,
                })
            }
            _ => Err(Error::Invalid(format!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))),
        }
    }

    /// Whether a container that exited with `code` (after `restarts`
    /// restarts) starts again.
    pub fn restarts_after(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
            _ => false,
        }
    }
}

/// A container's creation-time settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    pub id: String,
    /// The image as the user named it.
    pub image: String,
    /// The image ID (`sha256:…`).
    pub image_id: String,
    /// RFC 3339.
    pub created: String,
    pub run: RunOptions,
    /// The image's snapshot directories, top first, for the overlay.
    pub lower: Vec<PathBuf>,
    /// The snapshots directory the lower paths are under.
    pub snapshots_dir: PathBuf,
    /// `-i`: the container's stdin is kept open for attach.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client's stdin ends.
    pub stdin_once: bool,
    pub restart: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal`, else the image's STOPSIGNAL, else SIGTERM.
    pub stop_signal: String,
    /// `--stop-timeout` seconds; `None` is 10.
    pub stop_timeout: Option<i64>,
    /// The image's HEALTHCHECK with the `--health-*` flags applied;
    /// `None` or `["NONE"]` is no health check.
    pub healthcheck: Option<Healthcheck>,
    /// `-p` values as given.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--network`: `bridge`, `host`, `none` or a network's name.
    pub network: String,
    /// `--runtime`: an OCI runtime CLI on PATH; empty is the embedded one.
    pub runtime: String,
    /// `-v` and `--mount`, prepared at every start. Anonymous volumes made
    /// at the first start are added here by name, so restarts reuse them.
    pub mounts: Vec<MountRequest>,
    /// The anonymous volumes of this container (removed with `--rm`/`rm -v`).
    pub anonymous_volumes: Vec<String>,
    /// `--add-host HOST:IP`.
    pub add_hosts: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--network-alias`.
    pub network_aliases: Vec<String>,
}

impl ContainerConfig {
    pub fn read(dir: &Path) -> Result<ContainerConfig> {
        let path = dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Invalid(format!("encoding container config: {e}")))?;
        berth_fs::write_atomic(dir.join(CONFIG_FILE), &bytes)?;
        Ok(())
    }

    /// The stop timeout in seconds (Docker's default 10).
    pub fn stop_timeout(&self) -> i64 {
        self.stop_timeout.unwrap_or(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        let p = RestartPolicy::parse("on-failure:2").unwrap();
        assert!(p.restarts_after(1, 0, false));
        assert!(p.restarts_after(1, 1, false));
        assert!(!p.restarts_after(1, 2, false));
        assert!(!p.restarts_after(0, 0, false));
        let always = RestartPolicy::parse("always").unwrap();
        assert!(always.restarts_after(0, 100, false));
        assert!(!always.restarts_after(0, 0, true));
        assert!(!RestartPolicy::parse("no")
            .unwrap()
            .restarts_after(1, 0, false));
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("always:3").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }
}
