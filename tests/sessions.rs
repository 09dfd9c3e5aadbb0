//! Import sessions (`import.begin`, `prospect.import` with `session`,
//! `import.commit`, `import.abort`): a whole import written in one
//! transaction, all or nothing, with the same result as importing each deal
//! on its own.

use serde_json::{Value, json};

use crate::support::Daemon;

/// One deal as `stagecoach import` sends it: created in January, with
/// activities; `history` dated moves for even `i`, a replay for odd; won,
/// lost or open by `i % 3`.
fn deal(i: u64, session: Option<u64>) -> Value {
    let day = |d: u64| format!("2026-01-{:02}T10:00:00Z", d);
    let created = 2 + i % 5;
    let mut d = json!({
        "external_id": format!("crm-{i}"),
        "name": format!("Deal {i}"),
        "owner": format!("Rep {}", i % 2),
        "fields": { "amount": 1000 + i * 10 },
        "created_at": day(created),
        "activities": [
            { "kind": "email_reply", "actor": "prospect", "at": day(created + 1) },
            { "kind": "meeting_held", "actor": "prospect", "at": day(created + 3) },
            { "kind": "call", "at": day(created + 4) },
        ],
    });
    if i.is_multiple_of(2) {
        d["history"] = json!([
            { "to": "prospect", "at": day(created) },
            { "to": "connect", "at": day(created + 1) },
            { "to": "research", "at": day(created + 4) },
        ]);
    }
    match i % 3 {
        0 => d["outcome"] = json!({ "status": "won", "at": day(created + 9) }),
        1 => {
            d["outcome"] =
                json!({ "status": "lost", "at": day(created + 8), "reason": "No budget" })
        }
        _ => {}
    }
    if let Some(s) = session {
        d["session"] = json!(s);
    }
    d
}

const DEALS: u64 = 12;

/// `e` says the session it named is no longer open.
fn no_open_session(e: &Value) {
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("no open import session"), "{e}");
}

fn present(d: &Daemon) -> usize {
    let ids: Vec<String> = (0..DEALS).map(|i| format!("crm-{i}")).collect();
    let r = d
        .client()
        .ok("prospect.lookup", json!({ "external_ids": ids }));
    r["found"].as_object().unwrap().len()
}

/// What the metrics say about January and February.
fn figures(d: &Daemon) -> Vec<Value> {
    let period = json!({ "from": "2026-01-01", "to": "2026-03-01" });
    let mut c = d.client();
    [
        "metrics.flow",
        "metrics.time_in_stage",
        "metrics.conversion",
        "metrics.outcomes",
    ]
    .iter()
    .map(|m| {
        let mut v = c.ok(m, period.clone());
        // When each was measured is not a figure.
        if let Some(o) = v.as_object_mut() {
            o.remove("as_of");
            o.remove("measured_at");
        }
        v
    })
    .collect()
}

#[test]
fn a_session_writes_its_deals_only_when_committed_and_as_they_are_written_one_by_one() {
    let d = Daemon::start();
    let mut c = d.client();
    let s = c.ok("import.begin", json!({}));
    let session = s["session"].as_u64().unwrap();
    assert_eq!(s["idle_secs"], 30, "the documented default: {s}");
    let mut answers = Vec::new();
    for i in 0..DEALS {
        answers.push(c.ok("prospect.import", deal(i, Some(session))));
    }
    assert_eq!(
        present(&d),
        0,
        "nothing of an open session is visible to reads"
    );
    let done = c.ok("import.commit", json!({ "session": session }));
    assert_eq!(
        done,
        json!({ "session": session, "committed": true, "imports": DEALS })
    );
    assert_eq!(present(&d) as u64, DEALS);

    // The same deals imported one request each, on a second daemon.
    let one_by_one = Daemon::start();
    let mut c2 = one_by_one.client();
    for (i, in_session) in answers.iter().enumerate() {
        let alone = c2.ok("prospect.import", deal(i as u64, None));
        assert_eq!(
            &alone, in_session,
            "deal {i}: answered in the session as on its own"
        );
    }
    assert_eq!(figures(&d), figures(&one_by_one));
    let won = &figures(&d)[3];
    assert_eq!(won["won"], 4, "{won}");
    assert_eq!(won["lost"], 4, "{won}");

    // Committed: the session takes nothing more.
    let e = c.err("prospect.import", deal(99, Some(session)));
    no_open_session(&e);
    // And the writer serves other writes again; the next session may begin
    // as soon as the commit is answered, under a number not guessable from
    // this one's.
    c.ok("prospect.create", json!({ "name": "After" }));
    let next = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    assert!(
        next != session + 1 && next != session,
        "{session} then {next}"
    );
    let e = c.err("import.deals", json!({ "session": next, "deals": [] }));
    assert!(e["message"].as_str().unwrap().contains("empty"), "{e}");
    c.ok("import.abort", json!({ "session": next }));
}

#[test]
fn an_aborted_or_abandoned_session_writes_nothing_and_stops_holding_writes() {
    let mut d = Daemon::start_with_flags(
        &crate::support::default_process(),
        &["--import-idle-secs", "120"],
    );
    let mut c = d.client();
    let session = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    for i in 0..3 {
        c.ok("prospect.import", deal(i, Some(session)));
    }
    // One import at a time.
    let e = d.client().err("import.begin", json!({}));
    assert!(e["message"].as_str().unwrap().contains("still open"), "{e}");
    let aborted = c.ok("import.abort", json!({ "session": session }));
    assert_eq!(
        aborted,
        json!({ "session": session, "committed": false, "imports": 0 })
    );
    assert_eq!(present(&d), 0);
    let e = c.err("import.commit", json!({ "session": session }));
    no_open_session(&e);

    // A client that goes without committing: its session is given up when
    // its connection closes (not after the 120 s idle time, which the test
    // client's 30 s read timeout would not outlast).
    let mut gone = d.client();
    let session = gone.ok("import.begin", json!({}))["session"]
        .as_u64()
        .unwrap();
    gone.ok("prospect.import", deal(0, Some(session)));
    drop(gone);
    d.client()
        .ok("prospect.create", json!({ "name": "Not held" }));
    assert_eq!(present(&d), 0);
    assert!(
        d.log_text().contains("gone without committing"),
        "{}",
        d.log_text()
    );

    // Killed with a session open: nothing of it after the restart, and the
    // next import goes through.
    let mut c = d.client();
    let session = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    for i in 0..DEALS {
        c.ok("prospect.import", deal(i, Some(session)));
    }
    d.kill9();
    d.restart();
    assert_eq!(present(&d), 0);
    let mut c = d.client();
    let session = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    for i in 0..DEALS {
        c.ok("prospect.import", deal(i, Some(session)));
    }
    c.ok("import.commit", json!({ "session": session }));
    assert_eq!(present(&d) as u64, DEALS);
}

#[test]
fn a_session_sent_nothing_for_its_idle_time_is_given_up() {
    let d = Daemon::start_with_flags(
        &crate::support::default_process(),
        &["--import-idle-secs", "1"],
    );
    let mut c = d.client();
    let s = c.ok("import.begin", json!({}));
    assert_eq!(s["idle_secs"], 1);
    let session = s["session"].as_u64().unwrap();
    c.ok("prospect.import", deal(0, Some(session)));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let e = c.err("import.commit", json!({ "session": session }));
    no_open_session(&e);
    assert_eq!(present(&d), 0);
    assert!(
        d.log_text().contains("import session given up"),
        "{}",
        d.log_text()
    );
}

#[test]
fn import_deals_answers_each_deal_in_order_and_a_refused_one_is_not_written() {
    let d = Daemon::start();
    let mut c = d.client();
    let session = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    let mut deals: Vec<Value> = (0..DEALS).map(|i| deal(i, None)).collect();
    // An empty name is refused, as `prospect.import` refuses it.
    deals[5]["name"] = json!(" ");
    let r = c.ok(
        "import.deals",
        json!({ "session": session, "deals": deals }),
    );
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len() as u64, DEALS, "{r}");
    let alone = Daemon::start();
    let mut c2 = alone.client();
    for (i, result) in results.iter().enumerate() {
        match c2.call("prospect.import", deals[i].clone()) {
            Ok(v) => assert_eq!(result, &json!({ "imported": v }), "deal {i}"),
            Err(e) => assert_eq!(result, &json!({ "refused": e }), "deal {i}"),
        }
    }
    assert!(
        results[5]["refused"]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{r}"
    );
    let done = c.ok("import.commit", json!({ "session": session }));
    assert_eq!(done["imports"], DEALS - 1, "{done}");
    assert_eq!(present(&d) as u64, DEALS - 1);
    assert_eq!(figures(&d), figures(&alone));
}

#[test]
fn a_session_kept_busy_is_given_up_after_its_longest_time() {
    let d = Daemon::start_with_flags(
        &crate::support::default_process(),
        &["--import-idle-secs", "1", "--import-max-secs", "2"],
    );
    let mut c = d.client();
    let session = c.ok("import.begin", json!({}))["session"].as_u64().unwrap();
    // A request every 0.4 s: never idle, but open past 2 s.
    let mut refused = None;
    for i in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(400));
        if let Err(e) = c.call("prospect.import", deal(i, Some(session))) {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the session is given up after 2 s");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no open import session")
            || e["message"].as_str().unwrap().contains("longest"),
        "{e}"
    );
    assert_eq!(present(&d), 0);
    assert!(
        d.log_text().contains("open for its longest time"),
        "{}",
        d.log_text()
    );
    // The writer serves other writes again.
    c.ok("prospect.create", json!({ "name": "After" }));
}
