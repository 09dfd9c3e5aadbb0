//! What the command line prints: tables for people, from the daemon's
//! answers.

use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};
use stagecoach_types::api::results::{
    Activities, Checklist, Compare, Conversion, DaemonStatus, Flow, Outcomes, ProspectPage,
    ProspectView, Stalled, TimeInStage, Versions,
};

/// A value as the protocol spells it (enums lowercase, field values as
/// JSON), for printing.
fn wire<T: serde::Serialize>(x: &T) -> String {
    text(&serde_json::to_value(x).unwrap_or_default())
}

use super::args::{ActivityCmd, Command, MetricsCmd, PluginCmd, ProcessCmd, ProspectCmd};

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(headers.to_vec());
    t
}

pub(crate) fn render_process_error(e: &Value) -> String {
    let mut s = format!(
        "{}:{}:{}: ",
        text(&e["file"]),
        text(&e["line"]),
        text(&e["column"])
    );
    if let Some(key) = e["key"].as_str().filter(|k| !k.is_empty()) {
        s.push_str(key);
        s.push_str(": ");
    }
    s.push_str(&text(&e["message"]));
    if let Some(h) = e["hint"].as_str() {
        s.push_str(&format!("\n    hint: {h}"));
    }
    s
}

pub(crate) fn render_moves(moves: &Value) {
    for m in moves.as_array().into_iter().flatten() {
        if m["kind"] == "created" {
            continue;
        }
        println!(
            "moved {} → {} ({}) at {}",
            text(&m["from"]),
            text(&m["to"]),
            text(&m["kind"]),
            text(&m["at"])
        );
    }
}

pub(crate) fn render(command: &Command, r: &Value) {
    match command {
        Command::Status => {
            let Some(r) = parsed::<DaemonStatus>(r) else {
                return;
            };
            println!(
                "stagecoach {}  pid {}  up {}s",
                r.daemon_version, r.pid, r.uptime_seconds
            );
            println!("socket    {}", r.socket);
            println!("data dir  {}", r.data_dir);
            let p = &r.process;
            println!(
                "process   {} v{} ({}) from {}",
                p.name,
                p.version,
                p.hash.chars().take(12).collect::<String>(),
                p.path
            );
            if let Some(review) = &p.review {
                println!("review due: {}", review.message);
            }
            if let Some(invalid) = &p.last_error {
                println!("last rejected edit:");
                for e in &invalid.errors {
                    println!("  {}", render_process_error(&json!(e)));
                }
            }
            let c = &r.counts;
            println!(
                "prospects {} ({} open)  activities {}  transitions {}",
                c.prospects, c.open_prospects, c.activities, c.transitions
            );
            println!(
                "connections {}  commits {}  writes {}",
                r.connections, r.writer.commits, r.writer.requests
            );
        }
        Command::Process(ProcessCmd::Show {
            text: show_text, ..
        }) => {
            if *show_text || r.get("process").is_none() {
                print!("{}", text(&r["text"]));
                return;
            }
            let p = &r["process"];
            println!(
                "{} — version {} loaded {}",
                text(&p["name"]),
                r["version"],
                text(&r["loaded_at"])
            );
            let mut t = table(&["#", "stage", "name", "advance", "exit criteria"]);
            for (i, s) in p["stages"].as_array().into_iter().flatten().enumerate() {
                let criteria: Vec<String> = s["exit"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| text(&c["question"]))
                    .collect();
                t.add_row(vec![
                    (i + 1).to_string(),
                    text(&s["id"]),
                    text(&s["name"]),
                    text(&s["advance"]),
                    criteria.join("\n"),
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Versions) => {
            let Some(r) = parsed::<Versions>(r) else {
                return;
            };
            let mut t = table(&["version", "loaded at", "in force from", "hash", "path"]);
            for v in &r.versions {
                let mark = if v.version == r.current {
                    " (current)"
                } else {
                    ""
                };
                t.add_row(vec![
                    format!("{}{mark}", v.version),
                    v.loaded_at.to_string(),
                    v.in_force_from.to_string(),
                    v.hash.chars().take(12).collect(),
                    v.path.clone(),
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Validate { .. }) => {
            if r["valid"] == json!(true) {
                println!("valid: {} stages", r["stages"]);
                for w in r["warnings"].as_array().into_iter().flatten() {
                    println!("{}", render_warning("", w));
                }
                let changes = r["changes"].as_array().map_or(0, Vec::len);
                if changes > 0 {
                    println!("compared with the version in force:");
                    for c in r["changes"].as_array().into_iter().flatten() {
                        println!("  {}", text(c));
                    }
                }
            } else {
                for e in r["errors"].as_array().into_iter().flatten() {
                    eprintln!("{}", render_process_error(e));
                }
            }
        }
        Command::Prospect(ProspectCmd::Create { .. }) => {
            println!("prospect {} created in `{}`", r["id"], text(&r["stage"]));
            render_moves(&r["moves"]);
        }
        Command::Prospect(ProspectCmd::Get { .. } | ProspectCmd::Evaluate { .. }) => {
            let Some(v) = parsed::<ProspectView>(r) else {
                return;
            };
            let p = &v.prospect;
            println!("prospect {}: {}", p.id, p.name);
            if let Some(company) = &p.company {
                println!("company   {company}");
            }
            if let Some(owner) = &p.owner {
                println!("owner     {owner}");
            }
            println!(
                "stage     {} ({})  status {}  since {}",
                v.stage_name.clone().unwrap_or_default(),
                p.stage,
                wire(&p.status),
                p.stage_entered_at
            );
            if !p.fields.is_empty() {
                let list: Vec<String> = p
                    .fields
                    .iter()
                    .map(|(k, value)| format!("{k}={}", wire(value)))
                    .collect();
                println!("fields    {}", list.join("  "));
            }
            if let Some(verdicts) = &v.verdicts {
                let ready = if v.ready == Some(true) {
                    format!(
                        "ready to move to `{}`",
                        v.next_stage.clone().unwrap_or_default()
                    )
                } else {
                    "not ready to move on".to_string()
                };
                println!("exit criteria ({ready}):");
                for verdict in verdicts {
                    let mark = if verdict.met { "✓" } else { "✗" };
                    println!("  {mark} {}  — {}", verdict.question, verdict.reason);
                }
            }
            for c in &v.checklists {
                match c {
                    Checklist::Failed { name, error } => {
                        println!("checklist {name}: unavailable ({error})");
                    }
                    Checklist::Items {
                        name,
                        done,
                        total,
                        items,
                    } => {
                        println!("checklist {name} ({done}/{total} done):");
                        for item in items {
                            let mark = if item.done { "✓" } else { "·" };
                            println!("  {mark} {}  — {}", item.label, item.evidence);
                        }
                    }
                }
            }
            if let Some(history) = &v.transitions {
                let mut t = table(&["at", "from", "to", "kind", "version", "reason"]);
                for m in history {
                    t.add_row(vec![
                        m.at.to_string(),
                        m.from.clone().unwrap_or_default(),
                        m.to.clone(),
                        wire(&m.kind),
                        m.process_version.to_string(),
                        m.reason.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
        }
        Command::Prospect(ProspectCmd::List { .. }) => {
            let Some(page) = parsed::<ProspectPage>(r) else {
                return;
            };
            let mut t = table(&[
                "id",
                "name",
                "company",
                "owner",
                "stage",
                "status",
                "in stage since",
            ]);
            for p in &page.prospects {
                let status = wire(&p.status);
                let status_cell = match status.as_str() {
                    "won" => Cell::new(status).fg(Color::Green),
                    "lost" => Cell::new(status).fg(Color::Red),
                    _ => Cell::new(status),
                };
                t.add_row(vec![
                    Cell::new(p.id),
                    Cell::new(&p.name),
                    Cell::new(p.company.clone().unwrap_or_default()),
                    Cell::new(p.owner.clone().unwrap_or_default()),
                    Cell::new(&p.stage),
                    status_cell,
                    Cell::new(p.stage_entered_at),
                ]);
            }
            println!("{t}");
            if let Some(next) = page.next {
                println!("more: --after {next}");
            }
        }
        Command::Prospect(ProspectCmd::Update { .. }) => {
            println!(
                "prospect {} updated; stage `{}`",
                r["id"],
                text(&r["stage"])
            );
            render_moves(&r["moves"]);
        }
        Command::Prospect(_) => {
            render_moves(&r["moves"]);
            println!("now: {} ({})", text(&r["stage"]), text(&r["status"]));
        }
        Command::Activity(ActivityCmd::Record { .. }) => {
            let a = &r["activity"];
            println!(
                "recorded `{}` by the {} at {}",
                text(&a["kind"]),
                text(&a["actor"]),
                text(&a["at"])
            );
            render_moves(&r["moves"]);
            println!("now: {} ({})", text(&r["stage"]), text(&r["status"]));
        }
        Command::Activity(ActivityCmd::List { .. }) => {
            let Some(list) = parsed::<Activities>(r) else {
                return;
            };
            let mut t = table(&["id", "at", "kind", "actor", "data"]);
            for a in &list.activities {
                let data = if a.data.is_empty() {
                    String::new()
                } else {
                    Value::Object(a.data.clone()).to_string()
                };
                t.add_row(vec![
                    a.id.to_string(),
                    a.at.to_string(),
                    a.kind.clone(),
                    wire(&a.actor),
                    data,
                ]);
            }
            println!("{t}");
        }
        Command::Process(ProcessCmd::Diff { .. }) => {
            println!("version {} → {}:", r["from"], r["to"]);
            let changes = r["changes"].as_array().cloned().unwrap_or_default();
            if changes.is_empty() {
                println!("  no changes");
            }
            for c in changes {
                println!("  {}", text(&c));
            }
        }
        Command::Process(ProcessCmd::Reload) => match r["outcome"].as_str() {
            Some("unchanged") => println!("unchanged: version {} is in force", r["version"]),
            _ => {
                println!(
                    "version {} is in force (was {})",
                    r["version"], r["previous"]
                );
                for c in r["changes"].as_array().into_iter().flatten() {
                    println!("  {}", text(c));
                }
            }
        },
        Command::Process(ProcessCmd::Reevaluate) => {
            println!(
                "evaluated {} open prospects against version {}: {} moved ({} transitions)",
                r["evaluated"], r["process_version"], r["moved"], r["transitions"]
            );
        }
        Command::Plugins(PluginCmd::List) => {
            let mut t = table(&[
                "plugin",
                "provides",
                "hash",
                "interface",
                "calls",
                "failures",
                "mean µs",
            ]);
            for p in r["plugins"].as_array().into_iter().flatten() {
                let provides: Vec<String> = p["provides"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                t.add_row(vec![
                    text(&p["name"]),
                    provides.join(", "),
                    text(&p["hash"]).chars().take(12).collect(),
                    text(&p["interface"]),
                    text(&p["calls"]),
                    text(&p["failures"]),
                    format!("{:.1}", p["mean_micros"].as_f64().unwrap_or(0.0)),
                ]);
            }
            println!("{t}");
        }
        Command::Metrics(cmd) => render_metrics(cmd, r),
        Command::Serve { .. }
        | Command::Watch
        | Command::Lint { .. }
        | Command::Plugins(_)
        | Command::Demo { .. }
        | Command::Import(_)
        | Command::Export(_)
        | Command::Discover(_)
        | Command::Report { .. } => {}
    }
}

pub(crate) fn render_warning(file: &str, w: &Value) -> String {
    let position = match (w["line"].as_u64(), w["column"].as_u64()) {
        (Some(l), Some(c)) if l > 0 => format!("{file}:{l}:{c}: "),
        _ if !file.is_empty() => format!("{file}: "),
        _ => String::new(),
    };
    format!(
        "{position}warning[{}]: {}: {}\n    hint: {}",
        text(&w["rule"]),
        text(&w["key"]),
        text(&w["message"]),
        text(&w["hint"])
    )
}

pub(crate) fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => text(other),
    }
}

pub(crate) fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("-".into(), |f| format!("{:.1}%", f * 100.0))
}

/// Prints rows as CSV (`--csv`) or as a table.
pub(crate) fn emit(csv_out: bool, headers: &[&str], rows: Vec<Vec<String>>) {
    if csv_out {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        let _ = w.write_record(headers);
        for r in rows {
            let _ = w.write_record(&r);
        }
        let _ = w.flush();
        return;
    }
    let mut t = table(headers);
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

/// The answer as its typed result; an answer that is not one is printed as
/// it came (never silently dropped).
fn parsed<T: serde::de::DeserializeOwned>(r: &Value) -> Option<T> {
    match serde_json::from_value(r.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("unexpected answer ({e}):\n{r:#}");
            None
        }
    }
}

/// A share as a percentage, `-` for none.
fn share(v: Option<f64>) -> String {
    pct(&json!(v))
}

/// Days, as `num` prints them.
fn days(v: Option<f64>) -> String {
    num(&json!(v))
}

pub(crate) fn render_metrics(cmd: &MetricsCmd, r: &Value) {
    match cmd {
        MetricsCmd::Flow(p) => {
            let Some(r) = parsed::<Flow>(r) else { return };
            if !p.csv {
                println!("flow {} → {}", r.from, r.to);
            }
            let kinds = ["advanced", "skipped", "regressed", "forced", "won", "lost"];
            let mut headers = vec!["stage", "start", "entered", "exited", "end"];
            headers.extend(kinds);
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    let mut row = vec![
                        x.stage.clone(),
                        x.start.to_string(),
                        x.entered.to_string(),
                        x.exited.to_string(),
                        x.end.to_string(),
                    ];
                    row.extend(kinds.iter().map(|k| {
                        x.exited_by_kind
                            .get(*k)
                            .map_or("-".to_string(), |n| n.to_string())
                    }));
                    row
                })
                .collect();
            emit(p.csv, &headers, rows);
        }
        MetricsCmd::TimeInStage(p) => {
            let Some(r) = parsed::<TimeInStage>(r) else {
                return;
            };
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    let (c, o) = (&x.completed, &x.open_ages);
                    vec![
                        x.stage.clone(),
                        c.count.to_string(),
                        days(c.mean_days),
                        days(c.median_days),
                        days(c.p90_days),
                        o.count.to_string(),
                        days(o.median_days),
                    ]
                })
                .collect();
            emit(
                p.csv,
                &[
                    "stage",
                    "stays ended",
                    "mean days",
                    "median days",
                    "p90 days",
                    "open now",
                    "open median days",
                ],
                rows,
            );
        }
        MetricsCmd::Conversion(p) => {
            let Some(r) = parsed::<Conversion>(r) else {
                return;
            };
            if !p.csv {
                println!("{}", r.direct.label);
            }
            let rows = r
                .direct
                .rows
                .iter()
                .map(|x| {
                    vec![
                        x.stage.clone(),
                        x.next.clone(),
                        x.moved_on.to_string(),
                        x.exits.to_string(),
                        share(x.rate),
                    ]
                })
                .collect();
            emit(
                p.csv,
                &["stage", "next", "moved on", "exits", "direct rate"],
                rows,
            );
            if !p.csv {
                println!("{}", r.reached.label);
                let rows = r
                    .reached
                    .rows
                    .iter()
                    .map(|x| vec![x.stage.clone(), x.reached.to_string(), share(x.share)])
                    .collect();
                emit(false, &["stage", "reached", "share of cohort"], rows);
            }
        }
        MetricsCmd::Outcomes(p) => {
            let Some(r) = parsed::<Outcomes>(r) else {
                return;
            };
            let rows = vec![
                vec!["won".into(), r.won.to_string()],
                vec!["lost".into(), r.lost.to_string()],
                vec!["win rate".into(), share(r.win_rate)],
                vec!["cycle median days".into(), days(r.cycle.median_days)],
                vec!["cycle mean days".into(), days(r.cycle.mean_days)],
                vec![
                    "lost cycle median days".into(),
                    days(r.lost_cycle.median_days),
                ],
                vec!["lost cycle mean days".into(), days(r.lost_cycle.mean_days)],
                vec![
                    "won imported, not earned".into(),
                    r.won_imported.to_string(),
                ],
                vec!["open".into(), r.open.to_string()],
                vec!["won amount".into(), num(&json!(r.won_amount))],
                vec!["mean won amount".into(), num(&json!(r.mean_won_amount))],
                vec!["velocity per day".into(), num(&json!(r.velocity_per_day))],
                vec!["weighted pipeline".into(), num(&json!(r.weighted_pipeline))],
            ];
            emit(p.csv, &["metric", "value"], rows);
        }
        MetricsCmd::Stalled { csv, .. } => {
            let Some(r) = parsed::<Stalled>(r) else {
                return;
            };
            let rows = r
                .stalled
                .iter()
                .map(|x| {
                    vec![
                        x.id.to_string(),
                        x.name.clone(),
                        x.owner.clone().unwrap_or_default(),
                        x.stage.clone(),
                        x.idle_days.to_string(),
                        x.stall_after_days.to_string(),
                    ]
                })
                .collect();
            emit(
                *csv,
                &["id", "name", "owner", "stage", "idle days", "stalls after"],
                rows,
            );
        }
        MetricsCmd::Compare { .. } => {
            let Some(r) = parsed::<Compare>(r) else {
                return;
            };
            println!(
                "A: {} → {} (version {})   B: {} → {} (version {})",
                r.a.from,
                r.a.to,
                r.a.version.map_or("-".into(), |v| v.to_string()),
                r.b.from,
                r.b.to,
                r.b.version.map_or("-".into(), |v| v.to_string())
            );
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    vec![
                        x.stage.clone(),
                        format!("{} / {}", x.a.flow.entered, x.b.flow.entered),
                        format!("{} / {}", x.a.flow.exited, x.b.flow.exited),
                        format!("{} / {}", share(x.a.advance_rate), share(x.b.advance_rate)),
                        format!(
                            "{} / {}",
                            days(x.a.time_in_stage.median_days),
                            days(x.b.time_in_stage.median_days)
                        ),
                    ]
                })
                .collect();
            emit(
                false,
                &[
                    "stage",
                    "entered A / B",
                    "exited A / B",
                    "advance rate A / B",
                    "median days A / B",
                ],
                rows,
            );
        }
    }
}
