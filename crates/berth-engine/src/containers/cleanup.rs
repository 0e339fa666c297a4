//! What a killed shim (or a killed `berth run` of an older berth) leaves:
//! the container's processes in its cgroup `/berth/<id>`, its mounted
//! root, libcontainer's state. [`cleanup_abandoned`] stops and releases
//! them so the container can be removed or started again.

use std::path::{Path, PathBuf};

use super::prepare::{self, Layout};

/// Kills every process in the container's cgroups, unmounts its root and
/// removes the cgroups and the runtime state.
pub fn cleanup_abandoned(dir: &Path) {
    let Some(id) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let cgroups = cgroup_dirs(&id);
    for cg in &cgroups {
        // Thaw first: frozen tasks die only once thawed on cgroup v1.
        let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
        let _ = std::fs::write(cg.join("cgroup.freeze"), "0");
        if let Ok(procs) = std::fs::read_to_string(cg.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
    prepare::unmount_rootfs(dir);
    let _ = berth_net::remove_netns(&berth_net::netns_path(dir));
    // The killed processes leave their cgroups empty shortly after.
    for _ in 0..100 {
        let mut left = 0;
        for cg in &cgroups {
            if cg.exists() && std::fs::remove_dir(cg).is_err() {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(Layout(dir).runtime_state());
}

/// The container's cgroup directories in every mounted hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    let direct = root.join("berth").join(id);
    if direct.is_dir() {
        out.push(direct);
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let cg = entry.path().join("berth").join(id);
            if cg.is_dir() {
                out.push(cg);
            }
        }
    }
    out
}

/// The pids in the container's cgroup (for `top`), in the host's pid
/// namespace.
pub fn container_pids(id: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup_dirs(id)
        .iter()
        .filter_map(|cg| std::fs::read_to_string(cg.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
