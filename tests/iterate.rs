//! Knowing whether a process change helped: significance in `metrics
//! compare`, at stated sample sizes.

use serde_json::{Value, json};

use crate::support::*;

/// `n` prospects created in connect in `month`: `advanced` of them attend a
/// meeting after `days`, the rest are lost after `days`.
fn month(c: &mut Client, month: &str, n: u32, advanced: u32, days: i64) {
    for i in 0..n {
        let day = 2 + i % 20;
        let created = format!("{month}-{day:02}T09:00:00Z");
        let id = create(
            c,
            &format!("{month} #{i}"),
            json!({ "stage": "connect", "at": created }),
        );
        let then = format!("{month}-{:02}T09:00:00Z", day as i64 + days);
        if i < advanced {
            c.ok(
                "activity.record",
                json!({ "prospect": id, "kind": "meeting_held", "actor": "prospect", "at": then }),
            );
        } else {
            c.ok(
                "prospect.close",
                json!({ "id": id, "outcome": "lost", "reason": "no fit", "at": then }),
            );
        }
    }
}

fn connect(cmp: &Value) -> Value {
    cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == "connect")
        .unwrap()["significance"]
        .clone()
}

fn period(m: &str, next: &str) -> Value {
    json!({ "from": format!("{m}-01"), "to": format!("{next}-01") })
}

#[test]
fn compare_calls_a_real_difference_real_and_a_null_one_noise() {
    let d = Daemon::start();
    let mut c = d.client();
    month(&mut c, "2026-05", 5, 4, 1); // too few
    month(&mut c, "2026-06", 30, 24, 1); // a
    month(&mut c, "2026-07", 30, 8, 7); // a real change: fewer move on, later
    month(&mut c, "2026-08", 30, 23, 1); // no change
    let a = period("2026-06", "2026-07");

    let real = c.ok(
        "metrics.compare",
        json!({ "a": a, "b": period("2026-07", "2026-08") }),
    );
    let s = connect(&real);
    assert_eq!(
        (
            s["conversion"]["n_a"].as_u64(),
            s["conversion"]["n_b"].as_u64()
        ),
        (Some(30), Some(30)),
        "{s:#}"
    );
    assert_eq!(
        s["conversion"]["verdict"], "likely real",
        "24/30 against 8/30: {s:#}"
    );
    let (lo, hi) = (
        s["conversion"]["interval"][0].as_f64().unwrap(),
        s["conversion"]["interval"][1].as_f64().unwrap(),
    );
    assert!(hi < 0.0 && lo > -1.0, "b − a is below 0: {lo} {hi}");
    assert!((s["conversion"]["difference"].as_f64().unwrap() - (8.0 - 24.0) / 30.0).abs() < 1e-9);
    assert_eq!(
        s["time_in_stage"]["verdict"], "likely real",
        "1 day against 7: {s:#}"
    );
    assert!(s["time_in_stage"]["p_value"].as_f64().unwrap() < 0.001);
    assert_eq!(s["time_in_stage"]["difference"], 6.0);

    let null = c.ok(
        "metrics.compare",
        json!({ "a": a, "b": period("2026-08", "2026-09") }),
    );
    let s = connect(&null);
    assert_eq!(
        s["conversion"]["verdict"], "could be noise",
        "24/30 against 23/30: {s:#}"
    );
    assert_eq!(s["time_in_stage"]["verdict"], "could be noise", "{s:#}");

    let few = c.ok(
        "metrics.compare",
        json!({ "a": a, "b": period("2026-05", "2026-06") }),
    );
    let s = connect(&few);
    assert_eq!(s["conversion"]["verdict"], "too few to tell", "{s:#}");
    assert_eq!(s["conversion"]["n_b"], 5);

    // Losses are closes: the win rates are 0 of 6 and 0 of 22 won.
    assert_eq!(
        real["win_rate"]["a"],
        json!([0, 6]),
        "{:#}",
        real["win_rate"]
    );
    assert_eq!(real["win_rate"]["b"], json!([0, 22]));

    let out = d.cli(&["metrics", "compare", "--a", "2026-06", "--b", "2026-07"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Connect (connect)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("80.0% / 26.7%") && line.contains("likely real"),
        "{line}"
    );
}

/// The default process and its tests in `dir`, the plugin paths pointing at
/// the test build.
fn with_tests(dir: &std::path::Path, process: &str) -> std::path::PathBuf {
    let file = dir.join("process.toml");
    std::fs::write(&file, process).unwrap();
    let tests = std::fs::read_to_string(repo_root().join("process.test.toml")).unwrap();
    std::fs::write(dir.join("process.test.toml"), tests).unwrap();
    file
}

/// Research exits on the requirements alone: the case that expects it to
/// wait for a demo date fails.
fn broken() -> String {
    default_process().replacen(
        "  { question = \"Did the prospect accept a demo date?\", activity = \"demo_scheduled\", actor = \"prospect\" },\n",
        "",
        1,
    )
}

#[test]
fn process_tests_pass_fail_with_expected_and_actual_and_guard_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = with_tests(dir.path(), &default_process());
    let run = |args: &[&str]| {
        std::process::Command::new(bin())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["test", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("6 cases, 6 passed, 0 failed"), "{text}");

    assert_ne!(broken(), default_process());
    std::fs::write(&file, broken()).unwrap();
    let out = run(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("FAIL  research waits for both the requirements and a demo date"),
        "{text}"
    );
    assert!(
        text.contains("expected stage `research`, got `present`"),
        "expected and actual: {text}"
    );
    assert!(text.contains("5 passed, 1 failed"), "{text}");
    let junit = dir.path().join("junit.xml");
    let out = run(&[
        "test",
        file.to_str().unwrap(),
        "--format",
        "junit",
        "--out",
        junit.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=") && xml.contains("tests=\"6\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"expected stage `research`, got `present`\">"),
        "{xml}"
    );
    let out = run(&["lint", file.to_str().unwrap()]);
    assert!(!out.status.success(), "lint runs the tests too");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("process.test.toml:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Live: an edit that breaks a case is refused, the version stays.
    let mut d = Daemon::prepare(&default_process());
    std::fs::write(
        d.dir.path().join("process.test.toml"),
        std::fs::read_to_string(repo_root().join("process.test.toml")).unwrap(),
    )
    .unwrap();
    d.spawn(&[]);
    let mut c = d.client();
    let e = c.err("process.reload", json!({ "text": broken() }));
    assert_eq!(e["code"], -32005, "{e}");
    let err = &e["data"]["errors"][0];
    assert!(
        err["file"].as_str().unwrap().ends_with("process.test.toml"),
        "{e}"
    );
    assert_eq!(
        err["key"],
        "case \"research waits for both the requirements and a demo date\""
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("expected stage `research`, got `present`"),
        "{e}"
    );
    assert!(err["line"].as_u64().unwrap() > 1);
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
    // An edit the cases still pass goes in.
    let fine = default_process().replacen("stall_after_days = 30", "stall_after_days = 25", 1);
    assert_eq!(
        c.ok("process.reload", json!({ "text": fine }))["version"],
        2
    );
}
