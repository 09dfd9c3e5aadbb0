//! The wire protocol under bad input: every malformed request gets a
//! JSON-RPC error or a clean close, nothing is half-written, and other
//! clients keep being served.

use std::io::Read;
use std::os::unix::net::UnixStream;

use serde_json::{Value, json};

use crate::support::{Client, Daemon, create, record};

fn raw(c: &mut Client, line: &str) -> Value {
    c.send(line);
    c.read().expect("an answer")
}

#[test]
fn malformed_requests_get_errors_while_another_client_keeps_working() {
    let d = Daemon::start();
    let mut good = d.client();
    let id = create(&mut good, "Ada", json!({}));
    let mut bad = d.client();

    let cases: &[(&str, i64)] = &[
        ("{not json", -32700),
        ("[]", -32600),
        ("42", -32600),
        (r#"{"id":1,"method":"daemon.status"}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":2,"method":7}"#, -32600),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"prospect.fly"}"#,
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"prospect.get","params":{"id":"one"}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"prospect.get","params":{}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":6,"method":"prospect.create","params":{"name":"x","colour":"red"}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"prospect.get","params":[1]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"prospect.get","params":{"id":999}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"activity.record","params":{"prospect":999,"kind":"replied"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"activity.record","params":{"prospect":1,"kind":"replied","at":"yesterday"}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"prospect.close","params":{"id":1,"outcome":"maybe"}}"#,
            -32602,
        ),
    ];
    for (line, code) in cases {
        let answer = raw(&mut bad, line);
        assert_eq!(answer["error"]["code"], *code, "{line} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        // The good client is unaffected between every bad request.
        good.ok("prospect.get", json!({ "id": id }));
    }
    let answer = raw(
        &mut bad,
        r#"{"jsonrpc":"2.0","id":12,"method":"prospect.get","params":{"id":"one"}}"#,
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`id`"),
        "names the bad key: {answer}"
    );
    let answer = raw(
        &mut bad,
        r#"{"jsonrpc":"2.0","id":13,"method":"prospect.fly"}"#,
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean"),
        "{answer}"
    );

    // Nothing was half-written: only Ada exists, with no activities.
    let list = good.ok("prospect.list", json!({}));
    assert_eq!(list["prospects"].as_array().unwrap().len(), 1);
    let acts = good.ok("activity.list", json!({ "prospect": id }));
    assert_eq!(acts["activities"], json!([]));
    // And the bad connection itself is still usable.
    bad.ok("daemon.status", json!({}));
}

/// An answer without the time of the prospect's last change (an update
/// sent again is later), nor where in its line a parse error is (padding
/// moves it).
fn timeless(mut answer: Value) -> Value {
    match &mut answer {
        Value::Array(all) => all.iter_mut().for_each(|a| *a = timeless(a.take())),
        Value::Object(o) => {
            if let Some(Value::Object(r)) = o.get_mut("result") {
                r.remove("last_activity_at");
            }
            if let Some(Value::String(m)) = o.get_mut("error").and_then(|e| e.get_mut("message"))
                && let Some(at) = m.find(" at line ")
            {
                m.truncate(at);
            }
        }
        _ => {}
    }
    answer
}

/// Lines over 64 KiB are parsed off the runtime, each request's `params`
/// straight into its method's type: answered exactly as the same requests
/// sent small, one by one or in a batch.
#[test]
fn a_large_line_is_answered_as_the_same_requests_small() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let pad = " ".repeat(70 << 10);
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"prospect.get","params":{"id":"one"}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":2,"method":"prospect.get","params":{}}"#.into(),
        r#"{"jsonrpc":"2.0","id":3,"method":"prospect.create","params":{"name":"x","colour":"red"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":4,"method":"prospect.get","params":[1]}"#.into(),
        r#"{"jsonrpc":"2.0","id":5,"method":"prospect.get","params":null}"#.into(),
        r#"{"jsonrpc":"2.0","id":6,"method":"prospect.fly","params":{"id":1}}"#.into(),
        r#"{"jsonrpc":"2.0","id":7,"method":7,"params":{"id":1}}"#.into(),
        r#"{"id":8,"method":"prospect.get","params":{"id":1}}"#.into(),
        r#"{"jsonrpc":"2.0","id":[9],"method":"prospect.get","params":{"id":1}}"#.into(),
        r#"{"jsonrpc":"2.0","id":10,"method":"activity.record","params":{"prospect":1,"kind":"replied","at":"yesterday"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":11,"method":"events.subscribe","params":{"x":1}}"#.into(),
        format!(r#"{{"jsonrpc":"2.0","id":12,"method":"prospect.get","params":{{"id":{id}}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":13,"method":"prospect.update","params":{{"id":{id},"fields":{{"plan":"pro"}}}}}}"#),
    ];
    for line in &lines {
        let small = raw(&mut c, line);
        // Padded inside `params` (or at the end), past the limit.
        let large = match line.find("\"params\":") {
            Some(at) => format!("{}{pad}{}", &line[..at + 9], &line[at + 9..]),
            None => format!("{line}{pad}"),
        };
        assert!(large.len() > 64 << 10);
        assert_eq!(timeless(raw(&mut c, &large)), timeless(small), "{line}");
    }
    let batch = format!("[{}]", lines.join(","));
    let small = raw(&mut c, &batch);
    assert_eq!(small.as_array().map(Vec::len), Some(lines.len()));
    let large = raw(&mut c, &format!("[{}{pad}]", lines.join(",")));
    assert_eq!(timeless(large), timeless(small));

    // JSON that a looser reading than a `Value`'s would let through, and a
    // key given twice (a `Value` keeps the last).
    let odd = [
        r#"{"jsonrpc":"2.0","id":1e400,"method":"prospect.get","params":{"id":1}}"#.to_string(),
        r#"{"jsonrpc":"2.0","id":14,"x":"\ud800","method":"prospect.get","params":{"id":1}}"#.into(),
        r#"{"jsonrpc":"2.0","id":15,"method":"prospect.create","params":{"name":"\ud800"}}"#.into(),
        r#"{"jsonrpc":"2.0","id":16,"method":"prospect.create","params":{"name":"x","fields":{"v":1e400}}}"#.into(),
        format!(r#"{{"jsonrpc":"2.0","id":17,"method":"prospect.update","params":{{"id":{id},"fields":{{"plan":"a"}},"fields":{{"plan":"b"}}}}}}"#),
    ];
    for line in &odd {
        let small = raw(&mut c, line);
        let at = line.find("\"params\":").unwrap() + 9;
        let large = format!("{}{pad}{}", &line[..at], &line[at..]);
        assert_eq!(timeless(raw(&mut c, &large)), timeless(small), "{line}");
    }
    // One bad request spoils its whole batch, large as small: nothing of
    // it is done.
    let spoilt = format!(
        r#"[{{"jsonrpc":"2.0","id":1,"method":"prospect.create","params":{{"name":"Bo"}}}},{{"jsonrpc":"2.0","id":2,"method":"prospect.create","params":{{"name":"\ud800"}}}}{pad}]"#
    );
    assert_eq!(raw(&mut c, &spoilt)["error"]["code"], -32700);
    // Nesting is limited from the line's start either way.
    for depth in 124..=130 {
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":18,"method":"prospect.update","params":{{"id":{id},"fields":{{"v":{deep}}}}}}}"#
        );
        let small = raw(&mut c, &line);
        let large = line.replacen("\"params\":", &format!("\"params\":{pad}"), 1);
        assert_eq!(
            timeless(raw(&mut c, &large)),
            timeless(small),
            "depth {depth}"
        );
        let small = raw(&mut c, &format!("[{line}]"));
        let large = raw(&mut c, &format!("[{line}{pad}]"));
        assert_eq!(timeless(large), timeless(small), "depth {depth}, batched");
    }
    let names: Vec<Value> = c.ok("prospect.list", json!({}))["prospects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(!names.contains(&json!("Bo")), "{names:?}");
    assert_eq!(
        raw(&mut c, &format!("{{not json{pad}"))["error"]["code"],
        -32700
    );
    assert_eq!(raw(&mut c, &format!("[{pad}]"))["error"]["code"], -32600);
    c.ok("daemon.status", json!({}));
}

#[test]
fn batches_answer_each_request_and_skip_notifications() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let batch = json!([
        { "jsonrpc": "2.0", "id": "a", "method": "activity.record", "params": { "prospect": id, "kind": "replied" } },
        { "jsonrpc": "2.0", "method": "activity.record", "params": { "prospect": id, "kind": "note" } },
        { "jsonrpc": "2.0", "id": "b", "method": "prospect.get", "params": { "id": 12345 } },
        { "jsonrpc": "2.0", "id": "c", "method": "nope" },
        17
    ]);
    let answer = raw(&mut c, &batch.to_string());
    let answers = answer.as_array().expect("a batch answer is an array");
    assert_eq!(
        answers.len(),
        4,
        "the notification gets no answer: {answer}"
    );
    let by_id = |id: &str| answers.iter().find(|a| a["id"] == id).unwrap().clone();
    assert_eq!(by_id("a")["result"]["stage"], "connect");
    assert_eq!(by_id("b")["error"]["code"], -32001);
    assert_eq!(by_id("c")["error"]["code"], -32601);
    assert!(
        answers
            .iter()
            .any(|a| a["id"].is_null() && a["error"]["code"] == -32600)
    );
    // The notification was applied, in order, after the first request.
    let acts = c.ok("activity.list", json!({ "prospect": id }));
    let kinds: Vec<_> = acts["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("replied"), json!("note")]);
}

#[test]
fn pipelined_requests_are_applied_in_order() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    // Send everything before reading anything.
    for (i, kind) in [
        "replied",
        "meeting_held",
        "requirements_shared",
        "demo_scheduled",
    ]
    .iter()
    .enumerate()
    {
        c.send(
            &json!({ "jsonrpc": "2.0", "id": i, "method": "activity.record",
                        "params": { "prospect": id, "kind": kind } })
            .to_string(),
        );
    }
    let mut answers: Vec<Value> = (0..4).map(|_| c.read().unwrap()).collect();
    answers.sort_by_key(|a| a["id"].as_u64());
    let stages: Vec<_> = answers
        .iter()
        .map(|a| a["result"]["stage"].clone())
        .collect();
    assert_eq!(
        stages,
        [
            json!("connect"),
            json!("research"),
            json!("research"),
            json!("present")
        ]
    );
}

#[test]
fn a_read_sent_after_a_write_on_one_connection_sees_the_write() {
    // As on any SQL connection: no waiting for the write's answer first.
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    for round in 0..20u64 {
        let lines = [
            json!({ "jsonrpc": "2.0", "id": 1, "method": "activity.record",
                    "params": { "prospect": id, "kind": "note", "actor": "rep", "data": { "round": round } } }),
            json!({ "jsonrpc": "2.0", "id": 2, "method": "activity.list",
                    "params": { "prospect": id } }),
            json!({ "jsonrpc": "2.0", "id": 3, "method": "daemon.status" }),
        ];
        // One write() for all three, and one batch line with both kinds.
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        c.send(text.trim_end());
        c.send(&json!([lines[0].clone(), lines[1].clone()]).to_string());
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(c.read().unwrap());
        }
        let listed = |answers: &[Value]| {
            let a = answers
                .iter()
                .find(|a| a["id"] == 2)
                .expect("the list's answer");
            a["result"]["activities"].as_array().unwrap().len()
        };
        let single: Vec<Value> = seen.iter().filter(|v| v.is_object()).cloned().collect();
        let batch = seen
            .iter()
            .find_map(|v| v.as_array())
            .expect("the batch's answer");
        // Two activities per round. Each list includes the write sent before
        // it (it may include the batch's too, sent before it was answered).
        let before = 2 * round as usize;
        assert!(listed(&single) > before, "round {round}: {seen:?}");
        assert_eq!(listed(batch), before + 2, "round {round}: {seen:?}");
    }
}

#[test]
fn an_oversized_line_gets_an_error_and_a_clean_close() {
    let d = Daemon::start();
    let mut c = d.client();
    let mut other = d.client();
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"prospect.create","params":{{"name":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    // The daemon may close before we finish writing; that is fine.
    let _ = c.send_bytes(huge.as_bytes());
    let _ = c.send_bytes(b"\n");
    let answer = c.read().expect("an error before the close");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 1048576 bytes")
    );
    assert!(c.read().is_none(), "then the connection closes");
    // Nothing was created; others are served.
    let list = other.ok("prospect.list", json!({}));
    assert_eq!(list["prospects"], json!([]));
}

#[test]
fn a_client_that_disconnects_mid_request_hurts_nobody() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    for _ in 0..20 {
        // Half a line, then gone.
        let mut s = UnixStream::connect(&d.socket).unwrap();
        use std::io::Write;
        s.write_all(br#"{"jsonrpc":"2.0","id":1,"method":"activity.rec"#)
            .unwrap();
        drop(s);
        // A full request whose answer is never read.
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(format!("{}\n", json!({"jsonrpc":"2.0","id":1,"method":"activity.record","params":{"prospect":id,"kind":"note"}})).as_bytes()).unwrap();
        drop(s);
    }
    record(&mut c, id, "replied");
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["process"]["version"], 1);
    assert_eq!(
        status["daemon_version"], status["version"],
        "the old name is an alias"
    );
    let acts = c.ok("activity.list", json!({ "prospect": id }));
    let n = acts["activities"].as_array().unwrap().len();
    assert!((1..=21).contains(&n), "whole requests only: {n}");
}

#[test]
fn a_closed_connection_is_released_once_its_answers_are_out() {
    // Not after the shutdown grace (5 s) meant for clients that stop
    // reading: a client that read everything and left frees its slot now.
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    for round in 0..5 {
        let mut other = d.client();
        other.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "note", "actor": "rep" }),
        );
        other.ok("activity.list", json!({ "prospect": id }));
        drop(other);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let status = c.ok("daemon.status", json!({}));
            if status["connections"] == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the closed connection is still held: {status}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert!(
        !d.log_text().contains("did not read its answers"),
        "{}",
        d.log_text()
    );
}

/// A connection that `daemon.status` answers, retried while a slot freed
/// by a closed connection is still being released (the daemon frees it
/// when it reads the close).
fn connect_when_free(d: &Daemon) -> Client {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut c = d.client();
        let line =
            json!({ "jsonrpc": "2.0", "id": 0, "method": "daemon.status" }).to_string() + "\n";
        if c.send_bytes(line.as_bytes()).is_ok()
            && c.read().is_some_and(|a| a.get("result").is_some())
        {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection slot came free"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn connection_limit_and_idle_timeout_answer_then_close() {
    let mut d = Daemon::start();
    d.stop();
    d.spawn(&["--max-connections", "2", "--idle-timeout", "1"]);
    // (The start-up probe's connection may still hold a slot.)
    let a = connect_when_free(&d);
    let b = connect_when_free(&d);
    let mut third = d.client();
    let refused = third.read().expect("an error line");
    assert_eq!(refused["error"]["code"], -32006, "{refused}");
    assert!(third.read().is_none());
    // An idle connection is closed by the daemon. (Retry while the daemon
    // has not yet noticed that `a` and `b` are gone and still refuses.)
    drop(a);
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut stream = UnixStream::connect(&d.socket).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        if got.is_empty() {
            break; // closed for idleness, without a word
        }
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("-32006"),
            "only a refusal may come first: {text}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "connections were never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A subscriber is not idle. (Retry while the slot of the connection the
    // daemon just closed is being released.)
    let mut watcher = loop {
        let mut w = d.client();
        let line =
            json!({ "jsonrpc": "2.0", "id": 0, "method": "events.subscribe" }).to_string() + "\n";
        if w.send_bytes(line.as_bytes()).is_ok()
            && w.read()
                .is_some_and(|answer| answer["result"]["subscribed"] == true)
        {
            break w;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection slot came free"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut c = connect_when_free(&d);
    let id = create(&mut c, "Ada", json!({}));
    record(&mut c, id, "replied");
    assert_eq!(
        watcher.wait_notification("prospect.moved")["prospect"]["id"],
        id
    );
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let d = Daemon::start();
    let out = d.run_serve(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already serving"), "{stderr}");
    // The first daemon's socket still answers.
    d.client().ok("daemon.status", json!({}));
}

#[test]
fn the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(d.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn every_error_carries_the_input_that_failed_and_answers_keep_their_shape() {
    let d = Daemon::start();
    let mut c = d.client();
    let period = |extra: Value| {
        let mut p = json!({ "from": "2026-07-01", "to": "2026-08-01" });
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    for method in ["metrics.flow", "metrics.time_in_stage"] {
        let e = c.err(method, period(json!({ "stage": "nope" })));
        assert_eq!(
            (e["code"].clone(), e["data"]["stage"].clone()),
            (json!(-32602), json!("nope")),
            "{method}: {e}"
        );
        let e = c.err(method, period(json!({ "version": 99 })));
        assert_eq!(
            (e["code"].clone(), e["data"]["version"].clone()),
            (json!(-32001), json!(99)),
            "{method}: {e}"
        );
    }
    let e = c.err("metrics.stalled", json!({ "stage": "nope" }));
    assert_eq!(e["data"]["stage"], "nope", "{e}");
    let e = c.err("prospect.list", json!({ "stage": "nope" }));
    assert_eq!(e["data"]["stage"], "nope", "{e}");
    let e = c.err("process.get", json!({ "version": 42 }));
    assert_eq!(e["data"]["version"], 42, "{e}");
    let e = c.err("metrics.plugin", json!({ "plugin": "nope" }));
    assert_eq!(
        (e["code"].clone(), e["data"]["plugin"].clone()),
        (json!(-32001), json!("nope")),
        "{e}"
    );
    // An unchanged reload answers every field a changed one does.
    let r = c.ok("process.reload", json!({}));
    assert_eq!(r["outcome"], "unchanged");
    assert_eq!(r["previous"], r["version"]);
    assert_eq!(r["changes"], json!([]));
    assert_eq!(
        (r["renamed"].clone(), r["migrated"].clone()),
        (json!(0), json!(0))
    );
}

#[test]
fn out_of_descriptors_every_client_gets_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let process = dir.path().join("process.toml");
    std::fs::write(&process, crate::support::default_process()).unwrap();
    let socket = dir.path().join("s.sock");
    // A low hard limit the daemon cannot raise.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec '{}' serve --process '{}' --data-dir '{}' --socket '{}'",
            crate::support::bin(),
            process.display(),
            dir.path().join("data").display(),
            socket.display()
        ))
        .env(
            "STAGECOACH_PLUGIN_CACHE",
            crate::support::repo_root().join("target/test-plugin-cache"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        // As `Daemon::spawn` probes: a connection made just as the daemon
        // finishes starting may be closed before the write gets through.
        if let Ok(mut c) = crate::support::Client::try_connect(&socket)
            && c.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n")
                .is_ok()
            && c.read().is_some_and(|a| a.get("result").is_some())
        {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never served"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (mut served, mut refused) = (0, 0);
    let mut open = Vec::new();
    for _ in 0..150 {
        let Ok(mut c) = crate::support::Client::try_connect(&socket) else {
            refused += 1;
            continue;
        };
        // A refused connection may be answered and closed before we write.
        let _ = c.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n");
        let answer = c.read().expect("an answer, not silence");
        match answer.get("error") {
            None => {
                served += 1;
                open.push(c);
            }
            Some(e) => {
                // A connection-level answer: `id` null, then the daemon closes.
                assert_eq!(e["code"], -32006, "{e}");
                assert!(
                    e["message"].as_str().unwrap().contains("file descriptors"),
                    "{e}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
    // Once clients leave, new ones are served again.
    drop(open);
    let again = std::time::Instant::now();
    loop {
        let mut c = crate::support::Client::try_connect(&socket).unwrap();
        let _ = c.send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n");
        if c.read().is_some_and(|a| a.get("result").is_some()) {
            break;
        }
        assert!(
            again.elapsed() < std::time::Duration::from_secs(10),
            "never served again"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!("descriptors: served {served}, refused {refused} of 150 under ulimit -n 64");
    let _ = child.kill();
    let _ = child.wait();
}
