//! IPv4 subnets (`172.29.0.0/16`): parsing, membership, host addresses and
//! the pick of the next free subnet for a new network.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::Error;

/// An IPv4 network: its address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `addr/prefix`; host bits must be zero (as Docker requires).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, Error> {
        if prefix > 32 {
            return Err(Error::Invalid(format!(
                "invalid subnet {addr}/{prefix}: prefix length above 32"
            )));
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(Error::Invalid(format!(
                "invalid subnet {addr}/{prefix}: it should be {}/{prefix}",
                net.network()
            )));
        }
        Ok(net)
    }

    /// The subnet of `prefix` bits that holds `ip`.
    pub fn containing(ip: Ipv4Addr, prefix: u8) -> Ipv4Net {
        let prefix = prefix.min(32);
        let net = Ipv4Net { addr: ip, prefix };
        Ipv4Net {
            addr: net.network(),
            prefix,
        }
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `n`th address of the subnet (0 is the network address), if inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let ip = u32::from(self.network()).checked_add(n)?;
        self.contains(Ipv4Addr::from(ip))
            .then_some(Ipv4Addr::from(ip))
    }

    /// Addresses a host may use: all but the network and broadcast
    /// addresses (for prefixes up to /30).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let (first, last) = (u32::from(self.network()), u32::from(self.broadcast()));
        let (first, last) = if self.prefix >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        };
        (first..=last).map(Ipv4Addr::from)
    }

    /// The first `/prefix` subnet inside `pool` that overlaps none of
    /// `taken`.
    pub fn first_free(pool: Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
        if prefix < pool.prefix || prefix > 30 {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        let start = u64::from(u32::from(pool.network()));
        let end = u64::from(u32::from(pool.broadcast()));
        let mut at = start;
        while at <= end {
            let candidate = Ipv4Net {
                addr: Ipv4Addr::from(u32::try_from(at).ok()?),
                prefix,
            };
            if !taken.iter().any(|t| t.overlaps(&candidate)) {
                return Some(candidate);
            }
            at += step;
        }
        None
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Invalid(format!(
                "invalid subnet {s:?}: expected IPv4 CIDR like 172.30.0.0/24"
            ))
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_arithmetic() {
        let net: Ipv4Net = "172.29.0.0/16".parse().unwrap();
        assert_eq!(net.broadcast(), Ipv4Addr::new(172, 29, 255, 255));
        assert!(net.contains(Ipv4Addr::new(172, 29, 3, 4)));
        assert!(!net.contains(Ipv4Addr::new(172, 30, 0, 1)));
        assert_eq!(net.nth(1), Some(Ipv4Addr::new(172, 29, 0, 1)));
        assert_eq!(net.hosts().count(), 65534);
        assert!("172.29.0.1/16".parse::<Ipv4Net>().is_err());
        assert!("172.29.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("nonsense".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn first_free_skips_overlaps() {
        let pool: Ipv4Net = "172.30.0.0/15".parse().unwrap();
        let taken = [
            "172.30.0.0/24".parse().unwrap(),
            "172.30.1.0/25".parse().unwrap(),
        ];
        assert_eq!(
            Ipv4Net::first_free(pool, 24, &taken).unwrap().to_string(),
            "172.30.2.0/24"
        );
        let whole = ["172.30.0.0/15".parse().unwrap()];
        assert_eq!(Ipv4Net::first_free(pool, 24, &whole), None);
    }
}
