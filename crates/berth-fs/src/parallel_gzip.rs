//! gzip on every core: the stream is cut into fixed-size chunks, each
//! compressed by a worker thread into a gzip member of its own, and the
//! members written in order. Concatenated members are one valid gzip
//! stream (RFC 1952 §2.2), which Docker's, containerd's and berth's
//! readers all take. The output depends only on the input and the chunk
//! size, never on scheduling, so builds stay reproducible.
//!
//! The threads live only between [`ParallelGzWriter::new`] and
//! [`ParallelGzWriter::finish`] (or drop): a process that forks containers
//! from a single thread (berth's builder) must not hold one across a fork.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes of input per gzip member.
pub const CHUNK_BYTES: usize = 1 << 20;

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A gzip writer compressing chunks in parallel; call
/// [`ParallelGzWriter::finish`] to get the inner writer back.
pub struct ParallelGzWriter<W: Write> {
    /// `None` once finished.
    inner: Option<W>,
    chunk: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    sent: u64,
    written: u64,
    /// Compressed members that arrived before their turn.
    waiting: BTreeMap<u64, Vec<u8>>,
}

impl<W: Write> std::fmt::Debug for ParallelGzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzWriter")
            .field("sent", &self.sent)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

fn compress(level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut gz = crate::gzip_writer(Vec::with_capacity(data.len() / 2 + 64), level);
    gz.write_all(data)?;
    gz.finish()
}

impl<W: Write> ParallelGzWriter<W> {
    /// Compresses at `level` with one thread per core (at most 4).
    pub fn new(inner: W, level: u32) -> io::Result<ParallelGzWriter<W>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(threads * 2);
        let (done_tx, done) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let worker = std::thread::Builder::new()
                .name("gzip".into())
                .spawn(move || loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, data)) = job else { return };
                    if done_tx.send((seq, compress(level, &data))).is_err() {
                        return;
                    }
                })?;
            workers.push(worker);
        }
        Ok(ParallelGzWriter {
            inner: Some(inner),
            chunk: Vec::with_capacity(CHUNK_BYTES),
            jobs: Some(jobs),
            done,
            workers,
            sent: 0,
            written: 0,
            waiting: BTreeMap::new(),
        })
    }

    fn send_chunk(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        jobs.send((self.sent, data))
            .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
        self.sent += 1;
        // Write what is ready without waiting.
        while let Ok(done) = self.done.try_recv() {
            self.accept(done)?;
        }
        Ok(())
    }

    /// Takes one compressed member and writes every member now in turn.
    fn accept(&mut self, (seq, member): Done) -> io::Result<()> {
        self.waiting.insert(seq, member?);
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
        while let Some(member) = self.waiting.remove(&self.written) {
            inner.write_all(&member)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Compresses what is left, writes every member and stops the threads.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still makes one (empty) member.
        if !self.chunk.is_empty() || self.sent == 0 {
            self.send_chunk()?;
        }
        self.jobs = None;
        while self.written < self.sent {
            let done = self
                .done
                .recv()
                .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
            self.accept(done)?;
        }
        self.stop_workers();
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already finished"))
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        if self.chunk.len() == CHUNK_BYTES {
            self.send_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzWriter<W> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut gz = ParallelGzWriter::new(Vec::new(), 1).unwrap();
        gz.write_all(data).unwrap();
        let packed = gz.finish().unwrap();
        let mut out = Vec::new();
        crate::gzip_reader(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn members_decode_to_the_input_in_order() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 5 + 12345))
            .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
            .collect();
        assert_eq!(roundtrip(&data), data);
        assert_eq!(roundtrip(b""), b"");
        assert_eq!(roundtrip(b"short"), b"short");
    }

    #[test]
    fn output_is_the_same_every_time() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 3 + 99))
            .map(|i| (i % 13) as u8)
            .collect();
        let pack = || {
            let mut gz = ParallelGzWriter::new(Vec::new(), 1).unwrap();
            for piece in data.chunks(7777) {
                gz.write_all(piece).unwrap();
            }
            gz.finish().unwrap()
        };
        assert_eq!(pack(), pack());
    }
}
