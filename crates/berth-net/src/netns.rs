//! Persistent network namespaces: a namespace made with
//! `unshare(CLONE_NEWNET)` on a short-lived thread and kept alive by a bind
//! mount of that thread's `/proc/thread-self/ns/net` on a file (as
//! `ip netns add` does). The container joins it through its runtime spec;
//! it vanishes when the mount is gone and the last process in it exits.
//!
//! Work inside a namespace ([`in_netns`]) also runs on a short-lived thread
//! that `setns`es into it, so the caller's own thread never changes
//! namespace; the thread is joined before the call returns, so a
//! single-threaded caller (the shim) is single-threaded again afterwards.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::mount::{mount_bind, unmount, UnmountFlags};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::{Error, Result};

/// Creates a new, empty network namespace kept at `path` (a file that must
/// not exist yet).
pub fn create_netns(path: &Path) -> Result<()> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let made = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::sys("unshare(CLONE_NEWNET)", std::io::Error::from(e)))?;
                mount_bind("/proc/thread-self/ns/net", path)
                    .map_err(|e| Error::sys(format!("bind mount netns on {}", path.display()), e))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("netns thread panicked".into())))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Unmounts and removes a namespace file made by [`create_netns`]; nothing
/// to do if it is already gone.
pub fn remove_netns(path: &Path) -> Result<()> {
    match unmount(path, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(Error::sys(format!("unmount {}", path.display()), e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Runs `work` on a thread inside the network namespace at `path`.
pub fn in_netns<T: Send>(path: &Path, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = File::open(path).map_err(|e| Error::io(path, e))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<T> {
                move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|e| Error::sys(format!("setns {}", path.display()), e))?;
                work()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("netns thread panicked".into())))
    })
}
