//! `process.simulate`: a draft replayed over the stored history, in a
//! scratch store, before it goes live.

use serde_json::{Value, json};

use crate::support::*;

/// The default process with `present` also asking for the economic buyer.
fn stricter() -> String {
    let text = default_process();
    let anchor = "{ question = \"Did the prospect ask for a proposal?\", activity = \"proposal_requested\", actor = \"prospect\" },";
    assert!(text.contains(anchor));
    text.replacen(
        anchor,
        &format!("{anchor}\n  {{ question = \"Did the economic buyer take part?\", activity = \"economic_buyer_met\", actor = \"prospect\" }},"),
        1,
    )
}

fn at(day: u32) -> String {
    format!("2026-10-{day:02}T10:00:00Z")
}

#[test]
fn a_stricter_criterion_holds_exactly_the_prospects_that_lack_it() {
    let d = Daemon::start();
    let mut c = d.client();
    // Twelve deals reach close; five of them had the economic buyer.
    let mut with_buyer = Vec::new();
    let mut without = Vec::new();
    for i in 0..12u32 {
        let id = create(
            &mut c,
            &format!("Deal {i}"),
            json!({ "stage": "present", "at": at(1), "owner": "maria" }),
        );
        let mut kinds = vec!["demo_attended", "proposal_requested"];
        if i < 5 {
            kinds.insert(0, "economic_buyer_met");
            with_buyer.push(id);
        } else {
            without.push(id);
        }
        for (j, kind) in kinds.iter().enumerate() {
            c.ok("activity.record", json!({ "prospect": id, "kind": kind, "actor": "prospect", "at": at(2 + j as u32) }));
        }
        assert_eq!(c.ok("prospect.get", json!({ "id": id }))["stage"], "close");
    }
    // One is forced back by a person: the replay keeps that as recorded.
    c.ok(
        "prospect.move",
        json!({ "id": without[0], "to": "present", "reason": "contract on hold", "at": at(9) }),
    );
    let before = c.ok("daemon.status", json!({}))["counts"].clone();

    let r = c.ok(
        "process.simulate",
        json!({ "text": stricter(), "from": "2026-10-01", "to": "2026-11-01" }),
    );
    assert_eq!(r["replayed"]["prospects"], 12, "{r:#}");
    assert_eq!(r["replayed"]["forced_moves"], 1);
    let held: Vec<u64> = r["moved"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["change"] == "held back")
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        held,
        without[1..].to_vec(),
        "exactly the ones without the buyer, not the one already moved back: {r:#}"
    );
    for m in r["moved"].as_array().unwrap() {
        assert_eq!(
            (m["actual_stage"].as_str(), m["simulated_stage"].as_str()),
            (Some("close"), Some("present"))
        );
    }
    assert_eq!(r["changes"], json!({ "held back": 6 }));
    let stage = |rows: &Value, s: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(
        stage(&r["stages"], "present"),
        json!({ "stage": "present", "name": "Present", "actual": 1, "simulated": 7 })
    );
    assert_eq!(stage(&r["stages"], "close")["simulated"], 5);
    // The new criterion holds the seven in present (the forced one too).
    let buyer = r["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["question"] == "Did the economic buyer take part?")
        .unwrap();
    assert_eq!(buyer["holding"], 7, "{buyer}");
    // Figures in metrics' shapes, side by side: present let 12 out, now 5.
    let present_actual = stage(&r["actual"]["flow"]["rows"], "present");
    let present_sim = stage(&r["simulated"]["flow"]["rows"], "present");
    assert_eq!(
        (
            present_actual["entered"].as_i64(),
            present_actual["exited"].as_i64()
        ),
        (Some(13), Some(12))
    );
    assert_eq!(
        (
            present_sim["entered"].as_i64(),
            present_sim["exited"].as_i64()
        ),
        (Some(12), Some(5))
    );
    assert_eq!(
        r["actual"]["flow"],
        c.ok(
            "metrics.flow",
            json!({ "from": "2026-10-01", "to": "2026-11-01" })
        ),
        "the actual side is metrics.flow's answer"
    );

    // Nothing of it touched the database.
    assert_eq!(c.ok("daemon.status", json!({}))["counts"], before);
    assert_eq!(c.ok("process.get", json!({}))["version"], 1);
    assert!(
        std::fs::read_dir(d.data_dir()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("simulate")),
        "the scratch store is gone"
    );

    // The command line says the same.
    let draft = d.dir.path().join("draft.toml");
    std::fs::write(&draft, stricter()).unwrap();
    let out = d.cli(&[
        "process",
        "simulate",
        draft.to_str().unwrap(),
        "--month",
        "2026-10",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("would stand differently: 6 held back"),
        "{text}"
    );
    assert!(text.contains("replayed 12 prospects"), "{text}");

    // A draft that renames a stage counts today's prospects under its id.
    let renamed = default_process().replacen(
        "id = \"close\"\nname = \"Close\"",
        "id = \"negotiate\"\nname = \"Negotiate\"\nrenamed_from = [\"close\"]",
        1,
    );
    let r = c.ok("process.simulate", json!({ "text": renamed }));
    let negotiate = stage(&r["stages"], "negotiate");
    assert_eq!(
        (
            negotiate["actual"].as_u64(),
            negotiate["simulated"].as_u64()
        ),
        (Some(11), Some(11)),
        "{r:#}"
    );
    assert!(
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["stage"] != "close"),
        "{r:#}"
    );
    assert_eq!(r["moved_total"], 0);

    // A draft that does not validate is refused as a reload is.
    let broken = stricter().replacen(
        "activity = \"economic_buyer_met\"",
        "activity = \"economic_buyer_mett\"",
        1,
    );
    let e = c.err(
        "process.simulate",
        json!({ "text": broken, "file": "draft.toml" }),
    );
    assert_eq!(e["code"], -32005, "{e}");
    let err = &e["data"]["errors"][0];
    assert_eq!(err["file"], "draft.toml");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `economic_buyer_met`?"),
        "{e}"
    );
    assert!(err["line"].as_u64().unwrap() > 0);
}

#[test]
fn field_changes_are_replayed_at_their_own_times() {
    let d = Daemon::start();
    let mut c = d.client();
    let record = |c: &mut Client, id: u64, budget: i64| {
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "meeting_held", "actor": "prospect", "at": at(2) }),
        );
        c.ok(
            "prospect.update",
            json!({ "id": id, "fields": { "budget": budget }, "at": at(10) }),
        );
    };
    // Ada's budget reaches 10,000 on day 10; Bo's was 20,000 from creation
    // and was cut on day 10: the replay must start Bo with it.
    let ada = create(
        &mut c,
        "Ada",
        json!({ "stage": "connect", "at": at(1), "fields": { "budget": 5000 } }),
    );
    record(&mut c, ada, 20000);
    let bo = create(
        &mut c,
        "Bo",
        json!({ "stage": "connect", "at": at(1), "fields": { "budget": 20000 } }),
    );
    record(&mut c, bo, 5000);
    // The draft also asks for a budget of 10,000.
    let draft = default_process().replacen(
        "{ question = \"Did the prospect attend a connect call?\", activity = \"meeting_held\", actor = \"prospect\" },",
        "{ question = \"Did the prospect attend a connect call?\", activity = \"meeting_held\", actor = \"prospect\" },\n  { question = \"Budget of 10k?\", field = \"budget\", op = \">=\", value = 10000 },",
        1,
    );
    let r = c.ok(
        "process.simulate",
        json!({ "text": draft, "from": "2026-10-01", "to": "2026-11-01" }),
    );
    let stays = |side: &str, what: &str| {
        r[side]["time_in_stage"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == "connect")
            .unwrap()["completed"][what]
            .clone()
    };
    assert_eq!(
        (stays("actual", "median_days"), stays("actual", "p90_days")),
        (json!(1.0), json!(1.0)),
        "{r:#}"
    );
    // Bo left on day 2 as he did (1 day), Ada only on day 10 (9 days).
    assert_eq!(
        (
            stays("simulated", "median_days"),
            stays("simulated", "p90_days")
        ),
        (json!(1.0), json!(9.0)),
        "{r:#}"
    );
    assert_eq!(r["moved_total"], 0, "both end where they are: {r:#}");
    assert_eq!(
        r["warnings"],
        json!([]),
        "every change says what it replaced: {r:#}"
    );
}

#[test]
fn a_rename_the_file_no_longer_mentions_still_maps_the_history() {
    let d = Daemon::start();
    let mut c = d.client();
    for i in 0..3 {
        let id = create(
            &mut c,
            &format!("R{i}"),
            json!({ "stage": "research", "at": at(1) }),
        );
        c.ok(
            "prospect.close",
            json!({ "id": id, "outcome": "lost", "reason": "no fit", "at": at(3) }),
        );
    }
    let renamed = default_process().replacen(
        "id = \"research\"\nname = \"Research\"",
        "id = \"qualify\"\nname = \"Qualify\"\nrenamed_from = [\"research\"]",
        1,
    );
    assert_eq!(
        c.ok("process.reload", json!({ "text": renamed.clone() }))["version"],
        2
    );
    // A later draft drops the `renamed_from` line: the store still knows.
    let draft = renamed.replacen("renamed_from = [\"research\"]\n", "", 1);
    assert_ne!(draft, renamed);
    let r = c.ok(
        "process.simulate",
        json!({ "text": draft, "from": "2026-10-01", "to": "2026-11-01" }),
    );
    assert_eq!(r["warnings"], json!([]), "{r:#}");
    let qualify = r["simulated"]["flow"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "qualify")
        .unwrap();
    assert_eq!(
        (qualify["entered"].as_i64(), qualify["exited"].as_i64()),
        (Some(3), Some(3)),
        "{qualify}"
    );
}

/// The process in force, simulated over its own history, projects exactly
/// the figures it has: the replay's scratch store (counters and day
/// summaries written once at its end, the time-keyed rows in key order,
/// none of the live store's indexes) answers flow, time in stage,
/// conversion and outcomes as the live store, kept move by move, does.
#[test]
fn the_process_in_force_simulated_projects_exactly_what_happened() {
    let d = Daemon::start();
    let mut c = d.client();
    let path = [
        "replied",
        "meeting_held",
        "requirements_shared",
        "demo_scheduled",
        "demo_attended",
        "proposal_requested",
        "contract_signed",
    ];
    let owners = ["maria", "lee", "sam"];
    for i in 0..40u32 {
        let created = 1 + i % 9;
        let id = create(
            &mut c,
            &format!("Deal {i}"),
            json!({ "at": at(created), "owner": owners[i as usize % 3], "fields": { "amount": 1000 + i * 250 } }),
        );
        // Deal i gets i % 8 steps along the path, a day apart, with the
        // rep's emails in between that move nothing.
        let steps = (i % 8) as usize;
        for (j, kind) in path.iter().take(steps).enumerate() {
            let day = created + 1 + j as u32 * 2;
            c.ok(
                "activity.record",
                json!({ "prospect": id, "kind": "email_sent", "actor": "rep", "at": at(day) }),
            );
            c.ok(
                "activity.record",
                json!({ "prospect": id, "kind": kind, "actor": "prospect", "at": at(day + 1) }),
            );
        }
        let now = c.ok("prospect.get", json!({ "id": id }));
        let open = now["status"] == "open";
        if open && i % 5 == 1 {
            c.ok(
                "prospect.close",
                json!({ "id": id, "outcome": "lost", "reason": if i % 2 == 0 { "budget" } else { "timing" }, "at": at(25) }),
            );
        } else if open && i % 7 == 3 && now["stage"] != "prospect" {
            c.ok(
                "prospect.move",
                json!({ "id": id, "to": "prospect", "reason": "went quiet", "at": at(26) }),
            );
        }
    }
    let r = c.ok(
        "process.simulate",
        json!({ "text": default_process(), "from": "2026-10-01", "to": "2026-11-01" }),
    );
    assert_eq!(r["replayed"]["prospects"], 40, "{r:#}");
    assert_eq!(r["moved_total"], 0, "{r:#}");
    let won = r["actual"]["outcomes"]["won"].as_u64().unwrap();
    let lost = r["actual"]["outcomes"]["lost"].as_u64().unwrap();
    assert!(won > 0 && lost > 0, "the history closes deals both ways");
    for shape in ["flow", "time_in_stage", "conversion", "outcomes"] {
        assert_eq!(
            r["simulated"][shape], r["actual"][shape],
            "{shape}: the replay under the same process differs"
        );
    }
}

/// A daemon killed while simulating leaves its scratch store behind (up to
/// ~1 GiB per million prospects); the next start removes it, and only
/// files of exactly that name whose process is gone.
#[test]
fn a_scratch_store_left_by_a_killed_daemon_is_removed_at_the_next_start() {
    let mut d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    d.kill9();
    let data = d.data_dir();
    // 4194305: above the largest process id Linux gives (PID_MAX_LIMIT).
    let left = [
        "simulate-4194305.redb",
        "simulate-4194305-3.redb",
        "process-tests-4194305-0.redb",
    ];
    // A running process's (this test's), and names that are not ours.
    let live = format!("simulate-{}-0.redb", std::process::id());
    let kept = [
        live.as_str(),
        "simulate-notes.txt",
        "my-simulate-1.redb",
        "simulate-4194305-x.redb",
        "process-tests-4194305.redb",
    ];
    for name in left.iter().chain(&kept) {
        std::fs::write(data.join(name), b"left behind").unwrap();
    }
    d.spawn(&[]);
    let mut c = d.client();
    assert_eq!(c.ok("prospect.get", json!({ "id": id }))["name"], "Ada");
    for name in left {
        assert!(!data.join(name).exists(), "{name} is still there");
    }
    for name in kept {
        assert!(data.join(name).exists(), "{name} was removed");
    }
    assert!(
        d.log_text()
            .contains("removed a scratch store a stopped daemon left behind"),
        "{}",
        d.log_text()
    );
}
