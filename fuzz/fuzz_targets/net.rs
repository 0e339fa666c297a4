//! Parse arbitrary `-p` specs, exposed ports, `--add-host` values and
//! subnets, and render resolv.conf from arbitrary host files. Nothing may
//! panic.
#![no_main]

use berth_net::{parse_add_host, parse_exposed, parse_publish, render_resolv_conf, DnsOptions, Ipv4Net};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(bindings) = parse_publish(&text) {
        for b in bindings {
            let _ = b.to_string();
        }
    }
    let _ = parse_exposed(&text);
    let _ = parse_add_host(&text, "172.29.0.1".parse().ok());
    let _ = text.parse::<Ipv4Net>();
    let dns = DnsOptions {
        servers: vec![],
        search: vec![".".into()],
        options: vec![],
    };
    let _ = render_resolv_conf(&text, &dns, false);
    let _ = render_resolv_conf(&text, &DnsOptions::default(), true);
});
