//! The image config JSON (`application/vnd.docker.container.image.v1+json`
//! and `application/vnd.oci.image.config.v1+json`) as Docker writes it.
//!
//! Key names and omissions follow moby's docker-image-spec (the OCI config
//! plus `Healthcheck`, `OnBuild`, `Shell`): PascalCase inside `config`,
//! snake_case `diff_ids`, `created_by`, `empty_layer`, empty fields left
//! out. Fields berth does not know are kept in `extra` maps and written back.
//!
//! The image ID is the digest of the config bytes. [`ImageConfig::to_canonical_json`]
//! is the one way berth writes a config: compact, Go's escaping, top-level
//! keys sorted (as BuildKit writes them), nested fields in the spec's struct
//! order, maps sorted. A config already in that form re-serialises to the
//! same bytes. A config in another form (legacy Docker with `null`s and
//! `container_config`) parses fine but must keep its original bytes to keep
//! its ID; the store does that.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Error;
use crate::json::{self, null_default};
use crate::platform::Platform;

/// The image config document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub history: Vec<History>,
    /// Unknown top-level fields (`moby.buildkit.buildinfo.v1`,
    /// `container_config`, `docker_version`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The defaults for containers run from the image (`config` in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `"80/tcp"` and the like; a JSON object whose values are `{}`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty", with = "key_set")]
    pub exposed_ports: BTreeSet<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub env: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "str_slice"
    )]
    pub entrypoint: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "str_slice"
    )]
    pub cmd: Vec<String>,
    /// Mount points; a JSON object whose values are `{}`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty", with = "key_set")]
    pub volumes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub on_build: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub shell: Vec<String>,
    /// Unknown fields (legacy `Hostname`, `Image`, `StopTimeout`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `HEALTHCHECK` settings; durations are integer nanoseconds, 0 = inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `[]` inherit, `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// The layer chain, as uncompressed-tar digests (`diff_ids`), base first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// One build step; `empty_layer` steps added no layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// moby's `strslice`: `null`, a string or an array of strings.
fn str_slice<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrSlice {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<StrSlice>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(StrSlice::One(s)) => vec![s],
        Some(StrSlice::Many(v)) => v,
    })
}

/// A set written as a JSON object with `{}` values (Go's `map[string]struct{}`).
mod key_set {
    use super::*;
    use serde::ser::SerializeMap;

    #[derive(Serialize)]
    struct Empty {}

    pub fn serialize<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(set.len()))?;
        for key in set {
            map.serialize_entry(key, &Empty {})?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let map: Option<BTreeMap<String, serde::de::IgnoredAny>> = Option::deserialize(d)?;
        Ok(map.unwrap_or_default().into_keys().collect())
    }
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, Error> {
        serde_json::from_slice(bytes).map_err(Error::json("image config"))
    }

    /// The bytes berth writes for this config (see the module docs).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, Error> {
        json::to_vec_sorted_top(self).map_err(Error::json("image config"))
    }

    /// The image ID: the sha256 of [`ImageConfig::to_canonical_json`].
    pub fn image_id(&self) -> Result<Digest, Error> {
        self.to_canonical_json().map(|b| Digest::sha256_of(&b))
    }

    /// The image's platform.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
            variant: self.variant.clone(),
            features: Vec::new(),
        }
    }

    /// The layer chain (empty when `rootfs` is missing).
    pub fn diff_ids(&self) -> &[Digest] {
        self.rootfs.as_ref().map_or(&[], |r| r.diff_ids.as_slice())
    }
}
