//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so a commit that
//! returned survives `kill -9` and power loss, and readers (`manus history`) never block the
//! writer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use manus_core::record::SignalRecord;
use manus_core::{Candle, Interval};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::schema::pending;
use super::{
    Alert, AlertStatus, BacktestRun, CLAIM_LEASE_MS, NewAlert, NewBacktestRun, Order, Result, Rows,
    SignalQuery, Store, StoreError, StoredSignal, parse_interval, parse_json, parse_record,
};
use crate::clock::now_ms;

/// Columns of an [`Alert`], in [`alert_from_row`] order.
const ALERT_COLS: &str = "id, exchange, symbol, interval, open_time, rule, notifier, message, \
     status, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// A SQLite database file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::init(conn, path.to_path_buf())
    }

    /// An in-memory database (tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self> {
        // Another process (a second `manus`, `history` reading) may hold the write lock briefly.
        conn.busy_timeout(Duration::from_secs(10))?;
        // SQLite opens a file it may not write read-only without a word; every later write
        // would then fail. Say so now, naming the file.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::Invalid(format!(
                "{}: the database file is read-only (check its permissions and the filesystem)",
                path.display()
            )));
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if path.as_os_str() != ":memory:" && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "{}: cannot switch to WAL mode (got '{mode}')",
                path.display()
            )));
        }
        // FULL: every commit is fsynced before it returns, so an acknowledged write survives.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut s = SqliteStore { conn, path };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<()> {
        // IMMEDIATE takes the write lock up front, so two processes opening a new file at once
        // apply each migration exactly once.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        for m in pending(current)? {
            tracing::info!(
                version = m.version,
                name = m.name,
                "sqlite: applying migration"
            );
            tx.execute_batch(m.sqlite)?;
            tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn alert_from_row(r: &Row<'_>) -> rusqlite::Result<RawAlert> {
    Ok(RawAlert {
        id: r.get(0)?,
        exchange: r.get(1)?,
        symbol: r.get(2)?,
        interval: r.get(3)?,
        open_time: r.get(4)?,
        rule: r.get(5)?,
        notifier: r.get(6)?,
        message: r.get(7)?,
        status: r.get(8)?,
        attempts: r.get(9)?,
        next_attempt_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        delivered_at: r.get(13)?,
    })
}

/// An outbox row before its enum columns are parsed (shared with the Postgres backend).
pub(crate) struct RawAlert {
    pub(crate) id: i64,
    pub(crate) exchange: String,
    pub(crate) symbol: String,
    pub(crate) interval: String,
    pub(crate) open_time: i64,
    pub(crate) rule: String,
    pub(crate) notifier: String,
    pub(crate) message: String,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) delivered_at: Option<i64>,
}

impl RawAlert {
    pub(crate) fn parse(self) -> Result<Alert> {
        Ok(Alert {
            id: self.id,
            exchange: self.exchange,
            symbol: self.symbol,
            interval: parse_interval(&self.interval)?,
            open_time: self.open_time,
            rule: self.rule,
            notifier: self.notifier,
            message: self.message,
            status: AlertStatus::parse(&self.status)?,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }
}

/// The shared signal query; `?N IS NULL` makes each filter optional.
pub(crate) fn signals_sql(order: Order, placeholder: fn(usize) -> String) -> String {
    let p = placeholder;
    format!(
        "SELECT id, exchange, record FROM signals
         WHERE ({e} IS NULL OR exchange = {e})
           AND ({s} IS NULL OR symbol = {s})
           AND ({i} IS NULL OR interval = {i})
           AND ({since} IS NULL OR open_time >= {since})
           AND ({until} IS NULL OR open_time < {until})
           AND ({d} IS NULL OR confluence = {d})
         ORDER BY open_time {ord}, exchange, symbol, interval
         LIMIT {lim} OFFSET {off}",
        e = p(1),
        s = p(2),
        i = p(3),
        since = p(4),
        until = p(5),
        d = p(6),
        lim = p(7),
        off = p(8),
        ord = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        },
    )
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn schema_version(&mut self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?)
    }

    fn upsert_candles(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO candles
                   (exchange, symbol, interval, open_time, close_time, open, high, low, close, volume)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (exchange, symbol, interval, open_time) DO UPDATE SET
                   close_time = excluded.close_time, open = excluded.open, high = excluded.high,
                   low = excluded.low, close = excluded.close, volume = excluded.volume",
            )?;
            for c in candles {
                st.execute(params![
                    exchange,
                    symbol,
                    interval.as_str(),
                    c.open_time,
                    c.close_time,
                    c.open,
                    c.high,
                    c.low,
                    c.close,
                    c.volume
                ])?;
            }
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
        let mut st = self.conn.prepare_cached(
            "SELECT open_time, close_time, open, high, low, close, volume FROM candles
             WHERE exchange = ?1 AND symbol = ?2 AND interval = ?3
               AND open_time >= ?4 AND open_time < ?5
             ORDER BY open_time",
        )?;
        let rows = st.query_map(
            params![exchange, symbol, interval.as_str(), from, to],
            |r| {
                Ok(Candle {
                    open_time: r.get(0)?,
                    close_time: r.get(1)?,
                    open: r.get(2)?,
                    high: r.get(3)?,
                    low: r.get(4)?,
                    close: r.get(5)?,
                    volume: r.get(6)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn insert_signal(
        &mut self,
        exchange: &str,
        record: &SignalRecord,
        outbox: &[NewAlert],
    ) -> Result<bool> {
        let json = serde_json::to_string(record)?;
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO signals
               (exchange, symbol, interval, open_time, confluence, confidence, record, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (exchange, symbol, interval, open_time) DO NOTHING",
            params![
                exchange,
                record.symbol,
                record.interval.as_str(),
                record.open_time,
                record.confluence.as_str(),
                record.confidence,
                json,
                now
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO alert_outbox
                   (exchange, symbol, interval, open_time, rule, notifier, message,
                    next_attempt_at, created_at, status, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)
                 ON CONFLICT DO NOTHING",
            )?;
            for a in outbox {
                st.execute(params![
                    exchange,
                    record.symbol,
                    record.interval.as_str(),
                    record.open_time,
                    a.rule,
                    a.notifier,
                    a.message,
                    now,
                    a.status().as_str(),
                    a.skipped,
                ])?;
            }
        }
        tx.commit()?;
        Ok(true)
    }

    fn read_signals(&mut self, q: &SignalQuery) -> Result<Rows<StoredSignal>> {
        let sql = signals_sql(q.order, |n| format!("?{n}"));
        let mut st = self.conn.prepare_cached(&sql)?;
        let limit = q.limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64);
        let rows = st.query_map(
            params![
                q.exchange,
                q.symbol,
                q.interval.map(|i| i.as_str()),
                q.since,
                q.until,
                q.decision.map(|d| d.as_str()),
                limit,
                q.offset as i64
            ],
            // A column of the wrong type is this row's problem, not the query's.
            |r| {
                let id: i64 = r.get(0)?;
                let row = r
                    .get::<_, String>(1)
                    .and_then(|e| Ok((e, r.get::<_, String>(2)?)));
                Ok((id, row))
            },
        )?;
        let mut out = Rows::default();
        for row in rows {
            let (id, row) = row?;
            let parsed = row.map_err(StoreError::from).and_then(|(exchange, json)| {
                Ok(StoredSignal {
                    exchange,
                    record: parse_record(&json)?,
                })
            });
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
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT open_time FROM signals
             WHERE (?1 IS NULL OR exchange = ?1) AND symbol = ?2 AND interval = ?3
             ORDER BY open_time",
        )?;
        let rows = st.query_map(params![exchange, symbol, interval.as_str()], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn last_signal_open_time(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT MAX(open_time) FROM signals
                 WHERE exchange = ?1 AND symbol = ?2 AND interval = ?3",
                params![exchange, symbol, interval.as_str()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    fn insert_backtest_run(&mut self, run: &NewBacktestRun) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO backtest_runs (created_at, params, metrics, equity, trades)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                now_ms(),
                serde_json::to_string(&run.params)?,
                serde_json::to_string(&run.metrics)?,
                serde_json::to_string(&run.equity)?,
                serde_json::to_string(&run.trades)?
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn read_backtest_runs(&mut self, limit: usize) -> Result<Rows<BacktestRun>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, created_at, params, metrics, equity, trades FROM backtest_runs
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![limit as i64], |r| {
            let id: i64 = r.get(0)?;
            let text = |i| r.get::<_, String>(i);
            let row: rusqlite::Result<_> =
                (|| Ok((r.get::<_, i64>(1)?, text(2)?, text(3)?, text(4)?, text(5)?)))();
            Ok((id, row))
        })?;
        let mut out = Rows::default();
        for row in rows {
            let (id, row) = row?;
            let parsed = row
                .map_err(StoreError::from)
                .and_then(|(created_at, p, m, e, t)| {
                    Ok(BacktestRun {
                        id,
                        created_at,
                        params: parse_json(&p)?,
                        metrics: parse_json(&m)?,
                        equity: parse_json(&e)?,
                        trades: parse_json(&t)?,
                    })
                });
            out.push("backtest_runs", id, parsed);
        }
        Ok(out)
    }

    fn due_alerts(&mut self, now_ms: i64, limit: usize) -> Result<Vec<Alert>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let raw = {
            let mut st = tx.prepare_cached(&format!(
                "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?2
                 WHERE id IN (SELECT id FROM alert_outbox
                              WHERE status = 'pending' AND next_attempt_at <= ?1
                              ORDER BY next_attempt_at, id LIMIT ?3)
                 RETURNING {ALERT_COLS}"
            ))?;
            let rows = st.query_map(
                params![now_ms, now_ms + CLAIM_LEASE_MS, limit as i64],
                alert_from_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        let mut out = raw
            .into_iter()
            .map(RawAlert::parse)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    fn mark_delivered(&mut self, id: i64, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE alert_outbox SET status = 'delivered', delivered_at = ?2, last_error = NULL
             WHERE id = ?1 AND status = 'pending'",
            params![id, now_ms],
        )?;
        Ok(())
    }

    fn mark_retry(&mut self, id: i64, next_at_ms: i64, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE alert_outbox SET next_attempt_at = ?2, last_error = ?3
             WHERE id = ?1 AND status = 'pending'",
            params![id, next_at_ms, error],
        )?;
        Ok(())
    }

    fn mark_failed(&mut self, id: i64, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE alert_outbox SET status = 'failed', last_error = ?2
             WHERE id = ?1 AND status = 'pending'",
            params![id, error],
        )?;
        Ok(())
    }

    fn alerts(&mut self, status: Option<AlertStatus>, limit: usize) -> Result<Vec<Alert>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLS} FROM alert_outbox WHERE (?1 IS NULL OR status = ?1)
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = st.query_map(
            params![status.map(|s| s.as_str()), limit as i64],
            alert_from_row,
        )?;
        let raw = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        raw.into_iter().map(RawAlert::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_database_file_fails_at_open_naming_it() {
        let dir = std::env::temp_dir().join(format!("manus-ro-{}", std::process::id()));
        let path = dir.join("live.db");
        drop(SqliteStore::open(&path).unwrap());
        // What SQLite falls back to, without a word, on a file it may not write (file mode
        // 0444 for a user who is not root, a read-only mount).
        let conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let e = SqliteStore::init(conn, path.clone())
            .unwrap_err()
            .to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("read-only"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn errors_are_classified_by_kind() {
        use super::super::FailureKind as K;
        use rusqlite::ffi;
        let cases = [
            (ffi::SQLITE_FULL, K::DiskFull),
            (ffi::SQLITE_READONLY, K::ReadOnly),
            (ffi::SQLITE_BUSY, K::Busy),
            (ffi::SQLITE_IOERR, K::Io),
            (ffi::SQLITE_NOTADB, K::Corrupt),
            (ffi::SQLITE_CONSTRAINT, K::Other),
        ];
        for (code, kind) in cases {
            let e = StoreError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
            assert_eq!(e.kind(), kind, "{code}");
        }
        // The cause is printed once, not once more as a chained source.
        let e = StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_NOTADB),
            None,
        ));
        assert!(std::error::Error::source(&e).is_none());
        let text = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(text.matches("not a database").count(), 1, "{text}");
    }
}
