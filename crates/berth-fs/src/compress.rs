//! Layer compression: detection by magic bytes, gzip (flate2 with the
//! zlib-rs backend) and zstd readers and writers.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// A compression format, as told by a stream's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No recognised compression: a plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// Zstandard (`28 b5 2f fd`).
    Zstd,
    /// bzip2 (`BZh`): recognised, not supported.
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`): recognised, not supported.
    Xz,
}

/// How many leading bytes [`detect_compression`] needs to decide.
pub const MAGIC_LEN: usize = 6;

/// Tell the compression of a stream from its first bytes (up to [`MAGIC_LEN`]).
pub fn detect_compression(first: &[u8]) -> Compression {
    if first.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if first.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if first.starts_with(b"BZh") {
        Compression::Bzip2
    } else if first.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// Peek at `reader`'s first bytes and wrap it in the matching decompressor.
/// Returns the detected compression too.
pub fn decompress<'a, R: Read + 'a>(mut reader: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; MAGIC_LEN];
    let mut n = 0;
    while n < MAGIC_LEN {
        match reader.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Archive(e)),
        }
    }
    let head = magic.get(..n).unwrap_or(&[]).to_vec();
    let kind = detect_compression(&head);
    let stream = io::Cursor::new(head).chain(reader);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(gzip_reader(stream)),
        Compression::Zstd => Box::new(zstd_reader(stream)?),
        Compression::Bzip2 => return Err(Error::Unsupported("bzip2-compressed layer".into())),
        Compression::Xz => return Err(Error::Unsupported("xz-compressed layer".into())),
    };
    Ok((kind, out))
}

/// A gzip decoder that also reads concatenated members.
pub fn gzip_reader<R: Read>(reader: R) -> flate2::read::MultiGzDecoder<R> {
    flate2::read::MultiGzDecoder::new(reader)
}

/// A gzip encoder at `level` (0–9; 1 is fastest, 6 is gzip's default).
/// Call `finish()` on it to write the trailer.
pub fn gzip_writer<W: Write>(writer: W, level: u32) -> flate2::write::GzEncoder<W> {
    flate2::write::GzEncoder::new(writer, flate2::Compression::new(level.min(9)))
}

/// A zstd decoder.
pub fn zstd_reader<'a, R: Read + 'a>(
    reader: R,
) -> Result<zstd::stream::read::Decoder<'a, io::BufReader<R>>> {
    zstd::stream::read::Decoder::new(reader).map_err(Error::Archive)
}

/// A zstd encoder at `level` (1–22; 3 is zstd's default). Call `finish()` on it.
pub fn zstd_writer<'a, W: Write>(
    writer: W,
    level: i32,
) -> Result<zstd::stream::write::Encoder<'a, W>> {
    zstd::stream::write::Encoder::new(writer, level).map_err(|e| Error::Unsupported(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            detect_compression(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
            Compression::Xz
        );
        assert_eq!(detect_compression(b"hello"), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
    }

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = gzip_writer(Vec::new(), 1);
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let (kind, mut r) = decompress(&gz[..]).unwrap();
        assert_eq!(kind, Compression::Gzip);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let mut zs = zstd_writer(Vec::new(), 3).unwrap();
        zs.write_all(&data).unwrap();
        let zs = zs.finish().unwrap();
        let (kind, mut r) = decompress(&zs[..]).unwrap();
        assert_eq!(kind, Compression::Zstd);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let (kind, mut r) = decompress(&b"abc"[..]).unwrap();
        assert_eq!(kind, Compression::None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }
}
