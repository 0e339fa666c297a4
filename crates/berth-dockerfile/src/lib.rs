//! The Dockerfile frontend: parser directives, the spanned syntax tree, heredocs,
//! typed instructions, shell-word expansion, build stages, the `dump` printer
//! and lint.
//!
//! It follows BuildKit's `frontend/dockerfile` packages byte for byte where the
//! conformance data in `shared/conformance` says so.

pub mod shell;
