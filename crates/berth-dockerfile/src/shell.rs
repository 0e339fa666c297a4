//! Shell-word expansion as BuildKit's `shell.Lex`.
