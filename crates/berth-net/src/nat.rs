//! Outbound NAT and forwarding for bridge networks, in an nftables table
//! owned by berth (`table ip berth`): outbound traffic is masqueraded,
//! networks are isolated from each other (as Docker's isolation chains do)
//! and internal networks cannot leave their bridge. The rules are fixed and look up sets:
//! a network adds its subnet and bridge to the sets, so setting up one more
//! network never duplicates a rule. Run through the `nft` binary, once per
//! bridge creation (not per container).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::subnet::Ipv4Net;
use crate::{Error, Result};

/// The table, sets and chains, rebuilt idempotently (the chains are flushed
/// and refilled in the same transaction).
const BASE: &str = "add table ip berth
add set ip berth nat_subnets { type ipv4_addr; flags interval; }
add set ip berth bridges { type ifname; }
add set ip berth internal_bridges { type ifname; }
add set ip berth same_bridge { type ifname . ifname; }
add chain ip berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip berth forward { type filter hook forward priority filter; policy accept; }
flush chain ip berth postrouting
flush chain ip berth forward
add rule ip berth postrouting ip saddr @nat_subnets oifname != @bridges masquerade
add rule ip berth forward iifname . oifname @same_bridge accept
add rule ip berth forward iifname @bridges oifname @bridges drop
add rule ip berth forward iifname @internal_bridges oifname != @internal_bridges drop
add rule ip berth forward oifname @internal_bridges iifname != @internal_bridges drop
add rule ip berth forward iifname @bridges accept
add rule ip berth forward oifname @bridges ct state established,related accept
";

fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("running nft (install the nftables package): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::Nft(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Enables forwarding and NAT for a bridge network: outbound traffic from
/// `subnet` is masqueraded unless the network is internal, which may not
/// leave its bridge at all.
pub(crate) fn enable(bridge: &str, subnet: Ipv4Net, internal: bool) -> Result<()> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    std::fs::write(path, "1").map_err(|e| Error::io(path, e))?;
    let mut script = String::from(BASE);
    script.push_str(&format!(
        "add element ip berth bridges {{ \"{bridge}\" }}\n"
    ));
    script.push_str(&format!(
        "add element ip berth same_bridge {{ \"{bridge}\" . \"{bridge}\" }}\n"
    ));
    if internal {
        script.push_str(&format!(
            "add element ip berth internal_bridges {{ \"{bridge}\" }}\n"
        ));
    } else {
        script.push_str(&format!(
            "add element ip berth nat_subnets {{ {subnet} }}\n"
        ));
    }
    nft(&script)
}

/// Removes a network's set elements; missing ones are fine.
pub(crate) fn disable(bridge: &str, subnet: Option<Ipv4Net>) {
    let mut elements = vec![
        format!("delete element ip berth bridges {{ \"{bridge}\" }}"),
        format!("delete element ip berth same_bridge {{ \"{bridge}\" . \"{bridge}\" }}"),
        format!("delete element ip berth internal_bridges {{ \"{bridge}\" }}"),
    ];
    if let Some(subnet) = subnet {
        elements.push(format!(
            "delete element ip berth nat_subnets {{ {subnet} }}"
        ));
    }
    // nft applies a script all or nothing, and an absent element fails it.
    for line in elements {
        if let Err(e) = nft(&line) {
            tracing::debug!(%e, "nft element already gone");
        }
    }
}
