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

/// ANSI colour for log lines: on a terminal only (a file or pipe gets plain text), and never
/// when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Prints the error chain and picks the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let bad = e
                .chain()
                .any(|c| c.is::<BadInput>() || c.is::<manus_core::CoreError>());
            ExitCode::from(if bad { 2 } else { 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
