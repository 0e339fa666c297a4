//! Everything networking does for one container, in the order the shim
//! needs it: [`setup`] before the container starts (namespace, endpoints,
//! hosts and resolv.conf files, published ports) and [`teardown`] after it
//! exited (or for crash clean-up, where only the directory and ID are
//! left).

use std::path::{Path, PathBuf};

use berth_store::Metadata;

use crate::hosts::{render_hosts, render_resolv_conf, DnsOptions, HostEntry};
use crate::netns::{create_netns, remove_netns};
use crate::network::{
    connect, netns_path, release_all_after_netns_removed, write_hosts_file, ConnectRequest,
    Endpoint, NetConfig,
};
use crate::ports::PortBinding;
use crate::proxy::PortProxies;
use crate::{Error, Result};

/// One network to join (`--network NAME`, `--network-alias`, `--ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// Network name, ID or unique ID prefix.
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
}

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
    /// Bridge networks; the first is the primary one (default route,
    /// published ports, the hostname's address).
    Bridge(Vec<Attachment>),
}

/// What [`setup`] needs about the container.
#[derive(Debug, Clone)]
pub struct ContainerNet<'a> {
    pub container_id: &'a str,
    /// The container's name (without Docker's leading `/`).
    pub name: &'a str,
    pub hostname: &'a str,
    /// `containers/<id>/`: the namespace, hosts and resolv.conf files go here.
    pub dir: &'a Path,
    pub mode: &'a NetworkMode,
    /// `--add-host` (see [`crate::parse_add_host`]).
    pub add_hosts: &'a [HostEntry],
    pub dns: &'a DnsOptions,
    /// The host's `/etc/resolv.conf` text.
    pub host_resolv_conf: &'a str,
    /// The host's `/etc/hosts` text (copied for `--network host`).
    pub host_hosts: &'a str,
    /// `-p` and `-P` bindings (ignored without a bridge network, as Docker
    /// does).
    pub ports: &'a [PortBinding],
}

/// A container's network, set up.
#[derive(Debug)]
pub struct ContainerNetwork {
    /// The namespace to join (`NetworkNamespace::Join`), or None for the
    /// host's (`--network host`) or a fresh one (`--network none`: let the
    /// runtime make it).
    pub netns: Option<PathBuf>,
    /// The endpoints, primary first.
    pub endpoints: Vec<Endpoint>,
    /// To bind-mount on `/etc/hosts`.
    pub hosts: PathBuf,
    /// To bind-mount on `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
    /// The published ports' proxies, for the shim's poll loop.
    pub proxies: PortProxies,
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Sets up a container's network; on error undoes what it did.
pub fn setup(
    meta: &mut Metadata,
    config: &NetConfig,
    c: &ContainerNet<'_>,
) -> Result<ContainerNetwork> {
    let hosts = c.dir.join("hosts");
    let resolv_conf = c.dir.join("resolv.conf");
    let unbridged = |hosts_text: String, host_network: bool| -> Result<ContainerNetwork> {
        write_file(&hosts, &hosts_text)?;
        write_file(
            &resolv_conf,
            &render_resolv_conf(c.host_resolv_conf, c.dns, host_network),
        )?;
        Ok(ContainerNetwork {
            netns: None,
            endpoints: Vec::new(),
            hosts: hosts.clone(),
            resolv_conf: resolv_conf.clone(),
            proxies: PortProxies::empty(),
        })
    };
    let attachments = match c.mode {
        NetworkMode::Host => return unbridged(c.host_hosts.to_string(), true),
        NetworkMode::None => {
            return unbridged(render_hosts(c.hostname, None, c.add_hosts, &[]), false)
        }
        NetworkMode::Bridge(list) if list.is_empty() => {
            return Err(Error::Invalid("no network to connect to".into()))
        }
        NetworkMode::Bridge(list) => list,
    };
    let netns = netns_path(c.dir);
    // A leftover of an earlier run of this container that was killed.
    remove_netns(&netns)?;
    create_netns(&netns)?;
    let done = (|| {
        let mut endpoints = Vec::new();
        for a in attachments {
            endpoints.push(connect(
                meta,
                config,
                &ConnectRequest {
                    network: &a.network,
                    container_id: c.container_id,
                    name: c.name,
                    aliases: &a.aliases,
                    netns: &netns,
                    hosts_path: Some(&hosts),
                    ip: a.ip,
                },
            )?);
        }
        let primary = endpoints
            .first()
            .ok_or_else(|| Error::Invalid("no network to connect to".into()))?;
        write_hosts_file(
            meta,
            &hosts,
            c.container_id,
            c.hostname,
            Some(primary.ip.into()),
            c.add_hosts,
        )?;
        write_file(
            &resolv_conf,
            &render_resolv_conf(c.host_resolv_conf, c.dns, false),
        )?;
        let proxies = PortProxies::bind(c.ports, primary.ip.into())?;
        Ok((endpoints, proxies))
    })();
    match done {
        Ok((endpoints, proxies)) => Ok(ContainerNetwork {
            netns: Some(netns),
            endpoints,
            hosts,
            resolv_conf,
            proxies,
        }),
        Err(e) => {
            let _ = teardown(meta, c.container_id, c.dir);
            Err(e)
        }
    }
}

/// Undoes [`setup`] after the container exited: removes the namespace (the
/// kernel takes the veths with it) and forgets the endpoints, refreshing
/// the peers' hosts files. Idempotent; works from the directory and ID
/// alone (crash clean-up). Drop the [`PortProxies`] first.
pub fn teardown(meta: &mut Metadata, container_id: &str, dir: &Path) -> Result<()> {
    remove_netns(&netns_path(dir))?;
    release_all_after_netns_removed(meta, container_id)?;
    Ok(())
}
