//! berth's container runtime. For now: the OCI runtime spec (`config.json`)
//! a container runs with, built from its image config and `docker run`
//! options exactly as Docker builds it.
//!
//! Vocabulary: the *spec* is the OCI runtime configuration ([`oci::Spec`]);
//! [`RunOptions`] are the `docker run` flags that shape it; the *rootfs* is
//! the container's assembled root filesystem (an overlay the caller mounts);
//! `passwd`/`group` are the texts of the image's `/etc/passwd` and
//! `/etc/group`, read by the caller from the rootfs (empty when missing).
//! Storage mounts (`-v`, `--mount`) are parsed into [`MountRequest`]s and
//! prepared into [`ResolvedMount`]s whose targets are resolved inside the
//! rootfs ([`mounts`]); cgroup limits are [`Resources`] ([`resources`]).
//!
//! ```
//! use std::path::Path;
//! use berth_oci::{ContainerConfig, ImageConfig};
//! use berth_runtime::{build_spec, HostInfo, RunOptions};
//!
//! let image = ImageConfig {
//!     config: Some(ContainerConfig {
//!         entrypoint: vec!["/bin/busybox".into()],
//!         cmd: vec!["sh".into()],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let opts = RunOptions {
//!     command: vec!["echo".into(), "hello".into()],
//!     env: vec!["GREETING=hi".into()],
//!     host: Some(HostInfo { nofile_hard_limit: Some(4096), kernel: Some((6, 1)), cap_bounding: None }),
//!     ..Default::default()
//! };
//! let spec = build_spec(&image, &opts, Path::new("/rootfs"), "", "", "0123456789abcdef").unwrap();
//! assert_eq!(spec.process.args, ["/bin/busybox", "echo", "hello"]);
//! assert_eq!(spec.hostname, "0123456789ab");
//! assert_eq!(spec.process.rlimits[0].hard, 4096);
//! let config_json = spec.to_json().unwrap();
//! # assert!(!config_json.is_empty());
//! ```

pub mod caps;
pub mod error;
pub mod mounts;
pub mod oci;
pub mod resources;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod user;

pub use error::{ErrorKind, SpecError};
pub use mounts::{MountRequest, ResolvedMount};
pub use oci::Spec;
pub use resources::Resources;
pub use spec::{
    build_spec, resolve_env_flag, HostInfo, NetworkNamespace, RunOptions, TmpfsMount, DEFAULT_PATH,
};
pub use user::{resolve_user, ExecUser};
