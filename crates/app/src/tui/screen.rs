//! [`ScreenWriter`]: the dashboard's bytes go to the terminal from a thread of their own.
//!
//! The dashboard renders on the thread that also reads the socket and runs the pipeline. A
//! terminal that drains slowly (a slow SSH link, a paused `tmux` pane) would block that thread
//! in `write`, and with it the feed. Here rendering only fills a buffer; a writer thread does the
//! blocking writes. While it is busy, frames queue up in order (so the screen stays right) up to
//! [`ScreenWriter::MAX_PENDING`]; past that the backlog is dropped and [`Screen::take_dropped`]
//! tells the loop to clear the screen so the next frame is drawn whole.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// A `Write` that hands flushed bytes to a writer thread and never blocks (until
/// [`Screen::closing`]).
#[derive(Debug)]
pub struct ScreenWriter {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
    flags: Arc<Flags>,
    max_pending: usize,
}

#[derive(Debug, Default)]
struct Flags {
    dropped: AtomicBool,
    closing: AtomicBool,
}

/// The writer thread and the flags shared with its [`ScreenWriter`].
#[derive(Debug)]
pub struct Screen {
    flags: Arc<Flags>,
    thread: JoinHandle<()>,
}

impl Screen {
    /// True once if a backlog was dropped since the last call: the screen needs a full redraw.
    pub fn take_dropped(&self) -> bool {
        self.flags.dropped.swap(false, Ordering::Relaxed)
    }

    /// From now on a flush waits for the writer thread: at exit, so the last frame reaches the
    /// terminal before it is restored.
    pub fn closing(&self) {
        self.flags.closing.store(true, Ordering::Relaxed);
    }

    /// Waits for the writer thread; call after the [`ScreenWriter`] (and the terminal owning it)
    /// is dropped.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

impl ScreenWriter {
    /// Bytes kept while the writer thread is busy before the backlog is dropped.
    pub const MAX_PENDING: usize = 1 << 20;

    /// Starts the writer thread over `sink`.
    pub fn spawn<W: Write + Send + 'static>(sink: W) -> (ScreenWriter, Screen) {
        Self::with_limit(sink, Self::MAX_PENDING)
    }

    fn with_limit<W: Write + Send + 'static>(
        mut sink: W,
        max_pending: usize,
    ) -> (ScreenWriter, Screen) {
        // One frame in flight, one being written: anything more waits in `buf`.
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(1);
        let handle = std::thread::spawn(move || {
            for frame in rx {
                if sink.write_all(&frame).and_then(|()| sink.flush()).is_err() {
                    return;
                }
            }
        });
        let flags = Arc::new(Flags::default());
        let w = ScreenWriter {
            buf: Vec::with_capacity(1 << 14),
            tx,
            flags: flags.clone(),
            max_pending,
        };
        (
            w,
            Screen {
                flags,
                thread: handle,
            },
        )
    }
}

impl Write for ScreenWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let frame = std::mem::take(&mut self.buf);
        if self.flags.closing.load(Ordering::Relaxed) {
            return self.tx.send(frame).map_err(|_| stopped());
        }
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(frame)) => {
                if frame.len() > self.max_pending {
                    self.flags.dropped.store(true, Ordering::Relaxed);
                } else {
                    // Kept, in order, for the next flush.
                    self.buf = frame;
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the terminal writer stopped")
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, mpsc};
    use std::time::Duration;

    use super::*;

    /// A sink that writes nothing until the test lets it, then records what it got.
    struct Gated {
        gate: mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _ = self.gate.recv();
            self.out.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn gated(limit: usize) -> (ScreenWriter, Screen, mpsc::Sender<()>, Arc<Mutex<Vec<u8>>>) {
        let (open, gate) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let (w, h) = ScreenWriter::with_limit(
            Gated {
                gate,
                out: out.clone(),
            },
            limit,
        );
        (w, h, open, out)
    }

    #[test]
    fn a_stuck_terminal_does_not_block_and_loses_nothing() {
        let (mut w, h, open, out) = gated(ScreenWriter::MAX_PENDING);
        // The sink is blocked: each flush must still return at once. Run them on a thread so a
        // blocking flush fails the test instead of hanging it.
        let (done_tx, done) = mpsc::channel();
        let t = std::thread::spawn(move || {
            for i in 0..50u8 {
                w.write_all(&[b'a' + i % 26; 100]).unwrap();
                w.flush().unwrap();
            }
            done_tx.send(()).unwrap();
            w
        });
        done.recv_timeout(Duration::from_secs(5))
            .expect("flush blocked on a stuck terminal");
        let mut w = t.join().unwrap();
        assert!(!h.take_dropped());
        // Unstick it: everything arrives, in order.
        for _ in 0..1000 {
            let _ = open.send(());
        }
        h.closing();
        w.flush().unwrap();
        drop(w);
        drop(open);
        h.join();
        let expected: Vec<u8> = (0..50u8).flat_map(|i| [b'a' + i % 26; 100]).collect();
        assert_eq!(*out.lock().unwrap(), expected);
    }

    #[test]
    fn a_backlog_past_the_limit_is_dropped_and_reported() {
        let (mut w, h, open, out) = gated(1000);
        for _ in 0..30 {
            w.write_all(&[b'x'; 100]).unwrap();
            w.flush().unwrap();
        }
        assert!(h.take_dropped(), "over 1000 bytes queued");
        assert!(!h.take_dropped(), "reported once");
        drop(w);
        drop(open);
        h.join();
        assert!(out.lock().unwrap().len() < 3000);
    }
}
