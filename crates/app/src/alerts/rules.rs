//! Alert rules: which signal records become alerts. A rule fires when the confluence decision
//! becomes BUY or SELL with confidence at or above its threshold (and, optionally, with one of
//! its chosen strategies agreeing), for the symbols and intervals it watches. It fires once per
//! move: while the decision stays the same it stays quiet, and it re-arms when the decision
//! changes. Each record is evaluated once, so a rule alerts at most once per candle.

use std::collections::HashMap;

use manus_core::record::SignalRecord;
use manus_core::{Action, Interval};

use crate::clock::{format_ms, now_ms};
use crate::store::NewAlert;
use crate::store::sink::RecordObserver;

/// One rule, validated (see [`super::config::RuleConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Rule name.
    pub name: String,
    /// Upper-case symbols; empty: all.
    pub symbols: Vec<String>,
    /// Intervals; empty: all.
    pub intervals: Vec<Interval>,
    /// Minimum confidence.
    pub min_confidence: f64,
    /// Strategies of which one must agree; empty: no condition.
    pub strategies: Vec<String>,
    /// Notifiers to alert.
    pub notifiers: Vec<String>,
}

impl AlertRule {
    /// The decision this record qualifies for under this rule, if any.
    fn qualifies(&self, r: &SignalRecord) -> Option<Action> {
        let watched = (self.symbols.is_empty() || self.symbols.contains(&r.symbol))
            && (self.intervals.is_empty() || self.intervals.contains(&r.interval));
        let strong = r.confluence != Action::Hold && r.confidence >= self.min_confidence;
        let agreed =
            self.strategies.is_empty() || self.strategies.iter().any(|s| r.agreeing.contains(s));
        (watched && strong && agreed).then_some(r.confluence)
    }
}

/// The rules and, per rule and series, the decision last alerted.
#[derive(Debug, Clone)]
pub struct AlertRules {
    rules: Vec<AlertRule>,
    /// (rule index, exchange, symbol, interval) → decision alerted and still in force.
    alerted: HashMap<(usize, String, String, Interval), Action>,
    /// Alerts for candles that closed more than this many periods ago are recorded as
    /// skipped, not sent.
    max_age_candles: u64,
}

/// Default of `AlertRules::with_max_age_candles`: a restart after a long outage must not flood a
/// chat with stale calls; the current and the previous candle still alert.
pub const DEFAULT_MAX_ALERT_AGE_CANDLES: u64 = 2;

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules::new(Vec::new())
    }
}

impl AlertRules {
    /// Rules with no history.
    pub fn new(rules: Vec<AlertRule>) -> Self {
        AlertRules {
            rules,
            alerted: HashMap::new(),
            max_age_candles: DEFAULT_MAX_ALERT_AGE_CANDLES,
        }
    }

    /// Sets how many periods after its candle closed an alert may still be sent.
    pub fn with_max_age_candles(mut self, n: u64) -> Self {
        self.max_age_candles = n;
        self
    }

    /// Why an alert for `record` must not be sent at `now_ms` (a backfilled candle that closed
    /// too long ago), or `None`. Live records are never stale: their candle just closed (and a
    /// simulated market's clock need not match ours).
    pub fn staleness(&self, record: &SignalRecord, now_ms: i64) -> Option<String> {
        if record.backfilled != Some(true) {
            return None;
        }
        let closed = record.interval.close_time(record.open_time) + 1;
        let period = record.interval.duration_ms();
        let age = now_ms - closed;
        (age > self.max_age_candles as i64 * period).then(|| {
            format!(
                "not sent: its candle closed {} s ago, more than {} periods",
                age / 1000,
                self.max_age_candles
            )
        })
    }

    /// The rules.
    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// True when there is no rule (nothing can fire).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Replays stored records (oldest first) without alerting, so that after a restart a
    /// decision already alerted is not alerted again.
    pub fn seed(&mut self, exchange: &str, records: &[SignalRecord]) {
        for r in records {
            let _ = self.evaluate(exchange, r);
        }
    }

    /// The alerts `record` triggers: one row per firing rule and notifier.
    pub fn evaluate(&mut self, exchange: &str, record: &SignalRecord) -> Vec<NewAlert> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = (
                i,
                exchange.to_string(),
                record.symbol.clone(),
                record.interval,
            );
            // The decision moved away from what was alerted: re-arm.
            if self
                .alerted
                .get(&key)
                .is_some_and(|a| *a != record.confluence)
            {
                self.alerted.remove(&key);
            }
            let Some(action) = rule.qualifies(record) else {
                continue;
            };
            if self.alerted.contains_key(&key) {
                continue;
            }
            self.alerted.insert(key, action);
            let message = message(exchange, record, &rule.name);
            out.extend(rule.notifiers.iter().map(|n| NewAlert {
                rule: rule.name.clone(),
                notifier: n.clone(),
                message: message.clone(),
                skipped: None,
            }));
        }
        out
    }
}

/// The rules as the store writer's observer: evaluated per record, replayed from the store
/// after a restart.
impl RecordObserver for AlertRules {
    fn wants_history(&self) -> bool {
        !self.is_empty()
    }

    fn replay(&mut self, exchange: &str, records: &[SignalRecord]) {
        self.seed(exchange, records);
    }

    fn outbox(&mut self, exchange: &str, record: &SignalRecord) -> Vec<NewAlert> {
        let mut outbox = self.evaluate(exchange, record);
        // Evaluated (so "once per move" holds) but recorded as skipped when the candle closed
        // long ago: a resume after an outage must not flood a chat with stale calls.
        if !outbox.is_empty()
            && let Some(why) = self.staleness(record, record.exchange_time.unwrap_or_else(now_ms))
        {
            for a in &mut outbox {
                a.skipped = Some(why.clone());
            }
        }
        outbox
    }
}

/// The alert text: decision, market, price, confidence, agreeing strategies, candle time.
pub fn message(exchange: &str, r: &SignalRecord, rule: &str) -> String {
    format!(
        "{} {} {} at {} — confidence {:.0}% ({}) — candle {} UTC — {} [{}]",
        r.confluence,
        r.symbol,
        r.interval.as_str(),
        r.close,
        r.confidence * 100.0,
        if r.agreeing.is_empty() {
            "-".to_string()
        } else {
            r.agreeing.join(", ")
        },
        format_ms(r.open_time),
        exchange,
        rule,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use manus_core::record::Signals;

    fn rec(t: i64, a: Action, conf: f64) -> SignalRecord {
        SignalRecord {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
            open_time: t * 60_000,
            close: 100.0,
            signals: Signals(vec![("macd".into(), a), ("rsi".into(), Action::Hold)]),
            confluence: a,
            confidence: conf,
            agreeing: vec!["macd".into()],
            events: Vec::new(),
            votes: Default::default(),
            warming_up: false,
            latency_us: None,
            backfilled: None,
            stale: None,
            exchange_time: None,
        }
    }

    fn rule(min: f64) -> AlertRule {
        AlertRule {
            name: "r".into(),
            symbols: vec![],
            intervals: vec![],
            min_confidence: min,
            strategies: vec![],
            notifiers: vec!["tg".into(), "hook".into()],
        }
    }

    /// Which candles fire, for a sequence of (decision, confidence).
    fn fired(rules: &mut AlertRules, seq: &[(Action, f64)]) -> Vec<i64> {
        seq.iter()
            .enumerate()
            .filter(|(t, (a, c))| {
                !rules
                    .evaluate("binance", &rec(*t as i64, *a, *c))
                    .is_empty()
            })
            .map(|(t, _)| t as i64)
            .collect()
    }

    #[test]
    fn fires_once_per_move_above_threshold() {
        use Action::*;
        struct Case {
            seq: Vec<(Action, f64)>,
            expected: Vec<i64>,
        }
        let cases = [
            // Steady BUY alerts once; HOLD re-arms; SELL is a new move.
            Case {
                seq: vec![(Buy, 0.8), (Buy, 0.9), (Hold, 1.0), (Buy, 0.8), (Sell, 0.7)],
                expected: vec![0, 3, 4],
            },
            // A weak BUY waits until it is strong enough, then alerts once.
            Case {
                seq: vec![(Buy, 0.4), (Buy, 0.7), (Buy, 0.4), (Buy, 0.9)],
                expected: vec![1],
            },
            // HOLD never alerts, whatever its confidence.
            Case {
                seq: vec![(Hold, 1.0), (Hold, 1.0)],
                expected: vec![],
            },
        ];
        for c in cases {
            let mut rules = AlertRules::new(vec![rule(0.6)]);
            assert_eq!(fired(&mut rules, &c.seq), c.expected, "{:?}", c.seq);
        }
    }

    #[test]
    fn one_row_per_notifier_with_a_readable_message() {
        let mut rules = AlertRules::new(vec![rule(0.5)]);
        let out = rules.evaluate("binance", &rec(1, Action::Sell, 0.75));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].notifier, "tg");
        assert_eq!(out[1].notifier, "hook");
        assert_eq!(
            out[0].message,
            "SELL BTCUSDT 1m at 100 — confidence 75% (macd) — candle 1970-01-01 00:01:00 UTC — binance [r]"
        );
    }

    #[test]
    fn filters_by_symbol_interval_and_strategy() {
        let mut only_eth = rule(0.0);
        only_eth.symbols = vec!["ETHUSDT".into()];
        let mut only_5m = rule(0.0);
        only_5m.intervals = vec![Interval::M5];
        let mut only_rsi = rule(0.0);
        only_rsi.strategies = vec!["rsi".into()];
        let mut macd = rule(0.0);
        macd.name = "macd".into();
        macd.strategies = vec!["macd".into(), "other".into()];
        let mut rules = AlertRules::new(vec![only_eth, only_5m, only_rsi, macd]);
        let out = rules.evaluate("binance", &rec(0, Action::Buy, 1.0));
        assert!(
            out.iter().all(|a| a.rule == "macd") && out.len() == 2,
            "{out:?}"
        );
    }

    #[test]
    fn seeding_prevents_a_repeat_after_restart() {
        let mut rules = AlertRules::new(vec![rule(0.5)]);
        rules.seed(
            "binance",
            &[rec(0, Action::Buy, 0.9), rec(1, Action::Buy, 0.9)],
        );
        assert!(
            rules
                .evaluate("binance", &rec(2, Action::Buy, 0.9))
                .is_empty()
        );
        // Another exchange's series is separate.
        assert!(
            !rules
                .evaluate("bybit", &rec(2, Action::Buy, 0.9))
                .is_empty()
        );
    }
}
