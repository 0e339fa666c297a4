//! Content digests (`algorithm:hex`), validated once when parsed so that a
//! digest is always safe to use as a file name, and [`DigestWriter`], which
//! hashes a blob while it streams past instead of buffering it.

use std::fmt;
use std::io;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A digest algorithm berth accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated `algorithm:hex` digest with lower-case hex of the right length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected algorithm:hex")]
    Format(String),
    #[error("invalid digest {0:?}: unsupported algorithm")]
    Algorithm(String),
    #[error("invalid digest {0:?}: expected {1} lower-case hex characters")]
    Hex(String, usize),
}

impl Digest {
    /// A digest from an algorithm and raw hash bytes.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, DigestError> {
        Digest::new(algorithm, to_hex(bytes))
    }

    /// A digest from an algorithm and its hex encoding.
    pub fn new(algorithm: Algorithm, hex: String) -> Result<Self, DigestError> {
        let valid = hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(DigestError::Hex(
                format!("{}:{hex}", algorithm.name()),
                algorithm.hex_len(),
            ));
        }
        Ok(Digest { algorithm, hex })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker shows image IDs.
    pub fn short(&self) -> &str {
        self.hex.get(..12).unwrap_or(&self.hex)
    }
}

impl Digest {
    /// The sha256 digest of `bytes` (for small documents: configs, manifests).
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: to_hex(&Sha256::digest(bytes)),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Hashes bytes as they are written and counts them; wrap it around (or tee
/// into it from) a blob stream, then call [`DigestWriter::finish`].
///
/// ```
/// use std::io::Write;
/// let mut w = berth_oci::DigestWriter::sha256();
/// w.write_all(b"hello ").unwrap();
/// w.write_all(b"world").unwrap();
/// let (digest, size) = w.finish();
/// assert_eq!(size, 11);
/// assert_eq!(digest, berth_oci::Digest::sha256_of(b"hello world"));
/// ```
#[derive(Clone)]
pub struct DigestWriter {
    hasher: Hasher,
    written: u64,
}

impl fmt::Debug for DigestWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestWriter")
            .field("algorithm", &self.algorithm())
            .field("written", &self.written)
            .finish()
    }
}

impl DigestWriter {
    pub fn new(algorithm: Algorithm) -> Self {
        let hasher = match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        DigestWriter { hasher, written: 0 }
    }

    pub fn sha256() -> Self {
        DigestWriter::new(Algorithm::Sha256)
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.hasher {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds bytes; infallible, unlike [`io::Write::write`].
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
        self.written = self.written.saturating_add(bytes.len() as u64);
    }

    /// Bytes seen so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of everything written and its size in bytes.
    pub fn finish(self) -> (Digest, u64) {
        let (algorithm, hex) = match self.hasher {
            Hasher::Sha256(h) => (Algorithm::Sha256, to_hex(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, to_hex(&h.finalize())),
        };
        (Digest { algorithm, hex }, self.written)
    }
}

impl io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(DigestError::Algorithm(s.to_string())),
        };
        Digest::new(algorithm, hex.to_string())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
    }

    #[test]
    fn rejects_what_could_escape_a_path() {
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_known_values() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        let mut w = DigestWriter::new(Algorithm::Sha512);
        std::io::Write::write_all(&mut w, b"abc").unwrap();
        let (d, n) = w.finish();
        assert_eq!(n, 3);
        assert!(d.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(d.algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = DigestWriter::sha256();
        for chunk in data.chunks(4093) {
            w.update(chunk);
        }
        assert_eq!(w.written(), data.len() as u64);
        let (d, n) = w.finish();
        assert_eq!(d, Digest::sha256_of(&data));
        assert_eq!(n, 100_000);
    }

    #[test]
    fn serde_as_string() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{EMPTY}\""));
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }

    #[test]
    fn from_bytes_round_trips() {
        let d = Digest::from_bytes(Algorithm::Sha256, &[0xab; 32]).unwrap();
        assert_eq!(d.hex(), "ab".repeat(32));
        assert!(Digest::from_bytes(Algorithm::Sha256, &[1, 2]).is_err());
    }
}
