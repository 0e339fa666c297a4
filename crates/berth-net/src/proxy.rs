//! Userland port proxies for published ports, made for a single-threaded
//! poll(2) loop (the shim's): non-blocking listeners, non-blocking connects
//! to the container, bounded buffers in both directions with half-close
//! passed on, and UDP forwarding with one session (and socket) per client
//! address. The owner polls [`PortProxies::poll_fds`] together with its own
//! descriptors and hands readiness to [`PortProxies::on_ready`].

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::ports::{PortBinding, Protocol};
use crate::{Error, Result};

/// Bytes buffered per direction of a TCP connection.
const PIPE_CAPACITY: usize = 64 * 1024;
/// A UDP session without traffic for this long is dropped.
const UDP_IDLE: Duration = Duration::from_secs(30);
/// At most this many UDP clients per published port at once.
const UDP_MAX_SESSIONS: usize = 1024;

/// A published port and the host address it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPort {
    pub binding: PortBinding,
    pub host: SocketAddr,
}

/// One direction of a proxied connection.
#[derive(Debug)]
struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source said end of stream.
    eof: bool,
    /// The end of stream was passed on to the destination.
    shut: bool,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            buf: vec![0; PIPE_CAPACITY].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    fn wants_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }

    fn has_data(&self) -> bool {
        self.start < self.end
    }

    /// Reads what is available; Ok(true) on progress.
    fn fill(&mut self, from: &mut TcpStream) -> std::io::Result<bool> {
        let mut progress = false;
        while self.wants_read() {
            match from.read(self.buf.get_mut(self.end..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.end += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Writes what is buffered, then passes on the end of stream.
    fn drain(&mut self, to: &mut TcpStream) -> std::io::Result<bool> {
        let mut progress = false;
        while self.has_data() {
            match to.write(self.buf.get(self.start..self.end).unwrap_or_default()) {
                Ok(n) => {
                    self.start += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.has_data() {
            self.start = 0;
            self.end = 0;
            if self.eof && !self.shut {
                self.shut = true;
                progress = true;
                match to.shutdown(Shutdown::Write) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotConnected => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(progress)
    }
}

#[derive(Debug)]
struct TcpSession {
    client: TcpStream,
    server: TcpStream,
    connecting: bool,
    up: Pipe,
    down: Pipe,
}

impl TcpSession {
    fn finished(&self) -> bool {
        self.up.shut && self.down.shut
    }

    /// Moves data both ways until nothing more can move; Err closes the
    /// session.
    fn pump(&mut self) -> std::io::Result<()> {
        if self.connecting {
            match rustix::net::sockopt::socket_error(&self.server)? {
                Ok(()) => {}
                Err(e) => return Err(e.into()),
            }
            match self.server.peer_addr() {
                Ok(_) => self.connecting = false,
                Err(e) if e.kind() == ErrorKind::NotConnected => {
                    // Still connecting: read what the client sends meanwhile.
                    self.up.fill(&mut self.client)?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        loop {
            let mut progress = self.up.fill(&mut self.client)?;
            progress |= self.up.drain(&mut self.server)?;
            progress |= self.down.fill(&mut self.server)?;
            progress |= self.down.drain(&mut self.client)?;
            if !progress {
                return Ok(());
            }
        }
    }
}

#[derive(Debug)]
struct TcpFront {
    listener: TcpListener,
    target: SocketAddr,
}

#[derive(Debug)]
struct UdpSession {
    socket: UdpSocket,
    last: Instant,
}

#[derive(Debug)]
struct UdpFront {
    socket: UdpSocket,
    target: SocketAddr,
    sessions: HashMap<SocketAddr, UdpSession>,
}

/// The proxies of one container's published ports.
#[derive(Debug)]
pub struct PortProxies {
    bound: Vec<BoundPort>,
    tcp: Vec<TcpFront>,
    udp: Vec<UdpFront>,
    sessions: Vec<TcpSession>,
    buf: Box<[u8]>,
}

fn allocated(host: SocketAddr) -> Error {
    Error::Conflict(format!("Bind for {host} failed: port is already allocated"))
}

/// Binds a socket of `protocol` on `addr`, non-blocking; an IPv6 one is
/// IPv6-only, so that `[::]` sits beside `0.0.0.0` on the same port.
fn bind_socket(addr: SocketAddr, protocol: Protocol) -> std::io::Result<Socket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let kind = match protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    let fd = rustix::net::socket_with(
        family,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    if addr.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    match protocol {
        Protocol::Tcp => {
            // As std does: a restarted container gets its port back at once.
            rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
            rustix::net::bind(&fd, &addr)?;
            rustix::net::listen(&fd, 128)?;
            Ok(Socket::Tcp(TcpListener::from(fd)))
        }
        Protocol::Udp => {
            rustix::net::bind(&fd, &addr)?;
            Ok(Socket::Udp(UdpSocket::from(fd)))
        }
    }
}

/// Binds one published port: on its host address, or on `0.0.0.0` and
/// `[::]` (when the host has IPv6) with the same port, as Docker does.
/// The first free port of a host range is taken; port 0 is the kernel's
/// pick.
fn bind_one(binding: &PortBinding) -> Result<Vec<(SocketAddr, Socket)>> {
    let ip = binding.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let candidates: Vec<u16> = if binding.host_port == 0 {
        // The kernel's pick may be taken on IPv6: a few more tries.
        vec![0; 8]
    } else {
        (binding.host_port..=binding.host_port_end.max(binding.host_port)).collect()
    };
    let mut last = SocketAddr::new(ip, binding.host_port);
    'ports: for port in candidates {
        let addr = SocketAddr::new(ip, port);
        let first = match bind_socket(addr, binding.protocol) {
            Ok(socket) => socket,
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                last = addr;
                continue;
            }
            Err(e) => return Err(Error::sys(format!("bind {addr}/{}", binding.protocol), e)),
        };
        let local = first
            .local_addr()
            .map_err(|e| Error::sys("local address", e))?;
        let mut bound = vec![(local, first)];
        if binding.host_ip.is_none() {
            let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), local.port());
            match bind_socket(v6, binding.protocol) {
                Ok(socket) => bound.push((v6, socket)),
                Err(e) if e.kind() == ErrorKind::AddrInUse => {
                    last = v6;
                    continue 'ports;
                }
                // A host without IPv6.
                Err(e) => tracing::debug!(%e, "published port without IPv6"),
            }
        }
        return Ok(bound);
    }
    Err(allocated(last))
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Socket {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        }
    }
}

/// Starts a non-blocking TCP connect to `target`.
fn connect_nonblocking(target: SocketAddr) -> std::io::Result<TcpStream> {
    let family = match target {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd: OwnedFd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    match rustix::net::connect(&fd, &target) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

impl PortProxies {
    /// Binds every published port on the host, forwarding to
    /// `container_ip`. A port another process holds is Docker's "port is
    /// already allocated"; nothing stays bound on error.
    pub fn bind(bindings: &[PortBinding], container_ip: IpAddr) -> Result<PortProxies> {
        let mut proxies = PortProxies::empty();
        for binding in bindings {
            let target = SocketAddr::new(container_ip, binding.container_port);
            for (host, socket) in bind_one(binding)? {
                match socket {
                    Socket::Tcp(listener) => proxies.tcp.push(TcpFront { listener, target }),
                    Socket::Udp(socket) => proxies.udp.push(UdpFront {
                        socket,
                        target,
                        sessions: HashMap::new(),
                    }),
                }
                proxies.bound.push(BoundPort {
                    binding: binding.clone(),
                    host,
                });
            }
        }
        Ok(proxies)
    }

    /// No published ports.
    pub fn empty() -> PortProxies {
        PortProxies {
            bound: Vec::new(),
            tcp: Vec::new(),
            udp: Vec::new(),
            sessions: Vec::new(),
            buf: vec![0; 65536].into_boxed_slice(),
        }
    }

    /// The ports as bound (with the host ports the kernel chose for 0); a
    /// binding on all addresses appears twice, as `0.0.0.0` and `[::]`.
    pub fn bound(&self) -> &[BoundPort] {
        &self.bound
    }

    /// Open proxied TCP connections.
    pub fn connections(&self) -> usize {
        self.sessions.len()
    }

    /// The descriptors to poll and the events of interest.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::new();
        for front in &self.tcp {
            fds.push((front.listener.as_fd(), PollFlags::IN));
        }
        for front in &self.udp {
            fds.push((front.socket.as_fd(), PollFlags::IN));
            for session in front.sessions.values() {
                fds.push((session.socket.as_fd(), PollFlags::IN));
            }
        }
        for s in &self.sessions {
            let mut client = PollFlags::empty();
            let mut server = PollFlags::empty();
            if s.up.wants_read() {
                client |= PollFlags::IN;
            }
            if s.down.has_data() {
                client |= PollFlags::OUT;
            }
            if s.connecting {
                server |= PollFlags::OUT;
            } else {
                if s.down.wants_read() {
                    server |= PollFlags::IN;
                }
                if s.up.has_data() {
                    server |= PollFlags::OUT;
                }
            }
            // poll reports a hang-up whatever was asked for: a socket with
            // nothing to do now (its peer closed, the other side slow) is
            // left out rather than reported over and over.
            if !client.is_empty() {
                fds.push((s.client.as_fd(), client));
            }
            if !server.is_empty() {
                fds.push((s.server.as_fd(), server));
            }
        }
        fds
    }

    /// How long the owner may sleep in poll at most (UDP sessions expire).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.udp
            .iter()
            .any(|f| !f.sessions.is_empty())
            .then_some(Duration::from_secs(1))
    }

    /// Handles readiness of one of [`Self::poll_fds`]' descriptors (others
    /// are ignored).
    pub fn on_ready(&mut self, fd: RawFd, _revents: PollFlags) {
        if let Some(i) = self.tcp.iter().position(|f| f.listener.as_raw_fd() == fd) {
            self.accept(i);
        } else if let Some(i) = self
            .sessions
            .iter()
            .position(|s| s.client.as_raw_fd() == fd || s.server.as_raw_fd() == fd)
        {
            let done = match self.sessions.get_mut(i) {
                Some(session) => match session.pump() {
                    Ok(()) => session.finished(),
                    Err(e) => {
                        tracing::debug!(%e, "proxied connection closed");
                        true
                    }
                },
                None => false,
            };
            if done {
                self.sessions.swap_remove(i);
            }
        } else {
            self.udp_ready(fd);
        }
        self.expire_udp(Instant::now());
    }

    fn accept(&mut self, front: usize) {
        let Some(front) = self.tcp.get(front) else {
            return;
        };
        loop {
            match front.listener.accept() {
                Ok((client, _)) => {
                    let started = client
                        .set_nonblocking(true)
                        .and_then(|()| connect_nonblocking(front.target));
                    match started {
                        Ok(server) => {
                            let mut session = TcpSession {
                                client,
                                server,
                                connecting: true,
                                up: Pipe::new(),
                                down: Pipe::new(),
                            };
                            if session.pump().is_ok() {
                                self.sessions.push(session);
                            }
                        }
                        Err(e) => {
                            tracing::debug!(%e, target = %front.target, "proxy connect failed")
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn udp_ready(&mut self, fd: RawFd) {
        let buf = &mut self.buf;
        for front in &mut self.udp {
            if front.socket.as_raw_fd() == fd {
                // Client datagrams: forward each through its session.
                while let Ok((n, client)) = front.socket.recv_from(buf) {
                    if !front.sessions.contains_key(&client) {
                        if front.sessions.len() >= UDP_MAX_SESSIONS {
                            continue;
                        }
                        let local = match front.target {
                            SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
                            SocketAddr::V6(_) => {
                                SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0)
                            }
                        };
                        let made = UdpSocket::bind(local).and_then(|s| {
                            s.connect(front.target)?;
                            s.set_nonblocking(true)?;
                            Ok(s)
                        });
                        match made {
                            Ok(socket) => {
                                front.sessions.insert(
                                    client,
                                    UdpSession {
                                        socket,
                                        last: Instant::now(),
                                    },
                                );
                            }
                            Err(e) => {
                                tracing::debug!(%e, "udp proxy session");
                                continue;
                            }
                        }
                    }
                    if let Some(session) = front.sessions.get_mut(&client) {
                        session.last = Instant::now();
                        let _ = session.socket.send(buf.get(..n).unwrap_or_default());
                    }
                }
                return;
            }
            for (client, session) in &mut front.sessions {
                if session.socket.as_raw_fd() == fd {
                    // Replies: back to the client from the published port.
                    while let Ok(n) = session.socket.recv(buf) {
                        session.last = Instant::now();
                        let _ = front
                            .socket
                            .send_to(buf.get(..n).unwrap_or_default(), client);
                    }
                    return;
                }
            }
        }
    }

    fn expire_udp(&mut self, now: Instant) {
        for front in &mut self.udp {
            front
                .sessions
                .retain(|_, s| now.duration_since(s.last) < UDP_IDLE);
        }
    }

    /// Serves until an error of poll itself (for tests and simple callers).
    pub fn run_forever(&mut self) -> Result<()> {
        loop {
            self.run_once(None)?;
        }
    }

    /// One poll round: waits up to `timeout` (or the proxies' own) and
    /// handles what is ready.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> Result<()> {
        let timeout = timeout.or(self.poll_timeout());
        let ready: Vec<(RawFd, PollFlags)> = {
            let fds = self.poll_fds();
            let mut poll_fds: Vec<rustix::event::PollFd<'_>> = fds
                .iter()
                .map(|(fd, events)| rustix::event::PollFd::from_borrowed_fd(*fd, *events))
                .collect();
            let spec = timeout.and_then(|t| rustix::event::Timespec::try_from(t).ok());
            match rustix::event::poll(&mut poll_fds, spec.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::sys("poll", e)),
            }
            poll_fds
                .iter()
                .filter(|p| !p.revents().is_empty())
                .map(|p| (p.as_fd().as_raw_fd(), p.revents()))
                .collect()
        };
        for (fd, revents) in ready {
            self.on_ready(fd, revents);
        }
        Ok(())
    }
}
