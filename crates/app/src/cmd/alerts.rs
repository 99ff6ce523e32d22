//! `manus alerts`: `test` sends a test message through every configured notifier and reports
//! each result; `outbox` lists stored alerts and their delivery state.

use std::io::Write;
use std::path::PathBuf;

use crate::alerts::config::AlertsConfig;
use crate::alerts::{Notifier, Outgoing};
use crate::clock::{format_ms, now_ms};
use crate::config::Settings;
use crate::exit::bad_input;
use crate::store::{self, AlertStatus};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// `manus alerts` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Send a test message through every configured notifier and report each result.
    Test(TestArgs),
    /// List stored alerts and their delivery state.
    Outbox(OutboxArgs),
    /// Evaluate alert rules on the records of a NATS JetStream bus and deliver them (any
    /// number of instances share the work; each move alerts once).
    Run(RunArgs),
}

/// `manus alerts run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The bus, e.g. nats://127.0.0.1:4222 (several servers: comma-separated).
    #[arg(long, value_name = "nats://HOST:PORT[,...]", env = "MANUS_BUS")]
    pub bus: String,
    /// The settings file with an `[alerts]` section (notifiers, rules, delivery).
    #[arg(long)]
    pub alerts_config: PathBuf,
    /// The alert outbox and the records rules are evaluated against: a postgres:// URL shared
    /// by every instance (a SQLite file for one machine). Not the `sink`'s database: a record
    /// already there would queue no alert.
    #[arg(long, env = "MANUS_DB")]
    pub db: String,
}

/// `manus alerts test` arguments.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The settings file with an `[alerts]` section.
    #[arg(long, env = "MANUS_CONFIG")]
    pub config: PathBuf,
    /// Test only the notifier with this name.
    #[arg(long)]
    pub only: Option<String>,
}

/// `manus alerts outbox` arguments.
#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// Database: a SQLite file or a postgres:// URL (default: the platform data directory).
    #[arg(long, env = "MANUS_DB")]
    pub db: Option<String>,
    /// Only this state: pending, delivered or failed.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Output format: table or json (one alert per line).
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        AlertsCommand::Test(a) => test(a),
        AlertsCommand::Outbox(a) => outbox(a),
        AlertsCommand::Run(a) => run_on_bus(a),
    }
}

fn run_on_bus(args: RunArgs) -> anyhow::Result<()> {
    let cfg = crate::bus::BusConfig::parse(&args.bus).map_err(|e| bad_input(e.to_string()))?;
    let text = std::fs::read_to_string(&args.alerts_config)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", args.alerts_config.display())))?;
    let alerts = AlertsConfig::from_settings_toml(&text)
        .map_err(|e| bad_input(format!("{}: {e}", args.alerts_config.display())))?;
    // Opened before the runtime: the Postgres client must not start inside it.
    let store = store::shared(store::open(Some(&args.db))?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut shutdown = crate::live::Shutdown::install()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut task = tokio::spawn(crate::bus::alerts::run(cfg, alerts, store, stopped));
        tokio::select! {
            r = &mut task => return Ok(r??),
            _ = shutdown.wait() => {}
        }
        let _ = stop.send(true);
        // Bounded: a hanging notifier cannot hold the exit (its alert stays claimed, retried).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), task).await;
        anyhow::Ok(())
    })
}

fn test(args: TestArgs) -> anyhow::Result<()> {
    let settings = Settings::load(&args.config)?;
    let cfg = match settings.alerts {
        Some(v) => AlertsConfig::from_toml_value(v).map_err(|e| bad_input(e.to_string()))?,
        None => AlertsConfig::default(),
    };
    let mut notifiers = cfg
        .notifiers(&|k| std::env::var(k).ok())
        .map_err(|e| bad_input(e.to_string()))?;
    if let Some(only) = &args.only {
        notifiers.retain(|n| n.name() == only);
        if notifiers.is_empty() {
            return Err(bad_input(format!("no notifier is named '{only}'")));
        }
    }
    if notifiers.is_empty() {
        return Err(bad_input(format!(
            "{}: no notifiers configured (add [[alerts.telegram]], [[alerts.discord]] or [[alerts.webhook]])",
            args.config.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let msg = Outgoing::test(now_ms());
    let results = rt.block_on(futures_util::future::join_all(
        notifiers.iter().map(|n| send(n.as_ref(), &msg)),
    ));
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (n, r) in notifiers.iter().zip(&results) {
        match r {
            Ok(()) => writeln!(out, "ok    {} ({})", n.name(), n.kind())?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL  {} ({}): {e}", n.name(), n.kind())?;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} notifiers failed", notifiers.len());
    }
    Ok(())
}

async fn send(n: &dyn Notifier, msg: &Outgoing) -> Result<(), crate::alerts::SendError> {
    n.send(msg).await
}

fn outbox(args: OutboxArgs) -> anyhow::Result<()> {
    let status = match args.status.as_deref() {
        None => None,
        Some(s) => Some(AlertStatus::parse(&s.to_ascii_lowercase()).map_err(|_| {
            bad_input(format!(
                "--status '{s}': expected pending, delivered or failed"
            ))
        })?),
    };
    crate::ranges::ALERTS_LIMIT.usize(args.limit)?;
    let json = match args.format.as_str() {
        "table" => false,
        "json" => true,
        other => {
            return Err(bad_input(format!(
                "--format '{other}': expected table or json"
            )));
        }
    };
    if let Some(db) = args.db.as_deref()
        && !store::is_postgres_url(db)
        && !std::path::Path::new(db).exists()
    {
        return Err(bad_input(format!("no database at {db}")));
    }
    let mut st = store::open(args.db.as_deref())?;
    let rows = st.alerts(status, args.limit)?;
    let mut out = std::io::stdout().lock();
    if json {
        for a in &rows {
            serde_json::to_writer(&mut out, a)?;
            writeln!(out)?;
        }
    } else if rows.is_empty() {
        writeln!(out, "the outbox is empty")?;
    } else {
        writeln!(
            out,
            "{:>6} {:<10} {:>8} {:<12} {:<20} message",
            "id", "status", "attempts", "notifier", "candle (UTC)"
        )?;
        for a in &rows {
            writeln!(
                out,
                "{:>6} {:<10} {:>8} {:<12} {:<20} {}{}",
                a.id,
                a.status.as_str(),
                a.attempts,
                a.notifier,
                format_ms(a.open_time),
                a.message,
                a.last_error
                    .as_deref()
                    .map(|e| format!("  [{e}]"))
                    .unwrap_or_default(),
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
