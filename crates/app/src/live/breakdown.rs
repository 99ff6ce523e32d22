//! `--latency-breakdown`: where a live closed candle's time goes, stage by stage, from the frame
//! read off the socket to the record flushed. A debug aid: stamps are taken only when it is on
//! (one branch per event otherwise), and the report goes to the log at exit.
//!
//! Stages: parse (frame read → parsed), handoff (parsed → in the consumer's channel), hop
//! (channel → the consumer running), engine (the consumer's dispatch and the strategies),
//! record (the record refilled: the measured latency ends here), write (JSON into the buffer,
//! taps), flush (the buffered write to the output). The feed's two stamps come from
//! [`manus_exchange::feed::probe`]. Each candle also notes the thread's CPU slices, run-queue
//! wait and page faults since the previous candle (`/proc/thread-self`), which tells whether a
//! slow one was preempted or faulted rather than slow in our code.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use hdrhistogram::Histogram;
use manus_exchange::feed::probe;

/// Stage names, in path order.
const STAGES: [&str; 7] = [
    "parse", "handoff", "hop", "engine", "record", "write", "flush",
];

/// Candles slower than this (µs, frame read → record) are listed one by one.
const SLOW_US: u64 = 100;

/// At most this many slow candles are listed.
const SLOW_LIST: usize = 40;

/// The thread's scheduler and fault counters, which tell whether a slow candle was preempted
/// or faulted rather than slow in our code: from `/proc/thread-self` (opened once, by the
/// consumer's thread; re-read at offset 0).
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// Times scheduled onto a CPU.
    slices: i64,
    /// Time spent runnable but waiting for a CPU, ns.
    waited_ns: i64,
    /// Minor and major page faults.
    faults: i64,
}

#[derive(Debug)]
struct Proc {
    schedstat: Option<File>,
    stat: Option<File>,
    buf: Vec<u8>,
}

impl Proc {
    fn open() -> Self {
        Proc {
            schedstat: File::open("/proc/thread-self/schedstat").ok(),
            stat: File::open("/proc/thread-self/stat").ok(),
            buf: vec![0; 1024],
        }
    }

    fn read(&mut self) -> Usage {
        let mut u = Usage::default();
        if let Some(f) = &self.schedstat
            && let Ok(n) = f.read_at(&mut self.buf, 0)
        {
            let text = String::from_utf8_lossy(&self.buf[..n]);
            let mut it = text
                .split_whitespace()
                .map(|x| x.parse::<i64>().unwrap_or(0));
            let _run = it.next();
            u.waited_ns = it.next().unwrap_or(0);
            u.slices = it.next().unwrap_or(0);
        }
        if let Some(f) = &self.stat
            && let Ok(n) = f.read_at(&mut self.buf, 0)
        {
            let text = String::from_utf8_lossy(&self.buf[..n]);
            // After the command name: state ppid pgrp session tty tpgid flags minflt cminflt majflt.
            if let Some(rest) = text.rfind(')').map(|i| &text[i + 1..]) {
                let f: Vec<i64> = rest
                    .split_whitespace()
                    .take(10)
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                u.faults = f.get(7).copied().unwrap_or(0) + f.get(9).copied().unwrap_or(0);
            }
        }
        u
    }
}

/// One candle's stamps, filled as it goes.
#[derive(Debug, Clone, Copy)]
struct Current {
    received: Instant,
    parsed: Option<Instant>,
    handed: Option<Instant>,
    dequeued: Instant,
    engine: Option<Instant>,
    record: Option<Instant>,
    write_from: Option<Instant>,
    written: Option<Instant>,
    usage: Usage,
}

fn hist() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 10 s at 3 significant digits.
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

/// The per-stage histograms and the list of slow candles.
#[derive(Debug)]
pub struct Breakdown {
    stages: Vec<Histogram<u64>>,
    total: Histogram<u64>,
    candles: u64,
    /// Candles without the feed's stamps (they went through the driver).
    unstamped: u64,
    faulted: u64,
    slow: Vec<String>,
    slow_count: u64,
    dequeued: Option<Instant>,
    cur: Option<Current>,
    last_usage: Usage,
    proc: Proc,
}

impl Default for Breakdown {
    fn default() -> Self {
        Breakdown {
            stages: STAGES.iter().map(|_| hist()).collect(),
            total: hist(),
            candles: 0,
            unstamped: 0,
            faulted: 0,
            slow: Vec::new(),
            slow_count: 0,
            dequeued: None,
            cur: None,
            last_usage: Usage::default(),
            proc: Proc::open(),
        }
    }
}

fn ns(a: Instant, b: Instant) -> u64 {
    u64::try_from(b.saturating_duration_since(a).as_nanos()).unwrap_or(u64::MAX)
}

impl Breakdown {
    /// The consumer took an event off the channel.
    pub fn dequeued(&mut self) {
        self.dequeued = Some(Instant::now());
        self.cur = None;
    }

    /// The engine stepped a live closed candle read at `received`.
    pub fn engine_done(&mut self, received: Instant) {
        let now = Instant::now();
        let feed = probe::take(received);
        self.cur = Some(Current {
            received,
            parsed: feed.map(|f| f.parsed_at),
            handed: feed.map(|f| f.handed_at),
            dequeued: self.dequeued.unwrap_or(now),
            engine: Some(now),
            record: None,
            write_from: None,
            written: None,
            usage: Usage::default(),
        });
    }

    /// Its record is ready at `at` (where the measured latency ends).
    pub fn record_ready(&mut self, at: Instant) {
        let u = self.proc.read();
        let last = std::mem::replace(&mut self.last_usage, u);
        if let Some(c) = &mut self.cur {
            c.record = Some(at);
            c.usage = Usage {
                slices: u.slices - last.slices,
                waited_ns: u.waited_ns - last.waited_ns,
                faults: u.faults - last.faults,
            };
            c.write_from = Some(Instant::now());
        }
    }

    /// Its record is in the output buffer.
    pub fn written(&mut self) {
        if let Some(c) = &mut self.cur
            && c.record.is_some()
        {
            c.written = Some(Instant::now());
        }
    }

    /// The output was flushed: the candle (if any) is complete.
    pub fn flushed(&mut self) {
        let Some(c) = self.cur.take() else {
            return;
        };
        let (Some(engine), Some(record), Some(write_from), Some(written)) =
            (c.engine, c.record, c.write_from, c.written)
        else {
            return;
        };
        let now = Instant::now();
        self.candles += 1;
        let stamped = c.parsed.zip(c.handed);
        let mut parts = [0u64; 7];
        match stamped {
            Some((parsed, handed)) => {
                parts[0] = ns(c.received, parsed);
                parts[1] = ns(parsed, handed);
                parts[2] = ns(handed, c.dequeued);
            }
            None => {
                self.unstamped += 1;
                // Read to dequeued as one figure, under "hop".
                parts[2] = ns(c.received, c.dequeued);
            }
        }
        parts[3] = ns(c.dequeued, engine);
        parts[4] = ns(engine, record);
        parts[5] = ns(write_from, written);
        parts[6] = ns(written, now);
        for (i, p) in parts.iter().enumerate() {
            if i < 2 && stamped.is_none() {
                continue;
            }
            self.stages[i].saturating_record((*p).max(1));
        }
        let total = ns(c.received, record);
        self.total.saturating_record(total.max(1));
        self.faulted += u64::from(c.usage.faults > 0);
        if total / 1000 > SLOW_US {
            self.slow_count += 1;
            if self.slow.len() < SLOW_LIST {
                let us = |n: u64| n as f64 / 1000.0;
                self.slow.push(format!(
                    "candle {}: {:.1} µs = parse {:.1} + handoff {:.1} + hop {:.1} + engine {:.1} + record {:.1} (then write {:.1}, flush {:.1}); {} slices, {:.1} µs runnable-waiting, {} faults since the previous candle{}",
                    self.candles,
                    us(total),
                    us(parts[0]),
                    us(parts[1]),
                    us(parts[2]),
                    us(parts[3]),
                    us(parts[4]),
                    us(parts[5]),
                    us(parts[6]),
                    c.usage.slices,
                    c.usage.waited_ns as f64 / 1000.0,
                    c.usage.faults,
                    if stamped.is_none() { " (via the driver)" } else { "" },
                ));
            }
        }
    }

    /// The report: one line per stage, the totals, the slow candles.
    pub fn report(&self) -> Vec<String> {
        let q = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let line = |name: &str, h: &Histogram<u64>| {
            format!(
                "{name:>8}: p50 {:7.1}  p90 {:7.1}  p99 {:7.1}  max {:8.1} µs  (n {})",
                q(h, 0.5),
                q(h, 0.9),
                q(h, 0.99),
                h.max() as f64 / 1000.0,
                h.len()
            )
        };
        let mut out = vec![format!(
            "latency breakdown over {} live candles ({} via the driver, without feed stamps; {} page-faulting since the previous candle; {} over {SLOW_US} µs, listed below with the thread's CPU slices and run-queue wait since the previous candle: one slice per frame is the norm)",
            self.candles, self.unstamped, self.faulted, self.slow_count
        )];
        for (name, h) in STAGES.iter().zip(&self.stages) {
            out.push(line(name, h));
        }
        out.push(line("total", &self.total));
        out.extend(self.slow.iter().cloned());
        out
    }
}
