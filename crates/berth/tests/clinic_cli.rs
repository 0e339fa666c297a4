//! The seed workflow on the real example: a Debian bookworm python base
//! made with `mmdebstrap` (plus the host's CA bundle, since this network
//! re-signs TLS), `berth build` of `examples/clinic` whose RUN installs
//! Django and gunicorn from the package index, then the site running with
//! `-p 8000:8000` and answering HTTP.
//!
//! The build runs RUN steps with `--network host` (the host's namespace,
//! where the package index is reachable) so that no bridge or NAT rule is
//! made on the host; the container then runs in the fixture's own network
//! namespace like every other test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_clinic_example_builds_and_answers_http() {
    let f = Fixture::new();
    let work = f.dir.path();
    let base = work.join("python-rootfs.tar");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/base/make-python.sh");
    run_ok(
        Command::new("bash")
            .arg(&script)
            .arg(&base)
            .env("GEN", work.join("gen")),
    );
    // The host's CA bundle, so pip trusts this network's TLS.
    let ca = work.join("ca/etc/ssl/certs");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        ca.join("ca-certificates.crt"),
    )
    .unwrap();
    run_ok(
        Command::new("tar")
            .arg("--append")
            .arg("-f")
            .arg(&base)
            .arg("-C")
            .arg(work.join("ca"))
            .arg("./etc/ssl/certs/ca-certificates.crt"),
    );
    f.ok(&[
        "import",
        "--change",
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
        "--change",
        "CMD [\"python3\"]",
        base.to_str().unwrap(),
        "localbase/python:3.11",
    ]);

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/clinic");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(f.root())
        .args([
            "build",
            "--progress",
            "plain",
            "--network",
            "host",
            "-t",
            "clinic",
        ])
        .arg(&example)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Successfully installed"), "{log}");

    f.ok(&["run", "-d", "--name", "clinic", "-p", "8000:8000", "clinic"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let page = loop {
        let out = f
            .in_netns("curl")
            .args(["-sf", "-m", "3", "http://127.0.0.1:8000/"])
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the site did not answer; logs: {}",
            f.ok(&["logs", "clinic"])
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(page.contains("Online clinic: our doctors"), "{page}");
    assert!(page.contains("Dr. Ada Moreau"), "{page}");
    // The migration ran in the container (its CMD), and a doctor's page works.
    let out = f
        .in_netns("curl")
        .args(["-sf", "-m", "3", "http://127.0.0.1:8000/doctors/2/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Cardiology"));
    assert!(f
        .ok(&["logs", "clinic"])
        .contains("Applying doctors.0002_seed_doctors... OK"));
}
