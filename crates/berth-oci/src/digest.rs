//! Content digests (`algorithm:hex`), validated once when parsed so that a
//! digest is always safe to use as a file name.

use std::fmt;
use std::str::FromStr;

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
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Digest::new(algorithm, hex)
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
    fn from_bytes_round_trips() {
        let d = Digest::from_bytes(Algorithm::Sha256, &[0xab; 32]).unwrap();
        assert_eq!(d.hex(), "ab".repeat(32));
        assert!(Digest::from_bytes(Algorithm::Sha256, &[1, 2]).is_err());
    }
}
