//! cgroup limits from `docker run`'s `--memory`, `--memory-swap`, `--cpus`,
//! `--cpu-shares` and `--pids-limit`, parsed with Docker's units and checked
//! with the daemon's rules and error texts (moby `daemon/daemon_unix.go`):
//!
//! - sizes are `go-units.RAMInBytes`: `512m`, `1g`, `1.5G`, `1048576b`,
//!   binary multiples (`k` = 1024);
//! - a memory limit is at least 6 MiB; `--memory-swap` (memory plus swap)
//!   is `-1` (unlimited) or at least the memory limit, needs `--memory`,
//!   and defaults to twice the memory limit;
//! - `--cpus 1.5` becomes a CFS quota of 150000 µs per 100000 µs period;
//! - `--cpu-shares` is clamped to 2..=262144; `--pids-limit` ≤ 0 is
//!   unlimited.
//!
//! [`Resources::validate`] applies the daemon's rules once, when the
//! container is created; [`crate::build_spec`] then writes the validated
//! values into `linux.resources` as they are. libcontainer applies them to
//! the cgroup v1 controllers on a hybrid host, or to the v2 files.

use std::path::Path;

use crate::error::SpecError;
use crate::oci;

/// Docker's smallest memory limit (`linuxMinMemory`).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The CFS period `--cpus` uses, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Smallest and largest `--cpu-shares` (`linuxMinCPUShares`, `linuxMaxCPUShares`).
pub const MIN_CPU_SHARES: i64 = 2;
pub const MAX_CPU_SHARES: i64 = 262_144;

/// The limits a container runs with; `None` leaves the cgroup's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory plus swap in bytes, `-1` unlimited.
    pub memory_swap: Option<i64>,
    /// `--cpus`, in billionths of a CPU (Docker's `NanoCPUs`).
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`, the relative weight.
    pub cpu_shares: Option<i64>,
    /// `--pids-limit`; ≤ 0 is unlimited.
    pub pids_limit: Option<i64>,
}

/// What the host offers, for [`Resources::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceHost {
    /// Online CPUs (the upper bound of `--cpus`).
    pub cpus: u32,
    /// Whether swap can be limited (cgroup v1 `memory.memsw.*`, or v2).
    pub swap_limit: bool,
}

impl ResourceHost {
    /// Reads the running host.
    pub fn detect() -> ResourceHost {
        let cpus = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let cgroup = Path::new("/sys/fs/cgroup");
        let swap_limit = if cgroup.join("memory").is_dir() {
            cgroup.join("memory/memory.memsw.limit_in_bytes").exists()
        } else {
            cgroup.join("cgroup.controllers").exists()
        };
        ResourceHost { cpus, swap_limit }
    }
}

/// Validated limits and the warnings Docker would print for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub resources: Resources,
    pub warnings: Vec<String>,
}

impl Resources {
    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The daemon's checks and defaults: errors for impossible limits,
    /// `--memory-swap` defaulted to twice `--memory` (or dropped where swap
    /// cannot be limited), shares clamped, unlimited pids dropped.
    pub fn validate(&self, host: ResourceHost) -> Result<Validated, SpecError> {
        let mut out = *self;
        let mut warnings = Vec::new();
        let memory = self.memory.unwrap_or(0);
        let swap = self.memory_swap.unwrap_or(0);
        if memory != 0 && memory < MIN_MEMORY {
            return Err(SpecError::Resource(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        if memory > 0 && swap > 0 && swap < memory {
            return Err(SpecError::Resource(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        if memory == 0 && swap > 0 {
            return Err(SpecError::Resource(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            ));
        }
        out.memory = (memory > 0).then_some(memory);
        out.memory_swap = match swap {
            0 if memory > 0 => Some(memory.saturating_mul(2)),
            0 => None,
            s => Some(s),
        };
        if out.memory_swap.is_some() && !host.swap_limit {
            warnings.push(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                    .into(),
            );
            out.memory_swap = None;
        }
        if let Some(nano) = self.nano_cpus {
            if nano < 0 || nano > i64::from(host.cpus).saturating_mul(1_000_000_000) {
                return Err(SpecError::Resource(format!(
                    "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
                    n = host.cpus
                )));
            }
            out.nano_cpus = (nano > 0).then_some(nano);
        }
        if let Some(shares) = self.cpu_shares {
            out.cpu_shares = match shares {
                0 => None,
                s if s < 0 => {
                    warnings.push(format!(
                        "Changing requested CPUShares of {s} to minimum allowed of {MIN_CPU_SHARES}"
                    ));
                    Some(MIN_CPU_SHARES)
                }
                s if s > MAX_CPU_SHARES => {
                    warnings.push(format!(
                        "Changing requested CPUShares of {s} to maximum allowed of {MAX_CPU_SHARES}"
                    ));
                    Some(MAX_CPU_SHARES)
                }
                s => Some(s),
            };
        }
        out.pids_limit = self.pids_limit.filter(|p| *p > 0);
        Ok(Validated {
            resources: out,
            warnings,
        })
    }

    /// The memory, CPU and pids parts of `linux.resources`, as given.
    pub(crate) fn apply_to(&self, spec: &mut oci::Resources) {
        if self.memory.is_some() || self.memory_swap.is_some() {
            spec.memory = Some(oci::MemoryResources {
                limit: self.memory,
                swap: self.memory_swap,
            });
        }
        let quota = self.nano_cpus.filter(|n| *n > 0).map(|nano| {
            i64::try_from(i128::from(nano) * i128::from(CPU_PERIOD_US) / 1_000_000_000)
                .unwrap_or(i64::MAX)
        });
        let shares = self.cpu_shares.filter(|s| *s > 0).map(|s| s.unsigned_abs());
        if quota.is_some() || shares.is_some() {
            spec.cpu = Some(oci::CpuResources {
                shares,
                quota,
                period: quota.map(|_| CPU_PERIOD_US),
            });
        }
        if let Some(limit) = self.pids_limit.filter(|p| *p > 0) {
            spec.pids = Some(oci::PidsResources { limit });
        }
    }
}

/// Docker's `units.RAMInBytes`: a number (decimals allowed) with an
/// optional binary unit `k`, `m`, `g`, `t`, `p` (any case), optionally
/// followed by `i` and/or `b`. `1g` = 1073741824.
pub fn parse_ram_bytes(value: &str) -> Result<i64, SpecError> {
    let invalid = || SpecError::Resource(format!("invalid size: '{value}'"));
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    // Go's regexp: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`.
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.contains("..")
    {
        return Err(invalid());
    }
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix);
    let mut chars = suffix.chars().peekable();
    let multiplier: f64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some(unit @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            let power = match unit {
                'k' => 1,
                'm' => 2,
                'g' => 3,
                't' => 4,
                _ => 5,
            };
            1024f64.powi(power)
        }
        _ => 1.0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(invalid());
    }
    // `1.2.3` passes the pattern; Go's ParseFloat then rejects it.
    let size: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = size * multiplier;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// `--memory-swap`: `-1` is unlimited, anything else a size.
pub fn parse_memory_swap(value: &str) -> Result<i64, SpecError> {
    if value == "-1" {
        return Ok(-1);
    }
    parse_ram_bytes(value)
}

/// `--cpus`: a decimal number of CPUs, to billionths (`NanoCPUs`).
pub fn parse_cpus(value: &str) -> Result<i64, SpecError> {
    let not_rational =
        || SpecError::Resource(format!("failed to parse {value} as a rational number"));
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(not_rational());
    }
    let significant = fraction.trim_end_matches('0');
    if significant.len() > 9 {
        return Err(SpecError::Resource("value is too precise".into()));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_rational())?
    };
    let mut nano_fraction: i64 = 0;
    for (i, digit) in significant.bytes().enumerate() {
        nano_fraction += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    let nano = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nano_fraction))
        .ok_or_else(not_rational)?;
    Ok(if negative { -nano } else { nano })
}

/// An integer flag (`--cpu-shares`, `--pids-limit`), with Go's error text.
pub fn parse_int_flag(value: &str) -> Result<i64, SpecError> {
    value.parse().map_err(|_| {
        SpecError::Resource(format!(
            "strconv.ParseInt: parsing \"{value}\": invalid syntax"
        ))
    })
}

/// The values of the resource flags as typed (`None` when not given).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceFlags<'a> {
    pub memory: Option<&'a str>,
    pub memory_swap: Option<&'a str>,
    pub cpus: Option<&'a str>,
    pub cpu_shares: Option<&'a str>,
    pub pids_limit: Option<&'a str>,
}

impl ResourceFlags<'_> {
    /// Parses every flag; an error reads as the docker CLI's flag errors:
    /// `invalid argument "1x" for "-m, --memory" flag: invalid size: '1x'`.
    /// The result still needs [`Resources::validate`].
    pub fn parse(&self) -> Result<Resources, SpecError> {
        fn flag<T>(
            value: Option<&str>,
            name: &str,
            parse: fn(&str) -> Result<T, SpecError>,
        ) -> Result<Option<T>, SpecError> {
            value
                .map(|v| {
                    parse(v).map_err(|e| {
                        SpecError::Resource(format!(
                            "invalid argument \"{v}\" for \"{name}\" flag: {e}"
                        ))
                    })
                })
                .transpose()
        }
        Ok(Resources {
            memory: flag(self.memory, "-m, --memory", parse_ram_bytes)?,
            memory_swap: flag(self.memory_swap, "--memory-swap", parse_memory_swap)?,
            nano_cpus: flag(self.cpus, "--cpus", parse_cpus)?,
            cpu_shares: flag(self.cpu_shares, "-c, --cpu-shares", parse_int_flag)?,
            pids_limit: flag(self.pids_limit, "--pids-limit", parse_int_flag)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: ResourceHost = ResourceHost {
        cpus: 2,
        swap_limit: true,
    };

    #[test]
    fn sizes() {
        assert_eq!(parse_ram_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_ram_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_ram_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_ram_bytes("1048576b").unwrap(), 1 << 20);
        assert_eq!(parse_ram_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_ram_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_ram_bytes("10 MiB").unwrap(), 10 << 20);
        assert_eq!(parse_ram_bytes("2kb").unwrap(), 2048);
        for bad in [
            "",
            "m",
            "-1",
            "1x",
            "1.5.",
            ".5m",
            "1mm",
            "1 m b",
            "99999999999999p",
        ] {
            let e = parse_ram_bytes(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid size: '{bad}'"));
        }
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
        assert!(parse_memory_swap("-2").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("0.01").unwrap(), 10_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("0.5000000000").unwrap(), 500_000_000);
        assert_eq!(
            parse_cpus("abc").unwrap_err().to_string(),
            "failed to parse abc as a rational number"
        );
        assert_eq!(
            parse_cpus("0.0000000001").unwrap_err().to_string(),
            "value is too precise"
        );
        let r = Resources {
            nano_cpus: Some(3_000_000_000),
            ..Resources::default()
        };
        assert_eq!(
            r.validate(HOST).unwrap_err().to_string(),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
    }

    #[test]
    fn memory_rules() {
        let mem = |m: Option<i64>, s: Option<i64>| Resources {
            memory: m,
            memory_swap: s,
            ..Resources::default()
        };
        assert_eq!(
            mem(Some(1 << 20), None)
                .validate(HOST)
                .unwrap_err()
                .to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            mem(Some(64 << 20), Some(32 << 20))
                .validate(HOST)
                .unwrap_err()
                .to_string(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            mem(None, Some(32 << 20))
                .validate(HOST)
                .unwrap_err()
                .to_string(),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        let v = mem(Some(64 << 20), None).validate(HOST).unwrap();
        assert_eq!(v.resources.memory_swap, Some(128 << 20));
        let v = mem(Some(64 << 20), Some(-1)).validate(HOST).unwrap();
        assert_eq!(v.resources.memory_swap, Some(-1));
        let no_swap = ResourceHost {
            swap_limit: false,
            ..HOST
        };
        let v = mem(Some(64 << 20), None).validate(no_swap).unwrap();
        assert_eq!(v.resources.memory_swap, None);
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn flags() {
        let r = ResourceFlags {
            memory: Some("64m"),
            cpus: Some("0.5"),
            pids_limit: Some("-1"),
            ..ResourceFlags::default()
        }
        .parse()
        .unwrap();
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.nano_cpus, Some(500_000_000));
        assert_eq!(r.pids_limit, Some(-1));
        let e = ResourceFlags {
            memory: Some("1x"),
            ..ResourceFlags::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"1x\" for \"-m, --memory\" flag: invalid size: '1x'"
        );
        let e = ResourceFlags {
            cpus: Some("many"),
            ..ResourceFlags::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"many\" for \"--cpus\" flag: failed to parse many as a rational number"
        );
    }

    #[test]
    fn spec_values() {
        let r = Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(-5),
            pids_limit: Some(-1),
            ..Resources::default()
        }
        .validate(HOST)
        .unwrap();
        assert_eq!(r.warnings.len(), 1);
        let mut spec = oci::Resources::default();
        r.resources.apply_to(&mut spec);
        let cpu = spec.cpu.unwrap();
        assert_eq!(
            (cpu.quota, cpu.period, cpu.shares),
            (Some(150_000), Some(100_000), Some(2))
        );
        let memory = spec.memory.unwrap();
        assert_eq!(
            (memory.limit, memory.swap),
            (Some(64 << 20), Some(128 << 20))
        );
        assert!(spec.pids.is_none());
        let mut spec = oci::Resources::default();
        Resources {
            pids_limit: Some(5),
            ..Resources::default()
        }
        .apply_to(&mut spec);
        assert_eq!(spec.pids.unwrap().limit, 5);
        assert_eq!(parse_int_flag("5").unwrap(), 5);
        assert_eq!(
            parse_int_flag("x").unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"x\": invalid syntax"
        );
    }
}
