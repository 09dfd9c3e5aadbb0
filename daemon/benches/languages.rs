//! The same plugins in Rust, Python (CPython, componentize-py) and
//! TypeScript (QuickJS, componentize-qjs), measured in the same run, the
//! Rust one as the baseline: `icp-fit` on its fixture prospect (fields
//! only), and the BANT checklist on a prospect with 10 and with 300
//! activities. Each call is what the daemon makes per evaluation: a fresh
//! instance (made ahead of the call by the host's ahead thread, or by the
//! call when none is ready), fuel and deadline armed, the input passed in,
//! the answer checked (`now` changes every call, so no answer is reused).
//! "µs per call" is one call 10 ms after the last (requests arriving
//! apart: the instance was made in between); "back to back" is the mean of
//! five calls in a row (a re-evaluation: each waits for the instance being
//! made for it). Kinds of call are timed round-robin, 21 rounds, and
//! reported as the median (the fastest in brackets); fuel is exact.
//!
//! Run: `cargo bench -p stagecoach --bench languages`. To profile one
//! runtime, `STAGECOACH_BENCH_ONLY=python` (or `typescript`, `rust`) times
//! only its calls, and `STAGECOACH_BENCH_ROUNDS=N` sets the rounds. The first run
//! installs the Python and JavaScript toolchains into
//! `target/plugin-toolchains` and compiles the interpreted plugins (about
//! 30 s each for CPython), cached in `target/plugin-toolchains/compiled`.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The daemon's allocator (daemon/src/main.rs), so that calls are timed as
/// the daemon makes them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::{build_plugin, root};
use stagecoach_plugin_host::{CallInput, LoadedPlugin, PluginHost, runtime_of};
use stagecoach_types::model::{Activity, Actor, FieldValue, Millis, Prospect, Status};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn prospect(activities: usize) -> (Prospect, Vec<Activity>) {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("employees".to_string(), FieldValue::Number(120.0));
    fields.insert("industry".to_string(), FieldValue::Text("SaaS".into()));
    fields.insert("budget".to_string(), FieldValue::Number(25000.0));
    fields.insert(
        "close_date".to_string(),
        FieldValue::Text("2026-09-30".into()),
    );
    let p = Prospect {
        id: 7,
        external_id: None,
        name: "Ada Lovelace".into(),
        company: Some("Analytical Engines".into()),
        owner: Some("maria".into()),
        fields,
        stage: "connect".into(),
        status: Status::Open,
        created_at: Millis(0),
        stage_entered_at: Millis(1000),
        last_activity_at: Millis(5000),
        closed_at: None,
        owner_since: None,
    };
    let kinds = [
        "replied",
        "email_sent",
        "meeting_held",
        "requirements_shared",
    ];
    let activities = (0..activities)
        .map(|i| {
            let mut data = serde_json::Map::new();
            data.insert("note".into(), format!("café {i}").into());
            Activity {
                id: i as u64,
                prospect: 7,
                kind: kinds[i % kinds.len()].into(),
                actor: if i % 3 == 0 {
                    Actor::Rep
                } else {
                    Actor::Prospect
                },
                at: Millis(1000 + i as i64 * 100),
                data,
            }
        })
        .collect();
    (p, activities)
}

fn built(out: &Path) -> Vec<(&'static str, &'static str, PathBuf)> {
    let tc =
        stagecoach::toolchain::Toolchains::new(&root().join("target/plugin-toolchains")).unwrap();
    let mut files = Vec::new();
    for plugin in ["icp-fit", "bant"] {
        files.push((
            plugin,
            "rust",
            build_plugin(out, &format!("plugins/{plugin}")),
        ));
        let py = stagecoach::toolchain::build_python(
            &root().join(format!("plugins/{plugin}-py")),
            out,
            &tc,
        )
        .unwrap();
        files.push((plugin, "python", py));
        let ts =
            stagecoach::toolchain::build_js(&root().join(format!("plugins/{plugin}-ts")), out, &tc)
                .unwrap();
        files.push((plugin, "typescript", ts));
    }
    files
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = built(dir.path());
    println!("# plugins in Rust, Python and TypeScript: one fresh call each");
    println!("command: cargo bench -p stagecoach --bench languages");
    println!(
        "machine: {} cores; wasmtime 48 (cranelift, pooling allocator); componentize-py 0.25.1 (CPython 3.14), componentize-qjs 0.4.5 (QuickJS)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    let host = PluginHost::new(Some(root().join("target/plugin-toolchains/compiled"))).unwrap();
    let plugins: Vec<(&str, &str, std::sync::Arc<LoadedPlugin>)> = files
        .iter()
        .map(|(plugin, language, file)| {
            let bytes = std::fs::read(file).unwrap();
            let limits = runtime_of(&bytes).default_limits();
            let t = Instant::now();
            let loaded = host
                .load(&format!("{plugin}-{language}"), file, &bytes, limits)
                .unwrap();
            println!(
                "load {plugin:<8} {language:<11} {:>8.1} ms  ({} KiB)",
                t.elapsed().as_secs_f64() * 1e3,
                bytes.len() / 1024
            );
            (*plugin, *language, loaded)
        })
        .collect();
    println!();

    let icp_config = vec![
        ("min_employees".to_string(), FieldValue::Number(50.0)),
        (
            "industries".to_string(),
            FieldValue::Text("saas, fintech".into()),
        ),
    ];
    let inputs = [
        ("icp-fit", "fields only", prospect(0)),
        ("bant", "10 activities", prospect(10)),
        ("bant", "300 activities", prospect(300)),
    ];
    // (plugin, input label, language, plugin, input index)
    let only = std::env::var("STAGECOACH_BENCH_ONLY").ok();
    let rounds: usize = std::env::var("STAGECOACH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    let mut kinds = Vec::new();
    for (i, (plugin, label, _)) in inputs.iter().enumerate() {
        for (p, language, loaded) in &plugins {
            if p == plugin && only.as_deref().is_none_or(|o| o == *language) {
                kinds.push((*plugin, *label, *language, loaded.clone(), i));
            }
        }
    }
    // Per kind: one call after a pause (the daemon's usual case: requests
    // come apart, and the plugin's next instance is made in between), and
    // five calls back to back (a re-evaluation or an import: each call's
    // instance is made while the one before runs, or by the call itself).
    // Each kind is timed twice per round, interleaved: with instances made
    // ahead (what the daemon does) and with each call making its own.
    let mut single = vec![Vec::new(); kinds.len()];
    let mut burst = vec![Vec::new(); kinds.len()];
    let mut single_inline = vec![Vec::new(); kinds.len()];
    let mut burst_inline = vec![Vec::new(); kinds.len()];
    let mut fuel = vec![0u64; kinds.len()];
    let mut now = 10_000i64;
    for _ in 0..rounds {
        for (k, (plugin, _, _, loaded, i)) in kinds.iter().enumerate() {
            let (p, activities) = &inputs[*i].2;
            let config: &[(String, FieldValue)] = if *plugin == "icp-fit" {
                &icp_config
            } else {
                &[]
            };
            let mut call = || {
                now += 1;
                let input = CallInput {
                    prospect: p,
                    activities,
                    now: Millis(now),
                    config,
                };
                let stats = if *plugin == "icp-fit" {
                    let (v, stats) = loaded.evaluate(&input).unwrap();
                    assert!(v.met, "{}", v.reason);
                    stats
                } else {
                    let (items, stats) = loaded.checklist(&input).unwrap();
                    assert_eq!(items.len(), 4);
                    stats
                };
                stats.fuel_used
            };
            for ahead in [true, false] {
                host.make_instances_ahead(ahead);
                // A pause, spent spinning: a sleeping thread wakes on cold
                // caches (measured: +70 µs on a Rust call), which is the
                // machine's idle behaviour, not the plugin's.
                let pause = Instant::now();
                while pause.elapsed() < std::time::Duration::from_millis(10) {
                    std::hint::spin_loop();
                }
                let t = Instant::now();
                let used = call();
                let one = t.elapsed().as_secs_f64() * 1e6;
                if ahead {
                    // The call's own fuel (an instance made inline also
                    // spends the component's start functions').
                    fuel[k] = used;
                }
                let batch = 5;
                let t = Instant::now();
                for _ in 0..batch {
                    call();
                }
                let many = t.elapsed().as_secs_f64() * 1e6 / f64::from(batch);
                let (s, b) = if ahead {
                    (&mut single, &mut burst)
                } else {
                    (&mut single_inline, &mut burst_inline)
                };
                s[k].push(one);
                b[k].push(many);
            }
            host.make_instances_ahead(true);
        }
    }
    println!(
        "{:<8} {:<15} {:<11} {:>12} {:>10} {:>13} {:>12} {:>13} {:>12} {:>8}",
        "plugin",
        "input",
        "language",
        "µs per call",
        "(fastest)",
        "back to back",
        "made inline",
        "back to back",
        "fuel",
        "× Rust"
    );
    println!(
        "{:<37} {:>36} {:>26}",
        "", "instances made ahead", "each call makes its own"
    );
    let mut rust_us = 0.0;
    for (k, (plugin, label, language, _, _)) in kinds.iter().enumerate() {
        let best = single[k].iter().copied().fold(f64::INFINITY, f64::min);
        let us = median(single[k].clone());
        let back_to_back = median(burst[k].clone());
        let inline = median(single_inline[k].clone());
        let inline_burst = median(burst_inline[k].clone());
        if *language == "rust" {
            rust_us = us;
        }
        println!(
            "{plugin:<8} {label:<15} {language:<11} {us:>12.1} {:>10} {back_to_back:>13.1} {inline:>12.1} {inline_burst:>13.1} {:>12} {:>8}",
            format!("({best:.1})"),
            fuel[k],
            if rust_us > 0.0 {
                format!("{:.0}×", us / rust_us)
            } else {
                "-".into()
            }
        );
    }
}
