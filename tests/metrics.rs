//! Measuring the process over the real socket: the guide's flow example to
//! the letter, time in stage, conversion, outcomes, stalled prospects,
//! renamed stages, and comparisons between process versions.

use std::str::FromStr;

use serde_json::{Value, json};

use crate::support::{Client, Daemon, create, default_process, figures};

fn at(day: &str) -> String {
    format!("{day}T10:00:00Z")
}

fn row<'a>(r: &'a Value, stage: &str) -> &'a Value {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == stage)
        .unwrap()
}

/// Moves prospect `id` from `present` to `close` at `day` by recording the
/// prospect actions the default process asks for.
fn present_to_close(c: &mut Client, id: u64, day: &str) {
    for kind in ["demo_attended", "proposal_requested"] {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": kind, "at": at(day) }),
        );
    }
}

#[test]
fn the_guides_july_example_comes_out_exactly() {
    // "In July we started with 75 prospects in awaiting demo; we moved 28 on
    // and added 19, leaving 66."
    let d = Daemon::start();
    let mut c = d.client();
    let mut june = Vec::new();
    for i in 0..75 {
        let day = format!("2026-06-{:02}", 1 + i % 28);
        june.push(create(&mut c, &format!("june {i}"), json!({ "stage": "present", "owner": if i % 3 == 0 { "maria" } else { "tom" }, "at": at(&day) })));
    }
    for i in 0..19 {
        let day = format!("2026-07-{:02}", 1 + i);
        create(
            &mut c,
            &format!("july {i}"),
            json!({ "stage": "present", "at": at(&day) }),
        );
    }
    for (i, id) in june.iter().take(28).enumerate() {
        present_to_close(&mut c, *id, &format!("2026-07-{:02}", 2 + i));
    }
    // Noise outside the period must not count.
    present_to_close(&mut c, june[70], "2026-08-03");

    let r = c.ok(
        "metrics.flow",
        json!({ "from": "2026-07-01", "to": "2026-08-01", "stage": "present" }),
    );
    let present = row(&r, "present");
    assert_eq!(
        (
            present["start"].as_i64(),
            present["entered"].as_i64(),
            present["exited"].as_i64(),
            present["end"].as_i64()
        ),
        (Some(75), Some(19), Some(28), Some(66)),
        "{r}"
    );
    assert_eq!(present["exited_by_kind"]["advanced"], 28);

    // Every stage balances, for the whole process.
    let all = c.ok(
        "metrics.flow",
        json!({ "from": "2026-06-15", "to": "2026-08-15" }),
    );
    for r in all["rows"].as_array().unwrap() {
        assert_eq!(
            r["end"].as_i64().unwrap(),
            r["start"].as_i64().unwrap() + r["entered"].as_i64().unwrap()
                - r["exited"].as_i64().unwrap(),
            "{r}"
        );
    }
    assert_eq!(row(&all, "close")["end"], 29);

    // By owner: maria has every third June prospect.
    let maria = c.ok(
        "metrics.flow",
        json!({ "from": "2026-07-01", "to": "2026-08-01", "stage": "present", "owner": "maria" }),
    );
    let m = row(&maria, "present");
    assert_eq!(m["start"], 25);
    assert_eq!(m["exited"], 10, "{m}");

    // The CLI prints the same numbers, as a table, JSON or CSV.
    let out = d.cli(&[
        "metrics", "flow", "--month", "2026-07", "--stage", "present", "--csv",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("stage,start,entered,exited,end"), "{text}");
    assert!(text.contains("present,75,19,28,66"), "{text}");

    // Time in stage for the stays that ended in July: 28 stays.
    let t = c.ok(
        "metrics.time_in_stage",
        json!({ "from": "2026-07-01", "to": "2026-08-01", "stage": "present" }),
    );
    let completed = &row(&t, "present")["completed"];
    assert_eq!(completed["count"], 28);
    assert!(
        completed["median_days"].as_f64().unwrap() > 20.0,
        "{completed}"
    );
}

#[test]
fn conversion_outcomes_and_stalled() {
    let d = Daemon::start();
    let mut c = d.client();
    // Ten prospects enter in March; six reply, three of those meet, one wins,
    // two are lost.
    let ids: Vec<u64> = (0..10)
        .map(|i| create(&mut c, &format!("p{i}"), json!({ "owner": "maria", "at": at("2026-03-02"), "fields": { "amount": 1000 * (i + 1) } })))
        .collect();
    for id in &ids[..6] {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "replied", "at": at("2026-03-05") }),
        );
    }
    for id in &ids[..3] {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "meeting_held", "at": at("2026-03-09") }),
        );
    }
    c.ok(
        "prospect.move",
        json!({ "id": ids[0], "to": "close", "reason": "fast track", "at": at("2026-03-10") }),
    );
    c.ok(
        "activity.record",
        json!({ "prospect": ids[0], "kind": "contract_signed", "at": at("2026-03-22") }),
    );
    c.ok(
        "prospect.close",
        json!({ "id": ids[8], "outcome": "lost", "reason": "no budget", "at": at("2026-03-20") }),
    );
    c.ok(
        "prospect.close",
        json!({ "id": ids[9], "outcome": "lost", "at": at("2026-03-21") }),
    );

    let conv = c.ok(
        "metrics.conversion",
        json!({ "from": "2026-03-01", "to": "2026-04-01" }),
    );
    let direct = &conv["direct"]["rows"];
    assert_eq!(direct[0]["stage"], "prospect");
    assert_eq!(direct[0]["moved_on"], 6);
    assert_eq!(direct[0]["exits"], 8, "6 advanced + 2 lost: {conv}");
    assert!(
        conv["direct"]["label"]
            .as_str()
            .unwrap()
            .contains("direct conversion")
    );
    let reached = &conv["reached"];
    assert_eq!(reached["cohort"], 10);
    let share = |stage: &str| {
        reached["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["stage"] == stage)
            .unwrap()["reached"]
            .clone()
    };
    assert_eq!(share("connect"), 6);
    assert_eq!(share("research"), 3);
    assert_eq!(share("close"), 1);
    assert_eq!(share("won"), 1);

    let o = c.ok(
        "metrics.outcomes",
        json!({ "from": "2026-03-01", "to": "2026-04-01" }),
    );
    assert_eq!((o["won"].as_u64(), o["lost"].as_u64()), (Some(1), Some(2)));
    assert!((o["win_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(o["cycle"]["median_days"], 20.0);
    assert_eq!(o["mean_won_amount"], 1000.0);
    assert_eq!(o["open"], 7);
    // Weighted pipeline: research 0.25 × (2000 + 3000) + connect 0.10 × (4000 + 5000 + 6000) + prospect 0.05 × 7000 + 8000
    let expected = 0.25 * 5000.0 + 0.10 * 15000.0 + 0.05 * 15000.0;
    assert!(
        (o["weighted_pipeline"].as_f64().unwrap() - expected).abs() < 1e-6,
        "{o}"
    );

    // All March activity is long past: every open prospect is stalled.
    let s = c.ok("metrics.stalled", json!({}));
    assert_eq!(s["stalled"].as_array().unwrap().len(), 7, "{s}");
    assert_eq!(s["by_owner"]["maria"], 7);
}

#[test]
fn a_renamed_stage_is_the_same_stage_and_versions_compare() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut events = d.client();
    events.ok("events.subscribe", json!({}));
    for i in 0..4 {
        create(
            &mut c,
            &format!("p{i}"),
            json!({ "stage": "research", "at": at("2026-05-04") }),
        );
    }
    let id = 1;
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "requirements_shared", "at": at("2026-05-06") }),
    );
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "demo_scheduled", "at": at("2026-05-07") }),
    );
    let renamed = default_process().replace(
        "id = \"research\"\nname = \"Research\"",
        "id = \"discovery\"\nname = \"Discovery\"\nrenamed_from = [\"research\"]",
    );
    std::fs::write(&d.process, renamed).unwrap();
    assert_eq!(events.wait_notification("process.reloaded")["version"], 2);
    let r = c.ok(
        "metrics.flow",
        json!({ "from": "2026-05-01", "to": "2026-06-01", "stage": "discovery" }),
    );
    let row = row(&r, "discovery");
    assert_eq!(
        (
            row["start"].as_i64(),
            row["entered"].as_i64(),
            row["exited"].as_i64(),
            row["end"].as_i64()
        ),
        (Some(0), Some(4), Some(1), Some(3)),
        "{r}"
    );

    let cmp = c.ok(
        "metrics.compare",
        json!({ "a": { "from": "2026-05-01", "to": "2026-06-01", "version": 1 }, "b": { "from": "2026-05-01", "to": "2030-01-01", "version": 2 } }),
    );
    assert_eq!(cmp["a"]["version"], 1);
    assert!(cmp["rows"].as_array().unwrap().len() == 5, "{cmp}");
}

#[test]
fn bad_metric_requests_are_refused_clearly() {
    let d = Daemon::start();
    let mut c = d.client();
    let e = c.err(
        "metrics.flow",
        json!({ "from": "2026-08-01", "to": "2026-07-01" }),
    );
    assert_eq!(e["code"], -32602);
    let e = c.err(
        "metrics.flow",
        json!({ "from": "2026-07-01", "to": "2026-08-01", "stage": "nope" }),
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown stage `nope`")
    );
    let e = c.err(
        "metrics.flow",
        json!({ "from": "2026-07-01", "to": "2026-08-01", "version": 9 }),
    );
    assert_eq!(e["code"], -32001);
}

#[test]
fn the_demo_fills_a_daemon_through_the_normal_write_path() {
    let d = Daemon::start();
    let out = d.demo(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("demo: 300 prospects"), "{text}");
    assert!(
        !text.contains("refused"),
        "every demo request passes the criteria: {text}"
    );
    let mut c = d.client();
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["counts"]["prospects"], 300);
    // Real numbers: some won, some lost, every stage balanced.
    let now = jiff::Timestamp::now();
    let from = (now - jiff::SignedDuration::from_hours(24 * 200)).to_string();
    let flow = c.ok(
        "metrics.flow",
        json!({ "from": from, "to": now.to_string() }),
    );
    for r in flow["rows"].as_array().unwrap() {
        assert_eq!(
            r["end"].as_i64().unwrap(),
            r["start"].as_i64().unwrap() + r["entered"].as_i64().unwrap()
                - r["exited"].as_i64().unwrap()
        );
    }
    let o = c.ok(
        "metrics.outcomes",
        json!({ "from": from, "to": now.to_string() }),
    );
    assert!(
        o["won"].as_u64().unwrap() > 0 && o["lost"].as_u64().unwrap() > 0,
        "{o}"
    );
    // One process change mid-way: two versions, the first in force from
    // the start of the history, the second from half-way; the process file
    // says what changed.
    let versions = c.ok("process.versions", json!({}));
    let v = versions["versions"].as_array().unwrap();
    assert_eq!(v.len(), 2, "{versions}");
    let day = 86_400_000i64;
    let ms = |v: &Value| {
        jiff::Timestamp::from_str(v.as_str().unwrap())
            .unwrap()
            .as_millisecond()
    };
    let now_ms = now.as_millisecond();
    let start = now_ms - 180 * day;
    assert!(ms(&v[0]["in_force_from"]) < start + 2 * day, "{versions}");
    let middle = ms(&v[1]["in_force_from"]);
    assert!(
        middle >= start + 90 * day - day && middle < start + 90 * day + 7 * day,
        "{versions}"
    );
    assert_eq!(v[0]["in_force_until"], v[1]["in_force_from"]);
    let file = std::fs::read_to_string(&d.process).unwrap();
    assert!(file.contains("Changed by `stagecoach demo`"), "{file}");
    // History before the change is stamped version 1, after it version 2.
    let cmp = c.ok(
        "metrics.compare",
        json!({ "a": { "from": from, "to": now.to_string(), "version": 1 },
                "b": { "from": from, "to": now.to_string(), "version": 2 } }),
    );
    let research = cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == "research")
        .unwrap()
        .clone();
    assert!(
        research["a"]["flow"]["entered"].as_u64().unwrap() > 0
            && research["b"]["flow"]["entered"].as_u64().unwrap() > 0,
        "{cmp}"
    );

    // The same seed gives the same history; `--keep-process` keeps one version.
    let d2 = Daemon::start();
    let out2 = d2.demo(&["--keep-process"]);
    let t2 = String::from_utf8_lossy(&out2.stdout);
    let counts = |t: &str| t.split(" in ").next().unwrap().to_string();
    assert_eq!(counts(&text), counts(&t2));
    let versions = d2.client().ok("process.versions", json!({}));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn the_report_is_one_self_contained_file_with_the_metrics_numbers() {
    let d = Daemon::start();
    let out = d.cli(&["demo", "--prospects", "400", "--months", "4", "--seed", "5"]);
    assert!(out.status.success());
    let now = jiff::Timestamp::now();
    let from = (now - jiff::SignedDuration::from_hours(24 * 90)).to_string();
    let file = d.dir.path().join("report.html");
    let out = d.cli(&[
        "report",
        "--from",
        &from,
        "--to",
        &now.to_string(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(!html.contains("http"), "self-contained: nothing fetched");
    for section in [
        "Funnel",
        "Flow per stage",
        "Time in stage",
        "Conversion between stages",
        "Twelve months",
        "Why deals were lost",
        "Stalled deals",
        "Scorecard per rep",
        "Latest process change",
    ] {
        assert!(html.contains(section), "{section}");
    }
    assert!(html.matches("<svg").count() >= 4);
    // The flow table carries exactly the numbers metrics.flow answers.
    let mut c = d.client();
    let flow = c.ok(
        "metrics.flow",
        json!({ "from": from, "to": now.to_string() }),
    );
    let figs = figures(&html);
    for r in flow["rows"].as_array().unwrap() {
        let stage = r["stage"].as_str().unwrap();
        for k in ["start", "entered", "exited", "end"] {
            let shown: i64 = figs[&format!("flow.{stage}.{k}")].parse().unwrap();
            assert_eq!(Some(shown), r[k].as_i64(), "{stage} {k}");
        }
    }
}
