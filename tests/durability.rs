//! What is acknowledged stays: restarts, concurrent writers, SIGTERM with
//! requests in flight, and `kill -9`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{Client, Daemon, create, record};

#[test]
fn everything_is_still_there_after_a_restart() {
    let mut d = Daemon::start();
    let mut c = d.client();
    let id = create(
        &mut c,
        "Ada",
        json!({ "owner": "maria", "external_id": "crm-1", "fields": { "budget": 12000 } }),
    );
    record(&mut c, id, "replied");
    c.ok(
        "prospect.move",
        json!({ "id": id, "to": "present", "reason": "demo at a conference" }),
    );
    let before = c.ok("prospect.get", json!({ "id": id }));
    let acts_before = c.ok("activity.list", json!({ "prospect": id }));
    drop(c);

    d.restart();
    let mut c = d.client();
    let after = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(after["transitions"], before["transitions"]);
    for key in [
        "name",
        "owner",
        "external_id",
        "fields",
        "stage",
        "status",
        "created_at",
        "stage_entered_at",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(
        c.ok("activity.list", json!({ "prospect": id })),
        acts_before
    );
    // Ids continue; indexes survived.
    let id2 = create(&mut c, "Grace", json!({}));
    assert_eq!(id2, id + 1);
    let e = c.err(
        "prospect.create",
        json!({ "name": "dup", "external_id": "crm-1" }),
    );
    assert_eq!(e["code"], -32003);
    let by_owner = c.ok("prospect.list", json!({ "owner": "maria" }));
    assert_eq!(by_owner["prospects"][0]["id"], id);
    // Same file, same version: a restart creates no new process version.
    let versions = c.ok("process.versions", json!({}));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn thirty_two_concurrent_clients_times_two_hundred_activities_all_survive_a_restart() {
    const CLIENTS: usize = 32;
    const EACH: usize = 200;
    let mut d = Daemon::start();
    let mut setup = d.client();
    let ids: Vec<u64> = (0..CLIENTS)
        .map(|i| create(&mut setup, &format!("p{i}"), json!({})))
        .collect();
    let socket = d.socket.clone();
    let acked: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let socket = socket.clone();
                s.spawn(move || {
                    let mut c = Client::try_connect(&socket).unwrap();
                    (0..EACH)
                        .map(|n| {
                            let r = c.ok(
                                "activity.record",
                                json!({ "prospect": id, "kind": "note", "actor": "rep", "data": { "n": n } }),
                            );
                            r["activity"]["id"].as_u64().unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = acked.iter().map(Vec::len).sum();
    assert_eq!(total, CLIENTS * EACH);
    let status = setup.ok("daemon.status", json!({}));
    let commits = status["writer"]["commits"].as_u64().unwrap();
    assert!(
        commits < (CLIENTS * EACH) as u64,
        "group commit shares transactions: {commits} commits for {total} writes"
    );
    drop(setup);

    d.restart();
    let mut c = d.client();
    for (id, acked) in ids.iter().zip(&acked) {
        let acts = c.ok("activity.list", json!({ "prospect": id }));
        let stored: Vec<u64> = acts["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            &stored, acked,
            "prospect {id}: every acknowledged activity, in order"
        );
        let ns: Vec<u64> = acts["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["data"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..EACH as u64).collect::<Vec<_>>());
    }
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["counts"]["activities"], (CLIENTS * EACH) as u64);
}

#[test]
fn sigterm_answers_requests_in_flight_before_exiting() {
    let mut d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    let n = 500;
    for i in 0..n {
        c.send(
            &json!({ "jsonrpc": "2.0", "id": i, "method": "activity.record",
                        "params": { "prospect": id, "kind": "note", "actor": "rep" } })
            .to_string(),
        );
    }
    // Read answers on another thread while the daemon shuts down.
    let reader = std::thread::spawn(move || {
        let mut answered = 0;
        while let Some(a) = c.read() {
            if a.get("result").is_some() {
                answered += 1;
            } else {
                assert_eq!(a["error"]["code"], -32006, "only shutdown errors: {a}");
            }
        }
        answered
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    d.stop();
    let answered = reader.join().unwrap();
    assert!(answered > 0);
    // Whatever was answered with success is on disk.
    d.spawn(&[]);
    let mut c = d.client();
    let acts = c.ok("activity.list", json!({ "prospect": id }));
    let stored = acts["activities"].as_array().unwrap().len();
    assert!(stored >= answered, "stored {stored} < answered {answered}");
}

#[test]
fn a_client_that_stops_reading_cannot_block_shutdown() {
    let mut d = Daemon::start();
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({}));
    // Far more answers than socket buffers hold, never read.
    let line =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "prospect.get", "params": { "id": id } })
            .to_string();
    let mut stream = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    stream
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    use std::io::Write;
    for _ in 0..20_000 {
        if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
            break;
        }
    }
    d.stop(); // panics if the daemon does not exit
    drop(stream);
}

#[test]
fn kill_nine_loses_no_acknowledged_write_and_the_database_reopens() {
    const ROUNDS: usize = 6;
    const WRITERS: usize = 4;
    let mut d = Daemon::start();
    let mut expected: BTreeMap<u64, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let socket = d.socket.clone();
                std::thread::spawn(move || {
                    let mut acked: Vec<(u64, u64)> = Vec::new();
                    let Ok(mut c) = Client::try_connect(&socket) else {
                        return acked;
                    };
                    let Ok(p) = c.call(
                        "prospect.create",
                        json!({ "name": format!("round {round} writer {w}") }),
                    ) else {
                        return acked;
                    };
                    let id = p["id"].as_u64().unwrap();
                    acked.push((id, 0));
                    loop {
                        c.send(
                            &json!({ "jsonrpc": "2.0", "id": 1, "method": "activity.record",
                                        "params": { "prospect": id, "kind": "note", "actor": "rep" } })
                            .to_string(),
                        );
                        match c.read() {
                            Some(a) if a.get("result").is_some() => acked
                                .push((id, a["result"]["activity"]["id"].as_u64().unwrap())),
                            _ => return acked,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        d.kill9();
        for writer in writers {
            let acked = writer.join().unwrap();
            assert!(
                acked.len() > 1,
                "round {round}: some writes were acknowledged"
            );
            expected.insert(acked[0].0, acked.len() - 1);
        }
        // Every other restart with a one-MiB page cache: smaller than the
        // data, so reads and the check after the crash go through eviction.
        d.spawn(if round % 2 == 0 {
            &["--cache-mib", "1"]
        } else {
            &[]
        });
        let mut c = d.client();
        for (&id, &count) in &expected {
            let acts = c.ok("activity.list", json!({ "prospect": id }));
            let stored = acts["activities"].as_array().unwrap().len();
            assert!(
                stored >= count,
                "prospect {id}: {stored} stored < {count} acknowledged"
            );
        }
    }
    // After each crash the start applied the log written since the last
    // checkpoint, and never checked the whole file.
    let log = d.log_text();
    assert_eq!(
        log.matches("applied the write-ahead log").count(),
        ROUNDS,
        "{log}"
    );
    assert!(
        !log.contains("checking the database after an unclean shutdown"),
        "{log}"
    );
}

#[test]
fn a_bad_process_file_at_start_up_serves_the_last_good_version() {
    let mut d = Daemon::start();
    let mut c = d.client();
    create(&mut c, "Ada", json!({}));
    drop(c);
    d.stop();
    std::fs::write(&d.process, "[process\nname = ").unwrap();
    d.spawn(&[]);
    let mut c = d.client();
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["process"]["version"], 1);
    let err = &status["process"]["last_error"]["errors"][0];
    assert_eq!(err["line"], 1, "{status}");
    assert!(err["file"].as_str().unwrap().ends_with("process.toml"));
    // Still fully working on version 1.
    let p: Value = c.ok("prospect.get", json!({ "id": 1 }));
    assert_eq!(p["stage"], "prospect");
}

#[test]
fn a_fresh_daemon_with_a_bad_process_file_refuses_to_start_with_line_and_column() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("process.toml");
    let text = crate::support::default_process().replacen(
        r#"actor = "prospect" },"#,
        r#"actor = "prospect", op = "=>" },"#,
        1,
    );
    std::fs::write(&bad, &text).unwrap();
    let out = std::process::Command::new(crate::support::bin())
        .args(["serve", "--process"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.contains("op = \"=>\""))
        .unwrap()
        + 1;
    let want =
        format!("process.toml:{line}:3: stages[0].exit[0].op: `op` applies only to field criteria");
    assert!(stderr.contains(&want), "{want}\n{stderr}");
    assert_eq!(
        stderr.matches("applies only").count(),
        1,
        "said once: {stderr}"
    );
    assert!(stderr.contains("stages[0].exit[0].op"), "{stderr}");
    drop(d);
}

/// A tmpfs mounted for one test, unmounted (lazily) when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a `mib` MiB tmpfs at `dir`; `None` (and a message) where the
/// test cannot, not being root.
fn small_disk(dir: &std::path::Path, mib: u64) -> Option<Mount> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: a small file system needs root to mount a tmpfs");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mib}m,mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return None;
    }
    Some(Mount(dir.to_path_buf()))
}

fn free_bytes(dir: &std::path::Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

/// Fills the file system at `dir` until at most `leave` bytes are free
/// (0: until it refuses a single byte more).
fn fill(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![7u8; chunk];
        while free_bytes(dir) > leave + chunk as u64 || (leave == 0 && chunk == 1) {
            if f.write_all(&block).and_then(|()| f.flush()).is_err() {
                break;
            }
        }
    }
    path
}

fn storage_kind(e: &Value) -> &str {
    e["data"]["storage"].as_str().unwrap_or_default()
}

#[test]
fn a_nearly_full_disk_refuses_writes_cleanly_and_they_succeed_once_space_is_back() {
    let mut d = Daemon::prepare(&crate::support::default_process());
    let Some(_disk) = small_disk(&d.data_dir(), 96) else {
        return;
    };
    d.spawn(&["--min-free-mib", "16"]);
    let mut c = d.client();
    let ids: Vec<u64> = (0..20)
        .map(|i| create(&mut c, &format!("P{i}"), json!({})))
        .collect();
    let filler = fill(&d.data_dir(), 8 << 20);

    let e = c.err("prospect.create", json!({ "name": "too late" }));
    assert_eq!(e["code"], -32603, "{e}");
    assert_eq!(storage_kind(&e), "disk_full", "{e}");
    assert!(e["message"].as_str().unwrap().contains("MiB free"), "{e}");
    // Reads go on, and the status says why writes fail.
    for id in &ids {
        c.ok("prospect.get", json!({ "id": id }));
    }
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["store"]["health"], "degraded", "{status}");
    assert!(
        status["store"]["reason"].as_str().unwrap().contains("free"),
        "{status}"
    );
    assert_eq!(status["counts"]["prospects"], 20, "{status}");

    std::fs::remove_file(filler).unwrap();
    create(&mut c, "room again", json!({}));
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["store"]["health"], "ok", "{status}");
    assert_eq!(status["counts"]["prospects"], 21, "{status}");
    d.kill9();
    d.spawn(&["--min-free-mib", "16"]);
    let mut c = d.client();
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["counts"]["prospects"], 21, "{status}");
}

#[test]
fn a_full_disk_mid_commit_recovers_without_a_restart_and_loses_nothing() {
    let mut d = Daemon::prepare(&crate::support::default_process());
    let Some(_disk) = small_disk(&d.data_dir(), 96) else {
        return;
    };
    // No reserve: redb itself meets the full disk.
    d.spawn(&["--min-free-mib", "0"]);
    let mut c = d.client();
    let mut acked: Vec<u64> = (0..5)
        .map(|i| create(&mut c, &format!("P{i}"), json!({})))
        .collect();
    let filler = fill(&d.data_dir(), 0);
    // Large prospects until a commit meets the full disk (the log is
    // allocated ahead, so the first to fail is a checkpoint into redb).
    let notes = "n".repeat(150_000);
    let mut failed = None;
    for i in 0..200 {
        match c.call(
            "prospect.create",
            json!({ "name": format!("big {i}"), "fields": { "notes": notes } }),
        ) {
            Ok(p) => acked.push(p["id"].as_u64().unwrap()),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let e = failed.expect("a write failed on the full disk");
    assert_eq!(e["code"], -32603, "{e}");
    assert!(["disk_full", "io"].contains(&storage_kind(&e)), "{e}");
    // Reads go on, with every acknowledged write.
    for id in &acked {
        c.ok("prospect.get", json!({ "id": id }));
    }
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["store"]["health"], "degraded", "{status}");
    assert_eq!(status["counts"]["prospects"], acked.len(), "{status}");

    // Space back: the next write succeeds, no restart.
    std::fs::remove_file(filler).unwrap();
    acked.push(create(&mut c, "after", json!({})));
    let status = c.ok("daemon.status", json!({}));
    assert_eq!(status["store"]["health"], "ok", "{status}");
    assert_eq!(status["counts"]["prospects"], acked.len(), "{status}");
    let log = d.log_text();
    assert!(
        log.contains("database reopened after a storage failure"),
        "{log}"
    );
    // And it all survives a crash.
    d.kill9();
    d.spawn(&["--min-free-mib", "0"]);
    let mut c = d.client();
    for id in &acked {
        c.ok("prospect.get", json!({ "id": id }));
    }
}
