//! The `--report` page: one self-contained HTML file (inline SVG and CSS, no scripts, no
//! network) with the price chart, trade markers, the equity curve, the statistics and trades.

use std::fmt::Write;

use manus_core::Candle;
use manus_core::backtest::Report;
use manus_core::backtest::execution::Side;

use super::{Plan, table};

const W: f64 = 1000.0;
const H: f64 = 260.0;
const PAD: f64 = 8.0;
/// Most points drawn per line: more is invisible at this width and bloats the file.
const MAX_POINTS: usize = 2000;
/// Most trades drawn as markers and listed.
const MAX_TRADES: usize = 500;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Scales `(t, v)` into the chart box.
struct Scale {
    t0: f64,
    t1: f64,
    lo: f64,
    hi: f64,
}

impl Scale {
    fn new(t0: i64, t1: i64, vals: impl Iterator<Item = f64>) -> Scale {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in vals.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            hi = lo + 1.0;
        }
        Scale {
            t0: t0 as f64,
            t1: (t1 as f64).max(t0 as f64 + 1.0),
            lo,
            hi,
        }
    }
    fn x(&self, t: i64) -> f64 {
        PAD + (t as f64 - self.t0) / (self.t1 - self.t0) * (W - 2.0 * PAD)
    }
    fn y(&self, v: f64) -> f64 {
        H - PAD - (v - self.lo) / (self.hi - self.lo) * (H - 2.0 * PAD)
    }
}

fn polyline(out: &mut String, s: &Scale, pts: impl Iterator<Item = (i64, f64)>, color: &str) {
    let _ = write!(
        out,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.2" points=""#
    );
    for (t, v) in pts {
        let _ = write!(out, "{:.1},{:.1} ", s.x(t), s.y(v));
    }
    out.push_str("\"/>");
}

fn axis_labels(out: &mut String, s: &Scale) {
    let _ = write!(
        out,
        r##"<text x="{PAD}" y="14" class="l">{}</text><text x="{PAD}" y="{}" class="l">{}</text>"##,
        fmt(s.hi),
        H - 2.0,
        fmt(s.lo)
    );
}

fn fmt(v: f64) -> String {
    manus_core::strategy::fmt_num(v)
}

/// Renders the report page.
pub fn html(plan: &Plan, candles: &[Candle], report: &Report) -> String {
    let step = candles.len().div_ceil(MAX_POINTS).max(1);
    let (t0, t1) = (
        candles.first().map_or(0, |c| c.open_time),
        candles.last().map_or(1, |c| c.open_time),
    );
    let mut out = String::with_capacity(256 * 1024);
    let title = format!(
        "Backtest {} {} — {}",
        plan.symbol,
        plan.config.interval,
        plan.specs
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        out,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{t}</title><style>
body{{font:14px system-ui,sans-serif;margin:20px;color:#222}}svg{{background:#fafafa;border:1px solid #ddd}}
.l{{font:11px monospace;fill:#666}}pre{{background:#f4f4f4;padding:8px}}
table{{border-collapse:collapse;font:12px monospace}}td,th{{border:1px solid #ddd;padding:2px 6px;text-align:right}}
</style></head><body><h1>{t}</h1>"#,
        t = esc(&title)
    );
    // Price, with entries (triangles) and exits (circles).
    let lo = candles.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let hi = candles
        .iter()
        .map(|c| c.high)
        .fold(f64::NEG_INFINITY, f64::max);
    let s = Scale::new(t0, t1, [lo, hi].into_iter());
    let _ = write!(
        out,
        r#"<h2>Price and trades</h2><svg id="price" viewBox="0 0 {W} {H}" width="100%">"#
    );
    axis_labels(&mut out, &s);
    polyline(
        &mut out,
        &s,
        candles.iter().step_by(step).map(|c| (c.open_time, c.close)),
        "#555",
    );
    for t in report.trades.iter().take(MAX_TRADES) {
        let (x, y) = (s.x(t.entry_time), s.y(t.entry_price));
        let (color, pts) = match t.side {
            Side::Long => (
                "#1a7f37",
                format!(
                    "{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                    y - 6.0,
                    x - 5.0,
                    y + 4.0,
                    x + 5.0,
                    y + 4.0
                ),
            ),
            Side::Short => (
                "#cf222e",
                format!(
                    "{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                    y + 6.0,
                    x - 5.0,
                    y - 4.0,
                    x + 5.0,
                    y - 4.0
                ),
            ),
        };
        let _ = write!(
            out,
            r#"<polygon class="entry" fill="{color}" points="{pts}"><title>{} entry {}</title></polygon>"#,
            t.side.as_str(),
            fmt(t.entry_price)
        );
        let _ = write!(
            out,
            r#"<circle class="exit" cx="{:.1}" cy="{:.1}" r="3.5" fill="none" stroke="{color}"><title>exit {} ({}), {:.2} %</title></circle>"#,
            s.x(t.exit_time),
            s.y(t.exit_price),
            fmt(t.exit_price),
            t.exit_reason.as_str(),
            t.return_pct
        );
    }
    out.push_str("</svg>");
    // Equity.
    if !report.equity.is_empty() {
        let eq = candles
            .iter()
            .zip(&report.equity)
            .step_by(step)
            .map(|(c, e)| (c.open_time, *e))
            .chain(
                candles
                    .last()
                    .zip(report.equity.last())
                    .map(|(c, e)| (c.open_time, *e)),
            );
        let pts: Vec<(i64, f64)> = eq.collect();
        let s = Scale::new(t0, t1, pts.iter().map(|p| p.1));
        let _ = write!(
            out,
            r#"<h2>Equity</h2><svg id="equity" viewBox="0 0 {W} {H}" width="100%">"#
        );
        axis_labels(&mut out, &s);
        polyline(&mut out, &s, pts.into_iter(), "#0969da");
        out.push_str("</svg>");
    }
    let _ = write!(
        out,
        "<h2>Statistics</h2><pre>{}</pre>",
        esc(&table(plan, &report.metrics))
    );
    out.push_str("<h2>Trades</h2><table><tr><th>side</th><th>entry time</th><th>entry</th><th>exit time</th><th>exit</th><th>reason</th><th>return %</th></tr>");
    for t in report.trades.iter().take(MAX_TRADES) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
            t.side.as_str(),
            t.entry_time,
            fmt(t.entry_price),
            t.exit_time,
            fmt(t.exit_price),
            t.exit_reason.as_str(),
            t.return_pct
        );
    }
    out.push_str("</table>");
    if report.trades.len() > MAX_TRADES {
        let _ = write!(
            out,
            "<p>{} more trades not shown (see --trades-out).</p>",
            report.trades.len() - MAX_TRADES
        );
    }
    out.push_str("</body></html>\n");
    out
}
