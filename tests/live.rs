//! Live process iteration with real file operations against the real
//! daemon: every save style, versions, rejected edits, renames, removals,
//! re-evaluation and lint.

use std::io::{Seek, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Client, Daemon, create, default_process, record};

/// A way of saving a file.
type Save = fn(&Path, &str);

fn subscriber(d: &Daemon) -> Client {
    let mut c = d.client();
    c.ok("events.subscribe", json!({}));
    c
}

/// Waits for the next process notification (reloaded or rejected).
fn next_process_event(c: &mut Client) -> (String, Value) {
    loop {
        let m = c
            .read()
            .expect("connection closed while waiting for a process event");
        let method = m["method"].as_str().unwrap_or_default();
        if method.starts_with("process.") {
            return (method.to_string(), m["params"].clone());
        }
    }
}

fn expect_reloaded(c: &mut Client) -> Value {
    let (method, params) = next_process_event(c);
    assert_eq!(method, "process.reloaded", "{params}");
    params
}

fn expect_rejected(c: &mut Client) -> Value {
    let (method, params) = next_process_event(c);
    assert_eq!(method, "process.rejected", "{params}");
    params
}

fn with_description(n: usize) -> String {
    default_process().replace(
        "Negotiate terms, handle objections and get the contract signed.",
        &format!("Negotiate terms (edit {n})."),
    )
}

fn hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn save_in_place(path: &Path, text: &str) {
    // Overwrite without truncating (the new text is longer than the old).
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.rewind().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.set_len(text.len() as u64).unwrap();
}

fn save_truncate(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn save_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn save_recreate(path: &Path, text: &str) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn every_save_style_becomes_the_next_version() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    let styles: [(&str, Save); 4] = [
        ("in place", save_in_place),
        ("truncate and write", save_truncate),
        ("write temp and rename", save_rename),
        ("delete and recreate", save_recreate),
    ];
    for (i, (style, save)) in styles.iter().enumerate() {
        let text = with_description(1000 + i);
        save(&d.process, &text);
        let params = expect_reloaded(&mut events);
        let version = i as u64 + 2;
        assert_eq!(params["version"], version, "{style}: {params}");
        assert_eq!(params["previous"], version - 1);
        assert_eq!(
            params["changes"][0], "stage `close`: description changed",
            "{style}"
        );
        let now = c.ok("process.get", json!({}));
        assert_eq!(now["version"], version, "{style}");
        assert_eq!(now["hash"], hash(&text), "{style}");
        assert_eq!(now["text"], text);
    }
    let versions = c.ok("process.versions", json!({}));
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert_eq!(versions["versions"][0]["hash"], hash(&default_process()));
    let v1 = c.ok("process.get", json!({ "version": 1 }));
    assert_eq!(v1["text"], default_process());
    assert_eq!(v1["current"], false);
}

#[test]
fn saving_identical_content_creates_no_version() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    save_truncate(&d.process, &default_process());
    save_rename(&d.process, &default_process());
    // The next notification is the real change, and it is version 2.
    save_truncate(&d.process, &with_description(1));
    let params = expect_reloaded(&mut events);
    assert_eq!(params["version"], 2);
    assert_eq!(params["previous"], 1);
}

#[test]
fn a_rejected_edit_keeps_the_running_version_and_reports_line_and_column() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    let bad = default_process().replacen(
        "activity = \"meeting_held\", actor = \"prospect\"",
        "field = \"budget\", op = \"=>\", value = 1",
        1,
    );
    save_truncate(&d.process, &bad);
    let params = expect_rejected(&mut events);
    assert_eq!(params["version"], 1);
    let e = &params["errors"][0];
    let line_no = bad.lines().position(|l| l.contains("\"=>\"")).unwrap() + 1;
    let column = bad
        .lines()
        .nth(line_no - 1)
        .unwrap()
        .find("\"=>\"")
        .unwrap()
        + 1;
    assert_eq!(
        (
            e["line"].as_u64().unwrap() as usize,
            e["column"].as_u64().unwrap() as usize
        ),
        (line_no, column)
    );
    assert_eq!(e["key"], "stages[1].exit[0].op");
    assert_eq!(e["hint"], "did you mean `>=`?");

    // Still serving version 1, and saying why the edit was refused.
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["process"]["version"], 1);
    assert_eq!(
        status["process"]["last_error"]["errors"][0]["key"],
        "stages[1].exit[0].op"
    );
    assert_eq!(
        c.ok("process.get", json!({}))["last_error"]["errors"][0]["line"],
        line_no
    );
    let id = create(&mut c, "Ada", json!({}));
    let r = record(&mut c, id, "replied");
    assert_eq!(r["moves"][0]["process_version"], 1);

    // A good save clears the error.
    save_rename(&d.process, &with_description(2));
    assert_eq!(expect_reloaded(&mut events)["version"], 2);
    let status = c.ok("daemon.status", json!({}));
    assert!(status["process"]["last_error"].is_null(), "{status}");
    let r = record(&mut c, id, "meeting_held");
    assert_eq!(
        r["moves"][0]["process_version"], 2,
        "later transitions carry the new version"
    );
}

#[test]
fn a_deleted_file_is_reported_and_recreating_it_recovers() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    std::fs::remove_file(&d.process).unwrap();
    let params = expect_rejected(&mut events);
    assert!(
        params["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read `"),
        "{params}"
    );
    assert!(
        params["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{params}"
    );
    d.client().ok("daemon.status", json!({}));
    std::fs::write(&d.process, default_process()).unwrap();
    let params = expect_reloaded(&mut events);
    assert_eq!(
        params["version"], 1,
        "same content as the running version: no new version"
    );
    assert!(d.client().ok("daemon.status", json!({}))["process"]["last_error"].is_null());
}

#[test]
fn a_renamed_stage_keeps_its_prospects_and_their_history() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({ "stage": "research" }));
    record(&mut c, id, "requirements_shared");
    let renamed = default_process().replace(
        "id = \"research\"\nname = \"Research\"",
        "id = \"discovery\"\nname = \"Discovery\"\nrenamed_from = [\"research\"]",
    );
    save_truncate(&d.process, &renamed);
    let params = expect_reloaded(&mut events);
    assert_eq!(params["renamed"], 1);
    assert!(
        params["changes"]
            .as_array()
            .unwrap()
            .contains(&json!("stage `research` renamed to `discovery`")),
        "{params}"
    );
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "discovery");
    assert_eq!(
        p["transitions"][0]["to"], "research",
        "history keeps the id it was recorded under"
    );
    assert_eq!(p["transitions"][0]["process_version"], 1);
    assert_eq!(p["verdicts"][0]["met"], true, "its activities still count");
    let list = c.ok("prospect.list", json!({ "stage": "discovery" }));
    assert_eq!(list["prospects"][0]["id"], id);
    let r = record(&mut c, id, "demo_scheduled");
    assert_eq!(r["moves"][0]["from"], "discovery");
    assert_eq!(r["moves"][0]["process_version"], 2);
}

#[test]
fn a_refused_reload_carries_its_hint_as_data_not_text() {
    let d = Daemon::start();
    let mut c = d.client();
    create(&mut c, "Ada", json!({ "stage": "present" }));
    let text = default_process();
    let start = text.find("[[stages]]\nid = \"present\"").unwrap();
    let end = text.find("[[stages]]\nid = \"close\"").unwrap();
    let without = format!("{}{}", &text[..start], &text[end..]);
    let e = c.err("process.reload", json!({ "text": without }));
    assert_eq!(e["code"], -32005, "{e}");
    let entry = &e["data"]["errors"][0];
    let message = entry["message"].as_str().unwrap();
    assert!(message.contains("still holds 1 open prospect"), "{e}");
    assert!(!message.contains("hint"), "{e}");
    assert!(entry["hint"].as_str().unwrap().contains("[migrate]"), "{e}");
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
}

#[test]
fn removing_a_stage_that_holds_prospects_is_refused_unless_migrated() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    create(&mut c, "Ada", json!({ "stage": "present" }));
    create(&mut c, "Grace", json!({ "stage": "present" }));
    let start = default_process()
        .find("[[stages]]\nid = \"present\"")
        .unwrap();
    let end = default_process()
        .find("[[stages]]\nid = \"close\"")
        .unwrap();
    let without = format!(
        "{}{}",
        &default_process()[..start],
        &default_process()[end..]
    );
    save_truncate(&d.process, &without);
    let params = expect_rejected(&mut events);
    let message = params["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("stage `present` still holds 2 open prospects"),
        "{message}"
    );
    assert!(
        params["errors"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("renamed_from"),
        "{params}"
    );
    assert!(
        !message.contains("hint"),
        "the hint is its own field: {message}"
    );
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
    assert_eq!(
        c.ok("prospect.list", json!({ "stage": "present" }))["prospects"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    save_truncate(
        &d.process,
        &format!("{without}\n[migrate]\npresent = \"close\"\n"),
    );
    let params = expect_reloaded(&mut events);
    assert_eq!(params["migrated"], 2);
    let p = c.ok("prospect.get", json!({ "id": 1 }));
    assert_eq!(p["stage"], "close");
    let t = &p["transitions"][1];
    assert_eq!(
        (t["from"].as_str(), t["to"].as_str(), t["kind"].as_str()),
        (Some("present"), Some("close"), Some("forced"))
    );
    assert_eq!(t["process_version"], 2);
}

#[test]
fn changed_criteria_take_effect_on_reevaluate_stamped_with_the_new_version() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    let waiting = create(
        &mut c,
        "Ada",
        json!({ "stage": "connect", "fields": { "budget": 20000 } }),
    );
    create(&mut c, "Grace", json!({ "stage": "connect" }));
    let easier = default_process().replacen(
        "{ question = \"Did the prospect attend a connect call?\", activity = \"meeting_held\", actor = \"prospect\" }",
        "{ question = \"Budget of at least 10k?\", field = \"budget\", op = \">=\", value = 10000 }",
        1,
    );
    save_truncate(&d.process, &easier);
    assert_eq!(expect_reloaded(&mut events)["version"], 2);
    let r = c.ok("process.reevaluate", json!({}));
    assert_eq!(r["evaluated"], 2);
    assert_eq!(r["moved"], 1);
    assert_eq!(r["process_version"], 2);
    let p = c.ok("prospect.get", json!({ "id": waiting }));
    assert_eq!(p["stage"], "research");
    assert_eq!(p["transitions"][1]["process_version"], 2);
    let out = d.cli(&["process", "diff", "1", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stage `connect`: exit criterion added: \"Budget of at least 10k?\""),
        "{text}"
    );
    assert!(
        text.contains(
            "stage `connect`: exit criterion removed: \"Did the prospect attend a connect call?\""
        ),
        "{text}"
    );
}

#[test]
fn lint_warns_about_the_guides_mistakes() {
    let d = Daemon::start();
    let mut c = d.client();
    let text = default_process().replacen(
        "activity = \"meeting_held\", actor = \"prospect\"",
        "activity = \"call_made\"",
        1,
    );
    let r = c.ok("process.validate", json!({ "text": text }));
    assert_eq!(r["valid"], true);
    let rules: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["rep-action", "not-objective"], "{r}");
    assert_eq!(
        c.ok("process.get", json!({}))["version"],
        1,
        "validate applies nothing"
    );

    let file = d.dir.path().join("candidate.toml");
    std::fs::write(&file, &text).unwrap();
    let out = d.cli(&["lint", file.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("warning[not-objective]"), "{stdout}");
    assert!(stdout.contains("2 warnings"), "{stdout}");
    let out = d.cli(&["lint", "--strict", file.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// A misspelt name would be a criterion, checklist or migration that never
/// does anything: the file is refused with where and what was meant, in
/// `process.validate`, `lint`, `process validate` without a daemon, and a
/// live save (the version in force stays).
#[test]
fn typos_are_refused_with_did_you_mean() {
    let d = Daemon::start();
    let mut c = d.client();
    let cases = [
        (
            "activity = \"contract_signed\"",
            "activity = \"contract_singed\"",
            "activity kind `contract_singed` is not declared in `[activities]`; did you mean `contract_signed`?",
        ),
        (
            "checklists = [\"meddpicc\"",
            "checklists = [\"medpicc\"",
            "no plugin named `medpicc`; did you mean `meddpicc`?",
        ),
    ];
    for (from, to, message) in cases {
        let text = default_process().replacen(from, to, 1);
        assert_ne!(text, default_process(), "{from} is in the default process");
        let r = c.ok("process.validate", json!({ "text": text }));
        assert_eq!(r["valid"], false, "{r}");
        let e = &r["errors"][0];
        assert_eq!(e["message"], message, "{r}");
        let line = text.lines().position(|l| l.contains(to)).unwrap() + 1;
        assert_eq!(e["line"], line, "{r}");

        let file = d.dir.path().join("typo.toml");
        std::fs::write(&file, &text).unwrap();
        for args in [vec!["lint"], vec!["process", "validate"]] {
            let mut args = args.clone();
            args.push(file.to_str().unwrap());
            let out = d.cli(&args);
            assert!(!out.status.success(), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(message), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("typo.toml:{line}:")),
                "{args:?}: {stderr}"
            );
        }
    }
    // No daemon at all: `process validate` still checks the file.
    let alone = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stagecoach"))
            .args([
                "--socket",
                "/nonexistent/stagecoach.sock",
                "process",
                "validate",
            ])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = alone(&d.dir.path().join("typo.toml"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `meddpicc`?"), "{stderr}");
    let good = d.dir.path().join("good.toml");
    std::fs::write(&good, default_process()).unwrap();
    let out = alone(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("valid: 5 stages"), "{stdout}");
    assert!(stdout.contains("no daemon"), "{stdout}");
}

#[test]
fn an_overdue_review_shows_in_lint_and_status() {
    let d = Daemon::start();
    let file = d.dir.path().join("old.toml");
    std::fs::write(&file, default_process()).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(200 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = d.cli(&["lint", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("warning[review-overdue]"), "{stdout}");
    assert!(stdout.contains("has not changed for 200 days"), "{stdout}");
    assert!(d.client().ok("daemon.status", json!({}))["process"]["review"].is_null());
}

#[test]
fn a_save_caught_half_way_is_not_reported_as_rejected() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    // Truncate, pause longer than the debounce, then write: the daemon sees
    // an empty file first.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&d.process)
        .unwrap();
    drop(f);
    std::thread::sleep(std::time::Duration::from_millis(60));
    std::fs::write(&d.process, with_description(7)).unwrap();
    let params = expect_reloaded(&mut events);
    assert_eq!(params["version"], 2);
}

#[test]
fn a_client_can_save_the_process_over_the_socket() {
    let d = Daemon::start();
    let mut events = subscriber(&d);
    let mut c = d.client();
    // A broken text is refused with line and column, and the file is untouched.
    let broken = default_process().replace("stall_after_days = 14", "stall_after_days = \"x\"");
    let e = c.err("process.reload", json!({ "text": broken }));
    assert_eq!(e["code"], -32005, "{e}");
    assert!(e["data"]["errors"][0]["line"].as_u64().unwrap() > 1, "{e}");
    assert_eq!(
        std::fs::read_to_string(&d.process).unwrap(),
        default_process()
    );
    assert_eq!(c.ok("process.get", json!({}))["last_error"], Value::Null);
    // A good one is written to the file and becomes the next version once,
    // although the watcher sees the file change too.
    let text = with_description(1);
    let r = c.ok("process.reload", json!({ "text": text }));
    assert_eq!(r["outcome"], "reloaded", "{r}");
    assert_eq!(r["version"], 2);
    assert_eq!(std::fs::read_to_string(&d.process).unwrap(), text);
    expect_reloaded(&mut events);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let versions = c.ok("process.versions", json!({}));
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );
    assert_eq!(c.ok("process.get", json!({}))["last_error"], Value::Null);
}
