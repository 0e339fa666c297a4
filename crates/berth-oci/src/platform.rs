//! Platforms (`linux/arm64/v8`): parsing, normalisation and matching with the
//! rules of containerd's `platforms` package, which Docker uses to pick an
//! image from a manifest list.
//!
//! - [`Platform::parse`] reads `os`, `arch`, `os/arch` or `os/arch/variant`
//!   (and `windows(10.0.17763)/amd64` for an OS version), normalises
//!   (`x86_64`→`amd64`, `aarch64`→`arm64`, `armhf`→`arm/v7`, `arm`→`arm/v7`)
//!   and spells arm64 as `arm64/v8`, as containerd does.
//! - [`Platform::normalize`] is what comparisons use: `arm64/v8` and `arm64`
//!   are the same platform, `amd64/v1` and `amd64` too.
//! - [`Platform::rank`] says how well an image for one platform runs on
//!   another (`arm64` runs `arm/v7`, `amd64/v3` runs `amd64/v2`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The platform of an image or a manifest-list entry, with OCI field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Docker manifest lists' (deprecated) CPU features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// Longest specifier accepted, so that error messages stay bounded.
const MAX_SPEC_LEN: usize = 128;

fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    if os == "macos" {
        "darwin".to_string()
    } else {
        os
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), variant)
        }
        "aarch64" | "arm64" => {
            let variant = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        _ => (arch, variant),
    }
}

fn valid_component(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Platform {
    /// A platform from its parts, unnormalised.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
            ..Platform::default()
        }
    }

    /// The platform this process runs on (for `linux/amd64` hosts,
    /// `linux/amd64`), as Go's `GOOS/GOARCH` name it.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", "v8"),
            "arm" => ("arm", "v7"),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", ""),
            "powerpc64" => ("ppc64", ""),
            "loongarch64" => ("loong64", ""),
            other => (other, ""),
        };
        Platform::new(os, arch, variant)
    }

    /// Parses a platform specifier as containerd's `platforms.Parse` does.
    pub fn parse(spec: &str) -> Result<Platform, Error> {
        let err = |reason| Error::Platform {
            spec: spec.chars().take(MAX_SPEC_LEN).collect(),
            reason,
        };
        if spec.len() > MAX_SPEC_LEN {
            return Err(err("too long"));
        }
        if spec.contains('*') {
            return Err(err("wildcards are not supported"));
        }
        let mut parts: Vec<&str> = spec.split('/').collect();
        let mut os_version = String::new();
        if let Some(first) = parts.first_mut() {
            if let Some((os, rest)) = first.split_once('(') {
                let version = rest
                    .strip_suffix(')')
                    .filter(|v| !v.is_empty() && valid_component(v))
                    .ok_or_else(|| err("malformed OS version"))?;
                os_version = version.to_string();
                *first = os;
            }
        }
        if !parts.iter().all(|p| valid_component(p)) {
            return Err(err(
                "each component must be non-empty letters, digits, '_', '.' or '-'",
            ));
        }
        let mut p = Platform {
            os_version,
            ..Platform::default()
        };
        match parts.as_slice() {
            [one] => {
                let os = normalize_os(one);
                if KNOWN_OS.contains(&os.as_str()) {
                    let host = Platform::host();
                    p.os = os;
                    p.architecture = host.architecture;
                    if p.architecture == "arm" && host.variant != "v7" {
                        p.variant = host.variant;
                    }
                    return Ok(p);
                }
                let (arch, mut variant) = normalize_arch(one, "");
                if arch == "arm" && variant == "v7" {
                    variant.clear();
                }
                if !KNOWN_ARCH.contains(&arch.as_str()) {
                    return Err(err("unknown operating system or architecture"));
                }
                p.os = Platform::host().os;
                p.architecture = arch;
                p.variant = variant;
                Ok(p)
            }
            [os, arch] | [os, arch, _] => {
                let variant = parts.get(2).copied().unwrap_or("");
                p.os = normalize_os(os);
                (p.architecture, p.variant) = normalize_arch(arch, variant);
                if p.architecture == "arm64" && p.variant.is_empty() {
                    p.variant = "v8".into();
                }
                Ok(p)
            }
            _ => Err(err("expected os[/arch[/variant]]")),
        }
    }

    /// The form comparisons use (lower-case, aliases resolved, default
    /// variants dropped for arm64 and amd64, `v7` made explicit for arm).
    pub fn normalize(&self) -> Platform {
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        Platform {
            os: normalize_os(&self.os),
            architecture,
            variant,
            ..self.clone()
        }
    }

    /// Whether `candidate` (a manifest-list entry) is exactly this platform
    /// after normalisation. The OS version only counts when both have one.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let want = self.normalize();
        let have = candidate.normalize();
        want.os == have.os
            && want.architecture == have.architecture
            && want.variant == have.variant
            && (want.os_version.is_empty()
                || have.os_version.is_empty()
                || want.os_version == have.os_version)
    }

    /// Platforms whose images run here, best first (containerd's
    /// `platforms.Only`): the platform itself, then older variants of it,
    /// then 32-bit relatives.
    pub fn compatible(&self) -> Vec<Platform> {
        let base = self.normalize();
        let mut out = vec![base.clone()];
        let with = |arch: &str, variant: String| Platform {
            architecture: arch.to_string(),
            variant,
            ..base.clone()
        };
        let version = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
        let arm_down = |from: u32, out: &mut Vec<Platform>| {
            for v in (5..from).rev() {
                out.push(with("arm", format!("v{v}")));
            }
        };
        match base.architecture.as_str() {
            "amd64" => {
                if let Some(v) = version(&base.variant) {
                    for v in (1..v).rev() {
                        out.push(with("amd64", format!("v{v}")));
                    }
                }
                out.push(with("386", String::new()));
            }
            "arm" => {
                if let Some(v) = version(&base.variant) {
                    arm_down(v, &mut out);
                }
            }
            "arm64" => {
                let v = if base.variant.is_empty() {
                    Some(8)
                } else {
                    version(&base.variant)
                };
                if let Some(v) = v {
                    out.push(with("arm", format!("v{v}")));
                    arm_down(v, &mut out);
                }
            }
            _ => {}
        }
        out
    }

    /// How well an image for `candidate` suits this platform: `Some(0)` for
    /// an exact match, larger for fallbacks, `None` when it cannot run.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        self.compatible().iter().position(|p| p.matches(candidate))
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// `os/arch[/variant]`, as containerd's `platforms.Format` (`unknown` when
/// the OS is empty).
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        f.write_str(&self.os)?;
        for part in [&self.architecture, &self.variant] {
            if !part.is_empty() {
                write!(f, "/{part}")?;
            }
        }
        Ok(())
    }
}
