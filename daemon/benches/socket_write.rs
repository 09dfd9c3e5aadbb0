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
    concurrently(clients, n, |i| {
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
            .collect()
    })
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
    concurrently(clients, n, |i| {
        let prospect = prospects[i % prospects.len()];
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
}

/// `clients` threads, each running `client(i)` and returning its requests'
/// latencies, all at once.
fn concurrently(clients: usize, n: usize, client: impl Fn(usize) -> Vec<Duration> + Sync) -> Stats {
    let start = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let client = &client;
                s.spawn(move || client(i))
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

/// The writer alone, in this process: `clients` threads with one durable
/// `activity.record` outstanding each, through the same group commit and
/// write-ahead log, without the socket, JSON or the async runtime — what
/// the write path reaches without a request's way in and out. Returns the
/// run and the writer's mean batch, apply and commit per batch.
fn writer_alone(dir: &Path, clients: usize, n: usize) -> (Stats, String) {
    use stagecoach_core::engine::{NewActivity, NewProspect, WriteOp};
    use stagecoach_core::writer::{Writer, WriterStats};
    use std::sync::atomic::Ordering::Relaxed;
    let store =
        stagecoach_core::store::Store::open(&dir.join(format!("alone-{clients}.redb"))).unwrap();
    let (events, _) = tokio::sync::broadcast::channel(16);
    let stats = std::sync::Arc::new(WriterStats::default());
    let (writer, thread) = Writer::start(
        store,
        stagecoach_core::clock::Clock::system(),
        events,
        stats.clone(),
    )
    .unwrap();
    let active = common::history::process();
    let prospects: Vec<u64> = (0..clients)
        .map(|i| {
            let op = WriteOp::CreateProspect(NewProspect {
                name: format!("alone {i}"),
                company: None,
                owner: None,
                fields: Default::default(),
                stage: None,
                external_id: None,
                at: None,
            });
            match writer
                .submit(active.clone(), op)
                .blocking_recv()
                .unwrap()
                .unwrap()
            {
                stagecoach_core::engine::Answer::Prospect(p) => p.prospect.id,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    let before = (
        stats.commits.load(Relaxed),
        stats.requests.load(Relaxed),
        stats.apply_micros.load(Relaxed),
        stats.commit_micros.load(Relaxed),
    );
    let run = concurrently(clients, n, |i| {
        let prospect = prospects[i];
        (0..n)
            .map(|k| {
                let t = Instant::now();
                let op = WriteOp::RecordActivity(NewActivity {
                    prospect,
                    kind: "email_sent".into(),
                    actor: Some(stagecoach_types::model::Actor::Rep),
                    at: None,
                    data: serde_json::from_value(json!({ "n": k })).unwrap(),
                });
                writer
                    .submit(active.clone(), op)
                    .blocking_recv()
                    .unwrap()
                    .unwrap();
                t.elapsed()
            })
            .collect()
    });
    let commits = (stats.commits.load(Relaxed) - before.0).max(1) as f64;
    let summary = format!(
        "mean batch {:.1} requests, apply {:.3} ms, commit (log sync + redb) {:.3} ms per batch",
        (stats.requests.load(Relaxed) - before.1) as f64 / commits,
        (stats.apply_micros.load(Relaxed) - before.2) as f64 / commits / 1e3,
        (stats.commit_micros.load(Relaxed) - before.3) as f64 / commits / 1e3,
    );
    drop(writer);
    thread.join().unwrap();
    (run, summary)
}

/// CPU time (user + system) in seconds of process `pid` (`self`: this
/// one, its finished threads included), or of its threads whose name
/// starts with `thread`.
fn cpu_seconds(pid: &str, thread: Option<&str>) -> f64 {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks = |stat: &str| -> u64 {
        // Fields after the parenthesised name: state is the 3rd field;
        // utime and stime the 14th and 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let total = match thread {
        None => ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()),
        Some(name) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(name))
            })
            .map(|t| ticks(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
            .sum(),
    };
    total as f64 / hz
}

/// Where the CPU of a run went: the daemon (and its writer thread) and the
/// benchmark's own clients, per request, and the ceiling that puts on two
/// cores' throughput.
fn cpu_breakdown(daemon: u32, label: &str, run: impl FnOnce() -> Stats) -> Stats {
    let pid = daemon.to_string();
    let before = (
        cpu_seconds(&pid, None),
        cpu_seconds(&pid, Some("stagecoach-writ")),
        cpu_seconds("self", None),
    );
    let stats = run();
    let after = (
        cpu_seconds(&pid, None),
        cpu_seconds(&pid, Some("stagecoach-writ")),
        cpu_seconds("self", None),
    );
    let per = |a: f64, b: f64| (b - a) * 1e6 / stats.ops as f64;
    let (d, w, c) = (
        per(before.0, after.0),
        per(before.1, after.1),
        per(before.2, after.2),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "  CPU per request ({label}): daemon {d:.0} µs (of it the writer thread {w:.0} µs), benchmark clients {c:.0} µs; {cores:.0} cores at that cost: ≤ {:.0} /s",
        cores * 1e6 / (d + c)
    );
    stats
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

    println!("## the writer alone (in this process: no socket, no JSON, no async runtime)");
    for clients in [1, 16] {
        let (alone, summary) = writer_alone(dir.path(), clients, n);
        alone.print(&format!(
            "writer alone, {clients} threads, 1 outstanding each"
        ));
        println!("  {summary}");
    }
    println!();

    let (daemon, _) = BenchDaemon::start(&dir.path().join("daemon"), PROCESS, &[]);
    let mut setup = Conn::new(&daemon.socket);
    let prospects = ready(&mut setup, &daemon.socket);

    println!("## stagecoach (release build, group commit, each answer after its fsync)");
    let one = daemon_run(&daemon.socket, &prospects, 1, n, 1);
    one.print("1 client, 1 request outstanding");
    let sixteen = cpu_breakdown(daemon.pid(), "16 clients", || {
        daemon_run(&daemon.socket, &prospects, 16, n, 1)
    });
    sixteen.print("16 clients, 1 request outstanding each");
    setup.send(99, "daemon.status", json!({}));
    println!("  writer so far: {}", setup.recv()["result"]["writer"]);
    let piped = cpu_breakdown(daemon.pid(), "pipelined", || {
        daemon_run(&daemon.socket, &prospects, 16, n, 32)
    });
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
