//! Metrics queries at scale: flow, time in stage and direct conversion over
//! a generated history (default 1M prospects, 10M activities), through the
//! daemon's own write path, against SQLite (WAL, indexed) loaded with the
//! same transitions and stays, measured in the same run.
//!
//! Run: `cargo bench -p stagecoach --bench metrics`
//! (`STAGECOACH_BENCH_PROSPECTS`, default 1000000; 10 activities each).

use std::io::Write as _;
use std::time::Instant;

mod common;

use common::history::{self, DAY, STAGES, START, process};

use stagecoach_core::metrics::{self, Filter};
use stagecoach_core::store::Store;
use stagecoach_types::model::{Millis, TransitionKind};

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = common::bench_prospects(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    println!("# metrics queries at scale: stagecoach (redb + counters) vs SQLite (WAL, indexed)");
    println!(
        "command: cargo bench -p stagecoach --bench metrics   (STAGECOACH_BENCH_PROSPECTS={n})"
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Load through the real write path (engine + criteria + counters), batched.
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let (activities, load) = history::load(&store, n);
    let active = process();
    let transitions = store.all_transitions().unwrap();
    println!(
        "data:    {n} prospects, {activities} activities, {} transitions; loaded through the engine in {load:.0} s",
        transitions.len()
    );

    // SQLite with the same transitions and stays.
    let t = Instant::now();
    let sqlite = rusqlite::Connection::open(dir.path().join("baseline.sqlite")).unwrap();
    sqlite
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE transitions(id INTEGER PRIMARY KEY, prospect INTEGER, from_stage TEXT, to_stage TEXT, at INTEGER, kind TEXT, owner TEXT);
             CREATE TABLE stays(stage TEXT, exit_at INTEGER, duration INTEGER, kind TEXT, owner TEXT);",
        )
        .unwrap();
    {
        let tx = sqlite.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare("INSERT INTO transitions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .unwrap();
            let mut stay = tx
                .prepare("INSERT INTO stays VALUES (?1, ?2, ?3, ?4, ?5)")
                .unwrap();
            let mut entered: std::collections::HashMap<u64, i64> = std::collections::HashMap::new();
            let mut csv = std::io::BufWriter::new(
                std::fs::File::create(dir.path().join("stays.csv")).unwrap(),
            );
            writeln!(csv, "stage,exit_at,duration").unwrap();
            for tr in &transitions {
                ins.execute(rusqlite::params![
                    tr.id as i64,
                    tr.prospect as i64,
                    tr.from,
                    tr.to,
                    tr.at.0,
                    tr.kind.as_str(),
                    ""
                ])
                .unwrap();
                if let (Some(from), Some(e)) = (&tr.from, entered.get(&tr.prospect)) {
                    stay.execute(rusqlite::params![
                        from,
                        tr.at.0,
                        tr.at.0 - e,
                        tr.kind.as_str(),
                        ""
                    ])
                    .unwrap();
                    writeln!(csv, "{from},{},{}", tr.at.0, tr.at.0 - e).unwrap();
                }
                if !matches!(tr.kind, TransitionKind::Won | TransitionKind::Lost) {
                    entered.insert(tr.prospect, tr.at.0);
                }
            }
        }
        tx.commit().unwrap();
    }
    sqlite
        .execute_batch(
            "CREATE INDEX t_to ON transitions(to_stage, at); CREATE INDEX t_from ON transitions(from_stage, at);
             CREATE INDEX s_stage ON stays(stage, exit_at); ANALYZE;",
        )
        .unwrap();
    println!(
        "baseline loaded and indexed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    println!();

    let (from, to) = (Millis(START + 181 * DAY), Millis(START + 212 * DAY)); // July 2026
    let now = Millis(START + 400 * DAY);
    let txn = store.read_txn().unwrap();
    let stage = "present".to_string();
    let filter = Filter::default();

    let ours = metrics::flow(&txn, std::slice::from_ref(&stage), from, to, now, &filter).unwrap()
        [0]
    .clone();
    let sql_flow = |s: &rusqlite::Connection| -> (i64, i64, i64, i64) {
        let q = |sql: &str, a: i64, b: i64| -> i64 {
            s.query_row(sql, rusqlite::params![stage, a, b], |r| r.get(0))
                .unwrap()
        };
        let into_before = q(
            "SELECT count(*) FROM transitions WHERE to_stage = ?1 AND at < ?2 AND kind NOT IN ('won','lost') AND ?3 = ?3",
            from.0,
            0,
        );
        let out_before = q(
            "SELECT count(*) FROM transitions WHERE from_stage = ?1 AND at < ?2 AND ?3 = ?3",
            from.0,
            0,
        );
        let entered = q(
            "SELECT count(*) FROM transitions WHERE to_stage = ?1 AND at >= ?2 AND at < ?3 AND kind NOT IN ('won','lost')",
            from.0,
            to.0,
        );
        let exited = q(
            "SELECT count(*) FROM transitions WHERE from_stage = ?1 AND at >= ?2 AND at < ?3",
            from.0,
            to.0,
        );
        let start = into_before - out_before;
        (start, entered, exited, start + entered - exited)
    };
    let theirs = sql_flow(&sqlite);
    assert_eq!(
        (ours.start, ours.entered, ours.exited, ours.end),
        theirs,
        "both engines agree on July's flow"
    );
    println!(
        "July flow for `present`: start {} entered {} exited {} end {} (both agree)",
        ours.start, ours.entered, ours.exited, ours.end
    );

    let flow_ours = median_ms(|| {
        std::hint::black_box(
            metrics::flow(&txn, std::slice::from_ref(&stage), from, to, now, &filter).unwrap(),
        );
    });
    let flow_sql = median_ms(|| {
        std::hint::black_box(sql_flow(&sqlite));
    });
    let all: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let flow_all = median_ms(|| {
        std::hint::black_box(metrics::flow(&txn, &all, from, to, now, &filter).unwrap());
    });
    let sql_stays = || -> Vec<i64> {
        let mut stmt = sqlite
            .prepare_cached(
                "SELECT duration FROM stays WHERE stage = ?1 AND exit_at >= ?2 AND exit_at < ?3",
            )
            .unwrap();
        let v: Vec<i64> = stmt
            .query_map(rusqlite::params![stage, from.0, to.0], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        v
    };
    let tis_sql_answer = metrics::durations(sql_stays());
    let tis_answer = metrics::time_in_stage(&txn, &stage, from, to, &filter).unwrap();
    assert_eq!(
        tis_answer, tis_sql_answer,
        "both engines agree on July's time in stage"
    );
    println!(
        "July time in `present`: {} stays, mean {:?} d, median {:?} d, p90 {:?} d (both agree)",
        tis_answer.count, tis_answer.mean_days, tis_answer.median_days, tis_answer.p90_days
    );
    let tis_ours = median_ms(|| {
        std::hint::black_box(metrics::time_in_stage(&txn, &stage, from, to, &filter).unwrap());
    });
    let tis_every_stay = median_ms(|| {
        std::hint::black_box(metrics::durations(
            metrics::completed_stays(&txn, &stage, from, to, &filter).unwrap(),
        ));
    });
    let owner_filter = Filter {
        owner: Some("rep0".to_string()),
    };
    let tis_owner = median_ms(|| {
        std::hint::black_box(
            metrics::time_in_stage(&txn, &stage, from, to, &owner_filter).unwrap(),
        );
    });
    assert_eq!(
        metrics::time_in_stage(&txn, &stage, from, to, &owner_filter).unwrap(),
        metrics::durations(
            metrics::completed_stays(&txn, &stage, from, to, &owner_filter).unwrap()
        ),
        "one owner's summaries agree with the stays"
    );
    let tis_sql = median_ms(|| {
        std::hint::black_box(metrics::durations(sql_stays()));
    });
    let year = (Millis(START), Millis(START + 365 * DAY));
    let tis_year = median_ms(|| {
        std::hint::black_box(
            metrics::time_in_stage(&txn, &stage, year.0, year.1, &filter).unwrap(),
        );
    });
    let conv_ours = median_ms(|| {
        for s in STAGES {
            std::hint::black_box(metrics::exits_by_kind(&txn, s, from, to, &filter).unwrap());
        }
    });
    let conv_sql = median_ms(|| {
        for s in STAGES {
            let mut stmt = sqlite
                .prepare_cached("SELECT kind, count(*) FROM transitions WHERE from_stage = ?1 AND at >= ?2 AND at < ?3 GROUP BY kind")
                .unwrap();
            let v: Vec<(String, i64)> = stmt
                .query_map(rusqlite::params![s, from.0, to.0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            std::hint::black_box(v);
        }
    });
    println!();
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "query (median of 15)", "stagecoach", "SQLite", "ratio"
    );
    let line =
        |name: &str, a: f64, b: f64| println!("{name:<44} {a:>8.3}ms {b:>8.3}ms {:>7.0}x", b / a);
    line("flow, one stage, one month", flow_ours, flow_sql);
    println!(
        "{:<44} {flow_all:>8.3}ms",
        "flow, all five stages, one month"
    );
    line("time in stage, one stage, one month", tis_ours, tis_sql);
    println!(
        "{:<44} {tis_every_stay:>8.3}ms   (the same answer read stay by stay: {:.0}x)",
        "  … reading every stay instead",
        tis_every_stay / tis_ours
    );
    println!("{:<44} {tis_owner:>8.3}ms", "  … one owner's");
    println!(
        "{:<44} {tis_year:>8.3}ms",
        "  … over a year (365 day summaries)"
    );
    match duckdb_time_in_stage(&dir.path().join("stays.csv"), &stage, from, to) {
        Ok((ms, count)) => {
            assert_eq!(count, tis_answer.count, "DuckDB counts the same stays");
            line("  DuckDB (rows sorted by stage and time)", tis_ours, ms);
        }
        Err(why) => println!("  DuckDB: skipped ({why})"),
    }
    line(
        "direct conversion, all stages, one month",
        conv_ours,
        conv_sql,
    );
    println!(
        "targets: flow ≤ 5 ms and ≥ 50× SQLite; time in stage ≤ 0.2 ms, ≥ 10× DuckDB, ≥ 200× SQLite"
    );

    // The daemon on the same database: from start to answering, and memory.
    drop(txn);
    drop(store);
    let daemon_dir = dir.path().join("daemon");
    std::fs::create_dir_all(daemon_dir.join("data")).unwrap();
    std::fs::rename(
        dir.path().join("db.redb"),
        stagecoach_server::server::database_path(&daemon_dir.join("data")),
    )
    .unwrap();
    println!();
    startup(&daemon_dir, &active.text, from, to);
}

/// Time in stage in DuckDB (the analytics tests' virtual environment,
/// `target/analytics-venv`, made by `cargo test --test analytics`): the
/// same stays loaded sorted by (stage, exit time), two threads, the median
/// of 15 runs of count, mean and four percentiles. Returns (ms, count).
fn duckdb_time_in_stage(
    csv: &std::path::Path,
    stage: &str,
    from: Millis,
    to: Millis,
) -> Result<(f64, usize), String> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/analytics-venv/bin/python");
    if !python.exists() {
        return Err(format!(
            "no {}; `cargo test --test analytics` makes it",
            python.display()
        ));
    }
    const SCRIPT: &str = r#"
import sys, time, duckdb
csv, stage, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE TABLE stays AS SELECT * FROM read_csv(?, header = true) ORDER BY stage, exit_at", [csv])
q = ("SELECT count(*), avg(duration), quantile_disc(duration, [0.25, 0.5, 0.75, 0.9]) "
     "FROM stays WHERE stage = ? AND exit_at >= ? AND exit_at < ?")
times = []
for _ in range(15):
    t = time.perf_counter()
    row = con.execute(q, [stage, a, b]).fetchone()
    times.append((time.perf_counter() - t) * 1e3)
print(sorted(times)[7], row[0])
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(csv)
        .arg(stage)
        .arg(from.0.to_string())
        .arg(to.0.to_string())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let ms = words.next().and_then(|w| w.parse().ok());
    let count = words.next().and_then(|w| w.parse().ok());
    ms.zip(count)
        .ok_or_else(|| format!("unexpected output: {text}"))
}

/// Starts the daemon on the loaded database, one start after another, with
/// the default flags: after a clean close, then twice after SIGKILL with
/// writes made just before (the write-ahead log then holds them, and the
/// start applies it; redb reopens from its last checkpoint without checking
/// the whole file). Reports how long until it answers `daemon.status`, and
/// its memory after a flow query.
fn startup(dir: &std::path::Path, process: &str, from: Millis, to: Millis) {
    use std::io::{BufRead, BufReader, Write};
    // (what the start follows, flags, writes before stopping, how it stops)
    let runs: [(&str, &[&str], usize, &str); 3] = [
        ("after a clean close", &[], 1000, "KILL"),
        ("after SIGKILL", &[], 1000, "KILL"),
        ("after SIGKILL", &[], 0, "TERM"),
    ];
    for (run, flags, write, stop) in runs {
        let t = Instant::now();
        let mut extra = vec!["--no-watch"];
        extra.extend_from_slice(flags);
        let (daemon, stream) = common::BenchDaemon::start(dir, process, &extra);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut call = |method: &str, params: serde_json::Value| {
            let line = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
            (&stream).write_all(format!("{line}\n").as_bytes()).unwrap();
            let mut answer = String::new();
            reader.read_line(&mut answer).unwrap();
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert!(v.get("error").is_none(), "{method}: {v}");
            v
        };
        let status = call("daemon.status", serde_json::json!({}));
        let ready = t.elapsed().as_secs_f64() * 1e3;
        let rss = |field: &str| -> u64 {
            let text = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
                .unwrap_or(0)
                / 1024
        };
        let idle = rss("VmRSS:");
        let t = Instant::now();
        call(
            "metrics.flow",
            serde_json::json!({ "from": from.to_string(), "to": to.to_string() }),
        );
        let flow = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        call(
            "metrics.time_in_stage",
            serde_json::json!({ "from": from.to_string(), "to": to.to_string() }),
        );
        let tis = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "daemon start {run}: answering after {ready:.0} ms (counts {}); RSS {idle} MiB idle, {} MiB after a flow query over the socket ({flow:.1} ms) and time in stage, every stage ({tis:.1} ms), peak {} MiB",
            status["result"]["counts"],
            rss("VmRSS:"),
            rss("VmHWM:"),
        );
        for i in 0..write {
            call(
                "prospect.create",
                serde_json::json!({ "name": format!("written before the stop {i}") }),
            );
        }
        daemon.stop(stop);
    }
    println!("targets: start-up ≤ 1 s; RSS ≤ 300 MiB at 1M prospects");
}
