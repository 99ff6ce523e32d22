//! The candle cache: [`sync`] brings a series' range into the store's candle table over REST,
//! downloading only what is missing (holes inside the range as well as the tail), and reads the
//! range back. `manus fetch`, `manus backtest --exchange` and the Lab use it.
//!
//! The range is half-open: candles opening at or after `from` and before `to` (default: now).
//! The candle still forming is never stored: the range ends at the bar containing the exchange's
//! clock ([`RestClient::server_time`]), and every row must close before that clock.

use std::io::IsTerminal;

use manus_core::{Candle, Interval};
use manus_exchange::{ExchangeKind, FeedError, RestClient};

use crate::clock::format_ms;
use crate::store::{self, Store, StoreError};

/// Why a [`sync`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache's store could not be opened.
    #[error("opening the candle cache: {0}")]
    Open(#[source] StoreError),
    /// Reading the cache failed.
    #[error("reading the candle cache: {0}")]
    Read(#[from] StoreError),
    /// Writing downloaded candles failed.
    #[error("writing the candle cache {location}: {kind} ({source})")]
    Write {
        /// The store's location.
        location: String,
        /// The failure's kind (disk full, read-only, ...).
        kind: store::FailureKind,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The exchange's REST API failed or refused the request.
    #[error("{market}: {source}")]
    Exchange {
        /// `SYMBOL INTERVAL on EXCHANGE`.
        market: String,
        /// The client's error.
        #[source]
        source: FeedError,
    },
    /// No closed candle opens in the requested range.
    #[error("no closed {interval} candle of {symbol} opens in the range (exchange time {at})")]
    EmptyRange {
        /// The interval.
        interval: Interval,
        /// The symbol.
        symbol: String,
        /// The exchange's clock, formatted.
        at: String,
    },
    /// The runtime for the downloads could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl CacheError {
    /// Whether the user's input is at fault (exit code 2): an empty range, or the exchange
    /// refusing the request (unknown symbol, bad interval); rate limits, 5xx, transport and
    /// disk failures are not.
    pub fn is_bad_input(&self) -> bool {
        match self {
            CacheError::EmptyRange { .. } => true,
            CacheError::Exchange { source, .. } => {
                matches!(source, FeedError::Invalid(_))
                    || matches!(source, FeedError::ExchangeError { .. } if !source.is_retryable())
            }
            _ => false,
        }
    }
}

/// A series and a range to bring into the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The exchange (also the cache key).
    pub exchange: ExchangeKind,
    /// Upper-case symbol.
    pub symbol: String,
    /// Kline interval.
    pub interval: Interval,
    /// First open time, ms (inclusive).
    pub from_ms: i64,
    /// End, ms (exclusive); `None` = up to the last closed candle.
    pub to_ms: Option<i64>,
    /// REST base URL.
    pub rest_url: String,
    /// `--db` (None = the default SQLite file).
    pub db: Option<String>,
}

/// What [`sync`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    /// Every cached candle of the range, oldest first.
    pub candles: Vec<Candle>,
    /// Candles downloaded and stored by this run.
    pub fetched: usize,
    /// Candles of the range that were already cached.
    pub cached: usize,
    /// Bars of the range the exchange has no candle for (e.g. maintenance).
    pub absent: usize,
    /// First open time of the range, ms.
    pub from_ms: i64,
    /// End of the range actually covered, ms (exclusive).
    pub end_ms: i64,
}

/// The first bar opening at or after `t`.
fn first_open(interval: Interval, t: i64) -> i64 {
    let f = interval.floor(t);
    if f < t { interval.next_open(f) } else { f }
}

/// Runs of bars opening in `[from, end)` whose open time is not in `cached` (ascending), as
/// inclusive `(first_open, last_open)` pairs.
pub fn missing_ranges(interval: Interval, from: i64, end: i64, cached: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut k = 0;
    let mut run: Option<(i64, i64)> = None;
    let mut t = first_open(interval, from);
    while t < end {
        while k < cached.len() && cached[k] < t {
            k += 1;
        }
        if k < cached.len() && cached[k] == t {
            out.extend(run.take());
        } else {
            run = Some(run.map_or((t, t), |(s, _)| (s, t)));
        }
        t = interval.next_open(t);
    }
    out.extend(run);
    out
}

/// REST pages needed for `bars` candles.
fn pages(bars: i64) -> i64 {
    (bars + 999) / 1000
}

/// Merges neighbouring gaps when one request window covers both for no more pages than
/// fetching them apart (the cached bars in between are downloaded again but not re-stored).
pub fn coalesce(interval: Interval, gaps: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let bars = |(s, e): (i64, i64)| interval.bars_between(s, interval.next_open(e));
    let mut out: Vec<((i64, i64), i64)> = Vec::new();
    for &g in gaps {
        if let Some((cur, p)) = out.last_mut() {
            let merged = (cur.0, g.1);
            let mp = pages(bars(merged));
            if mp <= *p + pages(bars(g)) {
                *cur = merged;
                *p = mp;
                continue;
            }
        }
        out.push((g, pages(bars(g))));
    }
    out.into_iter().map(|(g, _)| g).collect()
}

/// A client error, with the series it was about.
fn feed_error(src: &Source, source: FeedError) -> CacheError {
    CacheError::Exchange {
        market: format!(
            "{} {} on {}",
            src.symbol,
            src.interval,
            src.exchange.as_str()
        ),
        source,
    }
}

fn progress_bar(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "fetch {bar:30} {pos}/{len} candles  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn cached_opens(db: &mut dyn Store, src: &Source, end: i64) -> Result<Vec<i64>, CacheError> {
    Ok(db
        .candles_range(
            src.exchange.as_str(),
            &src.symbol,
            src.interval,
            src.from_ms,
            end,
        )?
        .iter()
        .map(|c| c.open_time)
        .collect())
}

/// Brings `src`'s range into the cache, downloading only the missing bars, and returns the
/// range's cached candles. A range that is fully cached needs no network at all when it has an
/// explicit end. `show_progress` draws a bar on stderr when stderr is a terminal.
pub fn sync(src: &Source, show_progress: bool) -> Result<Synced, CacheError> {
    let mut db = store::open(src.db.as_deref()).map_err(CacheError::Open)?;
    let db = db.as_mut();
    let ex = src.exchange.as_str();
    let iv = src.interval;

    let mut end = src.to_ms;
    // With an explicit end and nothing missing, answer from the cache alone (offline).
    let need_network = match end {
        Some(e) => !missing_ranges(iv, src.from_ms, e, &cached_opens(db, src, e)?).is_empty(),
        None => true,
    };
    let mut fetched = 0;
    if need_network {
        let client =
            RestClient::new(src.exchange, &src.rest_url).map_err(|e| feed_error(src, e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CacheError::Runtime)?;
        let now = rt
            .block_on(client.server_time())
            .map_err(|e| feed_error(src, e))?;
        // The bar containing the exchange's clock is still forming.
        let last_closed_end = iv.floor(now);
        let e = end.map_or(last_closed_end, |t| t.min(last_closed_end));
        if e <= src.from_ms || first_open(iv, src.from_ms) >= e {
            return Err(CacheError::EmptyRange {
                interval: iv,
                symbol: src.symbol.clone(),
                at: format_ms(now),
            });
        }
        end = Some(e);
        let cached = cached_opens(db, src, e)?;
        let gaps = coalesce(iv, &missing_ranges(iv, src.from_ms, e, &cached));
        if !gaps.is_empty() {
            rt.block_on(client.check_symbol(&src.symbol))
                .map_err(|e| feed_error(src, e))?;
            let total: i64 = gaps
                .iter()
                .map(|&(s, l)| iv.bars_between(s, iv.next_open(l)))
                .sum();
            let bar = progress_bar(show_progress, total.max(0) as u64);
            let mut done = 0u64;
            // Stored a window at a time, so an interrupted fetch keeps what it downloaded and
            // the next run asks only for the rest.
            let windows = gaps.iter().flat_map(|&(s, l)| {
                std::iter::successors(Some(s), move |&w| {
                    let next = iv.next_open(window_last(iv, w, l));
                    (next <= l).then_some(next)
                })
                .map(move |w| (w, window_last(iv, w, l)))
            });
            for (s, l) in windows {
                let rows =
                    rt.block_on(client.klines_range(&src.symbol, iv, s, l, |n| {
                        bar.set_position(done + n as u64)
                    }))
                    .map_err(|e| feed_error(src, e))?;
                done += iv.bars_between(s, iv.next_open(l)).max(0) as u64;
                bar.set_position(done);
                // Only closed candles on the grid that the cache lacks.
                let fresh: Vec<Candle> = rows
                    .into_iter()
                    .filter(|c| {
                        c.close_time < now
                            && c.open_time == iv.floor(c.open_time)
                            && cached.binary_search(&c.open_time).is_err()
                    })
                    .collect();
                db.upsert_candles(ex, &src.symbol, iv, &fresh)
                    .map_err(|source| CacheError::Write {
                        location: db.location(),
                        kind: source.kind(),
                        source,
                    })?;
                fetched += fresh.len();
            }
            bar.finish_and_clear();
        }
    }
    let end = end.unwrap_or(src.from_ms);
    let candles = db.candles_range(ex, &src.symbol, iv, src.from_ms, end)?;
    let grid = iv.bars_between(first_open(iv, src.from_ms), end).max(0) as usize;
    Ok(Synced {
        fetched,
        cached: candles.len().saturating_sub(fetched),
        absent: grid.saturating_sub(candles.len()),
        candles,
        from_ms: src.from_ms,
        end_ms: end,
    })
}

/// Bars per stored window of a fetch (one REST page).
const WINDOW_BARS: usize = 1000;

/// The last open of the window that starts at `start`: [`WINDOW_BARS`] bars on, at most `last`.
fn window_last(iv: Interval, start: i64, last: i64) -> i64 {
    let mut t = start;
    for _ in 1..WINDOW_BARS {
        let next = iv.next_open(t);
        if next > last {
            break;
        }
        t = next;
    }
    t
}

/// One line saying what a sync did.
pub fn summary(src: &Source, s: &Synced) -> String {
    let mut line = format!(
        "{} {} {}: fetched {}, cached {}, total {} candles [{} .. {})",
        src.exchange.as_str(),
        src.symbol,
        src.interval,
        s.fetched,
        s.cached,
        s.candles.len(),
        format_ms(s.from_ms),
        format_ms(s.end_ms)
    );
    if s.absent > 0 {
        line.push_str(&format!("; {} bars have no data on the exchange", s.absent));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    #[test]
    fn a_gap_is_stored_one_page_window_at_a_time() {
        let iv = Interval::M1;
        let m = 60_000;
        struct Case {
            last: i64,
            windows: Vec<(i64, i64)>,
        }
        let cases = [
            Case {
                last: 0,
                windows: vec![(0, 0)],
            },
            Case {
                last: 999 * m,
                windows: vec![(0, 999 * m)],
            },
            Case {
                last: 2499 * m,
                windows: vec![(0, 999 * m), (1000 * m, 1999 * m), (2000 * m, 2499 * m)],
            },
        ];
        for c in cases {
            let mut got = Vec::new();
            let mut w = 0;
            loop {
                let l = window_last(iv, w, c.last);
                got.push((w, l));
                w = iv.next_open(l);
                if w > c.last {
                    break;
                }
            }
            assert_eq!(got, c.windows);
        }
    }

    #[test]
    fn finds_holes_and_the_tail() {
        struct Case {
            cached: Vec<i64>,
            expected: Vec<(i64, i64)>,
        }
        let cases = [
            Case {
                cached: vec![],
                expected: vec![(0, 9 * M)],
            },
            Case {
                cached: (0..10).map(|i| i * M).collect(),
                expected: vec![],
            },
            Case {
                cached: vec![0, M, 2 * M, 5 * M, 6 * M],
                expected: vec![(3 * M, 4 * M), (7 * M, 9 * M)],
            },
            Case {
                cached: vec![M, 9 * M, 20 * M],
                expected: vec![(0, 0), (2 * M, 8 * M)],
            },
        ];
        for c in cases {
            assert_eq!(
                missing_ranges(Interval::M1, 0, 10 * M, &c.cached),
                c.expected,
                "cached {:?}",
                c.cached
            );
        }
    }

    #[test]
    fn range_starts_at_the_next_bar_boundary() {
        assert_eq!(
            missing_ranges(Interval::M1, 30_000, 3 * M, &[]),
            vec![(M, 2 * M)]
        );
    }

    #[test]
    fn coalesces_gaps_that_share_a_page() {
        // Two 1-bar holes 10 bars apart: one request instead of two.
        assert_eq!(
            coalesce(Interval::M1, &[(0, 0), (10 * M, 10 * M)]),
            vec![(0, 10 * M)]
        );
        // 5000 cached bars between them: two requests beat five.
        assert_eq!(
            coalesce(Interval::M1, &[(0, 0), (5000 * M, 5000 * M)]),
            vec![(0, 0), (5000 * M, 5000 * M)]
        );
    }

    #[test]
    fn rejects_bad_flags() {
        let f = |ex: &str, iv: Interval, from: &str, to: Option<&str>| {
            Source::from_flags(ex, "btcusdt", iv, from, to, None, None)
        };
        assert!(f("kraken", Interval::M1, "2024-01-01", None).is_err());
        assert!(f("bybit", Interval::H8, "2024-01-01", None).is_err());
        assert!(f("binanceus", Interval::M1, "2024-02-01", Some("2024-01-01")).is_err());
        assert!(f("binanceus", Interval::M1, "01/02/2024", None).is_err());
        let ok = f("binanceus", Interval::H1, "2024-01-01", Some("2024-02-01")).unwrap();
        assert_eq!(ok.symbol, "BTCUSDT");
        assert_eq!(ok.rest_url, "https://api.binance.us");
    }
}
