//! Container networking for berth: network namespaces, bridge networks with
//! veth endpoints, outbound NAT (nftables), IP allocation in the metadata
//! DB, hosts and resolv.conf files, and published ports through userland
//! proxies.
//!
//! Vocabulary: a *network* is a record (`bridge`, `host`, `none` are
//! predefined; user networks are bridges of their own); an *endpoint* is a
//! container's attachment to one, with its address and veth pair; the
//! container's *netns* is a namespace file that the runtime joins.
//!
//! A container's life, as the shim drives it: [`setup`] before the
//! launch (namespace, endpoints, hosts and resolv.conf, port proxies),
//! [`teardown`] after the exit (also for crash clean-up). The pieces
//! ([`create_netns`], [`connect`], [`write_hosts_file`],
//! [`PortProxies::bind`], [`remove_netns`],
//! [`release_all_after_netns_removed`]) are public for other orders.
//!
//! ```no_run
//! # fn main() -> berth_net::Result<()> {
//! use berth_net::{Attachment, ContainerNet, DnsOptions, NetConfig, NetworkMode};
//! # let mut meta = berth_store::Metadata::open("/tmp/berth.db".as_ref())?;
//! let dir = std::path::Path::new("/var/lib/berth/containers/0123abcd");
//! let mode = NetworkMode::Bridge(vec![Attachment {
//!     network: "bridge".into(),
//!     ..Default::default()
//! }]);
//! let net = berth_net::setup(&mut meta, &NetConfig::default(), &ContainerNet {
//!     container_id: "0123abcd",
//!     name: "web",
//!     hostname: "0123abcd",
//!     dir,
//!     mode: &mode,
//!     add_hosts: &[],
//!     dns: &DnsOptions::default(),
//!     host_resolv_conf: "nameserver 10.0.0.2\n",
//!     host_hosts: "",
//!     ports: &berth_net::parse_publish("8080:80")?,
//! })?;
//! // spec: NetworkNamespace::Join(net.netns), bind mounts of net.hosts and
//! // net.resolv_conf; launch; poll net.proxies with the shim's own fds.
//! drop(net.proxies);
//! berth_net::teardown(&mut meta, "0123abcd", dir)?;
//! # Ok(()) }
//! ```

mod container;
mod error;
pub mod hosts;
mod nat;
mod netlink;
mod netns;
mod network;
pub mod ports;
pub mod proxy;
pub mod subnet;

pub use container::{setup, teardown, Attachment, ContainerNet, ContainerNetwork, NetworkMode};
pub use error::Error;
pub use hosts::{parse_add_host, render_hosts, render_resolv_conf, DnsOptions, HostEntry};
pub use netns::{create_netns, in_netns, remove_netns};
pub use network::{
    connect, create_network, disconnect, ensure_predefined, find_network, host_interface_name,
    list_networks, netns_path, peers_of, prune_networks, refresh_network_hosts, release_all,
    release_all_after_netns_removed, remove_network, resolves_names, write_hosts_file,
    ConnectRequest, Endpoint, NetConfig, NetworkSpec, DEFAULT_NETWORK, PREDEFINED,
};
pub use ports::{parse_exposed, parse_publish, publish_all, PortBinding, Protocol};
pub use proxy::{BoundPort, PortProxies};
pub use subnet::Ipv4Net;

pub use berth_store::{EndpointRecord, NetworkRecord};

/// Results of networking operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
