//! Exporting at scale: `stagecoach export TABLE --format parquet` against
//! `--format csv` of the same table (the baseline), interleaved in one run,
//! from a daemon holding the generated history (default 100,000 prospects
//! with 10 activities each; the figure is 1M / 10M). Prints rows per
//! second and the exporting process's peak resident memory (VmHWM), and the
//! daemon's.
//!
//! Run: `cargo bench -p stagecoach --bench export`
//! (`STAGECOACH_BENCH_PROSPECTS`, default 100000).

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::history;
use stagecoach_core::store::Store;

/// The peak resident set of process `pid` so far, KiB (0 once it is gone).
fn hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs the export; (rows, seconds, peak RSS MiB of the exporting process).
fn export(
    socket: &std::path::Path,
    table: &str,
    format: &str,
    out: &std::path::Path,
) -> (u64, f64, f64) {
    let t = Instant::now();
    let mut child = Command::new(common::daemon_binary())
        .arg("--socket")
        .arg(socket)
        .args(["export", table, "--format", format, "--out"])
        .arg(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(hwm_kib(pid));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let secs = t.elapsed().as_secs_f64();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "export failed: {err}");
    // "wrote N rows to FILE"
    let rows = err
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {err:?}"));
    (rows, secs, peak as f64 / 1024.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = common::bench_prospects(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!("# export: Parquet against CSV of the same table, interleaved");
    println!(
        "command: cargo bench -p stagecoach --bench export   (STAGECOACH_BENCH_PROSPECTS={n})"
    );
    println!("machine: {}", common::machine());

    let daemon_dir = dir.path().join("daemon");
    std::fs::create_dir_all(daemon_dir.join("data")).unwrap();
    let db = stagecoach_server::server::database_path(&daemon_dir.join("data"));
    let store = Store::open(&db).unwrap();
    let (activities, load) = history::load(&store, n);
    let transitions = store.all_transitions().unwrap().len();
    drop(store);
    println!(
        "data: {n} prospects, {activities} activities, {transitions} transitions (generated in {load:.0} s)"
    );
    let (daemon, _conn) =
        common::BenchDaemon::start(&daemon_dir, &history::process().text, &["--no-watch"]);
    let out = dir.path().join("out");
    for round in 1..=2 {
        for table in ["prospects", "activities", "transitions"] {
            for format in ["csv", "parquet"] {
                let file = out.with_extension(format);
                let (rows, secs, peak) = export(&daemon.socket, table, format, &file);
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                println!(
                    "round {round} {table:<11} {format:<7} {rows:>9} rows in {secs:>6.2} s = {:>9.0} rows/s, file {:>7.1} MiB, exporter peak RSS {peak:>6.1} MiB",
                    rows as f64 / secs,
                    size as f64 / (1 << 20) as f64
                );
            }
        }
    }
    println!(
        "daemon peak RSS over the run: {:.1} MiB",
        hwm_kib(daemon.pid()) as f64 / 1024.0
    );
}
