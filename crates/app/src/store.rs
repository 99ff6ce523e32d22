//! Persistence: the [`Store`] seam and its two backends, [`sqlite::SqliteStore`] (the embedded
//! default, one WAL-mode file) and [`postgres::PostgresStore`] (`--db postgres://...`).
//!
//! The store keeps candles (deduplicated by exchange, symbol, interval and open time; also the
//! history cache of `fetch`), one row per closed-candle [`SignalRecord`], backtest runs and the
//! alert outbox. A signal and its outbox rows are written in one transaction, and a signal that
//! is already stored is a no-op (its alerts are not queued again), so a restart never repeats
//! an alert. Methods are synchronous: callers run them on a dedicated thread or in
//! `spawn_blocking`, never on the candle loop (the Postgres client must not run inside a tokio
//! runtime thread).

pub mod cache;
pub mod postgres;
pub mod schema;
pub mod sink;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use manus_core::record::SignalRecord;
use manus_core::{Action, Candle, Interval};
use serde::Serialize;
use serde_json::Value;

use crate::clock::format_ms;

/// What can go wrong in the store.
///
/// The variants print their cause inline and do not chain it as a `source` as well, so an
/// error report does not say the same thing twice ("file is not a database: file is not a
/// database").
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgres: {}", postgres_text(.0))]
    Postgres(::postgres::Error),
    /// A stored JSON column does not parse, or a value does not serialise.
    #[error("stored JSON: {0}")]
    Json(serde_json::Error),
    /// The database file's directory cannot be created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The schema is newer than this build, or a stored value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(e)
    }
}

/// The client's own text plus the server's message, which its `Display` leaves to `source`.
fn postgres_text(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// What kind of failure a store error is: write failures are warned once per kind and
/// summarised by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The disk (or the database's quota) is full.
    DiskFull,
    /// The database file or connection is read-only.
    ReadOnly,
    /// Another process holds the lock for too long.
    Busy,
    /// The operating system failed a read or write.
    Io,
    /// The connection to the database server is gone.
    Connection,
    /// The database file is damaged or not a database.
    Corrupt,
    /// Anything else (a rejected statement, a value that does not serialise).
    Other,
}

impl FailureKind {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::DiskFull => "disk full",
            FailureKind::ReadOnly => "read-only database",
            FailureKind::Busy => "database locked",
            FailureKind::Io => "I/O error",
            FailureKind::Connection => "connection lost",
            FailureKind::Corrupt => "database corrupt",
            FailureKind::Other => "write rejected",
        }
    }

    /// Whether another attempt may succeed soon (a lock released). An I/O error is not: it is
    /// most often a full disk or a file-size limit, which fail again at once.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Busy)
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// Classifies the error (see [`FailureKind`]).
    pub fn kind(&self) -> FailureKind {
        use rusqlite::ErrorCode as C;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                C::DiskFull => FailureKind::DiskFull,
                C::ReadOnly => FailureKind::ReadOnly,
                C::DatabaseBusy | C::DatabaseLocked => FailureKind::Busy,
                C::SystemIoFailure | C::CannotOpen => FailureKind::Io,
                C::DatabaseCorrupt | C::NotADatabase => FailureKind::Corrupt,
                _ => FailureKind::Other,
            },
            StoreError::Sqlite(_) | StoreError::Json(_) | StoreError::Invalid(_) => {
                FailureKind::Other
            }
            StoreError::Postgres(e) => {
                use ::postgres::error::SqlState;
                match e.code() {
                    Some(c) if *c == SqlState::DISK_FULL => FailureKind::DiskFull,
                    Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => FailureKind::ReadOnly,
                    Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => FailureKind::Busy,
                    Some(c) if *c == SqlState::IO_ERROR => FailureKind::Io,
                    Some(c) if *c == SqlState::DATA_CORRUPTED => FailureKind::Corrupt,
                    Some(_) => FailureKind::Other,
                    None if e.is_closed()
                        || std::error::Error::source(e)
                            .is_some_and(|c| c.is::<std::io::Error>()) =>
                    {
                        FailureKind::Connection
                    }
                    None => FailureKind::Other,
                }
            }
            StoreError::Io { .. } => FailureKind::Io,
        }
    }
}

/// Store result.
pub type Result<T> = std::result::Result<T, StoreError>;

/// How long a claimed alert stays invisible to other workers ([`Store::due_alerts`]); a worker
/// that dies mid-delivery releases it when the lease ends.
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// An alert to queue with a signal: one row per rule and notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The rule that fired.
    pub rule: String,
    /// The notifier to deliver through (its configured name).
    pub notifier: String,
    /// The text to send.
    pub message: String,
    /// Why it is recorded but not sent (e.g. its candle closed long ago, found on resume).
    pub skipped: Option<String>,
}

impl NewAlert {
    /// The status it is stored with: pending, or skipped when it must not be sent.
    pub fn status(&self) -> AlertStatus {
        if self.skipped.is_some() {
            AlertStatus::Skipped
        } else {
            AlertStatus::Pending
        }
    }
}

/// Delivery state of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// Delivered; never sent again.
    Delivered,
    /// Given up on.
    Failed,
    /// Recorded, never sent: the candle had closed too long before (a restart's resume).
    Skipped,
}

impl AlertStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
            AlertStatus::Skipped => "skipped",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(AlertStatus::Pending),
            "delivered" => Ok(AlertStatus::Delivered),
            "failed" => Ok(AlertStatus::Failed),
            "skipped" => Ok(AlertStatus::Skipped),
            other => Err(StoreError::Invalid(format!(
                "unknown alert status '{other}'"
            ))),
        }
    }
}

/// One alert outbox row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Row id.
    pub id: i64,
    /// Exchange of the signal.
    pub exchange: String,
    /// Symbol of the signal.
    pub symbol: String,
    /// Interval of the signal.
    pub interval: Interval,
    /// Open time of the signal's candle, ms UTC.
    pub open_time: i64,
    /// The rule that fired.
    pub rule: String,
    /// The notifier to deliver through.
    pub notifier: String,
    /// The text to send.
    pub message: String,
    /// Delivery state.
    pub status: AlertStatus,
    /// Delivery attempts started so far (claims included).
    pub attempts: i64,
    /// Earliest time of the next attempt, ms UTC.
    pub next_attempt_at: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was queued, ms UTC.
    pub created_at: i64,
    /// When it was delivered, ms UTC.
    pub delivered_at: Option<i64>,
}

impl Alert {
    /// A key that is the same for every attempt of this row, sent to receivers so they can drop
    /// the rare repeat (a crash between a delivery and its acknowledgement).
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}",
            self.exchange,
            self.symbol,
            self.interval.as_str(),
            self.open_time,
            self.rule,
            self.notifier
        )
    }
}

/// Order of [`Store::signals`] results by open time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

/// A filter over stored signals; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct SignalQuery {
    /// Exchange.
    pub exchange: Option<String>,
    /// Symbol.
    pub symbol: Option<String>,
    /// Interval.
    pub interval: Option<Interval>,
    /// Earliest open time, ms UTC, inclusive.
    pub since: Option<i64>,
    /// Latest open time, ms UTC, exclusive.
    pub until: Option<i64>,
    /// Confluence decision.
    pub decision: Option<Action>,
    /// At most this many rows (`None`: all).
    pub limit: Option<usize>,
    /// Rows to skip.
    pub offset: usize,
    /// Sort order by open time.
    pub order: Order,
}

/// A stored signal record and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    /// Exchange the candle came from.
    pub exchange: String,
    /// The record exactly as written.
    pub record: SignalRecord,
}

/// A backtest run to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewBacktestRun {
    /// Parameters (strategies, symbol, range, fees...).
    pub params: Value,
    /// Summary metrics.
    pub metrics: Value,
    /// Equity curve.
    pub equity: Value,
    /// Trades.
    pub trades: Value,
}

/// A stored backtest run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestRun {
    /// Row id.
    pub id: i64,
    /// When it was stored, ms UTC.
    pub created_at: i64,
    /// Parameters.
    pub params: Value,
    /// Summary metrics.
    pub metrics: Value,
    /// Equity curve.
    pub equity: Value,
    /// Trades.
    pub trades: Value,
}

/// A stored row that could not be read back (damaged by hand, by a disk error or by another
/// program): skipped, so one bad row does not make the rest of the history unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// The table.
    pub table: &'static str,
    /// The row's id.
    pub id: i64,
    /// Why it does not parse.
    pub error: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} id {}: {}", self.table, self.id, self.error)
    }
}

/// The rows a read returned, and the ones it skipped because they do not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T> {
    /// The rows that parsed, in query order.
    pub rows: Vec<T>,
    /// The rows skipped.
    pub bad: Vec<BadRow>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: Vec::new(),
            bad: Vec::new(),
        }
    }
}

impl<T> Rows<T> {
    /// Adds a row, or sets it aside when it did not parse.
    pub fn push(&mut self, table: &'static str, id: i64, row: Result<T>) {
        match row {
            Ok(r) => self.rows.push(r),
            Err(e) => self.bad.push(BadRow {
                table,
                id,
                error: e.to_string(),
            }),
        }
    }

    /// Logs one warning naming the skipped rows (the first few), if any; returns the good rows.
    pub fn warn_bad(self) -> Vec<T> {
        warn_bad_rows(&self.bad);
        self.rows
    }
}

/// Logs one warning naming the skipped rows (the first few), if any.
pub fn warn_bad_rows(bad: &[BadRow]) {
    const NAMED: usize = 5;
    if bad.is_empty() {
        return;
    }
    let named: Vec<String> = bad.iter().take(NAMED).map(BadRow::to_string).collect();
    let more = bad.len().saturating_sub(NAMED);
    tracing::warn!(
        "skipped {} stored row(s) that cannot be read: {}{}",
        bad.len(),
        named.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    );
}

/// The persistence seam. Synchronous; run it off the candle loop.
pub trait Store: Send {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Where the data lives, for messages: the SQLite file's path, or the Postgres URL without
    /// its password.
    fn location(&self) -> String;

    /// The applied schema version.
    fn schema_version(&mut self) -> Result<i64>;

    /// Inserts or replaces candles by (exchange, symbol, interval, open time), in one
    /// transaction; returns how many were written.
    fn upsert_candles(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
        candles: &[Candle],
    ) -> Result<usize>;

    /// Stored candles with `from <= open_time < to`, oldest first.
    fn candles_range(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
        from: i64,
        to: i64,
    ) -> Result<Vec<Candle>>;

    /// Writes a signal record and its alert outbox rows in one durable transaction. Returns
    /// `false`, writing nothing, when a record for the same exchange, symbol, interval and open
    /// time is already stored: a replay after a restart queues no alert twice.
    fn insert_signal(
        &mut self,
        exchange: &str,
        record: &SignalRecord,
        outbox: &[NewAlert],
    ) -> Result<bool>;

    /// Stored signals matching `q`, with the rows that do not parse set aside (see [`Rows`]).
    fn read_signals(&mut self, q: &SignalQuery) -> Result<Rows<StoredSignal>>;

    /// Stored signals matching `q`; rows that do not parse are skipped with a warning naming
    /// them.
    fn signals(&mut self, q: &SignalQuery) -> Result<Vec<StoredSignal>> {
        Ok(self.read_signals(q)?.warn_bad())
    }

    /// The newest stored record of a series.
    fn last_signal(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
    ) -> Result<Option<SignalRecord>> {
        let q = SignalQuery {
            exchange: Some(exchange.to_string()),
            symbol: Some(symbol.to_string()),
            interval: Some(interval),
            limit: Some(1),
            order: Order::Desc,
            ..SignalQuery::default()
        };
        Ok(self.signals(&q)?.pop().map(|s| s.record))
    }

    /// The open time of the newest stored record of a series: where a restarted run resumes.
    fn last_signal_open_time(
        &mut self,
        exchange: &str,
        symbol: &str,
        interval: Interval,
    ) -> Result<Option<i64>> {
        Ok(self
            .last_signal(exchange, symbol, interval)?
            .map(|r| r.open_time))
    }

    /// Open times of every stored record of one series, oldest first (`exchange` `None`: any
    /// exchange), for `history --gaps`.
    fn signal_open_times(
        &mut self,
        exchange: Option<&str>,
        symbol: &str,
        interval: Interval,
    ) -> Result<Vec<i64>>;

    /// Stores a backtest run; returns its id.
    fn insert_backtest_run(&mut self, run: &NewBacktestRun) -> Result<i64>;

    /// The newest `limit` backtest runs, newest first, with the rows that do not parse set
    /// aside (see [`Rows`]).
    fn read_backtest_runs(&mut self, limit: usize) -> Result<Rows<BacktestRun>>;

    /// The newest `limit` backtest runs, newest first; rows that do not parse are skipped with
    /// a warning naming them.
    fn backtest_runs(&mut self, limit: usize) -> Result<Vec<BacktestRun>> {
        Ok(self.read_backtest_runs(limit)?.warn_bad())
    }

    /// Claims up to `limit` pending alerts due at `now_ms`, oldest first: each claim counts as
    /// an attempt and hides the row from other workers for [`CLAIM_LEASE_MS`].
    fn due_alerts(&mut self, now_ms: i64, limit: usize) -> Result<Vec<Alert>>;

    /// Marks a pending alert delivered at `now_ms`.
    fn mark_delivered(&mut self, id: i64, now_ms: i64) -> Result<()>;

    /// Schedules another attempt of a pending alert at `next_at_ms`, recording the error.
    fn mark_retry(&mut self, id: i64, next_at_ms: i64, error: &str) -> Result<()>;

    /// Gives up on a pending alert, recording the error.
    fn mark_failed(&mut self, id: i64, error: &str) -> Result<()>;

    /// Outbox rows, optionally of one status, oldest first (for inspection and the dashboard).
    fn alerts(&mut self, status: Option<AlertStatus>, limit: usize) -> Result<Vec<Alert>>;
}

/// A store shared between threads; lock it only inside `spawn_blocking` or a store thread.
pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// Wraps a store for sharing.
pub fn shared(store: Box<dyn Store>) -> SharedStore {
    Arc::new(Mutex::new(store))
}

/// True for a `postgres://` or `postgresql://` URL.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The default SQLite file: `$XDG_DATA_HOME/market-manus/manus.db`, else
/// `~/.local/share/market-manus/manus.db`, else `./manus.db`.
pub fn default_db_path() -> PathBuf {
    user_file("XDG_DATA_HOME", ".local/share", "manus.db")
}

/// `$VAR/market-manus/FILE`, else `~/HOME_SUB/market-manus/FILE` (the XDG base directory rules),
/// else `FILE` in the working directory.
pub fn user_file(var: &str, home_sub: &str, file: &str) -> PathBuf {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(home_sub))
        });
    match base {
        Some(b) => b.join("market-manus").join(file),
        None => PathBuf::from(file),
    }
}

/// Opens the store named by `--db`: a Postgres URL, a SQLite path, or (`None`) the default
/// SQLite file. Migrations are applied.
pub fn open(db: Option<&str>) -> Result<Box<dyn Store>> {
    match db {
        Some(url) if is_postgres_url(url) => Ok(Box::new(postgres::PostgresStore::open(url)?)),
        Some(path) => Ok(Box::new(sqlite::SqliteStore::open(Path::new(path))?)),
        None => Ok(Box::new(sqlite::SqliteStore::open(&default_db_path())?)),
    }
}

/// Parses a stored interval.
pub(crate) fn parse_interval(s: &str) -> Result<Interval> {
    s.parse()
        .map_err(|_| StoreError::Invalid(format!("stored interval '{s}' is unknown")))
}

/// Parses a stored record.
pub(crate) fn parse_record(json: &str) -> Result<SignalRecord> {
    Ok(serde_json::from_str(json)?)
}

/// Parses a stored JSON column.
pub(crate) fn parse_json(json: &str) -> Result<Value> {
    Ok(serde_json::from_str(json)?)
}

/// Where each stream resumes: the open time of its newest stored record (streams never stored
/// start fresh). Read on a plain thread: the Postgres client blocks and must not run on a
/// runtime thread.
pub fn resume_points(
    store: &SharedStore,
    exchange: &str,
    streams: &[manus_exchange::feed::StreamKey],
) -> Result<std::collections::HashMap<manus_exchange::feed::StreamKey, i64>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = std::collections::HashMap::new();
            for k in streams {
                if let Some(t) = st.last_signal_open_time(exchange, &k.symbol, k.interval)? {
                    tracing::info!("{k}: resuming after the stored candle of {}", format_ms(t));
                    out.insert(k.clone(), t);
                }
            }
            Ok(out)
        })
        .join()
        .unwrap_or_else(|_| Err(StoreError::Invalid("reading resume points panicked".into())))
    })
}
