//! OCI and Docker image formats: digests, descriptors, manifests, configs,
//! platforms and image references. Pure data, no I/O.
