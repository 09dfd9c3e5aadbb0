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
    // The refused text never reached the file: it holds the version in force.
    assert_eq!(
        std::fs::read_to_string(&d.process).unwrap(),
        default_process(),
        "a refused edit left in the process file"
    );
    // An edit the cases still pass goes in.
    let fine = default_process().replacen("stall_after_days = 30", "stall_after_days = 25", 1);
    assert_eq!(
        c.ok("process.reload", json!({ "text": fine }))["version"],
        2
    );
}

#[test]
fn an_edit_over_the_socket_can_change_the_tests_with_the_process_and_the_demo_does() {
    let mut d = Daemon::prepare(&default_process());
    let tests_file = d.dir.path().join("process.test.toml");
    let shipped = std::fs::read_to_string(repo_root().join("process.test.toml")).unwrap();
    std::fs::write(&tests_file, &shipped).unwrap();
    d.spawn(&[]);
    let mut c = d.client();
    // process.get carries the tests as they are.
    assert_eq!(c.ok("process.get", json!({}))["tests"], shipped);
    // Tests without a text are refused: they are checked against one.
    let e = c.err("process.reload", json!({ "tests": shipped }));
    assert_eq!(e["code"], -32602, "{e}");
    // A text with tests that fail under it: refused, neither file touched.
    let failing = shipped.replace(
        "expect = { stage = \"close\", status = \"won\" }",
        "expect = { stage = \"close\", status = \"lost\" }",
    );
    assert_ne!(failing, shipped);
    // (a text the shipped tests pass: the given tests are what refuse it)
    let fine = default_process().replacen("stall_after_days = 30", "stall_after_days = 25", 1);
    let e = c.err("process.reload", json!({ "text": fine, "tests": failing }));
    assert_eq!(e["code"], -32005, "{e}");
    assert_eq!(
        e["data"]["errors"][0]["key"], "case \"signing the contract wins the deal\"",
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&tests_file).unwrap(), shipped);
    assert_eq!(
        std::fs::read_to_string(&d.process).unwrap(),
        default_process()
    );

    // The demo's mid-way change contradicts a shipped case: it changes the
    // case with the process, and both files say so afterwards.
    let out = d.demo(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("the process changed (version 2)")
            && text.contains("so does the test case that pinned the old rule"),
        "{text}"
    );
    assert_eq!(c.ok("process.get", json!({}))["version"], 2);
    let tests_now = std::fs::read_to_string(&tests_file).unwrap();
    assert!(
        !tests_now.contains("research waits for both"),
        "{tests_now}"
    );
    assert!(tests_now.contains("research exits on the requirements alone"));
    assert_eq!(c.ok("process.get", json!({}))["tests"], tests_now);
    // A text the writer refuses (it drops a stage that holds prospects)
    // puts both files back as they were.
    let text_now = std::fs::read_to_string(&d.process).unwrap();
    let close = text_now
        .find("[[stages]]\nid = \"close\"")
        .expect("a close stage");
    let e = c.err(
        "process.reload",
        json!({ "text": &text_now[..close], "tests": tests_now }),
    );
    assert_eq!(e["code"], -32005, "{e}");
    assert!(e.to_string().contains("close"), "{e}");
    assert_eq!(std::fs::read_to_string(&d.process).unwrap(), text_now);
    assert_eq!(c.ok("process.get", json!({}))["version"], 2);
    let out = std::process::Command::new(bin())
        .arg("test")
        .arg(&d.process)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}");
    assert!(report.contains("6 cases, 6 passed, 0 failed"), "{report}");

    // Tests it cannot reconcile: the demo says why and writes the history
    // under the version in force.
    let mut d = Daemon::prepare(&default_process());
    let pinned = shipped.replace(
        "name = \"research waits for both the requirements and a demo date\"",
        "name = \"our own rule: a demo date before present\"",
    );
    std::fs::write(d.dir.path().join("process.test.toml"), &pinned).unwrap();
    d.spawn(&[]);
    let out = d.demo(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no process change: the daemon refused the mid-way change")
            && text.contains("our own rule: a demo date before present"),
        "{text}"
    );
    let mut c = d.client();
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
    assert_eq!(
        std::fs::read_to_string(&d.process).unwrap(),
        default_process()
    );
    assert!(c.ok("daemon.status", json!({}))["counts"]["prospects"].as_u64() > Some(0));
}

/// The default process with two warn-mode criteria on `present`.
fn shadowed() -> String {
    let anchor = "{ question = \"Did the prospect ask for a proposal?\", activity = \"proposal_requested\", actor = \"prospect\" },";
    default_process().replacen(
        anchor,
        &format!("{anchor}\n  {{ question = \"Economic buyer met?\", activity = \"economic_buyer_met\", actor = \"prospect\", mode = \"warn\" }},\n  {{ question = \"Sponsor agreed?\", activity = \"sponsor_agreed\", actor = \"prospect\", mode = \"warn\" }},"),
        1,
    )
}

#[test]
fn warn_criteria_block_nobody_record_breaches_and_tell_what_predicts_winning() {
    let d = Daemon::start_with(&shadowed());
    let mut c = d.client();
    // Forty deals through present. Meeting the economic buyer goes with
    // winning (16 of 20 against 4 of 20); a sponsor does not (half win
    // either way).
    for i in 0..40u32 {
        let day = 2 + i % 20;
        let t = |h: u32| format!("2026-09-{day:02}T{h:02}:00:00Z");
        let id = create(
            &mut c,
            &format!("Deal {i}"),
            json!({ "stage": "present", "at": t(8) }),
        );
        let buyer = i < 20;
        let sponsor = i % 2 == 0;
        let won = if buyer { i % 5 != 0 } else { i % 5 == 0 };
        let mut kinds = vec!["demo_attended"];
        if buyer {
            kinds.push("economic_buyer_met");
        }
        if sponsor {
            kinds.push("sponsor_agreed");
        }
        kinds.push("proposal_requested");
        for (j, k) in kinds.iter().enumerate() {
            c.ok(
                "activity.record",
                json!({ "prospect": id, "kind": k, "actor": "prospect", "at": t(9 + j as u32) }),
            );
        }
        let p = c.ok("prospect.get", json!({ "id": id }));
        assert_eq!(p["stage"], "close", "a warn criterion holds nobody: {p}");
        if i == 25 {
            // The move records the breach; prospect.get shows the mode.
            let moved = p["transitions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["to"] == "close")
                .unwrap();
            let v = moved["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["question"] == "Economic buyer met?")
                .unwrap();
            assert_eq!(
                (v["met"].clone(), v["warn"].clone()),
                (json!(false), json!(true)),
                "{moved}"
            );
        }
        if won {
            c.ok("activity.record", json!({ "prospect": id, "kind": "contract_signed", "actor": "prospect", "at": t(20) }));
        } else {
            c.ok(
                "prospect.close",
                json!({ "id": id, "outcome": "lost", "reason": "no decision", "at": t(20) }),
            );
        }
    }
    let r = c.ok(
        "metrics.criteria",
        json!({ "from": "2026-09-01", "to": "2026-10-01" }),
    );
    assert_eq!(r["closed"], 40);
    let row = |name: &str| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {r:#}"))
            .clone()
    };
    let buyer = row("Economic buyer met?");
    assert_eq!(
        (buyer["met"].clone(), buyer["unmet"].clone()),
        (json!([16, 4]), json!([4, 16])),
        "{buyer:#}"
    );
    assert_eq!(buyer["mode"], "warn");
    assert_eq!(buyer["verdict"], "predicts winning", "{buyer:#}");
    assert_eq!(
        buyer["breaches"], 20,
        "every deal without the buyer moved on anyway"
    );
    assert_eq!(buyer["breached_fate"], json!([4, 16, 0]));
    let sponsor = row("Sponsor agreed?");
    assert_eq!(
        (sponsor["met"].clone(), sponsor["unmet"].clone()),
        (json!([10, 10]), json!([10, 10])),
        "{sponsor:#}"
    );
    assert_eq!(
        sponsor["verdict"], "does not predict winning",
        "{sponsor:#}"
    );
    // An enforced criterion everyone met tells nothing: nobody is unmet.
    assert_eq!(
        row("Did the prospect attend the demo?")["verdict"],
        "too few to tell"
    );

    let out = d.cli(&["metrics", "criteria", "--month", "2026-09"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Economic buyer met?"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("predicts winning")
            && line.contains("80.0% / 20.0%")
            && line.contains("20 (now 4 won, 16 lost, 0 open)"),
        "{line}"
    );

    // Enforcing it is an ordinary edit: a new version that holds.
    let enforced = shadowed().replacen(
        "actor = \"prospect\", mode = \"warn\" },\n  { question = \"Sponsor",
        "actor = \"prospect\" },\n  { question = \"Sponsor",
        1,
    );
    assert_ne!(enforced, shadowed());
    assert_eq!(
        c.ok("process.reload", json!({ "text": enforced }))["version"],
        2
    );
    let id = create(&mut c, "After", json!({ "stage": "present" }));
    for k in ["demo_attended", "proposal_requested"] {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": k, "actor": "prospect" }),
        );
    }
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "present", "enforced now: {p}");
}

#[test]
fn conformance_says_who_decided_each_move() {
    let d = Daemon::start_with(&shadowed());
    let mut c = d.client();
    let t = |day: u32| format!("2026-09-{day:02}T10:00:00Z");
    let mut ids = Vec::new();
    for (i, owner) in ["maria", "maria", "tom", "tom", "tom"].iter().enumerate() {
        let id = create(
            &mut c,
            &format!("D{i}"),
            json!({ "stage": "connect", "owner": owner, "at": t(1) }),
        );
        ids.push(id);
    }
    // Two follow the criteria; two are forced on, for reasons; one is lost.
    for id in &ids[..2] {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "meeting_held", "actor": "prospect", "at": t(3) }),
        );
    }
    c.ok(
        "prospect.move",
        json!({ "id": ids[2], "to": "research", "reason": "met at a conference", "at": t(4) }),
    );
    c.ok(
        "prospect.move",
        json!({ "id": ids[3], "to": "present", "reason": "met at a conference", "at": t(4) }),
    );
    c.ok(
        "prospect.close",
        json!({ "id": ids[4], "outcome": "lost", "reason": "no budget", "at": t(5) }),
    );
    // In present, the warn criteria are breached when the deal moves on.
    for k in ["demo_attended", "proposal_requested"] {
        c.ok(
            "activity.record",
            json!({ "prospect": ids[3], "kind": k, "actor": "prospect", "at": t(6) }),
        );
    }
    let r = c.ok(
        "metrics.conformance",
        json!({ "from": "2026-09-01", "to": "2026-10-01" }),
    );
    let row = |list: &str, key: &str| {
        r[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["key"] == key)
            .unwrap()
            .clone()
    };
    let connect = row("stages", "connect");
    assert_eq!(
        (
            connect["by_criteria"].as_u64(),
            connect["forced"].as_u64(),
            connect["lost"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{r:#}"
    );
    let present = row("stages", "present");
    assert_eq!(
        (
            present["by_criteria"].as_u64(),
            present["breaches"].as_u64()
        ),
        (Some(1), Some(2)),
        "two warn criteria unmet on one move"
    );
    let tom = row("owners", "tom");
    assert_eq!(
        (
            tom["by_criteria"].as_u64(),
            tom["forced"].as_u64(),
            tom["lost"].as_u64()
        ),
        (Some(1), Some(2), Some(1))
    );
    assert_eq!(
        r["forced_reasons"],
        json!([{ "reason": "met at a conference", "count": 2 }])
    );

    let out = d.cli(&["metrics", "conformance", "--month", "2026-09"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Connect"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = line
        .split('┆')
        .map(|x| x.trim().trim_matches('│').trim())
        .collect();
    assert_eq!(&cells[1..4], ["2", "50.0%", "2"], "{line}");
    assert!(text.contains("met at a conference"), "{text}");
}

#[test]
fn criteria_read_fields_as_they_were_when_the_deal_left_the_stage() {
    // A warn-mode budget criterion on connect.
    let anchor = "{ question = \"Did the prospect attend a connect call?\", activity = \"meeting_held\", actor = \"prospect\" },";
    let text = default_process().replacen(
        anchor,
        &format!("{anchor}\n  {{ question = \"Budget of 10k?\", field = \"budget\", op = \">=\", value = 10000, mode = \"warn\" }},"),
        1,
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    for i in 0..20u32 {
        let t = |h: u32| format!("2026-09-{:02}T{h:02}:00:00Z", 2 + i % 20);
        let rich = i < 10;
        let budget = if rich { 20000 } else { 5000 };
        let id = create(
            &mut c,
            &format!("D{i}"),
            json!({ "stage": "connect", "at": t(8), "fields": { "budget": budget } }),
        );
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "meeting_held", "actor": "prospect", "at": t(9) }),
        );
        // Later every deal's budget reads 20,000: hindsight must not count.
        c.ok(
            "prospect.update",
            json!({ "id": id, "fields": { "budget": 20000 }, "at": t(10) }),
        );
        if rich {
            c.ok(
                "prospect.move",
                json!({ "id": id, "to": "close", "reason": "fast track", "at": t(11) }),
            );
            c.ok("activity.record", json!({ "prospect": id, "kind": "contract_signed", "actor": "prospect", "at": t(12) }));
        } else {
            c.ok(
                "prospect.close",
                json!({ "id": id, "outcome": "lost", "reason": "no budget", "at": t(12) }),
            );
        }
    }
    let r = c.ok(
        "metrics.criteria",
        json!({ "from": "2026-09-01", "to": "2026-10-01" }),
    );
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Budget of 10k?")
        .unwrap();
    assert_eq!(
        (row["met"].clone(), row["unmet"].clone()),
        (json!([10, 0]), json!([0, 10])),
        "{row:#}"
    );
    assert_eq!(row["verdict"], "predicts winning");
}
