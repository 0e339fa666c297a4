//! Network and endpoint records: unique names, lookups by name, ID and
//! prefix, endpoints' addresses unique per network, and removal rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_store::{EndpointRecord, ErrorKind, Metadata, NetworkRecord};

fn network(id: &str, name: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        name: name.into(),
        driver: "bridge".into(),
        subnet: Some("10.9.0.0/24".into()),
        gateway: Some(Ipv4Addr::new(10, 9, 0, 1)),
        bridge: Some(format!("br-{}", &id[..12])),
        internal: false,
        labels: BTreeMap::from([("team".into(), "web".into())]),
        options: BTreeMap::new(),
        created_at: 1_700_000_000_123_456_789,
    }
}

fn endpoint(network_id: &str, container: &str, ip: Ipv4Addr) -> EndpointRecord {
    EndpointRecord {
        network_id: network_id.into(),
        container_id: container.into(),
        name: format!("c-{container}"),
        aliases: vec!["alias".into()],
        ip,
        mac: "02:42:0a:09:00:02".into(),
        host_ifname: format!("veth{container}"),
        hosts_path: Some("/x/hosts".into()),
    }
}

#[test]
fn networks_and_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = Metadata::open(&dir.path().join("berth.db")).unwrap();
    let a = "aaaa1111".repeat(8);
    let b = "aaaa2222".repeat(8);
    let stored = meta
        .create_network_with(|existing| {
            assert!(existing.is_empty());
            Ok(network(&a, "app"))
        })
        .unwrap();
    assert_eq!(stored, network(&a, "app"));
    meta.create_network_with(|existing| {
        assert_eq!(existing.len(), 1);
        Ok(network(&b, "db"))
    })
    .unwrap();
    let err = meta
        .create_network_with(|_| Ok(network(&"c".repeat(64), "app")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.to_string(), "network with name app already exists");

    // Reopened: everything read back as written.
    drop(meta);
    let mut meta = Metadata::open(&dir.path().join("berth.db")).unwrap();
    assert_eq!(
        meta.networks().unwrap(),
        [network(&a, "app"), network(&b, "db")]
    );
    assert_eq!(meta.find_network("db").unwrap().unwrap().id, b);
    assert_eq!(meta.find_network(&a).unwrap().unwrap().name, "app");
    assert_eq!(meta.find_network("aaaa2").unwrap().unwrap().name, "db");
    assert_eq!(
        meta.find_network("aaaa").unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(meta.find_network("nope").unwrap(), None);

    let ip = Ipv4Addr::new(10, 9, 0, 2);
    meta.add_endpoint_with(&a, |used| {
        assert!(used.is_empty());
        Ok(endpoint(&a, "c1", ip))
    })
    .unwrap();
    // The builder sees the address in use; returning it anyway is refused.
    let err = meta
        .add_endpoint_with(&a, |used| {
            assert!(used.contains(&ip));
            Ok(endpoint(&a, "c2", ip))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // The same container twice on one network is refused.
    let err = meta
        .add_endpoint_with(&a, |_| Ok(endpoint(&a, "c1", Ipv4Addr::new(10, 9, 0, 3))))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // The same address on another network is fine.
    meta.add_endpoint_with(&b, |_| Ok(endpoint(&b, "c1", ip)))
        .unwrap();
    let err = meta
        .add_endpoint_with(&"f".repeat(64), |_| Ok(endpoint(&a, "c3", ip)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    assert_eq!(
        meta.network_endpoints(&a).unwrap(),
        [endpoint(&a, "c1", ip)]
    );
    assert_eq!(meta.container_endpoints("c1").unwrap().len(), 2);
    assert_eq!(
        meta.remove_network(&a).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        meta.remove_endpoint(&a, "c1").unwrap(),
        Some(endpoint(&a, "c1", ip))
    );
    assert_eq!(meta.remove_endpoint(&a, "c1").unwrap(), None);
    assert!(meta.remove_network(&a).unwrap());
    assert!(!meta.remove_network(&a).unwrap());
    assert_eq!(meta.networks().unwrap().len(), 1);
}
