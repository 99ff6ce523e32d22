//! Versioned schema migrations, one SQL script per backend per version. Applied in order on
//! open; the `schema_version` table records which ran. Never edit a released migration: add
//! the next version.

use super::StoreError;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version number, starting at 1, strictly increasing.
    pub version: i64,
    /// What it does, for logs.
    pub name: &'static str,
    /// The SQLite script.
    pub sqlite: &'static str,
    /// The PostgreSQL script.
    pub postgres: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "candles, signals, backtest runs, alert outbox",
    sqlite: r#"
CREATE TABLE candles (
    exchange   TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    open_time  INTEGER NOT NULL,
    close_time INTEGER NOT NULL,
    open       REAL    NOT NULL,
    high       REAL    NOT NULL,
    low        REAL    NOT NULL,
    close      REAL    NOT NULL,
    volume     REAL    NOT NULL,
    PRIMARY KEY (exchange, symbol, interval, open_time)
) WITHOUT ROWID;

CREATE TABLE signals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange    TEXT    NOT NULL,
    symbol      TEXT    NOT NULL,
    interval    TEXT    NOT NULL,
    open_time   INTEGER NOT NULL,
    confluence  TEXT    NOT NULL,
    confidence  REAL    NOT NULL,
    record      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (exchange, symbol, interval, open_time)
);
CREATE INDEX signals_by_series ON signals (symbol, interval, open_time);

CREATE TABLE backtest_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  INTEGER NOT NULL,
    params      TEXT    NOT NULL,
    metrics     TEXT    NOT NULL,
    equity      TEXT    NOT NULL,
    trades      TEXT    NOT NULL
);

CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange        TEXT    NOT NULL,
    symbol          TEXT    NOT NULL,
    interval        TEXT    NOT NULL,
    open_time       INTEGER NOT NULL,
    rule            TEXT    NOT NULL,
    notifier        TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (exchange, symbol, interval, open_time, rule, notifier)
);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_at);
"#,
    postgres: r#"
CREATE TABLE candles (
    exchange   TEXT             NOT NULL,
    symbol     TEXT             NOT NULL,
    interval   TEXT             NOT NULL,
    open_time  BIGINT           NOT NULL,
    close_time BIGINT           NOT NULL,
    open       DOUBLE PRECISION NOT NULL,
    high       DOUBLE PRECISION NOT NULL,
    low        DOUBLE PRECISION NOT NULL,
    close      DOUBLE PRECISION NOT NULL,
    volume     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, interval, open_time)
);

CREATE TABLE signals (
    id          BIGSERIAL PRIMARY KEY,
    exchange    TEXT             NOT NULL,
    symbol      TEXT             NOT NULL,
    interval    TEXT             NOT NULL,
    open_time   BIGINT           NOT NULL,
    confluence  TEXT             NOT NULL,
    confidence  DOUBLE PRECISION NOT NULL,
    record      TEXT             NOT NULL,
    created_at  BIGINT           NOT NULL,
    UNIQUE (exchange, symbol, interval, open_time)
);
CREATE INDEX signals_by_series ON signals (symbol, interval, open_time);

CREATE TABLE backtest_runs (
    id          BIGSERIAL PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    params      TEXT   NOT NULL,
    metrics     TEXT   NOT NULL,
    equity      TEXT   NOT NULL,
    trades      TEXT   NOT NULL
);

CREATE TABLE alert_outbox (
    id              BIGSERIAL PRIMARY KEY,
    exchange        TEXT   NOT NULL,
    symbol          TEXT   NOT NULL,
    interval        TEXT   NOT NULL,
    open_time       BIGINT NOT NULL,
    rule            TEXT   NOT NULL,
    notifier        TEXT   NOT NULL,
    message         TEXT   NOT NULL,
    status          TEXT   NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (exchange, symbol, interval, open_time, rule, notifier)
);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_at);
"#,
}];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations a database at schema version `current` still needs, in order; an error when
/// the database is newer than this build (both backends refuse it the same way).
pub fn pending(current: i64) -> Result<impl Iterator<Item = &'static Migration>, StoreError> {
    if current > latest_version() {
        return Err(StoreError::Invalid(format!(
            "database schema version {current} is newer than this manus knows ({}); upgrade manus",
            latest_version()
        )));
    }
    Ok(MIGRATIONS.iter().filter(move |m| m.version > current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i64);
    }
}
