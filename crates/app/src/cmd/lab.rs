//! `manus lab`: the interactive Strategy Lab. A numbered menu over a [`Settings`] value —
//! 1 asset, 2 strategies (choose and edit parameters), 3 timeframe, 4 confluence, 5 backtest,
//! 6 real-time test, 7 save/load, 0 exit — with the current selection printed above it.
//!
//! The dialogue is written against `BufRead`/`Write` ([`Lab::run`]) so it is tested without a
//! terminal as well as through a pseudo-terminal (`tests/lab.rs`).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Parser;
use manus_core::confluence::Mode;
use manus_core::{Interval, strategy};

use super::backtest as bt;
use super::common::{StrategyArgs, StrategyFlags};
use crate::config::{ExchangeChoice, Settings, StrategyEntry};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Settings file to load at start (if it exists) and to save to (default:
    /// `$XDG_CONFIG_HOME/market-manus/lab.toml`, else `~/.config/market-manus/lab.toml`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Candle CSV (or `.parquet` file) used by "Run backtest" (asked for when not given).
    #[arg(long, visible_alias = "data")]
    pub csv: Option<PathBuf>,
    /// Number entry instead of arrow-key menus (also when input or output is not a terminal,
    /// or MANUS_LAB_NUMBERS is set): for scripts.
    #[arg(long)]
    pub numbers: bool,
    /// Rule strategy file (docs/RULES.md) whose ids the menus list beside the built-ins;
    /// repeatable, and kept in the settings when they are saved.
    #[arg(long = "strategy-file", value_name = "FILE")]
    pub strategy_files: Vec<PathBuf>,
}

/// How the Lab asks: arrow-key menus on a terminal, typed numbers for scripts and pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompts {
    /// Typed numbers and values, one per line.
    Numbers,
    /// Arrow-key selection and multi-select (dialoguer), on the terminal.
    Arrows,
}

impl Prompts {
    fn for_terminal(numbers: bool) -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if terminal && !numbers && std::env::var_os("MANUS_LAB_NUMBERS").is_none() {
            Prompts::Arrows
        } else {
            Prompts::Numbers
        }
    }
}

/// An arrow-key choice among `items`; `None` on Esc (or when the terminal cannot be read).
fn pick(prompt: &str, items: &[String], default: usize) -> Option<usize> {
    dialoguer::Select::new()
        .with_prompt(prompt)
        .items(items)
        .default(default.min(items.len().saturating_sub(1)))
        .interact_opt()
        .ok()
        .flatten()
}

/// Runs the command on the process's stdin and stdout.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.config.unwrap_or_else(default_settings_path);
    let settings = if path.exists() {
        Settings::load(&path)?
    } else {
        // A new Lab starts from the default selection every other command uses.
        Settings {
            strategies: strategy::parse_selection(strategy::registry::DEFAULT_SELECTION)?
                .into_iter()
                .map(|id| StrategyEntry {
                    id: id.to_string(),
                    params: toml::Table::new(),
                })
                .collect(),
            ..Settings::default()
        }
    };
    let mut settings = settings;
    // Rule strategies are selectable by id once their files are loaded: the settings' files
    // first, then the command line's, which the saved settings then remember.
    for f in args.strategy_files {
        let f = std::fs::canonicalize(&f).unwrap_or(f);
        if !settings.strategy_files.contains(&f) {
            settings.strategy_files.push(f);
        }
    }
    super::strategy::load_files(&settings.strategy_files)?;
    let csv = args.csv.or_else(|| settings.data.clone());
    let mut lab = Lab {
        settings,
        path,
        csv,
        prompts: Prompts::for_terminal(args.numbers),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    lab.run(&mut stdin.lock(), &mut stdout.lock())
}

/// The main menu, in the numbers' order (the last is 0).
const MENU: [&str; 8] = [
    "Select asset",
    "Configure strategies",
    "Select timeframe",
    "Confluence mode",
    "Run backtest",
    "Real-time test",
    "Save/load settings",
    "Exit",
];

/// The Lab's name for the built-in simulated exchange (real-time test offline).
const SIM: &str = ExchangeChoice::SIM;

/// Where the Lab keeps its settings unless told otherwise: the platform's config directory.
pub fn default_settings_path() -> PathBuf {
    crate::store::user_file("XDG_CONFIG_HOME", ".config", "lab.toml")
}

/// The repository's sample candles: next to the working directory (a checkout), else where
/// this binary was built from.
fn sample_csv() -> Option<PathBuf> {
    let local = PathBuf::from("data/btcusdt_5m_sample.csv");
    let built = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    ));
    [local, built].into_iter().find(|p| p.is_file())
}

/// The Lab's state: the settings being edited, where they are saved, the backtest data.
#[derive(Debug, Clone)]
pub struct Lab {
    /// Current selection.
    pub settings: Settings,
    /// Settings file path.
    pub path: PathBuf,
    /// Candle CSV for backtests.
    pub csv: Option<PathBuf>,
    /// Arrow keys or numbers.
    pub prompts: Prompts,
}

/// Reads one trimmed line; `None` at end of input.
fn ask(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    prompt: &str,
) -> std::io::Result<Option<String>> {
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_string()))
}

impl Lab {
    /// What 5 and 6 still need: asset, timeframe, strategy.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.settings.symbols.is_empty() {
            m.push("asset (menu 1)");
        }
        if self.settings.interval.is_none() {
            m.push("timeframe (menu 3)");
        }
        if self.settings.strategies.is_empty() {
            m.push("strategy (menu 2)");
        }
        m
    }

    /// The selection line(s) shown above the menu.
    pub fn summary(&self) -> String {
        let s = &self.settings;
        let strategies: Vec<String> = s
            .strategies
            .iter()
            .map(|e| {
                if e.params.is_empty() {
                    e.id.clone()
                } else {
                    let p: Vec<String> = e.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{}({})", e.id, p.join(", "))
                }
            })
            .collect();
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
        format!(
            "Asset: {} on {}   Timeframe: {}\nStrategies: {}\nConfluence: {}{}   Fees: {} bps   Mode: {}\nData: {}   Settings file: {}\n",
            or_none(s.symbols.first().cloned()),
            s.exchange.unwrap_or_default(),
            or_none(s.interval.map(|i| i.to_string())),
            if strategies.is_empty() {
                "(none)".into()
            } else {
                strategies.join(", ")
            },
            s.confluence.mode,
            if s.confluence.mode == Mode::Weighted {
                format!(" (threshold {})", s.confluence.threshold)
            } else {
                String::new()
            },
            s.backtest.fee_bps,
            s.backtest.mode,
            or_none(self.csv.as_ref().map(|p| p.display().to_string())),
            self.path.display()
        )
    }

    /// The menu loop; returns at `0` or end of input.
    pub fn run(&mut self, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<()> {
        loop {
            writeln!(out, "\n=== Market Manus Strategy Lab ===")?;
            write!(out, "{}", self.summary())?;
            if self.prompts == Prompts::Numbers {
                writeln!(
                    out,
                    "\n1) Select asset\n2) Configure strategies\n3) Select timeframe\n4) Confluence mode\n5) Run backtest\n6) Real-time test\n7) Save/load settings\n0) Exit"
                )?;
            }
            let choice = match self.prompts {
                Prompts::Numbers => match ask(input, out, "Choice: ")? {
                    Some(c) => c,
                    None => {
                        writeln!(out)?;
                        return Ok(());
                    }
                },
                Prompts::Arrows => {
                    out.flush()?;
                    let items = MENU.map(String::from);
                    match pick("Choose (arrows, Enter; Esc exits)", &items, 0) {
                        Some(i) => ((i + 1) % MENU.len()).to_string(),
                        None => "0".into(),
                    }
                }
            };
            let done = match choice.as_str() {
                "1" => self.select_asset(input, out)?,
                "2" => self.configure_strategies(input, out)?,
                "3" => self.select_timeframe(input, out)?,
                "4" => self.select_confluence(input, out)?,
                "5" => self.run_backtest(input, out)?,
                "6" => self.realtime(out)?,
                "7" => self.save_load(input, out)?,
                "0" | "q" | "exit" => {
                    writeln!(out, "Bye.")?;
                    return Ok(());
                }
                "" => false,
                other => {
                    writeln!(out, "Unknown choice '{other}': enter 0-7.")?;
                    false
                }
            };
            if done {
                return Ok(());
            }
        }
    }

    fn select_asset(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        let Some(sym) = ask(input, out, "Symbol (e.g. BTCUSDT): ")? else {
            return Ok(true);
        };
        if sym.is_empty() || !sym.chars().all(|c| c.is_ascii_alphanumeric()) {
            writeln!(
                out,
                "Not a symbol: '{sym}' (letters and digits, e.g. BTCUSDT)."
            )?;
            return Ok(false);
        }
        let current = self.settings.exchange.unwrap_or_default().to_string();
        let names = format!(
            "{}, or {SIM} (built in, offline)",
            manus_exchange::ExchangeKind::names()
        );
        let ex = match self.prompts {
            Prompts::Numbers => {
                let Some(ex) = ask(input, out, &format!("Exchange ({names}) [{current}]: "))?
                else {
                    return Ok(true);
                };
                ex
            }
            Prompts::Arrows => {
                let mut items: Vec<String> = manus_exchange::ExchangeKind::names()
                    .split(", ")
                    .map(String::from)
                    .collect();
                items.push(SIM.into());
                let at = items.iter().position(|i| *i == current).unwrap_or(0);
                pick("Exchange (sim: built in, offline)", &items, at)
                    .map(|i| items[i].clone())
                    .unwrap_or_default()
            }
        };
        let ex = if ex.is_empty() {
            current
        } else {
            ex.to_ascii_lowercase()
        };
        let ex = match ex.parse::<ExchangeChoice>() {
            Ok(choice) => choice,
            Err(_) => {
                writeln!(out, "Unknown exchange '{ex}'; choose {names}.")?;
                return Ok(false);
            }
        };
        self.settings.symbols = vec![sym.to_ascii_uppercase()];
        self.settings.exchange = Some(ex);
        Ok(false)
    }

    fn configure_strategies(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        if self.prompts == Prompts::Arrows {
            return self.configure_strategies_with_arrows(input, out);
        }
        loop {
            let ids = strategy::registry::selectable_ids();
            writeln!(out, "Strategies ([x] = selected):")?;
            for (i, id) in ids.iter().enumerate() {
                let mark = if self.settings.strategies.iter().any(|e| e.id == *id) {
                    "x"
                } else {
                    " "
                };
                writeln!(out, "  {:>2}) [{mark}] {id}", i + 1)?;
            }
            if self.settings.strategies.is_empty() {
                writeln!(
                    out,
                    "  (none selected: the default preset '{}' is used)",
                    strategy::registry::DEFAULT_SELECTION
                )?;
            }
            writeln!(out, "Presets:")?;
            for p in strategy::PRESETS {
                writeln!(out, "  {:9} {} ({})", p.name, p.ids.join(", "), p.rationale)?;
            }
            let Some(line) = ask(
                input,
                out,
                "Toggle numbers (e.g. 1,3), 'p NAME' a preset, 'a' all, 'c' clear, 'e N' edit parameters, 'f FILE' load a rule strategy file, Enter when done: ",
            )?
            else {
                return Ok(true);
            };
            match line.as_str() {
                "" => return Ok(false),
                "a" => {
                    for id in ids {
                        if !self.settings.strategies.iter().any(|e| e.id == id) {
                            self.settings.strategies.push(StrategyEntry {
                                id: id.into(),
                                params: toml::Table::new(),
                            });
                        }
                    }
                }
                "c" => self.settings.strategies.clear(),
                l if l.starts_with("p ") => match strategy::registry::preset(l[2..].trim()) {
                    Some(p) => {
                        self.settings.strategies = p
                            .ids
                            .iter()
                            .map(|id| StrategyEntry {
                                id: id.to_string(),
                                params: toml::Table::new(),
                            })
                            .collect();
                    }
                    None => writeln!(out, "No preset '{}'.", l[2..].trim())?,
                },
                l if l.starts_with("f ") => self.load_strategy_file(l[2..].trim(), out)?,
                l if l.starts_with('e') => {
                    let n = l[1..].trim().parse::<usize>().ok();
                    match n.and_then(|n| ids.get(n.wrapping_sub(1))) {
                        Some(id) => {
                            if self.edit_params(id, input, out)? {
                                return Ok(true);
                            }
                        }
                        None => writeln!(out, "Edit which? e.g. 'e 2'.")?,
                    }
                }
                l => {
                    for part in l.split([',', ' ']).filter(|p| !p.is_empty()) {
                        match part
                            .parse::<usize>()
                            .ok()
                            .and_then(|n| ids.get(n.wrapping_sub(1)))
                        {
                            Some(id) => {
                                if let Some(pos) =
                                    self.settings.strategies.iter().position(|e| e.id == *id)
                                {
                                    self.settings.strategies.remove(pos);
                                } else {
                                    self.settings.strategies.push(StrategyEntry {
                                        id: id.to_string(),
                                        params: toml::Table::new(),
                                    });
                                }
                            }
                            None => {
                                writeln!(out, "No strategy number '{part}' (1-{}).", ids.len())?
                            }
                        }
                    }
                }
            }
        }
    }

    /// The arrow-key strategies menu: a multi-select of strategies, the presets, parameters.
    fn configure_strategies_with_arrows(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        let entry = |id: &str| StrategyEntry {
            id: id.to_string(),
            params: toml::Table::new(),
        };
        loop {
            let mut items = vec!["Choose strategies (Space toggles, Enter confirms)".to_string()];
            items.extend(
                strategy::PRESETS
                    .iter()
                    .map(|p| format!("Preset {}: {}", p.name, p.ids.join(", "))),
            );
            items.push("Edit a strategy's parameters".into());
            items.push("Load a rule strategy file".into());
            items.push("Done".into());
            let done = items.len() - 1;
            let all = strategy::registry::selectable_ids();
            match pick("Strategies", &items, 0) {
                None => return Ok(false),
                Some(i) if i == done => return Ok(false),
                Some(i) if i == done - 1 => {
                    let Some(path) = ask(input, out, "Rule strategy file: ")? else {
                        return Ok(true);
                    };
                    self.load_strategy_file(&path, out)?;
                }
                Some(0) => {
                    let ids: Vec<String> = all
                        .iter()
                        .map(|id| {
                            let summary = strategy::registry::summary_of(id).unwrap_or_default();
                            format!("{id:20} {summary}")
                        })
                        .collect();
                    let on: Vec<bool> = all
                        .iter()
                        .map(|id| self.settings.strategies.iter().any(|e| e.id == *id))
                        .collect();
                    let chosen = dialoguer::MultiSelect::new()
                        .with_prompt("Strategies")
                        .items(&ids)
                        .defaults(&on)
                        .interact_opt()
                        .ok()
                        .flatten();
                    if let Some(chosen) = chosen {
                        // Keep the parameters of strategies that stay selected.
                        let keep = std::mem::take(&mut self.settings.strategies);
                        for i in chosen {
                            let id = all[i];
                            let e = keep.iter().find(|e| e.id == id).cloned();
                            self.settings
                                .strategies
                                .push(e.unwrap_or_else(|| entry(id)));
                        }
                    }
                }
                Some(i) if i <= strategy::PRESETS.len() => {
                    let p = &strategy::PRESETS[i - 1];
                    self.settings.strategies = p.ids.iter().map(|id| entry(id)).collect();
                }
                Some(_) => {
                    let ids: Vec<String> = all.iter().map(|s| s.to_string()).collect();
                    if let Some(i) = pick("Which strategy", &ids, 0)
                        && self.edit_params(all[i], input, out)?
                    {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// Loads a rule strategy file so its ids can be chosen, and keeps it in the settings; a bad
    /// file is reported and changes nothing.
    fn load_strategy_file(&mut self, path: &str, out: &mut dyn Write) -> anyhow::Result<()> {
        if path.is_empty() {
            writeln!(out, "Load which file? e.g. 'f my_rules.toml'.")?;
            return Ok(());
        }
        let path = PathBuf::from(path);
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        match super::strategy::load_files(std::slice::from_ref(&path)) {
            Ok(()) => {
                let n = super::strategy::read_file(&path)
                    .map(|d| d.len())
                    .unwrap_or(0);
                writeln!(out, "Loaded {n} rule strategies from {}.", path.display())?;
                if !self.settings.strategy_files.contains(&path) {
                    self.settings.strategy_files.push(path);
                }
            }
            Err(e) => writeln!(out, "Cannot load {}: {e:#}", path.display())?,
        }
        Ok(())
    }

    fn edit_params(
        &mut self,
        id: &str,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        let defaults = strategy::default_params(id)?;
        if !self.settings.strategies.iter().any(|e| e.id == id) {
            self.settings.strategies.push(StrategyEntry {
                id: id.to_string(),
                params: toml::Table::new(),
            });
        }
        loop {
            let entry = self
                .settings
                .strategies
                .iter()
                .find(|e| e.id == id)
                .cloned()
                .unwrap_or_else(|| StrategyEntry {
                    id: id.into(),
                    params: toml::Table::new(),
                });
            writeln!(out, "Parameters of {id}:")?;
            for (k, v) in &defaults {
                match entry.params.get(k) {
                    Some(cur) => writeln!(out, "  {k} = {cur} (default {v})")?,
                    None => writeln!(out, "  {k} = {v}")?,
                }
            }
            let Some(line) = ask(input, out, "name=value to change, Enter when done: ")? else {
                return Ok(true);
            };
            if line.is_empty() {
                return Ok(false);
            }
            let Some((k, v)) = line.split_once('=') else {
                writeln!(out, "Expected name=value, e.g. fast=12.")?;
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {v}")) {
                Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(v.into())),
                Err(_) => toml::Value::String(v.into()),
            };
            // Try it before keeping it, so a bad value is refused here rather than at run time.
            let mut params = serde_json::Map::new();
            for (pk, pv) in entry
                .params
                .iter()
                .chain(std::iter::once((&k.to_string(), &value)))
            {
                params.insert(pk.clone(), serde_json::to_value(pv)?);
            }
            match strategy::build(id, &params) {
                Ok(_) => {
                    if let Some(e) = self.settings.strategies.iter_mut().find(|e| e.id == id) {
                        e.params.insert(k.to_string(), value);
                    }
                }
                Err(e) => writeln!(out, "Refused: {e}")?,
            }
        }
    }

    fn select_timeframe(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        if self.prompts == Prompts::Arrows {
            let items: Vec<String> = Interval::ALL.iter().map(|i| i.to_string()).collect();
            let at = self
                .settings
                .interval
                .and_then(|c| Interval::ALL.iter().position(|i| *i == c))
                .unwrap_or(0);
            if let Some(i) = pick("Timeframe", &items, at) {
                self.settings.interval = Some(Interval::ALL[i]);
            }
            return Ok(false);
        }
        for (i, iv) in Interval::ALL.iter().enumerate() {
            write!(out, "{:>3}) {:<4}", i + 1, iv.as_str())?;
            if i % 5 == 4 {
                writeln!(out)?;
            }
        }
        let Some(line) = ask(input, out, "Timeframe (number or e.g. 5m): ")? else {
            return Ok(true);
        };
        let chosen = line
            .parse::<usize>()
            .ok()
            .and_then(|n| Interval::ALL.get(n.wrapping_sub(1)).copied())
            .or_else(|| line.parse::<Interval>().ok());
        match chosen {
            Some(iv) => self.settings.interval = Some(iv),
            None => writeln!(out, "Unknown timeframe '{line}'.")?,
        }
        Ok(false)
    }

    fn select_confluence(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        let modes = [Mode::All, Mode::Any, Mode::Majority, Mode::Weighted];
        let line = match self.prompts {
            Prompts::Numbers => {
                for (i, m) in modes.iter().enumerate() {
                    writeln!(out, "  {}) {m}", i + 1)?;
                }
                let Some(line) = ask(input, out, "Confluence mode: ")? else {
                    return Ok(true);
                };
                line
            }
            Prompts::Arrows => {
                let items = modes.map(|m| m.to_string());
                let at = modes
                    .iter()
                    .position(|m| *m == self.settings.confluence.mode)
                    .unwrap_or(2);
                match pick("Confluence mode", &items, at) {
                    Some(i) => (i + 1).to_string(),
                    None => return Ok(false),
                }
            }
        };
        let mode = line
            .parse::<usize>()
            .ok()
            .and_then(|n| modes.get(n.wrapping_sub(1)).copied())
            .or_else(|| line.parse::<Mode>().ok());
        let Some(mode) = mode else {
            writeln!(out, "Unknown mode '{line}'.")?;
            return Ok(false);
        };
        self.settings.confluence.mode = mode;
        if mode == Mode::Weighted {
            let prompt = format!("Threshold [{}]: ", self.settings.confluence.threshold);
            let Some(t) = ask(input, out, &prompt)? else {
                return Ok(true);
            };
            if !t.is_empty() {
                // The range the settings file is read with, so a saved Lab file loads again.
                let range = crate::ranges::THRESHOLD;
                match t.parse::<f64>() {
                    Ok(v) if range.f64(v).is_ok() => self.settings.confluence.threshold = v,
                    _ => writeln!(out, "Not a threshold: '{t}' ({}).", range.valid())?,
                }
            }
        }
        Ok(false)
    }

    fn say_missing(&self, out: &mut dyn Write, what: &str) -> std::io::Result<bool> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(false);
        }
        writeln!(out, "Cannot {what}: missing {}.", missing.join(", "))?;
        Ok(true)
    }

    fn run_backtest(
        &mut self,
        input: &mut dyn BufRead,
        out: &mut dyn Write,
    ) -> anyhow::Result<bool> {
        if self.say_missing(out, "run a backtest")? {
            return Ok(false);
        }
        let mut download = None;
        if self.csv.is_none() {
            let market = format!(
                "{} on {}",
                self.settings.symbols.join(","),
                self.settings.exchange.unwrap_or_default()
            );
            writeln!(
                out,
                "Data for the backtest:\n  1) the sample file (3,000 synthetic 5m BTCUSDT candles)\n  2) download {market} history into the local cache (needs the internet)\n  or type the path of a candle CSV file"
            )?;
            let Some(p) = ask(input, out, "Data: ")? else {
                return Ok(true);
            };
            match p.as_str() {
                "" => {
                    writeln!(
                        out,
                        "Cannot run a backtest: missing data (a candle CSV file)."
                    )?;
                    return Ok(false);
                }
                "1" => match sample_csv() {
                    Some(path) => self.csv = Some(path),
                    None => {
                        writeln!(
                            out,
                            "The sample file is not here (data/btcusdt_5m_sample.csv in a checkout)."
                        )?;
                        return Ok(false);
                    }
                },
                "2" => {
                    let Some(from) = ask(input, out, "From (UTC date, e.g. 2024-01-01): ")? else {
                        return Ok(true);
                    };
                    download = Some(from);
                }
                path => self.csv = Some(PathBuf::from(path)),
            }
        }
        let mut args = bt::Args {
            csv: self.csv.clone(),
            strategy: StrategyFlags::default(),
            top: 20,
            ..bt::Args::default()
        };
        if let Some(from) = download {
            // The same cache `manus fetch` fills: only what is missing is downloaded.
            args.source.exchange = Some(self.settings.exchange.unwrap_or_default().to_string());
            args.source.from = Some(from);
            writeln!(out, "Downloading (only what the cache lacks)...")?;
            out.flush()?;
        }
        let result = bt::load_candles(&args, &self.settings).and_then(|(candles, interval)| {
            let plan = bt::plan(&args, &self.settings, interval)?;
            let report = bt::run_single(&plan, &candles, None)?;
            Ok(bt::table(&plan, &report.metrics))
        });
        match result {
            Ok(table) => {
                write!(out, "\nBacktest result:\n{table}")?;
                // Kept with the settings, so the next session backtests the same data.
                self.settings.data = self.csv.clone();
            }
            Err(e) => {
                writeln!(out, "Backtest failed: {e:#}")?;
                self.csv = None;
            }
        }
        Ok(false)
    }

    fn realtime(&mut self, out: &mut dyn Write) -> anyhow::Result<bool> {
        if self.say_missing(out, "start a real-time test")? {
            return Ok(false);
        }
        /// What the real-time test runs: `live`, or `demo` for the built-in exchange.
        #[derive(Debug, Parser)]
        struct Run {
            #[command(subcommand)]
            what: What,
        }
        #[derive(Debug, clap::Subcommand)]
        enum What {
            Live(super::live::Args),
            Demo(super::demo::Args),
        }
        let s = &self.settings;
        let flags = StrategyArgs::from_settings(s, &StrategyFlags::default());
        let sim = s.exchange == Some(ExchangeChoice::Sim);
        let mut argv: Vec<String> = if sim {
            // The simulated exchange: the real pipeline, offline (`manus demo`, one stream).
            ["lab", "demo", "--symbols", "1"].map(String::from).to_vec()
        } else {
            vec![
                "lab".into(),
                "live".into(),
                "--exchange".into(),
                s.exchange.unwrap_or_default().to_string(),
                "--symbol".into(),
                s.symbols.join(","),
                "--interval".into(),
                s.interval.map(|i| i.to_string()).unwrap_or_default(),
            ]
        };
        argv.extend([
            "--strategies".into(),
            flags.strategies,
            "--confluence".into(),
            flags.confluence,
            "--threshold".into(),
            flags.threshold.to_string(),
        ]);
        for p in flags.params {
            argv.extend(["--param".into(), p]);
        }
        for w in flags.weights {
            argv.extend(["--weight".into(), w]);
        }
        for f in flags.strategy_files {
            argv.extend(["--strategy-file".into(), f.display().to_string()]);
        }
        let run = match Run::try_parse_from(&argv) {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "Cannot start the real-time test: {e}")?;
                return Ok(false);
            }
        };
        writeln!(
            out,
            "Starting the real-time test ({}); press q or Ctrl-C to return.",
            argv[1..].join(" ")
        )?;
        out.flush()?;
        let result = match run.what {
            What::Live(args) => super::live::run(args),
            What::Demo(args) => super::demo::run(args),
        };
        if let Err(e) = result {
            // The whole cause chain (DNS, refused, TLS, timed out), each cause once.
            writeln!(out, "Real-time test ended: {}", crate::exit::message(&e))?;
        }
        Ok(false)
    }

    fn save_load(&mut self, input: &mut dyn BufRead, out: &mut dyn Write) -> anyhow::Result<bool> {
        let Some(which) = ask(input, out, "1) Save  2) Load: ")? else {
            return Ok(true);
        };
        if which != "1" && which != "2" {
            writeln!(out, "Enter 1 to save or 2 to load.")?;
            return Ok(false);
        }
        let Some(p) = ask(input, out, &format!("File [{}]: ", self.path.display()))? else {
            return Ok(true);
        };
        let path = if p.is_empty() {
            self.path.clone()
        } else {
            PathBuf::from(p)
        };
        if which == "1" {
            match self.settings.save(&path) {
                Ok(()) => writeln!(out, "Saved to {}.", path.display())?,
                Err(e) => writeln!(out, "Could not save: {e:#}")?,
            }
        } else {
            match Settings::load(&path) {
                Ok(s) => {
                    self.settings = s;
                    writeln!(out, "Loaded {}.", path.display())?;
                }
                Err(e) => writeln!(out, "Could not load: {e:#}")?,
            }
        }
        self.path = path;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(lab: &mut Lab, script: &str) -> String {
        let mut out = Vec::new();
        lab.run(&mut script.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn lab(dir: &std::path::Path) -> Lab {
        Lab {
            settings: Settings::default(),
            path: dir.join("lab.toml"),
            csv: None,
            prompts: Prompts::Numbers,
        }
    }

    #[test]
    fn the_sample_file_and_the_simulated_exchange_need_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = lab(dir.path());
        // Asset on the built-in exchange, 5m, default strategies; backtest on the sample;
        // save: the data path is kept with the settings.
        let text = drive(
            &mut l,
            "1\nbtcusdt\nsim\n2\np trend\n\n3\n3\n5\n1\n7\n1\n\n0\n",
        );
        assert!(text.contains("Asset: BTCUSDT on sim"), "{text}");
        assert!(text.contains("1) the sample file"), "{text}");
        assert!(text.contains("Backtest result:"), "{text}");
        let saved = Settings::load(&dir.path().join("lab.toml")).unwrap();
        assert!(
            saved
                .data
                .as_deref()
                .is_some_and(|p| p.ends_with("btcusdt_5m_sample.csv")),
            "{saved:?}"
        );
        assert_eq!(saved.exchange, Some(ExchangeChoice::Sim));
    }

    #[test]
    fn settings_live_in_the_config_directory_by_default() {
        // Only the path is computed: nothing is written.
        let p = default_settings_path();
        assert!(p.ends_with("market-manus/lab.toml"), "{}", p.display());
    }

    #[test]
    fn missing_selection_is_named_then_a_backtest_runs() {
        let tmp = tempfile::tempdir().unwrap(); // removed on drop, also when the test fails
        let dir = tmp.path();
        let mut l = lab(dir);
        let text = drive(&mut l, "5\n6\n0\n");
        assert!(text.contains("Cannot run a backtest: missing asset (menu 1), timeframe (menu 3), strategy (menu 2)."), "{text}");
        assert!(
            text.contains("Cannot start a real-time test: missing asset"),
            "{text}"
        );

        let csv = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/btcusdt_5m_sample.csv"
        );
        let script =
            format!("1\nethusdt\n\n3\n3\n2\n2\ne 2\nfast=5\nfast=x\n\n\n5\n{csv}\n7\n1\n\n0\n");
        let text = drive(&mut l, &script);
        assert!(
            text.contains("Asset: ETHUSDT on binanceus   Timeframe: 5m"),
            "{text}"
        );
        assert!(text.contains("ema_crossover(fast=5)"), "{text}");
        assert!(text.contains("Refused:"), "{text}");
        assert!(
            text.contains("Backtest result:") && text.contains("Total return"),
            "{text}"
        );
        let saved = Settings::load(&dir.join("lab.toml")).unwrap();
        assert_eq!(saved.symbols, vec!["ETHUSDT".to_string()]);
        assert_eq!(saved.strategies[0].params["fast"].as_integer(), Some(5));
    }

    #[test]
    fn rule_strategies_from_a_file_are_listed_chosen_and_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = lab(tmp.path());
        let rules = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/examples/strategies.toml"
        );
        let n = strategy::IDS.len();
        // A missing file is refused and changes nothing; the example file adds its ids after
        // the built-ins; the first rule is chosen alone, its hold edited, then backtested.
        let script = format!(
            "1\nbtcusdt\nsim\n3\n3\n2\nf {dir}/missing.toml\nf {rules}\nc\n{k}\ne {k}\nhold=4\n\n\n5\n1\n7\n1\n\n0\n",
            dir = tmp.path().display(),
            k = n + 1
        );
        let text = drive(&mut l, &script);
        assert!(text.contains("Cannot load"), "{text}");
        assert!(text.contains("Loaded 4 rule strategies"), "{text}");
        assert!(
            text.contains(&format!("{:>2}) [ ] trend_pullback", n + 1)),
            "{text}"
        );
        assert!(
            text.contains(&format!("{:>2}) [x] trend_pullback", n + 1)),
            "{text}"
        );
        assert!(text.contains("hold = 4 (default 1)"), "{text}");
        assert!(text.contains("Backtest result:"), "{text}");
        let saved = Settings::load(&tmp.path().join("lab.toml")).unwrap();
        assert_eq!(saved.strategies.len(), 1, "{saved:?}");
        assert_eq!(saved.strategies[0].id, "trend_pullback");
        assert_eq!(saved.strategies[0].params["hold"].as_integer(), Some(4));
        assert_eq!(saved.strategy_files.len(), 1, "{saved:?}");
        assert!(saved.strategy_files[0].ends_with("docs/examples/strategies.toml"));
    }
}
