//! Exit-criterion evaluation through a WebAssembly plugin against the same
//! rule run natively, measured in the same run:
//!
//! 1. instantiation cost (fresh store + instance from the pre-instantiated component);
//! 2. one evaluation with a fresh instance (what the daemon does per call);
//! 3. one evaluation on a reused instance;
//! 4. the floor: a plugin that returns at once, on the same prospect;
//! 5. the rule compiled natively (the `icp-fit` crate called directly), and
//!    the daemon's built-in field criteria expressing the same rule;
//! 6. a methodology checklist (reads the activity log) with a fresh instance;
//! 7. end to end: `process.reevaluate` over the socket for many prospects,
//!    with the plugin criterion vs the equivalent built-in criteria.
//!
//! Items 1-6 are timed round-robin, 101 rounds of a batch of each, so all
//! of them (baselines included) see the same moments of a machine whose
//! speed drifts; each is reported as the median round, with the fastest
//! round in brackets.
//!
//! Run: `cargo bench -p stagecoach --bench plugins`
//! (`STAGECOACH_BENCH_PROSPECTS` sets the end-to-end size; default 20000).
//!
//! Profiling: `STAGECOACH_BENCH_PROFILE=fresh` (or `reused`, `floor`) with
//! `STAGECOACH_PERF_MAP=1 perf record -g target/release/deps/plugins-*`
//! loops only that call, with plugin functions named.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

mod common;
use common::{BenchDaemon, build_plugin};
use stagecoach_core::criteria::{ActivityFacts, Plugins, evaluate_stage};
use stagecoach_plugin_host::{CallInput, Limits, PluginHost};
use stagecoach_types::model::{Activity, Actor, FieldValue, Millis, Prospect, Status};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times kinds of call round-robin: each of `rounds` rounds times a batch
/// of every kind, so that every kind (and every baseline) sees the same
/// moments of a machine whose speed drifts. Returns, per kind, the median
/// and the fastest round, in µs per call.
fn interleaved(rounds: usize, kinds: &mut [(usize, &mut dyn FnMut())]) -> Vec<(f64, f64)> {
    let mut samples = vec![Vec::with_capacity(rounds); kinds.len()];
    for _ in 0..rounds {
        for ((batch, f), samples) in kinds.iter_mut().zip(&mut samples) {
            let t = Instant::now();
            for _ in 0..*batch {
                f();
            }
            samples.push(t.elapsed().as_secs_f64() * 1e6 / *batch as f64);
        }
    }
    samples
        .into_iter()
        .map(|v| {
            let best = v.iter().copied().fold(f64::INFINITY, f64::min);
            (median(v), best)
        })
        .collect()
}

fn prospect() -> (Prospect, Vec<Activity>) {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("employees".to_string(), FieldValue::Number(120.0));
    fields.insert("industry".to_string(), FieldValue::Text("SaaS".into()));
    fields.insert("budget".to_string(), FieldValue::Number(25000.0));
    fields.insert("country".to_string(), FieldValue::Text("DE".into()));
    let p = Prospect {
        id: 7,
        external_id: None,
        name: "Ada Lovelace".into(),
        company: Some("Analytical Engines".into()),
        owner: Some("maria".into()),
        fields,
        stage: "qualify".into(),
        status: Status::Open,
        created_at: Millis(0),
        stage_entered_at: Millis(1000),
        last_activity_at: Millis(5000),
        closed_at: None,
        owner_since: None,
    };
    let activities = (0..10)
        .map(|i| Activity {
            id: i,
            prospect: 7,
            kind: if i % 2 == 0 {
                "replied".into()
            } else {
                "email_sent".into()
            },
            actor: if i % 2 == 0 {
                Actor::Prospect
            } else {
                Actor::Rep
            },
            at: Millis(1000 + i as i64 * 100),
            data: Default::default(),
        })
        .collect();
    (p, activities)
}

struct Daemon {
    /// Kept for its drop, which stops the daemon.
    _child: BenchDaemon,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    id: u64,
}

impl Daemon {
    fn start(dir: &Path, process: &str) -> Daemon {
        let (child, stream) = BenchDaemon::start(dir, process, &["--no-watch"]);
        Daemon {
            _child: child,
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            id: 0,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let line = json!({ "jsonrpc": "2.0", "id": self.id, "method": method, "params": params })
            .to_string()
            + "\n";
        self.writer.write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        self.reader.read_line(&mut answer).unwrap();
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// Creates `n` prospects in batches; none meets the criteria yet.
    fn fill(&mut self, n: usize) {
        for chunk in 0..n.div_ceil(500) {
            let batch: Vec<Value> = (0..500.min(n - chunk * 500))
                .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "prospect.create",
                    "params": { "name": format!("p{}", chunk * 500 + i), "fields": { "employees": 120, "industry": "SaaS", "budget": 25000 } } }))
                .collect();
            self.writer
                .write_all((Value::Array(batch).to_string() + "\n").as_bytes())
                .unwrap();
            let mut answer = String::new();
            self.reader.read_line(&mut answer).unwrap();
        }
    }
}

/// The end-to-end process: `qualify` ends on `criterion`; its prospects are
/// created before the criterion is switched on, then re-evaluated.
fn e2e_process(criteria: &str, plugin: &Path) -> String {
    format!(
        r#"[process]
name = "bench"
[[plugins]]
name = "icp-fit"
path = "{}"
[[stages]]
id = "qualify"
name = "Qualify"
advance = "manual"
exit = [{criteria}]
[[stages]]
id = "next"
name = "Next"
exit = [{{ question = "Signed?", activity = "contract_signed" }}]
"#,
        plugin.display()
    )
}

fn e2e(dir: &Path, plugin: &Path, criteria: &str, n: usize) -> (f64, u64) {
    let manual = e2e_process(criteria, plugin);
    let mut d = Daemon::start(dir, &manual);
    d.fill(n);
    // Switch the stage to automatic and re-evaluate everyone.
    let auto = manual.replace("advance = \"manual\"\n", "");
    std::fs::write(dir.join("process.toml"), auto).unwrap();
    d.call("process.reload", json!({}));
    let t = Instant::now();
    let r = d.call("process.reevaluate", json!({}));
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r["moved"].as_u64().unwrap() as usize, n, "{r}");
    (n as f64 / secs, r["evaluated"].as_u64().unwrap())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("STAGECOACH_BENCH_PROSPECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let file = build_plugin(&dir.path().join("plugins"), "plugins/icp-fit");
    let checklist_file = build_plugin(&dir.path().join("plugins"), "plugins/meddpicc");
    let null_file = build_plugin(&dir.path().join("plugins"), "tests/fixtures/hostile");
    println!("# exit-criterion evaluation: wasm plugin vs native");
    println!(
        "command: cargo bench -p stagecoach --bench plugins   (STAGECOACH_BENCH_PROSPECTS={n})"
    );
    println!(
        "machine: {} cores; wasmtime 48 (cranelift, pooling allocator, fuel + epoch deadline on every call)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "rule: icp-fit with min_employees = 50, industries = \"saas, fintech\"; prospect with 4 fields and 10 activities"
    );
    println!();

    let host = PluginHost::new(None).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let t = Instant::now();
    let plugin = host
        .load("icp-fit", &file, &bytes, Limits::default())
        .unwrap();
    println!(
        "load (compile + link + describe)            {:>9.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let (p, activities) = prospect();
    let config = vec![
        ("min_employees".to_string(), FieldValue::Number(50.0)),
        (
            "industries".to_string(),
            FieldValue::Text("saas, fintech".into()),
        ),
    ];
    let input = CallInput {
        prospect: &p,
        activities: &activities,
        now: Millis(10_000),
        config: &config,
    };
    assert!(plugin.evaluate(&input).unwrap().0.met);

    let mut reused = plugin.reusable().unwrap();
    // The floor: a plugin that returns at once (the hostile fixture in its
    // well-behaved mode), on the same prospect, on a reused instance. What
    // remains is the component model's cost of passing the input and the
    // verdict, and the SDK's reading of the input.
    let null = host
        .load(
            "null",
            &null_file,
            &std::fs::read(&null_file).unwrap(),
            Limits::default(),
        )
        .unwrap();
    let mut null = null.reusable().unwrap();
    let null_config = vec![("mode".to_string(), FieldValue::Text("ok".into()))];
    let null_input = CallInput {
        prospect: &p,
        activities: &[],
        now: Millis(10_000),
        config: &null_config,
    };
    assert!(null.evaluate(&null_input).unwrap());
    match std::env::var("STAGECOACH_BENCH_PROFILE").as_deref() {
        // Only one kind of call, for a profiler.
        Ok("reused") => {
            for _ in 0..3_000_000 {
                std::hint::black_box(reused.evaluate(&input).unwrap());
            }
            return;
        }
        Ok("floor") => {
            for _ in 0..3_000_000 {
                std::hint::black_box(null.evaluate(&null_input).unwrap());
            }
            return;
        }
        Ok("fresh") => {
            for i in 0..1_000_000 {
                let input = CallInput {
                    now: Millis(10_000 + i),
                    ..input
                };
                std::hint::black_box(plugin.evaluate(&input).unwrap());
            }
            return;
        }
        _ => {}
    }

    // Baselines: the same rule natively.
    use stagecoach_plugin_sdk::Plugin as _;
    let sdk_input = stagecoach_plugin_sdk::Input::new(
        stagecoach_plugin_sdk::Prospect::new("qualify")
            .with_field("employees", 120)
            .with_field("industry", "SaaS"),
        10_000,
        stagecoach_plugin_sdk::Config::default()
            .with("min_employees", 50)
            .with("industries", "saas, fintech"),
    );
    let builtin = stagecoach_core::process::parse(
        r#"[process]
name = "b"
[[stages]]
id = "qualify"
name = "Q"
exit = [
  { question = "Employees?", field = "employees", op = ">=", value = 50 },
  { question = "SaaS?", field = "industry", op = "=", value = "SaaS" },
]"#,
        "bench.toml",
    )
    .unwrap();
    let facts = ActivityFacts::from_activities(&activities);

    // A methodology checklist reads the activity log: 8 items over a
    // prospect with 8 fields and 40 activities (each with two data).
    let checklist = host
        .load(
            "meddpicc",
            &checklist_file,
            &std::fs::read(&checklist_file).unwrap(),
            Limits::default(),
        )
        .unwrap();
    let mut busy = p.clone();
    for (k, v) in [
        ("metrics", "cut onboarding by 30%"),
        ("economic_buyer", "CFO"),
        ("decision_criteria", "SSO, EU hosting"),
        ("champion", "Grace"),
    ] {
        busy.fields.insert(k.into(), FieldValue::Text(v.into()));
    }
    let log: Vec<Activity> = (0..40)
        .map(|i| Activity {
            id: i,
            prospect: 7,
            kind: [
                "replied",
                "meeting_held",
                "email_sent",
                "requirements_shared",
            ][i as usize % 4]
                .into(),
            actor: if i % 4 == 2 {
                Actor::Rep
            } else {
                Actor::Prospect
            },
            at: Millis(1000 + i as i64 * 100),
            data: json!({ "channel": "email", "minutes": 30 })
                .as_object()
                .cloned()
                .unwrap(),
        })
        .collect();
    let checklist_input = CallInput {
        prospect: &busy,
        activities: &log,
        now: Millis(10_000),
        config: &[],
    };
    assert_eq!(checklist.checklist(&checklist_input).unwrap().0.len(), 8);

    let (mut tick, mut checklist_tick) = (0i64, 0i64);
    let results = interleaved(
        101,
        &mut [
            (200, &mut || {
                std::hint::black_box(plugin.reusable().unwrap());
            }),
            (200, &mut || {
                // A new `now` each call: the daemon keeps answers by input,
                // and an unseen input is what costs a call.
                tick += 1;
                let input = CallInput {
                    now: Millis(10_000 + tick),
                    ..input
                };
                std::hint::black_box(plugin.evaluate(&input).unwrap());
            }),
            (500, &mut || {
                std::hint::black_box(plugin.evaluate(&input).unwrap());
            }),
            (500, &mut || {
                std::hint::black_box(reused.evaluate(&input).unwrap());
            }),
            (500, &mut || {
                std::hint::black_box(null.evaluate(&null_input).unwrap());
            }),
            (5000, &mut || {
                std::hint::black_box(
                    icp_fit::IcpFit::evaluate(std::hint::black_box(&sdk_input)).unwrap(),
                );
            }),
            (5000, &mut || {
                std::hint::black_box(evaluate_stage(
                    &builtin.stages[0],
                    &p,
                    &facts,
                    Millis(10_000),
                    Plugins::none(),
                ));
            }),
            (100, &mut || {
                checklist_tick += 1;
                let input = CallInput {
                    now: Millis(10_000 + checklist_tick),
                    ..checklist_input
                };
                std::hint::black_box(checklist.checklist(&input).unwrap());
            }),
        ],
    );
    let labels = [
        "instantiate (fresh store + instance)",
        "evaluate, fresh instance per call (daemon, unseen input)",
        "evaluate, the same input again (answer reused)",
        "evaluate, reused instance",
        "floor: a plugin that returns at once, reused",
        "baseline: same rule, native Rust (icp-fit)",
        "baseline: built-in field criteria",
        "checklist (meddpicc, 40 activities), fresh",
    ];
    let targets = [
        "",
        "   target ≤ 10 µs",
        "",
        "   target ≤ 2 µs",
        "",
        "",
        "",
        "",
    ];
    println!("median of 101 interleaved rounds (fastest round in brackets):");
    for ((label, target), (median, best)) in labels.iter().zip(targets).zip(results) {
        println!("{label:<45}{median:>7.2} µs  ({best:>5.2}){target}");
    }
    println!();

    let plugin_criteria = r#"{ question = "ICP?", plugin = "icp-fit", config = { min_employees = 50, industries = "saas, fintech" } }"#;
    let builtin_criteria = r#"{ question = "Employees?", field = "employees", op = ">=", value = 50 }, { question = "SaaS?", field = "industry", op = "=", value = "SaaS" }"#;
    // Alternating runs, each on a fresh daemon: the two kinds see the same
    // drift of the machine.
    let (mut plugin_rates, mut native_rates) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let at = |kind: &str| dir.path().join(format!("e2e-{kind}-{round}"));
        plugin_rates.push(e2e(&at("plugin"), &file, plugin_criteria, n).0);
        native_rates.push(e2e(&at("native"), &file, builtin_criteria, n).0);
    }
    let ratios: Vec<String> = plugin_rates
        .iter()
        .zip(&native_rates)
        .map(|(p, n)| format!("{:.0} %", p / n * 100.0))
        .collect();
    let (plugin_rate, native_rate) = (median(plugin_rates), median(native_rates));
    println!(
        "process.reevaluate of {n} prospects, end to end over the socket (each moves; batches of 200, plugin criteria evaluated ahead on every core; median of 3 alternating runs):"
    );
    println!("  built-in criteria (baseline)              {native_rate:>9.0} prospects/s");
    println!("  icp-fit plugin criterion                  {plugin_rate:>9.0} prospects/s");
    println!(
        "  plugin / native                           {:>9.1} %   target ≥ 50 %   (runs: {})",
        plugin_rate / native_rate * 100.0,
        ratios.join(", ")
    );
}
