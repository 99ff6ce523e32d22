//! `manus`: the Market Manus command line. Every subcommand lives in its own module under
//! [`cmd`]; errors surface here and map to exit codes (2 = bad input, 1 = anything else).

use clap::{Parser, Subcommand};
use market_manus::{cmd, exit};

/// Market Manus: a real-time crypto market signal engine.
#[derive(Debug, Parser)]
#[command(name = "manus", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole live pipeline against a built-in simulated exchange (the quickest start).
    Demo(cmd::demo::Args),
    /// Stream live klines from an exchange and emit signals.
    Live(cmd::live::Args),
    /// Compute every indicator over a candle CSV and print them as CSV.
    Indicators(cmd::indicators::Args),
    /// Run strategies and confluence over a candle CSV and print one JSON record per candle.
    Signals(cmd::signals::Args),
    /// Backtest strategies on history with the same code as `live`.
    Backtest(cmd::backtest::Args),
    /// Download historical klines into the local cache.
    Fetch(cmd::fetch::Args),
    /// Convert candles between CSV and Parquet (direction from the file extensions).
    Convert(cmd::convert::Args),
    /// Interactive Strategy Lab: choose asset, strategies, timeframe; backtest or run live.
    Lab(cmd::lab::Args),
    /// Read stored signals back.
    History(cmd::history::Args),
    /// Alert notifiers (Telegram, Discord, webhooks).
    Alerts(cmd::alerts::Args),
    /// Serve the web dashboard.
    Serve(cmd::serve::Args),
    /// Serve a simulated exchange that speaks Binance's WebSocket and REST protocols.
    ExchangeSim(cmd::exchange_sim::Args),
    /// Print the bus's records or candles (NATS JetStream) as JSON lines.
    Tail(cmd::tail::Args),
    /// Persist every candle and record on the bus into a database (durable consumer).
    Sink(cmd::sink::Args),
    /// Share the live streams with other workers over a NATS JetStream bus (leases, failover).
    Worker(cmd::worker::Args),
    /// Check a strategy file of rule strategies (`docs/RULES.md`).
    Strategy(cmd::strategy::Args),
}

fn main() -> std::process::ExitCode {
    // Before anything can build a TLS client: the one crypto provider (ring).
    manus_exchange::tls::install_crypto_provider();
    let cli = Cli::parse();
    exit::init_tracing();
    // The long-running commands stop on a signal as their normal end (exit 0); the others are
    // interrupted (exit 130/143, unfinished outputs removed). `lab` is interactive: its keys
    // arrive in raw mode, not as signals.
    let long_running = matches!(
        cli.command,
        Command::Demo(_)
            | Command::Live(_)
            | Command::Serve(_)
            | Command::ExchangeSim(_)
            | Command::Lab(_)
            | Command::Tail(_)
            | Command::Sink(_)
            | Command::Worker(_)
    );
    if !long_running {
        exit::exit_on_interrupt();
    }
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Live(a) => cmd::live::run(a),
        Command::Indicators(a) => cmd::indicators::run(a),
        Command::Signals(a) => cmd::signals::run(a),
        Command::Backtest(a) => cmd::backtest::run(a),
        Command::Fetch(a) => cmd::fetch::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Lab(a) => cmd::lab::run(a),
        Command::History(a) => cmd::history::run(a),
        Command::Alerts(a) => cmd::alerts::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::ExchangeSim(a) => cmd::exchange_sim::run(a),
        Command::Tail(a) => cmd::tail::run(a),
        Command::Sink(a) => cmd::sink::run(a),
        Command::Worker(a) => cmd::worker::run(a),
        Command::Strategy(a) => cmd::strategy::run(a),
    };
    exit::report(result)
}
