//! BuildKit's tty display: a header `[+] Building 12.3s (7/9)`, one line
//! per step (`=> [2/5] RUN …  1.2s`, `=> CACHED …`, `=> ERROR …`), the last
//! few output lines of a running step dimmed under it, redrawn in place
//! (cursor up, erase line) at most ten times a second. The final frame
//! stays on screen; a failed step's whole output follows it.
//!
//! Every line is cut to the terminal's width (a wrapped line would throw
//! the cursor arithmetic off) and stripped of control characters (a step's
//! output must not move the cursor), and a live frame never grows taller
//! than the terminal (the cursor cannot go up past the top of the screen).

use std::io::Write;
use std::time::{Duration, Instant};

/// Output lines of a running step shown under it.
const LOG_LINES: usize = 6;
/// Least time between two live frames.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// Output kept per step for the failure report (the oldest lines go first).
const MAX_OUTPUT_BYTES: usize = 4 << 20;

const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";
const ERASE_LINE: &str = "\x1b[2K";
const ERASE_BELOW: &str = "\x1b[J";

/// The size of the terminal on standard error: its window size, else
/// `$COLUMNS`/`$LINES`, else 80×24.
pub(super) fn terminal_size() -> (usize, usize) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stderr()) {
        if ws.ws_col > 0 && ws.ws_row > 0 {
            return (usize::from(ws.ws_col), usize::from(ws.ws_row));
        }
    }
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    (env("COLUMNS", 80), env("LINES", 24))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StepState {
    Running,
    Done(Duration),
    Cached,
    Failed(Duration),
}

#[derive(Debug)]
struct Step {
    name: String,
    started: Instant,
    state: StepState,
    notes: Vec<String>,
    /// Output lines with their time since the step started.
    output: std::collections::VecDeque<(Duration, String)>,
    output_bytes: usize,
    /// Whether old output was dropped to stay under the limit.
    clipped: bool,
}

/// The live display's state.
#[derive(Debug)]
pub(super) struct TtyDisplay {
    width: usize,
    height: usize,
    started: Instant,
    /// Step `n` is `steps[n - 1]`.
    steps: Vec<Step>,
    warnings: Vec<String>,
    /// Lines of the frame now on screen.
    drawn: usize,
    last_draw: Option<Instant>,
    dirty: bool,
}

impl TtyDisplay {
    pub(super) fn new(width: usize, height: usize, now: Instant) -> TtyDisplay {
        TtyDisplay {
            width: width.max(20),
            height: height.max(4),
            started: now,
            steps: Vec::new(),
            warnings: Vec::new(),
            drawn: 0,
            last_draw: None,
            dirty: false,
        }
    }

    pub(super) fn start(&mut self, n: usize, name: &str, now: Instant) {
        // Numbers come from one counter, so they are dense; pad if not.
        while self.steps.len() + 1 < n {
            self.steps.push(Step::new(String::new(), now));
        }
        self.steps.push(Step::new(clean(name), now));
        self.dirty = true;
    }

    fn step(&mut self, n: usize) -> Option<&mut Step> {
        n.checked_sub(1).and_then(|i| self.steps.get_mut(i))
    }

    pub(super) fn line(&mut self, n: usize, text: &str, now: Instant) {
        if let Some(step) = self.step(n) {
            let at = now.saturating_duration_since(step.started);
            step.output_bytes += text.len();
            step.output.push_back((at, text.to_string()));
            while step.output_bytes > MAX_OUTPUT_BYTES {
                match step.output.pop_front() {
                    Some((_, old)) => step.output_bytes -= old.len(),
                    None => break,
                }
                step.clipped = true;
            }
            self.dirty = true;
        }
    }

    pub(super) fn note(&mut self, n: usize, text: &str, now: Instant) {
        if let Some(step) = self.step(n) {
            // The error itself is reported once the build ends.
            if text.starts_with("ERROR: ") {
                step.state = StepState::Failed(now.saturating_duration_since(step.started));
            } else {
                step.notes.push(clean(text));
            }
            self.dirty = true;
        }
    }

    pub(super) fn done(&mut self, n: usize, now: Instant) {
        if let Some(step) = self.step(n) {
            step.state = StepState::Done(now.saturating_duration_since(step.started));
            self.dirty = true;
        }
    }

    pub(super) fn cached(&mut self, n: usize, _now: Instant) {
        if let Some(step) = self.step(n) {
            step.state = StepState::Cached;
            self.dirty = true;
        }
    }

    pub(super) fn warn(&mut self, text: &str) {
        self.warnings.push(text.to_string());
    }

    /// Draws a live frame if something changed and the last one is old
    /// enough.
    pub(super) fn tick(&mut self, out: &mut dyn Write, now: Instant) {
        let due = self
            .last_draw
            .is_none_or(|t| now.saturating_duration_since(t) >= REDRAW_INTERVAL);
        if self.dirty && due {
            let frame = self.frame(now, None);
            self.draw(out, &frame);
            self.last_draw = Some(now);
            self.dirty = false;
        }
    }

    /// Draws the final frame (a step still running when the build failed
    /// is the one that failed), then each failed step's whole output and
    /// the warnings.
    pub(super) fn finish(&mut self, out: &mut dyn Write, ok: bool, now: Instant) {
        for step in &mut self.steps {
            if step.state == StepState::Running {
                let took = now.saturating_duration_since(step.started);
                step.state = if ok {
                    StepState::Done(took)
                } else {
                    StepState::Failed(took)
                };
            }
        }
        let frame = self.frame(now, Some(ok));
        self.draw(out, &frame);
        let mut text = String::new();
        for step in &self.steps {
            if !matches!(step.state, StepState::Failed(_)) || step.output.is_empty() {
                continue;
            }
            text.push_str("------\n");
            text.push_str(&format!(" > {}:\n", step.name));
            if step.clipped {
                text.push_str("[output clipped, showing the last lines]\n");
            }
            for (at, line) in &step.output {
                text.push_str(&format!("{:.3} {}\n", at.as_secs_f64(), clean(line)));
            }
            text.push_str("------\n");
        }
        for w in &self.warnings {
            text.push_str(w);
            text.push('\n');
        }
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.dirty = false;
    }

    /// The lines of a frame; `finished` is `Some(ok)` for the final one.
    fn frame(&self, now: Instant, finished: Option<bool>) -> Vec<String> {
        let settled = self
            .steps
            .iter()
            .filter(|s| s.state != StepState::Running)
            .count();
        let mut header = format!(
            "[+] Building {:.1}s ({settled}/{})",
            now.saturating_duration_since(self.started).as_secs_f64(),
            self.steps.len()
        );
        if finished == Some(true) {
            header.push_str(" FINISHED");
        }
        let mut body = Vec::new();
        for step in &self.steps {
            let (prefix, took, color) = match step.state {
                StepState::Running => ("", now.saturating_duration_since(step.started), ""),
                StepState::Done(d) => ("", d, ""),
                StepState::Cached => ("CACHED ", Duration::ZERO, ""),
                StepState::Failed(d) => ("ERROR ", d, RED),
            };
            let line = self.with_time(&format!(" => {prefix}{}", step.name), took);
            body.push(if color.is_empty() {
                line
            } else {
                format!("{color}{line}{RESET}")
            });
            for note in &step.notes {
                body.push(self.cut(&format!(" => => {note}")));
            }
            if step.state == StepState::Running {
                let skip = step.output.len().saturating_sub(LOG_LINES);
                for (_, text) in step.output.iter().skip(skip) {
                    let line = self.cut(&format!(" => => # {}", clean(text)));
                    body.push(format!("{DIM}{line}{RESET}"));
                }
            }
        }
        // A live frame must fit on the screen; the final one may scroll.
        if finished.is_none() {
            let room = self.height.saturating_sub(2);
            if body.len() > room {
                body.drain(..body.len() - room);
            }
        }
        let mut lines = Vec::with_capacity(body.len() + 1);
        lines.push(self.cut(&header));
        lines.extend(body);
        lines
    }

    /// `left` and the duration right-aligned, within the width.
    fn with_time(&self, left: &str, took: Duration) -> String {
        let time = format!("{:.1}s", took.as_secs_f64());
        let room = self.usable().saturating_sub(time.len() + 1);
        let left: String = left.chars().take(room).collect();
        let pad = room - left.chars().count() + 1;
        format!("{left}{}{time}", " ".repeat(pad))
    }

    /// Columns a line may use (one short of the width, so no terminal
    /// wraps it early).
    fn usable(&self) -> usize {
        self.width - 1
    }

    fn cut(&self, line: &str) -> String {
        line.chars().take(self.usable()).collect()
    }

    /// Replaces the frame on screen with `lines`.
    fn draw(&mut self, out: &mut dyn Write, lines: &[String]) {
        let mut buf = String::new();
        if self.drawn > 0 {
            buf.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in lines {
            buf.push_str(ERASE_LINE);
            buf.push_str(line);
            buf.push('\n');
        }
        buf.push_str(ERASE_BELOW);
        let _ = out.write_all(buf.as_bytes());
        let _ = out.flush();
        self.drawn = lines.len();
    }
}

impl Step {
    fn new(name: String, now: Instant) -> Step {
        Step {
            name,
            started: now,
            state: StepState::Running,
            notes: Vec::new(),
            output: std::collections::VecDeque::new(),
            output_bytes: 0,
            clipped: false,
        }
    }
}

/// `text` without control characters (a tab becomes a space), so it
/// cannot move the cursor or change colours.
fn clean(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// The frames in `out`, each as its lines without escapes.
    fn frames(out: &[u8]) -> Vec<Vec<String>> {
        let s = text(out);
        s.split("[+] Building")
            .skip(1)
            .map(|f| {
                let f = format!("[+] Building{f}");
                f.split('\n')
                    .map(strip_escapes)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .collect()
    }

    fn strip_escapes(line: &str) -> String {
        let mut out = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC [ params final-byte
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn first_frame_bytes() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(40, 10, t0);
        let mut out = Vec::new();
        d.start(1, "[1/2] FROM busybox", t0);
        d.tick(&mut out, ms(t0, 300));
        assert_eq!(
            text(&out),
            "\x1b[2K[+] Building 0.3s (0/1)\n\
             \x1b[2K => [1/2] FROM busybox             0.3s\n\
             \x1b[J"
        );
        // The step line fills the width but for one column.
        assert_eq!(frames(&out)[0][1].chars().count(), 39);
    }

    #[test]
    fn redraws_in_place_and_throttles() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 20, t0);
        let mut out = Vec::new();
        d.start(1, "[1/2] FROM busybox", t0);
        d.tick(&mut out, t0);
        d.done(1, ms(t0, 10));
        d.tick(&mut out, ms(t0, 10));
        d.start(2, "[2/2] RUN make", ms(t0, 20));
        d.tick(&mut out, ms(t0, 20));
        // Both within 100 ms of the first frame: not drawn yet.
        assert_eq!(frames(&out).len(), 1);
        d.tick(&mut out, ms(t0, 140));
        let s = text(&out);
        assert_eq!(frames(&out).len(), 2);
        // The second frame starts by going up over the first (2 lines).
        let second = s.find("\x1b[2A").expect("cursor up 2");
        assert!(second > s.find("(0/1)").unwrap());
        let last = frames(&out).pop().unwrap();
        assert_eq!(last[0], "[+] Building 0.1s (1/2)");
        assert!(last[1].starts_with(" => [1/2] FROM busybox") && last[1].ends_with(" 0.0s"));
        assert!(last[2].starts_with(" => [2/2] RUN make") && last[2].ends_with(" 0.1s"));
        // Nothing changed: no frame, however late.
        let before = out.len();
        d.tick(&mut out, ms(t0, 900));
        assert_eq!(out.len(), before);
    }

    #[test]
    fn running_step_shows_its_last_lines_dimmed() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 30, t0);
        let mut out = Vec::new();
        d.start(1, "[2/2] RUN make", t0);
        for i in 1..=9 {
            d.line(1, &format!("line {i}"), ms(t0, i));
        }
        d.tick(&mut out, ms(t0, 50));
        let s = text(&out);
        assert!(!s.contains("# line 3"), "{s}");
        for i in 4..=9 {
            assert!(
                s.contains(&format!("{DIM} => => # line {i}{RESET}")),
                "line {i}: {s:?}"
            );
        }
        // Once done, the output is no longer shown.
        d.done(1, ms(t0, 200));
        d.tick(&mut out, ms(t0, 200));
        let last = frames(&out).pop().unwrap();
        assert_eq!(last.len(), 2, "{last:?}");
    }

    #[test]
    fn cached_steps_and_notes() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 20, t0);
        let mut out = Vec::new();
        d.start(1, "[2/3] COPY a /a", t0);
        d.cached(1, t0);
        d.start(2, "exporting to image", t0);
        d.note(2, "writing image sha256:abc done", ms(t0, 5));
        d.done(2, ms(t0, 5));
        d.finish(&mut out, true, ms(t0, 1234));
        let last = frames(&out).pop().unwrap();
        assert_eq!(last[0], "[+] Building 1.2s (2/2) FINISHED");
        assert!(last[1].starts_with(" => CACHED [2/3] COPY a /a") && last[1].ends_with("0.0s"));
        assert!(last[2].starts_with(" => exporting to image"));
        assert_eq!(last[3], " => => writing image sha256:abc done");
        assert!(text(&out).ends_with("\x1b[J"));
    }

    #[test]
    fn failure_shows_the_whole_output() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 20, t0);
        let mut out = Vec::new();
        d.start(1, "[2/2] RUN make", t0);
        for i in 1..=10 {
            d.line(1, &format!("out {i}"), ms(t0, i * 100));
        }
        d.note(
            1,
            "ERROR: process \"make\" did not complete successfully",
            ms(t0, 1100),
        );
        d.warn("[Warning] unused");
        d.finish(&mut out, false, ms(t0, 1200));
        let s = text(&out);
        let last = frames(&out).pop().unwrap();
        assert_eq!(last[0], "[+] Building 1.2s (1/1)");
        assert!(last[1].starts_with(" => ERROR [2/2] RUN make") && last[1].ends_with("1.1s"));
        assert!(s.contains(&format!("{RED} => ERROR [2/2] RUN make")));
        let report = s.rsplit("\x1b[J").next().unwrap();
        let mut expected = String::from("------\n > [2/2] RUN make:\n");
        for i in 1..=10 {
            expected.push_str(&format!("{}.{}00 out {i}\n", i / 10, i % 10));
        }
        expected.push_str("------\n[Warning] unused\n");
        assert_eq!(report, expected);
    }

    #[test]
    fn a_running_step_fails_when_the_build_does() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 20, t0);
        let mut out = Vec::new();
        d.start(1, "[1/1] COPY x /", t0);
        d.finish(&mut out, false, ms(t0, 300));
        let last = frames(&out).pop().unwrap();
        assert!(last[1].starts_with(" => ERROR [1/1] COPY x /"), "{last:?}");
    }

    #[test]
    fn lines_fit_the_width_and_carry_no_escapes() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(30, 20, t0);
        let mut out = Vec::new();
        d.start(1, "[2/2] RUN a very long command line indeed", t0);
        d.line(1, "evil\x1b[2J\ttext\r", t0);
        d.tick(&mut out, ms(t0, 100));
        let s = text(&out);
        assert!(!s.contains("\x1b[2J"));
        for line in frames(&out).pop().unwrap() {
            assert!(line.chars().count() <= 29, "{line:?}");
        }
        assert!(s.contains(" => => # evil[2J text"));
        assert!(s.contains(" => [2/2] RUN a very lon 0.1s"), "{s:?}");
    }

    #[test]
    fn live_frames_fit_the_screen() {
        let t0 = Instant::now();
        let mut d = TtyDisplay::new(60, 6, t0);
        let mut out = Vec::new();
        for n in 1..=10 {
            d.start(n, &format!("step {n}"), t0);
            d.done(n, t0);
        }
        d.tick(&mut out, t0);
        let live = frames(&out).pop().unwrap();
        assert_eq!(live.len(), 5);
        assert!(live[4].starts_with(" => step 10"));
        d.finish(&mut out, true, ms(t0, 100));
        // The final frame goes up over the live one and shows every step.
        let s = text(&out);
        assert!(s.contains("\x1b[5A"));
        assert_eq!(frames(&out).pop().unwrap().len(), 11);
    }
}
