//! `berth-fs`: the filesystem mechanisms under the store, the builder and the
//! runtime.
//!
//! It owns:
//! - **atomic writes** ([`write_atomic`], [`write_atomic_from`],
//!   [`AtomicFile`]): temp file in the same directory, write, fsync, rename,
//!   fsync the directory;
//! - **in-root path resolution** ([`resolve_in_root`]): a path inside a root
//!   directory resolved as if the root were `/` (`openat2(RESOLVE_IN_ROOT)`,
//!   with a userspace walk as fallback);
//! - **layer apply** ([`apply_layer`], [`apply_layer_compressed`]): a tar
//!   stream unpacked into a directory without ever touching anything outside
//!   it, with AUFS/OCI whiteouts applied or converted to overlayfs form;
//! - **layer diff** ([`tar_dir`], [`diff_overlay_upper`]): a directory (or an
//!   overlay upper dir) written as a deterministic layer tar;
//! - **compression** ([`detect_compression`], [`decompress`],
//!   [`gzip_writer`], [`zstd_writer`]).
//!
//! Vocabulary:
//! - *target* / *root*: the directory an operation is confined to;
//! - *layer*: a tar of a filesystem change set, in OCI form;
//! - *whiteout*: `.wh.NAME` in a layer, deleting NAME from the layers below;
//!   *opaque marker* `.wh..wh..opq`: the directory hides everything below it;
//! - *overlay form*: the same, as overlayfs stores it in an upper or lower
//!   dir — a 0/0 character device, and the `trusted.overlay.opaque=y` xattr.
//!
//! Errors are one [`Error`] enum with a coarse [`ErrorKind`]; I/O errors
//! carry their path.
//!
//! ```no_run
//! use berth_fs::{apply_layer_compressed, tar_dir, gzip_writer, ApplyOptions, TarOptions};
//!
//! # fn main() -> Result<(), berth_fs::Error> {
//! // Pack a tree as a gzip layer, deterministically...
//! let out = std::fs::File::create("/tmp/layer.tar.gz").map_err(|e| berth_fs::Error::Io {
//!     path: "/tmp/layer.tar.gz".into(),
//!     source: e,
//! })?;
//! let (gz, _stats) = tar_dir("/tmp/rootfs", gzip_writer(out, 1), &TarOptions::default())?;
//! let _ = gz.finish();
//! // ...and unpack it elsewhere, refusing anything that would escape.
//! let layer = std::fs::File::open("/tmp/layer.tar.gz").map_err(|e| berth_fs::Error::Io {
//!     path: "/tmp/layer.tar.gz".into(),
//!     source: e,
//! })?;
//! let opts = ApplyOptions { max_bytes: Some(10 << 30), ..ApplyOptions::default() };
//! let stats = apply_layer_compressed(layer, "/tmp/unpacked", &opts)?;
//! println!("{} files", stats.files);
//! # Ok(())
//! # }
//! ```

pub mod apply;
mod at;
pub mod atomic;
pub mod compress;
pub mod diff;
pub mod error;
pub mod parallel_gzip;
pub mod resolve;

pub use apply::{
    apply_archive, apply_layer, apply_layer_compressed, ApplyOptions, ApplyStats, WhiteoutMode,
};
pub use atomic::{replace_volatile, sync_dir, write_atomic, write_atomic_from, AtomicFile};
pub use compress::{
    decompress, decompress_archive, detect_compression, gzip_reader, gzip_writer, is_tar_archive,
    is_tar_header, zstd_reader, zstd_writer, Compression,
};
pub use diff::{diff_overlay_upper, tar_dir, TarOptions, TarStats};
pub use error::{Error, ErrorKind, Result};
pub use parallel_gzip::ParallelGzWriter;
pub use resolve::{read_in_root, resolve_in_root, ResolveMethod, ResolveOptions, MAX_SYMLINK_HOPS};
