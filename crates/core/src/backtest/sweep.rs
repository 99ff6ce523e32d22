//! Parameter grids for sweeps: `ema_crossover.fast=5..20:5,ema_crossover.slow=20..60:10`
//! parses into [`Axis`] values whose cartesian product [`Grid::combo`] enumerates by index, so
//! callers can hand indices to worker threads without materialising the grid.

use serde_json::{Map, Value};

use super::BacktestError;
use crate::engine::StrategySpec;

/// One swept parameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Strategy id.
    pub id: String,
    /// Parameter name.
    pub name: String,
    /// The values, in order.
    pub values: Vec<Value>,
}

/// A parsed grid: the product of its axes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    /// The axes, in the order given.
    pub axes: Vec<Axis>,
}

/// Upper bound on the number of combinations, so a typo cannot ask for billions of runs.
pub const MAX_COMBINATIONS: usize = 1_000_000;

fn bad(msg: impl Into<String>) -> BacktestError {
    BacktestError::BadSweep(msg.into())
}

fn number(s: &str, what: &str, axis: &str) -> Result<f64, BacktestError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| bad(format!("'{axis}': {what} '{s}' is not a number")))
}

fn as_value(v: f64, integer: bool) -> Value {
    if integer {
        Value::from(v.round() as i64)
    } else {
        Value::from(v)
    }
}

/// Parses `ID.NAME=FROM..TO[:STEP]` (inclusive, step 1 by default) or `ID.NAME=A|B|C` axes,
/// separated by commas.
pub fn parse(spec: &str) -> Result<Grid, BacktestError> {
    let mut axes = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lhs, rhs) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("'{part}': expected ID.NAME=FROM..TO:STEP")))?;
        let (id, name) = lhs
            .trim()
            .split_once('.')
            .ok_or_else(|| bad(format!("'{part}': expected ID.NAME=FROM..TO:STEP")))?;
        let values = if let Some((from, rest)) = rhs.split_once("..") {
            let (to, step) = rest.split_once(':').unwrap_or((rest, "1"));
            let integer = [from, to, step]
                .iter()
                .all(|s| s.trim().parse::<i64>().is_ok());
            let (from, to, step) = (
                number(from, "start", part)?,
                number(to, "end", part)?,
                number(step, "step", part)?,
            );
            if step <= 0.0 {
                return Err(bad(format!("'{part}': step must be > 0")));
            }
            if to < from {
                return Err(bad(format!("'{part}': end is below start")));
            }
            // Counted in floating point and checked before the cast: `0..1e20` must not wrap
            // to a tiny (or zero) count.
            let count = ((to - from) / step + 1e-9).floor() + 1.0;
            if count > MAX_COMBINATIONS as f64 {
                return Err(bad(format!(
                    "'{part}': too many values (more than {MAX_COMBINATIONS})"
                )));
            }
            let n = count as usize;
            (0..n)
                .map(|i| as_value(from + i as f64 * step, integer))
                .collect()
        } else {
            rhs.split('|')
                .map(|v| {
                    let v = v.trim();
                    if v.is_empty() {
                        Err(bad(format!("'{part}': empty value")))
                    } else {
                        Ok(serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into())))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let (id, name) = (id.trim().to_string(), name.trim().to_string());
        if axes.iter().any(|a: &Axis| a.id == id && a.name == name) {
            return Err(bad(format!("'{id}.{name}' appears twice")));
        }
        axes.push(Axis { id, name, values });
    }
    if axes.is_empty() {
        return Err(bad("empty sweep; expected e.g. ema_crossover.fast=5..20:5"));
    }
    let grid = Grid { axes };
    let total = grid
        .axes
        .iter()
        .try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()));
    match total {
        Some(n) if n <= MAX_COMBINATIONS => Ok(grid),
        _ => Err(bad(format!(
            "more than {MAX_COMBINATIONS} combinations; narrow the ranges"
        ))),
    }
}

impl Grid {
    /// Number of combinations.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th combination as `(axis, value)` pairs; the last axis varies fastest.
    pub fn combo(&self, mut k: usize) -> Vec<(&Axis, &Value)> {
        let mut out = Vec::with_capacity(self.axes.len());
        for a in self.axes.iter().rev() {
            let n = a.values.len();
            out.push((a, &a.values[k % n]));
            k /= n;
        }
        out.reverse();
        out
    }

    /// A label such as `ema_crossover.fast=5 ema_crossover.slow=20` for combination `k`.
    pub fn label(&self, k: usize) -> String {
        self.combo(k)
            .iter()
            .map(|(a, v)| format!("{}.{}={}", a.id, a.name, v))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `specs` with combination `k` applied. Every swept strategy must be selected.
    pub fn apply(
        &self,
        specs: &[StrategySpec],
        k: usize,
    ) -> Result<Vec<StrategySpec>, BacktestError> {
        let mut out = specs.to_vec();
        for (a, v) in self.combo(k) {
            let spec = out.iter_mut().find(|s| s.id == a.id).ok_or_else(|| {
                bad(format!(
                    "'{}.{}': strategy '{}' is not selected",
                    a.id, a.name, a.id
                ))
            })?;
            spec.params.insert(a.name.clone(), v.clone());
        }
        Ok(out)
    }

    /// The parameter values of combination `k`, as a JSON object keyed `ID.NAME`.
    pub fn params(&self, k: usize) -> Map<String, Value> {
        self.combo(k)
            .into_iter()
            .map(|(a, v)| (format!("{}.{}", a.id, a.name), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_lists_and_enumerates_the_product() {
        let g = parse("ema_crossover.fast=5..20:5, ema_crossover.slow=20..60:10").unwrap();
        assert_eq!(
            g.axes[0].values,
            vec![5, 10, 15, 20]
                .into_iter()
                .map(Value::from)
                .collect::<Vec<_>>()
        );
        assert_eq!(g.axes[1].values.len(), 5);
        assert_eq!(g.len(), 20);
        assert_eq!(g.label(0), "ema_crossover.fast=5 ema_crossover.slow=20");
        assert_eq!(g.label(6), "ema_crossover.fast=10 ema_crossover.slow=30");
        assert_eq!(g.label(19), "ema_crossover.fast=20 ema_crossover.slow=60");
        let labels: std::collections::HashSet<_> = (0..g.len()).map(|k| g.label(k)).collect();
        assert_eq!(labels.len(), 20, "every combination is distinct");

        let g = parse("bollinger_breakout.k=1.5..2.5:0.5,macd.fast=8|12").unwrap();
        assert_eq!(
            g.axes[0].values,
            vec![Value::from(1.5), Value::from(2.0), Value::from(2.5)]
        );
        assert_eq!(g.axes[1].values, vec![Value::from(8), Value::from(12)]);
    }

    #[test]
    fn bad_grids_are_clear_errors() {
        for (spec, needle) in [
            ("", "empty sweep"),
            ("fast=1..2", "ID.NAME"),
            ("a.b=5..1", "below start"),
            ("a.b=1..5:0", "step"),
            ("a.b=x..5", "not a number"),
            ("a.b=1..2,a.b=3..4", "twice"),
            ("a.b=1..1000000000", "too many"),
            // Counts beyond usize once wrapped to zero values and divided by zero.
            ("ema_crossover.fast=0..1e20", "too many"),
            ("a.b=0..1:1e-300", "too many"),
            ("a.b=-1e308..1e308", "too many"),
        ] {
            let e = parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn apply_requires_a_selected_strategy() {
        let g = parse("macd.fast=3..4").unwrap();
        let specs = vec![StrategySpec {
            id: "macd".into(),
            params: Map::new(),
        }];
        assert_eq!(
            g.apply(&specs, 1).unwrap()[0].params["fast"],
            Value::from(4)
        );
        let e = g.apply(&[], 0).unwrap_err().to_string();
        assert!(e.contains("not selected"), "{e}");
    }
}
