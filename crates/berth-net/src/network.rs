//! Networks (`bridge`, `host`, `none` and user-defined bridge networks) and
//! container endpoints on them: the records in the metadata DB, the bridge
//! devices, NAT, veth pairs and the peers' hosts entries.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_store::{EndpointRecord, Metadata, NetworkRecord};

use crate::hosts::{update_hosts_peers, HostEntry};
use crate::netlink::{Netlink, VethSpec};
use crate::netns::in_netns;
use crate::subnet::Ipv4Net;
use crate::{nat, Error, Result};

/// Host-wide network settings (`/etc/berth/config.toml`, `[network]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The device of the default `bridge` network.
    pub default_bridge: String,
    /// The subnet of the default `bridge` network.
    pub default_subnet: Ipv4Net,
    /// Where user networks without `--subnet` get theirs.
    pub user_pool: Ipv4Net,
    /// The prefix length of those subnets.
    pub user_prefix: u8,
    pub mtu: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            default_bridge: "berth0".into(),
            default_subnet: Ipv4Net::containing(Ipv4Addr::new(172, 29, 0, 0), 16),
            user_pool: Ipv4Net::containing(Ipv4Addr::new(172, 30, 0, 0), 15),
            user_prefix: 24,
            mtu: 1500,
        }
    }
}

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The networks that always exist and cannot be removed.
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// What `berth network create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// Only `bridge` (the default) is supported.
    pub driver: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A container's attachment, as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub network_id: String,
    pub network_name: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    /// None on internal networks (no default route).
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    /// The interface inside the container (`eth0`, `eth1`, ...).
    pub interface: String,
    /// The host end of the veth pair.
    pub host_interface: String,
}

/// What [`connect`] needs about the container.
#[derive(Debug, Clone)]
pub struct ConnectRequest<'a> {
    /// Network name, ID or unique ID prefix.
    pub network: &'a str,
    pub container_id: &'a str,
    /// The container's name (without Docker's leading `/`).
    pub name: &'a str,
    pub aliases: &'a [String],
    /// The container's network namespace (see [`crate::create_netns`]).
    pub netns: &'a Path,
    /// The container's hosts file, kept current with its peers.
    pub hosts_path: Option<&'a Path>,
    /// `--ip`: a fixed address inside the network's subnet.
    pub ip: Option<Ipv4Addr>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = bytes.get_mut(filled..).unwrap_or_default();
        filled += rustix::rand::getrandom(rest, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| Error::sys("getrandom", e))?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// FNV-1a, for stable short device names.
fn short_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The host end of a container's veth on a network: `veth` + 11 hex digits
/// (15 bytes, the kernel's limit), stable so that crash clean-up finds it.
pub fn host_interface_name(network_id: &str, container_id: &str) -> String {
    format!(
        "veth{:011x}",
        short_hash(&[network_id, container_id]) & 0xfff_ffff_ffff
    )
}

/// Docker's MAC for an address: 02:42 and the four IPv4 bytes.
fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn subnet_of(record: &NetworkRecord) -> Result<Option<Ipv4Net>> {
    record.subnet.as_deref().map(str::parse).transpose()
}

fn is_predefined(record: &NetworkRecord) -> bool {
    PREDEFINED.contains(&record.name.as_str())
}

/// Whether containers on this network find each other by name (user
/// networks; not the default bridge, as in Docker).
pub fn resolves_names(record: &NetworkRecord) -> bool {
    record.driver == "bridge" && record.name != DEFAULT_NETWORK
}

/// Makes sure the predefined networks are recorded.
pub fn ensure_predefined(meta: &mut Metadata, config: &NetConfig) -> Result<()> {
    let existing = meta.networks()?;
    for name in PREDEFINED {
        if existing.iter().any(|n| n.name == name) {
            continue;
        }
        let bridge = name == DEFAULT_NETWORK;
        let record = NetworkRecord {
            id: random_id()?,
            name: name.to_string(),
            driver: match name {
                DEFAULT_NETWORK => "bridge",
                "host" => "host",
                _ => "null",
            }
            .to_string(),
            subnet: bridge.then(|| config.default_subnet.to_string()),
            gateway: if bridge {
                config.default_subnet.nth(1)
            } else {
                None
            },
            bridge: bridge.then(|| config.default_bridge.clone()),
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created_at: now_nanos(),
        };
        match meta.create_network_with(|_| Ok(record)) {
            Ok(_) => {}
            // Another process recorded it meanwhile.
            Err(e) if e.kind() == berth_oci::ErrorKind::Conflict => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Every network, the predefined ones included.
pub fn list_networks(meta: &mut Metadata, config: &NetConfig) -> Result<Vec<NetworkRecord>> {
    ensure_predefined(meta, config)?;
    Ok(meta.networks()?)
}

/// The network named `key` (or with that ID or unique ID prefix).
pub fn find_network(meta: &mut Metadata, config: &NetConfig, key: &str) -> Result<NetworkRecord> {
    ensure_predefined(meta, config)?;
    meta.find_network(key)?
        .ok_or_else(|| Error::NotFound(format!("network {key} not found")))
}

fn valid_name(name: &str) -> bool {
    // Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Records a user network (`berth network create`). Its bridge is made
/// when the first container connects.
pub fn create_network(
    meta: &mut Metadata,
    config: &NetConfig,
    spec: &NetworkSpec,
) -> Result<NetworkRecord> {
    ensure_predefined(meta, config)?;
    if !valid_name(&spec.name) {
        return Err(Error::Invalid(format!(
            "invalid network name {:?}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]",
            spec.name
        )));
    }
    match spec.driver.as_deref() {
        None | Some("bridge") => {}
        Some(other) => {
            return Err(Error::Unsupported(format!(
                "plugin \"{other}\" not found: only the bridge driver is supported"
            )))
        }
    }
    if let (Some(subnet), Some(gateway)) = (spec.subnet, spec.gateway) {
        if !subnet.contains(gateway) {
            return Err(Error::Invalid(format!(
                "no matching subnet for gateway {gateway}"
            )));
        }
    }
    if spec.gateway.is_some() && spec.subnet.is_none() {
        return Err(Error::Invalid(
            "a gateway needs a --subnet to go with it".into(),
        ));
    }
    let id = random_id()?;
    let bridge = format!("br-{}", id.get(..12).unwrap_or(&id));
    let record = meta.create_network_with(|existing| {
        let taken: Vec<Ipv4Net> = existing
            .iter()
            .filter_map(|n| n.subnet.as_deref()?.parse().ok())
            .collect();
        let subnet = match spec.subnet {
            Some(s) => {
                if let Some(other) = existing.iter().find(|n| {
                    n.subnet
                        .as_deref()
                        .and_then(|t| t.parse::<Ipv4Net>().ok())
                        .is_some_and(|t| t.overlaps(&s))
                }) {
                    return Err(berth_store::Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space (network {})",
                        other.name
                    )));
                }
                s
            }
            None => Ipv4Net::first_free(config.user_pool, config.user_prefix, &taken)
                .ok_or_else(|| {
                    berth_store::Error::Conflict(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                    )
                })?,
        };
        Ok(NetworkRecord {
            id: id.clone(),
            name: spec.name.clone(),
            driver: "bridge".into(),
            subnet: Some(subnet.to_string()),
            gateway: spec.gateway.or_else(|| subnet.nth(1)),
            bridge: Some(bridge.clone()),
            internal: spec.internal,
            labels: spec.labels.clone(),
            options: spec.options.clone(),
            created_at: now_nanos(),
        })
    })?;
    Ok(record)
}

/// Removes a user network with no containers, and its bridge and NAT
/// entries.
pub fn remove_network(meta: &mut Metadata, config: &NetConfig, key: &str) -> Result<NetworkRecord> {
    let record = find_network(meta, config, key)?;
    if is_predefined(&record) {
        return Err(Error::Conflict(format!(
            "{} is a pre-defined network and cannot be removed",
            record.name
        )));
    }
    match meta.remove_network(&record.id) {
        Ok(_) => {}
        Err(e) if e.kind() == berth_oci::ErrorKind::Conflict => {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                record.name, record.id
            )))
        }
        Err(e) => return Err(e.into()),
    }
    // A bridge is made at the first connect; one never used has no NAT either.
    if let Some(bridge) = &record.bridge {
        if Netlink::open()?.delete_link(bridge)? {
            nat::disable(bridge, subnet_of(&record)?);
        }
    }
    Ok(record)
}

/// Removes every user network without containers; returns their names.
pub fn prune_networks(meta: &mut Metadata, config: &NetConfig) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for record in list_networks(meta, config)? {
        if is_predefined(&record) || !meta.network_endpoints(&record.id)?.is_empty() {
            continue;
        }
        match remove_network(meta, config, &record.id) {
            Ok(r) => removed.push(r.name),
            Err(e) if e.kind() == berth_oci::ErrorKind::Conflict => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Makes the network's bridge, with its gateway address and NAT, unless it
/// exists; returns its index.
fn ensure_bridge(nl: &mut Netlink, config: &NetConfig, record: &NetworkRecord) -> Result<u32> {
    let (Some(bridge), Some(subnet)) = (&record.bridge, subnet_of(record)?) else {
        return Err(Error::Invalid(format!(
            "network {} has no bridge",
            record.name
        )));
    };
    if let Some(index) = nl.link_index(bridge)? {
        return Ok(index);
    }
    nl.create_bridge(bridge, config.mtu)?;
    let index = nl
        .link_index(bridge)?
        .ok_or_else(|| Error::NotFound(format!("bridge {bridge} vanished")))?;
    if let Some(gateway) = record.gateway {
        nl.add_address(index, gateway, subnet.prefix_len())?;
    }
    nl.set_up(index)?;
    nat::enable(bridge, subnet, record.internal)?;
    Ok(index)
}

/// The first free interface name `eth<N>` inside the container.
fn free_interface(nl: &mut Netlink) -> Result<String> {
    for n in 0..64 {
        let name = format!("eth{n}");
        if nl.link_index(&name)?.is_none() {
            return Ok(name);
        }
    }
    Err(Error::Conflict(
        "too many interfaces in the container".into(),
    ))
}

/// Connects a container's network namespace to a bridge network: records
/// the endpoint with a free (or the requested) address, makes the veth
/// pair (host end on the bridge, the other end inside the namespace with
/// the address and the default route) and refreshes the hosts files of
/// every container on the network.
pub fn connect(
    meta: &mut Metadata,
    config: &NetConfig,
    req: &ConnectRequest<'_>,
) -> Result<Endpoint> {
    let record = find_network(meta, config, req.network)?;
    if record.driver != "bridge" {
        return Err(Error::Invalid(format!(
            "container cannot be connected to network {} (driver {}): use --network {} instead",
            record.name, record.driver, record.name
        )));
    }
    let subnet = subnet_of(&record)?
        .ok_or_else(|| Error::Invalid(format!("network {} has no subnet", record.name)))?;
    let host_interface = host_interface_name(&record.id, req.container_id);
    let stored = meta.add_endpoint_with(&record.id, |used| {
        let taken = |ip: &Ipv4Addr| used.contains(ip) || Some(*ip) == record.gateway;
        let ip = match req.ip {
            Some(ip)
                if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() =>
            {
                return Err(berth_store::Error::Invalid(format!(
                    "invalid address {ip}: it does not belong to the network's subnet {subnet}"
                )))
            }
            Some(ip) if taken(&ip) => {
                return Err(berth_store::Error::Conflict(format!(
                    "Address already in use: {ip}"
                )))
            }
            Some(ip) => ip,
            None => subnet.hosts().find(|ip| !taken(ip)).ok_or_else(|| {
                berth_store::Error::Conflict(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    record.name, record.id
                ))
            })?,
        };
        Ok(EndpointRecord {
            network_id: record.id.clone(),
            container_id: req.container_id.to_string(),
            name: req.name.to_string(),
            aliases: req.aliases.to_vec(),
            ip,
            mac: mac_text(mac_for(ip)),
            host_ifname: host_interface.clone(),
            hosts_path: req.hosts_path.map(Path::to_path_buf),
        })
    })?;
    match plumb(config, &record, &stored, subnet, req.netns) {
        Ok(interface) => {
            refresh_network_hosts(meta, &record.id)?;
            Ok(Endpoint {
                network_id: record.id.clone(),
                network_name: record.name.clone(),
                ip: stored.ip,
                prefix_len: subnet.prefix_len(),
                gateway: if record.internal {
                    None
                } else {
                    record.gateway
                },
                mac: stored.mac,
                interface,
                host_interface,
            })
        }
        Err(e) => {
            if let Ok(mut nl) = Netlink::open() {
                let _ = nl.delete_link(&host_interface);
            }
            let _ = meta.remove_endpoint(&record.id, req.container_id);
            Err(e)
        }
    }
}

/// The kernel side of [`connect`]; returns the interface name inside.
fn plumb(
    config: &NetConfig,
    record: &NetworkRecord,
    endpoint: &EndpointRecord,
    subnet: Ipv4Net,
    netns: &Path,
) -> Result<String> {
    let ns_file = File::open(netns).map_err(|e| Error::io(netns, e))?;
    let mut host = Netlink::open()?;
    let bridge_index = ensure_bridge(&mut host, config, record)?;
    let mut inside = in_netns(netns, Netlink::open)?;
    let interface = free_interface(&mut inside)?;
    let veth = VethSpec {
        host_name: &endpoint.host_ifname,
        bridge_index,
        mtu: config.mtu,
        peer_name: &interface,
        peer_mac: mac_for(endpoint.ip),
        peer_netns: ns_file.as_fd(),
    };
    if let Err(e) = host.create_veth(&veth) {
        // A leftover of a killed berth with the same name: replace it.
        if host.delete_link(&endpoint.host_ifname)? {
            host.create_veth(&veth)?;
        } else {
            return Err(e);
        }
    }
    if let Some(lo) = inside.link_index("lo")? {
        inside.set_up(lo)?;
    }
    let index = inside.link_index(&interface)?.ok_or_else(|| {
        Error::NotFound(format!("{interface} did not appear in {}", netns.display()))
    })?;
    inside.add_address(index, endpoint.ip, subnet.prefix_len())?;
    inside.set_up(index)?;
    if let (false, Some(gateway)) = (record.internal, record.gateway) {
        if inside.link_index("eth0")? == Some(index) {
            inside.add_default_route(gateway)?;
        }
    }
    Ok(interface)
}

/// Disconnects a container from a network: deletes its veth (the other end
/// goes with it), forgets the endpoint and refreshes the peers' hosts
/// files. False if the container was not connected. Works when the
/// container's namespace is already gone.
pub fn disconnect(
    meta: &mut Metadata,
    config: &NetConfig,
    network: &str,
    container_id: &str,
) -> Result<bool> {
    let record = find_network(meta, config, network)?;
    disconnect_id(meta, &record.id, container_id, LinkCleanup::Delete)
}

fn disconnect_id(
    meta: &mut Metadata,
    network_id: &str,
    container_id: &str,
    links: LinkCleanup,
) -> Result<bool> {
    let Some(endpoint) = meta.remove_endpoint(network_id, container_id)? else {
        return Ok(false);
    };
    if links == LinkCleanup::Delete {
        Netlink::open()?.delete_link(&endpoint.host_ifname)?;
    }
    refresh_network_hosts(meta, network_id)?;
    if let Some(path) = &endpoint.hosts_path {
        update_hosts_peers(path, &peers_of(meta, container_id)?)?;
    }
    Ok(true)
}

/// What happens to the veth pairs when endpoints are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkCleanup {
    /// Delete them now (the kernel takes ~20 ms per veth: it waits for an
    /// RCU grace period).
    Delete,
    /// Leave them to the kernel, which destroys them, asynchronously, with
    /// the container's namespace.
    WithNamespace,
}

/// Disconnects a container from every network, deleting its veths (a
/// container whose namespace may live on). Returns how many endpoints
/// there were. Idempotent.
pub fn release_all(meta: &mut Metadata, container_id: &str) -> Result<usize> {
    release(meta, container_id, LinkCleanup::Delete)
}

/// Forgets a container's endpoints after its namespace was removed
/// ([`crate::remove_netns`]) and its processes are gone (container exit,
/// crash clean-up): the kernel deletes the veths with the namespace, so
/// this skips the ~20 ms per veth that deleting them costs. Idempotent.
pub fn release_all_after_netns_removed(meta: &mut Metadata, container_id: &str) -> Result<usize> {
    release(meta, container_id, LinkCleanup::WithNamespace)
}

fn release(meta: &mut Metadata, container_id: &str, links: LinkCleanup) -> Result<usize> {
    let mut released = 0;
    for endpoint in meta.container_endpoints(container_id)? {
        if disconnect_id(meta, &endpoint.network_id, container_id, links)? {
            released += 1;
        }
    }
    Ok(released)
}

/// The hosts entries a container sees for its peers: every other container
/// on each of its name-resolving networks, by name, aliases and short ID.
pub fn peers_of(meta: &Metadata, container_id: &str) -> Result<Vec<HostEntry>> {
    let mut peers = Vec::new();
    let mut seen = BTreeSet::new();
    let networks = meta.networks()?;
    for own in meta.container_endpoints(container_id)? {
        let Some(record) = networks.iter().find(|n| n.id == own.network_id) else {
            continue;
        };
        if !resolves_names(record) {
            continue;
        }
        for peer in meta.network_endpoints(&record.id)? {
            if peer.container_id == container_id
                || !seen.insert((peer.ip, peer.container_id.clone()))
            {
                continue;
            }
            let mut names = vec![peer.name.clone()];
            names.extend(peer.aliases.iter().cloned());
            names.push(
                peer.container_id
                    .get(..12)
                    .unwrap_or(&peer.container_id)
                    .to_string(),
            );
            names.dedup();
            peers.push(HostEntry {
                ip: IpAddr::V4(peer.ip),
                names,
            });
        }
    }
    Ok(peers)
}

/// Rewrites the peers part of the hosts file of every container on the
/// network.
pub fn refresh_network_hosts(meta: &Metadata, network_id: &str) -> Result<()> {
    for endpoint in meta.network_endpoints(network_id)? {
        if let Some(path) = &endpoint.hosts_path {
            update_hosts_peers(path, &peers_of(meta, &endpoint.container_id)?)?;
        }
    }
    Ok(())
}

/// Writes a container's hosts file (after [`connect`], so the own address
/// is known), with its current peers. Holding the file's lock while the
/// peers are read means a peer connecting at the same time is never lost.
pub fn write_hosts_file(
    meta: &Metadata,
    path: &Path,
    container_id: &str,
    hostname: &str,
    own_ip: Option<IpAddr>,
    extra: &[HostEntry],
) -> Result<()> {
    use std::io::Write;
    let mut file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(path, e.into()))?;
    let text = crate::hosts::render_hosts(hostname, own_ip, extra, &peers_of(meta, container_id)?);
    file.set_len(0).map_err(|e| Error::io(path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// Where a container's namespace file lives in its directory.
pub fn netns_path(container_dir: &Path) -> PathBuf {
    container_dir.join("netns")
}
