//! The container's `/etc/hosts` and `/etc/resolv.conf`, as Docker writes
//! them. On user networks the hosts file also names the container's peers:
//! the part after [`PEERS_MARKER`] is rewritten in place (truncate and
//! write, not rename: the file is bind-mounted into the container) whenever
//! a container joins or leaves one of its networks.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::IpAddr;
use std::path::Path;

use crate::{Error, Result};

/// The line after which berth keeps the peers' entries.
pub const PEERS_MARKER: &str = "# berth: containers on the same networks (kept current)";

/// One hosts line: an address and its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

impl HostEntry {
    fn line(&self) -> String {
        format!("{}\t{}\n", self.ip, self.names.join(" "))
    }
}

/// The value `--add-host NAME:host-gateway` stands for.
pub const HOST_GATEWAY: &str = "host-gateway";

/// Parses `--add-host NAME:IP` (or `NAME=IP`); `host-gateway` as the IP is
/// replaced by `host_gateway`.
pub fn parse_add_host(spec: &str, host_gateway: Option<IpAddr>) -> Result<HostEntry> {
    let bad = || {
        Error::Invalid(format!("invalid argument \"{spec}\" for \"--add-host\" flag: bad format for add-host: {spec:?}"))
    };
    let (name, ip) = match spec.split_once('=') {
        Some(parts) => parts,
        None => spec.split_once(':').ok_or_else(bad)?,
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = if ip == HOST_GATEWAY {
        host_gateway.ok_or_else(|| {
            Error::Invalid("unable to derive the IP value for host-gateway".into())
        })?
    } else {
        ip.parse().map_err(|_| {
            Error::Invalid(format!(
                "invalid argument \"{spec}\" for \"--add-host\" flag: invalid IP address in add-host: {ip:?}"
            ))
        })?
    };
    Ok(HostEntry {
        ip,
        names: vec![name.to_string()],
    })
}

/// Docker's hosts file: the loopback and IPv6 defaults, the `--add-host`
/// entries, the container's own address and hostname, then the peers.
pub fn render_hosts(
    hostname: &str,
    own_ip: Option<IpAddr>,
    extra: &[HostEntry],
    peers: &[HostEntry],
) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for entry in extra {
        out.push_str(&entry.line());
    }
    if let Some(ip) = own_ip {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out.push_str(PEERS_MARKER);
    out.push('\n');
    for peer in peers {
        out.push_str(&peer.line());
    }
    out
}

/// Replaces the peers part of the hosts file at `path` in place, keeping
/// what comes before the marker; a file without the marker gets it
/// appended. A missing file is left alone (the container is not set up yet
/// or already gone). The file is locked while rewritten.
pub fn update_hosts_peers(path: &Path, peers: &[HostEntry]) -> Result<()> {
    let mut file = match File::options().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(path, e.into()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| Error::io(path, e))?;
    let mut kept: String = match text.find(PEERS_MARKER) {
        Some(at) => text.get(..at).unwrap_or_default().to_string(),
        None => {
            let mut t = text.clone();
            if !t.is_empty() && !t.ends_with('\n') {
                t.push('\n');
            }
            t
        }
    };
    kept.push_str(PEERS_MARKER);
    kept.push('\n');
    for peer in peers {
        kept.push_str(&peer.line());
    }
    if kept == text {
        return Ok(());
    }
    file.set_len(0).map_err(|e| Error::io(path, e))?;
    file.rewind().map_err(|e| Error::io(path, e))?;
    file.write_all(kept.as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// Options for the container's resolv.conf (`--dns`, `--dns-search`,
/// `--dns-option`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsOptions {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Docker's fallback when the host only has local resolvers.
pub const DEFAULT_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

fn is_loopback_server(server: &str) -> bool {
    server
        .split('%')
        .next()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// The container's resolv.conf from the host's, as Docker derives it.
/// With `host_network` the host's nameservers are kept as they are; on a
/// bridge network loopback nameservers (unreachable from the container)
/// and IPv6 ones (no IPv6 on berth's networks) are dropped, and if none is
/// left Google's public servers are used. `--dns`, `--dns-search` and
/// `--dns-option` replace the host's lines of the same kind (a search of
/// `.` means none).
pub fn render_resolv_conf(host: &str, dns: &DnsOptions, host_network: bool) -> String {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    let mut other = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => {
                search = words.map(str::to_string).collect();
            }
            Some("options") => options.extend(words.map(str::to_string)),
            Some(w) if !w.starts_with('#') && !w.starts_with(';') => other.push(line.to_string()),
            _ => {}
        }
    }
    if !dns.servers.is_empty() {
        servers = dns.servers.clone();
    } else if !host_network {
        servers.retain(|s| !is_loopback_server(s) && !s.contains(':'));
        if servers.is_empty() {
            servers = DEFAULT_DNS.iter().map(|s| s.to_string()).collect();
        }
    }
    if !dns.search.is_empty() {
        search = dns.search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !dns.options.is_empty() {
        options = dns.options.clone();
    }
    let mut out = String::new();
    for line in other {
        out.push_str(&line);
        out.push('\n');
    }
    for server in servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dns(servers: &[&str], search: &[&str], options: &[&str]) -> DnsOptions {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        DnsOptions {
            servers: v(servers),
            search: v(search),
            options: v(options),
        }
    }

    #[test]
    fn resolv_conf_table() {
        let cases: &[(&str, DnsOptions, bool, &str)] = &[
            // Loopback-only host: Google's servers on bridge networks.
            ("nameserver 127.0.0.53\noptions edns0\n", dns(&[], &[], &[]), false,
             "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"),
            // ... but copied as is with the host network.
            ("nameserver 127.0.0.53\nsearch lan\n", dns(&[], &[], &[]), true,
             "nameserver 127.0.0.53\nsearch lan\n"),
            // Real servers kept, loopback and IPv6 ones dropped.
            ("nameserver 10.0.0.2\nnameserver ::1\nnameserver 127.0.0.1\nnameserver fe80::1%eth0\nsearch a.example b.example\n",
             dns(&[], &[], &[]), false,
             "nameserver 10.0.0.2\nsearch a.example b.example\n"),
            // --dns, --dns-search, --dns-option replace.
            ("nameserver 10.0.0.2\nsearch lan\noptions ndots:2\n",
             dns(&["1.1.1.1"], &["corp.example"], &["ndots:0", "timeout:1"]), false,
             "nameserver 1.1.1.1\nsearch corp.example\noptions ndots:0 timeout:1\n"),
            // --dns-search . drops the search list; comments go.
            ("# managed\nnameserver 10.0.0.2\nsearch lan\n", dns(&[], &["."], &[]), false,
             "nameserver 10.0.0.2\n"),
            // Empty host file.
            ("", dns(&[], &[], &[]), false, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
        ];
        for (host, opts, host_net, want) in cases {
            assert_eq!(
                &render_resolv_conf(host, opts, *host_net),
                want,
                "host file {host:?}"
            );
        }
    }

    #[test]
    fn add_host_forms() {
        let e = parse_add_host("db:10.1.2.3", None).unwrap();
        assert_eq!(e.line(), "10.1.2.3\tdb\n");
        let e = parse_add_host("v6=[::1]", None).unwrap();
        assert_eq!(e.ip.to_string(), "::1");
        let e = parse_add_host("v6:fe80::1", None).unwrap();
        assert_eq!(e.ip.to_string(), "fe80::1");
        let gw = "172.29.0.1".parse().ok();
        assert_eq!(
            parse_add_host("h:host-gateway", gw).unwrap().ip,
            gw.unwrap()
        );
        assert!(parse_add_host("h:host-gateway", None).is_err());
        assert!(parse_add_host("nocolon", None).is_err());
        assert!(parse_add_host("h:999.1.1.1", None).is_err());
    }

    #[test]
    fn hosts_file_layout() {
        let own = "172.30.0.2".parse().ok();
        let extra = [parse_add_host("db:10.0.0.9", None).unwrap()];
        let peers = [HostEntry {
            ip: "172.30.0.3".parse().unwrap(),
            names: vec!["web".into(), "www".into()],
        }];
        let text = render_hosts("c0ffee", own, &extra, &peers);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.0.0.9\tdb\n172.30.0.2\tc0ffee\n"));
        assert!(text.ends_with(&format!("{PEERS_MARKER}\n172.30.0.3\tweb www\n")));
    }
}
