//! Image manifests and indexes: OCI image manifest and Docker schema2 (one
//! JSON shape), OCI image index and Docker manifest list (another).
//!
//! Parsed documents are for reading. A manifest's digest is the digest of the
//! bytes it arrived as: keep those bytes, and use [`Manifest::to_json`] /
//! [`Index::to_json`] only for documents berth writes itself (they come out
//! as Go's `encoding/json` writes the image-spec structs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::descriptor::Descriptor;
use crate::error::Error;
use crate::json;
use crate::media_type::MediaType;
use crate::platform::Platform;

/// An image manifest (OCI or Docker schema2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(deserialize_with = "json::null_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this version of berth does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(deserialize_with = "json::null_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this version of berth does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn check_schema(what: &'static str, version: u32) -> Result<(), Error> {
    if version == 2 {
        Ok(())
    } else {
        Err(Error::SchemaVersion { what, version })
    }
}

impl Manifest {
    /// A schema-2 manifest with the given media type.
    pub fn new(media_type: MediaType, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Parses and checks a manifest (schema version 2, a manifest media
    /// type if one is given).
    pub fn from_slice(bytes: &[u8]) -> Result<Manifest, Error> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(Error::json("image manifest"))?;
        check_schema("image manifest", m.schema_version)?;
        match &m.media_type {
            Some(mt) if !mt.is_manifest() => Err(Error::MediaType(mt.to_string())),
            _ => Ok(m),
        }
    }

    /// The JSON bytes, as Go writes the same struct.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        json::to_vec(self).map_err(Error::json("image manifest"))
    }
}

impl Index {
    /// A schema-2 index with the given media type.
    pub fn new(media_type: MediaType, manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Parses and checks an index (schema version 2, an index media type if
    /// one is given).
    pub fn from_slice(bytes: &[u8]) -> Result<Index, Error> {
        let i: Index = serde_json::from_slice(bytes).map_err(Error::json("image index"))?;
        check_schema("image index", i.schema_version)?;
        match &i.media_type {
            Some(mt) if !mt.is_index() => Err(Error::MediaType(mt.to_string())),
            _ => Ok(i),
        }
    }

    /// The JSON bytes, as Go writes the same struct.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        json::to_vec(self).map_err(Error::json("image index"))
    }

    /// The entry to pull for `wanted`, as containerd chooses: the best
    /// [`Platform::rank`] among entries with a platform, the first one on a
    /// tie; an entry without a platform only when nothing matches.
    pub fn select(&self, wanted: &Platform) -> Option<&Descriptor> {
        let mut best: Option<(usize, &Descriptor)> = None;
        let mut unplatformed = None;
        for d in &self.manifests {
            match &d.platform {
                None => {
                    unplatformed = unplatformed.or(Some(d));
                }
                Some(p) => {
                    let better = match (wanted.rank(p), best) {
                        (Some(rank), Some((r, _))) => rank < r,
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    if better {
                        best = wanted.rank(p).map(|rank| (rank, d));
                    }
                }
            }
        }
        best.map(|(_, d)| d).or(unplatformed)
    }
}

/// A manifest or an index, told apart by media type or, failing that, by
/// shape (`manifests` versus `config`).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // parsed, matched on, dropped; never stored in bulk
pub enum ImageDocument {
    Manifest(Manifest),
    Index(Index),
}

impl ImageDocument {
    /// Parses `bytes`; `content_type` is the registry's `Content-Type`, if
    /// any, and wins over the document's own `mediaType` only when that is
    /// missing.
    pub fn from_slice(content_type: Option<&MediaType>, bytes: &[u8]) -> Result<Self, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            #[serde(default)]
            media_type: Option<MediaType>,
            #[serde(default)]
            manifests: Option<Value>,
            #[serde(default)]
            config: Option<Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(Error::json("manifest"))?;
        let media_type = probe.media_type.or_else(|| content_type.cloned());
        match media_type {
            Some(mt) if mt.is_index() => Index::from_slice(bytes).map(ImageDocument::Index),
            Some(mt) if mt.is_manifest() => {
                Manifest::from_slice(bytes).map(ImageDocument::Manifest)
            }
            Some(mt) if probe.manifests.is_none() && probe.config.is_none() => {
                Err(Error::MediaType(mt.to_string()))
            }
            _ if probe.manifests.is_some() => Index::from_slice(bytes).map(ImageDocument::Index),
            _ => Manifest::from_slice(bytes).map(ImageDocument::Manifest),
        }
    }
}
