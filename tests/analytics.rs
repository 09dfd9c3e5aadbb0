//! The numbers outside Stagecoach: the Parquet export read by DuckDB with
//! the SQL of docs/analytics.md reproduces `metrics.flow` and
//! `metrics.time_in_stage` for every stage and month of a demo history, and
//! the OCEL 2.0 export loads in pm4py with the counts and directly-follows
//! relations the history has. DuckDB and pm4py come from PyPI, pinned in
//! tests/analytics/requirements.txt, installed into target/analytics-venv
//! the first time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

/// The Python of the analytics venv, created and filled on first use.
fn python() -> &'static Path {
    static PY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PY.get_or_init(|| {
        let root = repo_root();
        let requirements = root.join("tests/analytics/requirements.txt");
        let venv = root.join("target/analytics-venv");
        let python = venv.join("bin/python");
        let wanted = std::fs::read_to_string(&requirements).unwrap();
        let stamp = venv.join("installed-requirements.txt");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
            return python;
        }
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::fs::remove_dir_all(&venv);
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&requirements));
        std::fs::write(&stamp, wanted).unwrap();
        python
    })
}

/// Runs one of tests/analytics/*.py with `args` in `dir`; its JSON output.
fn script(name: &str, dir: &Path, args: &[&Path]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("tests/analytics").join(name))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A daemon on the default process with the tests' demo history in it.
fn demo_daemon() -> Daemon {
    let d = Daemon::start();
    let out = d.demo(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn export(d: &Daemon, args: &[&str]) {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let out = d.cli(&all);
    assert!(
        out.status.success(),
        "export {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A query's rows keyed by their first two columns (stage, month).
fn by_stage_month(result: &Value) -> BTreeMap<(String, String), Vec<Value>> {
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_str().unwrap().to_string(),
                ),
                r[2..].to_vec(),
            )
        })
        .collect()
}

/// The first day of `month` (`YYYY-MM`) and of the month after.
fn month_bounds(month: &str) -> (String, String) {
    let (y, m) = month.split_once('-').unwrap();
    let (y, m): (i32, u32) = (y.parse().unwrap(), m.parse().unwrap());
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (format!("{y}-{m:02}-01"), format!("{ny}-{nm:02}-01"))
}

#[test]
fn the_duckdb_recipe_reproduces_flow_and_time_in_stage_for_every_stage_and_month() {
    let d = demo_daemon();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("export");
    export(
        &d,
        &["--format", "parquet", "--out", files.to_str().unwrap()],
    );
    // Each file written beside its name and renamed when complete: nothing
    // else is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "activities.parquet",
            "prospects.parquet",
            "stages.parquet",
            "transitions.parquet"
        ]
    );
    // Its mode is a file the shell would create: 0666 less the umask (a
    // temporary file's 0600 otherwise).
    use std::os::unix::fs::PermissionsExt;
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    let mode = std::fs::metadata(files.join("prospects.parquet"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666 & !umask, "{mode:o}, umask {umask:o}");
    // A file name where a directory is meant is refused.
    let out = d.cli(&["export", "--format", "parquet", "--out", "all.parquet"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("looks like a file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two teams' exports side by side, as the organisation-wide recipe lays
    // them out (the same history twice: each team's figures are known).
    for team in ["north", "south"] {
        let to = files.join(format!("exports/team={team}"));
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            files.join("transitions.parquet"),
            to.join("transitions.parquet"),
        )
        .unwrap();
    }
    let doc = repo_root().join("docs/analytics.md");
    let sql = script("duckdb_recipe.py", &files, &[&doc]);

    // Typed columns.
    let types = &sql["types"];
    assert_eq!(
        types["transitions"]["at"], "TIMESTAMP WITH TIME ZONE",
        "{types}"
    );
    assert_eq!(types["transitions"]["imported"], "BOOLEAN");
    assert_eq!(types["transitions"]["process_version"], "BIGINT");
    assert_eq!(types["transitions"]["from"], "VARCHAR");
    assert_eq!(types["prospects"]["created_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(types["prospects"]["closed_at"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(types["prospects"]["fields"], "JSON");
    assert_eq!(types["activities"]["data"], "JSON");
    assert_eq!(types["activities"]["id"], "BIGINT");
    assert_eq!(types["stages"]["probability"], "DOUBLE");
    assert_eq!(
        types["stages"]["in_force_until"],
        "TIMESTAMP WITH TIME ZONE"
    );

    // Every record, once.
    let mut c = d.client();
    let counts = c.ok("daemon.status", json!({}))["counts"].clone();
    for table in ["prospects", "activities", "transitions"] {
        assert_eq!(sql["counts"][table], counts[table], "{table}: {counts}");
    }

    let flow = by_stage_month(&sql["flow"]);
    let tis = by_stage_month(&sql["time_in_stage"]);
    let months: std::collections::BTreeSet<String> = flow.keys().map(|(_, m)| m.clone()).collect();
    assert!(months.len() >= 6, "the demo spans six months: {months:?}");
    let mut compared = 0;
    let mut moving = 0;
    let mut entered_total: HashMap<String, i64> = HashMap::new();
    let mut answered = std::collections::BTreeSet::new();
    for month in &months {
        let (from, to) = month_bounds(month);
        let answer = c.ok("metrics.flow", json!({"from": from, "to": to}));
        let times = c.ok("metrics.time_in_stage", json!({"from": from, "to": to}));
        for row in answer["rows"].as_array().unwrap() {
            let stage = row["stage"].as_str().unwrap().to_string();
            let key = (stage.clone(), month.clone());
            let daemon = vec![
                row["start"].clone(),
                row["entered"].clone(),
                row["exited"].clone(),
                row["end"].clone(),
            ];
            let recipe = flow.get(&key).cloned().unwrap_or_else(|| vec![json!(0); 4]);
            answered.insert(key.clone());
            assert_eq!(recipe, daemon, "flow of {stage} in {month}");
            *entered_total.entry(stage).or_default() += row["entered"].as_i64().unwrap();
            compared += 1;
            if row["entered"].as_i64() > Some(0) && row["exited"].as_i64() > Some(0) {
                moving += 1;
            }
        }
        for row in times["rows"].as_array().unwrap() {
            let stage = row["stage"].as_str().unwrap().to_string();
            let done = &row["completed"];
            let daemon = vec![
                done["count"].clone(),
                done["mean_days"].clone(),
                done["median_days"].clone(),
                done["p90_days"].clone(),
                done["p25_days"].clone(),
                done["p75_days"].clone(),
            ];
            match tis.get(&(stage.clone(), month.clone())) {
                Some(recipe) => assert_eq!(recipe, &daemon, "time in {stage} in {month}"),
                None => assert_eq!(done["count"], 0, "time in {stage} in {month}"),
            }
        }
    }
    assert!(
        compared >= 30 && moving >= 20,
        "{compared} rows, {moving} moving"
    );
    // Every row the recipe has is one the daemon answered (no stage the
    // daemon leaves out).
    for key in flow.keys().chain(tis.keys()) {
        assert!(
            answered.contains(key),
            "{key:?} is not in the daemon's answers"
        );
    }

    // Money from the JSON fields column: won value per month as
    // metrics.outcomes answers it.
    let won_by_month = sql["won_by_month"].as_array().unwrap();
    assert!(won_by_month.len() >= 3, "{won_by_month:?}");
    for row in won_by_month {
        let (month, amount, won) = (row[0].as_str().unwrap(), &row[1], &row[2]);
        let (from, to) = month_bounds(month);
        let o = c.ok("metrics.outcomes", json!({"from": from, "to": to}));
        assert_eq!(&o["won"], won, "{month}");
        let diff = (o["won_amount"].as_f64().unwrap() - amount.as_f64().unwrap()).abs();
        assert!(diff < 1e-6, "{month}: {} vs {amount}", o["won_amount"]);
    }

    // Flow for every team at once: each team's rows are the history's.
    for team in ["north", "south"] {
        let rows: BTreeMap<(String, String), Vec<Value>> = sql["teams_flow"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[0] == team)
            .map(|r| {
                let r = r.as_array().unwrap();
                let key = (
                    r[1].as_str().unwrap().to_string(),
                    r[2].as_str().unwrap().to_string(),
                );
                (key, r[3..].to_vec())
            })
            .collect();
        assert_eq!(rows, flow, "team {team}");
    }

    // The stages table weighs the open pipeline as metrics.outcomes does.
    let now = c.ok(
        "metrics.outcomes",
        json!({"from": "2026-01-01", "to": "2026-02-01"}),
    );
    let row = &sql["weighted_pipeline"]["rows"][0];
    let diff = (row[0].as_f64().unwrap() - now["weighted_pipeline"].as_f64().unwrap()).abs();
    assert!(diff < 1e-6, "{row} vs {}", now["weighted_pipeline"]);
    assert_eq!(row[1], counts["open_prospects"], "{counts}");
    assert!(now["weighted_pipeline"].as_f64() > Some(0.0));

    // One daemon per team: the team column from the directory names.
    let teams = &sql["teams"]["rows"];
    for team in ["north", "south"] {
        let rows: HashMap<String, i64> = teams
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[0] == team)
            .map(|r| (r[1].as_str().unwrap().to_string(), r[2].as_i64().unwrap()))
            .collect();
        let expected: HashMap<String, i64> = entered_total
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (s.clone(), *n))
            .collect();
        assert_eq!(rows, expected, "team {team}");
    }
}

/// NDJSON export of one table, parsed.
fn ndjson(d: &Daemon, table: &str) -> Vec<Value> {
    let out = d.cli(&["export", table, "--format", "ndjson"]);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_ocel_export_loads_in_pm4py_with_the_history_s_events_objects_and_steps() {
    let d = demo_daemon();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("history.jsonocel");
    export(&d, &["--format", "ocel", "--out", log.to_str().unwrap()]);
    let mined = script("pm4py_ocel.py", dir.path(), &[&log]);
    // Fields and activity data are prefixed, so no object or event has two
    // attributes of one name; the amount field is there.
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let items = raw["objects"].as_array().unwrap().iter();
    for item in items.chain(raw["events"].as_array().unwrap()) {
        let names: Vec<&str> = item["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{item}");
    }
    let amounts = raw["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "field.amount")
        })
        .count();
    assert!(amounts > 0, "no prospect has field.amount");

    let prospects = ndjson(&d, "prospects");
    let activities = ndjson(&d, "activities");
    let transitions = ndjson(&d, "transitions");
    // Owners now, and those an owner change named.
    let owners: std::collections::BTreeSet<&str> = prospects
        .iter()
        .filter_map(|p| p["owner"].as_str())
        .chain(
            activities
                .iter()
                .filter(|a| a["kind"] == "fields_updated")
                .filter_map(|a| a["data"]["owner"].as_str()),
        )
        .collect();
    assert!(owners.len() >= 3, "{owners:?}");
    assert_eq!(
        mined["events"],
        activities.len() + transitions.len(),
        "{}",
        mined["event_types"]
    );
    assert_eq!(mined["objects"], prospects.len() + owners.len());
    assert_eq!(mined["object_types"]["prospect"], prospects.len());
    assert_eq!(mined["object_types"]["owner"], owners.len());
    let won = transitions.iter().filter(|t| t["kind"] == "won").count();
    assert!(won > 0);
    assert_eq!(mined["event_types"]["won"], won);

    // The steps as the history has them: each prospect's activities and
    // moves in time order (an activity before the move it caused at the
    // same instant; moves among themselves in the order they were made).
    let step = |t: &Value| match t["kind"].as_str().unwrap() {
        "won" | "lost" => t["kind"].as_str().unwrap().to_string(),
        _ => format!("entered {}", t["to"].as_str().unwrap()),
    };
    let time = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let mut per_prospect: BTreeMap<u64, Vec<(jiff::Timestamp, String)>> = BTreeMap::new();
    for a in &activities {
        per_prospect
            .entry(a["prospect"].as_u64().unwrap())
            .or_default()
            .push((time(&a["at"]), a["kind"].as_str().unwrap().to_string()));
    }
    for t in &transitions {
        per_prospect
            .entry(t["prospect"].as_u64().unwrap())
            .or_default()
            .push((time(&t["at"]), step(t)));
    }
    let mut dfg: BTreeMap<(String, String), u64> = BTreeMap::new();
    for steps in per_prospect.values_mut() {
        steps.sort_by_key(|s| s.0); // stable

        for pair in steps.windows(2) {
            *dfg.entry((pair[0].1.clone(), pair[1].1.clone()))
                .or_default() += 1;
        }
    }
    let discovered: BTreeMap<(String, String), u64> = mined["dfg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_str().unwrap().to_string(),
                ),
                r[2].as_u64().unwrap(),
            )
        })
        .collect();
    // One relation by name: a prospect's reply is followed by its move to
    // connect (the reply is what moves it).
    let reply = ("replied".to_string(), "entered connect".to_string());
    assert!(dfg[&reply] > 10, "{dfg:?}");
    assert_eq!(discovered.get(&reply), dfg.get(&reply));
    assert_eq!(discovered, dfg);
}
