//! Image references (`busybox`, `user/app:v1`, `localhost:5000/a/b@sha256:…`)
//! parsed and normalised as docker/distribution's `reference` package does
//! (`ParseNormalizedNamed`, then `TagNameOnly`), with Docker's messages.
//!
//! Grammar (distribution's, written out by hand instead of as a regexp):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path            (at most 255 characters)
//! domain     := host [ ":" port ]
//! host       := label ( "." label )* | "[" ipv6-hex-and-colons "]"
//! label      := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator  := "." | "_" | "__" | "-"+
//! tag        := [\w][\w.-]{0,127}
//! digest     := algorithm ":" hex{32,}  (then checked by [`Digest`])
//! ```
//!
//! Normalisation: the first path component is a domain only when it holds a
//! `.` or a `:`, is `localhost`, or has upper-case letters; otherwise the
//! domain is `docker.io`, and a single-component Docker Hub path gets
//! `library/`. `index.docker.io` becomes `docker.io`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The Docker Hub domain references normalise to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of Docker Hub, rewritten to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference with neither tag nor digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Longest name (domain and path) accepted.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a reference; messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NameNotLowercase(String),
    #[error("invalid reference format: repository name must be lowercase")]
    ContainsUppercase,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid tag format")]
    InvalidTag,
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// A normalised, named image reference: always a domain and a path, and a
/// tag, a digest, both, or (from [`Reference::parse_named`]) neither.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses as the docker CLI does for `pull`, `run`, `tag`: normalises,
    /// and adds `:latest` when there is neither tag nor digest.
    ///
    /// ```
    /// let r = berth_oci::Reference::parse("busybox").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    /// assert_eq!(r.familiar_string(), "busybox:latest");
    /// ```
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises without adding a default tag
    /// (distribution's `ParseNormalizedNamed`).
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::NameNotLowercase(remote_name.to_string()));
        }
        let full = format!("{domain}/{remainder}");
        let parts = match split_reference(&full) {
            Some(parts) => parts,
            None if split_reference(&full.to_lowercase()).is_some() => {
                return Err(ReferenceError::ContainsUppercase)
            }
            None => return Err(ReferenceError::InvalidFormat),
        };
        if parts.name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = parts.digest.map(parse_digest).transpose()?;
        Ok(Reference {
            domain: parts.domain.to_string(),
            path: parts.path.to_string(),
            tag: parts.tag.map(str::to_string),
            digest,
        })
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, the full repository name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with `tag` (checked against the tag grammar).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same reference with `digest` added.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone, without tag or digest.
    pub fn repository(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The short name Docker prints: `busybox`, `user/app`,
    /// `localhost:5000/a/b` (distribution's `FamiliarName`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The familiar name with tag and digest: `busybox:latest`
    /// (distribution's `FamiliarString`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// Same as [`Reference::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(deserializer)?;
        Reference::parse_named(&s).map_err(serde::de::Error::custom)
    }
}

/// The hex part when `s` could be a (possibly shortened) image ID: 1 to 64
/// lower-case hex characters, optionally after `sha256:`. A string can be
/// both an ID prefix and a name (`abc`, `deadbeef`); the store decides.
pub fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty() && hex.len() <= 64 && is_lower_hex(hex)).then_some(hex)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (mut domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first, rest.to_string())
        }
        _ => (DEFAULT_DOMAIN, name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remainder}"));
    }
    (domain, remainder)
}

struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    name_len: usize,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Splits `domain/path[:tag][@digest]`, checking each part's grammar.
fn split_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !is_digest_shape(d) {
            return None;
        }
    }
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    let (domain, path) = name.split_once('/')?;
    if !is_domain(domain) || !path.split('/').all(is_path_component) {
        return None;
    }
    Some(Parts {
        domain,
        path,
        name_len: name.len(),
        tag,
        digest,
    })
}

fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = t.bytes();
    match bytes.next() {
        Some(first) if word(first) => {}
        _ => return false,
    }
    t.len() <= 128 && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while bytes.get(i).is_some_and(|&b| alnum(b)) {
            i += 1;
        }
        if i == start {
            return false;
        }
        match bytes.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            Some(b'-') => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return false,
        }
    }
}

fn is_domain(d: &str) -> bool {
    let (host_ok, port) = match d.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inner, after)) => {
                let ipv6 =
                    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                match after {
                    "" => (ipv6, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (ipv6, Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        },
        None => match d.split_once(':') {
            Some((host, port)) => (is_domain_name(host), Some(port)),
            None => (is_domain_name(d), None),
        },
    };
    host_ok && port.is_none_or_digits()
}

trait PortExt {
    fn is_none_or_digits(&self) -> bool;
}

impl PortExt for Option<&str> {
    fn is_none_or_digits(&self) -> bool {
        match self {
            None => true,
            Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
        }
    }
}

fn is_domain_name(host: &str) -> bool {
    host.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(f), Some(l)) => {
                f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            _ => false,
        }
    })
}

/// distribution's digest pattern: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
fn is_digest_shape(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let mut bytes = c.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(component_ok)
}

/// go-digest's `Parse` errors, on a digest of the right shape.
fn parse_digest(d: &str) -> Result<Digest, ReferenceError> {
    d.parse::<Digest>().map_err(|e| match e {
        DigestError::Format(_) => ReferenceError::InvalidFormat,
        DigestError::Algorithm(_) => ReferenceError::DigestAlgorithm,
        DigestError::Hex(s, len) => {
            let hex = s.split_once(':').map_or("", |(_, h)| h);
            if hex.len() == len {
                ReferenceError::DigestFormat
            } else {
                ReferenceError::DigestLength
            }
        }
    })
}
