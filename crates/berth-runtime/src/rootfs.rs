//! A container's root filesystem: the image's snapshot chain as overlayfs
//! lower dirs, with the container's own upper and work dirs on top.

use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use crate::error::SpecError;

/// An overlay mount to assemble.
#[derive(Debug, Clone)]
pub struct OverlayRoot {
    /// Lower dirs, top first, relative to `base` (keeps the option string
    /// short: overlayfs options must fit in one page).
    pub lower: Vec<PathBuf>,
    /// The directory the lower paths are relative to.
    pub base: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the merged tree appears.
    pub target: PathBuf,
}

impl OverlayRoot {
    /// Mounts the overlay. Relative lower dirs are resolved from `base`, so
    /// the mount runs with `base` as the working directory (restored after).
    pub fn mount(&self) -> Result<(), SpecError> {
        self.mount_with_options("")
    }

    /// [`OverlayRoot::mount`] with more overlay options (`volatile`: no
    /// syncs, for roots whose result is made durable some other way).
    pub fn mount_with_options(&self, extra: &str) -> Result<(), SpecError> {
        let lower: Vec<String> = self
            .lower
            .iter()
            .map(|p| {
                p.strip_prefix(&self.base)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        if !extra.is_empty() {
            options.push(',');
            options.push_str(extra);
        }
        if options.len() > 4095 {
            return Err(SpecError::Rootfs(format!(
                "overlay options for {} are too long ({} layers)",
                self.target.display(),
                self.lower.len()
            )));
        }
        let options = std::ffi::CString::new(options)
            .map_err(|_| SpecError::Rootfs("overlay options contain a NUL byte".into()))?;
        let previous = std::env::current_dir().ok();
        std::env::set_current_dir(&self.base)
            .map_err(|e| SpecError::Rootfs(format!("{}: {e}", self.base.display())))?;
        let result = mount(
            "overlay",
            &self.target,
            "overlay",
            MountFlags::empty(),
            Some(options.as_c_str()),
        );
        if let Some(dir) = previous {
            let _ = std::env::set_current_dir(dir);
        }
        result.map_err(|e| {
            SpecError::Rootfs(format!(
                "mounting the root filesystem at {}: {e}",
                self.target.display()
            ))
        })
    }
}

/// Unmounts a root filesystem (lazily, so a stray process cannot pin it).
pub fn unmount_root(target: &Path) -> Result<(), SpecError> {
    unmount(target, UnmountFlags::DETACH)
        .map_err(|e| SpecError::Rootfs(format!("unmounting {}: {e}", target.display())))
}

/// Refuses a root filesystem whose `/proc`, `/dev` or `/sys` is a symlink
/// (or not a directory): the runtime mounts procfs, a tmpfs and sysfs there,
/// and a symlink would carry those mounts wherever it points. Missing
/// directories are fine (the runtime creates them).
pub fn check_special_dirs(rootfs: &Path) -> Result<(), SpecError> {
    for name in ["proc", "dev", "sys"] {
        let path = rootfs.join(name);
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SpecError::Io { path, source: e }),
        };
        if metadata.file_type().is_symlink() {
            let to = std::fs::read_link(&path)
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            return Err(SpecError::UnsafeRootfs(format!(
                "the image's /{name} is a symbolic link{to}: refusing to mount {name} over it"
            )));
        }
        if !metadata.is_dir() {
            return Err(SpecError::UnsafeRootfs(format!(
                "the image's /{name} is not a directory: refusing to mount {name} over it"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        check_special_dirs(root).unwrap();
        std::fs::create_dir(root.join("proc")).unwrap();
        std::fs::create_dir(root.join("sys")).unwrap();
        check_special_dirs(root).unwrap();
        std::os::unix::fs::symlink("/", root.join("dev")).unwrap();
        let e = check_special_dirs(root).unwrap_err().to_string();
        assert_eq!(
            e,
            "the image's /dev is a symbolic link (to /): refusing to mount dev over it"
        );
        std::fs::remove_file(root.join("dev")).unwrap();
        std::fs::write(root.join("dev"), "").unwrap();
        assert!(check_special_dirs(root).is_err());
    }
}
