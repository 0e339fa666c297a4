//! OCI and Docker image formats: digests, descriptors, manifests, configs,
//! platforms and image references. Pure data, no I/O.
//!
//! Today it holds [`Digest`]; the rest arrives with the content store.
//!
//! ```
//! let d: berth_oci::Digest =
//!     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
//! assert_eq!(d.short(), "e3b0c44298fc");
//! ```

mod digest;

pub use digest::{Algorithm, Digest, DigestError};
