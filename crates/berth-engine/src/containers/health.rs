//! Health checks (Docker's `HEALTHCHECK`): the settings with Docker's
//! defaults, the merge of `--health-*` flags with the image's check, the
//! probe the shim runs through exec without blocking its poll loop (its
//! pidfd and output pipe join the loop's poll set), and the state machine
//! (`starting` → `healthy` / `unhealthy`, failing streak, last 5 probes).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_launch::Stdio;
use berth_oci::Healthcheck;

use super::exec::{exec_in, ExecOptions, ExecProcess};
use super::state::{Health, HealthProbe};
use crate::time::wall_rfc3339;

/// Docker keeps this many probe results.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Docker keeps this much of a probe's output (stdout and stderr together).
pub const MAX_OUTPUT_LEN: usize = 4096;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;

/// Applies `--health-*` flags (`user`) over the image's `HEALTHCHECK`:
/// each field the flags leave unset (empty test, zero duration or
/// retries) comes from the image, as Docker merges them.
pub fn merge_healthcheck(
    user: Option<Healthcheck>,
    image: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    let Some(image) = image else {
        return user;
    };
    let Some(mut user) = user else {
        return Some(image.clone());
    };
    if user.test.is_empty() {
        user.test = image.test.clone();
    }
    let inherit = |mine: &mut i64, theirs: i64| {
        if *mine == 0 {
            *mine = theirs;
        }
    };
    inherit(&mut user.interval, image.interval);
    inherit(&mut user.timeout, image.timeout);
    inherit(&mut user.start_period, image.start_period);
    inherit(&mut user.start_interval, image.start_interval);
    inherit(&mut user.retries, image.retries);
    Some(user)
}

/// A health check ready to run: the command and Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn nanos_or(value: i64, default: Duration) -> Duration {
    if value > 0 {
        Duration::from_nanos(value.unsigned_abs())
    } else {
        default
    }
}

impl HealthSettings {
    /// `None` when there is no check (`None`, empty test, `NONE`).
    /// `CMD-SHELL` runs through `shell` (the image's `SHELL`), else
    /// `/bin/sh -c`.
    pub fn from_config(check: Option<&Healthcheck>, shell: &[String]) -> Option<HealthSettings> {
        let check = check?;
        let (kind, rest) = check.test.split_first()?;
        let command = match kind.as_str() {
            "CMD" if !rest.is_empty() => rest.to_vec(),
            "CMD-SHELL" => {
                let script = rest.join(" ");
                let mut argv = if shell.is_empty() {
                    vec!["/bin/sh".to_string(), "-c".to_string()]
                } else {
                    shell.to_vec()
                };
                argv.push(script);
                argv
            }
            _ => return None,
        };
        Some(HealthSettings {
            command,
            interval: nanos_or(check.interval, DEFAULT_INTERVAL),
            timeout: nanos_or(check.timeout, DEFAULT_TIMEOUT),
            start_period: nanos_or(check.start_period, Duration::ZERO),
            start_interval: nanos_or(check.start_interval, DEFAULT_START_INTERVAL),
            retries: u32::try_from(check.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        })
    }

    /// The wait before the next probe: the start interval while the
    /// container is still starting within its start period, and no later
    /// than the end of the start period (Docker's `getInterval`).
    pub fn next_interval(&self, since_start: Duration, status: &str) -> Duration {
        if since_start >= self.start_period {
            return self.interval;
        }
        let remaining = self.start_period - since_start;
        if remaining < self.interval {
            remaining
        } else if status == STARTING {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// Records one probe result as Docker does: success resets the streak and
/// makes the container healthy; a failure counts (unless the container is
/// still starting within its start period) and `retries` failures in a row
/// make it unhealthy. The log keeps the last [`MAX_LOG_ENTRIES`].
pub fn record(
    health: &mut Health,
    settings: &HealthSettings,
    probe: HealthProbe,
    since_start: Duration,
) {
    if probe.exit_code == 0 {
        health.failing_streak = 0;
        health.status = HEALTHY.to_string();
    } else {
        let in_start_period = health.status == STARTING && since_start < settings.start_period;
        if !in_start_period {
            health.failing_streak += 1;
            if health.failing_streak >= settings.retries {
                health.status = UNHEALTHY.to_string();
            }
        }
    }
    health.log.push(probe);
    let excess = health.log.len().saturating_sub(MAX_LOG_ENTRIES);
    health.log.drain(..excess);
}

/// Go's `time.Duration` formatting (`200ms`, `30s`, `1m30s`), for
/// Docker's timeout message.
pub fn go_duration(d: Duration) -> String {
    fn trimmed(whole: u128, frac: u128, digits: usize) -> String {
        let frac = format!("{frac:0digits$}");
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{frac}")
        }
    }
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}µs", trimmed(n / 1_000, n % 1_000, 3));
    }
    if n < 1_000_000_000 {
        return format!("{}ms", trimmed(n / 1_000_000, n % 1_000_000, 6));
    }
    let secs = n / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = format!("{}s", trimmed(s, n % 1_000_000_000, 9));
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// A probe's output as Docker keeps it: the first [`MAX_OUTPUT_LEN`]
/// bytes, `...` appended when there was more.
#[derive(Debug, Default)]
struct LimitedOutput {
    bytes: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.bytes.len())
            .min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str("...");
        }
        text
    }
}

/// A running probe.
#[derive(Debug)]
struct Probe {
    process: ExecProcess,
    pidfd: OwnedFd,
    output: Option<OwnedFd>,
    captured: LimitedOutput,
    start: String,
    /// When the probe was asked for (Docker's `Start`).
    started: Instant,
    /// Timed from when the process runs: starting it does not count.
    deadline: Instant,
    timed_out: bool,
}

/// What a poll slot of the monitor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeEvent {
    Exited,
    Output,
}

/// The shim's health monitor for one run of the container.
#[derive(Debug)]
pub struct Monitor {
    settings: HealthSettings,
    started: Instant,
    next_at: Instant,
    probe: Option<Probe>,
}

impl Monitor {
    /// Starts monitoring a container that started now; the first probe
    /// comes one interval later.
    pub fn new(settings: HealthSettings) -> Monitor {
        let started = Instant::now();
        let next_at = started + settings.next_interval(Duration::ZERO, STARTING);
        Monitor {
            settings,
            started,
            next_at,
            probe: None,
        }
    }

    /// How long the loop may sleep before [`Monitor::tick`] has work.
    pub fn poll_timeout(&self) -> Duration {
        let at = match &self.probe {
            Some(p) if !p.timed_out => p.deadline,
            Some(_) => return Duration::from_secs(3600),
            None => self.next_at,
        };
        at.saturating_duration_since(Instant::now())
    }

    /// The fds to poll while a probe runs.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, ProbeEvent)> {
        let mut fds = Vec::new();
        if let Some(p) = &self.probe {
            fds.push((p.pidfd.as_fd(), ProbeEvent::Exited));
            if let Some(out) = &p.output {
                fds.push((out.as_fd(), ProbeEvent::Output));
            }
        }
        fds
    }

    /// Starts a due probe, or kills one past its timeout. A probe that
    /// cannot even start is recorded at once (exit -1, the error as
    /// output); returns whether `health` changed.
    pub fn tick(
        &mut self,
        dir: &Path,
        id: &str,
        runtime: &str,
        paused: bool,
        health: &mut Health,
    ) -> bool {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            if !p.timed_out && now >= p.deadline {
                p.timed_out = true;
                kill(p.process.pid());
            }
            return false;
        }
        if now < self.next_at {
            return false;
        }
        if paused {
            self.schedule(&health.status);
            return false;
        }
        match start_probe(dir, id, runtime, &self.settings) {
            Ok(probe) => {
                self.probe = Some(probe);
                false
            }
            Err(message) => {
                let at = wall_rfc3339();
                let result = HealthProbe {
                    start: at.clone(),
                    end: at,
                    exit_code: -1,
                    output: message,
                };
                record(health, &self.settings, result, now - self.started);
                self.schedule(&health.status);
                true
            }
        }
    }

    /// Handles a ready poll slot; returns whether `health` changed.
    pub fn on_ready(&mut self, event: ProbeEvent, health: &mut Health) -> bool {
        let Some(p) = &mut self.probe else {
            return false;
        };
        match event {
            ProbeEvent::Output => {
                drain(&mut p.output, &mut p.captured);
                false
            }
            ProbeEvent::Exited => {
                let Some(mut p) = self.probe.take() else {
                    return false;
                };
                let code = p.process.wait().unwrap_or(-1);
                // What the probe wrote before exiting; children it left
                // behind holding the pipe are not waited for.
                drain(&mut p.output, &mut p.captured);
                let (exit_code, output) = if p.timed_out {
                    let limit = go_duration(self.settings.timeout);
                    let out = p.captured.text();
                    let message = if out.is_empty() {
                        format!("Health check exceeded timeout ({limit})")
                    } else {
                        format!("Health check exceeded timeout ({limit}): {out}")
                    };
                    (-1, message)
                } else {
                    (code, p.captured.text())
                };
                let since_start = p.started.saturating_duration_since(self.started);
                let result = HealthProbe {
                    start: p.start,
                    end: wall_rfc3339(),
                    exit_code,
                    output,
                };
                record(health, &self.settings, result, since_start);
                self.schedule(&health.status);
                true
            }
        }
    }

    /// The container stopped: a running probe is killed and reaped.
    pub fn abort(&mut self) {
        if let Some(mut p) = self.probe.take() {
            kill(p.process.pid());
            let _ = p.process.wait();
        }
    }

    fn schedule(&mut self, status: &str) {
        let now = Instant::now();
        self.next_at = now + self.settings.next_interval(now - self.started, status);
    }
}

fn kill(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Reads what is available without blocking; closes the pipe at EOF.
fn drain(slot: &mut Option<OwnedFd>, captured: &mut LimitedOutput) {
    let mut buf = [0u8; 8192];
    while let Some(fd) = slot.as_ref() {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => *slot = None,
            Ok(n) => captured.push(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

fn start_probe(
    dir: &Path,
    id: &str,
    runtime: &str,
    settings: &HealthSettings,
) -> Result<Probe, String> {
    let (read, write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| format!("pipe: {e}"))?;
    // The probe's end blocks as usual: only the shim's end is non-blocking.
    let _ = rustix::fs::fcntl_setfl(&write, rustix::fs::OFlags::empty());
    let write_err = write.try_clone().map_err(|e| format!("dup: {e}"))?;
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let stdio = Stdio {
        stdin: Some(OwnedFd::from(null)),
        stdout: Some(write),
        stderr: Some(write_err),
        console_socket: None,
    };
    let opts = ExecOptions {
        command: settings.command.clone(),
        ..ExecOptions::default()
    };
    let start = wall_rfc3339();
    let started = Instant::now();
    let process = exec_in(dir, id, runtime, &opts, stdio).map_err(|f| f.error.to_string())?;
    let pidfd = rustix::process::Pid::from_raw(process.pid()).and_then(|pid| {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    });
    let Some(pidfd) = pidfd else {
        let mut process = process;
        let _ = process.wait();
        return Err("pidfd_open on the health check".to_string());
    };
    Ok(Probe {
        process,
        pidfd,
        output: Some(read),
        captured: LimitedOutput::default(),
        start,
        started,
        deadline: Instant::now() + settings.timeout,
        timed_out: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(retries: u32, start_period: Duration) -> HealthSettings {
        HealthSettings {
            command: vec!["true".to_string()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period,
            start_interval: Duration::from_secs(5),
            retries,
        }
    }

    fn probe(code: i32) -> HealthProbe {
        HealthProbe {
            exit_code: code,
            ..HealthProbe::default()
        }
    }

    #[test]
    fn defaults_and_commands() {
        let check = Healthcheck {
            test: vec!["CMD-SHELL".to_string(), "test -f /ok".to_string()],
            ..Healthcheck::default()
        };
        let s = HealthSettings::from_config(Some(&check), &[]).unwrap();
        assert_eq!(s.command, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.start_period, Duration::ZERO);
        assert_eq!(s.start_interval, Duration::from_secs(5));
        assert_eq!(s.retries, 3);
        let exec_form = Healthcheck {
            test: vec!["CMD".to_string(), "cat".to_string(), "/ok".to_string()],
            interval: 200_000_000,
            retries: 2,
            ..Healthcheck::default()
        };
        let s = HealthSettings::from_config(Some(&exec_form), &[]).unwrap();
        assert_eq!(s.command, ["cat", "/ok"]);
        assert_eq!(s.interval, Duration::from_millis(200));
        assert_eq!(s.retries, 2);
        let none = Healthcheck {
            test: vec!["NONE".to_string()],
            ..Healthcheck::default()
        };
        assert_eq!(HealthSettings::from_config(Some(&none), &[]), None);
        assert_eq!(
            HealthSettings::from_config(Some(&Healthcheck::default()), &[]),
            None
        );
        assert_eq!(HealthSettings::from_config(None, &[]), None);
    }

    #[test]
    fn flags_merge_over_the_image_check() {
        let image = Healthcheck {
            test: vec!["CMD".to_string(), "check".to_string()],
            interval: 5,
            timeout: 6,
            retries: 7,
            ..Healthcheck::default()
        };
        let flags = Healthcheck {
            interval: 1,
            ..Healthcheck::default()
        };
        let merged = merge_healthcheck(Some(flags), Some(&image)).unwrap();
        assert_eq!(merged.test, image.test);
        assert_eq!((merged.interval, merged.timeout, merged.retries), (1, 6, 7));
        let none = Healthcheck {
            test: vec!["NONE".to_string()],
            ..Healthcheck::default()
        };
        assert_eq!(
            merge_healthcheck(Some(none.clone()), Some(&image))
                .unwrap()
                .test,
            none.test
        );
        assert_eq!(merge_healthcheck(None, Some(&image)), Some(image));
        assert_eq!(merge_healthcheck(None, None), None);
    }

    #[test]
    fn streaks_and_statuses() {
        let s = settings(2, Duration::ZERO);
        let mut h = Health {
            status: STARTING.to_string(),
            ..Health::default()
        };
        record(&mut h, &s, probe(1), Duration::from_secs(1));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        record(&mut h, &s, probe(1), Duration::from_secs(2));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        record(&mut h, &s, probe(0), Duration::from_secs(3));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        for _ in 0..10 {
            record(&mut h, &s, probe(0), Duration::from_secs(4));
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let s = settings(1, Duration::from_secs(10));
        let mut h = Health {
            status: STARTING.to_string(),
            ..Health::default()
        };
        record(&mut h, &s, probe(1), Duration::from_secs(1));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        // Docker: the rest of the start period when shorter than the interval.
        assert_eq!(
            s.next_interval(Duration::from_secs(1), &h.status),
            Duration::from_secs(9)
        );
        // The first probe after the start period comes as it ends.
        let long = HealthSettings {
            start_period: Duration::from_secs(100),
            ..s.clone()
        };
        assert_eq!(
            long.next_interval(Duration::from_secs(80), STARTING),
            Duration::from_secs(20)
        );
        assert_eq!(
            long.next_interval(Duration::from_secs(1), STARTING),
            Duration::from_secs(5)
        );
        assert_eq!(
            long.next_interval(Duration::from_secs(1), HEALTHY),
            Duration::from_secs(30)
        );
        record(&mut h, &s, probe(1), Duration::from_secs(11));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
        assert_eq!(
            s.next_interval(Duration::from_secs(11), &h.status),
            Duration::from_secs(30)
        );
        // Once healthy, failures count even inside the start period.
        let mut h = Health {
            status: HEALTHY.to_string(),
            ..Health::default()
        };
        record(&mut h, &s, probe(1), Duration::from_secs(1));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 1));
    }

    #[test]
    fn output_is_capped_like_dockers() {
        let mut out = LimitedOutput::default();
        out.push(&[b'a'; 4000]);
        out.push(&[b'b'; 200]);
        let text = out.text();
        assert_eq!(text.len(), MAX_OUTPUT_LEN + 3);
        assert!(text.ends_with("bb..."));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
    }
}
