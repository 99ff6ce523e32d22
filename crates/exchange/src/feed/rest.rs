//! [`RestClient`]: klines, server time and symbol checks over HTTP for any [`ExchangeKind`],
//! with `Retry-After` honoured on 429/418, retries on 5xx and transport errors, and a pause
//! when Binance's `X-MBX-USED-WEIGHT-1M` nears the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use manus_core::{Candle, Interval};
use tracing::{debug, warn};

use super::{ExchangeKind, FeedError};
use crate::{binance, bybit};

/// Candles per page (both exchanges' maximum).
const PAGE: u32 = 1000;
/// Binance.US allows 1200 weight per minute; pause for the next minute above this.
const WEIGHT_SOFT_LIMIT: u32 = 1000;
/// Wait when a 429/418 carries no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest single wait we honour before giving up (418 bans can last days).
const MAX_WAIT: Duration = Duration::from_secs(600);

/// An HTTP client for one exchange's market-data REST API.
#[derive(Debug, Clone)]
pub struct RestClient {
    kind: ExchangeKind,
    base: String,
    http: reqwest::Client,
    max_retries: u32,
    retry_delay: Duration,
    used_weight: Arc<AtomicU32>,
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
            base: base.trim_end_matches('/').to_string(),
            http,
            max_retries: 5,
            retry_delay: Duration::from_millis(250),
            used_weight: Arc::new(AtomicU32::new(0)),
        })
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

    /// One GET; the body on 2xx, a typed error otherwise.
    async fn get_once(&self, path: &str) -> Result<String, FeedError> {
        if self.used_weight.load(Ordering::Relaxed) >= WEIGHT_SOFT_LIMIT {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            let wait = Duration::from_millis(60_000 - now % 60_000);
            warn!(
                wait_ms = wait.as_millis() as u64,
                "request weight near the limit; pausing"
            );
            tokio::time::sleep(wait).await;
            self.used_weight.store(0, Ordering::Relaxed);
        }
        let url = format!("{}{}", self.base, path);
        debug!(%url, "GET");
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| FeedError::Http(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(w) = header("x-mbx-used-weight-1m").and_then(|w| w.parse().ok()) {
            self.used_weight.store(w, Ordering::Relaxed);
        }
        if status == 429 || status == 418 {
            let retry_after = header("retry-after")
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(FeedError::RateLimited {
                status,
                retry_after,
            });
        }
        let body = resp
            .text()
            .await
            .map_err(|e| FeedError::Http(format!("{url}: {e}")))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let typed = match self.kind {
            ExchangeKind::Bybit => bybit::rest::parse_error(&body),
            _ => binance::rest::parse_error(&body),
        };
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
            if status == 403 && self.kind == ExchangeKind::Bybit {
                body.push_str(" (Bybit answers 403 to US IP addresses and to clients over its rate limit)");
            }
            if status == 451 {
                body.push_str(" (unavailable from this location: Binance global refuses US IP addresses; use binanceus)");
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
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    attempt += 1;
                    let wait = match &e {
                        FeedError::RateLimited { retry_after, .. } => *retry_after,
                        _ => {
                            let d = delay;
                            delay = (delay * 2).min(Duration::from_secs(10));
                            d
                        }
                    };
                    if wait > MAX_WAIT {
                        return Err(e);
                    }
                    warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "REST request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The exchange's clock, ms UTC (`/api/v3/time`, `/v5/market/time`).
    pub async fn server_time(&self) -> Result<i64, FeedError> {
        match self.kind {
            ExchangeKind::Bybit => {
                bybit::rest::parse_time(&self.get(bybit::rest::TIME_PATH).await?)
            }
            _ => binance::rest::parse_time(&self.get(binance::rest::TIME_PATH).await?),
        }
    }

    /// Checks that `symbol` is listed and trading (`exchangeInfo` / `instruments-info`); an
    /// unknown symbol gives the exchange's error.
    pub async fn check_symbol(&self, symbol: &str) -> Result<(), FeedError> {
        match self.kind {
            ExchangeKind::Bybit => {
                let body = self.get(&bybit::rest::instruments_path(symbol)).await?;
                bybit::rest::check_symbol(&body, symbol)
            }
            _ => {
                let body = self.get(&binance::rest::exchange_info_path(symbol)).await?;
                binance::rest::check_symbol(&body, symbol)
            }
        }
    }

    /// Checks several symbols with as few requests as the exchange allows: Binance answers
    /// `exchangeInfo?symbols=[..]` for 100 symbols at a time at the weight of one request (and
    /// with its own -1121 error when any is unknown); Bybit is asked symbol by symbol.
    pub async fn check_symbols(&self, symbols: &[&str]) -> Result<(), FeedError> {
        if self.kind == ExchangeKind::Bybit || symbols.len() < 2 {
            for s in symbols {
                self.check_symbol(s).await?;
            }
            return Ok(());
        }
        for chunk in symbols.chunks(100) {
            let body = self
                .get(&binance::rest::exchange_info_many_path(chunk))
                .await?;
            for s in chunk {
                binance::rest::check_symbol(&body, s)?;
            }
        }
        Ok(())
    }

    /// Up to `limit` (≤ 1000) candles, oldest first. The newest row may still be forming.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Candle>, FeedError> {
        match self.kind {
            ExchangeKind::Bybit => {
                let path = bybit::rest::klines_path(symbol, interval, start_ms, end_ms, limit)?;
                bybit::rest::parse_klines(&self.get(&path).await?, interval)
            }
            _ => {
                let path = binance::rest::klines_path(symbol, interval, start_ms, end_ms, limit);
                binance::rest::parse_klines(&self.get(&path).await?, interval)
            }
        }
    }

    /// Every candle opening in `[from_ms, to_ms]`, oldest first, gapless as the exchange has
    /// them, paging 1000 at a time. Each window spans at most 1000 intervals, so the answer is
    /// complete whether the exchange anchors `limit` at the start (Binance) or the end (Bybit).
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
        let span = interval.duration_ms() * i64::from(PAGE);
        let mut cursor = from_ms;
        while cursor <= to_ms {
            let window_end = to_ms.min(cursor.saturating_add(span - 1));
            let page = self
                .klines(symbol, interval, Some(cursor), Some(window_end), PAGE)
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
