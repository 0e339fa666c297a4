//! Real bridges, veths, NAT and proxies, each test in its own network
//! namespace (see `common`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use berth_net::{in_netns, parse_publish, PortProxies};
use common::{container_id, link_exists, sh, Env};

fn listen_in(netns: &std::path::Path, port: u16) -> TcpListener {
    in_netns(netns, || Ok(TcpListener::bind(("0.0.0.0", port)).unwrap())).unwrap()
}

fn connect_from(netns: &std::path::Path, addr: SocketAddr) -> std::io::Result<TcpStream> {
    in_netns(netns, || {
        Ok(TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
    })
    .unwrap()
}

#[test]
fn endpoints_on_the_default_bridge_reach_each_other() {
    common::isolated("endpoints_on_the_default_bridge_reach_each_other", || {
        let mut env = Env::new();
        let (a, b) = (env.netns("a"), env.netns("b"));
        let ea = env.connect("bridge", "a", &a, None);
        let eb = env.connect("bridge", "b", &b, None);
        assert_eq!(ea.ip, Ipv4Addr::new(172, 29, 0, 2));
        assert_eq!(eb.ip, Ipv4Addr::new(172, 29, 0, 3));
        assert_eq!(ea.gateway, Some(Ipv4Addr::new(172, 29, 0, 1)));
        assert_eq!(ea.mac, "02:42:ac:1d:00:02");
        assert_eq!(ea.interface, "eth0");
        assert!(link_exists("berth0") && link_exists(&ea.host_interface));

        // Inside: eth0 with the address, the default route via the gateway.
        let addrs = sh(&[
            "nsenter",
            &format!("--net={}", a.display()),
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(addrs.contains("172.29.0.2/16"), "{addrs}");
        let routes = sh(&["nsenter", &format!("--net={}", a.display()), "ip", "route"]);
        assert!(
            routes.contains("default via 172.29.0.1 dev eth0"),
            "{routes}"
        );

        let listener = listen_in(&a, 7000);
        let mut out = connect_from(&b, SocketAddr::new(ea.ip.into(), 7000)).unwrap();
        out.write_all(b"hello from b").unwrap();
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(eb.ip));
        let mut got = [0u8; 12];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello from b");

        // The host (the test's namespace) reaches the container too.
        TcpStream::connect_timeout(&SocketAddr::new(ea.ip.into(), 7000), Duration::from_secs(5))
            .unwrap();
        let table = sh(&["nft", "list", "table", "ip", "berth"]);
        assert!(table.contains("172.29.0.0/16"), "{table}");
    });
}

#[test]
fn outbound_traffic_is_masqueraded() {
    common::isolated("outbound_traffic_is_masqueraded", || {
        let mut env = Env::new();
        // The "outside": another namespace behind its own veth, 198.51.100.0/24.
        let upstream = env.netns("upstream");
        let up = upstream.display().to_string();
        sh(&[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", &up,
        ]);
        sh(&["ip", "addr", "add", "198.51.100.1/24", "dev", "up0"]);
        sh(&["ip", "link", "set", "up0", "up"]);
        let inside = |args: &[&str]| {
            let mut full = vec!["nsenter".to_string(), format!("--net={up}")];
            full.extend(args.iter().map(|s| s.to_string()));
            sh(&full.iter().map(String::as_str).collect::<Vec<_>>());
        };
        inside(&["ip", "addr", "add", "198.51.100.2/24", "dev", "up1"]);
        inside(&["ip", "link", "set", "up1", "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        // No route back to the container subnet: only NAT makes replies work.
        let server = listen_in(&upstream, 8000);

        let c = env.netns("c");
        let ec = env.connect("bridge", "c", &c, None);
        let mut conn = connect_from(&c, "198.51.100.2:8000".parse().unwrap()).unwrap();
        conn.write_all(b"out").unwrap();
        let (mut accepted, peer) = server.accept().unwrap();
        assert_eq!(
            peer.ip(),
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "source not masqueraded (container {})",
            ec.ip
        );
        accepted.write_all(b"back").unwrap();
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"back");

        // An internal network has no default route, and traffic forced out
        // of its bridge is dropped.
        berth_net::create_network(
            &mut env.meta,
            &env.config,
            &berth_net::NetworkSpec {
                name: "sealed".into(),
                internal: true,
                ..Default::default()
            },
        )
        .unwrap();
        let i = env.netns("i");
        let ei = env.connect("sealed", "i", &i, None);
        assert_eq!(ei.gateway, None);
        let outside: SocketAddr = "198.51.100.2:8000".parse().unwrap();
        let err = connect_from(&i, outside).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NetworkUnreachable, "{err}");
        let ns = format!("--net={}", i.display());
        sh(&[
            "nsenter",
            &ns,
            "ip",
            "route",
            "add",
            "default",
            "via",
            "172.30.0.1",
        ]);
        // With a route back from the outside, only the drop rules stop it.
        inside(&["ip", "route", "add", "172.30.0.0/24", "via", "198.51.100.1"]);
        let blocked = in_netns(&i, || {
            Ok(TcpStream::connect_timeout(
                &outside,
                Duration::from_millis(500),
            ))
        })
        .unwrap();
        assert!(blocked.is_err(), "internal network reached the outside");
    });
}

/// A server that reads everything to EOF, then sends it all back and
/// closes: only works through the proxy if half-close is passed on.
fn echo_after_eof(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let mut all = Vec::new();
                conn.read_to_end(&mut all).unwrap();
                conn.write_all(&all).unwrap();
            });
        }
    });
}

#[test]
fn proxy_forwards_tcp_from_localhost_with_half_close() {
    common::isolated("proxy_forwards_tcp_from_localhost_with_half_close", || {
        let mut env = Env::new();
        let s = env.netns("s");
        let es = env.connect("bridge", "s", &s, None);
        echo_after_eof(listen_in(&s, 9000));

        let mut proxies =
            PortProxies::bind(&parse_publish("0:9000").unwrap(), es.ip.into()).unwrap();
        let port = proxies.bound()[0].host.port();
        assert_ne!(port, 0);
        let hosts: Vec<String> = proxies.bound().iter().map(|b| b.host.to_string()).collect();
        assert_eq!(hosts, [format!("0.0.0.0:{port}"), format!("[::]:{port}")]);
        std::thread::spawn(move || proxies.run_forever().unwrap());

        let payload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let payload = payload.clone();
                std::thread::spawn(move || {
                    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let mut reader = conn.try_clone().unwrap();
                    let receiver = std::thread::spawn(move || {
                        let mut back = Vec::new();
                        reader.read_to_end(&mut back).unwrap();
                        back
                    });
                    conn.write_all(&payload).unwrap();
                    conn.shutdown(Shutdown::Write).unwrap();
                    receiver.join().unwrap()
                })
            })
            .collect();
        for client in clients {
            let back = client.join().unwrap();
            assert_eq!(back.len(), payload.len());
            assert!(back == payload, "payload corrupted through the proxy");
        }

        // All addresses means IPv6 too: [::1] reaches the same container.
        let mut v6 = TcpStream::connect(("::1", port)).unwrap();
        v6.write_all(b"six").unwrap();
        v6.shutdown(Shutdown::Write).unwrap();
        let mut back = String::new();
        v6.read_to_string(&mut back).unwrap();
        assert_eq!(back, "six");

        // Nothing listens on the container port: the client is closed on
        // promptly, not left hanging.
        let mut refused =
            PortProxies::bind(&parse_publish("127.0.0.1::9001").unwrap(), es.ip.into()).unwrap();
        let port = refused.bound()[0].host.port();
        std::thread::spawn(move || refused.run_forever().unwrap());
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        match conn.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the proxy to close the connection, got {other:?}"),
        }
    });
}

#[test]
fn proxy_forwards_udp_per_client() {
    common::isolated("proxy_forwards_udp_per_client", || {
        let mut env = Env::new();
        let s = env.netns("s");
        let es = env.connect("bridge", "s", &s, None);
        let server = in_netns(&s, || Ok(UdpSocket::bind("0.0.0.0:5300").unwrap())).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            loop {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let reply = format!("{}:{}", String::from_utf8_lossy(&buf[..n]), from.ip());
                server.send_to(reply.as_bytes(), from).unwrap();
            }
        });
        let mut proxies =
            PortProxies::bind(&parse_publish("127.0.0.1::5300/udp").unwrap(), es.ip.into())
                .unwrap();
        let published = proxies.bound()[0].host;
        std::thread::spawn(move || proxies.run_forever().unwrap());

        for who in ["one", "two"] {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            for _ in 0..3 {
                client.send_to(who.as_bytes(), published).unwrap();
                let mut buf = [0u8; 1500];
                let (n, from) = client.recv_from(&mut buf).unwrap();
                assert_eq!(from, published, "reply must come from the published port");
                // The server sees the proxy's source on the bridge (the gateway).
                assert_eq!(&buf[..n], format!("{who}:172.29.0.1").as_bytes());
            }
        }
    });
}

#[test]
fn a_taken_host_port_is_already_allocated() {
    common::isolated("a_taken_host_port_is_already_allocated", || {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let spec = format!("127.0.0.1:{port}:80");
        let err = PortProxies::bind(
            &parse_publish(&spec).unwrap(),
            Ipv4Addr::new(172, 29, 0, 2).into(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), berth_oci::ErrorKind::Conflict);
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // A range skips the taken port.
        let spec = format!("127.0.0.1:{port}-{}:80", port + 50);
        let proxies = PortProxies::bind(
            &parse_publish(&spec).unwrap(),
            Ipv4Addr::new(172, 29, 0, 2).into(),
        )
        .unwrap();
        assert_ne!(proxies.bound()[0].host.port(), port);
    });
}

#[test]
fn concurrent_connects_never_share_an_address() {
    common::isolated("concurrent_connects_never_share_an_address", || {
        let env = Env::new();
        let db = env.db();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let db = db.clone();
                let dir = env.dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut meta = berth_store::Metadata::open(&db).unwrap();
                    let config = berth_net::NetConfig::default();
                    (0..6)
                        .map(|i| {
                            let name = format!("t{t}c{i}");
                            let ns = dir.join(format!("{name}.netns"));
                            berth_net::create_netns(&ns).unwrap();
                            berth_net::connect(
                                &mut meta,
                                &config,
                                &berth_net::ConnectRequest {
                                    network: "bridge",
                                    container_id: &container_id(&name),
                                    name: &name,
                                    aliases: &[],
                                    netns: &ns,
                                    hosts_path: None,
                                    ip: None,
                                },
                            )
                            .unwrap()
                            .ip
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        let count = all.len();
        all.dedup();
        assert_eq!(all.len(), count, "an address was handed out twice");
        assert_eq!(count, 24);
        assert_eq!(all.first(), Some(&Ipv4Addr::new(172, 29, 0, 2)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(172, 29, 0, 25)));
        let bridge = berth_net::find_network(
            &mut berth_store::Metadata::open(&db).unwrap(),
            &berth_net::NetConfig::default(),
            "bridge",
        )
        .unwrap();
        assert_eq!(
            berth_store::Metadata::open(&db)
                .unwrap()
                .network_endpoints(&bridge.id)
                .unwrap()
                .len(),
            24
        );
    });
}

#[test]
fn fixed_addresses_are_checked() {
    common::isolated("fixed_addresses_are_checked", || {
        let mut env = Env::new();
        let a = env.netns("a");
        let b = env.netns("b");
        let req = |ns: &std::path::Path, name: &'static str, ip: &str| {
            (ns.to_path_buf(), name, ip.parse::<Ipv4Addr>().unwrap())
        };
        {
            let (ns, name, ip) = req(&a, "a", "172.29.5.5");
            let e = berth_net::connect(
                &mut env.meta,
                &env.config,
                &berth_net::ConnectRequest {
                    network: "bridge",
                    container_id: &container_id(name),
                    name,
                    aliases: &[],
                    netns: &ns,
                    hosts_path: None,
                    ip: Some(ip),
                },
            )
            .unwrap();
            assert_eq!(e.ip, ip);
        }
        for (ip, kind) in [
            ("172.29.5.5", berth_oci::ErrorKind::Conflict),
            ("10.0.0.1", berth_oci::ErrorKind::InvalidArgument),
            ("172.29.0.1", berth_oci::ErrorKind::Conflict),
        ] {
            let err = berth_net::connect(
                &mut env.meta,
                &env.config,
                &berth_net::ConnectRequest {
                    network: "bridge",
                    container_id: &container_id("b"),
                    name: "b",
                    aliases: &[],
                    netns: &b,
                    hosts_path: None,
                    ip: Some(ip.parse().unwrap()),
                },
            )
            .unwrap_err();
            assert_eq!(err.kind(), kind, "{ip}: {err}");
        }
        // Failed attempts leave nothing behind.
        assert!(env
            .meta
            .container_endpoints(&container_id("b"))
            .unwrap()
            .is_empty());
        assert!(!link_exists(&berth_net::host_interface_name(
            &berth_net::find_network(&mut env.meta, &env.config, "bridge")
                .unwrap()
                .id,
            &container_id("b")
        )));
    });
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn hosts_files_follow_peers_on_user_networks() {
    common::isolated("hosts_files_follow_peers_on_user_networks", || {
        let mut env = Env::new();
        let app = berth_net::create_network(
            &mut env.meta,
            &env.config,
            &berth_net::NetworkSpec {
                name: "app".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(app.subnet.as_deref(), Some("172.30.0.0/24"));
        let dir = env.dir.path().to_path_buf();
        let hosts = |n: &str| dir.join(format!("{n}.hosts"));
        let attach = |env: &mut Env, network: &str, name: &str| {
            let ns = env.netns(name);
            let id = container_id(name);
            let e = env.connect(network, name, &ns, Some(&hosts(name)));
            berth_net::write_hosts_file(
                &env.meta,
                &hosts(name),
                &id,
                &id[..12],
                Some(e.ip.into()),
                &[],
            )
            .unwrap();
            e
        };
        let ea = attach(&mut env, "app", "web");
        let before = inode(&hosts("web"));
        let eb = attach(&mut env, "app", "db");
        let ec = attach(&mut env, "bridge", "loner");
        let web = std::fs::read_to_string(hosts("web")).unwrap();
        let db = std::fs::read_to_string(hosts("db")).unwrap();
        assert!(
            web.contains(&format!("{}\tdb {}\n", eb.ip, &container_id("db")[..12])),
            "{web}"
        );
        assert!(
            db.contains(&format!("{}\tweb {}\n", ea.ip, &container_id("web")[..12])),
            "{db}"
        );
        assert!(
            !web.contains("loner") && !web.contains(&ec.ip.to_string()),
            "{web}"
        );
        let loner = std::fs::read_to_string(hosts("loner")).unwrap();
        assert!(
            !loner.contains("web") && !loner.contains("db"),
            "default bridge resolves no names: {loner}"
        );

        // Containers on the user network reach each other by the listed address.
        let listener = listen_in(&env.dir.path().join("db.netns"), 5432);
        connect_from(
            &env.dir.path().join("web.netns"),
            SocketAddr::new(eb.ip.into(), 5432),
        )
        .unwrap();
        drop(listener);

        // Networks are isolated from each other: "loner" on the default
        // bridge cannot reach "web" on "app" (the host can reach both).
        let web_ns = env.dir.path().join("web.netns");
        let _listener = listen_in(&web_ns, 80);
        TcpStream::connect_timeout(&SocketAddr::new(ea.ip.into(), 80), Duration::from_secs(5))
            .unwrap();
        let loner_ns = env.dir.path().join("loner.netns");
        let crossed = in_netns(&loner_ns, || {
            Ok(TcpStream::connect_timeout(
                &SocketAddr::new(ea.ip.into(), 80),
                Duration::from_millis(500),
            ))
        })
        .unwrap();
        assert!(
            crossed.is_err(),
            "traffic crossed from the default bridge to a user network"
        );

        assert!(
            berth_net::disconnect(&mut env.meta, &env.config, "app", &container_id("db")).unwrap()
        );
        let web = std::fs::read_to_string(hosts("web")).unwrap();
        assert!(!web.contains("db"), "{web}");
        assert_eq!(
            inode(&hosts("web")),
            before,
            "hosts rewritten in place, not replaced"
        );
        let db = std::fs::read_to_string(hosts("db")).unwrap();
        assert!(!db.contains("web"), "{db}");
        assert!(
            !berth_net::disconnect(&mut env.meta, &env.config, "app", &container_id("db")).unwrap()
        );

        // A network with endpoints cannot go; once empty it can, bridge and all.
        let err = berth_net::remove_network(&mut env.meta, &env.config, "app").unwrap_err();
        assert!(err.to_string().contains("has active endpoints"), "{err}");
        let bridge = app.bridge.clone().unwrap();
        assert!(link_exists(&bridge));
        assert_eq!(
            berth_net::release_all(&mut env.meta, &container_id("web")).unwrap(),
            1
        );
        berth_net::remove_network(&mut env.meta, &env.config, "app").unwrap();
        assert!(!link_exists(&bridge));
        let err = berth_net::remove_network(&mut env.meta, &env.config, "bridge").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bridge is a pre-defined network and cannot be removed"
        );
    });
}

#[test]
fn release_all_cleans_up_after_the_namespace_vanished() {
    common::isolated("release_all_cleans_up_after_the_namespace_vanished", || {
        let mut env = Env::new();
        berth_net::create_network(
            &mut env.meta,
            &env.config,
            &berth_net::NetworkSpec {
                name: "other".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let ns = env.netns("gone");
        let e1 = env.connect("bridge", "gone", &ns, None);
        let e2 = env.connect("other", "gone", &ns, None);
        assert_eq!(e2.interface, "eth1");
        berth_net::remove_netns(&ns).unwrap();
        assert!(!ns.exists());
        berth_net::remove_netns(&ns).unwrap();
        assert_eq!(
            berth_net::release_all(&mut env.meta, &container_id("gone")).unwrap(),
            2
        );
        assert!(env
            .meta
            .container_endpoints(&container_id("gone"))
            .unwrap()
            .is_empty());
        // The namespace's destruction is asynchronous; the veths must be gone once it is done.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (link_exists(&e1.host_interface) || link_exists(&e2.host_interface))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!link_exists(&e1.host_interface) && !link_exists(&e2.host_interface));
        assert_eq!(
            berth_net::release_all(&mut env.meta, &container_id("gone")).unwrap(),
            0
        );
        // The address is free again.
        let again = env.netns("again");
        let e3 = env.connect("bridge", "again", &again, None);
        assert_eq!(e3.ip, e1.ip);
        // The exit path leaves the veth to the kernel, which removes it with the namespace.
        berth_net::remove_netns(&again).unwrap();
        assert_eq!(
            berth_net::release_all_after_netns_removed(&mut env.meta, &container_id("again"))
                .unwrap(),
            1
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while link_exists(&e3.host_interface) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!link_exists(&e3.host_interface));
    });
}

#[test]
fn user_networks_get_disjoint_subnets() {
    common::isolated("user_networks_get_disjoint_subnets", || {
        let mut env = Env::new();
        let spec = |name: &str, subnet: Option<&str>| berth_net::NetworkSpec {
            name: name.into(),
            subnet: subnet.map(|s| s.parse().unwrap()),
            ..Default::default()
        };
        berth_net::create_network(
            &mut env.meta,
            &env.config,
            &spec("fixed", Some("172.30.1.0/24")),
        )
        .unwrap();
        let a = berth_net::create_network(&mut env.meta, &env.config, &spec("a", None)).unwrap();
        let b = berth_net::create_network(&mut env.meta, &env.config, &spec("b", None)).unwrap();
        assert_eq!(a.subnet.as_deref(), Some("172.30.0.0/24"));
        assert_eq!(b.subnet.as_deref(), Some("172.30.2.0/24"));
        assert_eq!(b.gateway, Some(Ipv4Addr::new(172, 30, 2, 1)));
        let err = berth_net::create_network(
            &mut env.meta,
            &env.config,
            &spec("clash", Some("172.30.0.0/16")),
        )
        .unwrap_err();
        assert_eq!(err.kind(), berth_oci::ErrorKind::Conflict);
        let err =
            berth_net::create_network(&mut env.meta, &env.config, &spec("a", None)).unwrap_err();
        assert_eq!(err.to_string(), "network with name a already exists");
        let names: Vec<String> = berth_net::list_networks(&mut env.meta, &env.config)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["bridge", "host", "none", "fixed", "a", "b"]);
        assert_eq!(
            berth_net::prune_networks(&mut env.meta, &env.config)
                .unwrap()
                .len(),
            3
        );
    });
}

#[test]
fn connect_disconnect_cost() {
    common::isolated("connect_disconnect_cost", || {
        let mut env = Env::new();
        // The first connect makes the bridge and NAT (one-time).
        let warm = env.netns("warm");
        let t = Instant::now();
        env.connect("bridge", "warm", &warm, None);
        let first = t.elapsed();
        let (mut netns, mut connects, mut exits, mut live) = (vec![], vec![], vec![], vec![]);
        for i in 0..20 {
            let name = format!("c{i}");
            let path = env.dir.path().join(format!("{name}.netns"));
            let t = Instant::now();
            berth_net::create_netns(&path).unwrap();
            netns.push(t.elapsed());
            let t = Instant::now();
            env.connect("bridge", &name, &path, None);
            connects.push(t.elapsed());
            let t = Instant::now();
            if i % 2 == 0 {
                // The container's exit: namespace first, the kernel takes the veth.
                berth_net::remove_netns(&path).unwrap();
                assert_eq!(
                    berth_net::release_all_after_netns_removed(&mut env.meta, &container_id(&name))
                        .unwrap(),
                    1
                );
                exits.push(t.elapsed());
            } else {
                // A live disconnect deletes the veth itself.
                assert_eq!(
                    berth_net::release_all(&mut env.meta, &container_id(&name)).unwrap(),
                    1
                );
                live.push(t.elapsed());
                berth_net::remove_netns(&path).unwrap();
            }
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        // What the shim calls: setup (namespace, endpoint, hosts,
        // resolv.conf, one published port) and teardown.
        let mode = berth_net::NetworkMode::Bridge(vec![berth_net::Attachment {
            network: "bridge".into(),
            ..Default::default()
        }]);
        let ports = parse_publish("0:80").unwrap();
        let (mut setups, mut teardowns) = (vec![], vec![]);
        for i in 0..20 {
            let dir = env.dir.path().join(format!("full{i}"));
            std::fs::create_dir(&dir).unwrap();
            let id = container_id(&format!("full{i}"));
            let t = Instant::now();
            let net = berth_net::setup(
                &mut env.meta,
                &env.config,
                &berth_net::ContainerNet {
                    container_id: &id,
                    name: "c",
                    hostname: "c",
                    dir: &dir,
                    mode: &mode,
                    add_hosts: &[],
                    dns: &berth_net::DnsOptions::default(),
                    host_resolv_conf: "nameserver 10.0.0.2\n",
                    host_hosts: "",
                    ports: &ports,
                },
            )
            .unwrap();
            setups.push(t.elapsed());
            drop(net);
            let t = Instant::now();
            berth_net::teardown(&mut env.meta, &id, &dir).unwrap();
            teardowns.push(t.elapsed());
        }
        println!(
            "BENCH first connect (bridge + nft) {first:?}; netns create {:?}; connect {:?}; exit (remove netns + release) {:?}; live release_all {:?}; setup {:?}; teardown {:?} (medians of 10-20)",
            median(&mut netns), median(&mut connects), median(&mut exits), median(&mut live),
            median(&mut setups), median(&mut teardowns)
        );
    });
}

#[test]
fn container_setup_and_teardown() {
    common::isolated("container_setup_and_teardown", || {
        let mut env = Env::new();
        berth_net::create_network(
            &mut env.meta,
            &env.config,
            &berth_net::NetworkSpec {
                name: "app".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let dir = env.dir.path().join("container");
        std::fs::create_dir(&dir).unwrap();
        let id = container_id("full");
        let mode = berth_net::NetworkMode::Bridge(vec![
            berth_net::Attachment {
                network: "bridge".into(),
                ..Default::default()
            },
            berth_net::Attachment {
                network: "app".into(),
                aliases: vec!["api".into()],
                ip: Some(Ipv4Addr::new(172, 30, 0, 9)),
            },
        ]);
        let add_hosts = [berth_net::parse_add_host("db.example:10.1.2.3", None).unwrap()];
        let dns = berth_net::DnsOptions {
            servers: vec![],
            search: vec!["corp.example".into()],
            options: vec![],
        };
        let setup = |meta: &mut berth_store::Metadata,
                     config: &berth_net::NetConfig,
                     ports: &[berth_net::PortBinding]| {
            berth_net::setup(
                meta,
                config,
                &berth_net::ContainerNet {
                    container_id: &id,
                    name: "full",
                    hostname: "fullhost",
                    dir: &dir,
                    mode: &mode,
                    add_hosts: &add_hosts,
                    dns: &dns,
                    host_resolv_conf: "nameserver 127.0.0.53\n",
                    host_hosts: "",
                    ports,
                },
            )
        };

        // A taken host port fails the whole set-up and leaves nothing behind.
        let holder = TcpListener::bind("0.0.0.0:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        let err = setup(
            &mut env.meta,
            &env.config,
            &parse_publish(&format!("{taken}:80")).unwrap(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        assert!(env.meta.container_endpoints(&id).unwrap().is_empty());
        assert!(!berth_net::netns_path(&dir).exists());

        let net = setup(&mut env.meta, &env.config, &parse_publish("0:80").unwrap()).unwrap();
        let netns = net.netns.clone().unwrap();
        assert_eq!(net.endpoints.len(), 2);
        assert_eq!(net.endpoints[0].interface, "eth0");
        assert_eq!(net.endpoints[1].ip, Ipv4Addr::new(172, 30, 0, 9));
        let hosts = std::fs::read_to_string(&net.hosts).unwrap();
        assert!(hosts.contains("10.1.2.3\tdb.example\n"), "{hosts}");
        assert!(
            hosts.contains(&format!("{}\tfullhost\n", net.endpoints[0].ip)),
            "{hosts}"
        );
        assert_eq!(
            std::fs::read_to_string(&net.resolv_conf).unwrap(),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\n"
        );
        echo_after_eof(listen_in(&netns, 80));
        let mut proxies = net.proxies;
        let port = proxies.bound()[0].host.port();
        // The shim's loop, in miniature: poll the proxies on this thread.
        let client = std::thread::spawn(move || {
            let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.write_all(b"ping").unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            let mut back = String::new();
            conn.read_to_string(&mut back).unwrap();
            back
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client.is_finished() && Instant::now() < deadline {
            proxies.run_once(Some(Duration::from_millis(50))).unwrap();
        }
        assert_eq!(client.join().unwrap(), "ping");
        drop(proxies);

        berth_net::teardown(&mut env.meta, &id, &dir).unwrap();
        assert!(!netns.exists());
        assert!(env.meta.container_endpoints(&id).unwrap().is_empty());
        berth_net::teardown(&mut env.meta, &id, &dir).unwrap();
    });
}

#[test]
fn setup_for_host_and_none_networks() {
    // No namespace, link or rule is made: safe outside an isolated namespace.
    let mut env = Env::new();
    let dns = berth_net::DnsOptions::default();
    for (mode, hosts_want, resolv_want) in [
        (
            berth_net::NetworkMode::Host,
            "127.0.0.1\tlocalhost myhost\n".to_string(),
            "nameserver 127.0.0.53\n",
        ),
        (
            berth_net::NetworkMode::None,
            berth_net::render_hosts("box", None, &[], &[]),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let net = berth_net::setup(
            &mut env.meta,
            &env.config,
            &berth_net::ContainerNet {
                container_id: &container_id("x"),
                name: "x",
                hostname: "box",
                dir: dir.path(),
                mode: &mode,
                add_hosts: &[],
                dns: &dns,
                host_resolv_conf: "nameserver 127.0.0.53\n",
                host_hosts: "127.0.0.1\tlocalhost myhost\n",
                ports: &parse_publish("8080:80").unwrap(),
            },
        )
        .unwrap();
        assert_eq!(net.netns, None, "{mode:?}");
        assert!(net.endpoints.is_empty() && net.proxies.bound().is_empty());
        assert_eq!(std::fs::read_to_string(&net.hosts).unwrap(), hosts_want);
        assert_eq!(
            std::fs::read_to_string(&net.resolv_conf).unwrap(),
            resolv_want
        );
    }
}
