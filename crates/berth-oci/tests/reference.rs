#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Reference parsing against the expectations of docker/distribution's
//! `reference` tests (normalize_test.go, reference_test.go), through
//! `ParseNormalizedNamed` + `TagNameOnly` as the docker CLI uses them.

use berth_oci::{id_prefix, Reference, ReferenceError};

const F64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const D1: &str = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

enum Want {
    /// Full string, familiar string.
    Ok(&'static str, &'static str),
    Err(&'static str),
}
use Want::{Err as E, Ok as O};

fn table() -> Vec<(String, Want)> {
    let s = |x: &str| x.to_string();
    let lower_msg = "invalid reference format";
    vec![
        // Docker Hub normalisation.
        (s("busybox"), O("docker.io/library/busybox:latest", "busybox:latest")),
        (s("busybox:1.36"), O("docker.io/library/busybox:1.36", "busybox:1.36")),
        (s("user/app"), O("docker.io/user/app:latest", "user/app:latest")),
        (s("user/app:v1"), O("docker.io/user/app:v1", "user/app:v1")),
        (s("docker.io/library/busybox"), O("docker.io/library/busybox:latest", "busybox:latest")),
        (s("docker.io/busybox"), O("docker.io/library/busybox:latest", "busybox:latest")),
        (s("index.docker.io/library/debian"), O("docker.io/library/debian:latest", "debian:latest")),
        (s("index.docker.io/debian"), O("docker.io/library/debian:latest", "debian:latest")),
        (s("index.docker.io/docker/docker"), O("docker.io/docker/docker:latest", "docker/docker:latest")),
        (s("library/debian"), O("docker.io/library/debian:latest", "debian:latest")),
        (s("library/ubuntu-12.04-base"), O("docker.io/library/ubuntu-12.04-base:latest", "ubuntu-12.04-base:latest")),
        (s("docker.io/library/foo/bar"), O("docker.io/library/foo/bar:latest", "library/foo/bar:latest")),
        (s("store/foo/bar"), O("docker.io/store/foo/bar:latest", "store/foo/bar:latest")),
        (s("other/library"), O("docker.io/other/library:latest", "other/library:latest")),
        (s("test_com/foo"), O("docker.io/test_com/foo:latest", "test_com/foo:latest")),
        // Domains.
        (s("localhost/foo"), O("localhost/foo:latest", "localhost/foo:latest")),
        (format!("localhost:5000/a/b@sha256:{F64}"), O(
            "localhost:5000/a/b@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "localhost:5000/a/b@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        )),
        (s("registry.example.com/x/y:tag"), O("registry.example.com/x/y:tag", "registry.example.com/x/y:tag")),
        (s("127.0.0.1:5000/docker/docker"), O("127.0.0.1:5000/docker/docker:latest", "127.0.0.1:5000/docker/docker:latest")),
        (s("127.0.0.1:8000/privatebase"), O("127.0.0.1:8000/privatebase:latest", "127.0.0.1:8000/privatebase:latest")),
        (s("example.com:8000/private/moonbase"), O("example.com:8000/private/moonbase:latest", "example.com:8000/private/moonbase:latest")),
        (s("test-com:8080/foo"), O("test-com:8080/foo:latest", "test-com:8080/foo:latest")),
        (s("xn--n3h.com/myimage:xn--n3h.com"), O("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com")),
        (s("sub-dom1.foo.com/bar/baz/quux:some-long-tag"), O("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag")),
        (s("b.gcr.io/test.example.com/my-app:test.example.com"), O("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com")),
        (s("[fc00::1]:5000/docker"), O("[fc00::1]:5000/docker:latest", "[fc00::1]:5000/docker:latest")),
        (s("[2001:db8::1]/repo"), O("[2001:db8::1]/repo:latest", "[2001:db8::1]/repo:latest")),
        (s("[::1]:5000/repo:tag"), O("[::1]:5000/repo:tag", "[::1]:5000/repo:tag")),
        // Upper case in the first component makes it a domain.
        (s("Docker/docker"), O("Docker/docker:latest", "Docker/docker:latest")),
        (s("FOO/bar"), O("FOO/bar:latest", "FOO/bar:latest")),
        // Names that look like other things.
        (s("192.168.0.1"), O("docker.io/library/192.168.0.1:latest", "192.168.0.1:latest")),
        (s("192.168.0.1:80"), O("docker.io/library/192.168.0.1:80", "192.168.0.1:80")),
        (s("test.com:5000"), O("docker.io/library/test.com:5000", "test.com:5000")),
        (s("foo_bar.com:8080"), O("docker.io/library/foo_bar.com:8080", "foo_bar.com:8080")),
        (s("foo/foo_bar.com:8080"), O("docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080")),
        (s("dbcc1"), O("docker.io/library/dbcc1:latest", "dbcc1:latest")),
        (D1[..63].to_string(), O(
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
        )),
        (format!("docker.io/{D1}"), O(
            "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c:latest",
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c:latest",
        )),
        (s("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"), O(
            "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
        )),
        // Separators.
        (s("docker-rules/docker"), O("docker.io/docker-rules/docker:latest", "docker-rules/docker:latest")),
        (s("docker---rules/docker"), O("docker.io/docker---rules/docker:latest", "docker---rules/docker:latest")),
        (s("dock__er/docker"), O("docker.io/dock__er/docker:latest", "dock__er/docker:latest")),
        (s("d/docker"), O("docker.io/d/docker:latest", "d/docker:latest")),
        (s("jess/t"), O("docker.io/jess/t:latest", "jess/t:latest")),
        // Tags and digests.
        (s("lowercase:Uppercase"), O("docker.io/library/lowercase:Uppercase", "lowercase:Uppercase")),
        (format!("redis@sha256:{D1}"), O(
            "docker.io/library/redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        )),
        (format!("busybox:latest@sha256:{D1}"), O(
            "docker.io/library/busybox:latest@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
            "busybox:latest@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
        )),
        (format!("b:{}", "t".repeat(128)), O("", "")),
        // Invalid.
        (s(""), E(lower_msg)),
        (s(":justtag"), E(lower_msg)),
        (format!("@sha256:{F64}"), E(lower_msg)),
        (s("repo@sha256:ffffffffffffffffffffffffffffffffff"), E("invalid checksum digest length")),
        (format!("validname@invaliddigest:{F64}"), E("unsupported digest algorithm")),
        (format!("repo@sha256:{}", F64.to_uppercase()), E("invalid checksum digest format")),
        (s("repo@sha256:fff"), E(lower_msg)),
        (s("Uppercase:tag"), E("invalid reference format: repository name (library/Uppercase) must be lowercase")),
        (s("Busybox"), E("invalid reference format: repository name (library/Busybox) must be lowercase")),
        (s("docker/Docker"), E("invalid reference format: repository name (docker/Docker) must be lowercase")),
        (s("test:5000/Uppercase/lowercase:tag"), E("invalid reference format: repository name (Uppercase/lowercase) must be lowercase")),
        (s("aa/asdf$$^/aa"), E(lower_msg)),
        (s("https://github.com/docker/docker"), E(lower_msg)),
        (s("-docker"), E(lower_msg)),
        (s("-docker/docker"), E(lower_msg)),
        (s("-docker.io/docker/docker"), E(lower_msg)),
        (s("docker-/docker"), E(lower_msg)),
        (s("-docker-/docker"), E(lower_msg)),
        (s("docker///docker"), E(lower_msg)),
        (s("docker.io/docker///docker"), E(lower_msg)),
        (s("____/____"), E(lower_msg)),
        (s("_docker/_docker"), E(lower_msg)),
        (s("dock..er/docker"), E(lower_msg)),
        (s("dock_.er/docker"), E(lower_msg)),
        (s("dock-.er/docker"), E(lower_msg)),
        (s("dock___er/docker"), E(lower_msg)),
        (s("docker/"), E(lower_msg)),
        (s("[fc00::1]"), E(lower_msg)),
        (s("[fc00::1]:5000"), E(lower_msg)),
        (s("fc00::1:5000/debian"), E(lower_msg)),
        (s("[fe80::1%eth0]:5000/debian"), E(lower_msg)),
        (s("[2001:db8:3:4::192.0.2.33]:5000/debian"), E(lower_msg)),
        (s("busybox:"), E(lower_msg)),
        (s("busybox:-tag"), E(lower_msg)),
        (s("busybox:a/b"), E(lower_msg)),
        (format!("b:{}", "t".repeat(129)), E(lower_msg)),
        (s("a b"), E(lower_msg)),
        (s("busybox@"), E(lower_msg)),
        (D1.to_string(), E("invalid repository name (dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c), cannot specify 64-byte hexadecimal strings")),
        (format!("example.com/{}", "a".repeat(244)), E("repository name must not be more than 255 characters")),
        (s("this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker"),
            E("repository name must not be more than 255 characters")),
    ]
}

#[test]
fn reference_table() {
    let rows = table();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (input, want) in rows {
        let got = Reference::parse(&input);
        match (&want, &got) {
            (O("", ""), Ok(_)) => {}
            (O(full, fam), Ok(r)) if r.to_string() == *full && r.familiar_string() == *fam => {
                // Display form parses back to the same reference.
                let again = Reference::parse(&r.to_string()).unwrap();
                assert_eq!(&again, r, "{input}");
                let again = Reference::parse(&r.familiar_string()).unwrap();
                assert_eq!(&again, r, "{input}");
            }
            (E(msg), Err(e)) if e.to_string() == *msg => {}
            _ => failures.push(format!(
                "{input:?}: want {}, got {:?}",
                match want {
                    O(full, fam) => format!("Ok({full}, {fam})"),
                    E(msg) => format!("Err({msg})"),
                },
                got.map(|r| (r.to_string(), r.familiar_string()))
                    .map_err(|e| e.to_string())
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn longest_name_is_accepted() {
    let ok = format!("example.com/{}", "a".repeat(243));
    assert_eq!(Reference::parse(&ok).unwrap().name().len(), 255);
}

#[test]
fn domain_and_path() {
    for (input, domain, path) in [
        ("test.com/foo", "test.com", "foo"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("docker/migrator", "docker.io", "docker/migrator"),
        ("test.com:8080/foo", "test.com:8080", "foo"),
        ("test-com:8080/foo", "test-com:8080", "foo"),
        ("foo", "docker.io", "library/foo"),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ("Foo/bar", "Foo", "bar"),
        ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo"),
    ] {
        let r = Reference::parse_named(input).unwrap();
        assert_eq!((r.domain(), r.path()), (domain, path), "{input}");
        assert_eq!(r.tag(), None);
    }
}

#[test]
fn familiar_names() {
    for (input, familiar) in [
        ("docker.io/fooo/bar", "fooo/bar"),
        ("library/ubuntu", "ubuntu"),
        ("docker.io/library/foo", "foo"),
        ("docker.io/library/foo/bar", "library/foo/bar"),
        (
            "127.0.0.1:8000/private/moonbase",
            "127.0.0.1:8000/private/moonbase",
        ),
        ("example.com/privatebase", "example.com/privatebase"),
        ("Foo/bar", "Foo/bar"),
    ] {
        let r = Reference::parse_named(input).unwrap();
        assert_eq!(r.familiar_name(), familiar, "{input}");
        assert_eq!(r.familiar_string(), familiar, "{input}");
    }
}

#[test]
fn tag_and_digest_are_both_kept() {
    let r = Reference::parse(&format!("busybox:1@sha256:{D1}")).unwrap();
    assert_eq!(r.tag(), Some("1"));
    assert_eq!(r.digest().unwrap().hex(), D1);
    assert_eq!(r.repository().to_string(), "docker.io/library/busybox");
    let r = Reference::parse_named("busybox").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/busybox");
    assert_eq!(r.with_tag("v2").unwrap().familiar_string(), "busybox:v2");
    assert_eq!(r.with_tag("-bad"), Err(ReferenceError::InvalidTag));
    let d = format!("sha256:{D1}").parse().unwrap();
    assert_eq!(
        r.with_digest(d).to_string(),
        format!("docker.io/library/busybox@sha256:{D1}")
    );
}

#[test]
fn serde_uses_the_full_string() {
    let r = Reference::parse("user/app:v1").unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"docker.io/user/app:v1\"");
    assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    assert!(serde_json::from_str::<Reference>("\"Bad\"").is_err());
}

#[test]
fn id_prefixes() {
    assert_eq!(id_prefix("a"), Some("a"));
    assert_eq!(id_prefix("dbcc1"), Some("dbcc1"));
    assert_eq!(id_prefix(D1), Some(D1));
    assert_eq!(id_prefix(&format!("sha256:{D1}")), Some(D1));
    assert_eq!(id_prefix(&format!("{D1}0")), None);
    assert_eq!(id_prefix(""), None);
    assert_eq!(id_prefix("sha256:"), None);
    assert_eq!(id_prefix("busybox"), None);
    assert_eq!(id_prefix("ABC"), None);
}

#[test]
fn no_panics_on_odd_input() {
    let odd = [
        "",
        "/",
        "//",
        ":",
        "@",
        "@@",
        "a@b@c",
        "[",
        "]",
        "[]",
        "[]/a",
        "a:",
        ":a",
        "a/:b",
        "localhost:/a",
        "localhost:x/a",
        "é",
        "ü/ü",
        "a\u{0}b",
        "\u{212A}/x",
        "a:b:c",
        "[::]:/x",
        "a/b@sha256:",
        "a/b@:ffffffffffffffffffffffffffffffff",
        "a.b.c.d.e/f",
    ];
    for s in odd {
        let _ = Reference::parse(s);
        let _ = Reference::parse_named(s);
        let _ = id_prefix(s);
    }
    for len in 0..300 {
        let s: String = "a/b:c@-.[]_".chars().cycle().take(len).collect();
        let _ = Reference::parse(&s);
    }
}
