//! Independent stages in parallel. RUN starts containers from this
//! (single-threaded) process, so a stage that shares nothing with its
//! siblings is built by a worker process instead: the same `berth build`
//! with `--stage-worker`, which builds the stage into the store and hands
//! its state back as JSON. The parent meanwhile builds the other sibling
//! itself, then takes the workers' states as if it had built them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use berth_oci::{Digest, ImageConfig};
use berth_store::{LayerRecord, ScratchDir};
use serde_json::{json, Value};

use super::{Builder, State};
use crate::{Error, Result, WorkerTask};

/// Progress numbers of worker `k` start at `(k + 1) * PROGRESS_BLOCK`.
const PROGRESS_BLOCK: usize = 1000;

/// Worker processes building some of a stage's dependencies; killed when
/// dropped before they were joined (the build failed meanwhile).
pub(super) struct Workers {
    running: Vec<Worker>,
}

struct Worker {
    stage: usize,
    child: Child,
    /// Holds `result.json` (and `progress.log`, see [`PROGRESS_LOG`]).
    dir: ScratchDir,
}

/// Under the tty display a worker's progress (its standard error) goes to
/// this file in its directory instead of the terminal, where it would
/// break the display; its tail is shown if the worker fails.
const PROGRESS_LOG: &str = "progress.log";
/// Lines of a failed worker's log shown.
const LOG_TAIL_LINES: usize = 40;

impl Workers {
    /// Whether a worker builds `stage`.
    pub(super) fn builds(&self, stage: usize) -> bool {
        self.running.iter().any(|w| w.stage == stage)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.running {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}

impl Builder<'_, '_> {
    /// `stage` and every stage it needs, transitively.
    fn closure(&self, stage: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![stage];
        while let Some(s) = todo.pop() {
            if seen.insert(s) {
                todo.extend(self.deps.get(s).into_iter().flatten().copied());
            }
        }
        seen
    }

    /// Starts a worker for each of `deps` that is not built yet and shares
    /// no stage with the others, keeping the last such one for this
    /// process. Starts none without `opts.parallel`.
    pub(super) fn start_workers(&mut self, deps: &[usize]) -> Result<Workers> {
        let mut workers = Workers {
            running: Vec::new(),
        };
        let Some(command) = self.opts.parallel.clone() else {
            return Ok(workers);
        };
        let pending: Vec<(usize, BTreeSet<usize>)> = deps
            .iter()
            .filter(|d| !self.done.contains_key(d))
            .map(|&d| (d, self.closure(d)))
            .collect();
        let independent: Vec<usize> = pending
            .iter()
            .filter(|(d, mine)| {
                pending
                    .iter()
                    .all(|(other, theirs)| other == d || mine.is_disjoint(theirs))
            })
            .map(|(d, _)| *d)
            .collect();
        let Some((_, delegated)) = independent.split_last() else {
            return Ok(workers);
        };
        for &stage in delegated {
            let dir = self.backend.store().scratch_dir("stage-worker")?;
            let task = WorkerTask {
                stage,
                progress_offset: (self.worker_count + 1) * PROGRESS_BLOCK,
                output: dir.path().join("result.json"),
            };
            self.worker_count += 1;
            let mut cmd = Command::new(&command.program);
            cmd.args(&command.args)
                .arg("--stage-worker")
                .arg(task.to_arg())
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            if self.opts.progress == crate::ProgressMode::Tty {
                let log = dir.path().join(PROGRESS_LOG);
                let file = std::fs::File::create(&log).map_err(|e| Error::io(log.display(), e))?;
                cmd.stderr(file);
            }
            let child = cmd
                .spawn()
                .map_err(|e| Error::io(command.program.display(), e))?;
            workers.running.push(Worker { stage, child, dir });
        }
        Ok(workers)
    }

    /// Waits for the workers and takes the stages they built.
    pub(super) fn join_workers(&mut self, mut workers: Workers) -> Result<()> {
        for mut w in std::mem::take(&mut workers.running) {
            let status = w.child.wait().map_err(|e| Error::io("stage worker", e))?;
            if !status.success() {
                let log = w.dir.path().join(PROGRESS_LOG);
                let Ok(text) = std::fs::read_to_string(&log) else {
                    return Err(Error::StepFailed(format!(
                        "building stage {} failed (its error is shown above)",
                        self.stage_name(w.stage)
                    )));
                };
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines
                    .get(lines.len().saturating_sub(LOG_TAIL_LINES)..)
                    .unwrap_or_default()
                    .join("\n");
                return Err(Error::StepFailed(format!(
                    "building stage {} failed:\n{tail}",
                    self.stage_name(w.stage)
                )));
            }
            self.merge_worker_result(&w.dir.path().join("result.json"))?;
        }
        Ok(())
    }

    /// A worker's answer: the states of the stages it built.
    pub(super) fn write_worker_result(&self, path: &Path) -> Result<()> {
        let states: Vec<Value> = self
            .done
            .iter()
            .map(|(index, s)| {
                let layers: Vec<Value> = s
                    .layers
                    .iter()
                    .map(|l| {
                        json!({
                            "diff_id": l.diff_id,
                            "blob": l.blob,
                            "media_type": l.media_type,
                            "size": l.size,
                        })
                    })
                    .collect();
                json!({
                    "stage": index,
                    "config": s.config,
                    "layers": layers,
                    "chain": s.chain,
                    "time": s.time,
                })
            })
            .collect();
        let result = json!({
            "states": states,
            "consumed": self.consumed,
            "steps": self.steps,
            "cached": self.cached,
        });
        let bytes = serde_json::to_vec(&result)
            .map_err(|e| Error::Invalid(format!("encoding the stage worker's result: {e}")))?;
        berth_fs::write_atomic(path, &bytes)?;
        Ok(())
    }

    fn merge_worker_result(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        let parsed: WorkerResult = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        for s in parsed.states {
            let layers = s
                .layers
                .into_iter()
                .map(|l| LayerRecord {
                    diff_id: l.diff_id,
                    blob: l.blob,
                    media_type: l.media_type,
                    size: l.size,
                })
                .collect();
            self.done.entry(s.stage).or_insert(State {
                config: s.config,
                layers,
                chain: s.chain,
                time: s.time,
            });
        }
        self.consumed.extend(parsed.consumed);
        self.steps += parsed.steps;
        self.cached += parsed.cached;
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct WorkerResult {
    states: Vec<WorkerState>,
    consumed: BTreeSet<String>,
    steps: usize,
    cached: usize,
}

#[derive(serde::Deserialize)]
struct WorkerState {
    stage: usize,
    config: ImageConfig,
    layers: Vec<WorkerLayer>,
    chain: Option<Digest>,
    time: String,
}

#[derive(serde::Deserialize)]
struct WorkerLayer {
    diff_id: Digest,
    blob: Digest,
    media_type: String,
    size: u64,
}
