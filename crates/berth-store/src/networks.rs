//! Networks and their endpoints in the metadata DB. Address and subnet
//! choices are made inside one immediate transaction together with the
//! insert, so two processes can never hand out the same IP or overlapping
//! subnets; the choosing itself (subnet arithmetic) belongs to the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::{Error, Metadata, Result};

/// A network as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// IPv4 CIDR (`172.29.0.0/16`), bridge networks only.
    pub subnet: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    /// The bridge device.
    pub bridge: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub created_at: i64,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub network_id: String,
    pub container_id: String,
    /// The container's name, resolvable by its peers on user networks.
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// The host end of the veth pair.
    pub host_ifname: String,
    /// The container's hosts file, rewritten as peers come and go.
    pub hosts_path: Option<PathBuf>,
}

const NETWORK_COLUMNS: &str =
    "id, name, driver, subnet, gateway, bridge, internal, labels, options, created_at";
const ENDPOINT_COLUMNS: &str =
    "network_id, container_id, name, aliases, ip, mac, host_ifname, hosts_path";

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Schema(format!("corrupt {what} in metadata: {e}"))
}

fn parse_ip(text: &str) -> Result<Ipv4Addr> {
    text.parse().map_err(|e| corrupt("IP address", e))
}

fn network_from_row(row: &Row<'_>) -> rusqlite::Result<RawNetwork> {
    Ok(RawNetwork {
        id: row.get(0)?,
        name: row.get(1)?,
        driver: row.get(2)?,
        subnet: row.get(3)?,
        gateway: row.get(4)?,
        bridge: row.get(5)?,
        internal: row.get(6)?,
        labels: row.get(7)?,
        options: row.get(8)?,
        created_at: row.get(9)?,
    })
}

/// A row as read, before its JSON and address columns are checked.
struct RawNetwork {
    id: String,
    name: String,
    driver: String,
    subnet: Option<String>,
    gateway: Option<String>,
    bridge: Option<String>,
    internal: bool,
    labels: String,
    options: String,
    created_at: i64,
}

impl RawNetwork {
    fn parse(self) -> Result<NetworkRecord> {
        Ok(NetworkRecord {
            id: self.id,
            name: self.name,
            driver: self.driver,
            subnet: self.subnet,
            gateway: self.gateway.as_deref().map(parse_ip).transpose()?,
            bridge: self.bridge,
            internal: self.internal,
            labels: serde_json::from_str(&self.labels).map_err(|e| corrupt("labels", e))?,
            options: serde_json::from_str(&self.options).map_err(|e| corrupt("options", e))?,
            created_at: self.created_at,
        })
    }
}

struct RawEndpoint {
    network_id: String,
    container_id: String,
    name: String,
    aliases: String,
    ip: String,
    mac: String,
    host_ifname: String,
    hosts_path: Option<String>,
}

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<RawEndpoint> {
    Ok(RawEndpoint {
        network_id: row.get(0)?,
        container_id: row.get(1)?,
        name: row.get(2)?,
        aliases: row.get(3)?,
        ip: row.get(4)?,
        mac: row.get(5)?,
        host_ifname: row.get(6)?,
        hosts_path: row.get(7)?,
    })
}

impl RawEndpoint {
    fn parse(self) -> Result<EndpointRecord> {
        Ok(EndpointRecord {
            network_id: self.network_id,
            container_id: self.container_id,
            name: self.name,
            aliases: serde_json::from_str(&self.aliases).map_err(|e| corrupt("aliases", e))?,
            ip: parse_ip(&self.ip)?,
            mac: self.mac,
            host_ifname: self.host_ifname,
            hosts_path: self.hosts_path.map(PathBuf::from),
        })
    }
}

// Maps and lists of strings always serialise, so the fallbacks never show.
fn map_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

fn list_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn all_networks(tx: &rusqlite::Connection) -> Result<Vec<NetworkRecord>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {NETWORK_COLUMNS} FROM networks ORDER BY created_at, name"
    ))?;
    let raws = stmt
        .query_map([], network_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(RawNetwork::parse).collect()
}

fn endpoints_where(
    conn: &rusqlite::Connection,
    column: &str,
    value: &str,
) -> Result<Vec<EndpointRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM network_endpoints WHERE {column} = ?1 ORDER BY ip"
    ))?;
    let raws = stmt
        .query_map(params![value], endpoint_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(RawEndpoint::parse).collect()
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl Metadata {
    /// Records a new network. `build` sees every existing network (to pick
    /// a subnet that overlaps none) and returns the record to insert; both
    /// happen in one write transaction. A taken name is a conflict.
    pub fn create_network_with(
        &mut self,
        build: impl FnOnce(&[NetworkRecord]) -> Result<NetworkRecord>,
    ) -> Result<NetworkRecord> {
        self.write(|tx| {
            let existing = all_networks(tx)?;
            let record = build(&existing)?;
            if existing.iter().any(|n| n.name == record.name) {
                return Err(Error::Conflict(format!(
                    "network with name {} already exists",
                    record.name
                )));
            }
            insert_network(tx, &record)?;
            Ok(record)
        })
    }

    /// Every network, oldest first.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        all_networks(self.conn())
    }

    /// The network named `key`, else the one whose ID is `key`, else the
    /// only one whose ID starts with it (Docker's lookup order).
    pub fn find_network(&self, key: &str) -> Result<Option<NetworkRecord>> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(Some(n.clone()));
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut matches = all.into_iter().filter(|n| n.id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some(n), None) => Ok(Some(n)),
            (Some(_), Some(_)) => Err(Error::Conflict(format!(
                "network {key} is ambiguous (2 matches found based on ID prefix)"
            ))),
            _ => Ok(None),
        }
    }

    /// Removes a network that has no endpoints; false if it did not exist.
    pub fn remove_network(&mut self, id: &str) -> Result<bool> {
        self.write(|tx| {
            let attached: i64 = tx.query_row(
                "SELECT COUNT(*) FROM network_endpoints WHERE network_id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            if attached > 0 {
                return Err(Error::Conflict(format!(
                    "network {id} has {attached} active endpoints"
                )));
            }
            Ok(tx.execute("DELETE FROM networks WHERE id = ?1", params![id])? > 0)
        })
    }

    /// Records an endpoint on `network_id`. `build` sees the addresses in
    /// use on that network and returns the endpoint to insert (with an IP
    /// not among them); both happen in one write transaction, so concurrent
    /// callers never get the same address.
    pub fn add_endpoint_with(
        &mut self,
        network_id: &str,
        build: impl FnOnce(&BTreeSet<Ipv4Addr>) -> Result<EndpointRecord>,
    ) -> Result<EndpointRecord> {
        self.write(|tx| {
            let exists: Option<String> = tx
                .query_row(
                    "SELECT id FROM networks WHERE id = ?1",
                    params![network_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(Error::NotFound(format!("network {network_id}")));
            }
            let used = used_ips(tx, network_id)?;
            let endpoint = build(&used)?;
            if endpoint.network_id != network_id || used.contains(&endpoint.ip) {
                return Err(Error::Conflict(format!(
                    "Address already in use: {}",
                    endpoint.ip
                )));
            }
            let inserted = tx.execute(
                &format!("INSERT INTO network_endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    endpoint.network_id,
                    endpoint.container_id,
                    endpoint.name,
                    list_json(&endpoint.aliases),
                    endpoint.ip.to_string(),
                    endpoint.mac,
                    endpoint.host_ifname,
                    endpoint.hosts_path.as_ref().map(|p| p.to_string_lossy().into_owned()),
                ],
            );
            match inserted {
                Ok(_) => Ok(endpoint),
                Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
                    "container {} is already attached to network {network_id}",
                    endpoint.container_id
                ))),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The endpoints on a network, by address.
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_where(self.conn(), "network_id", network_id)
    }

    /// The networks a container is attached to.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        endpoints_where(self.conn(), "container_id", container_id)
    }

    /// Removes an endpoint, returning it if it existed.
    pub fn remove_endpoint(
        &mut self,
        network_id: &str,
        container_id: &str,
    ) -> Result<Option<EndpointRecord>> {
        self.write(|tx| {
            let found = endpoints_where(tx, "network_id", network_id)?
                .into_iter()
                .find(|e| e.container_id == container_id);
            tx.execute(
                "DELETE FROM network_endpoints WHERE network_id = ?1 AND container_id = ?2",
                params![network_id, container_id],
            )?;
            Ok(found)
        })
    }
}

fn used_ips(tx: &Transaction<'_>, network_id: &str) -> Result<BTreeSet<Ipv4Addr>> {
    let mut stmt = tx.prepare_cached("SELECT ip FROM network_endpoints WHERE network_id = ?1")?;
    let texts = stmt
        .query_map(params![network_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    texts.iter().map(|t| parse_ip(t)).collect()
}

fn insert_network(tx: &Transaction<'_>, n: &NetworkRecord) -> Result<()> {
    let inserted = tx.execute(
        &format!("INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            n.id,
            n.name,
            n.driver,
            n.subnet,
            n.gateway.map(|g| g.to_string()),
            n.bridge,
            n.internal,
            map_json(&n.labels),
            map_json(&n.options),
            n.created_at,
        ],
    );
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
            "network with name {} already exists",
            n.name
        ))),
        Err(e) => Err(e.into()),
    }
}
