//! `manus strategy check FILE`: validates a strategy file and prints each strategy's warm-up and
//! the indicators it uses; [`load_files`] makes the strategies of `--strategy-file` and
//! `strategy_files = [...]` selectable by id in every command.

use std::path::{Path, PathBuf};

use manus_core::rules::{self, RuleDef};
use manus_core::strategy::registry;

use super::common::parse_interval;
use crate::exit::bad_input;

/// `manus strategy ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Validate a strategy file; print each strategy's warm-up and the indicators it uses.
    Check {
        /// The strategy file (TOML, `[[strategy]]` tables).
        file: PathBuf,
        /// The stream interval the warm-up is counted in (and `on(...)` checked against).
        #[arg(long, default_value = "5m")]
        interval: String,
    },
}

/// Reads and compiles one strategy file (bad input, exit 2, naming the file).
pub fn read_file(path: &Path) -> anyhow::Result<Vec<RuleDef>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
    rules::parse_file(&text).map_err(|e| bad_input(format!("{}: {e}", path.display())))
}

/// Loads strategy files so their ids work wherever a built-in id does.
pub fn load_files(paths: &[PathBuf]) -> anyhow::Result<()> {
    for p in paths {
        let defs = read_file(p)?;
        registry::load_rules(&defs).map_err(|e| bad_input(format!("{}: {e}", p.display())))?;
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Check { file, interval } => {
            let interval = parse_interval(&interval)?;
            let defs = read_file(&file)?;
            for d in &defs {
                let s = d
                    .summary(interval)
                    .map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
                println!("{}: warm-up {} candles at {interval}", s.id, s.warmup);
                println!("  uses: {}", s.uses.join(", "));
            }
            println!("{}: {} strategies OK", file.display(), defs.len());
            Ok(())
        }
    }
}
