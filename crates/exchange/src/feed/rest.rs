//! [`RestClient`]: klines, server time and symbol checks over HTTP for any [`ExchangeKind`],
//! through its [`Venue`] (paths, parsers, error classification, weight rule), with
//! `Retry-After` honoured on 429/418 (and Bybit's 403 "access too frequent"), retries on 5xx and
//! transport errors, each venue's request budget kept (by its documented limit, endpoint weights and
//! used-weight header), and response
//! bodies capped: an error body
//! is read up to [`ERROR_BODY_CAP`], a success body up to the venue's largest legal answer.

use std::sync::Arc;
use std::time::Duration;

use manus_core::{Candle, Interval};
use tracing::{debug, warn};

use super::weight::Budget;
use super::{ExchangeKind, FeedError};
use crate::venue::Venue;

/// How much of an error body is read: enough for any exchange's error payload.
pub const ERROR_BODY_CAP: usize = 4 << 10;
/// Wait when a 429/418 carries no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest single wait a request sleeps through by default before returning the error (418
/// bans can last days); a feed sets a short one and keeps the gap pending instead.
const MAX_WAIT: Duration = Duration::from_secs(600);

/// An HTTP client for one exchange's market-data REST API.
#[derive(Debug, Clone)]
pub struct RestClient {
    kind: ExchangeKind,
    venue: &'static dyn Venue,
    base: String,
    http: reqwest::Client,
    max_retries: u32,
    retry_delay: Duration,
    max_wait: Duration,
    time_scale: f64,
    budget: Arc<Budget>,
}

impl RestClient {
    /// A client for `kind` at `base` (scheme, host, port; paths are appended).
    pub fn new(kind: ExchangeKind, base: &str) -> Result<Self, FeedError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| FeedError::Http(e.to_string()))?;
        Ok(RestClient {
            kind,
            venue: kind.venue(),
            base: base.trim_end_matches('/').to_string(),
            http,
            max_retries: 5,
            retry_delay: Duration::from_millis(250),
            max_wait: MAX_WAIT,
            time_scale: 1.0,
            budget: Arc::new(Budget::new(kind.venue().weight_rule(), 1.0)),
        })
    }

    /// Sets the longest wait (`Retry-After`, a spent weight budget) one call sleeps through
    /// before it returns the error instead (default 600 s). Clones share the budget.
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// Runs the exchange's durations (`Retry-After`, the budget's window) `scale` times as
    /// long: an accelerated simulator whose candles pass `scale` times faster than real ones
    /// means its minutes too. Starts a fresh budget.
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        self.budget = Arc::new(Budget::new(self.venue.weight_rule(), self.time_scale));
        self
    }

    /// Sets how many times a retryable failure is retried (default 5).
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first wait before retrying a 5xx or transport error (default 250 ms, doubling
    /// to 10 s); 429/418 always wait `Retry-After`.
    pub fn with_retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    /// The exchange this client talks to.
    pub fn kind(&self) -> ExchangeKind {
        self.kind
    }

    /// The exchange's adapter.
    pub fn venue(&self) -> &'static dyn Venue {
        self.venue
    }

    /// One GET; the body on 2xx, a typed error otherwise.
    async fn get_once(&self, path: &str) -> Result<String, FeedError> {
        let rule = self.venue.weight_rule();
        let weight = self.venue.request_weight(path);
        while let Err(wait) = self.budget.reserve(weight) {
            if wait > self.max_wait {
                return Err(FeedError::WeightBudget { wait });
            }
            warn!(
                wait_ms = wait.as_millis() as u64,
                soft_limit = self.budget.soft_limit(),
                "request weight near the limit; pausing"
            );
            tokio::time::sleep(wait).await;
        }
        let url = format!("{}{}", self.base, path);
        debug!(%url, "GET");
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| transport_error(&url, e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(used) = rule
            .header
            .and_then(header)
            .and_then(|w| w.trim().parse().ok())
        {
            self.budget.observe(used);
        }
        if status == 429 || status == 418 {
            let retry_after = header("retry-after")
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(FeedError::RateLimited {
                status,
                retry_after: retry_after.mul_f64(self.time_scale),
            });
        }
        let ok = (200..300).contains(&status);
        let cap = if ok {
            self.venue.max_body()
        } else {
            ERROR_BODY_CAP
        };
        let body = match read_capped(&mut resp, cap).await? {
            Capped::Whole(body) => body,
            Capped::Over(_) if ok => {
                return Err(FeedError::BodyTooLarge { url, limit: cap });
            }
            // An error body only needs its first few KB: keep them, the rest is never read.
            Capped::Over(head) => String::from_utf8_lossy(&head).into_owned(),
        };
        if ok {
            return Ok(body);
        }
        if let Some(wait) = self.venue.rate_limit_wait(status, &body) {
            return Err(FeedError::RateLimited {
                status,
                retry_after: wait.mul_f64(self.time_scale),
            });
        }
        let typed = self.venue.parse_error(&body);
        if status >= 500 {
            // A server-side failure is worth retrying whatever the payload says.
            let body = match typed {
                Some(e) => e.to_string(),
                None => body.chars().take(200).collect(),
            };
            return Err(FeedError::Status { status, body });
        }
        Err(typed.unwrap_or_else(|| {
            let mut body: String = body.chars().take(200).collect();
            if let Some(hint) = self.venue.status_hint(status) {
                body.push_str(&format!(" ({hint})"));
            }
            FeedError::Status { status, body }
        }))
    }

    /// GET with retries: waits `Retry-After` on 429/418, backs off on other retryable errors.
    async fn get(&self, path: &str) -> Result<String, FeedError> {
        let mut delay = self.retry_delay;
        let mut attempt = 0;
        loop {
            match self.get_once(path).await {
                Ok(body) => return Ok(body),
                Err(e) if self.venue.is_retryable(&e) && attempt < self.max_retries => {
                    attempt += 1;
                    let wait = match e.wait() {
                        Some(wait) => wait,
                        None => {
                            let d = delay;
                            delay = (delay * 2).min(Duration::from_secs(10));
                            d
                        }
                    };
                    if wait > self.max_wait {
                        return Err(e);
                    }
                    warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "REST request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The exchange's clock, ms UTC.
    pub async fn server_time(&self) -> Result<i64, FeedError> {
        self.venue
            .parse_time(&self.get(self.venue.time_path()).await?)
    }

    /// Checks that `symbol` is listed and trading; an unknown symbol gives the exchange's error.
    pub async fn check_symbol(&self, symbol: &str) -> Result<(), FeedError> {
        self.check_symbols(&[symbol]).await
    }

    /// Checks several symbols with as few requests as the exchange allows (Binance answers
    /// 100 symbols at a time at the weight of one request; Bybit and OKX one at a time).
    pub async fn check_symbols(&self, symbols: &[&str]) -> Result<(), FeedError> {
        let theirs = symbols
            .iter()
            .map(|s| self.venue.symbol(s))
            .collect::<Result<Vec<_>, _>>()?;
        let theirs: Vec<&str> = theirs.iter().map(String::as_str).collect();
        for chunk in theirs.chunks(self.venue.symbols_per_request().max(1)) {
            let body = self.get(&self.venue.symbols_path(chunk)?).await?;
            for s in chunk {
                self.venue.check_symbol(&body, s)?;
            }
        }
        Ok(())
    }

    /// Up to `limit` candles (at most the venue's page), oldest first. The newest row may
    /// still be forming.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Candle>, FeedError> {
        let theirs = self.venue.symbol(symbol)?;
        let path = self
            .venue
            .klines_path(&theirs, interval, start_ms, end_ms, limit)?;
        self.venue.parse_klines(&self.get(&path).await?, interval)
    }

    /// Every candle opening in `[from_ms, to_ms]`, oldest first, gapless as the exchange has
    /// them, a page at a time (the venue's page: 1000 rows, OKX 100). Each window spans at most
    /// one page of intervals, so the answer is complete whether the exchange anchors `limit` at
    /// the start (Binance) or the end (Bybit, OKX).
    /// `on_page` gets the running total after each page.
    pub async fn klines_range(
        &self,
        symbol: &str,
        interval: Interval,
        from_ms: i64,
        to_ms: i64,
        mut on_page: impl FnMut(usize),
    ) -> Result<Vec<Candle>, FeedError> {
        let mut out: Vec<Candle> = Vec::new();
        let page_rows = self.venue.page_limit();
        let span = interval.duration_ms() * i64::from(page_rows);
        let mut cursor = from_ms;
        while cursor <= to_ms {
            let window_end = to_ms.min(cursor.saturating_add(span - 1));
            let page = self
                .klines(symbol, interval, Some(cursor), Some(window_end), page_rows)
                .await?;
            for c in page {
                let fresh = out.last().is_none_or(|l| c.open_time > l.open_time);
                if fresh && c.open_time >= from_ms && c.open_time <= to_ms {
                    out.push(c);
                }
            }
            on_page(out.len());
            cursor = window_end.saturating_add(1);
        }
        Ok(out)
    }

    /// The newest `count` candles that closed before the exchange time `now_ms`.
    pub async fn last_closed(
        &self,
        symbol: &str,
        interval: Interval,
        count: usize,
        now_ms: i64,
    ) -> Result<Vec<Candle>, FeedError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let forming = interval.floor(now_ms);
        let mut from = forming;
        for _ in 0..count {
            from = interval.floor(from - 1);
        }
        let mut rows = self
            .klines_range(symbol, interval, from, forming - 1, |_| {})
            .await?;
        rows.retain(|c| c.close_time < now_ms);
        let excess = rows.len().saturating_sub(count);
        rows.drain(..excess);
        Ok(rows)
    }
}

/// A transport failure with its causes ("timed out", "connection refused", "invalid HTTP
/// version"): reqwest's own text is only "error sending request".
fn transport_error(url: &str, e: reqwest::Error) -> FeedError {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let part = c.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        cause = c.source();
    }
    FeedError::Http(format!("{url}: {msg}"))
}

/// A body read up to a cap.
enum Capped {
    /// The whole body.
    Whole(String),
    /// The body is longer than the cap: its first `cap` bytes (the rest is never read).
    Over(Vec<u8>),
}

/// Reads a body up to `cap` bytes, so an endless body costs at most `cap`.
async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Capped, FeedError> {
    let url = resp.url().to_string();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&url, e))? {
        if buf.len() + chunk.len() > cap {
            let room = cap - buf.len();
            buf.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Over(buf));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map(Capped::Whole)
        .map_err(|_| FeedError::Parse(format!("{url}: body is not UTF-8")))
}
