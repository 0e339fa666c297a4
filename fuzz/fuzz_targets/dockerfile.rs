//! Parse, dump, type, plan, expand and lint arbitrary Dockerfiles; expand
//! arbitrary words. Nothing may panic.
#![no_main]

use std::collections::BTreeMap;

use berth_dockerfile::shell::Lexer;
use berth_dockerfile::stages::{plan_lenient, platform_args, Env};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = berth_dockerfile::lint::lint(data);
    let _ = report.render("Dockerfile", &String::from_utf8_lossy(data));
    if let Ok(df) = berth_dockerfile::parse(data) {
        let _ = berth_dockerfile::dump(&df);
        let (plan, _) = plan_lenient(&df);
        let args = BTreeMap::from([("A".to_string(), "x y".to_string())]);
        if let Ok(meta) = plan.meta_env(&args, &platform_args("linux", "amd64", "")) {
            for stage in &plan.stages {
                let _ = plan.expand_stage(stage, &args, &meta);
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let mut env = Env::new();
    env.set("A", "a b");
    env.set("EMPTY", "");
    for escape in ['\\', '`'] {
        let mut lexer = Lexer::new(escape);
        let _ = lexer.process_word_with_matches(&text, &env);
        lexer.raw_quotes = true;
        lexer.skip_unset_env = true;
        let _ = lexer.process_words(&text, &env);
    }
});
