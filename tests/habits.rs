//! What a user relies on at the command line and in live writes: typos
//! answered with what was meant, a closed pipe ending a command quietly,
//! history that cannot be dated before its prospect, losses with reasons,
//! and a demo that never mixes invented deals into real ones.

use serde_json::json;

use crate::support::*;

#[test]
fn an_undeclared_activity_kind_is_refused_with_did_you_mean_unless_the_process_opts_out() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let e = c.err(
        "activity.record",
        json!({ "prospect": id, "kind": "reply", "actor": "prospect" }),
    );
    assert_eq!(e["code"], -32602, "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("activity kind `reply`"), "{message}");
    assert!(message.contains("did you mean `replied`?"), "{message}");
    assert!(
        e["data"]["hint"]
            .as_str()
            .unwrap()
            .contains("strict_activities = false"),
        "{e}"
    );
    // Nothing was written: the prospect has no activity and did not move.
    let list = c.ok("activity.list", json!({ "prospect": id }));
    assert_eq!(list["activities"].as_array().unwrap().len(), 0, "{list}");
    let out = d.cli(&["activity", "record", &id.to_string(), "reply"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `replied`?"), "{stderr}");

    // A process that opts out records any kind.
    let text = default_process().replacen(
        "review_every_days = 150",
        "review_every_days = 150\nstrict_activities = false",
        1,
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let r = c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "reply", "actor": "prospect" }),
    );
    assert_eq!(r["activity"]["kind"], "reply");
}

#[test]
fn an_activity_dated_before_its_prospect_was_created_is_refused() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({ "at": "2026-03-10T09:00:00Z" }));
    let e = c.err(
        "activity.record",
        json!({ "prospect": id, "kind": "replied", "at": "2026-03-09" }),
    );
    assert_eq!(e["code"], -32602, "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("before prospect 1 was created (2026-03-10T09:00:00Z)"),
        "{message}"
    );
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "prospect", "nothing moved: {p}");
    // The same instant as the creation is fine.
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "replied", "at": "2026-03-10T09:00:00Z" }),
    );
}

#[test]
fn a_loss_needs_a_listed_reason_when_the_process_says_so() {
    let text = default_process().replacen(
        "review_every_days = 150",
        "review_every_days = 150\nrequire_lost_reason = true\nlost_reasons = [\"No budget\", \"Chose a competitor\", \"No decision\"]",
        1,
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let e = c.err("prospect.close", json!({ "id": id, "outcome": "lost" }));
    assert_eq!(e["code"], -32602, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("needs a `reason`, one of `No budget`, `Chose a competitor`, `No decision`"),
        "{e}"
    );
    let e = c.err(
        "prospect.close",
        json!({ "id": id, "outcome": "lost", "reason": "chose a competitr" }),
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `Chose a competitor`?"),
        "{e}"
    );
    assert_eq!(c.ok("prospect.get", json!({ "id": id }))["status"], "open");
    // The listed spelling is what is recorded, whatever the case given.
    let r = c.ok(
        "prospect.close",
        json!({ "id": id, "outcome": "lost", "reason": "no budget" }),
    );
    assert_eq!(r["moves"][0]["reason"], "No budget", "{r}");
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let d = Daemon::start();
    let mut c = d.client();
    for i in 0..3 {
        create(&mut c, &format!("P{i}"), json!({}));
    }
    let script = format!(
        "'{}' --socket '{}' prospect show 2 | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        bin(),
        d.socket.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    let code: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // Ended by SIGPIPE (128 + 13) as `cat` and `git` are, or done already.
    assert!(code == 141 || code == 0, "exit {code}: {stderr}");
}

#[test]
fn the_demo_refuses_a_daemon_that_holds_prospects_unless_told() {
    let d = Daemon::start();
    let mut c = d.client();
    create(&mut c, "A real deal", json!({}));
    let out = d.demo(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds 1 prospects"), "{stderr}");
    assert!(stderr.contains("--into-existing"), "{stderr}");
    assert!(
        stderr.contains(&d.data_dir().display().to_string()),
        "says where: {stderr}"
    );
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(
        status["counts"]["prospects"], 1,
        "nothing written: {status}"
    );

    let out = d.demo(&["--into-existing", "--keep-process"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("writing a demo history into the daemon at"),
        "{stderr}"
    );
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["counts"]["prospects"], 301, "{status}");
}

#[test]
fn an_empty_setting_counts_as_unset_and_export_says_where_json_is() {
    let d = Daemon::start();
    // `STAGECOACH_SOCKET= stagecoach status`: the default socket, not a
    // complaint about a flag nobody typed.
    let out = std::process::Command::new(bin())
        .arg("status")
        .env("STAGECOACH_SOCKET", "")
        .env("XDG_DATA_HOME", d.dir.path().join("xdg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains("cannot connect to the daemon at") && !err.contains("a value is required"),
        "{err}"
    );
    // The cause is printed once.
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    let out = d.cli(&["--json", "export", "prospects"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--format ndjson"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
