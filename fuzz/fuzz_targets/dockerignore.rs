//! Read arbitrary ignore files and match arbitrary paths. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, path) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"a/b/c"[..]),
    };
    let Ok(patterns) = berth_dockerignore::read_patterns(file) else {
        return;
    };
    if let Ok(m) = berth_dockerignore::PatternMatcher::new(&patterns) {
        let path = String::from_utf8_lossy(path);
        let _ = m.matches_or_parent_matches(&path);
        let mut parent = berth_dockerignore::MatchInfo::default();
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match m.matches_using_parent_results(&prefix, &parent) {
                Ok((_, info)) => parent = info,
                Err(_) => break,
            }
        }
    }
});
