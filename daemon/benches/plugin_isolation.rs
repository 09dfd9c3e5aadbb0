//! Does a slow plugin slow anyone else down? 16 clients record activities
//! for prospects in a stage without plugin criteria (`free`), while 4 other
//! clients write to prospects that sit in a stage with (a) no plugin, (b)
//! icp-fit, (c) a plugin that takes about 30 ms a call: the same load each
//! time, so the difference in the 16 clients' writes/s and p99 between the
//! runs is what the plugin costs them. Runs are interleaved. Then
//! `process.reevaluate` over 100,000 prospects in a stage with icp-fit:
//! wall time, and how many cores the daemon used.
//!
//! Run: `cargo bench -p stagecoach --bench plugin_isolation`
//! (`STAGECOACH_BENCH_SECS` sets each run's length, default 5;
//! `STAGECOACH_BENCH_PROSPECTS` the re-evaluation's size, default 100000).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{BenchDaemon, Conn, Stats, build_plugin, machine};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process: the other prospects' stage `other` with `criterion`, then
/// `free`, which reaches no plugin criterion.
fn process(icp: &Path, hostile: &Path, criterion: &str) -> String {
    format!(
        r#"[process]
name = "isolation"

[[plugins]]
name = "slow"
path = "{}"
fuel = 2_000_000_000
timeout_ms = 5000
config = {{ mode = "slow" }}

[[plugins]]
name = "icp-fit"
path = "{}"

[[stages]]
id = "other"
name = "Other"
exit = [{criterion}{{ question = "Signed?", activity = "signed" }}]

[[stages]]
id = "free"
name = "Free"
exit = [{{ question = "Signed?", activity = "signed" }}]

[[stages]]
id = "close"
name = "Close"
exit = [{{ question = "Paid?", activity = "paid" }}]
"#,
        hostile.display(),
        icp.display()
    )
}

/// The other prospects' stage in each run.
const VARIANTS: [(&str, &str); 3] = [
    ("(a) no plugin", ""),
    (
        "(b) icp-fit",
        "{ question = \"Fits?\", plugin = \"icp-fit\", config = { min_employees = 10 } }, ",
    ),
    (
        "(c) 30 ms plugin",
        "{ question = \"Slow check?\", plugin = \"slow\" }, ",
    ),
];

fn create(c: &mut Conn, stage: &str, i: usize) -> u64 {
    // employees = 50: icp-fit is met, the activity criterion keeps it there.
    c.send(
        i,
        "prospect.create",
        json!({ "name": format!("{stage} {i}"), "stage": stage, "fields": { "employees": 50 } }),
    );
    c.recv()["result"]["id"].as_u64().unwrap()
}

/// One client recording activities for `prospect`, one request outstanding,
/// until `stop`; its latencies.
fn client(socket: &Path, prospect: u64, stop: &AtomicBool) -> Vec<Duration> {
    let mut c = Conn::new(socket);
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        c.send(
            latencies.len(),
            "activity.record",
            json!({ "prospect": prospect, "kind": "email_sent", "actor": "rep" }),
        );
        c.recv();
        latencies.push(t.elapsed());
    }
    latencies
}

/// A run: 16 clients on `free` prospects and 4 on `other` ones for
/// `secs`; stats for each group.
fn run(dir: &Path, process: &str, secs: u64) -> [Stats; 2] {
    let _ = std::fs::remove_dir_all(dir);
    let (d, setup) = BenchDaemon::start(dir, process, &[]);
    let mut setup = Conn::from(setup);
    let free: Vec<u64> = (0..16).map(|i| create(&mut setup, "free", i)).collect();
    let other: Vec<u64> = (0..4).map(|i| create(&mut setup, "other", i)).collect();
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let [free, other] = std::thread::scope(|s| {
        let spawn = |ids: &[u64]| {
            ids.iter()
                .map(|&id| {
                    let (socket, stop) = (&d.socket, &stop);
                    s.spawn(move || client(socket, id, stop))
                })
                .collect::<Vec<_>>()
        };
        let (f, o) = (spawn(&free), spawn(&other));
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        let join = |h: Vec<std::thread::ScopedJoinHandle<'_, Vec<Duration>>>| {
            h.into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        };
        [join(f), join(o)]
    });
    let elapsed = start.elapsed();
    setup.send(0, "plugins.list", json!({}));
    for p in setup.recv()["result"]["plugins"].as_array().unwrap() {
        if p["calls"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  plugin {}: {} calls, {} answers reused, mean {:.0} µs",
                p["name"],
                p["calls"],
                p["reused"],
                p["mean_micros"].as_f64().unwrap_or(0.0)
            );
        }
    }
    [free, other].map(|latencies| Stats {
        ops: latencies.len(),
        elapsed,
        latencies,
    })
}

/// The daemon's CPU time so far (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

fn reevaluation(dir: &Path, process: &str, prospects: usize) {
    let _ = std::fs::remove_dir_all(dir);
    let (d, setup) = BenchDaemon::start(dir, process, &[]);
    let mut setup = Conn::from(setup);
    // Pipelined creation in `b`; employees below the bar keeps them there.
    let window = 256;
    let mut sent = 0;
    let mut done = 0;
    while done < prospects {
        while sent < prospects && sent - done < window {
            setup.send(
                sent,
                "prospect.create",
                json!({ "name": format!("p{sent}"), "stage": "other", "fields": { "employees": 5 } }),
            );
            sent += 1;
        }
        setup.recv();
        done += 1;
    }
    let cpu = cpu_time(d.pid());
    let t = Instant::now();
    setup.send(0, "process.reevaluate", json!({}));
    let r = setup.recv();
    let wall = t.elapsed();
    let used = cpu_time(d.pid()) - cpu;
    println!(
        "process.reevaluate over {} open prospects with icp-fit: {:.2} s, {:.0} prospects/s, daemon CPU {:.2} s = {:.2} cores",
        r["result"]["evaluated"],
        wall.as_secs_f64(),
        prospects as f64 / wall.as_secs_f64(),
        used.as_secs_f64(),
        used.as_secs_f64() / wall.as_secs_f64()
    );
}

fn main() {
    let secs = env("STAGECOACH_BENCH_SECS", 5);
    let prospects = env("STAGECOACH_BENCH_PROSPECTS", 100_000) as usize;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let icp = build_plugin(&plugins, "plugins/icp-fit");
    let hostile = build_plugin(&plugins, "tests/fixtures/hostile");
    println!(
        "# plugin isolation: 16 clients on a plugin-free stage beside 4 on a stage with (a) no plugin, (b) icp-fit, (c) a 30 ms plugin"
    );
    println!("machine: {}", machine());
    println!(
        "command: cargo bench -p stagecoach --bench plugin_isolation ({secs} s per run, runs interleaved)"
    );
    let mut free = [0.0f64; 3];
    for round in 1..=2 {
        for (i, (name, criterion)) in VARIANTS.iter().enumerate() {
            let [f, o] = run(
                &dir.path().join("run"),
                &process(&icp, &hostile, criterion),
                secs,
            );
            f.print(&format!("round {round}, others in {name}: 16 free clients"));
            o.print(&format!("round {round}, others in {name}: 4 other clients"));
            free[i] += f.rate() / 2.0;
        }
    }
    for (i, (name, _)) in VARIANTS.iter().enumerate().skip(1) {
        println!(
            "free clients with others in {name}: {:.1}% of (a)",
            free[i] / free[0] * 100.0
        );
    }
    reevaluation(
        &dir.path().join("reevaluate"),
        &process(&icp, &hostile, VARIANTS[1].1),
        prospects,
    );
}
