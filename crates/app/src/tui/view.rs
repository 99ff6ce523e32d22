//! Drawing the dashboard: `impl Widget for &App` and its panels (header, price with sparkline,
//! signal, strategies table, recent decisions, messages, key help).

use std::time::Duration;

use manus_core::Action;
use manus_core::strategy::fmt_num;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Widget};

use super::App;
use crate::live::{ConnState, StreamState};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // One more header line for the store queues when `--db` is given.
        let header_height = if self.store_stats().is_some() { 5 } else { 4 };
        let [header, body, logs, footer] = Layout::vertical([
            Constraint::Length(header_height),
            Constraint::Min(10),
            Constraint::Length(8),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(self, header, buf);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(body);
        let [price, signal] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
        let st = self.pipeline.streams().get(self.selected());
        render_price(self, st, price, buf);
        render_signal(st, signal, buf);
        render_strategies(st, right, buf);
        let [decisions, messages] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(logs);
        render_decisions(self, decisions, buf);
        render_messages(self, messages, buf);
        Line::from(vec![
            " q ".black().on_gray(),
            " quit  ".into(),
            " Tab ".black().on_gray(),
            format!(
                " next stream ({}/{})",
                self.selected() + 1,
                self.pipeline.streams().len()
            )
            .into(),
        ])
        .render(footer, buf);
    }
}

fn action_style(a: Action) -> Style {
    match a {
        Action::Buy => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        Action::Sell => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Action::Hold => Style::new().fg(Color::Gray),
    }
}

fn render_header(app: &App, area: Rect, buf: &mut Buffer) {
    let c = app.counters().snapshot();
    let p = &app.pipeline;
    let (conn, conn_style) = match p.conn() {
        ConnState::Connecting => ("○ connecting".to_string(), Style::new().fg(Color::Yellow)),
        ConnState::Connected(url) => (format!("● connected {url}"), Style::new().fg(Color::Green)),
        ConnState::Disconnected(why) => (
            format!("✕ disconnected: {why}"),
            Style::new().fg(Color::Red),
        ),
        ConnState::Reconnecting { attempt, in_ms } => (
            format!("↻ reconnecting in {in_ms} ms (attempt {attempt})"),
            Style::new().fg(Color::Yellow),
        ),
    };
    let lat = p.latency();
    let lag = p
        .feed_lag_ms()
        .map(|l| format!("{l} ms"))
        .unwrap_or_else(|| "–".into());
    let mut lines = vec![
        Line::from(vec![
            Span::styled(conn, conn_style),
            format!("   uptime {}", fmt_uptime(p.uptime())).into(),
        ]),
        Line::from(format!(
            "latency p50 {} p99 {} max {} · feed lag {lag} · msgs {} recv / {} processed · malformed {} · reconnections {} · backfilled {}",
            fmt_us(lat.quantile(0.5)),
            fmt_us(lat.quantile(0.99)),
            fmt_us(lat.max()),
            c.messages_received,
            c.messages_processed,
            c.malformed,
            c.reconnections,
            c.backfilled,
        )),
    ];
    if let Some(line) = store_line(app) {
        lines.push(line);
    }
    Paragraph::new(lines)
        .block(Block::bordered().title(format!(" Market Manus · {} ", app.title()).bold()))
        .render(area, buf);
}

/// `store: queued D/C · written W · dropped X · alerts: queued Q delivered N failed F`, when a
/// store is attached; drops and failures are highlighted. Only atomic loads.
fn store_line(app: &App) -> Option<Line<'static>> {
    let st = app.store_stats()?;
    let s = st.sink.snapshot();
    let warn = |n: u64| {
        if n > 0 {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    };
    let mut spans = vec![
        format!(
            "store: queued {}/{} · written {} · ",
            s.depth, s.capacity, s.written
        )
        .into(),
        Span::styled(format!("dropped {}", s.dropped), warn(s.dropped)),
    ];
    if s.write_errors > 0 {
        spans.push(" · ".into());
        spans.push(Span::styled(
            format!("write errors {}", s.write_errors),
            warn(s.write_errors),
        ));
    }
    match &st.delivery {
        Some(d) => {
            let d = d.snapshot();
            spans.push(
                format!(
                    " · alerts: queued {} delivered {} ",
                    s.alerts_queued, d.delivered
                )
                .into(),
            );
            spans.push(Span::styled(format!("failed {}", d.failed), warn(d.failed)));
        }
        None => spans.push(" · alerts: off".dim()),
    }
    Some(Line::from(spans))
}

fn render_price(app: &App, st: Option<&StreamState>, area: Rect, buf: &mut Buffer) {
    let title = st
        .map(|s| format!(" {} ", s.key))
        .unwrap_or_else(|| " no stream ".into());
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(st) = st else {
        return;
    };
    let [text, spark] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(inner);
    let last = st.last_price();
    let change = |from: Option<f64>| match (last, from) {
        (Some(l), Some(f)) if f != 0.0 => {
            let d = l - f;
            let style = if d >= 0.0 {
                Style::new().fg(Color::Green)
            } else {
                Style::new().fg(Color::Red)
            };
            Span::styled(
                format!(
                    "{}{} ({:+.3}%)",
                    if d >= 0.0 { "+" } else { "" },
                    fmt_num(d),
                    d / f * 100.0
                ),
                style,
            )
        }
        _ => Span::raw("–"),
    };
    let open = st
        .forming
        .map(|c| c.open)
        .or_else(|| st.window().back().map(|c| c.open));
    let lines = vec![
        Line::from(vec![
            "last ".into(),
            last.map(fmt_num).unwrap_or_else(|| "–".into()).bold(),
        ]),
        Line::from(vec!["since previous update ".into(), change(st.prev_price)]),
        Line::from(vec!["since candle open ".into(), change(open)]),
    ];
    Paragraph::new(lines).render(text, buf);
    // Scale the visible closes to 0..=100 so small moves still show.
    let n = spark.width as usize;
    let w = st.window();
    let closes: Vec<f64> = w
        .iter()
        .skip(w.len().saturating_sub(n))
        .map(|c| c.close)
        .collect();
    let (lo, hi) = closes
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
    let span = (hi - lo).max(f64::EPSILON);
    let data: Vec<u64> = closes
        .iter()
        .map(|c| (((c - lo) / span) * 100.0).round() as u64 + 1)
        .collect();
    let _ = app;
    Sparkline::default()
        .data(&data)
        .max(101)
        .style(Style::new().fg(Color::Cyan))
        .render(spark, buf);
}

fn render_signal(st: Option<&StreamState>, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Signal ".bold());
    let Some(st) = st else {
        block.render(area, buf);
        return;
    };
    let mut lines = Vec::new();
    if st.stale {
        lines.push(Line::from(
            "STALE: no closed candle for two and a half intervals; signals paused"
                .black()
                .on_yellow(),
        ));
    }
    match &st.last_record {
        Some(r) => {
            lines.push(Line::from(vec![
                "confluence ".into(),
                Span::styled(r.confluence.as_str(), action_style(r.confluence)),
                format!("  confidence {:.0}%", r.confidence * 100.0).into(),
                format!("  at {}", fmt_clock(r.open_time)).dim(),
            ]));
            let agreeing = if r.agreeing.is_empty() {
                "–".to_string()
            } else {
                r.agreeing.join(", ")
            };
            lines.push(Line::from(format!("agreeing {agreeing}")));
            let v = r.votes;
            let mut votes = format!("views {} buy · {} sell · {} none", v.buy, v.sell, v.none);
            if !r.events.is_empty() {
                votes.push_str(&format!(" · new: {}", r.events.join(", ")));
            }
            if r.warming_up {
                votes.push_str(" · warming up");
            }
            lines.push(Line::from(votes.dim()));
        }
        None => lines.push(Line::from("confluence – (warming up)".dim())),
    }
    match (st.stale, st.provisional()) {
        (false, Some((o, _))) => lines.push(Line::from(vec![
            "provisional ".into(),
            Span::styled(o.action.as_str(), action_style(o.action)),
            format!("  confidence {:.0}% (forming candle)", o.confidence * 100.0).dim(),
        ])),
        _ => lines.push(Line::from("provisional –".dim())),
    }
    lines.push(Line::from(
        format!(
            "candles live {} · backfilled {} · warm-up {}",
            st.live, st.backfilled, st.bootstrapped
        )
        .dim(),
    ));
    Paragraph::new(lines).block(block).render(area, buf);
}

fn render_strategies(st: Option<&StreamState>, area: Rect, buf: &mut Buffer) {
    let block = Block::bordered().title(" Strategies ".bold());
    let Some(st) = st else {
        block.render(area, buf);
        return;
    };
    let prov = st.provisional().filter(|_| !st.stale).map(|(_, d)| d);
    let rows = st.engine().slots().iter().enumerate().map(|(i, s)| {
        let p = prov.and_then(|d| d.get(i));
        Row::new(vec![
            Cell::from(s.id()),
            Cell::from(Span::styled(
                s.last.action.as_str(),
                action_style(s.last.action),
            )),
            Cell::from(s.last.reason.to_string()),
            Cell::from(s.changed_at.map(fmt_clock).unwrap_or_else(|| "–".into())),
            Cell::from(match p {
                Some(d) => Span::styled(d.action.as_str(), action_style(d.action)),
                None => Span::raw("–"),
            }),
            Cell::from(if s.failures > 0 {
                s.failures.to_string()
            } else {
                String::new()
            }),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Length(22),
            Constraint::Length(5),
            Constraint::Min(16),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new(vec![
            "strategy", "view", "reason", "changed", "prov", "fail",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
    )
    .block(block)
    .render(area, buf);
}

fn render_decisions(app: &App, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = app
        .pipeline
        .log()
        .iter()
        .take(area.height.saturating_sub(2) as usize)
        .map(|d| {
            Line::from(vec![
                format!("{} {} ", fmt_clock(d.open_time), d.key).into(),
                Span::styled(d.action.as_str(), action_style(d.action)),
                format!(" {:.0}% @ {}", d.confidence * 100.0, fmt_num(d.close)).into(),
                if d.backfilled {
                    " (backfill)".dim()
                } else {
                    "".into()
                },
            ])
        })
        .collect();
    Paragraph::new(lines)
        .block(Block::bordered().title(" Recent decisions ".bold()))
        .render(area, buf);
}

fn render_messages(app: &App, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = app
        .messages()
        .newest(area.height.saturating_sub(2) as usize)
        .into_iter()
        .map(|l| {
            if l.starts_with("WARN") || l.starts_with("ERROR") {
                Line::from(l.yellow())
            } else {
                Line::from(l)
            }
        })
        .collect();
    Paragraph::new(lines)
        .block(Block::bordered().title(" Messages ".bold()))
        .render(area, buf);
}

/// `1234` µs → `1.23 ms`; small values stay in µs.
pub fn fmt_us(us: u64) -> String {
    if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// `HH:MM:SS` of a ms UTC timestamp.
pub fn fmt_clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `HH:MM:SS` of a duration.
pub fn fmt_uptime(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
