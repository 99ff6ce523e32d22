//! Drawing the dashboard: `impl Widget for &App` and its panels (header, price chart with a
//! labelled price axis and time span, signal, strategies table, recent decisions, messages, key
//! help). Panels share out the terminal so that no large area stays empty from 80×24 to 200×60.

use std::time::Duration;

use manus_core::Action;
use manus_core::strategy::fmt_num;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Widget,
};

use super::App;
use crate::live::{ConnState, StreamState};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // One more header line for the store queues when `--db` is given.
        let header_height = if self.store_stats().is_some() { 5 } else { 4 };
        // Messages grow a little with the terminal; the body takes the rest.
        let messages_height = (area.height / 5).clamp(4, 12);
        let [header, body, messages, footer] = Layout::vertical([
            Constraint::Length(header_height),
            Constraint::Min(10),
            Constraint::Length(messages_height),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(self, header, buf);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
        // The chart takes what the signal panel does not need.
        let [price, signal] =
            Layout::vertical([Constraint::Min(6), Constraint::Length(7)]).areas(left);
        let st = self.pipeline.streams().get(self.selected());
        render_price(st, price, buf);
        render_signal(st, signal, buf);
        // The strategies table is as tall as its rows; recent decisions fill the rest.
        let rows = st.map_or(0, |s| s.engine().slots().len()) as u16;
        let [strategies, decisions] =
            Layout::vertical([Constraint::Length(rows + 3), Constraint::Min(3)]).areas(right);
        render_strategies(st, strategies, buf);
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

fn render_price(st: Option<&StreamState>, area: Rect, buf: &mut Buffer) {
    let title = st
        .map(|s| format!(" {} ", s.key))
        .unwrap_or_else(|| " no stream ".into());
    let block = Block::bordered().title(title.bold());
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(st) = st else {
        return;
    };
    // Changes share the price's line when there is room, else get lines of their own.
    let wide = inner.width >= 48;
    let text_height = if wide { 2 } else { 3 };
    let [text, chart] =
        Layout::vertical([Constraint::Length(text_height), Constraint::Min(1)]).areas(inner);
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
                format!("{} ({:+.3}%)", fmt_change(d, l), d / f * 100.0),
                style,
            )
        }
        _ => Span::raw("–"),
    };
    let open = st
        .forming
        .map(|c| c.open)
        .or_else(|| st.window().back().map(|c| c.open));
    let price = vec![
        "last ".into(),
        last.map(fmt_num).unwrap_or_else(|| "–".into()).bold(),
    ];
    let since_open = vec!["since open ".into(), change(open)];
    let since_update = Line::from(vec!["since update ".into(), change(st.prev_price)]);
    let lines = if wide {
        let mut first = price;
        first.push("  ".into());
        first.extend(since_open);
        vec![Line::from(first), since_update]
    } else {
        vec![Line::from(price), Line::from(since_open), since_update]
    };
    Paragraph::new(lines).render(text, buf);
    render_chart(st, chart, buf);
}

/// The closes of the last candles that fit (two per cell: Braille dots), as a line with a
/// labelled price axis (low, middle, high) and a time axis (first and last candle, and the
/// span they cover).
fn render_chart(st: &StreamState, area: Rect, buf: &mut Buffer) {
    let w = st.window();
    if w.is_empty() || area.height < 3 || area.width < 20 {
        return;
    }
    let (lo, hi) = w
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.close), hi.max(c.close))
        });
    let labels = [lo, (lo + hi) / 2.0, hi].map(fmt_num);
    let axis_width = labels.iter().map(|l| l.len()).max().unwrap_or(0) as u16 + 1;
    let points = usize::from(area.width.saturating_sub(axis_width)) * 2;
    let shown: Vec<_> = w.iter().skip(w.len().saturating_sub(points)).collect();
    let (lo, hi) = shown
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.close), hi.max(c.close))
        });
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(f64::EPSILON);
    let data: Vec<(f64, f64)> = shown
        .iter()
        .enumerate()
        .map(|(i, c)| (i as f64, c.close))
        .collect();
    let (first, last) = (shown[0], shown[shown.len() - 1]);
    let span = Duration::from_millis((last.close_time + 1 - first.open_time).max(0) as u64);
    let x_labels = vec![
        Span::raw(fmt_clock(first.open_time)),
        Span::raw(fmt_span(span)).dim(),
        Span::raw(fmt_clock(last.open_time)),
    ];
    let y_labels: Vec<Span> = [lo, (lo + hi) / 2.0, hi]
        .into_iter()
        .map(|v| Span::raw(fmt_num(v)))
        .collect();
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Cyan))
        .data(&data);
    Chart::new(vec![dataset])
        .x_axis(
            Axis::default()
                .bounds([0.0, (data.len().max(2) - 1) as f64])
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .bounds([lo - pad, hi + pad])
                .labels(y_labels),
        )
        .render(area, buf);
}

/// A price change with the precision the price itself is shown with (`+0.39` on a 3,000 price,
/// not `+0.394000`).
pub fn fmt_change(d: f64, price: f64) -> String {
    let sign = if d >= 0.0 { "+" } else { "-" };
    if price.abs() >= 1.0 {
        format!("{sign}{:.2}", d.abs())
    } else {
        format!("{sign}{:.6}", d.abs())
    }
}

/// `2h 30m`, `45m`, `3d 4h`: a time span, two units at most.
pub fn fmt_span(d: Duration) -> String {
    let m = d.as_secs() / 60;
    let (days, hours, mins) = (m / 1440, m / 60 % 24, m % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `text` cut to `width` characters at a word boundary, with `…` when anything was cut (never
/// a word cut in half or a dangling comma).
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!out.is_empty());
        if out.chars().count() + sep + word.chars().count() + 1 > width {
            break;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    let out = out.trim_end_matches([',', ';', ':', ' ']);
    format!("{out}…")
}

/// Ids joined by `, ` within `width`, ending `+N more` when they do not all fit.
pub fn fit_list(ids: &[String], width: usize) -> String {
    let all = ids.join(", ");
    if all.chars().count() <= width {
        return all;
    }
    for shown in (0..ids.len()).rev() {
        let more = format!("+{} more", ids.len() - shown);
        let head = ids[..shown].join(", ");
        let line = if head.is_empty() {
            more
        } else {
            format!("{head}, {more}")
        };
        if line.chars().count() <= width {
            return line;
        }
    }
    format!("+{} more", ids.len())
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
            let width = usize::from(area.width.saturating_sub(2));
            let mut head = vec![
                "confluence ".into(),
                Span::styled(r.confluence.as_str(), action_style(r.confluence)),
                format!("  confidence {:.0}%", r.confidence * 100.0).into(),
            ];
            // The candle time only when it fits whole.
            if width >= 48 {
                head.push(format!("  at {}", fmt_clock(r.open_time)).dim());
            }
            lines.push(Line::from(head));
            let agreeing = if r.agreeing.is_empty() {
                "–".to_string()
            } else {
                fit_list(&r.agreeing, width.saturating_sub(9))
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
            lines.push(Line::from(fit(&votes, width).dim()));
        }
        None => lines.push(Line::from("confluence – (warming up)".dim())),
    }
    match (st.stale, st.provisional()) {
        (false, Some((o, _))) => lines.push(Line::from(vec![
            "provisional ".into(),
            Span::styled(o.action.as_str(), action_style(o.action)),
            format!("  {:.0}%", o.confidence * 100.0).dim(),
            if area.width >= 50 {
                " (forming candle)".dim()
            } else {
                "".into()
            },
        ])),
        _ => lines.push(Line::from("provisional –".dim())),
    }
    let counts = format!(
        "candles live {} · backfilled {} · warm-up {}",
        st.live, st.backfilled, st.bootstrapped
    );
    lines.push(Line::from(
        fit(&counts, usize::from(area.width.saturating_sub(2))).dim(),
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
    let id_width = st
        .engine()
        .slots()
        .iter()
        .map(|s| s.id().len())
        .max()
        .unwrap_or(8)
        .max(8) as u16;
    // Columns after the reason, dropped from the right when the panel is narrow, so the id and
    // a readable reason always fit. Each: (header, width).
    let optional = [("changed", 8u16), ("prov", 4), ("fail", 4)];
    let inner = area.width.saturating_sub(2);
    let fixed = id_width + 1 + 4 + 1;
    let mut extra = optional.len();
    let used = |k: usize| fixed + optional[..k].iter().map(|(_, w)| w + 1).sum::<u16>();
    while extra > 0 && inner < used(extra) + 16 {
        extra -= 1;
    }
    let reason_width = usize::from(inner.saturating_sub(used(extra)));
    let engine = st.engine();
    let rows = engine
        .slots()
        .iter()
        .zip(engine.decisions())
        .enumerate()
        .map(|(i, (s, last))| {
            let p = prov.and_then(|d| d.get(i));
            let mut cells = vec![
                Cell::from(s.id()),
                Cell::from(Span::styled(
                    last.action.as_str(),
                    action_style(last.action),
                )),
                Cell::from(fit(&last.reason.to_string(), reason_width)),
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
            ];
            cells.truncate(3 + extra);
            Row::new(cells)
        });
    let mut widths = vec![
        Constraint::Length(id_width),
        Constraint::Length(4),
        Constraint::Fill(1),
    ];
    widths.extend(
        optional[..extra]
            .iter()
            .map(|(_, w)| Constraint::Length(*w)),
    );
    let mut header = vec!["strategy", "view", "reason"];
    header.extend(optional[..extra].iter().map(|(h, _)| *h));
    Table::new(rows, widths)
        .header(
            Row::new(header)
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
        .block(Block::bordered().title(" Recent moves (decision became BUY or SELL) ".bold()))
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
