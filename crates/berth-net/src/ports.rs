//! Published ports: `-p [IP:][HOSTPORT:]CTRPORT[/tcp|udp]` (with ranges and
//! bracketed IPv6 host addresses) and `-P` (every exposed port to a free
//! host port).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::{Error, Result};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(Error::Invalid(format!("invalid proto: {s}"))),
        }
    }
}

/// One container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortBinding {
    /// None: all addresses (0.0.0.0), which includes 127.0.0.1.
    pub host_ip: Option<IpAddr>,
    /// First host port to try; 0 lets the kernel pick a free one.
    pub host_port: u16,
    /// Last host port to try (`8000-8010:80` publishes 80 on the first free
    /// one); equal to `host_port` otherwise.
    pub host_port_end: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl fmt::Display for PortBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

fn parse_range(text: &str, spec: &str, what: &str) -> Result<(u16, u16)> {
    let port = |s: &str| -> Result<u16> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0 || what == "host")
            .ok_or_else(|| Error::Invalid(format!("invalid {what} port {s:?} in {spec:?}")))
    };
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if end < start {
        return Err(Error::Invalid(format!(
            "invalid range {text:?} in {spec:?}"
        )));
    }
    Ok((start, end))
}

/// Parses one `-p` value into its bindings (one per container port).
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.parse()?),
        None => (spec, Protocol::Tcp),
    };
    // Split off a bracketed IPv6 host address first: it holds colons.
    let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once("]:")
            .ok_or_else(|| Error::Invalid(format!("invalid IP address in {spec:?}")))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid IP address {ip:?} in {spec:?}")))?;
        (Some(ip), tail.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [ip, _, _] => {
                let ip = if ip.is_empty() {
                    None
                } else {
                    Some(ip.parse::<IpAddr>().map_err(|_| {
                        Error::Invalid(format!("invalid IP address {ip:?} in {spec:?}"))
                    })?)
                };
                (ip, parts.get(1..).unwrap_or_default().join(":"))
            }
            [_] | [_, _] => (None, rest.to_string()),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid port specification: {spec:?}"
                )))
            }
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest.as_str()),
    };
    let (c_start, c_end) = parse_range(container, spec, "container")?;
    let (h_start, h_end) = match host {
        Some(h) if !h.is_empty() => parse_range(h, spec, "host")?,
        _ => (0, 0),
    };
    let count = c_end - c_start;
    let host_span = h_end - h_start;
    if h_start != 0 && count != 0 && host_span != count {
        return Err(Error::Invalid(format!(
            "invalid ranges specified for container and host ports: {spec:?}"
        )));
    }
    let bindings = (0..=count)
        .map(|i| {
            let container_port = c_start + i;
            let (host_port, host_port_end) = if h_start == 0 {
                (0, 0)
            } else if count == 0 {
                (h_start, h_end)
            } else {
                (h_start + i, h_start + i)
            };
            PortBinding {
                host_ip,
                host_port,
                host_port_end,
                container_port,
                protocol,
            }
        })
        .collect();
    Ok(bindings)
}

/// Parses an exposed port of an image config (`80/tcp`, `53/udp`, `8080`,
/// `7000-7002/tcp`).
pub fn parse_exposed(key: &str) -> Result<Vec<(u16, Protocol)>> {
    let (port, protocol) = match key.split_once('/') {
        Some((p, proto)) => (p, proto.parse()?),
        None => (key, Protocol::Tcp),
    };
    let (start, end) = parse_range(port, key, "container")?;
    Ok((start..=end).map(|p| (p, protocol)).collect())
}

/// `-P`: every exposed port to a free host port on all addresses.
pub fn publish_all(exposed: &[(u16, Protocol)]) -> Vec<PortBinding> {
    exposed
        .iter()
        .map(|&(container_port, protocol)| PortBinding {
            host_ip: None,
            host_port: 0,
            host_port_end: 0,
            container_port,
            protocol,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn one(spec: &str) -> String {
        let b = parse_publish(spec).unwrap();
        assert_eq!(b.len(), 1, "{spec}");
        let b = &b[0];
        format!(
            "{:?} {}-{} {} {}",
            b.host_ip, b.host_port, b.host_port_end, b.container_port, b.protocol
        )
    }

    #[test]
    fn publish_forms() {
        assert_eq!(one("80"), "None 0-0 80 tcp");
        assert_eq!(one("8080:80"), "None 8080-8080 80 tcp");
        assert_eq!(one("8080:80/udp"), "None 8080-8080 80 udp");
        assert_eq!(one("127.0.0.1:8080:80"), "Some(127.0.0.1) 8080-8080 80 tcp");
        assert_eq!(one("127.0.0.1::80"), "Some(127.0.0.1) 0-0 80 tcp");
        assert_eq!(one("[::1]:8080:80/tcp"), "Some(::1) 8080-8080 80 tcp");
        assert_eq!(one("8000-8010:80"), "None 8000-8010 80 tcp");
        let r = parse_publish("8000-8001:80-81/udp").unwrap();
        assert_eq!(
            r.iter()
                .map(|b| (b.host_port, b.container_port))
                .collect::<Vec<_>>(),
            [(8000, 80), (8001, 81)]
        );
        assert_eq!(parse_publish("80-82").unwrap().len(), 3);
        for bad in [
            "65535-65535:1-2",
            "",
            "x",
            "0",
            "80/sctp",
            "1.2.3:80:80",
            "8000-8002:80-81",
            "90-80",
            "a:b:c:d",
            "[::1:80:80",
            "99999",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn exposed_ports() {
        assert_eq!(parse_exposed("80/tcp").unwrap(), [(80, Protocol::Tcp)]);
        assert_eq!(parse_exposed("53/udp").unwrap(), [(53, Protocol::Udp)]);
        assert_eq!(parse_exposed("7000-7001").unwrap().len(), 2);
        assert!(parse_exposed("x/tcp").is_err());
        let all = publish_all(&[(80, Protocol::Tcp)]);
        assert_eq!(all[0].host_port, 0);
    }
}

#[cfg(test)]
mod robustness {
    /// Inputs made of the characters the grammars care about never panic
    /// (the fuzz target `net` goes further).
    #[test]
    fn random_specs_do_not_panic() {
        let alphabet: Vec<char> = "0123456789:/-[]. tcpudp:ff::1,=".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for _ in 0..(seed >> 60) + 1 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = super::parse_publish(&text);
            let _ = super::parse_exposed(&text);
            let _ = crate::hosts::parse_add_host(&text, None);
            let _ = text.parse::<crate::Ipv4Net>();
            let _ = crate::hosts::render_resolv_conf(&text, &Default::default(), false);
        }
    }
}
