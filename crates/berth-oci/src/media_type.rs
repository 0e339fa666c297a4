//! Media types of OCI and Docker schema2 documents and layers.
//!
//! [`MediaType`] names the ones berth understands and keeps any other string
//! in [`MediaType::Other`], so that unknown artifact types pass through.

use std::fmt;
use std::str::FromStr;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
pub const DOCKER_LAYER_FOREIGN_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A media type; unknown strings are kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    OciConfig,
    OciLayer,
    OciLayerGzip,
    OciLayerZstd,
    OciLayerNonDistributable,
    OciLayerNonDistributableGzip,
    OciLayerNonDistributableZstd,
    OciEmpty,
    DockerManifest,
    DockerManifestList,
    DockerConfig,
    DockerLayer,
    DockerLayerGzip,
    DockerLayerForeign,
    DockerLayerForeignGzip,
    Other(String),
}

const KNOWN: [MediaType; 17] = [
    MediaType::OciManifest,
    MediaType::OciIndex,
    MediaType::OciConfig,
    MediaType::OciLayer,
    MediaType::OciLayerGzip,
    MediaType::OciLayerZstd,
    MediaType::OciLayerNonDistributable,
    MediaType::OciLayerNonDistributableGzip,
    MediaType::OciLayerNonDistributableZstd,
    MediaType::OciEmpty,
    MediaType::DockerManifest,
    MediaType::DockerManifestList,
    MediaType::DockerConfig,
    MediaType::DockerLayer,
    MediaType::DockerLayerGzip,
    MediaType::DockerLayerForeign,
    MediaType::DockerLayerForeignGzip,
];

impl MediaType {
    /// The media type string.
    pub fn as_str(&self) -> &str {
        match self {
            MediaType::OciManifest => OCI_MANIFEST,
            MediaType::OciIndex => OCI_INDEX,
            MediaType::OciConfig => OCI_CONFIG,
            MediaType::OciLayer => OCI_LAYER_TAR,
            MediaType::OciLayerGzip => OCI_LAYER_TAR_GZIP,
            MediaType::OciLayerZstd => OCI_LAYER_TAR_ZSTD,
            MediaType::OciLayerNonDistributable => OCI_LAYER_NONDIST_TAR,
            MediaType::OciLayerNonDistributableGzip => OCI_LAYER_NONDIST_TAR_GZIP,
            MediaType::OciLayerNonDistributableZstd => OCI_LAYER_NONDIST_TAR_ZSTD,
            MediaType::OciEmpty => OCI_EMPTY,
            MediaType::DockerManifest => DOCKER_MANIFEST,
            MediaType::DockerManifestList => DOCKER_MANIFEST_LIST,
            MediaType::DockerConfig => DOCKER_CONFIG,
            MediaType::DockerLayer => DOCKER_LAYER_TAR,
            MediaType::DockerLayerGzip => DOCKER_LAYER_TAR_GZIP,
            MediaType::DockerLayerForeign => DOCKER_LAYER_FOREIGN_TAR,
            MediaType::DockerLayerForeignGzip => DOCKER_LAYER_FOREIGN_TAR_GZIP,
            MediaType::Other(s) => s,
        }
    }

    /// An image manifest (OCI or Docker schema2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// An index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// An image config (OCI or Docker).
    pub fn is_config(&self) -> bool {
        matches!(self, MediaType::OciConfig | MediaType::DockerConfig)
    }

    /// A filesystem layer of any flavour, distributable or not.
    pub fn is_layer(&self) -> bool {
        self.layer_compression().is_some()
    }

    /// Layers that registries may refuse to serve (`urls` point elsewhere).
    pub fn is_non_distributable(&self) -> bool {
        matches!(
            self,
            MediaType::OciLayerNonDistributable
                | MediaType::OciLayerNonDistributableGzip
                | MediaType::OciLayerNonDistributableZstd
                | MediaType::DockerLayerForeign
                | MediaType::DockerLayerForeignGzip
        )
    }

    /// A Docker (rather than OCI) media type.
    pub fn is_docker(&self) -> bool {
        self.as_str().starts_with("application/vnd.docker.")
    }

    /// The compression of a layer, or `None` when this is not a layer.
    pub fn layer_compression(&self) -> Option<Compression> {
        match self {
            MediaType::OciLayer
            | MediaType::OciLayerNonDistributable
            | MediaType::DockerLayer
            | MediaType::DockerLayerForeign => Some(Compression::None),
            MediaType::OciLayerGzip
            | MediaType::OciLayerNonDistributableGzip
            | MediaType::DockerLayerGzip
            | MediaType::DockerLayerForeignGzip => Some(Compression::Gzip),
            MediaType::OciLayerZstd | MediaType::OciLayerNonDistributableZstd => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        KNOWN
            .iter()
            .find(|known| known.as_str() == s)
            .cloned()
            .unwrap_or_else(|| MediaType::Other(s.to_string()))
    }
}

impl From<String> for MediaType {
    fn from(s: String) -> Self {
        match MediaType::from(s.as_str()) {
            MediaType::Other(_) => MediaType::Other(s),
            known => known,
        }
    }
}

impl FromStr for MediaType {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(MediaType::from(s))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(MediaType::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips() {
        for mt in KNOWN {
            let name = mt.as_str();
            assert_eq!(MediaType::from(name), mt);
            assert_ne!(mt, MediaType::Other(name.to_string()));
            assert!(
                mt.is_manifest()
                    || mt.is_index()
                    || mt.is_config()
                    || mt.is_layer()
                    || mt == MediaType::OciEmpty
            );
        }
        let other = MediaType::from("application/vnd.example+json");
        assert_eq!(
            other,
            MediaType::Other("application/vnd.example+json".into())
        );
        assert_eq!(other.to_string(), "application/vnd.example+json");
    }

    #[test]
    fn classifies() {
        assert!(MediaType::DockerManifest.is_manifest());
        assert!(MediaType::OciIndex.is_index() && MediaType::DockerManifestList.is_index());
        assert!(!MediaType::OciIndex.is_manifest());
        assert!(MediaType::DockerConfig.is_config() && !MediaType::DockerConfig.is_layer());
        assert_eq!(
            MediaType::DockerLayerGzip.layer_compression(),
            Some(Compression::Gzip)
        );
        assert_eq!(
            MediaType::OciLayerZstd.layer_compression(),
            Some(Compression::Zstd)
        );
        assert_eq!(
            MediaType::OciLayer.layer_compression(),
            Some(Compression::None)
        );
        assert_eq!(MediaType::OciConfig.layer_compression(), None);
        assert!(MediaType::DockerLayerForeignGzip.is_non_distributable());
        assert!(MediaType::DockerLayerForeignGzip.is_layer());
        assert!(!MediaType::OciLayerGzip.is_non_distributable());
        assert!(MediaType::DockerConfig.is_docker() && !MediaType::OciConfig.is_docker());
        assert!(!MediaType::Other("x".into()).is_layer());
    }
}
