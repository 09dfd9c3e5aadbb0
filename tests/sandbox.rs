//! The plugin sandbox against hostile plugins and files: every output,
//! log line and file a plugin hands the daemon is bounded before it is
//! used, the failure is counted and pushed, and the daemon keeps serving
//! other clients while it happens.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Daemon, create, plugins_dir};

fn plugin(name: &str) -> String {
    plugins_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

/// One stage per hostile mode, each its own `[[plugins]]` entry (a
/// checklist criterion takes the plugin's own config).
fn hostile_process(dir: &std::path::Path) -> String {
    let hostile = dir.join("hostile.wasm");
    std::fs::copy(plugin("hostile"), &hostile).unwrap();
    let mut text = String::from("[process]\nname = \"sandbox\"\n");
    for (name, mode) in [
        ("items", "items"),
        ("bigerr", "big-error"),
        ("flood", "log-flood"),
        ("logs", "logs"),
    ] {
        text.push_str(&format!(
            "\n[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nfuel = 100_000_000\nmemory_mib = 128\ntimeout_ms = 2000\nconfig = {{ mode = \"{mode}\" }}\n",
            hostile.display()
        ));
    }
    text.push_str(&format!(
        "\n[[plugins]]\nname = \"icp-fit\"\npath = \"{}\"\n",
        plugin("icp-fit")
    ));
    text.push_str(
        r#"
[[stages]]
id = "good"
name = "Good"
exit = [{ question = "ICP?", plugin = "icp-fit", config = { min_employees = 1 } }]

[[stages]]
id = "items"
name = "Items"
exit = [{ question = "All items done?", checklist = "items" }]

[[stages]]
id = "bigerr"
name = "Big error"
exit = [{ question = "Survives a 30 MiB error?", plugin = "bigerr" }]

[[stages]]
id = "flood"
name = "Flood"
exit = [{ question = "Survives 4 MiB of log?", plugin = "flood" }]

[[stages]]
id = "logs"
name = "Logs"
exit = [{ question = "Survives a log flood?", plugin = "logs" }]

[[stages]]
id = "close"
name = "Close"
exit = [{ question = "Signed?", activity = "signed" }]
"#,
    );
    text
}

/// While `attack` runs, another client asks `daemon.status` over and over;
/// returns the slowest answer.
fn slowest_status_during(d: &Daemon, attack: impl FnOnce()) -> Duration {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let mut c = d.client();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                c.ok("daemon.status", json!({}));
                slowest = slowest.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            slowest
        })
    };
    attack();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap()
}

#[test]
fn hostile_outputs_and_logs_are_bounded_before_they_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(&hostile_process(dir.path()));
    let mut events = d.client();
    events.ok("events.subscribe", json!({}));
    // A subscriber that never reads: what is queued for it is bounded too.
    let mut idle = d.client();
    idle.ok("events.subscribe", json!({}));
    let mut c = d.client();
    let before = d.rss_kib();
    let log_before = d.log_text().len();

    let mut answers = Vec::new();
    let slowest = slowest_status_during(&d, || {
        for stage in ["items", "bigerr", "flood", "logs"] {
            for round in 0..3 {
                let id = create(
                    &mut c,
                    &format!("{stage} {round}"),
                    json!({ "stage": stage }),
                );
                let line = c.ok("prospect.get", json!({ "id": id }));
                answers.push((stage, line));
            }
        }
    });

    for (stage, p) in &answers {
        let size = p.to_string().len();
        assert!(size < 16 << 10, "{stage}: a {size}-byte answer");
        let v = &p["verdicts"][0];
        let reason = v["reason"].as_str().unwrap_or_default();
        match *stage {
            "items" => {
                assert_eq!(v["met"], false, "{p}");
                assert!(
                    reason.contains("checklist returned 100000 items, the limit is 256"),
                    "{reason}"
                );
            }
            "bigerr" => {
                assert_eq!(v["met"], false, "{p}");
                assert!(reason.len() < 2048, "a {}-byte reason", reason.len());
                assert!(reason.contains("more bytes cut"), "{reason}");
            }
            "flood" => {
                assert_eq!(v["met"], false, "{p}");
                assert!(
                    reason.contains("logged more than 16 KiB in one call (`max_log_kib`)"),
                    "{reason}"
                );
            }
            _ => assert_eq!(p["stage"], "close", "many log lines are no failure: {p}"),
        }
    }
    // A line that gets through a second later says how many were dropped.
    std::thread::sleep(Duration::from_millis(1100));
    let id = create(&mut c, "logs later", json!({ "stage": "logs" }));
    c.ok("prospect.get", json!({ "id": id }));
    // The log: at most `max_log_kib` (16 KiB) per call and
    // `max_log_lines_per_second` (20) per plugin, nothing forged.
    let log = d.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("plugin=logs") && l.contains(" line "))
        .count();
    assert!(
        lines <= 45,
        "{lines} log lines from `logs` in about a second"
    );
    assert!(
        log.contains("earlier lines dropped: over `max_log_lines_per_second`"),
        "the drops are said"
    );
    let grew = log.len() - log_before;
    assert!(grew < 256 << 10, "the log grew {grew} bytes");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00.000000Z  INFO stagecoach_server: forged")),
        "a plugin forged a log line"
    );
    assert!(
        log.contains(
            r"first\n2026-01-01T00:00:00.000000Z  INFO stagecoach_server: forged\u{1b}[2J"
        ),
        "the plugin's line is there, escaped"
    );
    // Counted, and pushed (bounded like everything else): every call of
    // the three failing plugins failed, on the write path (creation) and
    // the read path (`prospect.get`).
    let list = c.ok("plugins.list", json!({}));
    let failures = |name: &str| {
        list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["failures"].as_u64().unwrap())
            .unwrap()
    };
    let mut pushed = std::collections::BTreeMap::<String, u64>::new();
    let expected: u64 = ["items", "bigerr", "flood"]
        .iter()
        .map(|n| failures(n))
        .sum();
    for _ in 0..expected {
        let failed = events.wait_notification("plugin.failed");
        let plugin = failed["plugin"].as_str().unwrap().to_string();
        let kind = if plugin == "bigerr" {
            "error"
        } else {
            "output"
        };
        assert_eq!(failed["kind"], kind, "{failed}");
        assert!(failed.to_string().len() < 4096, "{failed}");
        *pushed.entry(plugin).or_default() += 1;
    }
    for name in ["items", "bigerr", "flood"] {
        assert!(failures(name) >= 3, "{name}: {list}");
        assert_eq!(pushed.get(name).copied(), Some(failures(name)), "{name}");
    }
    assert_eq!(failures("logs"), 0);
    // Memory: what the plugins returned is gone once refused.
    let after = d.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS {before} KiB before, {after} KiB after"
    );
    // Other clients were answered throughout.
    assert!(
        slowest < Duration::from_secs(2),
        "daemon.status took {slowest:?}"
    );
    drop(idle);
    eprintln!(
        "sandbox: RSS {before} → {after} KiB, log +{grew} bytes, slowest daemon.status {slowest:?}"
    );
}

/// Puts something at a path: what a hostile user swaps a file for.
type Make = fn(&std::path::Path);

/// Makes a FIFO at `p`.
fn make_fifo(p: &std::path::Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap()
}

/// Links `p` to `/dev/zero`, a character device that never ends.
fn link_dev_zero(p: &std::path::Path) {
    std::os::unix::fs::symlink("/dev/zero", p).unwrap()
}

/// Swaps `path` for what `make` puts there, atomically.
fn replace_with(path: &std::path::Path, make: impl FnOnce(&std::path::Path)) {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    make(&tmp);
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn plugin_files_that_are_not_regular_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("icp.wasm");
    std::fs::copy(plugin("icp-fit"), &file).unwrap();
    let text = format!(
        "[process]\nname = \"files\"\n\n[[plugins]]\nname = \"icp-fit\"\npath = \"{}\"\nmax_file_mib = 4\n\n[[stages]]\nid = \"good\"\nname = \"Good\"\nexit = [{{ question = \"ICP?\", plugin = \"icp-fit\", config = {{ min_employees = 1 }} }}]\n\n[[stages]]\nid = \"close\"\nname = \"Close\"\nexit = [{{ question = \"Signed?\", activity = \"signed\" }}]\n",
        file.display()
    );
    let d = Daemon::start_with(&text);
    let mut events = d.client();
    events.ok("events.subscribe", json!({}));
    let mut c = d.client();
    let cases: [(&str, Make); 3] = [
        ("a FIFO", make_fifo),
        ("a character device", link_dev_zero),
        ("more than the 4 MiB", |p| {
            std::fs::write(p, vec![0u8; 5 << 20]).unwrap()
        }),
    ];
    for (what, make) in cases {
        let rss = d.rss_kib();
        replace_with(&file, make);
        let failed = events.wait_notification("plugin.failed");
        assert_eq!(failed["kind"], "load", "{failed}");
        assert!(
            failed["message"].as_str().unwrap().contains(what),
            "{what}: {failed}"
        );
        // The watcher is not stuck: a process edit still loads, a reload
        // answers, and the previous build keeps serving.
        let r = c.ok("process.reload", json!({}));
        assert_eq!(r["outcome"], "unchanged", "{r}");
        let id = create(&mut c, what, json!({ "fields": { "employees": 5 } }));
        let p = c.ok("prospect.get", json!({ "id": id }));
        assert_eq!(p["stage"], "close", "the old build still passes: {p}");
        assert!(
            d.rss_kib() < rss + 64 * 1024,
            "{what}: nothing big was read"
        );
    }
    // A good build after all that is swapped in.
    replace_with(&file, |p| {
        std::fs::copy(plugin("icp-fit"), p).unwrap();
    });
    let v: Value = c.ok("daemon.status", json!({}));
    assert!(v["pid"].as_u64().is_some());
}

/// A component of `modules` core modules of one memory each.
fn memories_component(dir: &std::path::Path, modules: usize) -> String {
    let wat = format!(
        "(component {})",
        (0..modules)
            .map(|i| format!("(core module $m{i} (memory 1)) (core instance (instantiate $m{i}))"))
            .collect::<String>()
    );
    let file = dir.join(format!("memories-{modules}.wat"));
    std::fs::write(&file, wat).unwrap();
    format!(
        "[process]\nname = \"pool\"\n\n[[plugins]]\nname = \"greedy\"\npath = \"{}\"\n\n[[stages]]\nid = \"a\"\nname = \"A\"\nexit = [{{ question = \"Signed?\", activity = \"signed\" }}]\n",
        file.display()
    )
}

#[test]
fn a_component_cannot_hold_the_pools_memory_slots() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        "[process]\nname = \"pool\"\n\n[[stages]]\nid = \"a\"\nname = \"A\"\nexit = [{ question = \"Signed?\", activity = \"signed\" }]\n",
    );
    let mut c = d.client();
    for (modules, why) in [
        (
            256,
            "256 core module instances, which exceeds the configured maximum of 64",
        ),
        (
            10,
            "10 Wasm linear memories, which exceeds the configured maximum of 4",
        ),
    ] {
        let text = memories_component(dir.path(), modules);
        let e = c.err("process.reload", json!({ "text": text }));
        let message = e["data"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{modules} memories: {e}");
    }
    c.ok("daemon.status", json!({}));
}

#[test]
fn a_slow_plugin_delays_only_the_writes_of_prospects_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.wasm");
    std::fs::copy(plugin("hostile"), &hostile).unwrap();
    // `fast` comes after `slow`: its prospects reach no plugin criterion.
    let text = format!(
        r#"[process]
name = "isolation"

[[plugins]]
name = "slow"
path = "{}"
fuel = 2_000_000_000
timeout_ms = 5000
config = {{ mode = "slow" }}

[[stages]]
id = "slow"
name = "Slow"
exit = [
  {{ question = "Slow check?", plugin = "slow" }},
  {{ question = "Signed?", activity = "signed" }},
]

[[stages]]
id = "fast"
name = "Fast"
exit = [{{ question = "Signed?", activity = "signed" }}]

[[stages]]
id = "close"
name = "Close"
exit = [{{ question = "Paid?", activity = "paid" }}]
"#,
        hostile.display()
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let fast = create(&mut c, "fast", json!({ "stage": "fast" }));
    let slow: Vec<u64> = (0..12)
        .map(|i| create(&mut c, &format!("slow {i}"), json!({ "stage": "slow" })))
        .collect();
    let one = Instant::now();
    c.ok(
        "activity.record",
        json!({ "prospect": slow[0], "kind": "call" }),
    );
    let slow_call = one.elapsed();

    // Another client's writes to a prospect without plugin criteria, alone…
    let fast_writes = |c: &mut crate::support::Client| {
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            c.ok(
                "activity.record",
                json!({ "prospect": fast, "kind": "call" }),
            );
            slowest = slowest.max(t.elapsed());
        }
        slowest
    };
    let alone = fast_writes(&mut c);
    // …and while another connection pipelines writes to the slow prospects.
    let mut pipelined = d.client();
    for (i, id) in slow.iter().enumerate() {
        pipelined.send(
            &json!({ "jsonrpc": "2.0", "id": 1000 + i, "method": "activity.record",
                     "params": { "prospect": id, "kind": "call" } })
            .to_string(),
        );
    }
    let during = fast_writes(&mut c);
    for _ in &slow {
        let answer = pipelined.read().unwrap();
        assert!(answer.get("result").is_some(), "{answer}");
    }
    let list = c.ok("plugins.list", json!({}));
    let stats = &list["plugins"][0];
    eprintln!(
        "isolation: one slow write {slow_call:?}; other client's slowest write alone {alone:?}, during 12 slow writes {during:?}; {stats}"
    );
    assert!(
        during < slow_call * 4,
        "another client's write waited {during:?} behind slow plugin writes (one takes {slow_call:?})"
    );
    // The writer reused what was evaluated ahead instead of calling again.
    assert!(
        stats["reused"].as_u64().unwrap() >= 12,
        "the writer called the plugin itself: {stats}"
    );

    // Re-evaluating everything does not hold other clients' writes either.
    let reused = stats["reused"].as_u64().unwrap();
    let mut progress = d.client();
    progress.ok("events.subscribe", json!({}));
    let mut other = d.client();
    other.send(
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "process.reevaluate", "params": {} })
            .to_string(),
    );
    let during_reevaluate = fast_writes(&mut c);
    let r = other.read().unwrap();
    assert_eq!(r["result"]["evaluated"], 13, "{r}");
    let p = progress.wait_notification("process.reevaluating");
    assert_eq!(
        (p["done"].clone(), p["total"].clone()),
        (json!(13), json!(13)),
        "{p}"
    );
    let list = c.ok("plugins.list", json!({}));
    let stats = &list["plugins"][0];
    eprintln!(
        "isolation: other client's slowest write during process.reevaluate {during_reevaluate:?}; {stats}"
    );
    assert!(
        during_reevaluate < slow_call * 4,
        "another client's write waited {during_reevaluate:?} behind re-evaluation"
    );
    assert!(
        stats["reused"].as_u64().unwrap() >= reused + 12,
        "re-evaluation called the plugin on the writer: {stats}"
    );
}

/// A component whose one function is `additions` additions in a row,
/// unique to this run: the tests share a compile cache, and a bomb compiled
/// once (a worker that finished as it was being given up on) would be
/// served from it in no time on every later run.
fn compile_bomb(dir: &std::path::Path, additions: usize) -> std::path::PathBuf {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let body = "i32.const 1 i32.add ".repeat(additions);
    let wat = format!(
        "(component (core module $m (func (export \"f\") (result i32) i32.const {nonce} {body})) (core instance (instantiate $m)))"
    );
    let file = dir.join(format!("bomb-{additions}.wat"));
    std::fs::write(&file, wat).unwrap();
    file
}

#[test]
fn compiling_is_bounded_in_time_and_memory_and_the_daemon_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[process]\nname = \"compile\"\n\n[[stages]]\nid = \"a\"\nname = \"A\"\nexit = [{ question = \"Signed?\", activity = \"signed\" }]\n";
    let with = |file: &std::path::Path| {
        base.replace(
            "[[stages]]",
            &format!(
                "[[plugins]]\nname = \"bomb\"\npath = \"{}\"\n\n[[stages]]",
                file.display()
            ),
        )
    };
    let d = Daemon::start_with_flags(
        base,
        &[
            "--compile-timeout-secs",
            "1",
            "--compile-memory-mib",
            "1024",
        ],
    );
    let mut c = d.client();
    // Time: a function of 400,000 additions takes longer than a second.
    let bomb = compile_bomb(dir.path(), 400_000);
    let text = with(&bomb);
    let slowest = slowest_status_during(&d, || {
        let e = c.err("process.reload", json!({ "text": text }));
        let message = e["data"]["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("compiling took longer than 1 s"), "{e}");
    });
    assert!(
        slowest < Duration::from_millis(500),
        "daemon.status took {slowest:?}"
    );
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
    drop(d);

    // Memory: the same compile within 64 MiB of address space.
    let d = Daemon::start_with_flags(
        base,
        &["--compile-timeout-secs", "60", "--compile-memory-mib", "64"],
    );
    let mut c = d.client();
    let e = c.err("process.reload", json!({ "text": with(&bomb) }));
    let message = e["data"]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("64 MiB"), "{e}");
    // A small plugin still compiles under the same limits… within reason.
    let small = compile_bomb(dir.path(), 10);
    let e = c.err("process.reload", json!({ "text": with(&small) }));
    let message = e["data"]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("does not export the Stagecoach plugin interface"),
        "compiled, then refused for what it is: {e}"
    );
    c.ok("daemon.status", json!({}));
}

#[test]
fn the_daemon_listens_while_it_starts_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[process]\nname = \"start\"\n\n[[stages]]\nid = \"a\"\nname = \"A\"\nexit = [{ question = \"Signed?\", activity = \"signed\" }]\n";
    let mut d = Daemon::start_with(base);
    d.stop();
    // A plugin that takes seconds to compile (unique, so never cached).
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let body = "i32.const 1 i32.add ".repeat(300_000);
    let wat = format!(
        "(component (core module $m (func (export \"f\") (result i32) i32.const {nonce} {body})) (core instance (instantiate $m)))"
    );
    let bomb = dir.path().join("slow-to-compile.wat");
    std::fs::write(&bomb, wat).unwrap();
    std::fs::write(
        &d.process,
        base.replace(
            "[[stages]]",
            &format!(
                "[[plugins]]\nname = \"bomb\"\npath = \"{}\"\n\n[[stages]]",
                bomb.display()
            ),
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(crate::support::bin())
        .args(["serve", "--process"])
        .arg(&d.process)
        .arg("--data-dir")
        .arg(d.data_dir())
        .arg("--socket")
        .arg(&d.socket)
        .env("STAGECOACH_PLUGIN_CACHE", dir.path().join("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut c = loop {
        if let Ok(c) = crate::support::Client::try_connect(&d.socket) {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never listened");
        std::thread::sleep(Duration::from_millis(10));
    };
    let e = c.err("daemon.status", json!({}));
    assert_eq!(e["code"], -32006, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the daemon is starting"),
        "{e}"
    );
    let listening = start.elapsed();
    // Then it serves (the refused build leaves version 1 in force).
    let status = loop {
        if let Ok(mut c) = crate::support::Client::try_connect(&d.socket)
            && let Ok(s) = c.call("daemon.status", json!({}))
        {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "never served");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "start: answering after {listening:?}, serving after {:?}",
        start.elapsed()
    );
    assert_eq!(status["process"]["version"], 1, "{status}");
    assert!(status["process"]["last_error"].is_object(), "{status}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_process_file_that_is_not_a_regular_file_is_refused_and_the_watcher_goes_on() {
    let d = Daemon::start();
    let mut events = d.client();
    events.ok("events.subscribe", json!({}));
    let cases: [(&str, Make); 2] = [("a FIFO", make_fifo), ("a character device", link_dev_zero)];
    let good = std::fs::read_to_string(&d.process).unwrap();
    for (what, make) in cases {
        let rss = d.rss_kib();
        replace_with(&d.process, make);
        let rejected = events.wait_notification("process.rejected");
        assert!(
            rejected["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(what),
            "{what}: {rejected}"
        );
        assert!(
            d.rss_kib() < rss + 64 * 1024,
            "{what}: nothing big was read"
        );
        // The next good save is seen.
        let changed = good.replace("review_every_days = 150", "review_every_days = 151");
        replace_with(&d.process, |p| std::fs::write(p, &changed).unwrap());
        let reloaded = events.wait_notification("process.reloaded");
        assert!(reloaded["version"].as_u64().unwrap() >= 2, "{reloaded}");
        replace_with(&d.process, |p| std::fs::write(p, &good).unwrap());
        events.wait_notification("process.reloaded");
    }
}
