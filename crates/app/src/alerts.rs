//! Alerts: [`Notifier`]s for Telegram ([`telegram`]), Discord ([`discord`]) and signed JSON
//! webhooks ([`webhook`]); [`rules`] that turn signal records into outbox rows (written with the
//! signal, see [`crate::store::Store::insert_signal`]); and the delivery [`worker`] that drains
//! the outbox with retries and backoff, off the candle loop. Settings live in [`config`].
//!
//! Secrets (bot tokens, webhook URLs, HMAC keys) are held in [`Secret`], whose `Debug` and
//! `Display` print `***`, and transport errors are stripped of URLs before they are logged or
//! stored.

pub mod config;
pub mod discord;
pub mod rules;
pub mod telegram;
pub mod webhook;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use crate::store::Alert;

/// A boxed, sendable future (notifiers are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; use only to build a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Why a delivery failed, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// HTTP 429: try again, no sooner than `retry_after` when the service said so.
    #[error("rate limited (HTTP 429{})", retry_after.map(|d| format!(", retry after {:.1}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// The wait the service asked for.
        retry_after: Option<Duration>,
    },
    /// A failure that may pass: 5xx, timeout, connection refused.
    #[error("{0}")]
    Transient(String),
    /// A failure that will not pass by retrying: 4xx other than 429, bad configuration.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    /// True when another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SendError::Permanent(_))
    }

    /// The wait the service asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// One message to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The human-readable text.
    pub text: String,
    /// The same for every attempt of one alert, so receivers can drop repeats.
    pub idempotency_key: String,
    /// Structured fields for webhooks (symbol, interval, open time, rule...).
    pub fields: serde_json::Value,
}

impl Outgoing {
    /// The message for an outbox row.
    pub fn from_alert(a: &Alert) -> Self {
        Outgoing {
            text: a.message.clone(),
            idempotency_key: a.idempotency_key(),
            fields: serde_json::json!({
                "exchange": a.exchange,
                "symbol": a.symbol,
                "interval": a.interval.as_str(),
                "open_time": a.open_time,
                "rule": a.rule,
            }),
        }
    }

    /// A test message (`manus alerts test`).
    pub fn test(now_ms: i64) -> Self {
        Outgoing {
            text: "Market Manus test alert: this notifier is configured correctly.".into(),
            idempotency_key: format!("test:{now_ms}"),
            fields: serde_json::json!({ "test": true }),
        }
    }
}

/// Somewhere alerts are delivered. `Debug` must not print secrets.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The configured name (outbox rows name their notifier).
    fn name(&self) -> &str;

    /// `telegram`, `discord` or `webhook`.
    fn kind(&self) -> &'static str;

    /// Delivers one message.
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The most of a response body a notifier reads: enough for any service's error message or
/// 429 JSON, and a hostile endpoint's endless body cannot grow memory.
pub const MAX_RESPONSE_BODY: usize = 4 * 1024;

/// The HTTP client notifiers share: a bounded request time, so a dead service cannot hold a
/// delivery forever. Redirects are never followed and no `Referer` is ever sent: a redirect
/// would carry the body, the webhook signature and (in the URL) bot and webhook tokens to
/// another host.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, SendError> {
    manus_exchange::tls::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .map_err(|e| SendError::Permanent(format!("HTTP client: {}", e.without_url())))
}

/// POSTs `body` as JSON with `headers` and classifies the answer. The URL (which may hold a
/// token) never appears in the error.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), SendError> {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.map_err(|e| {
        let e = e.without_url();
        if e.is_builder() {
            SendError::Permanent(format!("bad request: {}", chain(&e)))
        } else {
            SendError::Transient(format!("request failed: {}", chain(&e)))
        }
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        // Not followed (see `http_client`): the configured URL is wrong or the service moved,
        // and retrying will not change that.
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(200)
                    .collect()
            })
            .unwrap_or_else(|| "(none)".to_string());
        return Err(SendError::Permanent(format!(
            "HTTP {}: redirect to {location} not followed (alerts are only sent to the configured URL)",
            status.as_u16()
        )));
    }
    let header_wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_seconds);
    let text = read_capped(resp, MAX_RESPONSE_BODY).await;
    if status.as_u16() == 429 {
        let body_wait = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| retry_after_in_body(&v));
        return Err(SendError::RateLimited {
            retry_after: header_wait.or(body_wait),
        });
    }
    let snippet: String = text.chars().take(200).collect();
    let msg = format!("HTTP {}: {}", status.as_u16(), snippet.trim());
    if status.is_server_error() || status.as_u16() == 408 {
        Err(SendError::Transient(msg))
    } else {
        Err(SendError::Permanent(msg))
    }
}

/// At most `cap` bytes of a response body, as text; stops reading there (the rest is dropped
/// with the connection). A body that fails midway gives what arrived.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < cap {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An error and its causes, `: `-joined (the URL was stripped by the caller).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

/// `retry_after` (Discord, seconds, may be fractional) or `parameters.retry_after` (Telegram).
fn retry_after_in_body(v: &serde_json::Value) -> Option<Duration> {
    let secs = v
        .get("retry_after")
        .or_else(|| v.get("parameters").and_then(|p| p.get("retry_after")))?
        .as_f64()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// A `Retry-After` value in seconds (the HTTP-date form is ignored: the backoff applies).
fn parse_seconds(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("123:abc");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "123:abc");
    }

    #[test]
    fn retry_after_is_read_from_either_body_shape() {
        let discord = serde_json::json!({"message": "slow down", "retry_after": 1.5});
        assert_eq!(
            retry_after_in_body(&discord),
            Some(Duration::from_millis(1500))
        );
        let telegram = serde_json::json!({"ok": false, "parameters": {"retry_after": 3}});
        assert_eq!(retry_after_in_body(&telegram), Some(Duration::from_secs(3)));
        assert_eq!(retry_after_in_body(&serde_json::json!({})), None);
        assert_eq!(parse_seconds(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_seconds("-1"), None);
    }
}
