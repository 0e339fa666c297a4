//! Parse + plan + expand a generated 10,000-instruction Dockerfile; prints
//! the median and fastest of repeated runs. Goal (issue 2): under 5 ms.
//!
//! Run with `cargo bench -p berth-dockerfile --bench frontend`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use berth_dockerfile::stages::{plan, platform_args};

/// The allocator the `berth` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A realistic mix: stages, ARG/ENV with expansion, continuations, COPY
/// with flags, JSON forms, heredocs, comments.
fn generate(instructions: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\n");
    // ARG BASE above is instruction 1.
    let mut n = 0;
    let mut stage = 0;
    while n + 1 < instructions {
        match n % 25 {
            0 => {
                out.push_str(&format!("FROM ${{BASE}} AS stage{stage}\n"));
                stage += 1;
            }
            1 => out.push_str(&format!("ARG VERSION_{n}=1.{n}\n")),
            2 => out.push_str(&format!("ENV APP_HOME=/srv/app{n} PATH=/opt/bin:$PATH\n")),
            3 => out.push_str("# install the packages\nRUN apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n       curl ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*\n"),
            4 => out.push_str(&format!("COPY --chown=app:app --chmod=644 src/{n}/*.py ${{APP_HOME}}/lib/\n")),
            5 => out.push_str("WORKDIR ${APP_HOME}\n"),
            6 => out.push_str(&format!("LABEL org.opencontainers.image.version=\"${{VERSION_{}}}\" maintainer=\"clinic team\"\n", n - 5)),
            7 => out.push_str("RUN <<EOF\nset -e\necho building\nEOF\n"),
            8 => out.push_str("EXPOSE 8000/tcp 9000\n"),
            9 => out.push_str("CMD [\"python3\", \"manage.py\", \"runserver\", \"0.0.0.0:8000\"]\n"),
            10 => out.push_str("USER ${APP_USER:-app}\n"),
            11 => out.push_str("RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"),
            12 => out.push_str("HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/ || exit 1\n"),
            13 => out.push_str("VOLUME [\"/data\", \"/logs\"]\n"),
            14 => out.push_str("ADD --checksum=sha256:0123 https://example.com/x.tar.gz /tmp/\n"),
            15 if stage > 1 => out.push_str(&format!("COPY --from=stage{} /srv /srv\n", stage - 2)),
            _ => out.push_str(&format!("RUN echo step {n} $APP_HOME\n")),
        }
        n += 1;
    }
    out
}

fn time<F: FnMut()>(runs: usize, mut f: F) -> (Duration, Duration) {
    // BERTH_BENCH_RUNS lowers the repetitions (for profiling under valgrind).
    let runs = std::env::var("BERTH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(runs);
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

fn main() {
    let source = generate(10_000);
    let df = berth_dockerfile::parse(source.as_bytes()).expect("generated file parses");
    let count = df.instructions.len();
    let args = BTreeMap::new();
    let builtins = platform_args("linux", "amd64", "");

    let (parse_med, parse_min) = time(50, || {
        black_box(berth_dockerfile::parse(black_box(source.as_bytes())).ok());
    });
    let (all_med, all_min) = time(50, || {
        let df = berth_dockerfile::parse(black_box(source.as_bytes())).expect("parses");
        let plan = plan(&df).expect("valid");
        let meta = plan.meta_env(&args, &builtins).expect("meta args");
        for stage in &plan.stages {
            black_box(plan.expand_stage(stage, &args, &meta).expect("expands"));
        }
    });
    let (lint_med, _) = time(20, || {
        black_box(berth_dockerfile::lint::lint(black_box(source.as_bytes())));
    });
    println!(
        "dockerfile: {count} instructions, {} lines, {} KiB",
        source.lines().count(),
        source.len() / 1024
    );
    println!("parse:                  median {parse_med:?}  min {parse_min:?}");
    println!("parse + plan + expand:  median {all_med:?}  min {all_min:?}  (goal < 5 ms)");
    println!("lint:                   median {lint_med:?}");
}
