//! Resource usage of a running container (`docker stats`), read from its
//! cgroups (v1 controllers or the v2 unified hierarchy) and from the
//! network devices its init sees (`/proc/<pid>/net/dev`, loopback left
//! out). CPU % needs two samples: the container's CPU time against the
//! host's over the same interval, as Docker computes it.

use std::path::{Path, PathBuf};

use super::cleanup::cgroup_dirs;

/// One reading of a container's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time the container used, in ns.
    pub cpu_ns: u64,
    /// CPU time the host used (all CPUs, `/proc/stat`), in ns.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory in use, inactive file cache left out (Docker's CLI).
    pub memory_usage: u64,
    /// The memory limit; the host's memory when there is none.
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

/// What `docker stats` shows for a container.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_percent: f64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl Usage {
    /// Docker's CPU %: the container's share of the host's CPU time between
    /// the samples, times the number of CPUs.
    pub fn between(before: &Sample, after: &Sample) -> Usage {
        let cpu_delta = after.cpu_ns.saturating_sub(before.cpu_ns) as f64;
        let system_delta = after.system_ns.saturating_sub(before.system_ns) as f64;
        let cpu_percent = if cpu_delta > 0.0 && system_delta > 0.0 {
            cpu_delta / system_delta * f64::from(after.online_cpus.max(1)) * 100.0
        } else {
            0.0
        };
        let memory_percent = if after.memory_limit > 0 {
            after.memory_usage as f64 / after.memory_limit as f64 * 100.0
        } else {
            0.0
        };
        Usage {
            cpu_percent,
            memory_usage: after.memory_usage,
            memory_limit: after.memory_limit,
            memory_percent,
            net_rx: after.net_rx,
            net_tx: after.net_tx,
            block_read: after.block_read,
            block_write: after.block_write,
            pids: after.pids,
        }
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The host's CPU time and CPU count from `/proc/stat`.
fn host_cpu() -> (u64, u32) {
    let text = read(Path::new("/proc/stat")).unwrap_or_default();
    // USER_HZ is 100 on every Linux architecture berth runs on.
    const NS_PER_TICK: u64 = 10_000_000;
    let total = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .unwrap_or(0);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    (
        total.saturating_mul(NS_PER_TICK),
        u32::try_from(cpus).unwrap_or(1),
    )
}

fn host_memory() -> u64 {
    read(Path::new("/proc/meminfo"))
        .and_then(|t| {
            t.lines().find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Received and sent bytes over the devices in `/proc/<pid>/net/dev`,
/// loopback left out.
pub fn network_bytes(net_dev: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in net_dev.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        rx += fields.first().copied().unwrap_or(0);
        tx += fields.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

/// Read and write bytes from v1 `blkio.throttle.io_service_bytes*`
/// (`MAJ:MIN Read N`) or v2 `io.stat` (`MAJ:MIN rbytes=N wbytes=N …`).
pub fn block_bytes(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let _device = words.next();
        let rest: Vec<&str> = words.collect();
        match rest.as_slice() {
            [op, n] if !op.contains('=') => {
                let n = n.parse::<u64>().unwrap_or(0);
                match op.to_ascii_lowercase().as_str() {
                    "read" => read += n,
                    "write" => write += n,
                    _ => {}
                }
            }
            fields => {
                for f in fields {
                    if let Some(n) = f.strip_prefix("rbytes=") {
                        read += n.parse::<u64>().unwrap_or(0);
                    } else if let Some(n) = f.strip_prefix("wbytes=") {
                        write += n.parse::<u64>().unwrap_or(0);
                    }
                }
            }
        }
    }
    (read, write)
}

/// The container's cgroup directory for a v1 controller, or the v2 one.
struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    /// The directory holding `file` (the controller that has it).
    fn file(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
    }
}

/// Reads the counters of container `id` whose init is `pid` (0 when it
/// does not run: network counters are then 0).
pub fn sample(id: &str, pid: i32) -> Sample {
    let cg = Cgroups {
        dirs: cgroup_dirs(id),
    };
    let (system_ns, online_cpus) = host_cpu();
    let cpu_ns = cg
        .file("cpuacct.usage")
        .and_then(|p| read_u64(&p))
        .or_else(|| {
            cg.file("cpu.stat")
                .and_then(|p| read(&p))
                .and_then(|t| keyed(&t, "usage_usec"))
                .map(|us| us * 1000)
        })
        .unwrap_or(0);
    let host_memory = host_memory();
    let (memory_usage, memory_limit) =
        if let Some(usage) = cg.file("memory.usage_in_bytes").and_then(|p| read_u64(&p)) {
            let stat = cg
                .file("memory.stat")
                .and_then(|p| read(&p))
                .unwrap_or_default();
            let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
            let limit = cg.file("memory.limit_in_bytes").and_then(|p| read_u64(&p));
            (usage.saturating_sub(inactive), limit)
        } else {
            let usage = cg
                .file("memory.current")
                .and_then(|p| read_u64(&p))
                .unwrap_or(0);
            let stat = cg
                .file("memory.stat")
                .and_then(|p| read(&p))
                .unwrap_or_default();
            let inactive = keyed(&stat, "inactive_file").unwrap_or(0);
            // `max` does not parse: no limit.
            let limit = cg.file("memory.max").and_then(|p| read_u64(&p));
            (usage.saturating_sub(inactive), limit)
        };
    let memory_limit = match memory_limit {
        Some(l) if host_memory == 0 || l < host_memory => l,
        _ => host_memory,
    };
    let block = cg
        .file("blkio.throttle.io_service_bytes_recursive")
        .or_else(|| cg.file("blkio.throttle.io_service_bytes"))
        .or_else(|| cg.file("io.stat"))
        .and_then(|p| read(&p))
        .unwrap_or_default();
    let (block_read, block_write) = block_bytes(&block);
    let pids = cg
        .file("pids.current")
        .and_then(|p| read_u64(&p))
        .unwrap_or(0);
    let (net_rx, net_tx) = if pid > 0 {
        network_bytes(
            &read(&Path::new("/proc").join(pid.to_string()).join("net/dev")).unwrap_or_default(),
        )
    } else {
        (0, 0)
    };
    Sample {
        cpu_ns,
        system_ns,
        online_cpus,
        memory_usage,
        memory_limit,
        net_rx,
        net_tx,
        block_read,
        block_write,
        pids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_counters_skip_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0\n";
        assert_eq!(network_bytes(text), (2048, 512));
    }

    #[test]
    fn block_counters_v1_and_v2() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n";
        assert_eq!(block_bytes(v1), (4096, 8192));
        let v2 =
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n";
        assert_eq!(block_bytes(v2), (101, 202));
    }

    #[test]
    fn cpu_percent_is_dockers() {
        let before = Sample {
            cpu_ns: 0,
            system_ns: 0,
            online_cpus: 2,
            ..Sample::default()
        };
        let after = Sample {
            cpu_ns: 500,
            system_ns: 2000,
            online_cpus: 2,
            memory_usage: 25,
            memory_limit: 100,
            ..Sample::default()
        };
        let u = Usage::between(&before, &after);
        assert!((u.cpu_percent - 50.0).abs() < 1e-9);
        assert!((u.memory_percent - 25.0).abs() < 1e-9);
    }
}
