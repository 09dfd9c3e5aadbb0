//! Simulating a draft process over the stored history (default 100,000
//! prospects, 1M activities; the target is 1M / 10M in 30 s), against the
//! baseline of writing the same history through the live write path,
//! measured in the same run, with the process's peak memory during each.
//!
//! Run: `cargo bench -p stagecoach --bench simulate`
//! (`STAGECOACH_BENCH_PROSPECTS`, default 100000; 10 activities each;
//! `STAGECOACH_BENCH_SCRATCH_MIB`, the scratch store's page cache;
//! `STAGECOACH_BENCH_LIVE=PATH`, keep the loaded history there and reuse it,
//! with the process and the draft beside it: with PATH = `DIR/data/stagecoach.redb`,
//! `scripts/bench-simulate-daemon DIR BINARY...` times the whole method
//! through daemons of each build, interleaved).

use std::time::Instant;

/// The daemon's allocator (daemon/src/main.rs), so that the replay is timed
/// as `process.simulate` runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Shared with the other benchmarks; this one starts no daemon.
#[allow(dead_code)]
mod common;

use common::history::{self, START};
use stagecoach_core::store::Store;

/// The process's resident set now, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `f` and samples the resident set every 50 ms: (result, seconds,
/// peak RSS MiB).
fn measured<T: Send>(f: impl FnOnce() -> T + Send) -> (T, f64, f64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::sync::atomic::AtomicU64::new(rss_kib());
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mib = peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0;
        (r, secs, mib)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = common::bench_prospects(100_000);
    let dir = tempfile::tempdir().unwrap();
    println!("# process.simulate: a draft replayed over the stored history");
    println!(
        "command: cargo bench -p stagecoach --bench simulate   (STAGECOACH_BENCH_PROSPECTS={n})"
    );
    println!("machine: {}", common::machine());

    // While working on the replay, STAGECOACH_BENCH_LIVE=PATH keeps the
    // loaded history there and reuses it on later runs: those print no
    // baseline (figures worth quoting come from a run that loads).
    let kept = std::env::var_os("STAGECOACH_BENCH_LIVE").map(std::path::PathBuf::from);
    let reused = kept.as_ref().is_some_and(|p| p.exists());
    let live_path = kept.unwrap_or_else(|| dir.path().join("live.redb"));
    let live = Store::open(&live_path).unwrap();
    let load = if reused {
        println!(
            "baseline: not measured (history reused from {}: STAGECOACH_BENCH_LIVE)",
            live_path.display()
        );
        f64::NAN
    } else {
        let before = rss_kib() as f64 / 1024.0;
        let ((activities, _), load, load_peak) = measured(|| history::load(&live, n));
        println!(
            "baseline: {n} prospects and {activities} activities written through the live write path (writer, criteria, counters, write-ahead log) in {load:.1} s ({:.0} prospects/s); peak RSS {load_peak:.0} MiB (from {before:.0})",
            n as f64 / load
        );
        load
    };
    // The draft: research also needs the proposal request.
    let draft = history::draft(|t| {
        t.replacen(
            "activity = \"demo_scheduled\", actor = \"prospect\" }]",
            "activity = \"demo_scheduled\", actor = \"prospect\" }, { question = \"p\", activity = \"proposal_requested\", actor = \"prospect\" }]",
            1,
        )
    });
    assert_ne!(draft.text, history::process().text, "the draft differs");
    // Beside a kept history, the process it was written under and the
    // draft: what `scripts/bench-simulate-daemon` serves and simulates.
    if let Some(dir) = std::env::var_os("STAGECOACH_BENCH_LIVE")
        .map(std::path::PathBuf::from)
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
    {
        std::fs::write(dir.join("process.toml"), &history::process().text).unwrap();
        std::fs::write(dir.join("draft.toml"), &draft.text).unwrap();
    }
    // The scratch store's page cache: the daemon's, unless the bench is told.
    let cache_mib = std::env::var("STAGECOACH_BENCH_SCRATCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(stagecoach_core::simulate::SCRATCH_CACHE_MIB);
    println!("scratch store page cache: {cache_mib} MiB");
    let now = stagecoach_types::model::Millis(START + 400 * history::DAY);
    for round in 1..=2 {
        let path = dir.path().join(format!("scratch-{round}.redb"));
        let scratch = Store::open_with(&path, cache_mib).unwrap();
        let before = rss_kib() as f64 / 1024.0;
        let (replay, secs, peak) = measured(|| {
            stagecoach_core::simulate::replay(&live, &scratch, &draft, now, &mut |_, _| {}).unwrap()
        });
        println!(
            "simulate (round {round}): {} prospects, {} activities replayed under the draft in {secs:.1} s ({:.0} prospects/s, {:.2}× the baseline's time); peak RSS {peak:.0} MiB (from {before:.0}); scratch file {:.0} MiB",
            replay.prospects,
            replay.activities,
            replay.prospects as f64 / secs,
            secs / load,
            std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64
        );
        // What process.simulate reads of the replay next: the figures of
        // its default period (the 90 days before now) from the scratch store.
        let period = stagecoach_types::api::params::Period {
            from: stagecoach_types::model::Millis(now.0 - 90 * history::DAY),
            to: now,
            ..Default::default()
        };
        let t = Instant::now();
        let measured = stagecoach_server::rpc::measure(&scratch, &draft, &period, now).unwrap();
        println!(
            "  then measured from the scratch store (flow, time in stage, conversion, outcomes of the 90 days before now: {} won, {} lost) in {:.1} s",
            measured.outcomes.won,
            measured.outcomes.lost,
            t.elapsed().as_secs_f64()
        );
        drop(scratch);
        let _ = std::fs::remove_file(&path);
    }
}
