//! Parquet input and output: `convert` round trips, a file written by pandas read as its CSV
//! twin is, and bad files refused with exit 2 naming the file and the column.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use parquet::data_type::{DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

fn manus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(args)
        .env_remove("MANUS_DB")
        .output()
        .expect("run manus")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/btcusdt_5m_sample.csv")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn csv_to_parquet_to_csv_is_byte_equal() {
    let dir = tempfile::tempdir().unwrap();
    // The CSV as `fetch --out` writes it, from the sample's candles.
    let candles = manus_core::csv::load(
        std::io::BufReader::new(std::fs::File::open(sample()).unwrap()),
        None,
    )
    .unwrap();
    assert!(candles.len() > 1000);
    let a = dir.path().join("a.csv");
    market_manus::cmd::fetch::write_csv(&a, &candles).unwrap();
    let p = dir.path().join("a.parquet");
    let b = dir.path().join("b.csv");
    ok(&manus(&["convert", s(&a), s(&p)]));
    ok(&manus(&["convert", s(&p), s(&b)]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Close times in the input are kept both ways.
    let mut text = "open_time,open,high,low,close,volume,close_time\n".to_string();
    let mut buf = Vec::new();
    for c in &candles[..50] {
        market_manus::cmd::fetch::write_csv_row(&mut buf, c, true).unwrap();
    }
    text.push_str(std::str::from_utf8(&buf).unwrap());
    let a = dir.path().join("ct.csv");
    std::fs::write(&a, &text).unwrap();
    let p = dir.path().join("ct.parquet");
    let b = dir.path().join("ct2.csv");
    ok(&manus(&["convert", s(&a), s(&p)]));
    ok(&manus(&["convert", s(&p), s(&b)]));
    assert_eq!(std::fs::read_to_string(&b).unwrap(), text);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .ends_with(&format!(",{}", candles[0].close_time))
    );
}

/// The fixture written by pandas (tests/data/make_pandas_fixture.py: nullable columns,
/// microsecond timestamps, an extra column) gives the same output as its CSV twin.
#[test]
fn a_pandas_parquet_reads_like_its_csv() {
    let pq = fixture("pandas_candles.parquet");
    let csv = fixture("pandas_candles.csv");
    for cmd in [
        vec!["signals", "--strategies", "all"],
        vec!["indicators"],
        vec!["backtest", "--json", "--strategies", "trend"],
    ] {
        let mut with_csv = cmd.clone();
        with_csv.extend(["--csv", s(&csv)]);
        let mut with_pq = cmd.clone();
        with_pq.extend(["--data", s(&pq)]);
        let (a, b) = (ok(&manus(&with_csv)), ok(&manus(&with_pq)));
        assert!(a.lines().count() >= 1, "{cmd:?}: no output");
        if cmd[0] == "backtest" {
            // The reports name their input file; everything else must agree.
            let mut a: serde_json::Value = serde_json::from_str(&a).unwrap();
            let mut b: serde_json::Value = serde_json::from_str(&b).unwrap();
            a["csv"] = serde_json::Value::Null;
            b["csv"] = serde_json::Value::Null;
            assert_eq!(a, b);
            assert_eq!(a["candles"].as_u64(), Some(600), "{a}");
        } else {
            assert_eq!(a, b, "{cmd:?}");
        }
    }
    let signals = ok(&manus(&["signals", "--data", s(&pq)]));
    assert_eq!(signals.lines().count(), 600);
}

/// A file with `open_time` (`0, 60000, ...`) and the given columns, all 100.0 (DOUBLE, or
/// INT64 for a name starting with `int:`); `null_row` makes every column optional with that
/// row (0-based) null.
fn write_custom(path: &Path, doubles: &[&str], rows: usize, null_row: Option<usize>) {
    let rep = if null_row.is_some() {
        "OPTIONAL"
    } else {
        "REQUIRED"
    };
    let mut schema = format!("message m {{ {rep} INT64 open_time;");
    for d in doubles {
        match d.strip_prefix("int:") {
            Some(name) => schema.push_str(&format!(" {rep} INT64 {name};")),
            None => schema.push_str(&format!(" {rep} DOUBLE {d};")),
        }
    }
    schema.push_str(" }");
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::default())).unwrap();
    let mut g = w.next_row_group().unwrap();
    let defs: Vec<i16> = (0..rows).map(|i| i16::from(Some(i) != null_row)).collect();
    let defs = null_row.map(|_| defs.as_slice());
    let times: Vec<i64> = (0..rows as i64)
        .filter(|i| Some(*i as usize) != null_row)
        .map(|i| i * 60_000)
        .collect();
    let mut c = g.next_column().unwrap().unwrap();
    c.typed::<Int64Type>()
        .write_batch(&times, defs, None)
        .unwrap();
    c.close().unwrap();
    for d in doubles {
        let mut c = g.next_column().unwrap().unwrap();
        if d.starts_with("int:") {
            let v = vec![100; times.len()];
            c.typed::<Int64Type>().write_batch(&v, defs, None).unwrap();
        } else {
            let v = vec![100.0; times.len()];
            c.typed::<DoubleType>().write_batch(&v, defs, None).unwrap();
        }
        c.close().unwrap();
    }
    g.close().unwrap();
    w.close().unwrap();
}

#[test]
fn bad_parquet_files_exit_2_naming_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let all = ["open", "high", "low", "close", "volume"];

    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"PAR1 this is not parquet at all PAR1").unwrap();
    // A real file cut short.
    let good = dir.path().join("good.parquet");
    write_custom(&good, &all, 100, None);
    let cut = dir.path().join("cut.parquet");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let no_volume = dir.path().join("novolume.parquet");
    write_custom(&no_volume, &all[..4], 10, None);
    let int_volume = dir.path().join("intvolume.parquet");
    write_custom(
        &int_volume,
        &["open", "high", "low", "close", "int:volume"],
        10,
        None,
    );
    // Rows the CSV reader would refuse too: a repeated open time, high below low.
    let candle = |t: i64, high: f64| manus_core::Candle {
        open_time: t,
        close_time: t + 59_999,
        open: 100.0,
        high,
        low: 99.0,
        close: 100.0,
        volume: 1.0,
    };
    let dup = dir.path().join("dup.parquet");
    let mut w = market_manus::columnar::CandleWriter::create(&dup, false).unwrap();
    for t in [0, 60_000, 60_000] {
        w.push(&candle(t, 101.0)).unwrap();
    }
    w.finish().unwrap();
    let inverted = dir.path().join("inverted.parquet");
    let mut w = market_manus::columnar::CandleWriter::create(&inverted, true).unwrap();
    w.push(&candle(0, 101.0)).unwrap();
    w.push(&candle(60_000, 98.0)).unwrap();
    w.finish().unwrap();
    let null = dir.path().join("null.parquet");
    write_custom(&null, &all, 10, Some(3));

    // The intact file is read: the failures below are the files' faults.
    let out = manus(&["indicators", "--data", s(&good)]);
    assert_eq!(ok(&out).lines().count(), 101);

    for (path, needles) in [
        (&garbage, vec!["garbage.parquet", "Parquet"]),
        (&cut, vec!["cut.parquet", "Parquet"]),
        (
            &no_volume,
            vec!["novolume.parquet", "missing column volume"],
        ),
        (
            &int_volume,
            vec!["intvolume.parquet", "column volume is INT64"],
        ),
        (&null, vec!["null.parquet", "row 4", "open_time"]),
        (&dup, vec!["dup.parquet", "row 3", "non-increasing time"]),
        (&inverted, vec!["inverted.parquet", "row 2", "high"]),
        (&dir.path().join("absent.parquet"), vec!["absent.parquet"]),
        // The pandas fixture with bytes flipped, on which the parquet crate panics (caught).
        (
            &fixture("corrupt_offsets.parquet"),
            vec!["corrupt_offsets.parquet", "corrupt"],
        ),
    ] {
        for cmd in ["signals", "backtest", "indicators"] {
            let out = manus(&[cmd, "--data", s(path)]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {}: {err}",
                path.display()
            );
            assert!(!err.contains("panicked"), "{err}");
            for n in &needles {
                assert!(err.contains(n), "{cmd}: {err} lacks {n}");
            }
        }
        let out = manus(&["convert", s(path), s(&dir.path().join("x.csv"))]);
        assert_eq!(out.status.code(), Some(2));
        assert!(!dir.path().join("x.csv").exists(), "no partial output");
    }

    // Same format on both sides is refused.
    let out = manus(&["convert", s(&good), s(&dir.path().join("y.parquet"))]);
    assert_eq!(out.status.code(), Some(2));
}
