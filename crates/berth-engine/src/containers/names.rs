//! Generated container names (`adjective_surname`), as Docker gives a
//! container created without `--name`. The word lists are berth's own.

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ample", "ardent", "astute", "bold", "brave", "bright", "brisk", "calm",
    "candid", "cheerful", "clever", "cosmic", "crisp", "curious", "daring", "deft", "eager",
    "earnest", "fearless", "fervent", "gentle", "gallant", "glad", "hardy", "humble", "jolly",
    "keen", "kind", "lively", "loyal", "lucid", "merry", "mellow", "nimble", "noble", "patient",
    "placid", "plucky", "polite", "proud", "quick", "quiet", "radiant", "rapid", "serene", "sharp",
    "shiny", "smart", "snug", "spry", "steady", "sunny", "swift", "tender", "tidy", "upbeat",
    "vivid", "warm", "wise", "witty", "zealous", "zesty",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "banach",
    "bardeen",
    "bell",
    "boole",
    "borg",
    "bose",
    "cantor",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "gauss",
    "germain",
    "hamilton",
    "hawking",
    "hertz",
    "hilbert",
    "hopper",
    "hypatia",
    "joule",
    "kepler",
    "knuth",
    "lamarr",
    "laplace",
    "leibniz",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "minsky",
    "neumann",
    "newton",
    "noether",
    "ohm",
    "pascal",
    "pasteur",
    "planck",
    "poincare",
    "ritchie",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wiles",
    "wozniak",
    "yalow",
    "zuse",
];

/// A name built from the random `seed` (e.g. bytes of the new container's ID).
pub fn generate(seed: u64) -> String {
    let adjective = ADJECTIVES[(seed % ADJECTIVES.len() as u64) as usize];
    let surname = SURNAMES[((seed / ADJECTIVES.len() as u64) % SURNAMES.len() as u64) as usize];
    format!("{adjective}_{surname}")
}

/// Docker's rule for `--name`: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/`
/// is allowed and dropped).
pub fn validate(name: &str) -> Option<&str> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut bytes = name.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphanumeric()
        && name.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for seed in [0, 1, 63, 64, 1000, u64::MAX] {
            let name = generate(seed);
            assert_eq!(validate(&name), Some(name.as_str()));
        }
    }

    #[test]
    fn docker_name_rule() {
        assert_eq!(validate("/web"), Some("web"));
        assert_eq!(validate("a"), None);
        assert_eq!(validate("-x"), None);
        assert_eq!(validate("a b"), None);
        assert_eq!(validate("web_1.b-c"), Some("web_1.b-c"));
    }
}
