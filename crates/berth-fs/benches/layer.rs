//! Layer benchmark: berth-fs against GNU tar (+ gzip) on a ~200 MB tree of
//! many small files and a few large ones. Run with `cargo bench -p berth-fs`;
//! prints a table of times and ratios (berth / GNU). Not a timed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_fs::{
    apply_layer, apply_layer_compressed, gzip_writer, tar_dir, ApplyOptions, TarOptions,
};

/// Compressible pseudo-text (roughly 3:1 with gzip -1).
fn fill(buf: &mut Vec<u8>, len: usize, seed: &mut u64) {
    const WORDS: &[&[u8]] = &[
        b"layer ",
        b"berth ",
        b"overlay ",
        b"snapshot ",
        b"digest ",
        b"tar ",
        b"\n",
        b"0x",
        b"ff",
    ];
    buf.clear();
    while buf.len() < len {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (*seed >> 33) as usize;
        if r & 3 == 0 {
            buf.push((r >> 8) as u8);
        } else {
            buf.extend_from_slice(WORDS[r % WORDS.len()]);
        }
    }
    buf.truncate(len);
}

fn make_tree(root: &Path) -> u64 {
    let mut seed = 42u64;
    let mut buf = Vec::new();
    let mut total = 0u64;
    for d in 0..100 {
        let dir = root.join(format!("dir{d:03}"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for f in 0..200 {
            let len = 512 + (f * 37 % 8) * 1024;
            fill(&mut buf, len, &mut seed);
            let p = if f % 2 == 0 {
                dir.join(format!("f{f}"))
            } else {
                dir.join(format!("sub/f{f}"))
            };
            std::fs::write(p, &buf).unwrap();
            total += len as u64;
        }
    }
    std::fs::create_dir(root.join("big")).unwrap();
    for i in 0..12 {
        fill(&mut buf, 10 << 20, &mut seed);
        std::fs::write(root.join(format!("big/blob{i}")), &buf).unwrap();
        total += 10 << 20;
    }
    std::os::unix::fs::symlink("big/blob0", root.join("link")).unwrap();
    total
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed(), v)
}

fn sh(cmd: &str) -> Duration {
    let t = Instant::now();
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
    t.elapsed()
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn main() {
    let tmp =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let total = make_tree(&src);
    sync();
    let s = src.display();
    let t = tmp.path().display();
    let mb = total as f64 / 1e6;
    println!("tree: {mb:.0} MB in {} files", 100 * 200 + 12);

    let plain = tmp.path().join("berth.tar");
    let gz = tmp.path().join("berth.tar.gz");
    let (berth_tar, _) = time(|| {
        let w = BufWriter::new(File::create(&plain).unwrap());
        let (mut w, _) = tar_dir(&src, w, &TarOptions::default()).unwrap();
        w.flush().unwrap();
    });
    let (berth_targz, _) = time(|| {
        let w = BufWriter::new(File::create(&gz).unwrap());
        let (enc, _) = tar_dir(&src, gzip_writer(w, 1), &TarOptions::default()).unwrap();
        enc.finish().unwrap().flush().unwrap();
    });
    let gnu_tar = sh(&format!("tar -C {s} -cf {t}/gnu.tar ."));
    let gnu_targz = sh(&format!("tar -C {s} -cf - . | gzip -1 > {t}/gnu.tar.gz"));

    let opts = ApplyOptions::default();
    let dst = |n: &str| {
        let d = tmp.path().join(n);
        std::fs::create_dir(&d).unwrap();
        d
    };
    let d1 = dst("a1");
    let (berth_x, _) =
        time(|| apply_layer(BufReader::new(File::open(&plain).unwrap()), &d1, &opts).unwrap());
    let d2 = dst("a2");
    let (berth_xz, _) = time(|| {
        apply_layer_compressed(BufReader::new(File::open(&gz).unwrap()), &d2, &opts).unwrap()
    });
    let d3 = dst("g1");
    let gnu_x = sh(&format!("tar -C {} -xpf {t}/gnu.tar", d3.display()));
    let d4 = dst("g2");
    let gnu_xz = sh(&format!("tar -C {} -xpzf {t}/gnu.tar.gz", d4.display()));

    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1e6;
    println!(
        "gzip -1 output: berth {:.1} MB, GNU {:.1} MB",
        size(&gz),
        size(&tmp.path().join("gnu.tar.gz"))
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>10}",
        "operation", "berth", "GNU", "ratio", "berth MB/s"
    );
    for (name, b, g) in [
        ("tar (uncompressed)", berth_tar, gnu_tar),
        ("tar + gzip -1", berth_targz, gnu_targz),
        ("apply (uncompressed)", berth_x, gnu_x),
        ("apply gzip", berth_xz, gnu_xz),
    ] {
        println!(
            "{:<28} {:>9.2}s {:>9.2}s {:>8.2} {:>10.0}",
            name,
            b.as_secs_f64(),
            g.as_secs_f64(),
            b.as_secs_f64() / g.as_secs_f64(),
            mb / b.as_secs_f64()
        );
    }
}
