//! The `[alerts]` section of the TOML settings file. Secrets may be written inline or, better,
//! named by an environment variable (`*_env`). Example:
//!
//! ```toml
//! [alerts]
//! [[alerts.telegram]]
//! bot_token_env = "MANUS_TELEGRAM_TOKEN"
//! chat_id = "-100123456"
//!
//! [[alerts.discord]]
//! webhook_url_env = "MANUS_DISCORD_WEBHOOK"
//!
//! [[alerts.webhook]]
//! name = "ops"
//! url = "https://example.com/hook"
//! secret_env = "MANUS_WEBHOOK_SECRET"
//!
//! [[alerts.rules]]
//! name = "btc-strong"
//! symbols = ["BTCUSDT"]          # empty or absent: every symbol
//! intervals = ["5m"]             # empty or absent: every interval
//! min_confidence = 0.66
//! strategies = ["macd"]          # optional: only when one of these agrees
//! notifiers = ["telegram"]       # optional: default every notifier
//!
//! [alerts.delivery]
//! max_attempts = 8
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use manus_core::Interval;
use serde::Deserialize;

use super::discord::Discord;
use super::rules::{AlertRule, AlertRules};
use super::telegram::{DEFAULT_API_BASE, Telegram};
use super::webhook::Webhook;
use super::{Notifier, Secret, http_client};

/// A configuration problem, naming the notifier or rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("alerts config: {0}")]
pub struct AlertConfigError(pub String);

/// Everything under `[alerts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Telegram bots.
    #[serde(default)]
    pub telegram: Vec<TelegramConfig>,
    /// Discord webhooks.
    #[serde(default)]
    pub discord: Vec<DiscordConfig>,
    /// Generic JSON webhooks.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// When to alert.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Retry and queue settings.
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

/// One Telegram bot and chat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Name used by rules and the outbox (default `telegram`).
    pub name: Option<String>,
    /// The bot token, inline.
    pub bot_token: Option<Secret>,
    /// The environment variable holding the bot token.
    pub bot_token_env: Option<String>,
    /// The chat to post to.
    pub chat_id: String,
    /// The Bot API base URL (default `https://api.telegram.org`).
    pub api_base: Option<String>,
}

/// One Discord webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Name used by rules and the outbox (default `discord`).
    pub name: Option<String>,
    /// The webhook URL, inline (it contains a token).
    pub webhook_url: Option<Secret>,
    /// The environment variable holding the webhook URL.
    pub webhook_url_env: Option<String>,
}

/// One generic webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name used by rules and the outbox (default `webhook`).
    pub name: Option<String>,
    /// Where to POST.
    pub url: String,
    /// HMAC-SHA256 signing secret, inline.
    pub secret: Option<Secret>,
    /// The environment variable holding the signing secret.
    pub secret_env: Option<String>,
}

/// One alert rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule name (stored with each alert).
    pub name: String,
    /// Symbols it watches; empty: all.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Intervals it watches; empty: all.
    #[serde(default)]
    pub intervals: Vec<String>,
    /// Minimum confluence confidence, 0..=1.
    #[serde(default)]
    pub min_confidence: f64,
    /// When set, alert only if one of these strategies agrees with the decision.
    #[serde(default)]
    pub strategies: Vec<String>,
    /// Notifier names to alert; empty: all.
    #[serde(default)]
    pub notifiers: Vec<String>,
}

/// Delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before an alert is marked failed.
    pub max_attempts: u32,
    /// First retry delay, ms; doubled per attempt.
    pub backoff_base_ms: u64,
    /// Longest retry delay, ms.
    pub backoff_max_ms: u64,
    /// Per-request timeout, ms.
    pub timeout_ms: u64,
    /// Records queued for the store writer before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// How often the worker looks for due alerts when nothing wakes it, ms.
    pub poll_interval_ms: u64,
    /// Alerts for candles that closed more than this many periods ago (found when a restarted
    /// run resumes) are recorded as skipped, not sent.
    pub max_alert_age_candles: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            timeout_ms: 10_000,
            queue_capacity: 1_024,
            poll_interval_ms: 1_000,
            max_alert_age_candles: crate::alerts::rules::DEFAULT_MAX_ALERT_AGE_CANDLES,
        }
    }
}

impl DeliveryConfig {
    /// Checks every value against its range ([`crate::ranges`]).
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        use crate::ranges as r;
        let err = |e: r::RangeError| AlertConfigError(e.to_string());
        r::MAX_ATTEMPTS.u32(self.max_attempts).map_err(err)?;
        r::BACKOFF_BASE_MS.u64(self.backoff_base_ms).map_err(err)?;
        r::BACKOFF_MAX_MS.u64(self.backoff_max_ms).map_err(err)?;
        r::TIMEOUT_MS.u64(self.timeout_ms).map_err(err)?;
        r::QUEUE_CAPACITY.usize(self.queue_capacity).map_err(err)?;
        r::POLL_INTERVAL_MS
            .u64(self.poll_interval_ms)
            .map_err(err)?;
        r::MAX_ALERT_AGE_CANDLES
            .u64(self.max_alert_age_candles)
            .map_err(err)?;
        Ok(())
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

/// Reads a secret inline or from the environment via `env`.
fn secret(
    what: &str,
    inline: &Option<Secret>,
    var: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, AlertConfigError> {
    match (inline, var) {
        (Some(s), _) => Ok(Some(s.clone())),
        (None, Some(v)) => match env(v).filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(Secret::new(s))),
            None => Err(AlertConfigError(format!(
                "{what}: environment variable {v} is unset or empty"
            ))),
        },
        (None, None) => Ok(None),
    }
}

/// Picks a unique name: the configured one, else `kind`, `kind-2`, ...
fn unique_name(
    kind: &str,
    configured: &Option<String>,
    taken: &mut BTreeSet<String>,
) -> Result<String, AlertConfigError> {
    let name = match configured {
        Some(n) if n.trim().is_empty() => {
            return Err(AlertConfigError(format!(
                "a {kind} notifier has an empty name"
            )));
        }
        Some(n) => n.trim().to_string(),
        None => {
            let mut i = 1;
            loop {
                let n = if i == 1 {
                    kind.to_string()
                } else {
                    format!("{kind}-{i}")
                };
                if !taken.contains(&n) {
                    break n;
                }
                i += 1;
            }
        }
    };
    if !taken.insert(name.clone()) {
        return Err(AlertConfigError(format!(
            "two notifiers are named '{name}'"
        )));
    }
    Ok(name)
}

impl AlertsConfig {
    /// Parses the `alerts` value of the settings file and checks the delivery ranges.
    pub fn from_toml_value(v: toml::Value) -> Result<Self, AlertConfigError> {
        let cfg: AlertsConfig = v
            .try_into()
            .map_err(|e: toml::de::Error| AlertConfigError(e.message().to_string()))?;
        cfg.delivery.validate()?;
        Ok(cfg)
    }

    /// Parses a whole settings file and takes its `[alerts]` section (empty when absent).
    pub fn from_settings_toml(text: &str) -> Result<Self, AlertConfigError> {
        let mut table: toml::Table = toml::from_str(text)
            .map_err(|e| AlertConfigError(crate::config::toml_error(text, &e)))?;
        match table.remove("alerts") {
            Some(v) => Self::from_toml_value(v),
            None => Ok(AlertsConfig::default()),
        }
    }

    /// True when no notifier is configured.
    pub fn has_notifiers(&self) -> bool {
        !(self.telegram.is_empty() && self.discord.is_empty() && self.webhook.is_empty())
    }

    /// Builds the notifiers, reading secrets through `env` (use `|k| std::env::var(k).ok()`).
    pub fn notifiers(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Arc<dyn Notifier>>, AlertConfigError> {
        let client =
            http_client(self.delivery.timeout()).map_err(|e| AlertConfigError(e.to_string()))?;
        let mut taken = BTreeSet::new();
        let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
        for t in &self.telegram {
            let name = unique_name("telegram", &t.name, &mut taken)?;
            let token = secret(&name, &t.bot_token, &t.bot_token_env, env)?.ok_or_else(|| {
                AlertConfigError(format!("{name}: set bot_token or bot_token_env"))
            })?;
            if t.chat_id.trim().is_empty() {
                return Err(AlertConfigError(format!("{name}: chat_id is empty")));
            }
            let base = t.api_base.as_deref().unwrap_or(DEFAULT_API_BASE);
            check_url(&name, base)?;
            out.push(Arc::new(Telegram::new(
                &name,
                base,
                token,
                t.chat_id.trim(),
                client.clone(),
            )));
        }
        for d in &self.discord {
            let name = unique_name("discord", &d.name, &mut taken)?;
            let url = secret(&name, &d.webhook_url, &d.webhook_url_env, env)?.ok_or_else(|| {
                AlertConfigError(format!("{name}: set webhook_url or webhook_url_env"))
            })?;
            check_url(&name, url.expose())?;
            out.push(Arc::new(Discord::new(&name, url, client.clone())));
        }
        for w in &self.webhook {
            let name = unique_name("webhook", &w.name, &mut taken)?;
            check_url(&name, &w.url)?;
            let key = secret(&name, &w.secret, &w.secret_env, env)?;
            out.push(Arc::new(Webhook::new(&name, &w.url, key, client.clone())));
        }
        Ok(out)
    }

    /// Builds the rules, checking they name known notifiers (`notifier_names`).
    pub fn rules(&self, notifier_names: &[String]) -> Result<AlertRules, AlertConfigError> {
        let mut names = BTreeSet::new();
        let mut rules = Vec::new();
        for r in &self.rules {
            if r.name.trim().is_empty() {
                return Err(AlertConfigError("a rule has an empty name".into()));
            }
            if !names.insert(r.name.clone()) {
                return Err(AlertConfigError(format!(
                    "two rules are named '{}'",
                    r.name
                )));
            }
            if !(0.0..=1.0).contains(&r.min_confidence) {
                return Err(AlertConfigError(format!(
                    "rule '{}': min_confidence must be within 0..=1",
                    r.name
                )));
            }
            let intervals = r
                .intervals
                .iter()
                .map(|i| {
                    i.parse::<Interval>()
                        .map_err(|e| AlertConfigError(format!("rule '{}': {e}", r.name)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for n in &r.notifiers {
                if !notifier_names.contains(n) {
                    return Err(AlertConfigError(format!(
                        "rule '{}': no notifier is named '{n}' (configured: {})",
                        r.name,
                        notifier_names.join(", ")
                    )));
                }
            }
            let notifiers = if r.notifiers.is_empty() {
                notifier_names.to_vec()
            } else {
                r.notifiers.clone()
            };
            rules.push(AlertRule {
                name: r.name.clone(),
                symbols: r.symbols.iter().map(|s| s.to_ascii_uppercase()).collect(),
                intervals,
                min_confidence: r.min_confidence,
                strategies: r.strategies.clone(),
                notifiers,
            });
        }
        Ok(AlertRules::new(rules).with_max_age_candles(self.delivery.max_alert_age_candles))
    }
}

/// Rejects URLs that are not http(s), without echoing them (they may hold tokens).
fn check_url(name: &str, url: &str) -> Result<(), AlertConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(AlertConfigError(format!(
            "{name}: the URL must start with https:// or http://"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
exchange = "binanceus"
[alerts]
[[alerts.telegram]]
bot_token_env = "TG_TOKEN"
chat_id = "42"
api_base = "http://127.0.0.1:9"
[[alerts.discord]]
webhook_url = "https://discord.example/api/webhooks/1/secret-token"
[[alerts.webhook]]
name = "ops"
url = "http://127.0.0.1:9/hook"
secret = "s3cret"
[[alerts.rules]]
name = "strong"
symbols = ["btcusdt"]
intervals = ["1m", "5m"]
min_confidence = 0.6
notifiers = ["telegram", "ops"]
[alerts.delivery]
max_attempts = 3
"#;

    fn env(k: &str) -> Option<String> {
        (k == "TG_TOKEN").then(|| "123:tok".to_string())
    }

    #[test]
    fn sample_builds_notifiers_and_rules() {
        let c = AlertsConfig::from_settings_toml(SAMPLE).unwrap();
        assert_eq!(c.delivery.max_attempts, 3);
        assert_eq!(
            c.delivery.backoff_base_ms, 1_000,
            "unset fields keep defaults"
        );
        let ns = c.notifiers(&env).unwrap();
        let names: Vec<_> = ns.iter().map(|n| n.name().to_string()).collect();
        assert_eq!(names, ["telegram", "discord", "ops"]);
        let rules = c.rules(&names).unwrap();
        assert_eq!(rules.rules()[0].symbols, ["BTCUSDT"]);
        assert_eq!(rules.rules()[0].intervals, [Interval::M1, Interval::M5]);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = AlertsConfig::from_settings_toml(SAMPLE).unwrap();
        let ns = c.notifiers(&env).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret-token") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(!format!("{ns:?}").contains("123:tok"));
    }

    #[test]
    fn problems_are_named() {
        let c = AlertsConfig::from_settings_toml(SAMPLE).unwrap();
        let err = c.notifiers(&|_| None).unwrap_err().to_string();
        assert!(err.contains("TG_TOKEN is unset"), "{err}");
        let err = c.rules(&["telegram".into()]).unwrap_err().to_string();
        assert!(err.contains("no notifier is named 'ops'"), "{err}");
        let bad = AlertsConfig::from_settings_toml("[alerts]\nbogus = 1").unwrap_err();
        assert!(bad.to_string().contains("bogus"), "{bad}");
        let dup = "[alerts]\n[[alerts.webhook]]\nurl='http://a'\n[[alerts.webhook]]\nname='webhook'\nurl='http://b'";
        let err = AlertsConfig::from_settings_toml(dup)
            .unwrap()
            .notifiers(&|_| None)
            .unwrap_err();
        assert!(err.to_string().contains("two notifiers"), "{err}");
    }
}
