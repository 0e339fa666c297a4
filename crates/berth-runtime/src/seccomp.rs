//! Docker's default seccomp profile, kept as data in `seccomp_default.json`
//! and turned into the OCI `linux.seccomp` object for one container.
//!
//! The data file is the OCI form (`defaultAction`, `defaultErrnoRet`,
//! `syscalls[].names/action/errnoRet/args`) plus the conditions moby's
//! profile format puts on each rule: `includes`/`excludes` by capability,
//! architecture (Go's names: `amd64`, `arm64`, ...) and `minKernel`, and an
//! `archMap` from the native architecture to the ones it can also execute.
//! The syscall list follows moby's `profiles/seccomp/default.json` (Apache-2.0).
//! As in Docker: a rule whose `includes.caps` are not all granted is left out
//! (so `mount`, `unshare`, `ptrace`... stay denied by default), a rule
//! excluded by a granted capability is left out (the restricted `clone` and
//! the `clone3` → ENOSYS rule vanish with `CAP_SYS_ADMIN`).

use serde::Deserialize;

use crate::error::SpecError;
use crate::oci::{Seccomp, SyscallArg, SyscallRule};

const PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    syscalls: Vec<ProfileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileRule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<SyscallArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The machine a profile is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// Go's name for the native architecture (`amd64`, `arm64`, ...).
    pub arch: &'a str,
    /// The running kernel's `(major, minor)`; `None` when unknown, which
    /// fails every `minKernel` condition.
    pub kernel: Option<(u32, u32)>,
}

impl Target<'static> {
    /// This build's architecture, with the given kernel version.
    pub fn native(kernel: Option<(u32, u32)>) -> Target<'static> {
        Target {
            arch: go_arch(std::env::consts::ARCH),
            kernel,
        }
    }
}

/// Rust's architecture names as Go's `GOARCH`, which the profile uses.
fn go_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64le",
        "mips64" => "mips64",
        "loongarch64" => "loong64",
        _ => "unknown",
    }
}

/// libseccomp's name for a Go architecture.
fn seccomp_arch(go_arch: &str) -> Option<&'static str> {
    Some(match go_arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "mips64" => "SCMP_ARCH_MIPS64",
        _ => return None,
    })
}

/// `"4.8"` → `(4, 8)`.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// `uname -r` text (`6.1.0-18-amd64`) → `(6, 1)`.
pub fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let numeric: String = release
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    parse_version(&numeric)
}

/// Docker's default profile for a process with capabilities `caps`.
pub fn default_profile(caps: &[String], target: &Target<'_>) -> Result<Seccomp, SpecError> {
    let profile: Profile = serde_json::from_str(PROFILE).map_err(SpecError::SeccompProfile)?;
    let has_cap = |c: &String| caps.contains(c);

    let mut architectures = Vec::new();
    if let Some(native) = seccomp_arch(target.arch) {
        for entry in profile.arch_map.iter().filter(|a| a.architecture == native) {
            architectures.push(entry.architecture.clone());
            architectures.extend(entry.sub_architectures.iter().cloned());
        }
    }

    let mut syscalls = Vec::new();
    for rule in profile.syscalls {
        let inc = &rule.includes;
        let exc = &rule.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
            continue;
        }
        if !inc.caps.iter().all(has_cap) {
            continue;
        }
        if let Some(min) = &inc.min_kernel {
            match (parse_version(min), target.kernel) {
                (Some(min), Some(running)) if running >= min => {}
                _ => continue,
            }
        }
        if exc.arches.iter().any(|a| a == target.arch) || exc.caps.iter().any(has_cap) {
            continue;
        }
        syscalls.push(SyscallRule {
            names: rule.names,
            action: rule.action,
            errno_ret: rule.errno_ret,
            args: rule.args,
        });
    }

    Ok(Seccomp {
        default_action: profile.default_action,
        default_errno_ret: profile.default_errno_ret,
        architectures,
        syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::DEFAULT_CAPABILITIES;

    fn allowed(profile: &Seccomp) -> Vec<&str> {
        profile
            .syscalls
            .iter()
            .filter(|r| r.action == "SCMP_ACT_ALLOW")
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }

    const AMD64: Target<'static> = Target {
        arch: "amd64",
        kernel: Some((6, 1)),
    };

    #[test]
    fn default_caps() {
        let caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
        let p = default_profile(&caps, &AMD64).unwrap();
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(p.default_errno_ret, Some(1));
        assert_eq!(
            p.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        let names = allowed(&p);
        for name in [
            "read",
            "write",
            "execve",
            "arch_prctl",
            "chroot",
            "ptrace",
            "clone",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        for name in ["mount", "kexec_load", "unshare", "reboot", "set_tls", "bpf"] {
            assert!(!names.contains(&name), "{name}");
        }
        // clone only with the namespace flags masked out; clone3 → ENOSYS.
        let clone = p.syscalls.iter().find(|r| r.names == ["clone"]).unwrap();
        assert_eq!(clone.args[0].op, "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone.args[0].index, 0);
        let clone3 = p.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(clone3.errno_ret, Some(38));
    }

    #[test]
    fn sys_admin_and_old_kernels() {
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let p = default_profile(&caps, &AMD64).unwrap();
        let names = allowed(&p);
        assert!(names.contains(&"mount") && names.contains(&"clone3"));
        assert!(!p.syscalls.iter().any(|r| r.names == ["clone"]));
        assert!(!names.contains(&"chroot"));

        let old = Target {
            arch: "amd64",
            kernel: Some((4, 4)),
        };
        assert!(!allowed(&default_profile(&[], &old).unwrap()).contains(&"ptrace"));
        let arm = Target {
            arch: "arm64",
            kernel: None,
        };
        let p = default_profile(&[], &arm).unwrap();
        assert_eq!(p.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
        assert!(allowed(&p).contains(&"set_tls"));
        assert!(!allowed(&p).contains(&"arch_prctl"));
    }

    #[test]
    fn kernel_release() {
        assert_eq!(parse_kernel_release("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_kernel_release("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_release("5"), Some((5, 0)));
        assert_eq!(parse_kernel_release("x"), None);
    }
}
