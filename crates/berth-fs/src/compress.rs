//! Layer compression: detection by magic bytes, gzip (flate2 with the
//! zlib-rs backend) and zstd readers and writers. Archives that are not
//! image layers (ADD's auto-extraction, build contexts) may also be bzip2
//! or xz, as Docker accepts them: [`decompress_archive`].

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
    /// bzip2 (`BZh`): an archive format, not a layer format.
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`): an archive format, not a layer format.
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
/// Returns the detected compression too. Image layers are plain, gzip or
/// zstd; bzip2 and xz are refused (see [`decompress_archive`]).
pub fn decompress<'a, R: Read + 'a>(reader: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    open_decompressed(reader, false)
}

/// Like [`decompress`], also for bzip2 and xz: for archives that are not
/// image layers (ADD's auto-extraction, build contexts), as Docker reads them.
pub fn decompress_archive<'a, R: Read + 'a>(
    reader: R,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
    open_decompressed(reader, true)
}

fn open_decompressed<'a, R: Read + 'a>(
    mut reader: R,
    any_archive: bool,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
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
        Compression::Bzip2 if any_archive => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        Compression::Xz if any_archive => Box::new(xz2::read::XzDecoder::new_multi_decoder(stream)),
        Compression::Bzip2 => return Err(Error::Unsupported("bzip2-compressed layer".into())),
        Compression::Xz => return Err(Error::Unsupported("xz-compressed layer".into())),
    };
    Ok((kind, out))
}

/// True when `block` (a stream's first 512 bytes) is a tar header: its
/// checksum field matches, as Go's `archive/tar` (and so Docker) checks it.
/// Old V7 archives without the `ustar` magic pass too.
pub fn is_tar_header(block: &[u8]) -> bool {
    let Some(block) = block.get(..512) else {
        return false;
    };
    let Some(field) = block.get(148..156) else {
        return false;
    };
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let Ok(recorded) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    if text.is_empty() || block.iter().all(|b| *b == 0) {
        return false;
    }
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == recorded
}

/// True when `reader` holds a tar archive, plain or compressed in any
/// format [`decompress_archive`] reads (Docker's test for ADD's
/// auto-extraction and for a remote build context).
pub fn is_tar_archive(reader: impl Read) -> bool {
    let Ok((_, mut stream)) = decompress_archive(reader) else {
        return false;
    };
    let mut block = [0u8; 512];
    let mut n = 0;
    while n < block.len() {
        match stream.read(&mut block[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    is_tar_header(block.get(..n).unwrap_or_default())
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

    /// A one-file tar made with the `tar` crate.
    fn small_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "a.txt", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_in_bzip2_and_xz() {
        let tar = small_tar();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let xz = xz.finish().unwrap();
        for (bytes, kind) in [(&bz, Compression::Bzip2), (&xz, Compression::Xz)] {
            assert!(
                decompress(&bytes[..]).is_err(),
                "{kind:?} is not a layer format"
            );
            let (got, mut r) = decompress_archive(&bytes[..]).unwrap();
            assert_eq!(got, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, tar);
            assert!(is_tar_archive(&bytes[..]));
        }
        assert!(is_tar_archive(&tar[..]));
    }

    #[test]
    fn tar_headers_are_checked() {
        let tar = small_tar();
        assert!(is_tar_header(&tar[..512]));
        let mut broken = tar[..512].to_vec();
        broken[0] ^= 1;
        assert!(!is_tar_header(&broken));
        assert!(!is_tar_header(&[0u8; 512]));
        assert!(!is_tar_header(b"FROM busybox\n"));
        assert!(!is_tar_archive(&b"FROM busybox\nRUN true\n"[..]));
        let mut gz = gzip_writer(Vec::new(), 1);
        gz.write_all(b"just text, not a tar").unwrap();
        assert!(!is_tar_archive(&gz.finish().unwrap()[..]));
    }
}
