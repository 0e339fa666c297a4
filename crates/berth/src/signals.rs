//! Containers start with default signal dispositions, as Docker's do.
//!
//! An ignored signal stays ignored across `exec`, and the containers berth
//! starts inherit this process's dispositions: Rust's runtime ignores
//! SIGPIPE, and a shell ignores SIGINT and SIGQUIT in its background jobs.
//! A container's `yes | head` must die of SIGPIPE, not spin on EPIPE. So
//! each ignored signal gets a handler that does nothing instead (berth
//! still ignores it in effect), and handlers are reset to the default by
//! `exec`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Replaces each ignored signal's `SIG_IGN` by a handler doing nothing.
pub fn unignore() {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return;
    };
    let Some(mask) = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
    else {
        return;
    };
    let seen = Arc::new(AtomicBool::new(false));
    for signal in 1..=31 {
        if mask & (1u64 << (signal - 1)) != 0 {
            // Signals signal-hook refuses (none of them are ignorable in
            // practice) keep their disposition.
            let _ = signal_hook::flag::register(signal, Arc::clone(&seen));
        }
    }
}
