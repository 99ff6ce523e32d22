//! The PostgreSQL backend for teams running several instances against one database
//! (`--db postgres://user@host/db`). Several writers may store the same signal: the unique key
//! keeps one row and one set of alerts; workers claim alerts with `FOR UPDATE SKIP LOCKED`, so
//! each is delivered by one instance. The client is synchronous and must not run on a tokio
//! runtime thread: use a dedicated thread or `spawn_blocking`.

use manus_core::record::SignalRecord;
use manus_core::{Candle, Interval};
use postgres::{Client, NoTls, Row};

use super::schema::pending;
use super::sqlite::{RawAlert, signals_sql};
use super::{
    Alert, AlertStatus, BacktestRun, CLAIM_LEASE_MS, NewAlert, NewBacktestRun, Result, Rows,
    SignalQuery, Store, StoreError, StoredSignal, parse_json, parse_record,
};
use crate::clock::now_ms;

/// Columns of an [`Alert`], in [`raw_alert`] order.
const ALERT_COLS: &str = "id, exchange, symbol, interval, open_time, rule, notifier, message, \
     status, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// Serialises concurrent migrations from several instances (an arbitrary constant).
const MIGRATION_LOCK: i64 = 0x6d61_6e75_735f_6462;

/// A connection to a PostgreSQL database.
pub struct PostgresStore {
    /// Always `Some` until dropped (see the `Drop` impl).
    client: Option<Client>,
    location: String,
}

impl Drop for PostgresStore {
    /// The client's own drop blocks on a runtime of its own, which panics on a tokio thread
    /// (the last handle of a live run's store can go there): close it on a plain thread then.
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

impl PostgresStore {
    fn client_mut(&mut self) -> &mut Client {
        // Taken only by `drop`.
        self.client
            .as_mut()
            .expect("the client lives until the store is dropped")
    }
}

impl std::fmt::Debug for PostgresStore {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` and applies migrations.
    pub fn open(url: &str) -> Result<Self> {
        let client = Client::connect(url, NoTls)?;
        let mut s = PostgresStore {
            client: Some(client),
            location: redact(url),
        };
        s.migrate()?;
        Ok(s)
    }

    /// Connects to `url` and works inside the schema `schema` (created if missing), so that
    /// tests sharing a database do not see each other.
    pub fn open_in_schema(url: &str, schema: &str) -> Result<Self> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Invalid(format!(
                "schema name '{schema}' must be [a-z0-9_]+"
            )));
        }
        let mut client = Client::connect(url, NoTls)?;
        // `CREATE SCHEMA IF NOT EXISTS` is not safe against a concurrent create of the same
        // name; the migration lock serialises it with every other opener.
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        tx.commit()?;
        client.batch_execute(&format!("SET search_path TO {schema}"))?;
        let mut s = PostgresStore {
            client: Some(client),
            location: format!("{} (schema {schema})", redact(url)),
        };
        s.migrate()?;
        Ok(s)
    }

    /// Drops a schema made by [`PostgresStore::open_in_schema`] (test clean-up).
    pub fn drop_schema(&mut self, schema: &str) -> Result<()> {
        if !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Invalid(format!("bad schema name '{schema}'")));
        }
        self.client_mut()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let mut tx = self.client_mut().transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
            .get(0);
        for m in pending(current)? {
            tracing::info!(
                version = m.version,
                name = m.name,
                "postgres: applying migration"
            );
            tx.batch_execute(m.postgres)?;
            tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// The URL without its password (and without its query, which may carry one too).
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres".to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    format!("{scheme}://{host}{path}")
}

fn raw_alert(r: &Row) -> RawAlert {
    RawAlert {
        id: r.get(0),
        exchange: r.get(1),
        symbol: r.get(2),
        interval: r.get(3),
        open_time: r.get(4),
        rule: r.get(5),
        notifier: r.get(6),
        message: r.get(7),
        status: r.get(8),
        attempts: r.get(9),
        next_attempt_at: r.get(10),
        last_error: r.get(11),
        created_at: r.get(12),
        delivered_at: r.get(13),
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn schema_version(&mut self) -> Result<i64> {
        Ok(self
            .client_mut()
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
            .get(0))
    }

    fn upsert_candles(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> Result<usize> {
        let mut tx = self.client_mut().transaction()?;
        let st = tx.prepare(
            "INSERT INTO candles
               (exchange, symbol, interval, open_time, close_time, open, high, low, close, volume)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (exchange, symbol, interval, open_time) DO UPDATE SET
               close_time = excluded.close_time, open = excluded.open, high = excluded.high,
               low = excluded.low, close = excluded.close, volume = excluded.volume",
        )?;
        let iv = interval.as_str();
        for c in candles {
            tx.execute(
                &st,
                &[
                    &exchange,
                    &symbol,
                    &iv,
                    &c.open_time,
                    &c.close_time,
                    &c.open,
                    &c.high,
                    &c.low,
                    &c.close,
                    &c.volume,
                ],
            )?;
        }
        tx.commit()?;
        Ok(candles.len())
    }

    fn candles_range(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
        from: i64,
        to: i64,
    ) -> Result<Vec<Candle>> {
        let rows = self.client_mut().query(
            "SELECT open_time, close_time, open, high, low, close, volume FROM candles
             WHERE exchange = $1 AND symbol = $2 AND interval = $3
               AND open_time >= $4 AND open_time < $5
             ORDER BY open_time",
            &[&exchange, &symbol, &interval.as_str(), &from, &to],
        )?;
        Ok(rows
            .iter()
            .map(|r| Candle {
                open_time: r.get(0),
                close_time: r.get(1),
                open: r.get(2),
                high: r.get(3),
                low: r.get(4),
                close: r.get(5),
                volume: r.get(6),
            })
            .collect())
    }

    fn insert_signal(
        &mut self,
        exchange: &str,
        record: &SignalRecord,
        outbox: &[NewAlert],
    ) -> Result<bool> {
        let json = serde_json::to_string(record)?;
        let now = now_ms();
        let iv = record.interval.as_str();
        let mut tx = self.client_mut().transaction()?;
        let inserted = tx.execute(
            "INSERT INTO signals
               (exchange, symbol, interval, open_time, confluence, confidence, record, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (exchange, symbol, interval, open_time) DO NOTHING",
            &[
                &exchange,
                &record.symbol,
                &iv,
                &record.open_time,
                &record.confluence.as_str(),
                &record.confidence,
                &json,
                &now,
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        if !outbox.is_empty() {
            let st = tx.prepare(
                "INSERT INTO alert_outbox
                   (exchange, symbol, interval, open_time, rule, notifier, message,
                    next_attempt_at, created_at, status, last_error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)
                 ON CONFLICT DO NOTHING",
            )?;
            for a in outbox {
                tx.execute(
                    &st,
                    &[
                        &exchange,
                        &record.symbol,
                        &iv,
                        &record.open_time,
                        &a.rule,
                        &a.notifier,
                        &a.message,
                        &now,
                        &a.status().as_str(),
                        &a.skipped,
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    fn read_signals(&mut self, q: &SignalQuery) -> Result<Rows<StoredSignal>> {
        // Casts give each optional parameter a type even when it is NULL.
        let sql = signals_sql(q.order, |n| match n {
            4 | 5 | 7 | 8 => format!("${n}::BIGINT"),
            _ => format!("${n}::TEXT"),
        });
        let limit = q.limit.map(|l| l.min(i64::MAX as usize) as i64);
        let interval = q.interval.map(|i| i.as_str());
        let decision = q.decision.map(|d| d.as_str());
        let offset = q.offset as i64;
        let rows = self.client_mut().query(
            &sql,
            &[
                &q.exchange,
                &q.symbol,
                &interval,
                &q.since,
                &q.until,
                &decision,
                &limit,
                &offset,
            ],
        )?;
        let mut out = Rows::default();
        for r in &rows {
            let id: i64 = r.get(0);
            let parsed = (|| {
                Ok(StoredSignal {
                    exchange: r.try_get(1)?,
                    record: parse_record(r.try_get(2)?)?,
                })
            })();
            out.push("signals", id, parsed);
        }
        Ok(out)
    }

    fn signal_open_times(
        &mut self,
        exchange: Option<&str>,
        symbol: &str,
        interval: Interval,
    ) -> Result<Vec<i64>> {
        Ok(self
            .client_mut()
            .query(
                "SELECT DISTINCT open_time FROM signals
                 WHERE ($1::TEXT IS NULL OR exchange = $1) AND symbol = $2 AND interval = $3
                 ORDER BY open_time",
                &[&exchange, &symbol, &interval.as_str()],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn last_signal_open_time(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
    ) -> Result<Option<i64>> {
        Ok(self
            .client_mut()
            .query_one(
                "SELECT MAX(open_time) FROM signals
                 WHERE exchange = $1 AND symbol = $2 AND interval = $3",
                &[&exchange, &symbol, &interval.as_str()],
            )?
            .get(0))
    }

    fn insert_backtest_run(&mut self, run: &NewBacktestRun) -> Result<i64> {
        let row = self.client_mut().query_one(
            "INSERT INTO backtest_runs (created_at, params, metrics, equity, trades)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &now_ms(),
                &serde_json::to_string(&run.params)?,
                &serde_json::to_string(&run.metrics)?,
                &serde_json::to_string(&run.equity)?,
                &serde_json::to_string(&run.trades)?,
            ],
        )?;
        Ok(row.get(0))
    }

    fn read_backtest_runs(&mut self, limit: usize) -> Result<Rows<BacktestRun>> {
        let rows = self.client_mut().query(
            "SELECT id, created_at, params, metrics, equity, trades FROM backtest_runs
             ORDER BY id DESC LIMIT $1",
            &[&(limit as i64)],
        )?;
        let mut out = Rows::default();
        for r in &rows {
            let id: i64 = r.get(0);
            let parsed = (|| {
                Ok(BacktestRun {
                    id,
                    created_at: r.try_get(1)?,
                    params: parse_json(r.try_get(2)?)?,
                    metrics: parse_json(r.try_get(3)?)?,
                    equity: parse_json(r.try_get(4)?)?,
                    trades: parse_json(r.try_get(5)?)?,
                })
            })();
            out.push("backtest_runs", id, parsed);
        }
        Ok(out)
    }

    fn due_alerts(&mut self, now_ms: i64, limit: usize) -> Result<Vec<Alert>> {
        let rows = self.client_mut().query(
            &format!(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $2
                 WHERE id IN (SELECT id FROM alert_outbox
                              WHERE status = 'pending' AND next_attempt_at <= $1
                              ORDER BY next_attempt_at, id LIMIT $3
                              FOR UPDATE SKIP LOCKED)
                 RETURNING {ALERT_COLS}"
            ),
            &[&now_ms, &(now_ms + CLAIM_LEASE_MS), &(limit as i64)],
        )?;
        let mut out = rows
            .iter()
            .map(|r| raw_alert(r).parse())
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    fn mark_delivered(&mut self, id: i64, now_ms: i64) -> Result<()> {
        self.client_mut().execute(
            "UPDATE alert_outbox SET status = 'delivered', delivered_at = $2, last_error = NULL
             WHERE id = $1 AND status = 'pending'",
            &[&id, &now_ms],
        )?;
        Ok(())
    }

    fn mark_retry(&mut self, id: i64, next_at_ms: i64, error: &str) -> Result<()> {
        self.client_mut().execute(
            "UPDATE alert_outbox SET next_attempt_at = $2, last_error = $3
             WHERE id = $1 AND status = 'pending'",
            &[&id, &next_at_ms, &error],
        )?;
        Ok(())
    }

    fn mark_failed(&mut self, id: i64, error: &str) -> Result<()> {
        self.client_mut().execute(
            "UPDATE alert_outbox SET status = 'failed', last_error = $2
             WHERE id = $1 AND status = 'pending'",
            &[&id, &error],
        )?;
        Ok(())
    }

    fn alerts(&mut self, status: Option<AlertStatus>, limit: usize) -> Result<Vec<Alert>> {
        let st = status.map(|s| s.as_str());
        let rows = self.client_mut().query(
            &format!(
                "SELECT {ALERT_COLS} FROM alert_outbox WHERE ($1::TEXT IS NULL OR status = $1)
                 ORDER BY id LIMIT $2"
            ),
            &[&st, &(limit as i64)],
        )?;
        rows.iter().map(|r| raw_alert(r).parse()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn the_location_never_carries_the_password() {
        let cases = [
            (
                "postgres://u:secret@db:5432/manus",
                "postgres://u@db:5432/manus",
            ),
            (
                "postgresql://db/manus?password=secret",
                "postgresql://db/manus",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("nonsense", "postgres"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
        }
    }
}
