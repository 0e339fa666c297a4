//! BuildKit's plain progress output: `#N [stage k/n] INSTRUCTION`, the
//! step's output lines with their time, `#N CACHED`, `#N DONE 0.1s`.

use std::io::Write;
use std::time::Instant;

/// Plain progress output, BuildKit style.
pub(crate) struct Progress<'w> {
    pub out: &'w mut dyn Write,
    pub quiet: bool,
    pub next: usize,
}

impl Progress<'_> {
    pub(crate) fn start(&mut self, name: &str) -> (usize, Instant) {
        self.next += 1;
        if !self.quiet {
            let _ = writeln!(self.out, "#{} {name}", self.next);
        }
        (self.next, Instant::now())
    }

    pub(crate) fn line(&mut self, n: usize, since: Instant, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} {:.3} {text}", since.elapsed().as_secs_f64());
        }
    }

    pub(crate) fn note(&mut self, n: usize, text: &str) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} {text}");
        }
    }

    pub(crate) fn done(&mut self, n: usize, since: Instant) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} DONE {:.1}s", since.elapsed().as_secs_f64());
            let _ = writeln!(self.out);
        }
    }

    pub(crate) fn cached(&mut self, n: usize) {
        if !self.quiet {
            let _ = writeln!(self.out, "#{n} CACHED");
            let _ = writeln!(self.out);
        }
    }
}
