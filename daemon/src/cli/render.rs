//! What the command line prints: tables for people, from the daemon's
//! answers.

use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;
use stagecoach_types::api::results::{
    Activities, Checklist, Compare, Conformance, Conversion, Criteria, DaemonStatus, Diff, Flow,
    Moved, Outcomes, Owners, Plugins, ProcessText, ProspectMoves, ProspectPage, ProspectView,
    Recorded, Reevaluated, Simulation, StageLabel, Stalled, TimeInStage, Trends, Validation,
    Versions, Warning,
};
use stagecoach_types::api::{ReloadOutcome, ReloadResult};
use stagecoach_types::error::ProcessError;
use stagecoach_types::model::{Status, Transition, TransitionKind};

/// A value as the protocol spells it (enums lowercase, field values as
/// JSON), for printing.
fn wire<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x).unwrap_or_default() {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    }
}

use super::args::{ActivityCmd, Command, MetricsCmd, PluginCmd, ProcessCmd, ProspectCmd};

pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(headers.to_vec());
    t
}

pub(crate) fn render_process_error(e: &ProcessError) -> String {
    let mut s = format!("{}:{}:{}: ", e.file, e.line, e.column);
    if !e.key.is_empty() {
        s.push_str(&e.key);
        s.push_str(": ");
    }
    s.push_str(&e.message);
    if let Some(h) = &e.hint {
        s.push_str(&format!("\n    hint: {h}"));
    }
    s
}

/// The transitions a request caused (creation is not a move).
fn render_moves(moves: &[Transition]) {
    for m in moves.iter().filter(|m| m.kind != TransitionKind::Created) {
        println!(
            "moved {} → {} ({}) at {}",
            m.from.as_deref().unwrap_or_default(),
            m.to,
            wire(&m.kind),
            m.at
        );
    }
}

pub(crate) fn render(command: &Command, r: &Value) {
    match command {
        Command::Status { .. } => {
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
                    println!("  {}", render_process_error(e));
                }
            }
            match &r.counts {
                Some(c) => println!(
                    "prospects {} ({} open)  activities {}  transitions {}",
                    c.prospects, c.open_prospects, c.activities, c.transitions
                ),
                None => println!("prospects: the database cannot be read now"),
            }
            if let Some(reason) = &r.store.reason {
                println!("store degraded: {reason}");
            }
            for (plugin, why) in &r.plugins_unavailable {
                println!("plugin `{plugin}` {why}");
            }
            println!(
                "connections {}  commits {}  writes {}",
                r.connections, r.writer.commits, r.writer.requests
            );
        }
        Command::Process(ProcessCmd::Show {
            text: show_text, ..
        }) => {
            let Some(r) = parsed::<ProcessText>(r) else {
                return;
            };
            let Some(p) = r.process.as_ref().filter(|_| !*show_text) else {
                print!("{}", r.text);
                return;
            };
            println!("{} — version {} loaded {}", p.name, r.version, r.loaded_at);
            let mut t = table(&["#", "stage", "name", "advance", "exit criteria"]);
            for (i, s) in p.stages.iter().enumerate() {
                let criteria: Vec<&str> = s.exit.iter().map(|c| c.question.as_str()).collect();
                t.add_row(vec![
                    (i + 1).to_string(),
                    s.id.clone(),
                    s.name.clone(),
                    wire(&s.advance),
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
            let Some(r) = parsed::<Validation>(r) else {
                return;
            };
            if r.valid {
                println!("valid: {} stages", r.stages.unwrap_or_default());
                for w in &r.warnings {
                    println!("{}", render_warning("", w));
                }
                let changes = r.changes.unwrap_or_default();
                if !changes.is_empty() {
                    println!("compared with the version in force:");
                    for c in &changes {
                        println!("  {c}");
                    }
                }
            } else {
                for e in &r.errors {
                    eprintln!("{}", render_process_error(e));
                }
            }
        }
        Command::Prospect(ProspectCmd::Create { .. }) => {
            let Some(r) = parsed::<ProspectMoves>(r) else {
                return;
            };
            println!(
                "prospect {} created in `{}`",
                r.prospect.id, r.prospect.stage
            );
            render_moves(&r.moves);
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
            let Some(r) = parsed::<ProspectMoves>(r) else {
                return;
            };
            println!(
                "prospect {} updated; stage `{}`",
                r.prospect.id, r.prospect.stage
            );
            render_moves(&r.moves);
        }
        Command::Prospect(_) => {
            let Some(r) = parsed::<Moved>(r) else {
                return;
            };
            render_moves(&r.moves);
            println!("now: {} ({})", r.stage, wire(&r.status));
        }
        Command::Activity(ActivityCmd::Record { .. }) => {
            let Some(r) = parsed::<Recorded>(r) else {
                return;
            };
            let a = &r.activity;
            println!(
                "recorded `{}` by the {} at {}",
                a.kind,
                wire(&a.actor),
                a.at
            );
            render_moves(&r.moves);
            println!("now: {} ({})", r.stage, wire(&r.status));
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
        Command::Process(ProcessCmd::Simulate { file, .. }) => {
            let Some(r) = parsed::<Simulation>(r) else {
                return;
            };
            let x = &r.replayed;
            println!(
                "replayed {} prospects and {} activities under {} in {:.1} s ({} forced moves and every close as recorded; the draft's criteria made every other move)",
                int(x.prospects),
                int(x.activities),
                file.display(),
                x.seconds,
                int(x.forced_moves),
            );
            for w in &r.warnings {
                println!("warning: {w}");
            }
            println!("\nopen prospects now, as they are and under the draft:");
            let rows = r
                .stages
                .iter()
                .map(|s| {
                    vec![
                        format!("{} ({})", s.name, s.stage),
                        int(s.actual),
                        int(s.simulated),
                        format!("{:+}", s.simulated as i64 - s.actual as i64),
                    ]
                })
                .collect();
            emit(
                false,
                &["stage", "now", "under the draft", "difference"],
                rows,
            );
            if r.changes.is_empty() {
                println!("every prospect would stand where it stands");
            } else {
                let list: Vec<String> = r
                    .changes
                    .iter()
                    .map(|(k, n)| format!("{} {k}", int(*n)))
                    .collect();
                println!("would stand differently: {}", list.join(", "));
            }
            if !r.moved.is_empty() {
                let rows = r
                    .moved
                    .iter()
                    .map(|m| {
                        let place = |stage: &str, status: &Status| match status {
                            Status::Open => stage.to_string(),
                            other => format!("{} ({stage})", wire(other)),
                        };
                        vec![
                            m.id.to_string(),
                            m.name.clone(),
                            place(&m.actual_stage, &m.actual_status),
                            place(&m.simulated_stage, &m.simulated_status),
                            m.change.clone(),
                        ]
                    })
                    .collect();
                emit(
                    false,
                    &["id", "name", "now", "under the draft", "change"],
                    rows,
                );
                if (r.moved.len() as u64) < r.moved_total {
                    println!(
                        "{} of {} shown (--limit)",
                        r.moved.len(),
                        int(r.moved_total)
                    );
                }
            }
            println!("\nwho each criterion of the draft holds now:");
            let rows = r
                .criteria
                .iter()
                .map(|c| {
                    vec![
                        c.stage.clone(),
                        c.question.clone(),
                        int(c.holding),
                        num(c.held.median_days),
                    ]
                })
                .collect();
            emit(
                false,
                &["stage", "criterion", "holding", "median days held"],
                rows,
            );
            let (a, b) = (&r.actual, &r.simulated);
            println!("\n{} → {}, as it was and under the draft:", r.from, r.to);
            let mut rows = Vec::new();
            for fb in &b.flow.rows {
                let fa = a.flow.rows.iter().find(|x| x.stage == fb.stage);
                let ca = a
                    .conversion
                    .direct
                    .rows
                    .iter()
                    .find(|x| x.stage == fb.stage);
                let cb = b
                    .conversion
                    .direct
                    .rows
                    .iter()
                    .find(|x| x.stage == fb.stage);
                let ta = a.time_in_stage.rows.iter().find(|x| x.stage == fb.stage);
                let tb = b.time_in_stage.rows.iter().find(|x| x.stage == fb.stage);
                rows.push(vec![
                    stage_cell(&fb.stage, &fb.label),
                    format!(
                        "{} / {}",
                        fa.map_or("-".into(), |x| int(x.entered)),
                        int(fb.entered)
                    ),
                    format!(
                        "{} / {}",
                        fa.map_or("-".into(), |x| int(x.exited)),
                        int(fb.exited)
                    ),
                    format!(
                        "{} / {}",
                        pct(ca.and_then(|x| x.rate)),
                        pct(cb.and_then(|x| x.rate))
                    ),
                    format!(
                        "{} / {}",
                        num(ta.and_then(|x| x.completed.median_days)),
                        num(tb.and_then(|x| x.completed.median_days))
                    ),
                ]);
            }
            emit(
                false,
                &["stage", "entered", "exited", "conversion", "median days"],
                rows,
            );
            println!(
                "won {} / {}, lost {} / {}, win rate {} / {}, median cycle {} / {} days (as it was / under the draft)",
                int(a.outcomes.won),
                int(b.outcomes.won),
                int(a.outcomes.lost),
                int(b.outcomes.lost),
                pct(a.outcomes.win_rate),
                pct(b.outcomes.win_rate),
                num(a.outcomes.cycle.median_days),
                num(b.outcomes.cycle.median_days),
            );
        }
        Command::Process(ProcessCmd::Diff { .. }) => {
            let Some(r) = parsed::<Diff>(r) else {
                return;
            };
            println!("version {} → {}:", r.from, r.to);
            if r.changes.is_empty() {
                println!("  no changes");
            }
            for c in &r.changes {
                println!("  {c}");
            }
        }
        Command::Process(ProcessCmd::Reload) => {
            let Some(r) = parsed::<ReloadResult>(r) else {
                return;
            };
            match r.outcome {
                ReloadOutcome::Unchanged => {
                    println!("unchanged: version {} is in force", r.version);
                }
                ReloadOutcome::Reloaded => {
                    println!("version {} is in force (was {})", r.version, r.previous);
                    for c in &r.changes {
                        println!("  {c}");
                    }
                }
            }
        }
        Command::Process(ProcessCmd::Reevaluate) => {
            let Some(r) = parsed::<Reevaluated>(r) else {
                return;
            };
            println!(
                "evaluated {} open prospects against version {}: {} moved ({} transitions)",
                r.evaluated, r.process_version, r.moved, r.transitions
            );
        }
        Command::Plugins(PluginCmd::List) => {
            let Some(r) = parsed::<Plugins>(r) else {
                return;
            };
            let mut t = table(&[
                "plugin",
                "provides",
                "hash",
                "interface",
                "runtime",
                "fuel",
                "calls",
                "failures",
                "mean µs",
            ]);
            for p in &r.plugins {
                let provides: Vec<String> = p.provides.iter().map(wire).collect();
                t.add_row(vec![
                    p.name.clone(),
                    provides.join(", "),
                    p.hash.chars().take(12).collect(),
                    p.interface.clone(),
                    wire(&p.runtime),
                    p.limits.fuel.to_string(),
                    p.calls.to_string(),
                    p.failures.to_string(),
                    format!("{:.1}", p.mean_micros),
                ]);
            }
            println!("{t}");
        }
        Command::Metrics(cmd) => render_metrics(cmd, r),
        Command::Serve { .. }
        | Command::Watch
        | Command::Lint { .. }
        | Command::Test { .. }
        | Command::Plugins(_)
        | Command::Demo { .. }
        | Command::Import(_)
        | Command::Export(_)
        | Command::Discover(_)
        | Command::Report { .. }
        | Command::Completions { .. }
        | Command::Man { .. } => {}
    }
}

pub(crate) fn render_warning(file: &str, w: &Warning) -> String {
    let position = match (w.line, w.column) {
        (l, c) if l > 0 => format!("{file}:{l}:{c}: "),
        _ if !file.is_empty() => format!("{file}: "),
        _ => String::new(),
    };
    format!(
        "{position}warning[{}]: {}: {}\n    hint: {}",
        w.rule, w.key, w.message, w.hint
    )
}

/// A figure: `-` for none, whole numbers without decimals, others with two.
pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(f) => format!("{f:.2}"),
    }
}

/// A count with thousands separators: `1,288`.
pub(crate) fn int<N: num_format::ToFormattedString>(n: N) -> String {
    n.to_formatted_string(&num_format::Locale::en)
}

/// An amount in whole units with thousands separators and the currency
/// when the process names one: `EUR 18,262,200`.
pub(crate) fn money(v: f64, currency: Option<&str>) -> String {
    let whole = int(v.round() as i64);
    match currency {
        Some(c) => format!("{c} {whole}"),
        None => whole,
    }
}

/// A share as a percentage, `-` for none.
pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |f| format!("{:.1}%", f * 100.0))
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

/// A significance statement, short: `likely real (p 0.003)`,
/// `could be noise (-4.1 to +12.0 pts)`, `too few to tell (6 / 9)`.
pub(crate) fn said(s: &stagecoach_types::api::results::Significance) -> String {
    format!("{} ({})", s.verdict, evidence(s))
}

/// The evidence behind a significance: the p-value, the interval, or the
/// sample sizes when they are too small.
pub(crate) fn evidence(s: &stagecoach_types::api::results::Significance) -> String {
    if s.verdict == "too few to tell" {
        format!("{} / {}", s.n_a, s.n_b)
    } else if let Some(p) = s.p_value {
        format!("p {p:.3}")
    } else if let Some((l, u)) = s.interval {
        format!("{:+.1} to {:+.1} pts", l * 100.0, u * 100.0)
    } else {
        String::new()
    }
}

/// A stage's cell: its id alone in CSV (what scripts join on), named in tables.
fn cell(csv: bool, id: &str, label: &StageLabel) -> String {
    if csv {
        id.to_string()
    } else {
        stage_cell(id, label)
    }
}

/// A stage as tables name it: the name, the id, and what became of it.
pub(crate) fn stage_cell(id: &str, label: &StageLabel) -> String {
    let mut s = if label.name.is_empty() || label.name == id {
        id.to_string()
    } else {
        format!("{} ({id})", label.name)
    };
    if !label.formerly.is_empty() {
        s.push_str(&format!(", formerly {}", label.formerly.join(", ")));
    }
    if let Some(r) = &label.removed {
        s.push_str(&format!(", removed in v{}", r.in_version));
        if let Some(to) = &r.moved_to {
            s.push_str(&format!(" → {to}"));
        }
    }
    s
}

pub(crate) fn render_metrics(cmd: &MetricsCmd, r: &Value) {
    match cmd {
        MetricsCmd::Flow(p) => {
            let Some(r) = parsed::<Flow>(r) else { return };
            if !p.csv {
                println!("flow {} → {}", r.from, r.to);
                if let Some((_, window)) = r.note.split_once("; narrowed to ") {
                    println!("narrowed to {window}");
                }
            }
            let kinds = ["advanced", "skipped", "regressed", "forced", "won", "lost"];
            let mut headers = vec!["stage", "start", "entered", "exited", "end"];
            headers.extend(kinds);
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    let n = |v: i64| if p.csv { v.to_string() } else { int(v) };
                    let mut row = vec![
                        cell(p.csv, &x.stage, &x.label),
                        n(x.start),
                        n(x.entered),
                        n(x.exited),
                        n(x.end),
                    ];
                    row.extend(
                        kinds
                            .iter()
                            .map(|k| x.exited_by_kind.get(*k).map_or("-".to_string(), |v| n(*v))),
                    );
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
                        cell(p.csv, &x.stage, &x.label),
                        c.count.to_string(),
                        num(c.mean_days),
                        num(c.median_days),
                        num(c.p90_days),
                        o.count.to_string(),
                        num(o.median_days),
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
                    let n = |v: u64| if p.csv { v.to_string() } else { int(v) };
                    vec![
                        cell(p.csv, &x.stage, &x.label),
                        x.next.clone(),
                        n(x.moved_on),
                        n(x.exits),
                        n(x.forced),
                        pct(x.rate),
                    ]
                })
                .collect();
            emit(
                p.csv,
                &[
                    "stage",
                    "next",
                    "moved on",
                    "exits",
                    "forced",
                    "direct rate",
                ],
                rows,
            );
            if !p.csv {
                println!("{}", r.reached.label);
                let rows = r
                    .reached
                    .rows
                    .iter()
                    .map(|x| vec![x.stage.clone(), x.reached.to_string(), pct(x.share)])
                    .collect();
                emit(false, &["stage", "reached", "share of cohort"], rows);
            }
        }
        MetricsCmd::Outcomes(p) => {
            let Some(r) = parsed::<Outcomes>(r) else {
                return;
            };
            let cur = r.currency.as_deref();
            let m = |v: f64| money(v, cur);
            let rows = vec![
                vec!["won".into(), int(r.won)],
                vec!["lost".into(), int(r.lost)],
                vec!["win rate".into(), pct(r.win_rate)],
                vec!["cycle median days".into(), num(r.cycle.median_days)],
                vec!["cycle mean days".into(), num(r.cycle.mean_days)],
                vec![
                    "lost cycle median days".into(),
                    num(r.lost_cycle.median_days),
                ],
                vec!["lost cycle mean days".into(), num(r.lost_cycle.mean_days)],
                vec!["won imported, not earned".into(), int(r.won_imported)],
                vec!["won amount".into(), m(r.won_amount)],
                vec!["lost amount".into(), m(r.lost_amount)],
                vec![
                    "average deal size (won)".into(),
                    r.mean_won_amount.map_or("-".into(), m),
                ],
                vec!["open now".into(), int(r.open)],
                vec!["pipeline value now".into(), m(r.open_amount)],
                vec!["weighted pipeline now".into(), m(r.weighted_pipeline)],
                vec![
                    "velocity per day".into(),
                    r.velocity_per_day.map_or("-".into(), m),
                ],
            ];
            emit(p.csv, &["metric", "value"], rows);
            if p.csv {
                return;
            }
            let rows = r
                .pipeline
                .iter()
                .map(|x| {
                    vec![
                        format!("{} ({})", x.name, x.stage),
                        int(x.open),
                        m(x.amount),
                        x.probability.map_or("-".into(), |p| pct(Some(p))),
                        m(x.weighted),
                    ]
                })
                .collect();
            println!("open pipeline now, by stage:");
            emit(
                false,
                &["stage", "open", "value", "probability", "weighted"],
                rows,
            );
            if !r.lost_reasons.is_empty() {
                println!("lost in the period, by reason:");
                let rows = r
                    .lost_reasons
                    .iter()
                    .map(|x| {
                        vec![
                            x.reason
                                .clone()
                                .unwrap_or_else(|| "(no reason given)".into()),
                            int(x.count),
                            m(x.amount),
                        ]
                    })
                    .collect();
                emit(false, &["reason", "deals", "value"], rows);
            }
        }
        MetricsCmd::Stalled { csv, .. } => {
            let Some(r) = parsed::<Stalled>(r) else {
                return;
            };
            let cur = r.currency.as_deref();
            let rows = r
                .stalled
                .iter()
                .map(|x| {
                    vec![
                        x.id.to_string(),
                        x.name.clone(),
                        x.owner.clone().unwrap_or_default(),
                        x.stage.clone(),
                        if *csv {
                            x.idle_days.to_string()
                        } else {
                            int(x.idle_days)
                        },
                        x.stall_after_days.to_string(),
                        match (x.amount, *csv) {
                            (None, _) => String::new(),
                            (Some(a), true) => a.to_string(),
                            (Some(a), false) => money(a, cur),
                        },
                    ]
                })
                .collect();
            emit(
                *csv,
                &[
                    "id",
                    "name",
                    "owner",
                    "stage",
                    "idle days",
                    "stalls after",
                    "amount",
                ],
                rows,
            );
            if !*csv {
                println!(
                    "{} of {} stalled prospects shown; their value in all: {}{}",
                    int(r.stalled.len()),
                    int(r.total),
                    money(r.total_amount, cur),
                    if (r.stalled.len() as u64) < r.total {
                        " (--limit 0 shows all)"
                    } else {
                        ""
                    }
                );
            }
        }
        MetricsCmd::Owners(p) => {
            let Some(r) = parsed::<Owners>(r) else {
                return;
            };
            let cur = r.currency.as_deref();
            let m = |v: f64| if p.csv { format!("{v}") } else { money(v, cur) };
            let n = |v: u64| if p.csv { v.to_string() } else { int(v) };
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    vec![
                        if x.owner.is_empty() && !p.csv {
                            "(none)".into()
                        } else {
                            x.owner.clone()
                        },
                        n(x.open),
                        m(x.open_amount),
                        m(x.weighted),
                        n(x.moved_on),
                        n(x.won),
                        n(x.lost),
                        pct(x.win_rate),
                        num(x.cycle_median_days),
                        m(x.won_amount),
                        n(x.stalled),
                        n(x.forced),
                    ]
                })
                .collect();
            if !p.csv {
                println!(
                    "per rep, {} → {} (open, pipeline, weighted and stalled: now)",
                    r.from, r.to
                );
            }
            emit(
                p.csv,
                &[
                    "owner",
                    "open",
                    "pipeline",
                    "weighted",
                    "moved on",
                    "won",
                    "lost",
                    "win rate",
                    "cycle median days",
                    "won value",
                    "stalled",
                    "forced moves",
                ],
                rows,
            );
        }
        MetricsCmd::Criteria(p) => {
            let Some(r) = parsed::<Criteria>(r) else {
                return;
            };
            if !p.csv {
                println!(
                    "{} deals closed {} → {}{}: each criterion and checklist item as it stood when they left the stage",
                    int(r.closed),
                    r.from,
                    r.to,
                    if r.capped { " (the latest 5,000)" } else { "" }
                );
            }
            let rows = r
                .rows
                .iter()
                .map(|x| {
                    vec![
                        x.stage.clone(),
                        x.name.clone(),
                        x.mode.clone().unwrap_or_else(|| "checklist".into()),
                        format!("{} / {}", x.met.0, x.met.0 + x.met.1),
                        format!("{} / {}", x.unmet.0, x.unmet.0 + x.unmet.1),
                        format!("{} / {}", pct(x.win_rate_met), pct(x.win_rate_unmet)),
                        format!("{} ({})", x.verdict, evidence(&x.significance)),
                        if x.breaches > 0 {
                            format!(
                                "{} (now {} won, {} lost, {} open)",
                                x.breaches, x.breached_fate.0, x.breached_fate.1, x.breached_fate.2
                            )
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            emit(
                p.csv,
                &[
                    "stage",
                    "criterion or item",
                    "mode",
                    "met: won / all",
                    "unmet: won / all",
                    "win rate met / unmet",
                    "predicts?",
                    "warn breaches",
                ],
                rows,
            );
        }
        MetricsCmd::Conformance(p) => {
            let Some(r) = parsed::<Conformance>(r) else {
                return;
            };
            let table_of =
                |rows: &[stagecoach_types::api::results::ConformanceRow]| -> Vec<Vec<String>> {
                    rows.iter()
                        .map(|x| {
                            let all =
                                x.by_criteria + x.forced + x.skipped + x.regressed + x.imported;
                            vec![
                                if x.name.is_empty() {
                                    "(none)".into()
                                } else {
                                    x.name.clone()
                                },
                                int(x.by_criteria),
                                pct((all > 0).then(|| x.by_criteria as f64 / all as f64)),
                                int(x.forced),
                                int(x.skipped),
                                int(x.regressed),
                                int(x.imported),
                                int(x.lost),
                                int(x.breaches),
                            ]
                        })
                        .collect()
                };
            let headers = [
                "stage / owner",
                "by the criteria",
                "share of moves on",
                "forced",
                "skipped",
                "regressed",
                "imported",
                "lost",
                "warn breaches",
            ];
            if !p.csv {
                println!(
                    "moves out of each stage, {} → {}, by who decided them:",
                    r.from, r.to
                );
            }
            emit(p.csv, &headers, table_of(&r.stages));
            if p.csv {
                return;
            }
            println!("by owner:");
            emit(false, &headers, table_of(&r.owners));
            if !r.forced_reasons.is_empty() {
                println!("why moves were forced:");
                let rows = r
                    .forced_reasons
                    .iter()
                    .map(|x| vec![x.reason.clone(), int(x.count)])
                    .collect();
                emit(false, &["reason", "moves"], rows);
            }
            println!(
                "outcomes an import recorded without the criteria: {} won, {} lost",
                int(r.imported_wins),
                int(r.imported_losses)
            );
        }
        MetricsCmd::Trends { csv, .. } => {
            let Some(r) = parsed::<Trends>(r) else {
                return;
            };
            let cur = r.currency.as_deref();
            let stages: Vec<String> = r
                .months
                .last()
                .map(|m| m.stages.iter().map(|s| s.stage.clone()).collect())
                .unwrap_or_default();
            let mut headers: Vec<String> = vec!["month".into()];
            for s in &stages {
                if *csv {
                    headers.push(format!("{s} entered"));
                    headers.push(format!("{s} conversion"));
                } else {
                    headers.push(format!("{s}\nentered · conv."));
                }
            }
            headers.extend(["won", "lost", "win rate", "won value"].map(String::from));
            let rows = r
                .months
                .iter()
                .map(|m| {
                    let mut row = vec![m.month.clone()];
                    for s in &stages {
                        let x = m.stages.iter().find(|x| x.stage == *s);
                        let entered = x.map_or(0, |x| x.entered);
                        let rate = pct(x.and_then(|x| x.rate));
                        if *csv {
                            row.push(entered.to_string());
                            row.push(rate);
                        } else {
                            row.push(format!("{} · {rate}", int(entered)));
                        }
                    }
                    row.push(m.won.to_string());
                    row.push(m.lost.to_string());
                    row.push(pct(m.win_rate));
                    row.push(if *csv {
                        m.won_amount.to_string()
                    } else {
                        money(m.won_amount, cur)
                    });
                    row
                })
                .collect();
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            emit(*csv, &headers, rows);
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
                        stage_cell(&x.stage, &x.a.flow.label),
                        format!("{} / {}", x.a.flow.entered, x.b.flow.entered),
                        format!("{} / {}", x.a.flow.exited, x.b.flow.exited),
                        format!("{} / {}", pct(x.a.advance_rate), pct(x.b.advance_rate)),
                        x.significance
                            .as_ref()
                            .map_or(String::new(), |s| said(&s.conversion)),
                        format!(
                            "{} / {}",
                            num(x.a.time_in_stage.median_days),
                            num(x.b.time_in_stage.median_days)
                        ),
                        x.significance
                            .as_ref()
                            .map_or(String::new(), |s| said(&s.time_in_stage)),
                    ]
                })
                .collect();
            emit(
                false,
                &[
                    "stage",
                    "entered A / B",
                    "exited A / B",
                    "conversion A / B",
                    "real?",
                    "median days A / B",
                    "real?",
                ],
                rows,
            );
            if let Some(w) = &r.win_rate {
                let [a, b] = w.sides();
                println!("win rate {a} / {b}: {}", said(&w.significance));
            }
            println!(
                "real?: conversion and win rate by a difference-of-proportions interval (Newcombe, 95%), days in stage by Mann–Whitney (p < 0.05); fewer than 10 on a side is too few to tell"
            );
        }
    }
}
