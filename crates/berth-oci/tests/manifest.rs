#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Manifest, index and descriptor JSON: exact field names, round trips,
//! platform selection.

use berth_oci::{
    Descriptor, Digest, ErrorKind, ImageDocument, Index, Manifest, MediaType, Platform,
};

const CFG: &str = "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7";
const L1: &str = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f";
const L2: &str = "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b";

/// A Docker schema2 manifest as registries serve it (compact).
fn docker_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{CFG}","size":7023}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{L1}","size":32654}},{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{L2}","size":16724}}]}}"#
    )
}

/// An OCI manifest with every optional field.
fn oci_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example+type","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":7023}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{L1}","size":32654,"urls":["https://mirror.example.com/blob"],"annotations":{{"org.opencontainers.image.title":"layer.tar.zst"}}}},{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{L2}","size":2,"data":"e30="}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{L2}","size":1234}},"annotations":{{"com.example.key":"value","org.opencontainers.image.created":"2024-05-01T00:00:00Z"}}}}"#
    )
}

fn index(media_type: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{L1}","size":1000,"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{L2}","size":1001,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{CFG}","size":1002,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{CFG}","size":566,"annotations":{{"vnd.docker.reference.digest":"{L1}","vnd.docker.reference.type":"attestation-manifest"}},"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#
    )
}

#[test]
fn docker_manifest_round_trips() {
    let text = docker_manifest();
    let m = Manifest::from_slice(text.as_bytes()).unwrap();
    assert_eq!(m.schema_version, 2);
    assert_eq!(m.media_type, Some(MediaType::DockerManifest));
    assert_eq!(m.config.media_type, MediaType::DockerConfig);
    assert_eq!(m.config.size, 7023);
    assert_eq!(m.layers.len(), 2);
    assert_eq!(m.layers[1].digest.to_string(), L2);
    assert!(m.layers.iter().all(|l| l.media_type.is_layer()));
    assert_eq!(String::from_utf8(m.to_json().unwrap()).unwrap(), text);
}

#[test]
fn oci_manifest_round_trips_with_every_field() {
    let text = oci_manifest();
    let m = Manifest::from_slice(text.as_bytes()).unwrap();
    assert_eq!(
        m.artifact_type.as_deref(),
        Some("application/vnd.example+type")
    );
    assert_eq!(m.layers[0].urls, ["https://mirror.example.com/blob"]);
    assert_eq!(m.layers[1].data.as_deref(), Some("e30="));
    assert_eq!(m.layers[1].media_type, MediaType::OciEmpty);
    assert_eq!(m.subject.as_ref().unwrap().size, 1234);
    assert_eq!(m.annotations["com.example.key"], "value");
    assert_eq!(String::from_utf8(m.to_json().unwrap()).unwrap(), text);
}

#[test]
fn manifest_unknown_fields_survive() {
    let text = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":1}},"layers":[],"zzz":{{"b":1,"a":2}}}}"#
    );
    let m = Manifest::from_slice(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(m.to_json().unwrap()).unwrap(), text);
}

#[test]
fn index_and_manifest_list_round_trip() {
    for mt in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ] {
        let text = index(mt);
        let i = Index::from_slice(text.as_bytes()).unwrap();
        assert!(i.media_type.as_ref().unwrap().is_index());
        assert_eq!(i.manifests.len(), 4);
        assert_eq!(
            i.manifests[1].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(String::from_utf8(i.to_json().unwrap()).unwrap(), text);
    }
}

#[test]
fn index_selects_by_platform() {
    let i = Index::from_slice(index("application/vnd.oci.image.index.v1+json").as_bytes()).unwrap();
    let pick = |spec: &str| {
        i.select(&Platform::parse(spec).unwrap())
            .map(|d| (d.digest.to_string(), d.size))
    };
    assert_eq!(pick("linux/amd64"), Some((L1.to_string(), 1000)));
    assert_eq!(pick("linux/arm64"), Some((CFG.to_string(), 1002)));
    assert_eq!(pick("linux/arm/v7"), Some((L2.to_string(), 1001)));
    assert_eq!(pick("linux/arm/v6"), None);
    assert_eq!(pick("linux/amd64/v3"), Some((L1.to_string(), 1000)));
    assert_eq!(pick("windows/amd64"), None);

    // Without the arm64 entry, an arm64 host falls back to arm/v7.
    let mut no_arm64 = i.clone();
    no_arm64.manifests.remove(2);
    let d = no_arm64
        .select(&Platform::parse("linux/arm64").unwrap())
        .unwrap();
    assert_eq!(d.size, 1001);

    // An entry without a platform is the last resort.
    let mut bare = Index::new(MediaType::OciIndex, vec![]);
    let mut plain = Descriptor::new(MediaType::OciManifest, L1.parse().unwrap(), 5);
    bare.manifests.push(plain.clone());
    plain.platform = Some(Platform::new("linux", "arm64", ""));
    plain.size = 6;
    bare.manifests.push(plain);
    assert_eq!(
        bare.select(&Platform::parse("linux/arm64").unwrap())
            .unwrap()
            .size,
        6
    );
    assert_eq!(
        bare.select(&Platform::parse("linux/amd64").unwrap())
            .unwrap()
            .size,
        5
    );
}

#[test]
fn descriptor_field_names_are_ocis() {
    let mut d = Descriptor::of_bytes(MediaType::OciConfig, b"{}");
    d.artifact_type = Some("application/x".into());
    d.platform = Some(Platform::parse("linux/arm64").unwrap());
    d.annotations.insert("k".into(), "v".into());
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        json,
        r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"k":"v"},"platform":{"architecture":"arm64","os":"linux","variant":"v8"},"artifactType":"application/x"}"#
    );
    assert_eq!(serde_json::from_str::<Descriptor>(&json).unwrap(), d);
    assert_eq!(d.digest, Digest::sha256_of(b"{}"));
}

#[test]
fn built_manifests_serialise_like_go() {
    let config = Descriptor::new(MediaType::DockerConfig, CFG.parse().unwrap(), 7023);
    let layers = vec![
        Descriptor::new(MediaType::DockerLayerGzip, L1.parse().unwrap(), 32654),
        Descriptor::new(MediaType::DockerLayerGzip, L2.parse().unwrap(), 16724),
    ];
    let m = Manifest::new(MediaType::DockerManifest, config, layers);
    assert_eq!(
        String::from_utf8(m.to_json().unwrap()).unwrap(),
        docker_manifest()
    );
    // Go writes `layers` even when empty.
    let empty = Manifest::new(MediaType::OciManifest, m.config.clone(), vec![]);
    assert!(String::from_utf8(empty.to_json().unwrap())
        .unwrap()
        .contains(r#""layers":[]"#));
}

#[test]
fn image_document_tells_manifest_from_index() {
    let m = docker_manifest();
    assert!(matches!(
        ImageDocument::from_slice(None, m.as_bytes()).unwrap(),
        ImageDocument::Manifest(_)
    ));
    let i = index("application/vnd.oci.image.index.v1+json");
    assert!(matches!(
        ImageDocument::from_slice(None, i.as_bytes()).unwrap(),
        ImageDocument::Index(_)
    ));

    // No mediaType in the document: the Content-Type decides, else the shape.
    let bare_index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{L1}","size":1}}]}}"#
    );
    assert!(matches!(
        ImageDocument::from_slice(Some(&MediaType::OciIndex), bare_index.as_bytes()).unwrap(),
        ImageDocument::Index(_)
    ));
    assert!(matches!(
        ImageDocument::from_slice(None, bare_index.as_bytes()).unwrap(),
        ImageDocument::Index(_)
    ));
    let bare_manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":1}},"layers":null}}"#
    );
    match ImageDocument::from_slice(None, bare_manifest.as_bytes()).unwrap() {
        ImageDocument::Manifest(m) => assert!(m.layers.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_documents_are_refused() {
    // An index is not a manifest and vice versa.
    let i = index("application/vnd.oci.image.index.v1+json");
    assert_eq!(
        Manifest::from_slice(i.as_bytes()).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let err = Index::from_slice(docker_manifest().as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string().contains("missing field `manifests`"),
        "{err}"
    );
    // Schema 1 is not supported.
    let v1 = docker_manifest().replace(r#""schemaVersion":2"#, r#""schemaVersion":1"#);
    let err = Manifest::from_slice(v1.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        err.to_string(),
        "unsupported image manifest schema version 1"
    );
    // A manifest with an index media type.
    let odd = docker_manifest().replace(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
    );
    assert_eq!(
        Manifest::from_slice(odd.as_bytes()).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    // Unknown document type.
    let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.example"}"#;
    assert_eq!(
        ImageDocument::from_slice(None, other).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    // Bad digests, negative sizes, garbage: errors, never panics.
    for bad in [
        docker_manifest().replace(L1, "sha256:abc"),
        docker_manifest().replace("32654", "-1"),
        docker_manifest().replace("7023", "\"7023\""),
        "{".to_string(),
        String::new(),
        "[]".to_string(),
        "{\"schemaVersion\":2}".to_string(),
    ] {
        assert!(Manifest::from_slice(bad.as_bytes()).is_err(), "{bad}");
        assert!(Index::from_slice(bad.as_bytes()).is_err(), "{bad}");
        assert!(
            ImageDocument::from_slice(None, bad.as_bytes()).is_err(),
            "{bad}"
        );
    }
}
