//! Capabilities: Docker's default set and its `--cap-add`/`--cap-drop`
//! rules (moby `oci/caps`): names with or without `CAP_`, any case, `ALL`.

use crate::error::SpecError;

/// Docker's default capability set, in Docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines (0 to 40, `CAP_CHECKPOINT_RESTORE`), by
/// number. A runtime skips the ones an older kernel lacks.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const ALL: &str = "ALL";

/// `chown`, `CAP_chown`, `all` → `CAP_CHOWN`, ..., `ALL`; unknown names fail.
fn normalize(names: &[String]) -> Result<Vec<String>, SpecError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let upper = name.trim().to_ascii_uppercase();
        let cap = if upper == ALL || upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if cap != ALL && !ALL_CAPABILITIES.contains(&cap.as_str()) {
            return Err(SpecError::UnknownCapability(cap));
        }
        if !out.contains(&cap) {
            out.push(cap);
        }
    }
    Ok(out)
}

/// The capability list for a container: Docker's `TweakCapabilities`.
///
/// Privileged gets everything; `--cap-add ALL` everything but the drops;
/// `--cap-drop ALL` only the adds; otherwise the defaults minus the drops
/// plus the adds.
/// A capability's number (its index in [`ALL_CAPABILITIES`]).
pub fn number(cap: &str) -> Option<u32> {
    ALL_CAPABILITIES
        .iter()
        .position(|c| *c == cap)
        .and_then(|i| u32::try_from(i).ok())
}

pub fn capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    let all = || ALL_CAPABILITIES.iter().map(|c| c.to_string());
    if privileged {
        return Ok(all().collect());
    }
    let adds = normalize(cap_add)?;
    let drops = normalize(cap_drop)?;
    let has = |list: &[String], cap: &str| list.iter().any(|c| c == cap);

    let mut caps: Vec<String> = if has(&adds, ALL) {
        all().filter(|c| !has(&drops, c)).collect()
    } else if has(&drops, ALL) {
        adds
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !has(&drops, c))
            .map(|c| c.to_string())
            .collect();
        for cap in adds {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        caps
    };
    caps.retain(|c| c != ALL);
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rules() {
        let default = capabilities(&[], &[], false).unwrap();
        assert_eq!(default, DEFAULT_CAPABILITIES.to_vec());

        let caps = capabilities(
            &strings(&["net_admin", "CAP_SYS_TIME", "chown"]),
            &[],
            false,
        )
        .unwrap();
        assert_eq!(caps.len(), 16);
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_TIME".to_string()));

        let caps = capabilities(&[], &strings(&["CHOWN", "cap_kill"]), false).unwrap();
        assert_eq!(caps.len(), 12);
        assert!(!caps.iter().any(|c| c == "CAP_CHOWN" || c == "CAP_KILL"));

        let caps = capabilities(&strings(&["all"]), &strings(&["MKNOD"]), false).unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 1);

        let caps = capabilities(&strings(&["CHOWN"]), &strings(&["ALL"]), false).unwrap();
        assert_eq!(caps, vec!["CAP_CHOWN"]);
        assert!(capabilities(&[], &strings(&["ALL"]), false)
            .unwrap()
            .is_empty());

        let caps = capabilities(&[], &strings(&["ALL"]), true).unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len());

        let err = capabilities(&strings(&["FLY"]), &[], false).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FLY\"");
    }
}
