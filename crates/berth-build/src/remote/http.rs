//! HTTP(S) downloads with `ureq` (blocking, no threads: the builder forks
//! containers, so it must stay single-threaded; no resolve or global
//! timeout is set because ureq would resolve names on a thread for them).
//! TLS is verified against the system's CA bundle (`SSL_CERT_FILE`, else
//! Debian's, Red Hat's, SUSE's or Alpine's path), so a network that
//! re-signs TLS with a locally trusted CA works; Mozilla's roots are the
//! fallback. Proxies come from the usual environment variables.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use berth_oci::{Algorithm, Digest, DigestWriter};

use super::redact;
use crate::{Error, Result};

/// Where distributions keep their CA bundle.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's root certificates, `None` when no bundle is found.
fn system_roots() -> Option<Vec<ureq::tls::Certificate<'static>>> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let paths = from_env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    for path in paths {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return Some(certs);
        }
    }
    None
}

/// An HTTP agent for the builder: system CA roots, a connect timeout and
/// a read timeout (a stalled server fails instead of hanging the build).
pub(crate) fn http_agent() -> ureq::Agent {
    let roots = match system_roots() {
        Some(certs) => ureq::tls::RootCerts::new_with_certs(&certs),
        None => ureq::tls::RootCerts::WebPki,
    };
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(300)))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The name ADD gives a downloaded file: the last segment of the URL's
/// path (percent-decoded), or BuildKit's `__unnamed__`.
pub(crate) fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split_once('/')
        .map_or("", |(_, p)| p);
    // Go's `path.Base`: trailing slashes do not count.
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let name = percent_decode(last);
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        "__unnamed__".to_string()
    } else {
        name
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Downloads `url` into the new file `dest` (mode 0600, its mtime from
/// `Last-Modified` when the server sends one); fails past `limit` bytes.
/// Returns the content's digest in `algorithm`.
pub(crate) fn download(url: &str, dest: &Path, limit: u64, algorithm: Algorithm) -> Result<Digest> {
    let shown = redact(url);
    let fail = |why: String| Error::StepFailed(format!("failed to fetch {shown}: {why}"));
    let response = http_agent().get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => fail(format!("invalid response status {code}")),
        other => fail(other.to_string()),
    })?;
    let modified = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::time::parse_http_date);
    let mut body = response.into_body().into_reader().take(limit + 1);
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| Error::io(dest.display(), e))?
    };
    let mut hasher = DigestWriter::new(algorithm);
    let mut writer = std::io::BufWriter::new(&file);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e.to_string())),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        writer
            .write_all(chunk)
            .map_err(|e| Error::io(dest.display(), e))?;
    }
    writer.flush().map_err(|e| Error::io(dest.display(), e))?;
    drop(writer);
    let (digest, size) = hasher.finish();
    if size > limit {
        return Err(fail(format!("the content is larger than {limit} bytes")));
    }
    if let Some(secs) = modified {
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::futimens(&file, &times).map_err(|e| Error::io(dest.display(), e.into()))?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_path() {
        assert_eq!(url_file_name("https://h/a/b/app.tar.gz"), "app.tar.gz");
        assert_eq!(url_file_name("https://h/a/my%20file?x=1#y"), "my file");
        assert_eq!(url_file_name("https://h/"), "__unnamed__");
        assert_eq!(url_file_name("https://h"), "__unnamed__");
        assert_eq!(url_file_name("https://h/dir/"), "dir");
        assert_eq!(url_file_name("https://h/%2E%2E"), "__unnamed__");
        assert_eq!(url_file_name("https://h/a%2Fb"), "__unnamed__");
        assert_eq!(url_file_name("https://h/100%"), "100%");
    }

    #[test]
    fn the_system_bundle_is_found() {
        if Path::new(CA_BUNDLES[0]).exists() {
            assert!(system_roots().is_some_and(|c| !c.is_empty()));
        }
    }
}
