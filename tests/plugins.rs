//! WebAssembly plugins in the real daemon: plugin criteria and checklists,
//! hostile plugins contained, bad builds refused, plugin files swapped live.

use serde_json::{Value, json};

use crate::support::{Client, Daemon, create, default_process, plugins_dir, record, repo_root};

fn plugin(name: &str) -> String {
    plugins_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn subscriber(d: &Daemon) -> Client {
    let mut c = d.client();
    c.ok("events.subscribe", json!({}));
    c
}

/// One plugin's entry in `plugins.list`.
fn plugin_stats(c: &mut Client, name: &str) -> Value {
    let list = c.ok("plugins.list", json!({}));
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("`{name}` is not in {list}"))
        .clone()
}

fn wait_event(c: &mut Client, method: &str) -> Value {
    c.wait_notification(method)
}

/// A process whose one stage ends on a plugin criterion, then a checklist.
fn plugin_process(extra_plugins: &str) -> String {
    format!(
        r#"
[process]
name = "plugins"

[[plugins]]
name = "icp-fit"
path = "{icp}"
config = {{ min_employees = 50 }}

[[plugins]]
name = "meddpicc"
path = "{meddpicc}"
{extra_plugins}

[[stages]]
id = "qualify"
name = "Qualify"
exit = [
  {{ question = "Fits the ideal customer profile?", plugin = "icp-fit", config = {{ industries = "saas, fintech" }} }},
]

[[stages]]
id = "present"
name = "Present"
checklists = ["meddpicc"]
exit = [
  {{ question = "At least 3 of 8 MEDDPICC items done?", checklist = "meddpicc", at_least = 3 }},
]

[[stages]]
id = "close"
name = "Close"
exit = [{{ question = "Signed?", activity = "contract_signed" }}]
"#,
        icp = plugin("icp-fit"),
        meddpicc = plugin("meddpicc"),
    )
}

#[test]
fn plugin_criteria_and_checklists_move_prospects() {
    let d = Daemon::start_with(&plugin_process(""));
    let mut c = d.client();
    let id = create(
        &mut c,
        "Ada",
        json!({ "fields": { "employees": 10, "industry": "SaaS" } }),
    );
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["verdicts"][0]["met"], false);
    assert!(
        p["verdicts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("employees 10 < 50"),
        "{p}"
    );

    // Plugin config from the [[plugins]] entry and the criterion merge.
    let r = c.ok(
        "prospect.update",
        json!({ "id": id, "fields": { "employees": 200 } }),
    );
    assert_eq!(r["stage"], "present", "{r}");
    assert_eq!(
        r["moves"][0]["verdicts"][0]["reason"],
        "ICP score 2/2 (employees 200 ≥ 50; industry SaaS)"
    );

    // The stage's checklist is shown with evidence.
    let p = c.ok("prospect.get", json!({ "id": id }));
    let checklist = &p["checklists"][0];
    assert_eq!(checklist["name"], "meddpicc");
    assert_eq!(checklist["total"], 8);
    assert_eq!(checklist["done"], 0);
    assert_eq!(checklist["items"][1]["label"], "Economic buyer identified");
    assert!(
        p["verdicts"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("0 of 8 `meddpicc` items done, 3 needed")
    );

    c.ok(
        "prospect.update",
        json!({ "id": id, "fields": { "metrics": "cut churn 10%", "champion": "Dana" } }),
    );
    assert_eq!(
        c.ok("prospect.get", json!({ "id": id }))["stage"],
        "present"
    );
    let r = c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "economic_buyer_met", "actor": "prospect" }),
    );
    assert_eq!(r["stage"], "close", "third MEDDPICC item done: {r}");

    let out = d.cli(&["prospect", "show", &id.to_string()]);
    assert!(out.status.success());
    let icp = plugin_stats(&mut c, "icp-fit");
    assert!(icp["calls"].as_u64().unwrap() >= 2, "{icp}");
    assert_eq!(icp["failures"], 0);
    assert_eq!(icp["interface"], "0.3.0");
    // icp-fit reads only fields, so the daemon leaves the activity log out;
    // the checklists read it.
    assert_eq!(icp["reads_activities"], false);
    assert_eq!(plugin_stats(&mut c, "meddpicc")["reads_activities"], true);
    assert_eq!(icp["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn the_default_process_shows_methodology_checklists() {
    let d = Daemon::start();
    let mut c = d.client();
    let id = create(
        &mut c,
        "Ada",
        json!({ "stage": "connect", "fields": { "budget": 20000 } }),
    );
    let p = c.ok("prospect.get", json!({ "id": id }));
    let bant = &p["checklists"][0];
    assert_eq!(bant["name"], "bant");
    assert_eq!(bant["items"][0]["done"], true, "{bant}");
    assert_eq!(bant["items"][0]["evidence"], "`budget`: 20000");
    let out = d.cli(&["plugins", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "bant",
        "challenger",
        "forecast",
        "icp-fit",
        "inbound",
        "meddpicc",
        "sandler",
        "solution",
        "spin",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // The metric plugin folds over the data.
    c.ok(
        "prospect.update",
        json!({ "id": id, "owner": "maria", "fields": { "amount": 10000 } }),
    );
    let m = c.ok("metrics.plugin", json!({ "plugin": "forecast" }));
    let weighted = m["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "weighted_pipeline" && v["label"] == "owner=maria")
        .unwrap();
    assert_eq!(weighted["value"], 1000.0, "10000 × connect's 0.10: {m}");
}

#[test]
fn hostile_plugins_fail_closed_and_the_daemon_keeps_serving() {
    let modes = ["loop", "bomb", "recurse", "panic", "huge", "error"];
    let mut stages = String::new();
    for mode in modes {
        stages.push_str(&format!(
            "\n[[stages]]\nid = \"{mode}\"\nname = \"{mode}\"\nexit = [{{ question = \"Survives {mode}?\", plugin = \"hostile\", config = {{ mode = \"{mode}\" }} }}]\n"
        ));
    }
    let text = format!(
        "[process]\nname = \"hostile\"\n\n[[plugins]]\nname = \"hostile\"\npath = \"{}\"\nfuel = 50_000_000\nmemory_mib = 16\ntimeout_ms = 100\n\n[[plugins]]\nname = \"icp-fit\"\npath = \"{}\"\n\n[[stages]]\nid = \"good\"\nname = \"Good\"\nexit = [{{ question = \"ICP?\", plugin = \"icp-fit\", config = {{ min_employees = 1 }} }}]\n{stages}",
        plugin("hostile"),
        plugin("icp-fit")
    );
    let d = Daemon::start_with(&text);
    let mut events = subscriber(&d);
    let mut c = d.client();
    let expected = [
        ("loop", "fuel"),
        ("bomb", "memory"),
        ("recurse", "stack overflow"),
        ("panic", "hostile plugin panicked on purpose"),
        ("huge", "the limit is 1024 bytes (`max_text_bytes`)"),
        ("error", "hostile plugin returned an error"),
    ];
    for (mode, why) in expected {
        let id = create(&mut c, mode, json!({ "stage": mode }));
        let p = c.ok("prospect.get", json!({ "id": id }));
        let v = &p["verdicts"][0];
        assert_eq!(v["met"], false, "{mode} fails closed: {p}");
        assert!(v["reason"].as_str().unwrap().contains(why), "{mode}: {v}");
        let failed = wait_event(&mut events, "plugin.failed");
        assert_eq!(failed["plugin"], "hostile");
        // A good plugin still works right after.
        let good = create(
            &mut c,
            &format!("after {mode}"),
            json!({ "fields": { "employees": 5 } }),
        );
        let p = c.ok("prospect.get", json!({ "id": good }));
        assert_eq!(
            p["transitions"][1]["from"], "good",
            "icp-fit still passes: {p}"
        );
    }
    // Writes that evaluate the hostile plugin fail closed too.
    let id = create(&mut c, "writer", json!({ "stage": "loop" }));
    let r = c.ok("prospect.update", json!({ "id": id, "fields": { "x": 1 } }));
    assert_eq!(r["stage"], "loop");
    let hostile = plugin_stats(&mut c, "hostile");
    assert!(hostile["failures"].as_u64().unwrap() >= 7, "{hostile}");
    c.ok("daemon.status", json!({}));
}

/// Instances are made ahead of the calls that use them (off the caller's
/// thread), but each still serves one call: nothing a plugin keeps in its
/// memory reaches the next prospect.
#[test]
fn every_call_gets_an_instance_no_call_has_used() {
    let text = format!(
        "[process]\nname = \"fresh\"\n\n[[plugins]]\nname = \"hostile\"\npath = \"{}\"\n\n[[stages]]\nid = \"remember\"\nname = \"Remember\"\nexit = [{{ question = \"Fresh?\", plugin = \"hostile\", config = {{ mode = \"remember\" }} }}]\n",
        plugin("hostile")
    );
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "ada", json!({}));
    for i in 0..20 {
        // A different input each time, so no answer is reused.
        c.ok("prospect.update", json!({ "id": id, "fields": { "n": i } }));
        let other = create(&mut c, &format!("p{i}"), json!({ "fields": { "n": i } }));
        for id in [id, other] {
            let p = c.ok("prospect.get", json!({ "id": id }));
            let reason = p["verdicts"][0]["reason"].as_str().unwrap();
            assert!(
                reason.ends_with("call 1 of this instance"),
                "round {i}: {p}"
            );
        }
    }
    let stats = plugin_stats(&mut c, "hostile");
    assert!(stats["calls"].as_u64().unwrap() >= 40, "{stats}");
}

#[test]
fn bad_plugin_builds_are_refused_with_the_plugins_line() {
    let d = Daemon::start_with(&plugin_process(""));
    let mut events = subscriber(&d);
    let mut c = d.client();
    let wat = repo_root().join("tests/fixtures/wat");
    let corrupt = d.dir.path().join("corrupt.wasm");
    std::fs::write(
        &corrupt,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let cases = [
        (corrupt.display().to_string(), "not a WebAssembly file"),
        (
            wat.join("wasi-imports.wat").display().to_string(),
            "imports `wasi:filesystem/preopens@0.2.0`",
        ),
        (
            wat.join("no-export.wat").display().to_string(),
            "does not export the Stagecoach plugin interface",
        ),
        (
            wat.join("wrong-version.wat").display().to_string(),
            "built for plugin interface 0.1.0, but this daemon runs 0.4.0 and 0.3.0",
        ),
        (
            d.dir.path().join("missing.wasm").display().to_string(),
            "cannot read",
        ),
    ];
    for (path, message) in cases {
        let extra = format!("\n[[plugins]]\nname = \"bad\"\npath = \"{path}\"\n");
        std::fs::write(&d.process, plugin_process(&extra)).unwrap();
        let rejected = wait_event(&mut events, "process.rejected");
        let e = &rejected["errors"][0];
        assert!(
            e["message"].as_str().unwrap().contains(message),
            "{path}: {rejected}"
        );
        assert_eq!(e["key"], "plugins[2]");
        let line = plugin_process(&extra)
            .lines()
            .position(|l| l.contains("name = \"bad\""))
            .unwrap();
        assert_eq!(e["line"], line, "the [[plugins]] header line: {e}");
        assert_eq!(
            c.ok("process.get", json!({}))["version"],
            1,
            "the running version stays"
        );
    }
    // A plugin used for something it does not provide.
    let misuse = plugin_process("").replace(
        "plugin = \"icp-fit\", config = { industries = \"saas, fintech\" }",
        "checklist = \"icp-fit\"",
    );
    std::fs::write(&d.process, misuse).unwrap();
    let rejected = wait_event(&mut events, "process.rejected");
    assert!(
        rejected["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not provide a checklist"),
        "{rejected}"
    );
}

#[test]
fn a_new_plugin_build_is_swapped_in_and_a_broken_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("icp.wasm");
    std::fs::copy(plugin("icp-fit"), &live).unwrap();
    let text = plugin_process("").replace(&plugin("icp-fit"), &live.display().to_string());
    let d = Daemon::start_with(&text);
    let mut events = subscriber(&d);
    let mut c = d.client();
    let hash_of = |c: &mut Client| plugin_stats(c, "icp-fit")["hash"].clone();
    let before = hash_of(&mut c);

    // A broken build: refused, reported, the old one keeps running.
    std::fs::write(&live, b"not wasm at all").unwrap();
    let failed = wait_event(&mut events, "plugin.failed");
    assert_eq!(failed["plugin"], "icp-fit");
    assert_eq!(failed["kind"], "load");
    assert_eq!(hash_of(&mut c), before);
    let id = create(
        &mut c,
        "Ada",
        json!({ "fields": { "employees": 100, "industry": "saas" } }),
    );
    assert_eq!(
        c.ok("prospect.get", json!({ "id": id }))["stage"],
        "present",
        "the previous build still evaluates"
    );

    // A new good build (here: another plugin's component) is swapped in atomically.
    let tmp = dir.path().join("icp.wasm.tmp");
    std::fs::copy(plugin("hostile"), &tmp).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    let reloaded = wait_event(&mut events, "plugins.reloaded");
    assert_eq!(reloaded["changed"], 1);
    assert_ne!(hash_of(&mut c), before);
    let id = create(&mut c, "Grace", json!({}));
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "present");
    assert_eq!(
        p["transitions"][1]["verdicts"][0]["reason"], "behaved",
        "the new build answered: {p}"
    );
}

#[test]
fn plugin_run_prints_result_fuel_time_and_memory() {
    let d = Daemon::start();
    let fixture = repo_root().join("examples/fixtures/icp-fit.json");
    let out = d.cli(&[
        "--json",
        "plugin",
        "run",
        &plugin("icp-fit"),
        "--input",
        fixture.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["result"]["met"], true, "{r}");
    assert!(r["fuel_used"].as_u64().unwrap() > 0);
    assert!(r["micros"].as_f64().unwrap() > 0.0);
    assert!(r["peak_memory_bytes"].as_u64().unwrap() > 0);
    let out = d.cli(&[
        "plugin",
        "run",
        &plugin("meddpicc"),
        "--input",
        fixture.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Economic buyer identified"), "{text}");
    assert!(text.contains("fuel"), "{text}");
}

#[test]
fn a_plugin_criterion_reads_the_prospects_activities() {
    // The SPIN checklist's last item needs the prospect's own `value_confirmed`.
    let text = default_process();
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    let id = create(&mut c, "Ada", json!({ "stage": "research" }));
    record(&mut c, id, "requirements_shared");
    let p = c.ok("prospect.get", json!({ "id": id }));
    let spin = p["checklists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "spin")
        .unwrap();
    assert_eq!(spin["items"][3]["done"], false);
    c.ok(
        "activity.record",
        json!({ "prospect": id, "kind": "value_confirmed", "actor": "prospect" }),
    );
    let p = c.ok("prospect.get", json!({ "id": id }));
    let spin = p["checklists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "spin")
        .unwrap();
    assert_eq!(spin["items"][3]["done"], true, "{spin}");
}
