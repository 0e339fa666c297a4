#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Platform parsing, normalisation and matching, after containerd's
//! `platforms` package tests.

use berth_oci::{ErrorKind, Platform};

#[test]
fn parses_and_normalises_specifiers() {
    for (spec, os, arch, variant, shown) in [
        ("linux/amd64", "linux", "amd64", "", "linux/amd64"),
        ("linux/x86_64", "linux", "amd64", "", "linux/amd64"),
        ("linux/x86-64", "linux", "amd64", "", "linux/amd64"),
        ("linux/amd64/v1", "linux", "amd64", "", "linux/amd64"),
        ("linux/amd64/v3", "linux", "amd64", "v3", "linux/amd64/v3"),
        ("Linux/AMD64", "linux", "amd64", "", "linux/amd64"),
        ("linux/arm64", "linux", "arm64", "v8", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux", "arm64", "v8", "linux/arm64/v8"),
        ("linux/aarch64", "linux", "arm64", "v8", "linux/arm64/v8"),
        ("linux/arm64/8", "linux", "arm64", "v8", "linux/arm64/v8"),
        ("linux/arm64/v9.0", "linux", "arm64", "v9", "linux/arm64/v9"),
        ("linux/arm", "linux", "arm", "v7", "linux/arm/v7"),
        ("linux/arm/v7", "linux", "arm", "v7", "linux/arm/v7"),
        ("linux/arm/7", "linux", "arm", "v7", "linux/arm/v7"),
        ("linux/arm/v6", "linux", "arm", "v6", "linux/arm/v6"),
        ("linux/arm/5", "linux", "arm", "v5", "linux/arm/v5"),
        ("linux/armhf", "linux", "arm", "v7", "linux/arm/v7"),
        ("linux/armel", "linux", "arm", "v6", "linux/arm/v6"),
        ("linux/i386", "linux", "386", "", "linux/386"),
        ("linux/ppc64le", "linux", "ppc64le", "", "linux/ppc64le"),
        ("linux/s390x", "linux", "s390x", "", "linux/s390x"),
        ("linux/riscv64", "linux", "riscv64", "", "linux/riscv64"),
        ("macos/arm64", "darwin", "arm64", "v8", "darwin/arm64/v8"),
        ("windows/amd64", "windows", "amd64", "", "windows/amd64"),
    ] {
        let p = Platform::parse(spec).unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_str()),
            (os, arch, variant),
            "{spec}"
        );
        assert_eq!(p.to_string(), shown, "{spec}");
        // What we print parses back to the same platform.
        assert_eq!(Platform::parse(shown).unwrap(), p, "{spec}");
    }
}

#[test]
fn one_component_is_an_os_or_an_arch() {
    let host = Platform::host();
    let p = Platform::parse("linux").unwrap();
    assert_eq!(
        (p.os.as_str(), p.architecture.as_str()),
        ("linux", host.architecture.as_str())
    );
    let p = Platform::parse("amd64").unwrap();
    assert_eq!(
        (p.os.as_str(), p.architecture.as_str()),
        (host.os.as_str(), "amd64")
    );
    let p = Platform::parse("aarch64").unwrap();
    assert_eq!((p.architecture.as_str(), p.variant.as_str()), ("arm64", ""));
    let p = Platform::parse("armhf").unwrap();
    assert_eq!((p.architecture.as_str(), p.variant.as_str()), ("arm", ""));
    let p = Platform::parse("armel").unwrap();
    assert_eq!((p.architecture.as_str(), p.variant.as_str()), ("arm", "v6"));
    assert!(Platform::parse("plan10").is_err());
}

#[test]
fn os_version_in_parentheses() {
    let p = Platform::parse("windows(10.0.17763)/amd64").unwrap();
    assert_eq!(p.os, "windows");
    assert_eq!(p.os_version, "10.0.17763");
    assert!(Platform::parse("windows(10.0/amd64").is_err());
    assert!(Platform::parse("windows()/amd64").is_err());
}

#[test]
fn rejects_bad_specifiers() {
    for bad in [
        "",
        "/",
        "linux/",
        "/amd64",
        "linux//v7",
        "linux/*",
        "*",
        "linux/amd64/v1/x",
        "linux/amd 64",
        "linux/amd64/",
        "linux\\amd64",
        "lïnux/amd64",
    ] {
        let err = Platform::parse(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    let long = "x".repeat(10_000);
    let msg = Platform::parse(&long).unwrap_err().to_string();
    assert!(msg.len() < 300, "{}", msg.len());
}

#[test]
fn host_is_known() {
    let host = Platform::host();
    assert!(!host.os.is_empty() && !host.architecture.is_empty());
    assert!(host.matches(&Platform::parse(&host.to_string()).unwrap()));
}

#[test]
fn normalize_drops_default_variants() {
    let n = Platform::new("Linux", "aarch64", "v8").normalize();
    assert_eq!(
        (n.os.as_str(), n.architecture.as_str(), n.variant.as_str()),
        ("linux", "arm64", "")
    );
    let n = Platform::new("linux", "arm", "").normalize();
    assert_eq!(n.variant, "v7");
    let n = Platform::new("linux", "x86_64", "v1").normalize();
    assert_eq!((n.architecture.as_str(), n.variant.as_str()), ("amd64", ""));
}

#[test]
fn matches_manifest_list_entries() {
    let arm64 = Platform::parse("linux/arm64").unwrap();
    assert!(arm64.matches(&Platform::new("linux", "arm64", "")));
    assert!(arm64.matches(&Platform::new("linux", "arm64", "v8")));
    assert!(arm64.matches(&Platform::new("linux", "aarch64", "")));
    assert!(!arm64.matches(&Platform::new("linux", "arm64", "v9")));
    assert!(!arm64.matches(&Platform::new("linux", "arm", "v7")));
    assert!(!arm64.matches(&Platform::new("windows", "arm64", "")));

    let amd64 = Platform::parse("linux/amd64").unwrap();
    assert!(amd64.matches(&Platform::new("linux", "amd64", "")));
    assert!(amd64.matches(&Platform::new("linux", "x86_64", "")));
    assert!(!amd64.matches(&Platform::new("linux", "386", "")));
    assert!(!amd64.matches(&Platform::new("unknown", "unknown", "")));

    let armv7 = Platform::parse("linux/arm/v7").unwrap();
    assert!(armv7.matches(&Platform::new("linux", "arm", "")));
    assert!(!armv7.matches(&Platform::new("linux", "arm", "v6")));

    let mut win = Platform::parse("windows/amd64").unwrap();
    win.os_version = "10.0.17763".into();
    let mut entry = Platform::new("windows", "amd64", "");
    assert!(win.matches(&entry));
    entry.os_version = "10.0.17763".into();
    assert!(win.matches(&entry));
    entry.os_version = "10.0.20348".into();
    assert!(!win.matches(&entry));
}

#[test]
fn ranks_fallbacks_like_containerd() {
    let arm64 = Platform::parse("linux/arm64").unwrap();
    assert_eq!(arm64.rank(&Platform::new("linux", "arm64", "")), Some(0));
    assert_eq!(arm64.rank(&Platform::new("linux", "arm", "v8")), Some(1));
    assert_eq!(arm64.rank(&Platform::new("linux", "arm", "v7")), Some(2));
    assert_eq!(arm64.rank(&Platform::new("linux", "arm", "")), Some(2));
    assert_eq!(arm64.rank(&Platform::new("linux", "arm", "v5")), Some(4));
    assert_eq!(arm64.rank(&Platform::new("linux", "amd64", "")), None);

    let v3 = Platform::parse("linux/amd64/v3").unwrap();
    assert_eq!(v3.rank(&Platform::new("linux", "amd64", "v2")), Some(1));
    assert_eq!(v3.rank(&Platform::new("linux", "amd64", "")), Some(2));
    assert_eq!(v3.rank(&Platform::new("linux", "386", "")), Some(3));
    assert_eq!(v3.rank(&Platform::new("linux", "amd64", "v4")), None);

    let amd64 = Platform::parse("linux/amd64").unwrap();
    assert_eq!(amd64.rank(&Platform::new("linux", "386", "")), Some(1));
    assert_eq!(amd64.rank(&Platform::new("linux", "amd64", "v2")), None);

    let armv6 = Platform::parse("linux/arm/v6").unwrap();
    assert_eq!(armv6.rank(&Platform::new("linux", "arm", "v5")), Some(1));
    assert_eq!(armv6.rank(&Platform::new("linux", "arm", "v7")), None);
}

#[test]
fn serde_field_names() {
    let mut p = Platform::new("windows", "amd64", "");
    p.os_version = "10.0.17763.1".into();
    p.os_features = vec!["win32k".into()];
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        json,
        r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","os.features":["win32k"]}"#
    );
    assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), p);
    let arm = r#"{"architecture":"arm","os":"linux","variant":"v7"}"#;
    let p: Platform = serde_json::from_str(arm).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), arm);
    assert_eq!(Platform::default().to_string(), "unknown");
}

#[test]
fn no_panics_on_odd_specifiers() {
    for s in [
        "(",
        ")",
        "()",
        "(x)",
        "linux(",
        "windows(é)/amd64",
        "é",
        "linux/é",
        "linux/arm/v",
        "linux/arm64/v",
        "linux/amd64/vv",
        "/(/)",
        "windows(1)(2)/amd64",
        "\u{0}",
    ] {
        let _ = Platform::parse(s);
    }
    for len in 0..200 {
        let s: String = "linux/arm(v7)-_.".chars().cycle().take(len).collect();
        if let Ok(p) = Platform::parse(&s) {
            let _ = p.to_string();
            let _ = p.compatible();
        }
    }
}
