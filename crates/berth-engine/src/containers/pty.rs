//! Terminals of `-t` containers and execs: libcontainer makes the pty
//! inside the container and sends its master end over a unix socket
//! (`SCM_RIGHTS`); berth receives it here.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

use crate::{Error, Result};

/// Receives the pty master a container process sent on a console socket.
pub fn receive(listener: &UnixListener) -> Result<OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let (conn, _) = listener
        .accept()
        .map_err(|e| Error::io("console socket".to_string(), e))?;
    let _ = conn.set_nonblocking(false);
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    recvmsg(
        &conn,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| Error::io("console socket".to_string(), e.into()))?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(Error::Invalid("the container sent no terminal".to_string()))
}
