//! [`Lanes`]: every stream's ordering state, shared by the socket tasks and the driver.
//!
//! The common case, the next closed candle (or a forming update) of a stream with nothing
//! pending, needs no async work, so the socket task that read it hands it straight to the
//! consumer: one task hop and one wake-up fewer on the latency path. Anything else (a gap, a
//! correction, a full channel, a stale stream) goes to the driver, and from then on
//! everything does until the driver has caught up (`busy`), so events never overtake one
//! another. The lock is held only for synchronous work, never across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;
use tracing::debug;

use super::pending::PendingGap;
use super::sequencer::{Sequencer, Verdict};
use super::wire::{Lookup, WsKline};
use super::{Arrival, FeedEvent, Origin, StreamKey};
use crate::venue::Venue;

/// One stream's state.
pub(crate) struct Lane {
    /// Which stream.
    pub key: Arc<StreamKey>,
    /// Closed-candle order.
    pub seq: Sequencer,
    /// Real time of the last closed candle yielded (staleness).
    pub last_close_at: Instant,
    /// Real time one candle lasts.
    pub period: Duration,
    /// Reported stale and not fresh since.
    pub stale: bool,
    /// The expected open time a forming update already triggered a fill for.
    pub update_fill_for: Option<i64>,
    /// A gap REST has not filled yet; closed candles wait behind it in the driver.
    pub gap: Option<PendingGap>,
    /// Removed from the feed ([`super::Feed::remove`]) while its connection carries others:
    /// its frames are dropped and nothing is fetched, filled or watched for it.
    pub retired: bool,
}

/// Every stream's lane, and whether the driver has events queued or under way.
pub(crate) struct Lanes {
    /// Indexed like `FeedConfig::streams`.
    pub streams: Vec<Lane>,
    /// While true, socket tasks send everything through the driver (which keeps the order);
    /// the driver clears it once its queue is empty and its work is done.
    pub busy: bool,
    /// A closed-kline frame of this connection, kept to warm its parser ([`Lanes::warm`]).
    pub sample: Option<Sample>,
}

/// A frame to parse again before the next one is due, and what parses it.
pub(crate) struct Sample {
    pub text: String,
    pub venue: &'static dyn Venue,
    pub lookup: Arc<Lookup>,
    pub buf: Vec<WsKline>,
}

/// What [`Lanes::direct`] did with a kline.
pub(crate) enum Direct {
    /// Sent to the consumer, or dropped as a duplicate or an update not worth showing.
    Done,
    /// Needs the driver (a gap, a correction, a stale stream, a full channel).
    Driver(WsKline),
    /// The consumer is gone.
    Gone,
}

/// The lanes behind a lock, as the socket tasks and the driver share them.
#[derive(Clone)]
pub(crate) struct SharedLanes(Arc<Mutex<Lanes>>);

impl SharedLanes {
    /// Lanes for `keys`, starting busy: klines wait for the driver until bootstrap is merged.
    pub fn new(keys: &[StreamKey], period_override: Option<Duration>) -> Self {
        let now = Instant::now();
        let streams = keys
            .iter()
            .map(|k| Lane {
                key: Arc::new(k.clone()),
                seq: Sequencer::new(k.interval),
                last_close_at: now,
                period: period_override
                    .unwrap_or(Duration::from_millis(k.interval.duration_ms() as u64)),
                stale: false,
                update_fill_for: None,
                gap: None,
                retired: false,
            })
            .collect();
        SharedLanes(Arc::new(Mutex::new(Lanes {
            streams,
            busy: true,
            sample: None,
        })))
    }

    /// Locks the lanes (a panic elsewhere leaves them usable: every update is a single step).
    pub fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Lane {
    /// When the stream counts as stale if no closed candle came: two and a half periods after
    /// the last one. The next-but-one close is due at two periods, so checking exactly then
    /// would race it (a candle a millisecond late would flap the stream stale and back), and
    /// the watchdog would wake right when a candle needs the thread.
    pub fn stale_at(&self) -> Instant {
        self.last_close_at + self.period * 5 / 2
    }
}

impl Lanes {
    /// Parses the sample frame again into a scratch buffer: the parser's code and tables, and
    /// these lanes, are then in the caches when the next frame comes. Nothing is sent.
    pub fn warm(&mut self) {
        if let Some(s) = &mut self.sample {
            s.buf.clear();
            let _ = std::hint::black_box(s.venue.parse_frame(&s.text, &s.lookup, &mut s.buf));
        }
    }

    /// Hands `k` to the consumer when it needs nothing from the driver. Call only when not
    /// `busy`.
    pub fn direct(
        &mut self,
        k: WsKline,
        received_at: std::time::Instant,
        out: &mpsc::Sender<FeedEvent>,
    ) -> Direct {
        let lane = &mut self.streams[k.idx];
        if lane.retired {
            return Direct::Done;
        }
        let arrival = Arrival {
            event_time: k.event_time,
            received_at,
        };
        let ev = if k.closed {
            if lane.stale || lane.gap.is_some() {
                return Direct::Driver(k);
            }
            match lane.seq.classify(&k.candle) {
                Verdict::Accept => {}
                Verdict::Duplicate => return Direct::Done,
                Verdict::Stale => {
                    debug!(stream = %lane.key, open_time = k.candle.open_time, "stale final ignored");
                    return Direct::Done;
                }
                Verdict::Gap { .. } | Verdict::Correction(_) => return Direct::Driver(k),
            }
            FeedEvent::Closed {
                key: lane.key.clone(),
                candle: k.candle,
                origin: Origin::Live,
                arrival,
            }
        } else {
            // A forming candle two past the expected one proves a gap: the driver fills it.
            // One past is normal where the previous final trails the next candle's first push.
            let before = lane.key.interval.floor(k.candle.open_time - 1);
            if lane.seq.next_open().is_some_and(|next| before > next) {
                return Direct::Driver(k);
            }
            if !lane.seq.admit_update(&k.candle) {
                return Direct::Done;
            }
            FeedEvent::Update {
                key: lane.key.clone(),
                candle: k.candle,
                arrival,
            }
        };
        match out.try_send(ev) {
            Ok(()) => {
                if k.closed {
                    lane.seq.accept(k.candle);
                    lane.last_close_at = Instant::now();
                }
                Direct::Done
            }
            // The driver waits for room; `admit_update` is idempotent for the same candle.
            Err(TrySendError::Full(_)) => Direct::Driver(k),
            Err(TrySendError::Closed(_)) => Direct::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;
    use tokio::sync::mpsc;

    use super::*;
    use crate::feed::sequencer::tests::{M, c};

    fn kline(i: i64, close: f64, closed: bool) -> WsKline {
        WsKline {
            idx: 0,
            candle: c(i, close),
            closed,
            event_time: i * M + M - 1,
        }
    }

    /// Lanes for one stream whose last closed candle is number 10.
    fn lanes() -> SharedLanes {
        let key = StreamKey {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
        };
        let l = SharedLanes::new(&[key], None);
        {
            let mut g = l.lock();
            g.streams[0].seq.accept(c(10, 2.0));
            g.busy = false;
        }
        l
    }

    fn next_open(l: &SharedLanes) -> Option<i64> {
        l.lock().streams[0].seq.next_open()
    }

    #[test]
    fn warming_parses_the_sample_again_and_changes_nothing_else() {
        let l = lanes();
        l.lock().warm(); // no sample yet: nothing to do
        let text = r#"{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":660000,"T":719999,"s":"BTCUSDT","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":true}}"#;
        let lookup: Lookup = [("btcusdt@kline_1m".to_string(), 0)].into_iter().collect();
        l.lock().sample = Some(Sample {
            text: text.into(),
            venue: &crate::binance::BINANCE,
            lookup: Arc::new(lookup),
            buf: Vec::new(),
        });
        let before = next_open(&l);
        for _ in 0..3 {
            l.lock().warm();
        }
        let g = l.lock();
        let buf = &g.sample.as_ref().expect("kept").buf;
        assert_eq!(buf.len(), 1, "parsed into its own buffer, once per warm-up");
        assert!(buf[0].closed);
        assert_eq!(buf[0].candle.open_time, 11 * M);
        drop(g);
        assert_eq!(next_open(&l), before, "the sequencer did not move");
    }

    #[test]
    fn starts_busy_so_klines_wait_for_the_bootstrap() {
        let key = StreamKey {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
        };
        assert!(SharedLanes::new(&[key], None).lock().busy);
    }

    #[test]
    fn the_next_closed_candle_goes_straight_to_the_consumer() {
        let l = lanes();
        let (tx, mut rx) = mpsc::channel(4);
        let now = std::time::Instant::now();
        assert!(matches!(
            l.lock().direct(kline(11, 3.0, true), now, &tx),
            Direct::Done
        ));
        match rx.try_recv() {
            Ok(FeedEvent::Closed {
                candle,
                origin: Origin::Live,
                arrival,
                ..
            }) => {
                assert_eq!(candle, c(11, 3.0));
                assert_eq!(arrival.received_at, now);
            }
            other => panic!("expected a live close, got {other:?}"),
        }
        assert_eq!(next_open(&l), Some(12 * M), "the sequencer moved on");
    }

    #[test]
    fn what_needs_the_driver_is_handed_back_untouched() {
        struct Case {
            name: &'static str,
            kline: WsKline,
            stale: bool,
        }
        let cases = [
            Case {
                name: "gap",
                kline: kline(13, 3.0, true),
                stale: false,
            },
            Case {
                name: "correction",
                kline: kline(10, 9.0, true),
                stale: false,
            },
            Case {
                name: "stale stream",
                kline: kline(11, 3.0, true),
                stale: true,
            },
            Case {
                name: "update two past the expected candle",
                kline: kline(13, 3.0, false),
                stale: false,
            },
        ];
        for case in cases {
            let l = lanes();
            l.lock().streams[0].stale = case.stale;
            let (tx, mut rx) = mpsc::channel(4);
            let got = l.lock().direct(case.kline, std::time::Instant::now(), &tx);
            match got {
                Direct::Driver(k) => assert_eq!(k.candle, case.kline.candle, "{}", case.name),
                _ => panic!("{}: expected the driver", case.name),
            }
            assert!(rx.try_recv().is_err(), "{}: nothing sent", case.name);
            assert_eq!(
                next_open(&l),
                Some(11 * M),
                "{}: no state change",
                case.name
            );
        }
    }

    #[test]
    fn duplicates_and_late_updates_are_dropped() {
        let l = lanes();
        let (tx, mut rx) = mpsc::channel(4);
        let now = std::time::Instant::now();
        for k in [kline(10, 2.0, true), kline(10, 2.0, false)] {
            assert!(matches!(l.lock().direct(k, now, &tx), Direct::Done));
        }
        assert!(rx.try_recv().is_err());
        // The forming candle is shown.
        assert!(matches!(
            l.lock().direct(kline(11, 2.5, false), now, &tx),
            Direct::Done
        ));
        assert!(matches!(rx.try_recv(), Ok(FeedEvent::Update { .. })));
    }

    #[test]
    fn a_full_channel_leaves_the_candle_to_the_driver() {
        let l = lanes();
        let (tx, rx) = mpsc::channel(1);
        tx.try_send(FeedEvent::Warning(crate::feed::FeedWarning::Overflow))
            .unwrap();
        let got = l
            .lock()
            .direct(kline(11, 3.0, true), std::time::Instant::now(), &tx);
        assert!(matches!(got, Direct::Driver(_)));
        assert_eq!(next_open(&l), Some(11 * M), "not accepted: the driver will");
        drop(rx);
        let got = l
            .lock()
            .direct(kline(11, 3.0, true), std::time::Instant::now(), &tx);
        assert!(matches!(got, Direct::Gone));
    }
}
