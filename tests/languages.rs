//! Plugins written in Python and TypeScript, in the real daemon: the same
//! rules give the same answers as the Rust plugins, byte for byte; they get
//! their runtime's limits; and hostile ones are contained like Rust ones.

use serde_json::{Value, json};

use crate::support::*;

fn built(name: &str) -> String {
    if name.ends_with("-py") || name.ends_with("-ts") {
        polyglot_plugins_dir()
            .join(format!("{name}.wasm"))
            .display()
            .to_string()
    } else {
        plugins_dir()
            .join(format!("{name}.wasm"))
            .display()
            .to_string()
    }
}

const LANGUAGES: [&str; 3] = ["rust", "py", "ts"];

/// The file a plugin in `language` was built to.
fn file(plugin: &str, language: &str) -> String {
    if language == "rust" {
        built(plugin)
    } else {
        built(&format!("{plugin}-{language}"))
    }
}

/// icp-fit and bant in each language, under their language's name; a stage
/// whose exit asks all three icp-fits (and an activity that never comes, so
/// every verdict stays in view), one with no config, and one with the three
/// BANT checklists.
fn three_language_process() -> String {
    let mut plugins = String::new();
    for l in LANGUAGES {
        plugins.push_str(&format!(
            "[[plugins]]\nname = \"icp-{l}\"\npath = \"{}\"\n\n[[plugins]]\nname = \"bant-{l}\"\npath = \"{}\"\n\n",
            file("icp-fit", l),
            file("bant", l)
        ));
    }
    let config = "{ min_employees = 50, min_budget = 0.00000005, industries = \"SaaS, fintech, énergie, 日本語 🚀\", countries = \"deutschland, türkiye, Österreich\", min_score = 0.5 }";
    let criteria = |config: &str| {
        LANGUAGES
            .iter()
            .map(|l| format!("  {{ question = \"ICP ({l})?\", plugin = \"icp-{l}\"{config} }},\n"))
            .collect::<String>()
    };
    format!(
        "[process]\nname = \"three languages\"\n\n{plugins}\
         [[stages]]\nid = \"fit\"\nname = \"Fit\"\nexit = [\n{}  {{ question = \"Never\", activity = \"never\" }},\n]\n\n\
         [[stages]]\nid = \"empty\"\nname = \"Empty config\"\nexit = [\n{}  {{ question = \"Never\", activity = \"never\" }},\n]\n\n\
         [[stages]]\nid = \"bant\"\nname = \"BANT\"\nchecklists = [\"bant-rust\", \"bant-py\", \"bant-ts\"]\n\
         exit = [{{ question = \"Never\", activity = \"never\" }}]\n",
        criteria(&format!(", config = {config}")),
        criteria(""),
    )
}

/// The verdicts of the three icp-fits, in language order.
fn icp_verdicts(p: &Value) -> Vec<(bool, String)> {
    let verdicts = p["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 4, "{p}");
    verdicts[..3]
        .iter()
        .zip(LANGUAGES)
        .map(|(v, l)| {
            // A failure names the plugin; the rest must be the same.
            let reason = v["reason"]
                .as_str()
                .unwrap()
                .replace(&format!("icp-{l}"), "PLUGIN");
            (v["met"].as_bool().unwrap(), reason)
        })
        .collect()
}

#[test]
fn the_same_rules_in_rust_python_and_typescript_give_the_same_answers() {
    let d = Daemon::start_with(&three_language_process());
    let mut c = d.client();
    let cases = [
        (
            json!({ "employees": 120, "industry": "SaaS", "country": "Deutschland" }),
            "ICP score 3/4 (employees 120 ≥ 50; industry SaaS; country Deutschland; `budget` not set)",
        ),
        (
            json!({ "employees": " 75 ", "industry": "ÉNERGIE", "country": "Türkiye" }),
            "ICP score 2/4 (employees 75 ≥ 50; country Türkiye; `budget` not set; industry ÉNERGIE not in SaaS, fintech, énergie, 日本語 🚀)",
        ),
        (
            json!({ "employees": 12.5, "budget": 0.30000000000000004, "industry": "retail" }),
            "ICP score 1/4 (budget 0.30000000000000004 ≥ 0.00000005; employees 12.5 < 50; industry retail not in SaaS, fintech, énergie, 日本語 🚀; `country` not set)",
        ),
        (
            json!({ "employees": "inf", "budget": 1e-7, "industry": "日本語 🚀", "country": "ÖSTERREICH" }),
            "ICP score 4/4 (employees inf ≥ 50; budget 0.0000001 ≥ 0.00000005; industry 日本語 🚀; country ÖSTERREICH)",
        ),
        (
            json!({ "employees": 2.5e16, "budget": 1e21, "industry": 42 }),
            "ICP score 2/4 (employees 25000000000000000 ≥ 50; budget 1000000000000000000000 ≥ 0.00000005; `industry` not set; `country` not set)",
        ),
        (
            json!({ "employees": "1_000", "budget": true, "industry": "" }),
            "ICP score 0/4 (`employees` not set; `budget` not set; industry  not in SaaS, fintech, énergie, 日本語 🚀; `country` not set)",
        ),
        (
            json!({}),
            "ICP score 0/4 (`employees` not set; `budget` not set; `industry` not set; `country` not set)",
        ),
    ];
    for (i, (fields, rust_reason)) in cases.iter().enumerate() {
        let id = create(
            &mut c,
            &format!("Zoë {i}"),
            json!({ "stage": "fit", "fields": fields }),
        );
        let p = c.ok("prospect.get", json!({ "id": id }));
        let v = icp_verdicts(&p);
        assert_eq!(v[0].1, *rust_reason, "the Rust plugin on {fields}");
        assert_eq!(v[1], v[0], "Python against Rust on {fields}");
        assert_eq!(v[2], v[0], "TypeScript against Rust on {fields}");
    }

    // An empty config is the same error in every language.
    let id = create(&mut c, "No config", json!({ "stage": "empty" }));
    let v = icp_verdicts(&c.ok("prospect.get", json!({ "id": id })));
    assert!(!v[0].0);
    assert!(v[0].1.contains("icp-fit has no checks configured"), "{v:?}");
    assert_eq!(v[1], v[0]);
    assert_eq!(v[2], v[0]);

    // Checklists: fields, actions by the prospect and by the rep, ties in
    // time, yes/no fields, non-ASCII evidence.
    let checklist_cases = [
        (json!({}), vec![]),
        (
            json!({ "budget": 0, "decision_maker": false, "timeline": "  ", "close_date": "fin de T3 — 2026" }),
            vec![
                ("rep", "requirements_shared", "2026-01-01T00:00:01Z"),
                ("prospect", "decision_maker_met", "2026-01-01T00:00:02Z"),
                ("prospect", "decision_maker_met", "2026-01-01T00:00:02Z"),
            ],
        ),
        (
            json!({ "budget": "20 000 €", "decision_maker": true, "need": "Ersatz für Excel" }),
            vec![("prospect", "requirements_shared", "2026-01-01T00:00:05Z")],
        ),
    ];
    let mut ids = Vec::new();
    for (i, (fields, activities)) in checklist_cases.iter().enumerate() {
        let id = create(
            &mut c,
            &format!("Ødegård {i}"),
            json!({ "stage": "bant", "fields": fields, "at": "2026-01-01T00:00:00Z" }),
        );
        for (actor, kind, at) in activities {
            c.ok(
                "activity.record",
                json!({ "prospect": id, "kind": kind, "actor": actor, "at": at }),
            );
        }
        ids.push(id);
        let p = c.ok("prospect.get", json!({ "id": id }));
        let lists = p["checklists"].as_array().unwrap();
        assert_eq!(lists.len(), 3, "{p}");
        assert_eq!(lists[0]["items"].as_array().unwrap().len(), 4, "{p}");
        assert_eq!(lists[1]["items"], lists[0]["items"], "Python's BANT: {p}");
        assert_eq!(
            lists[2]["items"], lists[0]["items"],
            "TypeScript's BANT: {p}"
        );
        assert_eq!(lists[1]["done"], lists[0]["done"]);
        assert_eq!(lists[2]["done"], lists[0]["done"]);
    }
    // What the checklists said is what BANT says: spot-check the second case.
    let p = c.ok("prospect.get", json!({ "id": ids[1] }));
    let items = &p["checklists"][1]["items"];
    assert_eq!(items[0]["evidence"], "`budget`: 0");
    assert_eq!(
        items[1]["evidence"],
        "`decision_maker_met` recorded (at 1767225602000 ms)"
    );
    assert_eq!(
        items[2]["evidence"],
        "no `requirements_shared` by the prospect yet"
    );
    assert_eq!(items[3]["evidence"], "`close_date`: fin de T3 — 2026");

    // plugins.list says what runs each one, with its runtime's limits.
    let list = c.ok("plugins.list", json!({}));
    let table = String::from_utf8(d.cli(&["plugins", "list"]).stdout).unwrap();
    let by_name = |name: &str| {
        list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    // The Rust plugins speak interface 0.3.0 (records), the Python and
    // TypeScript ones 0.4.0 (packed): one daemon runs both, and the answers
    // above are the same.
    for (name, runtime, interface, fuel, memory) in [
        ("icp-rust", "compiled", "0.3.0", 10_000_000u64, 32),
        ("icp-py", "python", "0.4.0", 400_000_000, 128),
        ("icp-ts", "quickjs", "0.4.0", 400_000_000, 64),
        ("bant-py", "python", "0.4.0", 400_000_000, 128),
        ("bant-ts", "quickjs", "0.4.0", 400_000_000, 64),
    ] {
        let p = by_name(name);
        assert_eq!(p["runtime"], runtime, "{p}");
        assert_eq!(p["interface"], interface, "{p}");
        // The command line's table says the same.
        let row = table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{table}"));
        assert!(row.contains(&format!(" {runtime} ")), "{row}");
        assert!(row.contains(&format!(" {interface} ")), "{row}");
        assert!(row.contains(&format!(" {fuel} ")), "{row}");
        assert_eq!(p["limits"]["fuel"], fuel, "{p}");
        assert_eq!(p["limits"]["memory_mib"], memory, "{p}");
        // Only the empty config fails, the same in every language.
        let expected = if name.starts_with("icp") { 2 } else { 0 };
        assert_eq!(p["failures"], expected, "{p}");
    }
}

#[test]
fn hostile_python_and_typescript_plugins_fail_closed_and_the_daemon_keeps_serving() {
    let modes = [
        ("loop", "fuel", "fuel"),
        ("bomb", "MemoryError", "out of memory"),
        (
            "recurse",
            "RecursionError: maximum recursion depth exceeded",
            "stack overflow",
        ),
        (
            "throw",
            "ZeroDivisionError: division by zero (hostile.py, line",
            "TypeError: cannot read property 'field' of undefined",
        ),
        (
            "error",
            "hostile plugin returned an error",
            "hostile plugin returned an error",
        ),
        (
            "wrong",
            "`evaluate` returned str, not a Verdict",
            "`evaluate` must return { met, reason }",
        ),
    ];
    let mut text = String::from("[process]\nname = \"hostile languages\"\n\n");
    for l in ["py", "ts"] {
        // The runtime's fuel and memory; time enough that a loop always
        // ends on fuel, however loaded the machine.
        text.push_str(&format!(
            "[[plugins]]\nname = \"hostile-{l}\"\npath = \"{}\"\ntimeout_ms = 20000\n\n",
            built(&format!("hostile-{l}"))
        ));
    }
    text.push_str(&format!(
        "[[plugins]]\nname = \"icp-py\"\npath = \"{}\"\n\n[[stages]]\nid = \"good\"\nname = \"Good\"\nexit = [{{ question = \"ICP?\", plugin = \"icp-py\", config = {{ min_employees = 1 }} }}]\n",
        built("icp-fit-py")
    ));
    for (mode, _, _) in modes
        .iter()
        .chain(&[("print", "", ""), ("remember", "", "")])
    {
        for l in ["py", "ts"] {
            text.push_str(&format!(
                "\n[[stages]]\nid = \"{mode}-{l}\"\nname = \"{mode} {l}\"\nexit = [{{ question = \"Survives {mode}?\", plugin = \"hostile-{l}\", config = {{ mode = \"{mode}\" }} }}]\n"
            ));
        }
    }
    text.push_str("\n[[stages]]\nid = \"end\"\nname = \"End\"\n");
    let d = Daemon::start_with(&text);
    let mut c = d.client();
    for (mode, py, ts) in modes {
        for (l, why) in [("py", py), ("ts", ts)] {
            let id = create(&mut c, mode, json!({ "stage": format!("{mode}-{l}") }));
            let p = c.ok("prospect.get", json!({ "id": id }));
            let v = &p["verdicts"][0];
            assert_eq!(v["met"], false, "{mode} in {l} fails closed: {p}");
            assert!(
                v["reason"].as_str().unwrap().contains(why),
                "{mode} in {l}: {v}"
            );
            // A good plugin still answers right after.
            let good = create(
                &mut c,
                &format!("after {mode} {l}"),
                json!({ "fields": { "employees": 5 } }),
            );
            let p = c.ok("prospect.get", json!({ "id": good }));
            assert_eq!(p["transitions"][1]["from"], "good", "{p}");
        }
    }
    // print() and console.log reach the daemon's log, and the call succeeds.
    for l in ["py", "ts"] {
        let id = create(&mut c, "printer", json!({ "stage": format!("print-{l}") }));
        let p = c.ok("prospect.get", json!({ "id": id }));
        assert_ne!(p["stage"], format!("print-{l}"), "printing is met: {p}");
    }
    // Every call starts from the plugin's initial memory: a module global
    // counting calls says 1 each time, however many calls came before and
    // whatever they left in the heap.
    for round in 0..4 {
        for l in ["py", "ts"] {
            let id = create(
                &mut c,
                &format!("remember {round}"),
                json!({ "stage": format!("remember-{l}") }),
            );
            let p = c.ok("prospect.get", json!({ "id": id }));
            assert_eq!(
                p["verdicts"][0]["reason"], "call 1 of 20000",
                "round {round} in {l}: {p}"
            );
        }
    }
    let log = d.log_text();
    assert!(log.contains("hello from print, café"), "{log}");
    assert!(
        log.contains("hello from console.log, café {\"n\":1}"),
        "{log}"
    );
    assert!(log.contains("to stderr"), "{log}");
    // A prospect logged shows its values, read from the host's bytes.
    assert!(
        log.contains("prospect {\"id\":")
            && log.contains("\"stage\":\"print-ts\",\"status\":\"open\""),
        "{log}"
    );
    c.ok("daemon.status", json!({}));
}

#[test]
fn interpreted_checklists_over_300_activities_pass_within_their_runtime_defaults() {
    let d = Daemon::start_with(&three_language_process());
    let mut c = d.client();
    let id = create(
        &mut c,
        "Busy",
        json!({ "stage": "bant", "fields": { "budget": 50000 }, "at": "2026-01-01T00:00:00Z" }),
    );
    let kinds = [
        "replied",
        "email_sent",
        "meeting_held",
        "requirements_shared",
    ];
    for i in 0..300 {
        c.ok(
            "activity.record",
            json!({
                "prospect": id,
                "kind": kinds[i % kinds.len()],
                "actor": if i % 3 == 0 { "rep" } else { "prospect" },
                "at": format!("2026-01-{:02}T{:02}:00:00Z", 2 + i / 24, i % 24),
                "data": { "note": format!("café {i}") },
            }),
        );
    }
    let p = c.ok("prospect.get", json!({ "id": id }));
    let lists = p["checklists"].as_array().unwrap();
    assert_eq!(lists.len(), 3, "{p}");
    assert_eq!(
        lists[0]["items"][2]["evidence"], "`requirements_shared` recorded (at 1768388400000 ms)",
        "the Rust BANT: {p}"
    );
    assert_eq!(lists[1]["items"], lists[0]["items"], "Python's BANT: {p}");
    assert_eq!(
        lists[2]["items"], lists[0]["items"],
        "TypeScript's BANT: {p}"
    );
    let list = c.ok("plugins.list", json!({}));
    for p in list["plugins"].as_array().unwrap() {
        assert_eq!(p["failures"], 0, "within its runtime's defaults: {p}");
    }
}

#[test]
fn a_new_plugin_project_in_each_language_tests_builds_and_runs_outside_the_repository() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("input.json");
    std::fs::write(
        &fixture,
        r#"{ "config": { "min_employees": 100 }, "prospect": { "stage": "connect", "fields": { "employees": 120 } } }"#,
    )
    .unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .env(
                "STAGECOACH_TOOLCHAINS",
                root.join("target/plugin-toolchains"),
            )
            .env(
                "STAGECOACH_PLUGIN_CACHE",
                root.join("target/test-plugin-cache"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    for lang in ["rust", "python", "ts"] {
        let project = dir.path().join(lang);
        let created = run(&[
            &os("plugins"),
            &os("new"),
            &os("big-enough"),
            &os("--lang"),
            &os(lang),
            &os("--dir"),
            project.as_os_str(),
        ]);
        assert!(created.contains("stagecoach plugins build"), "{created}");
        run(&[&os("plugins"), &os("test"), project.as_os_str()]);
        let out = dir.path().join(format!("out-{lang}"));
        let target = root.join("target/plugin-build");
        run(&[
            &os("plugins"),
            &os("build"),
            project.as_os_str(),
            &os("--out"),
            out.as_os_str(),
            &os("--target-dir"),
            target.as_os_str(),
        ]);
        let file = out.join("big-enough.wasm");
        let answer: Value = serde_json::from_str(&run(&[
            &os("--json"),
            &os("plugins"),
            &os("run"),
            file.as_os_str(),
            &os("--input"),
            fixture.as_os_str(),
            &os("--cache"),
            root.join("target/test-plugin-cache").as_os_str(),
        ]))
        .unwrap();
        assert_eq!(
            answer["result"],
            json!({ "met": true, "reason": "120 employees" }),
            "{lang}: {answer}"
        );
    }
}

/// Starts a stopped daemon again with an empty compile cache (what a new
/// daemon build or an emptied cache means): the cache's directory, and a
/// client subscribed to events.
fn restart_with_cold_cache(d: &mut Daemon) -> (std::path::PathBuf, Client) {
    let cold = d.dir.path().join("cold-cache");
    d.env
        .push(("STAGECOACH_PLUGIN_CACHE".into(), cold.display().to_string()));
    d.spawn(&[]);
    let mut events = d.client();
    events.ok("events.subscribe", json!({}));
    (cold, events)
}

/// The reason of a prospect's first exit criterion, from `prospect.get`.
fn first_reason(p: &Value) -> &str {
    p["verdicts"][0]["reason"].as_str().unwrap()
}

/// A daemon restarted on the process in force with a cold compile cache
/// (emptied, or a new daemon build) serves at once: a large plugin (an
/// interpreter's: QuickJS here, about 5 s to compile) compiles in the
/// background, its criteria are unmet meanwhile and say why,
/// `daemon.status` (and `stagecoach status`) name it, and when it is ready
/// it is swapped in and the open prospects it held are evaluated again.
#[test]
fn a_daemon_serves_while_a_cold_interpreted_plugin_compiles() {
    let text = format!(
        "[process]\nname = \"cold\"\n\n[[plugins]]\nname = \"icp-ts\"\npath = \"{}\"\n\n\
         [[stages]]\nid = \"fit\"\nname = \"Fit\"\n\
         exit = [{{ question = \"ICP?\", plugin = \"icp-ts\", config = {{ min_employees = 50, industries = \"saas\" }} }}]\n\n\
         [[stages]]\nid = \"next\"\nname = \"Next\"\nexit = [{{ question = \"Never\", activity = \"never\" }}]\n",
        file("icp-fit", "ts")
    );
    // First start: the test run's warm cache, version 1 in force.
    let mut d = Daemon::start_with(&text);
    d.stop();
    let (cold, mut events) = restart_with_cold_cache(&mut d);
    let mut c = d.client();
    let status = c.ok("daemon.status", json!({}));
    let why = status["plugins_unavailable"]["icp-ts"]
        .as_str()
        .unwrap_or_else(|| panic!("icp-ts is still compiling: {status}"));
    assert!(why.starts_with("is being compiled"), "{status}");
    let shown = d.cli(&["status"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("plugin `icp-ts` {why}")),
        "the CLI shows what the protocol says:\n{shown}"
    );
    let id = create(
        &mut c,
        "ada",
        json!({ "fields": { "employees": 120, "industry": "SaaS" } }),
    );
    let waiting = create(&mut c, "small", json!({ "fields": { "employees": 3 } }));
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "fit", "{p}");
    assert_eq!(p["verdicts"][0]["met"], false, "{p}");
    assert_eq!(
        p["verdicts"][0]["reason"],
        format!("plugin `icp-ts` {why}"),
        "{p}"
    );
    // Other requests are served meanwhile.
    c.ok("process.get", json!({}));

    let reloaded = events.wait_notification("plugins.reloaded");
    assert_eq!(reloaded["changed"], 1, "{reloaded}");
    let moved = events.wait_notification("prospect.moved");
    assert_eq!(moved["prospect"]["id"], id, "{moved}");
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "next", "evaluated again once ready: {p}");
    let p = c.ok("prospect.get", json!({ "id": waiting }));
    assert_eq!(p["stage"], "fit", "{p}");
    assert!(
        first_reason(&p).contains("employees"),
        "now the plugin's own reason: {p}"
    );
    let status = c.ok("daemon.status", json!({}));
    assert!(status.get("plugins_unavailable").is_none(), "{status}");
    assert!(
        cold.read_dir().unwrap().next().is_some(),
        "compiled into the cache"
    );
}

/// A plugin compiled in the background is checked against the uses the
/// process makes of it, as at any load: a build replaced while the daemon
/// was down by one that no longer provides a checklist is not swapped in.
#[test]
fn a_plugin_compiled_in_the_background_is_checked_against_its_uses() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("bant.wasm");
    std::fs::copy(file("bant", "ts"), &plugin).unwrap();
    let text = format!(
        "[process]\nname = \"swapped\"\n\n[[plugins]]\nname = \"bant-ts\"\npath = \"{}\"\n\n\
         [[stages]]\nid = \"qualify\"\nname = \"Qualify\"\nexit = [{{ question = \"BANT?\", checklist = \"bant-ts\" }}]\n",
        plugin.display()
    );
    let mut d = Daemon::start_with(&text);
    d.stop();
    // Rebuilt while the daemon was down: now an exit criterion, not a checklist.
    std::fs::copy(file("icp-fit", "ts"), &plugin).unwrap();
    let (_, mut events) = restart_with_cold_cache(&mut d);
    let failed = events.wait_notification("plugin.failed");
    assert_eq!(failed["plugin"], "bant-ts", "{failed}");
    let mut c = d.client();
    let status = c.ok("daemon.status", json!({}));
    let why = status["plugins_unavailable"]["bant-ts"].as_str().unwrap();
    assert!(why.contains("does not provide a checklist"), "{status}");
    let id = create(&mut c, "ada", json!({}));
    let p = c.ok("prospect.get", json!({ "id": id }));
    assert_eq!(p["stage"], "qualify", "{p}");
    assert!(
        first_reason(&p).contains("does not provide a checklist"),
        "{p}"
    );
}
