//! `manus backtest --csv FILE`: runs the live strategy code over history through the
//! simulated broker of [`manus_core::backtest`] and prints the statistics (table or `--json`),
//! optionally the trades (`--trades-out`), an HTML report (`--report`), the per-candle signal
//! records (`--signals-out`), or a ranked parameter sweep (`--sweep`, all cores); `--save`
//! stores the run in the database for the dashboard's backtests page.

mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use manus_core::backtest::metrics::Metrics;
use manus_core::backtest::{self, Backtester, PositionMode, Report, sweep};
use manus_core::confluence::Rule;
use manus_core::engine::StrategySpec;
use manus_core::record::RecordWriter;
use manus_core::summary::Moves;
use manus_core::{Candle, Interval, SignalEngine, csv::infer_interval};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

use super::candle_reader::CandleReader;
use super::common::{StrategyArgs, StrategyFlags, load_csv, parse_interval};
use crate::config::Settings;
use crate::exit::bad_input;
use crate::output::AtomicFile;
use crate::store::NewBacktestRun;

/// Arguments.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Candle CSV (headered or Binance's 12-column format), or a `.parquet` file.
    #[arg(long, visible_alias = "data")]
    pub csv: Option<PathBuf>,
    /// Or history from an exchange through the local cache (boxed: keeps `Command` small).
    #[command(flatten)]
    pub source: Box<super::fetch::SourceArgs>,
    /// Settings file (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Symbol written into signal records (default: the config's first, else BTCUSDT).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Candle interval (default: the config's, else inferred from the data).
    #[arg(long)]
    pub interval: Option<String>,
    #[command(flatten)]
    pub strategy: StrategyFlags,
    /// Fee per fill in basis points (default 10).
    #[arg(long)]
    pub fee_bps: Option<f64>,
    /// Adverse slippage per fill in basis points (default 0).
    #[arg(long)]
    pub slippage_bps: Option<f64>,
    /// long-only (SELL goes flat) or long-short (SELL goes short).
    #[arg(long)]
    pub mode: Option<String>,
    /// Stop-loss distance from the entry price, percent.
    #[arg(long)]
    pub stop_loss_pct: Option<f64>,
    /// Take-profit distance from the entry price, percent.
    #[arg(long)]
    pub take_profit_pct: Option<f64>,
    /// Starting equity (default 10000).
    #[arg(long)]
    pub initial_equity: Option<f64>,
    /// Also close the position when the decision goes back to HOLD (default: only the opposite
    /// decision, a stop or the end of the data closes it).
    #[arg(long)]
    pub exit_on_hold: bool,
    /// Print one JSON object (or, with --sweep, one JSON array) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write every trade to this CSV file.
    #[arg(long)]
    pub trades_out: Option<PathBuf>,
    /// Write a self-contained HTML report (price, trades, equity) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the per-candle signal records (as `signals` prints them) to this JSON-lines file.
    #[arg(long)]
    pub signals_out: Option<PathBuf>,
    /// Parameter grid, e.g. `ema_crossover.fast=5..20:5,ema_crossover.slow=20..60:10`.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Rows of the ranked sweep table to print (default 20; all with --json).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Store the run (parameters, metrics, equity curve, trades) in the database (--db, else
    /// the config's db, else the default SQLite file) for the dashboard; prints its id on
    /// stderr. Not with --sweep.
    #[arg(long, conflicts_with = "sweep")]
    pub save: bool,
}

/// Most equity points a saved run keeps: enough for the dashboard's chart, small in the store.
pub const MAX_SAVED_EQUITY_POINTS: usize = 2000;

/// Everything a run needs, resolved from flags and the settings file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Strategies with parameters.
    pub specs: Vec<StrategySpec>,
    /// Confluence rule.
    pub rule: Rule,
    /// Broker settings.
    pub config: backtest::Config,
    /// Symbol for records.
    pub symbol: String,
}

/// Resolves flags over the optional settings file. `interval` is the data's.
pub fn plan(args: &Args, settings: &Settings, interval: Interval) -> anyhow::Result<Plan> {
    let (specs, rule) = StrategyArgs::from_settings(settings, &args.strategy).resolve()?;
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    manus_core::strategy::registry::check_interval(&ids, interval)
        .map_err(|e| bad_input(e.to_string()))?;
    crate::ranges::BACKTEST_TOP.usize(args.top)?;
    let b = &settings.backtest;
    let mode: PositionMode = match args.mode.as_deref() {
        Some(m) => m
            .parse()
            .map_err(|e: backtest::BacktestError| bad_input(e.to_string()))?,
        None => b.mode,
    };
    let config = backtest::Config {
        interval,
        initial_equity: args.initial_equity.unwrap_or(b.initial_equity),
        fee_bps: args.fee_bps.unwrap_or(b.fee_bps),
        slippage_bps: args.slippage_bps.unwrap_or(b.slippage_bps),
        mode,
        stop_loss_pct: args.stop_loss_pct.or(b.stop_loss_pct),
        take_profit_pct: args.take_profit_pct.or(b.take_profit_pct),
        keep_equity: args.report.is_some() || args.save,
        exit_on_hold: args.exit_on_hold || b.exit_on_hold,
    };
    config.validate().map_err(|e| bad_input(e.to_string()))?;
    let symbol = args
        .symbol
        .clone()
        .or_else(|| settings.symbols.first().cloned())
        .unwrap_or_else(|| "BTCUSDT".into())
        .to_ascii_uppercase();
    Ok(Plan {
        specs,
        rule,
        config,
        symbol,
    })
}

/// Loads the candles named by the flags (or settings), with their interval.
pub fn load_candles(args: &Args, settings: &Settings) -> anyhow::Result<(Vec<Candle>, Interval)> {
    let interval = match args.interval.as_deref() {
        Some(i) => Some(parse_interval(i)?),
        None => settings.interval,
    };
    let src = &args.source;
    if let Some(exchange) = &src.exchange {
        let db = src.db.clone().or_else(|| {
            settings
                .db
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
        });
        return super::common::load_for_backtest(
            exchange,
            args.symbol
                .as_deref()
                .or(settings.symbols.first().map(String::as_str)),
            interval,
            src.from.as_deref(),
            src.to.as_deref(),
            src.rest_url.as_deref(),
            db.as_deref(),
        );
    }
    let Some(path) = &args.csv else {
        return Err(bad_input(
            "no data: pass --csv FILE or --exchange E --symbol S --interval I --from DATE",
        ));
    };
    let candles = load_csv(path, interval)?;
    if let Some(msg) = interval.and_then(|i| super::common::interval_conflict(path, i, &candles)) {
        return Err(bad_input(msg));
    }
    if candles.len() < 2 {
        return Err(bad_input(format!(
            "{} has {} candle(s); a backtest needs at least 2",
            path.display(),
            candles.len()
        )));
    }
    let interval = match interval.or_else(|| infer_interval(&candles)) {
        Some(i) => i,
        None => {
            return Err(bad_input(
                "cannot infer the interval from the file; pass --interval",
            ));
        }
    };
    Ok((candles, interval))
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = match &args.config {
        Some(p) => Settings::load(p)?,
        None => Settings::default(),
    };
    if args.source.db.is_some() && args.source.exchange.is_none() && !args.save {
        return Err(bad_input("--db needs --exchange or --save"));
    }
    // A file streams from the parser thread into the engine (parsing overlaps the strategies);
    // history from the exchange cache is in memory already.
    let (reader, loaded, interval) = match (&args.csv, &args.source.exchange) {
        (Some(path), None) => {
            let interval = match args.interval.as_deref() {
                Some(i) => Some(parse_interval(i)?),
                None => settings.interval,
            };
            let reader = CandleReader::open(path, interval, 2)?;
            let interval = reader.interval();
            (Some(reader), Vec::new(), interval)
        }
        _ => {
            let (candles, interval) = load_candles(&args, &settings)?;
            (None, candles, interval)
        }
    };
    let plan = plan(&args, &settings, interval)?;
    if let Some(grid) = &args.sweep {
        let candles = match reader {
            Some(r) => r.read_all()?,
            None => loaded,
        };
        return run_sweep(&args, &plan, grid, &candles);
    }
    // The report and the stored run need every candle after the run; otherwise none is kept.
    let keep = args.report.is_some() || args.save;
    let (report, candles) = match reader {
        Some(mut r) => {
            let mut run = SingleRun::new(&plan, args.signals_out.as_deref())?;
            let mut kept = Vec::new();
            while let Some(chunk) = r.next_chunk()? {
                run.feed(&chunk)?;
                if keep {
                    kept.extend_from_slice(&chunk);
                }
            }
            (run.finish()?, kept)
        }
        None => {
            let report = run_single(&plan, &loaded, args.signals_out.as_deref())?;
            (report, loaded)
        }
    };
    if let Some(p) = &args.trades_out {
        write_trades(p, &report)?;
    }
    if let Some(p) = &args.report {
        let html = report::html(&plan, &candles, &report);
        let mut w = AtomicFile::create(p).with_context(|| format!("creating {}", p.display()))?;
        w.write_all(html.as_bytes())
            .and_then(|()| w.commit())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let summary = summary_json(&plan, &report.metrics);
    if args.save {
        // Synchronous store, opened here outside any runtime (the Postgres client needs that).
        let db = args.source.db.clone().or_else(|| {
            settings
                .db
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
        });
        let run = saved_run(&args, &plan, &candles, &report, summary.clone());
        let mut store = crate::store::open(db.as_deref()).context("opening the store")?;
        let id = store.insert_backtest_run(&run).map_err(|e| {
            anyhow::anyhow!(
                "storing the backtest run in {}: {} ({e})",
                store.location(),
                e.kind()
            )
        })?;
        eprintln!("saved backtest run {id}");
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&summary)?)?;
    } else {
        write!(out, "{}", table(&plan, &report.metrics))?;
    }
    Ok(())
}

/// One backtest, optionally writing each candle's signal record to `signals_out`.
pub fn run_single(
    plan: &Plan,
    candles: &[Candle],
    signals_out: Option<&Path>,
) -> anyhow::Result<Report> {
    let mut run = SingleRun::new(plan, signals_out)?;
    run.feed(candles)?;
    run.finish()
}

/// A backtest fed candles in slices (as they arrive from a file), optionally writing each
/// candle's signal record.
pub struct SingleRun {
    bt: Backtester,
    moves: Moves,
    /// `--signals-out`: the file, its name, and the writer `signals` uses (byte-identical lines).
    records: Option<(AtomicFile, PathBuf, RecordWriter)>,
    buf: Vec<u8>,
}

impl SingleRun {
    /// A run of `plan`; creates `signals_out` (committed by [`SingleRun::finish`]).
    pub fn new(plan: &Plan, signals_out: Option<&Path>) -> anyhow::Result<SingleRun> {
        let engine = SignalEngine::from_specs(&plan.specs, plan.rule.clone())?;
        let bt =
            Backtester::new(engine, plan.config.clone()).map_err(|e| bad_input(e.to_string()))?;
        let records = match signals_out {
            Some(path) => {
                let w = AtomicFile::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let writer = RecordWriter::new(&plan.symbol, plan.config.interval, bt.engine());
                Some((w, path.to_path_buf(), writer))
            }
            None => None,
        };
        Ok(SingleRun {
            bt,
            moves: Moves::default(),
            records,
            buf: Vec::with_capacity((1 << 16) + 4096),
        })
    }

    /// Steps the candles that follow those fed before.
    pub fn feed(&mut self, candles: &[Candle]) -> anyhow::Result<()> {
        match &mut self.records {
            Some((w, _, writer)) => {
                for c in candles {
                    self.moves.observe(&self.bt.step(c));
                    writer.write(c, self.bt.engine(), &mut self.buf);
                    // Records go out in ~64 KiB writes (the file's buffer passes them on).
                    if self.buf.len() >= 1 << 16 {
                        w.write_all(&self.buf)?;
                        self.buf.clear();
                    }
                }
            }
            None => {
                for c in candles {
                    self.moves.observe(&self.bt.step(c));
                }
            }
        }
        Ok(())
    }

    /// Closes the run: commits the records file, reports failing strategies, and returns the
    /// report.
    pub fn finish(self) -> anyhow::Result<Report> {
        if let Some((mut w, path, _)) = self.records {
            w.write_all(&self.buf)
                .and_then(|()| w.commit())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(hint) = self.moves.no_decision_hint(self.bt.engine()) {
            eprintln!("{hint}");
        }
        for s in self.bt.engine().slots().iter().filter(|s| s.failures > 0) {
            tracing::warn!(strategy = s.id(), failures = s.failures, last = ?s.last_error, "strategy failed on some candles");
        }
        Ok(self.bt.finish())
    }
}

/// The `--json` object: the metrics plus the settings that produced them.
pub fn summary_json(plan: &Plan, m: &Metrics) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("symbol".into(), plan.symbol.clone().into());
        o.insert("interval".into(), plan.config.interval.as_str().into());
        o.insert(
            "strategies".into(),
            plan.specs.iter().map(|s| s.id.clone()).collect(),
        );
        o.insert("confluence".into(), plan.rule.mode.as_str().into());
        o.insert("mode".into(), plan.config.mode.as_str().into());
        o.insert("fee_bps".into(), plan.config.fee_bps.into());
        // Annualised fields stay numbers; this says whether they mean anything.
        o.insert("span_days".into(), m.span_days().into());
        o.insert("annualised".into(), m.annualised_meaningful().into());
        o.insert("slippage_bps".into(), plan.config.slippage_bps.into());
    }
    v
}

/// The stored form of a run: its parameters and data source, `metrics` (the `--json` object),
/// the equity curve as `[close_time_ms, equity]` pairs (at most [`MAX_SAVED_EQUITY_POINTS`],
/// the last always kept) and every trade.
pub fn saved_run(
    args: &Args,
    plan: &Plan,
    candles: &[Candle],
    report: &Report,
    metrics: Value,
) -> NewBacktestRun {
    let c = &plan.config;
    let source = match &args.source.exchange {
        Some(ex) => json!({
            "exchange": ex,
            "from": args.source.from,
            "to": args.source.to,
        }),
        None => json!({
            "csv": args.csv.as_ref().map(|p| p.display().to_string()),
        }),
    };
    let strategy_params: Map<String, Value> = plan
        .specs
        .iter()
        .map(|s| (s.id.clone(), Value::Object(s.params.clone())))
        .collect();
    let params = json!({
        "symbol": plan.symbol,
        "interval": c.interval.as_str(),
        "strategies": plan.specs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        "strategy_params": strategy_params,
        "confluence": plan.rule.mode.as_str(),
        "confluence_weights": plan.rule.weights,
        "confluence_threshold": plan.rule.threshold,
        "mode": c.mode.as_str(),
        "fee_bps": c.fee_bps,
        "slippage_bps": c.slippage_bps,
        "stop_loss_pct": c.stop_loss_pct,
        "take_profit_pct": c.take_profit_pct,
        "initial_equity": c.initial_equity,
        "source": source,
        "from": candles.first().map(|k| k.open_time),
        "to": candles.last().map(|k| k.close_time),
    });
    let equity: Vec<Value> = downsample(report.equity.len(), MAX_SAVED_EQUITY_POINTS)
        .filter_map(|i| Some(json!([candles.get(i)?.close_time, report.equity[i]])))
        .collect();
    NewBacktestRun {
        params,
        metrics,
        equity: Value::Array(equity),
        trades: serde_json::to_value(&report.trades).unwrap_or(Value::Null),
    }
}

/// At most `max` indices spread evenly over `0..n`, ascending, first and last included.
fn downsample(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let max = max.max(2);
    let k = n.min(max);
    (0..k).map(move |j| if n <= max { j } else { j * (n - 1) / (max - 1) })
}

fn fmt_f(v: f64, digits: usize) -> String {
    if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.digits$}")
    }
}

/// The human table.
pub fn table(plan: &Plan, m: &Metrics) -> String {
    let ids: Vec<&str> = plan.specs.iter().map(|s| s.id.as_str()).collect();
    let rows: Vec<(&str, String)> = vec![
        ("Strategies", ids.join(", ")),
        (
            "Confluence / mode",
            format!("{} / {}", plan.rule.mode, plan.config.mode),
        ),
        (
            "Fees / slippage",
            format!(
                "{} bps / {} bps",
                plan.config.fee_bps, plan.config.slippage_bps
            ),
        ),
        (
            "Candles",
            format!("{} ({})", m.candles, plan.config.interval),
        ),
        (
            "Total return",
            format!("{} %", fmt_f(m.total_return_pct, 2)),
        ),
        (
            "Buy and hold",
            format!("{} %", fmt_f(m.buy_hold_return_pct, 2)),
        ),
        ("CAGR", annualised(m, format!("{} %", fmt_f(m.cagr_pct, 2)))),
        (
            "Max drawdown",
            format!("{} %", fmt_f(m.max_drawdown_pct, 2)),
        ),
        ("Sharpe", annualised(m, fmt_f(m.sharpe, 2))),
        ("Sortino", annualised(m, fmt_f(m.sortino, 2))),
        ("Trades", m.trades.to_string()),
        ("Win rate", format!("{} %", fmt_f(m.win_rate_pct, 1))),
        ("Profit factor", fmt_f(m.profit_factor, 2)),
        ("Average trade", format!("{} %", fmt_f(m.avg_trade_pct, 3))),
        ("Exposure", format!("{} %", fmt_f(m.exposure_pct, 1))),
        ("Fees paid", fmt_f(m.fees_paid, 2)),
        (
            "Equity",
            format!(
                "{} -> {}",
                fmt_f(m.initial_equity, 2),
                fmt_f(m.final_equity, 2)
            ),
        ),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

/// An annualised figure, or why it is not shown: over a short span it is an extrapolation.
fn annualised(m: &Metrics, value: String) -> String {
    if m.annualised_meaningful() {
        value
    } else {
        format!(
            "n/a ({:.1} days of data; annualised figures need {:.0}+ days)",
            m.span_days(),
            manus_core::backtest::metrics::MIN_ANNUALISED_DAYS
        )
    }
}

/// Writes the trades as CSV.
pub fn write_trades(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut w = AtomicFile::create(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(
        w,
        "side,entry_time,entry_price,exit_time,exit_price,qty,fees,pnl,return_pct,exit_reason"
    )?;
    for t in &report.trades {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{}",
            t.side.as_str(),
            t.entry_time,
            t.entry_price,
            t.exit_time,
            t.exit_price,
            t.qty,
            t.fees,
            t.pnl,
            t.return_pct,
            t.exit_reason.as_str()
        )?;
    }
    w.commit()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One row of a sweep: the combination's parameters and its metrics (or why it failed).
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// `ID.NAME` → value.
    pub params: Map<String, Value>,
    /// The metrics, or the error building the strategies.
    pub result: Result<Metrics, String>,
}

/// Runs every combination of `grid` in parallel over `candles`, ranked by total return
/// (failed combinations last). `progress` is told after each combination.
pub fn sweep_rows(
    plan: &Plan,
    grid: &sweep::Grid,
    candles: &[Candle],
    progress: &(dyn Fn() + Sync),
    cancel: &AtomicBool,
) -> Vec<SweepRow> {
    let mut cfg = plan.config.clone();
    cfg.keep_equity = false;
    let mut rows: Vec<SweepRow> = (0..grid.len())
        .into_par_iter()
        .map(|k| {
            let result = if cancel.load(Ordering::Relaxed) {
                Err("cancelled".to_string())
            } else {
                grid.apply(&plan.specs, k)
                    .map_err(|e| e.to_string())
                    .and_then(|specs| {
                        SignalEngine::from_specs(&specs, plan.rule.clone())
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|engine| {
                        backtest::run(engine, cfg.clone(), candles).map_err(|e| e.to_string())
                    })
                    .map(|r| r.metrics)
            };
            progress();
            SweepRow {
                params: grid.params(k),
                result,
            }
        })
        .collect();
    let key = |r: &SweepRow| match &r.result {
        Ok(m) if m.total_return_pct.is_finite() => m.total_return_pct,
        _ => f64::NEG_INFINITY,
    };
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
    rows
}

fn run_sweep(args: &Args, plan: &Plan, spec: &str, candles: &[Candle]) -> anyhow::Result<()> {
    let grid = sweep::parse(spec).map_err(|e| bad_input(e.to_string()))?;
    // Validate names and values on the first combination before spending the cores.
    for k in [0, grid.len() - 1] {
        let specs = grid
            .apply(&plan.specs, k)
            .map_err(|e| bad_input(e.to_string()))?;
        SignalEngine::from_specs(&specs, plan.rule.clone())?;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(grid.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "sweep {bar:30} {pos}/{len} combinations  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let cancel = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let rows = sweep_rows(plan, &grid, candles, &|| bar.inc(1), &cancel);
    bar.finish_and_clear();
    tracing::info!(
        combinations = rows.len(),
        threads = rayon::current_num_threads(),
        secs = started.elapsed().as_secs_f64(),
        "sweep done"
    );
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.json {
        let arr: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut o = Map::new();
                o.insert("rank".into(), (i + 1).into());
                o.insert("params".into(), Value::Object(r.params.clone()));
                match &r.result {
                    Ok(m) => {
                        o.insert("metrics".into(), summary_json(plan, m));
                    }
                    Err(e) => {
                        o.insert("error".into(), e.clone().into());
                    }
                }
                Value::Object(o)
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&arr)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>4}  {:>9}  {:>8}  {:>7}  {:>6}  {:>6}  {:>7}  params",
        "rank", "return%", "maxdd%", "sharpe", "trades", "win%", "pf"
    )?;
    for (i, r) in rows.iter().take(args.top.max(1)).enumerate() {
        let label: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match &r.result {
            Ok(m) => writeln!(
                out,
                "{:>4}  {:>9}  {:>8}  {:>7}  {:>6}  {:>6}  {:>7}  {}",
                i + 1,
                fmt_f(m.total_return_pct, 2),
                fmt_f(m.max_drawdown_pct, 2),
                fmt_f(m.sharpe, 2),
                m.trades,
                fmt_f(m.win_rate_pct, 1),
                fmt_f(m.profit_factor, 2),
                label.join(" ")
            )?,
            Err(e) => writeln!(out, "{:>4}  error: {e}  {}", i + 1, label.join(" "))?,
        }
    }
    if rows.len() > args.top {
        writeln!(
            out,
            "({} more; --top N or --json for all)",
            rows.len() - args.top
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::downsample;

    #[test]
    fn downsample_keeps_ends_and_bounds_the_count() {
        for (n, max) in [(0, 5), (1, 5), (5, 5), (6, 5), (10_001, 2000), (3, 1)] {
            let idx: Vec<usize> = downsample(n, max).collect();
            assert!(idx.len() <= max.max(2), "{n}/{max}: {}", idx.len());
            assert_eq!(idx.len(), n.min(max.max(2)), "{n}/{max}");
            assert!(idx.windows(2).all(|w| w[0] < w[1]), "{n}/{max}: ascending");
            if n > 0 {
                assert_eq!((idx[0], *idx.last().unwrap()), (0, n - 1), "{n}/{max}");
            }
        }
    }
}
