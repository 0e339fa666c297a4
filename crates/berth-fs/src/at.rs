//! Directory-descriptor helpers that never follow symlinks.
//!
//! Everything that layer apply creates, replaces or removes is reached by
//! walking from the target's directory descriptor one component at a time
//! with `O_NOFOLLOW | O_DIRECTORY`, then acting with the `*at` system calls
//! on the final name. A symlink anywhere on the way makes the walk fail
//! instead of being followed, so a symlink swapped in mid-operation cannot
//! redirect a write outside the target.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::{Errno, Result as SysResult};

/// Open the directory `name` inside `dir`, refusing symlinks.
pub(crate) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> SysResult<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The type of `name` inside `dir` without following a final symlink, or
/// `None` when it does not exist.
pub(crate) fn type_at(dir: impl AsFd, name: &OsStr) -> SysResult<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove `name` inside `dir` whatever it is; directories recursively.
/// Missing is fine. Symlinks are removed, never followed.
pub(crate) fn remove_all_at(dir: impl AsFd, name: &OsStr) -> SysResult<()> {
    let dir = dir.as_fd();
    match type_at(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            let sub = open_dir_at(dir, name)?;
            clear_dir(&sub, |_| false)?;
            drop(sub);
            match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Err(Errno::NOENT) => Ok(()),
                r => r,
            }
        }
        Some(_) => match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Err(Errno::NOENT) => Ok(()),
            r => r,
        },
    }
}

/// Remove every child of `dir` for which `keep` is false.
pub(crate) fn clear_dir(dir: &OwnedFd, keep: impl Fn(&OsStr) -> bool) -> SysResult<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in `dir`, without `.` and `..`.
pub(crate) fn list_dir(dir: &OwnedFd) -> SysResult<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    Ok(names)
}

/// Open `dir` itself again (a new descriptor for the same directory).
pub(crate) fn reopen_dir(dir: impl AsFd) -> SysResult<OwnedFd> {
    open_dir_at(dir, OsStr::new("."))
}
