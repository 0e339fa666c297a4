//! The `berth` binary: the docker-compatible command line.
fn main() {}
