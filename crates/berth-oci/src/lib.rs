//! OCI and Docker image formats, as pure data (no I/O): what the store, the
//! registry client, the builder and the API agree on.
//!
//! Vocabulary:
//! - [`Digest`] `algorithm:hex`, validated; [`DigestWriter`] hashes a blob
//!   while it streams.
//! - [`MediaType`]: what a blob is (manifest, index, config, layer and its
//!   [`Compression`]), OCI or Docker schema2.
//! - [`Descriptor`]: media type + digest + size (+ platform, annotations) —
//!   how one document points at a blob.
//! - [`Manifest`] (one image: a config and layers), [`Index`] (a manifest
//!   list: one manifest per [`Platform`]), [`ImageDocument`] (either).
//! - [`ImageConfig`]: the image config JSON; its digest is the image ID.
//! - [`Platform`]: `linux/arm64/v8`, with containerd's normalisation and
//!   matching.
//! - [`Reference`]: `busybox` → `docker.io/library/busybox:latest`, with
//!   Docker's grammar, normalisation and messages; [`id_prefix`] for strings
//!   that may be image IDs instead.
//! - [`Error`] with [`ErrorKind`], the kinds every berth crate uses.
//!
//! JSON that berth writes comes out as Go's `encoding/json` writes the same
//! structs (field order, omitted empties, `\u0026` escapes), so digests match
//! Docker's for the same content. Documents read from elsewhere keep their
//! original bytes for their digest.
//!
//! ```
//! use berth_oci::{ImageConfig, Platform, Reference};
//!
//! let r: Reference = "user/app:v1".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/user/app:v1");
//! assert_eq!(r.familiar_string(), "user/app:v1");
//!
//! let p = Platform::parse("linux/aarch64").unwrap();
//! assert_eq!(p.to_string(), "linux/arm64/v8");
//!
//! let cfg = ImageConfig::from_slice(br#"{"architecture":"amd64","os":"linux"}"#).unwrap();
//! assert_eq!(cfg.to_canonical_json().unwrap(), br#"{"architecture":"amd64","os":"linux"}"#);
//! assert_eq!(cfg.image_id().unwrap().algorithm(), berth_oci::Algorithm::Sha256);
//! ```

mod chain;
mod config;
mod descriptor;
mod digest;
mod error;
mod json;
mod manifest;
pub mod media_type;
mod platform;
mod reference;

pub use chain::chain_ids;
pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use descriptor::Descriptor;
pub use digest::{Algorithm, Digest, DigestError, DigestWriter};
pub use error::{Error, ErrorKind};
pub use manifest::{ImageDocument, Index, Manifest};
pub use media_type::{Compression, MediaType};
pub use platform::Platform;
pub use reference::{
    id_prefix, Reference, ReferenceError, DEFAULT_DOMAIN, DEFAULT_TAG, LEGACY_DEFAULT_DOMAIN,
    NAME_TOTAL_LENGTH_MAX, OFFICIAL_REPO_PREFIX,
};
