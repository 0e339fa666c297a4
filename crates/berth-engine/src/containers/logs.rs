//! Docker's `json-file` log driver: one JSON object per line of output,
//! `{"log":"text\n","stream":"stdout","time":"<RFC 3339 nanos>"}`, in
//! `containers/<id>/<id>-json.log`. The shim writes, `berth logs` reads.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::time::{rfc3339_fixed, wall_now_precise};
use crate::{Error, Result};

/// Lines longer than this are written in pieces (as Docker's 16 KiB
/// buffer does); the pieces carry no newline until the last.
const MAX_LINE: usize = 16 * 1024;

/// The log file of the container `id` in `dir`.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends output to a json-file log, a line per entry.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    /// Unterminated output per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records `bytes` the container wrote to `stream` (1 stdout, 2 stderr).
    pub fn write(&mut self, stream: u8, bytes: &[u8]) {
        let idx = usize::from(stream == 2);
        let mut out = Vec::new();
        let time = {
            let (s, n) = wall_now_precise();
            rfc3339_fixed(s, n)
        };
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            let mut whole = std::mem::take(&mut self.partial[idx]);
            whole.extend_from_slice(line);
            encode(&mut out, &whole, stream, &time);
            rest = tail;
        }
        self.partial[idx].extend_from_slice(rest);
        while self.partial[idx].len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial[idx].drain(..MAX_LINE).collect();
            encode(&mut out, &piece, stream, &time);
        }
        // Log writes must not stop the container: a full disk loses lines.
        let _ = self.file.write_all(&out);
    }

    /// Writes what is left unterminated (at the container's exit).
    pub fn flush(&mut self) {
        let time = {
            let (s, n) = wall_now_precise();
            rfc3339_fixed(s, n)
        };
        let mut out = Vec::new();
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let piece = std::mem::take(&mut self.partial[idx]);
            if !piece.is_empty() {
                encode(&mut out, &piece, stream, &time);
            }
        }
        let _ = self.file.write_all(&out);
    }
}

fn encode(out: &mut Vec<u8>, text: &[u8], stream: u8, time: &str) {
    let entry = LogEntry {
        log: String::from_utf8_lossy(text).into_owned(),
        stream: if stream == 2 { "stderr" } else { "stdout" }.to_string(),
        time: time.to_string(),
    };
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

/// Reads a log file from a position on, a whole line at a time.
#[derive(Debug)]
pub struct LogReader {
    reader: BufReader<File>,
    pending: String,
}

impl LogReader {
    /// Opens the log; a container that never wrote has an empty one.
    pub fn open(path: &Path) -> Result<Option<LogReader>> {
        match File::open(path) {
            Ok(file) => Ok(Some(LogReader {
                reader: BufReader::new(file),
                pending: String::new(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path.display().to_string(), e)),
        }
    }

    /// The entries written since the last call (a line being written is
    /// left for the next call).
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| Error::io("log".to_string(), e))?;
            if n == 0 {
                break;
            }
            self.pending.push_str(&line);
            if !self.pending.ends_with('\n') {
                break;
            }
            let whole = std::mem::take(&mut self.pending);
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&whole) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Skips to the end of the file (for `--tail 0` with `-f`).
    pub fn seek_end(&mut self) -> Result<()> {
        self.reader
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("log".to_string(), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partial_lines_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(1, b"one\ntw");
        w.write(2, b"err\n");
        w.write(1, b"o\nthree");
        w.flush();
        let mut r = LogReader::open(&path).unwrap().unwrap();
        let entries = r.read_new().unwrap();
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "three")
            ]
        );
        assert!(entries[0].time.ends_with('Z') && entries[0].time.len() == 30);
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write(1, &vec![b'x'; MAX_LINE * 2 + 5]);
        w.write(1, b"\n");
        let entries = LogReader::open(&path).unwrap().unwrap().read_new().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].log.len(), MAX_LINE);
        assert_eq!(entries[2].log, "xxxxx\n");
    }
}
