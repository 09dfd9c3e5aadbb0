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
    drop(daemon);
}
