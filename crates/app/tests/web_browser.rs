//! End to end in a real headless Chromium, driven over the DevTools protocol: a `LiveSession`
//! against the simulated exchange (what `serve --demo` runs) feeds the dashboard and stores its
//! records in a SQLite file.
//! Checks: the chart draws (canvas present, candles loaded), a new candle appears, a BUY/SELL
//! marker shows up, the strategy table and header figures fill, the history filters work, and a
//! screenshot is not blank. Without a Chromium it skips loudly on a dev machine and fails under
//! CI or `scripts/test`; set `MANUS_CHROMIUM` (written by `scripts/setup-test-deps`) to pick
//! the binary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use manus_core::strategy;
use manus_exchange::sim::{FaultPlan, SimConfig, SimSource};
use market_manus::live::Shutdown;
use market_manus::session::LiveSession;
use market_manus::store::Store;
use market_manus::store::sqlite::SqliteStore;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn find_browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MANUS_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A headless Chromium; killed on drop.
struct Browser {
    child: Child,
    profile: PathBuf,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn launch(bin: &PathBuf) -> Browser {
    let profile = std::env::temp_dir().join(format!(
        "manus-chromium-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    // Flags as the machine notes advise: no sandbox (root), no GPU, and no background
    // networking (the closed network refuses it).
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                let port = rest
                    .split('/')
                    .next()
                    .and_then(|h| h.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .ok()
        .flatten()
        .expect("Chromium printed its DevTools port");
    Browser {
        child,
        profile,
        port,
    }
}

/// A DevTools-protocol session on one page.
struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    async fn open(browser: &Browser) -> Page {
        manus_exchange::tls::install_crypto_provider();
        let list: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/json/list", browser.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = list
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { ws, next_id: 1 }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("DevTools socket open")
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it is truthy; returns its value.
    async fn wait_for(&mut self, what: &str, expr: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let v = self.eval(expr).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what} ({expr} = {v})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "the page to load",
            "document.readyState === 'complete' && !!window.manus",
            Duration::from_secs(10),
        )
        .await;
    }
}

fn distinct_colours(png_bytes: &[u8]) -> (usize, u32, u32) {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let mut set = std::collections::HashSet::new();
    for p in buf[..info.buffer_size()].chunks(px) {
        set.insert(p.iter().take(3).fold(0u32, |a, &b| (a << 8) | u32::from(b)));
    }
    (set.len(), info.width, info.height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let Some(bin) = find_browser() else {
        manus_core::testing::service_missing(
            "web_browser",
            "no Chromium found (install Debian's `chromium`, e.g. with scripts/setup-test-deps, or set MANUS_CHROMIUM)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("manus.db");
    let symbols = ["BTCUSDT", "ETHUSDT"];
    let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
    let session = LiveSession::builder()
        .symbols(symbols)
        .interval(manus_core::Interval::M1)
        .bootstrap(200)
        .simulated(SimConfig {
            symbols: symbols.map(String::from).to_vec(),
            interval: manus_core::Interval::M1,
            candle_ms: 150,
            updates_per_candle: 3,
            history: 300,
            source: SimSource::Synthetic {
                seed: 7,
                start_price: 30_000.0,
            },
            faults: FaultPlan::default(),
            ..SimConfig::default()
        })
        .db(db.to_str().unwrap())
        .on_record(|_| {})
        .web("127.0.0.1:0".parse().unwrap(), None)
        .on_web_ready(move |url| {
            let _ = url_tx.send(url.to_string());
        })
        .build()
        .expect("session builds");
    let (stopper, shutdown) = Shutdown::manual();
    let live = std::thread::spawn(move || session.run_until(shutdown));
    let base = tokio::time::timeout(Duration::from_secs(20), url_rx)
        .await
        .expect("the dashboard listens within 20 s")
        .expect("the session starts");

    let browser = launch(&bin);
    let mut page = Page::open(&browser).await;
    page.call("Page.enable", json!({})).await;
    page.call("Runtime.enable", json!({})).await;

    // Live page: the chart draws from the snapshot.
    page.goto(&format!("{base}/?symbol=BTCUSDT&interval=1m"))
        .await;
    page.wait_for(
        "the chart canvas",
        "document.querySelectorAll('#chart canvas').length > 0",
        Duration::from_secs(10),
    )
    .await;
    let candles = page
        .wait_for(
            "candles on the chart",
            "Number(document.getElementById('chart').dataset.candles) >= 150 && Number(document.getElementById('chart').dataset.candles)",
            Duration::from_secs(15),
        )
        .await
        .as_u64()
        .unwrap();
    assert_eq!(
        page.eval("document.getElementById('stream-select').value")
            .await,
        "BTCUSDT 1m"
    );
    // A new candle appears (pushed, no reload).
    let t0 = page
        .eval("Number(document.getElementById('chart').dataset.lastTime)")
        .await
        .as_i64()
        .unwrap();
    page.wait_for(
        "a new candle",
        &format!("Number(document.getElementById('chart').dataset.lastTime) > {t0}"),
        Duration::from_secs(10),
    )
    .await;
    let after = page
        .eval("Number(document.getElementById('chart').dataset.candles)")
        .await
        .as_u64()
        .unwrap();
    assert!(after > candles, "candle count {candles} -> {after}");
    // A BUY or SELL marker shows up.
    page.wait_for(
        "a BUY/SELL marker",
        "Number(document.getElementById('chart').dataset.markers) > 0",
        Duration::from_secs(20),
    )
    .await;
    // The strategy table lists every strategy the demo runs; the header figures came from
    // pushed stats.
    let strategies = strategy::parse_selection(strategy::registry::DEFAULT_SELECTION)
        .unwrap()
        .len();
    assert!(strategies > 1);
    page.wait_for(
        "the strategy table",
        &format!("document.querySelectorAll('#strategies tbody tr').length === {strategies}"),
        Duration::from_secs(10),
    )
    .await;
    page.wait_for(
        "header figures",
        "/^[0-9]+ \\/ [0-9]+$/.test(document.getElementById('f-messages').textContent) && document.getElementById('f-connection').textContent === 'connected'",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('conn').dataset.state")
            .await,
        "live"
    );

    // The screenshot is not blank.
    let shot = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    let png_bytes = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web_live.png");
    let _ = std::fs::write(&out, &png_bytes);
    let (colours, w, h) = distinct_colours(&png_bytes);
    assert!(w >= 800 && h >= 600, "screenshot {w}x{h}");
    assert!(
        colours > 64,
        "screenshot {} has only {colours} distinct colours: blank page?",
        out.display()
    );

    // History: filters from the URL, then from the form.
    // Which decisions each symbol has stored so far depends on the market: wait until both
    // symbols have a BUY or SELL record and filter on those.
    let picked = page
        .wait_for(
            "a stored BUY/SELL for each symbol",
            "(async () => { const pick = async (s) => { const r = await (await fetch('/api/signals?symbol=' + s + '&limit=500')).json(); const it = r.items.find(x => x.confluence !== 'HOLD'); return it ? it.confluence : ''; }; const a = await pick('BTCUSDT'), b = await pick('ETHUSDT'); return a && b ? a + ',' + b : ''; })()",
            Duration::from_secs(30),
        )
        .await;
    let (btc_decision, eth_decision) = picked
        .as_str()
        .and_then(|p| p.split_once(','))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .expect("two decisions");
    page.goto(&format!(
        "{base}/history?symbol=btcusdt&decision={}&limit=500",
        btc_decision.to_lowercase()
    ))
    .await;
    let rows = page
        .wait_for(
            "history rows",
            "document.getElementById('history-table').dataset.state === 'loaded' && Number(document.getElementById('history-table').dataset.rows)",
            Duration::from_secs(10),
        )
        .await
        .as_u64()
        .unwrap();
    let bad = page
        .eval(&format!("[...document.querySelectorAll('#history-table tbody tr')].filter(r => r.dataset.symbol !== 'BTCUSDT' || r.dataset.decision !== '{btc_decision}').length"))
        .await;
    assert_eq!(
        bad, 0,
        "rows not matching symbol=BTCUSDT decision={btc_decision}"
    );
    assert!(rows > 0);
    page.eval(&format!(
        "document.getElementById('history-table').dataset.state = 'idle';
         document.getElementById('h-symbol').value = 'ETHUSDT';
         document.getElementById('h-decision').value = '{eth_decision}';
         document.getElementById('h-apply').click(); true"
    ))
    .await;
    page.wait_for(
        "filtered history",
        "document.getElementById('history-table').dataset.state === 'loaded'",
        Duration::from_secs(10),
    )
    .await;
    let summary = page
        .eval(&format!("(() => {{ const rs = [...document.querySelectorAll('#history-table tbody tr')]; return {{n: rs.length, bad: rs.filter(r => r.dataset.symbol !== 'ETHUSDT' || r.dataset.decision !== '{eth_decision}').length, url: location.search}}; }})()"))
        .await;
    assert_eq!(summary["bad"], 0, "{summary}");
    assert!(summary["n"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        summary["url"]
            .as_str()
            .unwrap()
            .contains(&format!("decision={eth_decision}"))
    );
    // An inverted date range shows the API's error instead of rows.
    page.eval(
        "document.getElementById('h-from').value = '2030-01-02';
         document.getElementById('h-to').value = '2030-01-01';
         document.getElementById('h-apply').click(); true",
    )
    .await;
    let err = page
        .wait_for(
            "the range error",
            "document.getElementById('history-table').dataset.state === 'error' && document.getElementById('history-error').textContent",
            Duration::from_secs(10),
        )
        .await;
    assert!(err.as_str().unwrap().contains("date range"), "{err}");

    // Backtests: a stored run lists, and opens with its equity curve and trades.
    {
        // A second connection to the session's SQLite file, as `manus backtest --db` would be.
        let mut s = SqliteStore::open(&db).unwrap();
        s.insert_backtest_run(&market_manus::store::NewBacktestRun {
            params: json!({"symbol": "BTCUSDT", "interval": "1h", "strategies": ["macd", "adx"]}),
            metrics: json!({"total_return_pct": 4.2, "max_drawdown_pct": 1.5, "trades": 2}),
            equity: json!((0..50).map(|i| 10_000.0 + f64::from(i) * 8.0).collect::<Vec<_>>()),
            trades: json!([
                {"side": "long", "entry_time": 1_700_000_000_000i64, "entry_price": 100.0, "exit_time": 1_700_003_600_000i64, "exit_price": 104.0},
                {"side": "short", "entry_time": 1_700_007_200_000i64, "entry_price": 104.0, "exit_time": 1_700_010_800_000i64, "exit_price": 103.0}
            ]),
        })
        .unwrap();
    }
    page.goto(&format!("{base}/backtests")).await;
    page.wait_for(
        "the backtest list",
        "document.querySelectorAll('#bt-table tbody tr').length === 1",
        Duration::from_secs(10),
    )
    .await;
    page.eval("document.querySelector('#bt-table tbody tr').click(); true")
        .await;
    page.wait_for(
        "the backtest detail",
        "document.querySelectorAll('#bt-equity canvas').length > 0 && document.querySelectorAll('#bt-trades tbody tr').length === 2 && document.getElementById('bt-metrics').textContent.includes('total_return_pct')",
        Duration::from_secs(10),
    )
    .await;

    // Kept next to web_live.png for a human look; not asserted.
    let shot = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    if let Ok(bytes) =
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap_or(""))
    {
        let _ = std::fs::write(
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web_backtests.png"),
            bytes,
        );
    }

    drop(page);
    drop(browser);
    stopper.stop();
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || live.join()),
    )
    .await
    .expect("the session stops within 10 s")
    .unwrap()
    .expect("the session thread does not panic");
    ended.expect("the session ends cleanly (every record stored)");
}
