//! Durable `activity.record` over the real socket: throughput and latency
//! with 1 and 16 clients, against baselines measured in the same run on the
//! same disk (a bare `fdatasync`, and SQLite in WAL mode with
//! `synchronous=FULL`, one transaction per request).
//!
//! Run: `cargo bench -p stagecoach --bench socket_write`
//! (`STAGECOACH_BENCH_N` sets requests per client; default 2000).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{BenchDaemon, Conn, Stats, machine};

/// Baseline: what one durable write costs this disk.
fn fdatasync_baseline(dir: &Path, n: usize) -> Stats {
    let mut f = std::fs::File::create(dir.join("fsync.bin")).unwrap();
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&[7u8; 128]).unwrap();
        f.sync_data().unwrap();
        latencies.push(t.elapsed());
    }
    Stats {
        ops: n,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// Baseline: SQLite, WAL, synchronous=FULL, one transaction per insert.
fn sqlite_baseline(dir: &Path, clients: usize, n: usize) -> Stats {
    let path = dir.join(format!("baseline-{clients}.sqlite"));
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE activities(id INTEGER PRIMARY KEY, prospect INTEGER NOT NULL,
               kind TEXT NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL, data TEXT);
             CREATE INDEX activities_prospect ON activities(prospect, kind);",
        )
        .unwrap();
    }
    let start = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let path = path.clone();
                s.spawn(move || {
                    let c = rusqlite::Connection::open(&path).unwrap();
                    c.execute_batch("PRAGMA synchronous=FULL;").unwrap();
                    c.busy_timeout(Duration::from_secs(30)).unwrap();
                    let mut stmt = c
                        .prepare("INSERT INTO activities(prospect, kind, actor, at, data) VALUES (?1, 'email_sent', 'rep', ?2, '{}')")
                        .unwrap();
                    (0..n)
                        .map(|k| {
                            let t = Instant::now();
                            stmt.execute(rusqlite::params![i as i64, k as i64]).unwrap();
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    Stats {
        ops: clients * n,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// The benchmark's process: the default stages' first criteria, no plugins
/// (so the benchmark needs nothing built beforehand).
const PROCESS: &str = r#"
[process]
name = "bench"
[[stages]]
id = "prospect"
name = "Prospect"
exit = [{ question = "Replied?", activity = "replied", actor = "prospect" }]
[[stages]]
id = "connect"
name = "Connect"
exit = [{ question = "Met?", activity = "meeting_held", actor = "prospect" }]
"#;

fn record_params(prospect: u64, k: usize) -> Value {
    json!({ "prospect": prospect, "kind": "email_sent", "actor": "rep", "data": { "n": k } })
}

/// `clients` connections, each with `window` requests outstanding.
fn daemon_run(socket: &Path, prospects: &[u64], clients: usize, n: usize, window: usize) -> Stats {
    let start = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let prospect = prospects[i % prospects.len()];
                s.spawn(move || {
                    let mut c = Conn::new(socket);
                    let mut sent_at = std::collections::VecDeque::with_capacity(window);
                    let mut latencies = Vec::with_capacity(n);
                    let mut sent = 0;
                    while latencies.len() < n {
                        while sent < n && sent_at.len() < window {
                            sent_at.push_back(Instant::now());
                            c.send(sent, "activity.record", record_params(prospect, sent));
                            sent += 1;
                        }
                        c.recv();
                        // Answers to one connection arrive in commit order;
                        // all requests of a batch complete together.
                        latencies.push(sent_at.pop_front().unwrap().elapsed());
                    }
                    latencies
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    Stats {
        ops: clients * n,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; nothing to list here.
    }
    let n: usize = std::env::var("STAGECOACH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::Builder::new()
        .prefix("stagecoach-bench")
        .tempdir_in(
            std::env::var_os("STAGECOACH_BENCH_DIR")
                .unwrap_or_else(|| std::env::temp_dir().into_os_string()),
        )
        .unwrap();
    println!("# durable activity.record over the socket");
    println!("command: cargo bench -p stagecoach --bench socket_write   (STAGECOACH_BENCH_N={n})");
    println!("machine: {}", machine());
    println!("daemon: {}", common::daemon_binary().display());
    println!("data:    {}", dir.path().display());
    println!();

    println!("## baselines, same disk, same run");
    fdatasync_baseline(dir.path(), 500).print("fdatasync of 128 bytes (one durable write)");
    let sqlite_1 = sqlite_baseline(dir.path(), 1, n / 2);
    sqlite_1.print("SQLite WAL sync=FULL, 1 txn/insert, 1 client");
    let sqlite_16 = sqlite_baseline(dir.path(), 16, n / 4);
    sqlite_16.print("SQLite WAL sync=FULL, 1 txn/insert, 16 clients");
    println!();

    let (daemon, _) = BenchDaemon::start(&dir.path().join("daemon"), PROCESS, &[]);
    let mut setup = Conn::new(&daemon.socket);
    let prospects = ready(&mut setup, &daemon.socket);

    println!("## stagecoach (release build, group commit, each answer after its fsync)");
    let one = daemon_run(&daemon.socket, &prospects, 1, n, 1);
    one.print("1 client, 1 request outstanding");
    let sixteen = daemon_run(&daemon.socket, &prospects, 16, n, 1);
    sixteen.print("16 clients, 1 request outstanding each");
    setup.send(99, "daemon.status", json!({}));
    println!("  writer so far: {}", setup.recv()["result"]["writer"]);
    let piped = daemon_run(&daemon.socket, &prospects, 16, n, 32);
    piped.print("16 clients, 32 requests pipelined each");
    // Interleaved again (the VM drifts): the floor, then one client.
    fdatasync_baseline(dir.path(), 500).print("again: fdatasync of 128 bytes");
    daemon_run(&daemon.socket, &prospects, 1, n, 1).print("again: 1 client, 1 request outstanding");
    println!();
    println!(
        "ratio vs SQLite, 16 clients: {:.1}x (1 outstanding), {:.1}x (pipelined)",
        sixteen.rate() / sqlite_16.rate(),
        piped.rate() / sqlite_16.rate()
    );
    println!(
        "ratio vs SQLite, 1 client:   {:.1}x",
        one.rate() / sqlite_1.rate()
    );
    drop(daemon);
}

/// Creates the 16 prospects the runs write to, and warms the daemon up.
fn ready(setup: &mut Conn, socket: &Path) -> Vec<u64> {
    let prospects: Vec<u64> = (0..16)
        .map(|i| {
            setup.send(
                i,
                "prospect.create",
                json!({ "name": format!("bench {i}") }),
            );
            setup.recv()["result"]["id"].as_u64().unwrap()
        })
        .collect();
    daemon_run(socket, &prospects, 4, 200, 1);
    prospects
}
