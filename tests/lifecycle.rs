//! Moving prospects through the process: criteria, cascades, forced moves,
//! closing, and the events subscribers see.

use serde_json::json;

use crate::support::{Daemon, create, record};

#[test]
fn a_prospect_walks_from_prospect_to_won_by_prospect_actions_only() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(
        &mut c,
        "Ada",
        json!({ "company": "Analytical Engines", "owner": "maria" }),
    );
    let steps = [
        ("replied", "connect"),
        ("meeting_held", "research"),
        ("requirements_shared", "research"),
        ("demo_scheduled", "present"),
        ("demo_attended", "present"),
        ("proposal_requested", "close"),
    ];
    for (kind, stage) in steps {
        let r = record(&mut c, id, kind);
        assert_eq!(r["stage"], stage, "after {kind}: {r}");
        assert_eq!(r["status"], "open");
    }
    let r = record(&mut c, id, "contract_signed");
    assert_eq!(r["status"], "won", "{r}");
    let won = &r["moves"][0];
    assert_eq!(won["kind"], "won");
    assert_eq!(won["from"], "close");
    assert_eq!(won["verdicts"][0]["met"], true);

    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["status"], "won");
    let kinds: Vec<_> = p["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "created", "advanced", "advanced", "advanced", "advanced", "won"
        ]
    );
    assert!(
        p["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["process_version"] == 1)
    );
}

#[test]
fn a_refused_advance_lists_every_unmet_criterion_with_its_question() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Grace", json!({ "stage": "research" }));
    record(&mut c, id, "requirements_shared");
    let e = c.err("prospect.advance", json!({ "id": id }));
    assert_eq!(e["code"], -32002, "{e}");
    let unmet = e["data"]["unmet"].as_array().unwrap();
    assert_eq!(unmet.len(), 1, "only the demo date is missing: {e}");
    assert_eq!(unmet[0]["question"], "Did the prospect accept a demo date?");
    assert!(
        unmet[0]["reason"]
            .as_str()
            .unwrap()
            .contains("demo_scheduled")
    );
    // Nothing moved.
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "research");
    assert_eq!(p["verdicts"][0]["met"], true);
    assert_eq!(p["verdicts"][1]["met"], false);
}

#[test]
fn manual_stages_wait_for_advance() {
    let text = crate::support::default_process().replacen(
        "id = \"connect\"",
        "id = \"connect\"\nadvance = \"manual\"",
        1,
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "Linus", json!({}));
    record(&mut c, id, "replied");
    let r = record(&mut c, id, "meeting_held");
    assert_eq!(
        r["stage"], "connect",
        "manual stage must not auto-advance: {r}"
    );
    let ev = c.ok("prospect.evaluate", json!({ "id": id }));
    assert_eq!(ev["ready"], true);
    assert_eq!(ev["next_stage"], "research");
    let r = c.ok("prospect.advance", json!({ "id": id }));
    assert_eq!(r["moves"][0]["kind"], "advanced");
    assert_eq!(r["stage"], "research");
}

#[test]
fn evaluate_answers_what_advance_at_the_same_time_would_do() {
    // `prospect.evaluate` and `prospect.advance` share one evaluation: a
    // move can be dated no earlier than the current owner, so neither can
    // an evaluation.
    let text = crate::support::default_process().replacen(
        "id = \"prospect\"",
        "id = \"prospect\"\nadvance = \"manual\"",
        1,
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({ "at": "2026-07-01" }));
    c.ok(
        "prospect.update",
        json!({ "id": id, "owner": "maria", "at": "2026-07-10" }),
    );
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "replied", "actor": "prospect", "at": "2026-07-05" }),
    );
    let ev = c.ok("prospect.evaluate", json!({ "id": id, "at": "2026-07-03" }));
    let get = c.ok("prospect.get", json!({ "id": id, "at": "2026-07-03" }));
    assert_eq!(ev["verdicts"], get["verdicts"]);
    let r = c.ok("prospect.advance", json!({ "id": id, "at": "2026-07-03" }));
    assert_eq!(r["stage"], "connect", "{r}");
    assert_eq!(r["moves"][0]["at"], "2026-07-10T00:00:00Z", "{r}");
    assert_eq!(
        ev["ready"], true,
        "evaluate must say what advance then did: {ev}"
    );
}

#[test]
fn a_forced_move_is_recorded_as_forced_with_reason_and_who() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Barbara", json!({}));
    let e = c.err(
        "prospect.move",
        json!({ "id": id, "to": "present", "reason": "" }),
    );
    assert_eq!(e["code"], -32602);
    let r = c.ok(
        "prospect.move",
        json!({ "id": id, "to": "present", "reason": "met at a trade show, demo done there", "by": "maria" }),
    );
    let t = &r["moves"][0];
    assert_eq!(t["kind"], "forced");
    assert_eq!(t["from"], "prospect");
    assert_eq!(t["to"], "present");
    assert_eq!(t["reason"], "met at a trade show, demo done there");
    assert_eq!(t["by"], "maria");
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "present");
    assert_eq!(p["transitions"][1]["kind"], "forced");
    let e = c.err(
        "prospect.move",
        json!({ "id": id, "to": "nowhere", "reason": "x" }),
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("unknown stage `nowhere`"),
        "{e}"
    );
}

#[test]
fn closing_won_needs_the_last_stage_and_lost_works_from_anywhere() {
    let d = Daemon::start();
    let mut c = d.client();
    let a = create(&mut c, "A", json!({}));
    let e = c.err("prospect.close", json!({ "id": a, "outcome": "won" }));
    assert_eq!(e["code"], -32004, "{e}");
    assert_eq!(e["data"]["last_stage"], "close");
    let r = c.ok(
        "prospect.close",
        json!({ "id": a, "outcome": "lost", "reason": "no budget" }),
    );
    assert_eq!(r["moves"][0]["kind"], "lost");
    assert_eq!(r["moves"][0]["reason"], "no budget");
    assert_eq!(r["status"], "lost");
    // Closed prospects stay closed.
    let e = c.err("prospect.advance", json!({ "id": a }));
    assert_eq!(e["code"], -32004);
    // Activities are still recorded on closed prospects, without moves.
    let r = record(&mut c, a, "replied");
    assert_eq!(r["moves"], json!([]));

    let b = create(&mut c, "B", json!({ "stage": "close" }));
    let e = c.err("prospect.close", json!({ "id": b, "outcome": "won" }));
    assert_eq!(e["code"], -32002, "won needs the close criteria: {e}");
    assert_eq!(
        e["data"]["unmet"][0]["question"],
        "Did the prospect sign the contract?"
    );
}

#[test]
fn moves_happen_at_the_time_of_the_activity_that_caused_them() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Hedy", json!({ "at": "2026-07-01T09:00:00Z" }));
    let r = c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "replied", "at": "2026-07-03T10:30:00Z" }),
    );
    assert_eq!(
        r["activity"]["actor"], "prospect",
        "the declared actor is the default"
    );
    assert_eq!(r["moves"][0]["at"], "2026-07-03T10:30:00Z");
    let p = c.ok(
        "prospect.get",
        json!({ "id": id, "at": "2026-07-05T10:30:00Z" }),
    );
    assert_eq!(p["created_at"], "2026-07-01T09:00:00Z");
    assert_eq!(p["stage_entered_at"], "2026-07-03T10:30:00Z");
    assert_eq!(p["days_in_stage"], 2.0);
}

#[test]
fn a_rep_action_does_not_satisfy_a_prospect_criterion() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Alan", json!({}));
    let r = c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "replied", "actor": "rep" }),
    );
    assert_eq!(r["stage"], "prospect", "{r}");
    let r = c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "email_sent" }),
    );
    assert_eq!(r["activity"]["actor"], "rep");
    assert_eq!(r["stage"], "prospect");
}

#[test]
fn field_criteria_and_yes_no_answers_move_prospects_through_update() {
    let text = r#"
[process]
name = "fields"

[[stages]]
id = "qualify"
name = "Qualify"
exit = [
  { question = "Budget of at least 10k?", field = "budget", op = ">=", value = 10000 },
  { question = "Signed the NDA?", answer = "nda_signed" },
]

[[stages]]
id = "close"
name = "Close"
exit = [{ question = "Signed?", activity = "contract_signed" }]
"#;
    let d = Daemon::start_with(text);
    let mut c = d.client();
    let id = create(&mut c, "Katherine", json!({ "fields": { "budget": 5000 } }));
    let r = c.ok(
        "prospect.update",
        json!({ "id": id, "fields": { "budget": 12000 } }),
    );
    assert_eq!(r["stage"], "qualify");
    let r = c.ok(
        "prospect.update",
        json!({ "id": id, "fields": { "nda_signed": true } }),
    );
    assert_eq!(r["stage"], "close", "{r}");
    assert_eq!(
        r["moves"][0]["verdicts"][0]["reason"],
        "`budget` is `12000` (>= 10000)"
    );
    // Field changes are in the activity log.
    let acts = c.ok(
        "activity.list",
        json!({ "prospect": id, "kind": "fields_updated" }),
    );
    assert_eq!(acts["activities"].as_array().unwrap().len(), 2);
    assert_eq!(acts["activities"][0]["data"]["fields"]["budget"], 12000);
    // Created already qualified: moves on at creation.
    let id2 = create(
        &mut c,
        "Dorothy",
        json!({ "fields": { "budget": 20000, "nda_signed": true } }),
    );
    let p = c.ok("prospect.get", json!({ "id": id2 }));
    assert_eq!(p["stage"], "close");
}

#[test]
fn external_ids_are_unique() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({ "external_id": "crm-42" }));
    let e = c.err(
        "prospect.create",
        json!({ "name": "Ada again", "external_id": "crm-42" }),
    );
    assert_eq!(e["code"], -32003);
    assert_eq!(e["data"]["id"], id);
}

#[test]
fn listing_filters_by_stage_owner_and_status() {
    let d = Daemon::start();
    let mut c = d.client();
    for i in 0..5 {
        let owner = if i % 2 == 0 { "maria" } else { "tom" };
        let id = create(&mut c, &format!("p{i}"), json!({ "owner": owner }));
        if i < 2 {
            record(&mut c, id, "replied");
        }
    }
    let list = |c: &mut crate::support::Client, params| {
        c.ok("prospect.list", params)["prospects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&mut c, json!({ "stage": "connect" })), ["p0", "p1"]);
    assert_eq!(
        list(&mut c, json!({ "owner": "maria" })),
        ["p0", "p2", "p4"]
    );
    assert_eq!(
        list(&mut c, json!({ "stage": "prospect", "owner": "tom" })),
        ["p3"]
    );
    assert_eq!(list(&mut c, json!({ "limit": 2 })), ["p0", "p1"]);
    let page = c.ok("prospect.list", json!({ "limit": 2 }));
    assert_eq!(page["next"], 2);
    assert_eq!(
        list(&mut c, json!({ "limit": 2, "after": 2 })),
        ["p2", "p3"]
    );
    c.ok("prospect.close", json!({ "id": 1, "outcome": "lost" }));
    assert_eq!(list(&mut c, json!({ "status": "lost" })), ["p0"]);
    assert_eq!(
        list(&mut c, json!({ "stage": "connect" })),
        ["p1"],
        "closed prospects leave their stage"
    );
}

#[test]
fn subscribers_receive_prospect_moved() {
    let d = Daemon::start();
    let mut watcher = d.client();
    let r = watcher.ok("events.subscribe", json!({}));
    assert_eq!(r["subscribed"], true);
    let mut c = d.client();
    let id = create(&mut c, "Margaret", json!({}));
    record(&mut c, id, "replied");
    let moved = watcher.wait_notification("prospect.moved");
    assert_eq!(moved["prospect"]["id"], id);
    assert_eq!(moved["transition"]["from"], "prospect");
    assert_eq!(moved["transition"]["to"], "connect");
    assert_eq!(moved["transition"]["kind"], "advanced");
}

/// The next notification that is not a watchdog ping (within 20 s).
fn next_news(next: &mut impl FnMut() -> String) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = next();
        if m != "WATCHDOG=1" {
            return m;
        }
        assert!(std::time::Instant::now() < deadline, "only watchdog pings");
    }
}

/// What a `Type=notify` systemd unit hears from the daemon, in order.
#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let mut d = Daemon::prepare(&crate::support::default_process());
    let notify = d.dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    d.env = vec![
        ("NOTIFY_SOCKET".into(), notify.display().to_string()),
        // WatchdogSec=0.4: a ping every 0.2 s.
        ("WATCHDOG_USEC".into(), "400000".into()),
    ];
    d.spawn(&[]);
    let mut buf = [0u8; 4096];
    let mut next = || {
        let n = listener.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    };
    // Ready once the socket accepts (the daemon answered before `spawn`
    // returned), with the version in force.
    let first = next();
    assert!(first.contains("READY=1"), "{first}");
    assert!(
        first.contains("STATUS=serving Default B2B process (version 1)"),
        "{first}"
    );
    assert_eq!(next(), "WATCHDOG=1");
    // A saved edit: reloading, then ready with the new version.
    let text = std::fs::read_to_string(&d.process).unwrap().replacen(
        "stall_after_days = 14",
        "stall_after_days = 15",
        1,
    );
    std::fs::write(&d.process, text).unwrap();
    let reloading = next_news(&mut next);
    assert!(reloading.starts_with("RELOADING=1"), "{reloading}");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = next_news(&mut next);
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(ready.contains("(version 2)"), "{ready}");
    // Stopping on SIGTERM.
    d.stop();
    let stopping = next_news(&mut next);
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
}
