//! Build progress as BuildKit shows it: plain (`#N [stage k/n]
//! INSTRUCTION`, the step's output lines with their time, `#N CACHED`,
//! `#N DONE 0.1s`), a live tty display redrawn in place ([`tty`]), or
//! nothing (`-q`). The builder reports events (a step starts, prints a
//! line, gets a note, ends or is cached); the display decides how they look.

mod tty;

use std::io::Write;
use std::time::Instant;

use crate::ProgressMode;
use tty::TtyDisplay;

/// Where build progress goes, and how it is shown.
pub struct Progress<'w> {
    out: &'w mut dyn Write,
    next: usize,
    display: Display,
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.display {
            Display::Plain => "plain",
            Display::Tty(_) => "tty",
            Display::Quiet => "quiet",
        };
        f.debug_struct("Progress")
            .field("display", &kind)
            .field("steps", &self.next)
            .finish()
    }
}

enum Display {
    Plain,
    Tty(Box<TtyDisplay>),
    Quiet,
}

impl<'w> Progress<'w> {
    /// A display of kind `mode` writing to `out` (the tty display sizes
    /// itself to the terminal on standard error).
    pub fn new(mode: ProgressMode, out: &'w mut dyn Write) -> Progress<'w> {
        let display = match mode {
            ProgressMode::Plain => Display::Plain,
            ProgressMode::Quiet => Display::Quiet,
            ProgressMode::Tty => {
                let (width, height) = tty::terminal_size();
                Display::Tty(Box::new(TtyDisplay::new(width, height, Instant::now())))
            }
        };
        Progress {
            out,
            next: 0,
            display,
        }
    }

    /// Numbers the next steps from `n + 1` (a stage worker's, so they do
    /// not collide with its parent's).
    pub(crate) fn number_from(&mut self, n: usize) {
        self.next = n;
    }

    /// Whether nothing is shown.
    pub fn is_quiet(&self) -> bool {
        matches!(self.display, Display::Quiet)
    }

    /// A step starts; returns its number and start time.
    pub fn start(&mut self, name: &str) -> (usize, Instant) {
        self.next += 1;
        let n = self.next;
        let now = Instant::now();
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "#{n} {name}");
            }
            Display::Tty(t) => {
                t.start(n, name, now);
                t.tick(self.out, now);
            }
            Display::Quiet => {}
        }
        (n, now)
    }

    /// A line of step `n`'s output (a RUN's stdout and stderr).
    pub fn line(&mut self, n: usize, since: Instant, text: &str) {
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "#{n} {:.3} {text}", since.elapsed().as_secs_f64());
            }
            Display::Tty(t) => {
                let now = Instant::now();
                t.line(n, text, now);
                t.tick(self.out, now);
            }
            Display::Quiet => {}
        }
    }

    /// A status line of step `n` (`writing image … done`, a cache miss
    /// explained, `ERROR: …`).
    pub fn note(&mut self, n: usize, text: &str) {
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "#{n} {text}");
            }
            Display::Tty(t) => {
                let now = Instant::now();
                t.note(n, text, now);
                t.tick(self.out, now);
            }
            Display::Quiet => {}
        }
    }

    /// Step `n`, started at `since`, is done.
    pub fn done(&mut self, n: usize, since: Instant) {
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "#{n} DONE {:.1}s", since.elapsed().as_secs_f64());
                let _ = writeln!(self.out);
            }
            Display::Tty(t) => {
                let now = Instant::now();
                t.done(n, now);
                t.tick(self.out, now);
            }
            Display::Quiet => {}
        }
    }

    /// Step `n` was reused from the cache.
    pub fn cached(&mut self, n: usize) {
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "#{n} CACHED");
                let _ = writeln!(self.out);
            }
            Display::Tty(t) => {
                let now = Instant::now();
                t.cached(n, now);
                t.tick(self.out, now);
            }
            Display::Quiet => {}
        }
    }

    /// A warning about the whole build (the tty display shows it under
    /// its final frame).
    pub fn warn(&mut self, text: &str) {
        match &mut self.display {
            Display::Plain => {
                let _ = writeln!(self.out, "{text}");
            }
            Display::Tty(t) => t.warn(text),
            Display::Quiet => {}
        }
    }

    /// The build ended (`ok` false: it failed): the tty display draws its
    /// final frame, and the failed step's whole output.
    pub fn finish(&mut self, ok: bool) {
        if let Display::Tty(t) = &mut self.display {
            t.finish(self.out, ok, Instant::now());
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn plain_output_is_buildkits() {
        let mut out = Vec::new();
        {
            let mut p = Progress::new(ProgressMode::Plain, &mut out);
            let (n, t) = p.start("[1/2] FROM busybox");
            p.done(n, t);
            let (n, _) = p.start("[2/2] RUN true");
            p.cached(n);
            p.warn("[Warning] careful");
            p.finish(true);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("#1 [1/2] FROM busybox\n#1 DONE 0.0s\n\n"));
        assert!(text.ends_with("#2 [2/2] RUN true\n#2 CACHED\n\n[Warning] careful\n"));
    }

    #[test]
    fn quiet_writes_nothing() {
        let mut out = Vec::new();
        {
            let mut p = Progress::new(ProgressMode::Quiet, &mut out);
            assert!(p.is_quiet());
            let (n, t) = p.start("x");
            p.line(n, t, "hello");
            p.note(n, "note");
            p.done(n, t);
            p.finish(false);
        }
        assert!(out.is_empty());
    }
}
