//! The core crate's error type.

use thiserror::Error;

use crate::model::interval_choices;
use crate::rules::RuleError;

/// Errors raised by the pure core: bad user input, never I/O.
#[derive(Debug, Error)]
pub enum CoreError {
    /// An interval outside Binance's set.
    #[error("unknown interval '{0}'; valid intervals: {choices}", choices = interval_choices())]
    UnknownInterval(String),
    /// A strategy id we do not have.
    #[error("unknown strategy '{id}'; valid strategies: {choices}")]
    UnknownStrategy {
        /// What the user asked for.
        id: String,
        /// Comma-separated valid ids.
        choices: String,
    },
    /// A confluence mode we do not have.
    #[error("unknown confluence mode '{0}'; valid modes: all, any, majority, weighted")]
    UnknownConfluence(String),
    /// A strategy parameter that does not exist or does not parse.
    #[error("bad parameter for strategy '{id}': {reason}")]
    BadParam {
        /// Strategy id.
        id: String,
        /// What was wrong.
        reason: String,
    },
    /// A strategy parameter outside its valid range.
    #[error("bad parameter for strategy '{id}': {error}")]
    ParamRange {
        /// Strategy id.
        id: String,
        /// Which parameter and what is valid.
        error: crate::strategy::params::ParamError,
    },
    /// No strategy selected.
    #[error("no strategy selected")]
    NoStrategies,
    /// A CSV file that does not parse; `line` is 1-based.
    #[error("line {line}: {reason}")]
    Csv {
        /// 1-based line number in the file.
        line: usize,
        /// What was wrong with it.
        reason: crate::csv::CsvError,
    },
    /// A strategy file or rule expression that is not valid.
    #[error(transparent)]
    Rule(#[from] RuleError),
}
