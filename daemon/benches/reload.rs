//! Time from saving `process.toml` to the new version being active and
//! pushed to a subscriber (`process.reloaded`), over 20 saves of each
//! common save style.
//!
//! Run: `cargo bench -p stagecoach --bench reload`

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::BenchDaemon;

const SAVES: usize = 20;

/// A way of saving a file.
type Save = fn(&Path, &str);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // The default process without its plugins, so nothing needs building first.
    let mut table: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("process.toml")).unwrap()).unwrap();
    table.remove("plugins");
    for stage in table["stages"].as_array_mut().unwrap() {
        stage.as_table_mut().unwrap().remove("checklists");
    }
    let original = toml::to_string(&table).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let process = dir.path().join("process.toml");
    let (daemon, stream) = BenchDaemon::start(dir.path(), &original, &[]);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    writer
        .write_all(
            format!(
                "{}\n",
                json!({"jsonrpc":"2.0","id":1,"method":"events.subscribe"})
            )
            .as_bytes(),
        )
        .unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();

    println!("# save → active and pushed (process.reloaded received by a subscriber)");
    println!("command: cargo bench -p stagecoach --bench reload");
    println!(
        "machine: {} cores; {SAVES} saves per style",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "baseline: the daemon's debounce window is {:?} (a save must be quiet that long)",
        Duration::from_millis(25)
    );
    let mut n = 0;
    let styles: [(&str, Save); 2] = [
        ("truncate and write (std::fs::write)", |p, t| {
            std::fs::write(p, t).unwrap()
        }),
        ("write temp, rename over (vim, VS Code)", |p, t| {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, t).unwrap();
            std::fs::rename(&tmp, p).unwrap();
        }),
    ];
    for (name, save) in styles {
        let mut times = Vec::new();
        for _ in 0..SAVES {
            n += 1;
            let text = original.replace(
                "review_every_days = 150",
                &format!("review_every_days = {}", 150 + n),
            );
            let start = Instant::now();
            save(&process, &text);
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["method"] == "process.reloaded" {
                    break;
                }
                assert_ne!(v["method"], "process.rejected", "{v}");
            }
            times.push(start.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        times.sort();
        println!(
            "{name:<42} median {:>7.1} ms   max {:>7.1} ms",
            times[SAVES / 2].as_secs_f64() * 1e3,
            times[SAVES - 1].as_secs_f64() * 1e3
        );
    }
    validation_of_a_large_file(&mut writer, &mut reader, &daemon.socket);
    latency_under_large_requests(&mut reader, &daemon.socket, &process, &original);
    drop(daemon);
}

/// Another client's `daemon.status` latency (p50 and slowest), interleaved:
/// idle, while a client sends 100,000-request batches (each refused whole),
/// idle again, and while a 10,000-stage `process.toml` is saved and
/// loaded (until the subscriber gets `process.reloaded`).
fn latency_under_large_requests(
    events: &mut BufReader<std::os::unix::net::UnixStream>,
    socket: &Path,
    process: &Path,
    original: &str,
) {
    let batch = format!("[{}]\n", vec!["{}"; 100_000].join(","));
    let mut big = String::from("[process]\nname = \"big\"\n");
    for i in 0..10_000 {
        big.push_str(&format!(
            "\n[[stages]]\nid = \"s{i}\"\nname = \"Stage {i}\"\nexit = [{{ question = \"Step {i} done?\", activity = \"step_{i}\" }}]\n"
        ));
    }
    let probe = |during: &dyn Fn()| -> (Duration, Duration, usize) {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut times = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut c = common::Conn::new(socket);
                let mut times = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    c.send(0, "daemon.status", json!({}));
                    c.recv();
                    times.push(t.elapsed());
                    std::thread::sleep(Duration::from_millis(1));
                }
                times
            });
            during();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            watcher.join().unwrap()
        });
        times.sort();
        (times[times.len() / 2], times[times.len() - 1], times.len())
    };
    let idle = || std::thread::sleep(Duration::from_millis(1500));
    let batches = || {
        let mut c = std::os::unix::net::UnixStream::connect(socket).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        for _ in 0..10 {
            c.write_all(batch.as_bytes()).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("-32600"), "{line}");
        }
    };
    let events = std::cell::RefCell::new(events);
    let save = || {
        std::fs::write(process, &big).unwrap();
        let mut events = events.borrow_mut();
        let mut line = String::new();
        loop {
            line.clear();
            events.read_line(&mut line).unwrap();
            if line.contains("process.reloaded") {
                break;
            }
            assert!(!line.contains("process.rejected"), "{line}");
        }
    };
    let show = |what: &str, (p50, max, n): (Duration, Duration, usize)| {
        println!(
            "another client's daemon.status {what:<44} p50 {:>6.2} ms   slowest {:>7.1} ms   ({n} calls)",
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    };
    let timed = |what: &str, during: &dyn Fn()| {
        let t = Instant::now();
        let latency = probe(during);
        show(
            &format!("{what} ({:.0} ms)", t.elapsed().as_secs_f64() * 1e3),
            latency,
        );
    };
    show("idle", probe(&idle));
    timed("during 10 batches of 100,000", &batches);
    show("idle again", probe(&idle));
    timed("during a 10,000-stage save", &save);
    std::fs::write(process, original).unwrap();
}

/// `process.validate` of a 6,000-stage text (about 700 KiB: what fits
/// the default 1 MiB request line), over the socket, while
/// another client asks `daemon.status`: how long it takes and how long the
/// other client waits at most. Parsing alone, in-process, is the baseline.
fn validation_of_a_large_file(
    writer: &mut std::os::unix::net::UnixStream,
    reader: &mut BufReader<std::os::unix::net::UnixStream>,
    socket: &Path,
) {
    let mut text = String::from("[process]\nname = \"large\"\n");
    for i in 0..6_000 {
        text.push_str(&format!(
            "\n[[stages]]\nid = \"s{i}\"\nname = \"Stage {i}\"\nexit = [{{ question = \"Did the prospect reply {i}?\", activity = \"replied\" }}]\n"
        ));
    }
    let parse = Instant::now();
    stagecoach_core::process::parse(&text, "large.toml").unwrap();
    let parse = parse.elapsed();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut times = Vec::new();
    let slowest = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut c = common::Conn::new(socket);
            let mut slowest = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                c.send(0, "daemon.status", json!({}));
                c.recv();
                slowest = slowest.max(t.elapsed());
            }
            slowest
        });
        let mut line = String::new();
        for _ in 0..5 {
            let t = Instant::now();
            writer
                .write_all(
                    format!(
                        "{}\n",
                        json!({"jsonrpc":"2.0","id":2,"method":"process.validate","params":{"text": text}})
                    )
                    .as_bytes(),
                )
                .unwrap();
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let v: Value = serde_json::from_str(&line).unwrap();
                if v["id"] == 2 || v.get("error").is_some() {
                    assert_eq!(v["result"]["stages"], 6_000, "{v}");
                    break;
                }
            }
            times.push(t.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    times.sort();
    println!(
        "process.validate of a 6,000-stage file ({} KiB): median {:.1} ms (parse alone {:.1} ms); another client's slowest daemon.status meanwhile {:.1} ms",
        text.len() / 1024,
        times[2].as_secs_f64() * 1e3,
        parse.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
}
