//! The command line as a person and a script use it, and a client written
//! in another language.

use std::process::Output;

use serde_json::{Value, json};

use crate::support::{Daemon, bin, repo_root};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn the_walkthrough_works_from_the_command_line() {
    let d = Daemon::start();
    let out = ok(d.cli(&[
        "prospect",
        "add",
        "Ada Lovelace",
        "--company",
        "Analytical Engines",
        "--owner",
        "maria",
        "--field",
        "budget=12000",
    ]));
    assert!(out.contains("prospect 1 created in `prospect`"), "{out}");
    let out = ok(d.cli(&[
        "activity",
        "record",
        "1",
        "replied",
        "--actor",
        "prospect",
        "--data",
        "channel=email",
    ]));
    assert!(out.contains("moved prospect → connect (advanced)"), "{out}");
    let out = ok(d.cli(&["prospect", "get", "1"]));
    assert!(out.contains("Connect (connect)"), "{out}");
    assert!(
        out.contains("✗ Did the prospect attend a connect call?"),
        "{out}"
    );
    assert!(out.contains("budget=12000"), "{out}");

    // A refused advance: non-zero exit, the unmet criteria on stderr.
    let out = d.cli(&["prospect", "advance", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("✗ Did the prospect attend a connect call?"),
        "{}",
        stderr(&out)
    );

    let out = ok(d.cli(&[
        "prospect",
        "move",
        "1",
        "present",
        "--reason",
        "demo at the fair",
    ]));
    assert!(out.contains("(forced)"), "{out}");
    let out = ok(d.cli(&["prospect", "list", "--stage", "present"]));
    assert!(out.contains("Ada Lovelace"), "{out}");
    let out = ok(d.cli(&[
        "prospect",
        "close",
        "1",
        "lost",
        "--reason",
        "went with a competitor",
    ]));
    assert!(out.contains("now: present (lost)"), "{out}");
    let out = ok(d.cli(&["activity", "list", "1"]));
    assert!(out.contains("channel"), "{out}");
    let out = ok(d.cli(&["status"]));
    assert!(out.contains("Default B2B process v1"), "{out}");
    let out = ok(d.cli(&["process", "show"]));
    assert!(out.contains("Did the prospect sign the contract?"), "{out}");
}

#[test]
fn json_output_is_for_scripts() {
    let d = Daemon::start();
    // `prospect add`/`show` and `plugin` are the old spellings of
    // `prospect create`/`get` and `plugins`: scripts keep working.
    let out = ok(d.cli(&["--json", "prospect", "add", "Grace", "--at", "2026-07-01"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["created_at"], "2026-07-01T00:00:00Z");
    let out = ok(d.cli(&["--json", "prospect", "list"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["prospects"][0]["name"], "Grace");
    let old: Value =
        serde_json::from_str(&ok(d.cli(&["--json", "prospect", "show", "1"]))).unwrap();
    let new: Value = serde_json::from_str(&ok(d.cli(&["--json", "prospect", "get", "1"]))).unwrap();
    assert_eq!(old["name"], new["name"]);
    let old: Value = serde_json::from_str(&ok(d.cli(&["--json", "plugin", "list"]))).unwrap();
    let new: Value = serde_json::from_str(&ok(d.cli(&["--json", "plugins", "list"]))).unwrap();
    assert_eq!(old, new);
}

#[test]
fn client_errors_are_clear() {
    let d = Daemon::start();
    let out = d.cli(&["prospect", "show", "42"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no prospect with id 42"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["prospect", "add", "X", "--field", "budget"]);
    assert!(stderr(&out).contains("not `key=value`"), "{}", stderr(&out));
    let out = d.cli(&["activity", "record", "1", "replied", "--at", "last tuesday"]);
    assert!(!out.status.success());
    // A filter a figure cannot honour is an error, never silently dropped.
    for (args, says) in [
        (
            vec![
                "metrics",
                "conversion",
                "--month",
                "2026-07",
                "--stage",
                "connect",
            ],
            "`--stage` does not apply",
        ),
        (
            vec![
                "metrics", "outcomes", "--month", "2026-07", "--stage", "connect",
            ],
            "`--stage` does not apply",
        ),
        (
            vec![
                "metrics",
                "outcomes",
                "--month",
                "2026-07",
                "--version",
                "1",
            ],
            "`--version` does not apply",
        ),
    ] {
        let out = d.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let c = &mut d.client();
    let e = c.err(
        "metrics.conversion",
        serde_json::json!({ "from": "2026-07-01", "to": "2026-08-01", "stage": "connect" }),
    );
    assert_eq!(e["code"], -32602, "{e}");
    let out = std::process::Command::new(crate::support::bin())
        .args(["--socket", "/nonexistent/stagecoach.sock", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("hint: start it with `stagecoach serve`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn process_validate_reports_line_column_key_and_hint() {
    let d = Daemon::start();
    let bad = d.dir.path().join("candidate.toml");
    let text = r#"[process]
name = "x"

[[stages]]
id = "qualify"
name = "Qualify"
exit = [{ question = "Budget?", field = "budget", op = "=>", value = 10000 }]
"#;
    std::fs::write(&bad, text).unwrap();
    let out = d.cli(&["process", "validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("candidate.toml:7:56: stages[0].exit[0].op: unknown operator `=>`"),
        "{err}"
    );
    assert!(err.contains("hint: did you mean `>=`?"), "{err}");
    // Nothing was applied.
    let mut c = d.client();
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
}

#[test]
fn watch_prints_moves() {
    let d = Daemon::start();
    let mut watch = std::process::Command::new(crate::support::bin())
        .arg("--socket")
        .arg(&d.socket)
        .arg("watch")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the watcher is subscribed.
    let mut c = d.client();
    for _ in 0..200 {
        if c.ok("daemon.status", json!({}))["connections"].as_u64() == Some(2) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let id = crate::support::create(&mut c, "Ada", json!({}));
    crate::support::record(&mut c, id, "replied");
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    assert!(
        line.contains("prospect 1 (Ada)  prospect → connect  [advanced]"),
        "{line}"
    );
    // A process change and a refused edit, in sentences, not JSON.
    let changed = crate::support::default_process().replacen(
        "activity = \"meeting_held\", actor = \"prospect\"",
        "activity = \"meeting_held\", actor = \"prospect\", at_least = 2",
        1,
    );
    c.ok("process.reload", json!({ "text": changed }));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("exit criterion changed") {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(
        text.contains("process version 2 in force (was 1)"),
        "{text}"
    );
    assert!(
        text.contains("stage `connect`: exit criterion changed: \"Did the prospect attend a connect call?\" (the prospect's `meeting_held` → the prospect's `meeting_held` at least twice)"),
        "{text}"
    );
    // A broken save (process.reload refuses broken text without writing).
    std::fs::write(&d.process, "[process]\nname = 1\n").unwrap();
    let line = lines.next().unwrap().unwrap();
    assert!(
        line.contains("process file refused, version 2 stays in force:"),
        "{line}"
    );
    let line = lines.next().unwrap().unwrap();
    assert!(line.contains(":2:"), "the error with its line: {line}");
    assert!(
        !text.contains('{') && !line.contains('{'),
        "no raw JSON: {text}\n{line}"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[test]
fn the_python_example_client_works_against_the_daemon() {
    let d = Daemon::start();
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("examples/client.py"))
        .arg(&d.socket)
        .output()
        .expect("python3 is installed");
    let text = ok(out);
    assert!(
        text.contains("moved prospect -> connect (advanced)"),
        "{text}"
    );
    assert!(
        text.contains("prospect 1: Ada Lovelace (Analytical Engines) is in connect"),
        "{text}"
    );
    assert!(
        text.contains("[unmet] Did the prospect attend a connect call?"),
        "{text}"
    );
}

#[test]
fn completions_parse_in_the_shell_and_the_manual_renders() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // bash parses what it would source, and completes our commands.
    let bash = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stagecoach.bash");
    std::fs::write(&file, &bash).unwrap();
    let parsed = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .unwrap();
    assert!(parsed.success(), "bash -n refused the completions");
    let bash = String::from_utf8(bash).unwrap();
    for word in ["prospect", "metrics", "plugins", "--socket"] {
        assert!(
            bash.contains(word),
            "{word} missing from the bash completions"
        );
    }
    assert!(
        String::from_utf8(run(&["completions", "zsh"]))
            .unwrap()
            .starts_with("#compdef stagecoach")
    );
    assert!(
        String::from_utf8(run(&["completions", "fish"]))
            .unwrap()
            .contains("complete -c stagecoach")
    );

    // One page per command; groff renders each without a warning.
    let pages = dir.path().join("man");
    run(&["man", "--dir", pages.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for page in [
        "stagecoach.1",
        "stagecoach-serve.1",
        "stagecoach-plugins-new.1",
        "stagecoach-metrics-flow.1",
    ] {
        assert!(
            names.iter().any(|n| n == page),
            "{page} missing from {names:?}"
        );
    }
    assert!(
        String::from_utf8(run(&["man"]))
            .unwrap()
            .contains(".TH stagecoach 1")
    );
    for name in &names {
        let out = std::process::Command::new("groff")
            .args(["-K", "utf8", "-man", "-Tutf8", "-ww", "-z"])
            .arg(pages.join(name))
            .output()
            .expect("groff (Debian: groff-base) renders man pages");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn status_as_openmetrics_says_what_the_protocol_says() {
    let d = Daemon::start();
    let mut c = d.client();
    for name in ["Ada", "Grace \"the\" admiral"] {
        let id = crate::support::create(&mut c, name, json!({}));
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "replied", "actor": "prospect" }),
        );
    }
    let text = ok(d.cli(&["status", "--format", "openmetrics"]));
    let status = c.ok("daemon.status", json!({}));
    let plugins = c.ok("plugins.list", json!({}));

    // The exposition's shape: families declared once before their samples,
    // counters sampled as `_total`, info as `_info`, and `# EOF` last.
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut families: std::collections::HashMap<String, String> = Default::default();
    let mut samples: std::collections::HashMap<String, f64> = Default::default();
    for line in text.lines().filter(|l| *l != "# EOF") {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                families.insert(name.into(), kind.into()).is_none(),
                "{name} declared twice"
            );
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# UNIT "))
        {
            let name = rest.split(' ').next().unwrap();
            assert!(families.contains_key(name), "{line} before its TYPE");
            if line.starts_with("# UNIT ") {
                assert!(name.ends_with("_seconds"), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let family = families
            .iter()
            .find(|(f, kind)| {
                name == match kind.as_str() {
                    "counter" => format!("{f}_total"),
                    "info" => format!("{f}_info"),
                    _ => f.to_string(),
                }
            })
            .unwrap_or_else(|| panic!("{name} belongs to no family declared before it"));
        assert!(!family.0.is_empty());
        samples.insert(series.into(), value.parse().unwrap());
    }
    // The figures are the protocol's.
    let writer = &status["writer"];
    assert_eq!(
        samples["stagecoach_writer_commits_total"],
        writer["commits"].as_f64().unwrap()
    );
    assert_eq!(
        samples["stagecoach_writer_requests_total"],
        writer["requests"].as_f64().unwrap()
    );
    assert_eq!(
        samples["stagecoach_process_version"],
        status["process"]["version"].as_f64().unwrap()
    );
    assert_eq!(samples["stagecoach_prospects"], 2.0);
    assert_eq!(samples["stagecoach_activities"], 2.0);
    assert_eq!(samples["stagecoach_process_reload_error"], 0.0);
    assert_eq!(samples["stagecoach_store_degraded"], 0.0);
    for p in plugins["plugins"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        assert_eq!(
            samples[&format!("stagecoach_plugin_calls_total{{plugin=\"{name}\"}}")],
            p["calls"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(
            samples[&format!("stagecoach_plugin_failures_total{{plugin=\"{name}\"}}")],
            p["failures"].as_f64().unwrap()
        );
    }
    let info = format!(
        "stagecoach_process_info{{name=\"{}\",version=\"{}\",hash=\"{}\"}}",
        status["process"]["name"].as_str().unwrap(),
        status["process"]["version"],
        status["process"]["hash"].as_str().unwrap()
    );
    assert_eq!(samples[&info], 1.0, "{text}");
}
