//! Matching a 20,000-file build context against a typical `.dockerignore`
//! (the shared big-context case ignores 90% of it), walking directories top
//! down with parent results as a context sender does.
//!
//! Run with `cargo bench -p berth-dockerignore --bench matcher`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use berth_dockerignore::{MatchInfo, PatternMatcher};

fn main() {
    let patterns = [
        "**/*.log",
        "node_modules",
        "data/**",
        "!data/keep/**",
        ".git",
        "**/__pycache__",
        "*.tmp",
        "build/*/cache",
        "docs/**/*.pdf",
        "!docs/manual.pdf",
    ];
    let matcher = PatternMatcher::new(&patterns).unwrap();
    // 20 top-level dirs × 10 subdirs × 100 files.
    let mut paths = Vec::new();
    for top in [
        "data",
        "src",
        "node_modules",
        "docs",
        "build",
        "lib",
        "tests",
        "static",
        "media",
        "vendor",
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        "g",
        "h",
        "i",
        "j",
    ] {
        for sub in 0..10 {
            for file in 0..100 {
                let ext = ["py", "log", "tmp", "txt", "pdf"][file % 5];
                paths.push((
                    top.to_string(),
                    format!("{top}/d{sub}"),
                    format!("{top}/d{sub}/f{file}.{ext}"),
                ));
            }
        }
    }
    let mut samples = Vec::new();
    let mut excluded = 0;
    for _ in 0..20 {
        let start = Instant::now();
        excluded = 0;
        let mut last_top = String::new();
        let mut last_sub = String::new();
        let (mut top_info, mut sub_info) = (MatchInfo::default(), MatchInfo::default());
        for (top, sub, file) in &paths {
            if *top != last_top {
                top_info = matcher
                    .matches_using_parent_results(top, &MatchInfo::default())
                    .unwrap()
                    .1;
                last_top.clone_from(top);
            }
            if *sub != last_sub {
                sub_info = matcher
                    .matches_using_parent_results(sub, &top_info)
                    .unwrap()
                    .1;
                last_sub.clone_from(sub);
            }
            let (m, _) = matcher
                .matches_using_parent_results(file, &sub_info)
                .unwrap();
            excluded += usize::from(black_box(m));
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "dockerignore: {} paths, {excluded} excluded, {} patterns: median {:?}  min {:?}",
        paths.len(),
        patterns.len(),
        samples[samples.len() / 2],
        samples[0]
    );
}
