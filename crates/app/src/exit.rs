//! Process edges: logging set-up and mapping errors to exit codes.

use std::io::IsTerminal;
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

/// For the commands that end on their own (`fetch`, `backtest`, `signals`, ...): the first
/// SIGINT or SIGTERM removes unfinished output files ([`crate::output`]) and exits at once
/// with 130 or 143 (128 + the signal), as an interrupted Unix tool does, so a script never
/// takes an interrupted run for a complete one. What `fetch` stored before stays stored.
/// The long-running commands (`live`, `demo`, `serve`, `exchange-sim`) handle the signal
/// themselves as their normal stop and exit 0.
pub fn exit_on_interrupt() {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => return,
            };
            rt.block_on(async move {
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        return;
                    };
                    let _ = ready_tx.send(());
                    let (name, code) = tokio::select! {
                        _ = int.recv() => ("SIGINT", 130),
                        _ = term.recv() => ("SIGTERM", 143),
                    };
                    crate::output::remove_unfinished();
                    eprintln!("interrupted ({name}): unfinished output files were removed");
                    std::process::exit(code);
                }
                #[cfg(not(unix))]
                {
                    let _ = ready_tx.send(());
                    if tokio::signal::ctrl_c().await.is_ok() {
                        crate::output::remove_unfinished();
                        std::process::exit(130);
                    }
                }
            });
        });
    // Wait until the handlers are in place, so an early signal is not lost to the default.
    if spawned.is_ok() {
        let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(2));
    }
}

/// Logs go to stderr (stdout carries data); `RUST_LOG` overrides the default `info`. Colour
/// only when stderr is a terminal and `NO_COLOR` is not set ([`colour_wanted`]).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = colour_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
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

/// ANSI colour for log lines: on a terminal only (a file or pipe gets plain text), and never
/// when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Whether the user's input caused `e` (exit code 2): the library modules' typed errors say
/// so themselves; this is the one place that knows them all.
pub fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<BadInput>()
            || c.is::<manus_core::CoreError>()
            || c.is::<crate::ranges::RangeError>()
            || c.downcast_ref::<crate::columnar::ColumnarError>()
                .is_some_and(|e| e.is_bad_input())
            || c.downcast_ref::<crate::config::ConfigError>()
                .is_some_and(|e| e.is_bad_input())
            || c.downcast_ref::<crate::store::cache::CacheError>()
                .is_some_and(|e| e.is_bad_input())
            || c.downcast_ref::<crate::wiring::WiringError>()
                .is_some_and(|e| e.is_bad_input())
            || c.downcast_ref::<crate::session::SessionError>()
                .is_some_and(|e| e.is_bad_input())
    })
}

/// Prints the error chain and picks the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::from(if is_bad_input(&e) { 2 } else { 1 })
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

    #[test]
    fn library_errors_say_whether_the_input_is_at_fault() {
        use crate::config::{ConfigError, Settings};
        use crate::store::cache::CacheError;
        let parse = Settings::from_toml("interval = \"7m\"").unwrap_err();
        assert!(matches!(parse, ConfigError::Parse { .. }));
        let write = ConfigError::Write {
            path: "x".into(),
            source: std::io::Error::other("disk full"),
        };
        let empty = CacheError::EmptyRange {
            interval: manus_core::Interval::M1,
            symbol: "BTCUSDT".into(),
            at: "2026-01-01 00:00:00".into(),
        };
        let runtime = CacheError::Runtime(std::io::Error::other("no threads"));
        // Wrapped in context, as commands do: the chain is searched.
        let cases: [(anyhow::Error, bool); 5] = [
            (anyhow::Error::new(parse).context("loading"), true),
            (anyhow::Error::new(write), false),
            (anyhow::Error::new(empty).context("fetch"), true),
            (anyhow::Error::new(runtime), false),
            (bad_input("x"), true),
        ];
        for (e, bad) in cases {
            assert_eq!(is_bad_input(&e), bad, "{e:#}");
        }
    }

    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        struct Case {
            terminal: bool,
            no_color: Option<&'static str>,
            colour: bool,
        }
        let cases = [
            Case {
                terminal: true,
                no_color: None,
                colour: true,
            },
            Case {
                terminal: false,
                no_color: None,
                colour: false,
            },
            Case {
                terminal: true,
                no_color: Some("1"),
                colour: false,
            },
            Case {
                terminal: true,
                no_color: Some(""),
                colour: true,
            },
            Case {
                terminal: false,
                no_color: Some("1"),
                colour: false,
            },
        ];
        for c in cases {
            assert_eq!(
                colour_wanted(c.terminal, c.no_color.map(OsStr::new)),
                c.colour,
                "terminal {} NO_COLOR {:?}",
                c.terminal,
                c.no_color
            );
        }
    }
}
