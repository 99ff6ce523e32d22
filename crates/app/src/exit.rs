//! Process edges: logging set-up and mapping errors to exit codes.

use std::process::ExitCode;

/// An error caused by the user's input (bad flag value, malformed file, unknown symbol):
/// exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Shorthand for a [`BadInput`] error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// Logs go to stderr (stdout carries data); `RUST_LOG` overrides the default `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error and its causes, `: `-joined, leaving out a cause whose text (or its last
/// `: `-part) the message already holds: many errors print their source, which `{:#}` would
/// print again ("file is not a database: Error code 26: file is not a database").
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let part = c.to_string();
        let tail = part.rsplit(": ").next().unwrap_or(&part);
        if part.is_empty() || out.contains(&part) || (!out.is_empty() && out.contains(tail)) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&part);
    }
    out
}

/// Prints the error chain and picks the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            let bad = e.chain().any(|c| {
                c.is::<BadInput>()
                    || c.is::<manus_core::CoreError>()
                    || c.is::<crate::ranges::RangeError>()
            });
            ExitCode::from(if bad { 2 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("file is not a database")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("opening x.db: {0}")]
    struct Outer(#[source] Inner);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = anyhow::Error::new(Outer(Inner)).context("opening the store");
        assert_eq!(
            message(&e),
            "opening the store: opening x.db: file is not a database"
        );
        let e = anyhow::Error::new(Inner).context("opening the store");
        assert_eq!(message(&e), "opening the store: file is not a database");
        // A source that prefixes the same text with a code adds nothing.
        let e = anyhow::Error::new(Inner).context("sqlite: file is not a database");
        assert_eq!(message(&e), "sqlite: file is not a database");
        // Different causes are all kept.
        let e = anyhow::Error::new(Inner).context("opening x.db");
        assert_eq!(message(&e), "opening x.db: file is not a database");
    }
}
