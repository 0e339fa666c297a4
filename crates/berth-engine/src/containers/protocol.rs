//! How the CLI (and later the API server) talks to a container's shim: a
//! unix stream socket `containers/<id>/shim.sock`. A client sends one JSON
//! request line; the shim answers with one JSON reply line, except for
//! `attach`, after which the connection carries Docker's multiplexed stream
//! (8-byte frame headers: stream 1 stdout, 2 stderr) from the shim and raw
//! stdin bytes to it, until the container's output ends.
//!
//! The socket is reached through `/proc/self/fd/<dir fd>/shim.sock`, so the
//! length of the store root never meets the 108-byte limit of socket paths.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub(crate) const SOCKET: &str = "shim.sock";

/// What a client asks of the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Start the container (a shim waits for this before its first start).
    Start,
    /// Stream the container's output (and take its stdin).
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Reply once the container has exited (and, for `--rm`, been removed).
    Wait,
    /// Send a signal to the container's init.
    Kill {
        signal: i32,
    },
    /// Send `signal`, then SIGKILL after `timeout` seconds; reply once exited.
    Stop {
        signal: i32,
        timeout: i64,
    },
    Pause,
    Resume,
    /// The terminal size of a `-t` container.
    Resize {
        height: u16,
        width: u16,
    },
}

/// The shim's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// Empty when the request succeeded.
    pub error: String,
    /// For a failed start: the exit status `docker run` gives (125/126/127).
    pub status: i32,
    /// For `wait`/`stop`: the container's exit code.
    pub exit_code: i32,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::default()
    }

    pub fn failed(status: i32, error: impl Into<String>) -> Reply {
        Reply {
            error: error.into(),
            status,
            exit_code: 0,
        }
    }

    pub fn exited(code: i32) -> Reply {
        Reply {
            exit_code: code,
            ..Reply::default()
        }
    }
}

/// Stream numbers of the multiplexed attach stream.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Docker's frame header for `len` bytes of `stream`.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, len[0], len[1], len[2], len[3]]
}

/// Reads one frame; `None` at the end of the stream.
pub fn read_frame(reader: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<Option<u8>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf)?;
    Ok(Some(header[0]))
}

fn dir_fd(dir: &Path) -> Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(dir.display().to_string(), e.into()))
}

fn socket_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}/{SOCKET}", fd.as_raw_fd())
}

/// Binds `dir/shim.sock` (replacing a stale one).
pub fn listen(dir: &Path) -> Result<UnixListener> {
    listen_at(dir, SOCKET)
}

/// Binds the unix socket `dir/name` (replacing a stale one).
pub fn listen_at(dir: &Path, name: &str) -> Result<UnixListener> {
    use std::os::fd::AsRawFd;
    let _ = std::fs::remove_file(dir.join(name));
    let fd = dir_fd(dir)?;
    UnixListener::bind(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()))
        .map_err(|e| Error::io(dir.join(name).display().to_string(), e))
}

/// Connects to the shim of the container in `dir`.
pub fn connect(dir: &Path) -> Result<UnixStream> {
    let fd = dir_fd(dir)?;
    UnixStream::connect(socket_path(&fd)).map_err(|e| {
        Error::Conflict(format!(
            "the container's shim is not reachable ({}: {e})",
            dir.join(SOCKET).display()
        ))
    })
}

/// Sends `request` on a new connection and returns the connection.
pub fn send(dir: &Path, request: &Request) -> Result<UnixStream> {
    let mut stream = connect(dir)?;
    let mut line = serde_json::to_vec(request)
        .map_err(|e| Error::Invalid(format!("encoding request: {e}")))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| Error::io(SOCKET.to_string(), e))?;
    Ok(stream)
}

/// Reads the one-line reply of a request.
pub fn read_reply(stream: UnixStream) -> Result<Reply> {
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| Error::io(SOCKET.to_string(), e))?;
    if line.is_empty() {
        return Err(Error::Conflict(
            "the container's shim exited without answering".to_string(),
        ));
    }
    serde_json::from_str(&line).map_err(|e| Error::Invalid(format!("shim reply {line:?}: {e}")))
}

/// Sends `request` and waits for its reply.
pub fn call(dir: &Path, request: &Request) -> Result<Reply> {
    read_reply(send(dir, request)?)
}
