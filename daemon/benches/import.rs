//! Import throughput: `stagecoach import` of generated CRM exports in the
//! vendors' layouts, end to end (CLI reads and resolves the files, the
//! daemon writes every deal with its activities and moves).
//!
//! ```sh
//! cargo bench -p stagecoach --bench import                      # 100,000 deals, 1,000,000 activities
//! STAGECOACH_BENCH_DEALS=1000000 cargo bench -p stagecoach --bench import   # the 1M / 10M target
//! ```
//!
//! Rows are deal rows plus activity rows. Each layout is measured four
//! ways, in this order, in the same run:
//! - **read and resolve** (`--dry-run`): the files parsed and every row
//!   checked, nothing written: the floor the write path adds to;
//! - **batch by batch** (`--no-session`) into an empty daemon: the
//!   baseline, how every import was written before import sessions;
//! - **import** into an empty daemon, in one import session (the default);
//! - **again** (every deal already present): the idempotent re-run.
//!
//! `STAGECOACH_BENCH_BASELINE=0` leaves the baseline out (at 1M deals it
//! takes most of the run).
//!
//! HubSpot's layout carries stage history (`Date entered "…"` columns),
//! so its moves are written as dated; Pipedrive's has none, so its
//! activities are replayed under the exit criteria.

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::BenchDaemon;

/// A process whose criteria the generated Pipedrive activities meet.
const PROCESS: &str = r#"
[process]
name = "Import bench"

[activities]
meeting = { actor = "prospect" }
email = { actor = "rep" }
call = { actor = "rep" }

[[stages]]
id = "prospect"
name = "Prospect"
exit = [{ question = "Met?", activity = "meeting", actor = "prospect" }]

[[stages]]
id = "connect"
name = "Connect"
exit = [{ question = "Met twice?", activity = "meeting", actor = "prospect", at_least = 2 }]

[[stages]]
id = "research"
name = "Research"
exit = [{ question = "Met three times?", activity = "meeting", actor = "prospect", at_least = 3 }]

[[stages]]
id = "present"
name = "Present"
exit = [{ question = "Met four times?", activity = "meeting", actor = "prospect", at_least = 4 }]

[[stages]]
id = "close"
name = "Close"
exit = [{ question = "Met five times?", activity = "meeting", actor = "prospect", at_least = 5 }]
"#;

const STAGES: [&str; 5] = ["Prospect", "Connect", "Research", "Present", "Close"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn stamp(ms: i64) -> String {
    let t = jiff::Timestamp::from_millisecond(ms).unwrap();
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// One generated deal: stages entered (index, time), outcome, activities.
struct Deal {
    created: i64,
    entered: Vec<(usize, i64)>,
    /// 0 open, 1 won, 2 lost; with the close time.
    outcome: (u8, i64),
    activities: Vec<(&'static str, i64)>,
}

fn deal(rng: &mut Rng, i: u64, per_deal: u64) -> Deal {
    const DAY: i64 = 86_400_000;
    let start = 1_767_225_600_000i64; // 2026-01-01
    let created = start + (i as i64 % 240) * DAY + rng.below(DAY as u64) as i64;
    let reached = rng.below(5) as usize;
    let mut at = created;
    let mut entered = vec![(0, created)];
    let mut activities = Vec::new();
    let n = per_deal.max(1) as usize;
    for k in 0..n {
        at += 1 + rng.below(3 * DAY as u64) as i64;
        // Every other activity is the prospect's meeting; meetings move the
        // deal on (one stage per meeting, up to where it got).
        let kind = if k % 2 == 1 {
            "meeting"
        } else {
            ["email", "call"][k % 4 / 2]
        };
        activities.push((kind, at));
        if kind == "meeting" && entered.len() <= reached {
            entered.push((entered.len(), at + 1));
        }
    }
    let outcome = match rng.below(10) {
        0..=3 => (2, at + DAY),
        4..=6 if entered.len() == 5 => (1, at + DAY),
        _ => (0, 0),
    };
    Deal {
        created,
        entered,
        outcome,
        activities,
    }
}

/// Writes HubSpot-layout deals (with stage history) and activities.
fn hubspot(dir: &Path, deals: u64, per_deal: u64) -> (String, String) {
    let (dp, ap) = (dir.join("hs-deals.csv"), dir.join("hs-activities.csv"));
    let mut d = std::io::BufWriter::new(std::fs::File::create(&dp).unwrap());
    let mut a = std::io::BufWriter::new(std::fs::File::create(&ap).unwrap());
    let mut header = String::from(
        "\"Record ID\",\"Deal Name\",\"Deal Stage\",\"Pipeline\",\"Amount\",\"Close Date\",\"Create Date\",\"Deal owner\"",
    );
    for s in STAGES {
        let _ = write!(
            header,
            ",\"Date entered \"\"{s} (Sales Pipeline)\"\"\",\"Date exited \"\"{s} (Sales Pipeline)\"\"\""
        );
    }
    writeln!(d, "{header}").unwrap();
    writeln!(
        a,
        "\"Record ID\",\"Activity type\",\"Activity date\",\"Email direction\",\"Associated Deal\",\"Associated Deal IDs\""
    )
    .unwrap();
    let mut rng = Rng(0x1b0c_5eed);
    let mut activity_id = 1u64;
    for i in 0..deals {
        let g = deal(&mut rng, i, per_deal);
        let id = 20_000_000_000 + i;
        let stage = match g.outcome.0 {
            1 => "Closed Won".to_string(),
            2 => "Closed Lost".to_string(),
            _ => STAGES[g.entered.last().unwrap().0].to_string(),
        };
        let close = if g.outcome.0 == 0 {
            String::new()
        } else {
            stamp(g.outcome.1)
        };
        let mut row = format!(
            "\"{id}\",\"Deal {i}\",\"{stage}\",\"Sales Pipeline\",\"{}.0\",\"{close}\",\"{}\",\"Rep {}\"",
            1000 + i % 50_000,
            stamp(g.created),
            i % 20
        );
        for s in 0..STAGES.len() {
            let entered = g.entered.iter().find(|e| e.0 == s).map(|e| e.1);
            let exited = g.entered.iter().find(|e| e.0 == s + 1).map(|e| e.1);
            let _ = write!(
                row,
                ",\"{}\",\"{}\"",
                entered.map(stamp).unwrap_or_default(),
                exited.map(stamp).unwrap_or_default()
            );
        }
        writeln!(d, "{row}").unwrap();
        for (kind, at) in &g.activities {
            let (kind, direction) = match *kind {
                "meeting" => ("Meeting", ""),
                "email" => ("Email", "INCOMING_EMAIL"),
                _ => ("Call", ""),
            };
            writeln!(
                a,
                "\"{activity_id}\",\"{kind}\",\"{}\",\"{direction}\",\"Deal {i}\",\"{id}\"",
                stamp(*at)
            )
            .unwrap();
            activity_id += 1;
        }
    }
    d.flush().unwrap();
    a.flush().unwrap();
    (dp.display().to_string(), ap.display().to_string())
}

/// Writes Pipedrive-layout deals (no stage history) and activities.
fn pipedrive(dir: &Path, deals: u64, per_deal: u64) -> (String, String) {
    let (dp, ap) = (dir.join("pd-deals.csv"), dir.join("pd-activities.csv"));
    let mut d = std::io::BufWriter::new(std::fs::File::create(&dp).unwrap());
    let mut a = std::io::BufWriter::new(std::fs::File::create(&ap).unwrap());
    writeln!(
        d,
        "Deal - ID,Deal - Title,Deal - Owner,Deal - Value,Deal - Stage,Deal - Status,Deal - Deal created,Deal - Won time,Deal - Lost time,Deal - Lost reason"
    )
    .unwrap();
    writeln!(
        a,
        "Activity - ID,Activity - Type,Activity - Done,Activity - Marked as done time,Activity - Deal,Deal - ID"
    )
    .unwrap();
    let mut rng = Rng(0x91fe_d21e);
    let mut activity_id = 1u64;
    for i in 0..deals {
        let g = deal(&mut rng, i, per_deal);
        let id = 1_000_000 + i;
        let (status, won, lost, reason) = match g.outcome.0 {
            1 => ("Won", stamp(g.outcome.1), String::new(), ""),
            2 => ("Lost", String::new(), stamp(g.outcome.1), "No budget"),
            _ => ("Open", String::new(), String::new(), ""),
        };
        writeln!(
            d,
            "{id},Deal {i},Rep {},{},{},{status},{},{won},{lost},{reason}",
            i % 20,
            1000 + i % 50_000,
            STAGES[g.entered.last().unwrap().0],
            stamp(g.created)
        )
        .unwrap();
        for (kind, at) in &g.activities {
            let kind = match *kind {
                "meeting" => "Meeting",
                "email" => "Email",
                _ => "Call",
            };
            writeln!(a, "{activity_id},{kind},Done,{},Deal {i},{id}", stamp(*at)).unwrap();
            activity_id += 1;
        }
    }
    d.flush().unwrap();
    a.flush().unwrap();
    (dp.display().to_string(), ap.display().to_string())
}

/// Runs `stagecoach import` and returns seconds and the summary.
fn import(
    socket: &Path,
    deals: &str,
    activities: &str,
    extra: &[&str],
) -> (f64, serde_json::Value) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_stagecoach"))
        .arg("--socket")
        .arg(socket)
        .args([
            "--json",
            "import",
            "--prospects",
            deals,
            "--activities",
            activities,
        ])
        .args(extra)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (seconds, serde_json::from_slice(&out.stdout).unwrap())
}

/// Peak resident memory of a running process, MiB.
fn vm_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let deals: u64 = std::env::var("STAGECOACH_BENCH_DEALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let per_deal: u64 = std::env::var("STAGECOACH_BENCH_ACTIVITIES_PER_DEAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let temp = tempfile::tempdir().unwrap();
    // STAGECOACH_BENCH_KEEP=dir keeps the generated files and databases
    // there, to profile one side (`perf record` on the CLI or the daemon).
    let kept = std::env::var_os("STAGECOACH_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    println!(
        "import bench: {deals} deals, {} activities per deal; machine: {} cores; command: STAGECOACH_BENCH_DEALS={deals} cargo bench -p stagecoach --bench import",
        per_deal,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let layouts = [
        ("hubspot (stage history)", hubspot(dir, deals, per_deal)),
        ("pipedrive (replayed)", pipedrive(dir, deals, per_deal)),
    ];
    println!(
        "generated the files in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let baseline = std::env::var("STAGECOACH_BENCH_BASELINE").map_or(true, |v| v != "0");
    for (name, (d, a)) in &layouts {
        let daemon_dir = dir.join(name.split(' ').next().unwrap());
        let socket = daemon_dir.join("stagecoach.sock");
        let written = |s: &serde_json::Value| {
            s["prospects"]["imported"].as_u64().unwrap()
                + s["activities"]["imported"].as_u64().unwrap()
        };
        let mut batches = None;
        if baseline {
            let _ = std::fs::remove_dir_all(daemon_dir.join("data"));
            let (daemon, _conn) = BenchDaemon::start(&daemon_dir, PROCESS, &[]);
            let (seconds, s) = import(&socket, d, a, &["--no-session"]);
            batches = Some((seconds, written(&s)));
            daemon.stop("TERM");
        }
        let _ = std::fs::remove_dir_all(daemon_dir.join("data"));
        let (daemon, _conn) = BenchDaemon::start(&daemon_dir, PROCESS, &[]);
        let (dry, s) = import(&socket, d, a, &["--dry-run"]);
        let rows = written(&s);
        if let Some((_, w)) = batches {
            assert_eq!(w, rows, "every row written batch by batch");
        }
        let (full, s) = import(&socket, d, a, &[]);
        assert_eq!(written(&s), rows, "every row written: {s}");
        let (again, s) = import(&socket, d, a, &[]);
        assert_eq!(s["prospects"]["imported"], 0, "{s}");
        let daemon_peak = vm_hwm_mib(daemon.pid());
        println!("{name}: {rows} rows");
        println!(
            "  read and resolve only (--dry-run):      {dry:>7.2} s  {:>9.0} rows/s",
            rows as f64 / dry
        );
        if let Some((seconds, _)) = batches {
            println!(
                "  batch by batch (--no-session, baseline):{seconds:>7.2} s  {:>9.0} rows/s",
                rows as f64 / seconds
            );
        }
        println!(
            "  import, one session (the default):      {full:>7.2} s  {:>9.0} rows/s",
            rows as f64 / full
        );
        println!(
            "  again (all present):                    {again:>7.2} s  {:>9.0} rows/s",
            rows as f64 / again
        );
        println!("  daemon peak RSS: {daemon_peak:.0} MiB");
        daemon.stop("TERM");
    }
}
