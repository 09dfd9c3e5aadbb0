//! Figures a sales manager hands on: true under renames and removed
//! stages, one definition of conversion everywhere, and what the command
//! line prints equal to the protocol's answer.

use serde_json::{Value, json};

use crate::support::*;

/// The default process with `research` replaced by `qualify` (its
/// prospects migrated there) and `close` renamed to `negotiate`.
fn reshaped_process() -> String {
    let text = default_process();
    let start = text.find("[[stages]]\nid = \"research\"").unwrap();
    let end = text[start..].find("[[stages]]\nid = \"present\"").unwrap() + start;
    let qualify = r#"[[stages]]
id = "qualify"
name = "Qualify"
description = "Agree the need, the budget and a demo."
stall_after_days = 21
probability = 0.25
exit = [
  { question = "Did the prospect accept a demo date?", activity = "demo_scheduled", actor = "prospect" },
]

"#;
    let text = format!("{}{qualify}{}", &text[..start], &text[end..]);
    let text = text.replacen(
        "id = \"close\"\nname = \"Close\"",
        "id = \"negotiate\"\nname = \"Negotiate\"\nrenamed_from = [\"close\"]",
        1,
    );
    format!("{text}\n[migrate]\nresearch = \"qualify\"\n")
}

/// Four deals reach research in November; two deals in close end there,
/// one won and one lost; then the process changes.
fn history(c: &mut Client) -> (Vec<u64>, u64, u64) {
    let mut researched = Vec::new();
    for i in 0..4 {
        let id = create(
            c,
            &format!("Deal {i}"),
            json!({ "stage": "connect", "at": "2026-11-02T10:00:00Z", "owner": "maria" }),
        );
        c.ok(
            "activity.record",
            json!({ "prospect": id, "kind": "meeting_held", "actor": "prospect", "at": "2026-11-05T10:00:00Z" }),
        );
        researched.push(id);
    }
    let won = create(
        c,
        "Won deal",
        json!({ "stage": "close", "at": "2026-11-03T10:00:00Z", "owner": "tom" }),
    );
    c.ok(
        "activity.record",
        json!({ "prospect": won, "kind": "contract_signed", "actor": "prospect", "at": "2026-11-10T10:00:00Z" }),
    );
    let lost = create(
        c,
        "Lost deal",
        json!({ "stage": "close", "at": "2026-11-03T10:00:00Z", "owner": "tom" }),
    );
    c.ok(
        "prospect.close",
        json!({ "id": lost, "outcome": "lost", "reason": "No budget", "at": "2026-11-12T10:00:00Z" }),
    );
    let r = c.ok("process.reload", json!({ "text": reshaped_process() }));
    assert_eq!(r["version"], 2, "{r}");
    (researched, won, lost)
}

fn row<'a>(rows: &'a Value, stage: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == stage)
        .unwrap_or_else(|| panic!("no `{stage}` row in {rows:#}"))
}

const PERIOD: (&str, &str) = ("2026-11-01", "2027-01-01");

fn row_by_key<'a>(rows: &'a Value, key: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no `{key}` row in {rows:#}"))
}

#[test]
fn a_removed_stage_keeps_its_history_in_the_period_it_held_prospects() {
    let d = Daemon::start();
    let mut c = d.client();
    let (researched, _, _) = history(&mut c);
    let period = json!({ "from": PERIOD.0, "to": PERIOD.1 });

    let flow = c.ok("metrics.flow", period.clone());
    let stages: Vec<&str> = flow["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "prospect",
            "connect",
            "research",
            "qualify",
            "present",
            "negotiate"
        ],
        "the removed stage sits where it was: {flow:#}"
    );
    let research = row(&flow["rows"], "research");
    assert_eq!(research["name"], "Research");
    assert_eq!(
        research["removed"],
        json!({ "in_version": 2, "moved_to": "qualify" })
    );
    assert_eq!(
        (
            research["start"].as_i64(),
            research["entered"].as_i64(),
            research["exited"].as_i64(),
            research["end"].as_i64()
        ),
        (Some(0), Some(4), Some(4), Some(0))
    );
    assert_eq!(
        research["exited_by_kind"]["forced"], 4,
        "the migration's moves are forced"
    );
    let qualify = row(&flow["rows"], "qualify");
    assert_eq!(
        (qualify["entered"].as_i64(), qualify["end"].as_i64()),
        (Some(4), Some(4))
    );
    // The renamed stage is the same stage: its history under the old id.
    let negotiate = row(&flow["rows"], "negotiate");
    assert_eq!(negotiate["formerly"], json!(["close"]));
    assert_eq!(
        (negotiate["entered"].as_i64(), negotiate["exited"].as_i64()),
        (Some(2), Some(2))
    );
    // The funnel reconciles: everything that entered a stage is somewhere.
    for r in flow["rows"].as_array().unwrap() {
        assert_eq!(
            r["end"].as_i64().unwrap(),
            r["start"].as_i64().unwrap() + r["entered"].as_i64().unwrap()
                - r["exited"].as_i64().unwrap(),
            "{r}"
        );
    }

    // A period after the migration (which happened now, at the reload) has
    // no research row: nothing was there.
    let tomorrow = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap();
    let after = c.ok(
        "metrics.flow",
        json!({ "from": tomorrow.to_string(), "to": tomorrow.tomorrow().unwrap().to_string() }),
    );
    assert!(
        after["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["stage"] != "research"),
        "{after:#}"
    );
    // The removed stage can be asked for by its id.
    let one = c.ok(
        "metrics.flow",
        json!({ "from": PERIOD.0, "to": PERIOD.1, "stage": "research" }),
    );
    assert_eq!(one["rows"][0]["entered"], 4, "{one}");

    let time = c.ok("metrics.time_in_stage", period.clone());
    let stays = row(&time["rows"], "research");
    assert_eq!(stays["completed"]["count"], 4, "{stays}");
    assert_eq!(stays["removed"]["in_version"], 2);

    // Conversion: connect went on to research, not to the stage that
    // replaced it; research's exits were the migration's forced moves.
    let conv = c.ok("metrics.conversion", period.clone());
    let connect = row(&conv["direct"]["rows"], "connect");
    assert_eq!(
        (
            connect["next"].as_str(),
            connect["moved_on"].as_u64(),
            connect["exits"].as_u64()
        ),
        (Some("research"), Some(4), Some(4))
    );
    let research = row(&conv["direct"]["rows"], "research");
    assert_eq!(
        (
            research["moved_on"].as_u64(),
            research["forced"].as_u64(),
            research["exits"].as_u64()
        ),
        (Some(0), Some(4), Some(4))
    );

    // Conformance counts the moves made before the rename under the stage
    // as it is called now.
    let conf = c.ok("metrics.conformance", period.clone());
    let keys: Vec<&str> = conf["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"close"), "{keys:?}");
    let negotiate = row_by_key(&conf["stages"], "negotiate");
    assert_eq!(
        (
            negotiate["by_criteria"].as_u64(),
            negotiate["lost"].as_u64()
        ),
        (Some(1), Some(1)),
        "{conf:#}"
    );
    assert_eq!(
        row_by_key(&conf["stages"], "research")["forced"],
        4,
        "the migration's moves"
    );

    // A closed prospect in the renamed stage shows the stage's name.
    let p = c.ok("prospect.get", json!({ "id": researched[0] }));
    assert_eq!(p["stage_name"], "Qualify");
    let shown = d.cli(&["prospect", "show", &researched[0].to_string()]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("stage     Qualify (qualify)"));

    // The table says what the answer says.
    let out = d.cli(&["metrics", "flow", "--from", PERIOD.0, "--to", PERIOD.1]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Research (research)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("removed in v2 → qualify"), "{line}");
    let cells: Vec<&str> = line.split('┆').map(str::trim).collect();
    assert_eq!(&cells[1..5], ["0", "4", "4", "0"], "{line}");
}

#[test]
fn conversion_means_the_same_in_conversion_compare_and_for_the_last_stage() {
    let d = Daemon::start();
    let mut c = d.client();
    let (_, won, lost) = history(&mut c);
    let period = json!({ "from": PERIOD.0, "to": PERIOD.1 });
    let conv = c.ok("metrics.conversion", period.clone());
    let cmp = c.ok("metrics.compare", json!({ "a": period, "b": period }));
    let direct = conv["direct"]["rows"].as_array().unwrap();
    assert_eq!(direct.len(), cmp["rows"].as_array().unwrap().len());
    for d_row in direct {
        let stage = d_row["stage"].as_str().unwrap();
        let cr = row(&cmp["rows"], stage);
        for side in ["a", "b"] {
            assert_eq!(
                cr[side]["advance_rate"], d_row["rate"],
                "{stage} {side}: {cr} vs {d_row}"
            );
            assert_eq!(cr[side]["moved_on"], d_row["moved_on"], "{stage}");
        }
    }
    // The last stage converts to won: one won of two closed there.
    let last = row(&conv["direct"]["rows"], "negotiate");
    assert_eq!(last["next"], "won");
    assert_eq!(
        (last["moved_on"].as_u64(), last["exits"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(last["rate"], 0.5);
    assert_eq!(row(&cmp["rows"], "negotiate")["a"]["advance_rate"], 0.5);
    let outcomes = c.ok("metrics.outcomes", period.clone());
    assert_eq!(
        (outcomes["won"].as_u64(), outcomes["lost"].as_u64()),
        (Some(1), Some(1))
    );
    let _ = (won, lost);

    // The compare table prints the same rate.
    let out = d.cli(&[
        "metrics",
        "compare",
        "--a",
        "2026-11-01..2027-01-01",
        "--b",
        "2026-11-01..2027-01-01",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Negotiate (negotiate)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("50.0% / 50.0%"), "{line}");
}

#[test]
fn a_version_window_shorter_than_a_day_says_why_its_counts_are_zero() {
    let d = Daemon::start();
    let mut c = d.client();
    history(&mut c);
    let flow = c.ok(
        "metrics.flow",
        json!({ "from": PERIOD.0, "to": PERIOD.1, "version": 2 }),
    );
    let note = flow["note"].as_str().unwrap();
    assert!(
        note.contains("narrowed to when version 2 was in force"),
        "{note}"
    );
}

/// Deals with amounts and owners, closed and open, in a EUR process with
/// listed lost reasons.
fn money_history(c: &mut Client) {
    type Deal<'a> = (
        &'a str,
        &'a str,
        &'a str,
        f64,
        Option<(&'a str, &'a str)>,
        Option<&'a str>,
    );
    // (name, owner, stage, amount, outcome at, reason)
    let deals: [Deal; 6] = [
        (
            "Acme",
            "maria",
            "close",
            120_000.0,
            Some(("won", "2026-11-10")),
            None,
        ),
        (
            "Globex",
            "maria",
            "close",
            30_000.0,
            Some(("lost", "2026-11-12")),
            Some("No budget"),
        ),
        (
            "Initech",
            "tom",
            "present",
            45_500.0,
            Some(("lost", "2026-11-20")),
            Some("Chose a competitor"),
        ),
        ("Umbrella", "tom", "present", 80_000.0, None, None),
        ("Hooli", "tom", "connect", 12_000.0, None, None),
        ("Stark", "maria", "research", 1_250_000.0, None, None),
    ];
    for (name, owner, stage, amount, outcome, reason) in deals {
        let id = create(
            c,
            name,
            json!({ "stage": stage, "owner": owner, "at": "2026-11-02T09:00:00Z", "fields": { "amount": amount } }),
        );
        match outcome {
            Some(("won", at)) => {
                c.ok("activity.record", json!({ "prospect": id, "kind": "contract_signed", "actor": "prospect", "at": at }));
            }
            Some((_, at)) => {
                c.ok(
                    "prospect.close",
                    json!({ "id": id, "outcome": "lost", "reason": reason, "at": at }),
                );
            }
            None => {}
        }
    }
}

fn money_process() -> String {
    default_process().replacen(
        "review_every_days = 150",
        "review_every_days = 150\ncurrency = \"EUR\"\nlost_reasons = [\"No budget\", \"Chose a competitor\"]",
        1,
    )
}

#[test]
fn money_is_in_every_view_and_the_tables_print_the_answers() {
    let d = Daemon::start_with(&money_process());
    let mut c = d.client();
    money_history(&mut c);
    let nov = json!({ "from": "2026-11-01", "to": "2026-12-01" });
    let o = c.ok("metrics.outcomes", nov.clone());
    assert_eq!(o["currency"], "EUR");
    assert_eq!((o["won"].as_u64(), o["lost"].as_u64()), (Some(1), Some(2)));
    assert_eq!(o["won_amount"], 120_000.0);
    assert_eq!(o["lost_amount"], 75_500.0);
    assert_eq!(o["open"], 3);
    assert_eq!(o["open_amount"], 1_342_000.0);
    // Weighted: each open deal's amount × its stage's probability.
    let weighted = 80_000.0 * 0.50 + 12_000.0 * 0.10 + 1_250_000.0 * 0.25;
    assert!(
        (o["weighted_pipeline"].as_f64().unwrap() - weighted).abs() < 1e-6,
        "{o}"
    );
    let present = o["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == "present")
        .unwrap();
    assert_eq!(
        (present["open"].as_u64(), present["amount"].as_f64()),
        (Some(1), Some(80_000.0))
    );
    assert_eq!(present["weighted"], 40_000.0);
    assert_eq!(
        o["lost_reasons"],
        json!([
            { "reason": "Chose a competitor", "count": 1, "amount": 45_500.0 },
            { "reason": "No budget", "count": 1, "amount": 30_000.0 },
        ]),
        "most value first among equal counts"
    );
    let out = d.cli(&["metrics", "outcomes", "--month", "2026-11"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "EUR 120,000",
        "EUR 75,500",
        "EUR 1,342,000",
        &format!("EUR {}", fmt_thousands(weighted.round() as i64)),
        "Chose a competitor",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }

    // Stalled: every open deal has been idle since 2 November.
    let s = c.ok("metrics.stalled", json!({ "sort": "value", "limit": 2 }));
    assert_eq!(s["total"], 3, "{s}");
    assert_eq!(s["total_amount"], 1_342_000.0);
    let names: Vec<&str> = s["stalled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Stark", "Umbrella"], "largest first, at most 2");
    let out = d.cli(&["metrics", "stalled", "--sort", "value", "--limit", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("EUR 1,250,000"), "{text}");
    assert!(
        text.contains("2 of 3 stalled prospects shown; their value in all: EUR 1,342,000"),
        "{text}"
    );

    // The scorecard, against the deals above.
    let owners = c.ok("metrics.owners", nov.clone());
    let row = |who: &str| {
        owners["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["owner"] == who)
            .unwrap()
            .clone()
    };
    let maria = row("maria");
    assert_eq!(
        (
            maria["won"].as_u64(),
            maria["lost"].as_u64(),
            maria["open"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(maria["won_amount"], 120_000.0);
    assert_eq!(maria["win_rate"], 0.5);
    assert_eq!(maria["open_amount"], 1_250_000.0);
    assert_eq!(maria["moved_on"], 1, "the win from the last stage");
    assert_eq!(
        maria["cycle_median_days"], 7.63,
        "9:00 on 2 Nov to midnight on 10 Nov"
    );
    let tom = row("tom");
    assert_eq!(
        (
            tom["won"].as_u64(),
            tom["lost"].as_u64(),
            tom["open"].as_u64(),
            tom["stalled"].as_u64()
        ),
        (Some(0), Some(1), Some(2), Some(2))
    );
    assert_eq!(tom["win_rate"], 0.0);
    assert_eq!(owners["rows"][0]["owner"], "maria", "most won value first");
    let out = d.cli(&["metrics", "owners", "--month", "2026-11"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("maria")).unwrap();
    for want in ["EUR 1,250,000", "EUR 120,000", "50.0%"] {
        assert!(line.contains(want), "{want}: {line}");
    }

    // Trends: the months' figures are the months' answers.
    let t = c.ok("metrics.trends", json!({ "months": 3, "to": "2026-11-15" }));
    let months: Vec<&str> = t["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["month"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2026-09", "2026-10", "2026-11"]);
    let last = &t["months"][2];
    assert_eq!(
        (
            last["won"].clone(),
            last["lost"].clone(),
            last["won_amount"].clone()
        ),
        (o["won"].clone(), o["lost"].clone(), o["won_amount"].clone())
    );
    let flow = c.ok("metrics.flow", nov.clone());
    let conv = c.ok("metrics.conversion", nov.clone());
    for (i, s) in last["stages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["entered"], flow["rows"][i]["entered"], "{s}");
        assert_eq!(s["rate"], conv["direct"]["rows"][i]["rate"], "{s}");
    }
    assert_eq!(t["months"][0]["won"], 0);
    let out = d.cli(&[
        "metrics",
        "trends",
        "--months",
        "3",
        "--to",
        "2026-11-15",
        "--csv",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let nov_line = text.lines().find(|l| l.starts_with("2026-11,")).unwrap();
    assert!(nov_line.ends_with(",1,2,33.3%,120000"), "{nov_line}");
}

fn fmt_thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A figure equals the answer's value (numbers as numbers, null as null).
fn same(figs: &std::collections::BTreeMap<String, String>, key: &str, answer: &Value) {
    let shown = figs
        .get(key)
        .unwrap_or_else(|| panic!("no figure `{key}` in the report: {:?}", figs.keys()));
    match answer {
        Value::Null => assert_eq!(shown, "null", "{key}"),
        v => {
            let want = v.as_f64().unwrap_or_else(|| panic!("{key}: {v}"));
            let got: f64 = shown.parse().unwrap_or_else(|_| panic!("{key}: {shown}"));
            assert!(
                (want - got).abs() < 1e-9,
                "{key}: report {got}, answer {want}"
            );
        }
    }
}

fn report(d: &Daemon, args: &[&str]) -> String {
    let out = d.dir.path().join("report.html");
    let mut all = vec!["report", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = d.cli(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out).unwrap()
}

/// Checks every figure of a report made with `filter` against the
/// protocol's answers for the same question.
fn check_report(c: &mut Client, html: &str, filter: Value) {
    let figs = figures(html);
    let flow = c.ok("metrics.flow", filter.clone());
    let (from, to) = (flow["from"].clone(), flow["to"].clone());
    let owner = filter.get("owner").cloned();
    let period_owner = |mut p: Value| {
        if let Some(o) = &owner {
            p["owner"] = o.clone();
        }
        p
    };
    let o = c.ok(
        "metrics.outcomes",
        period_owner(json!({ "from": from, "to": to })),
    );
    for (key, field) in [
        ("won_amount", "won_amount"),
        ("win_rate", "win_rate"),
        ("won", "won"),
        ("lost", "lost"),
        ("open_amount", "open_amount"),
        ("open", "open"),
        ("weighted", "weighted_pipeline"),
        ("velocity", "velocity_per_day"),
        ("mean_won", "mean_won_amount"),
    ] {
        same(&figs, &format!("headline.{key}"), &o[field]);
    }
    same(&figs, "headline.cycle_median", &o["cycle"]["median_days"]);
    for r in flow["rows"].as_array().unwrap() {
        let s = r["stage"].as_str().unwrap();
        for k in ["start", "entered", "exited", "end"] {
            same(&figs, &format!("flow.{s}.{k}"), &r[k]);
        }
        for k in ["advanced", "won", "lost", "forced"] {
            same(&figs, &format!("flow.{s}.{k}"), &r["exited_by_kind"][k]);
        }
    }
    let flow_keys = figs.keys().filter(|k| k.starts_with("flow.")).count();
    assert_eq!(
        flow_keys,
        flow["rows"].as_array().unwrap().len() * 8,
        "no other flow rows"
    );
    let time = c.ok("metrics.time_in_stage", filter.clone());
    for r in time["rows"].as_array().unwrap() {
        let s = r["stage"].as_str().unwrap();
        same(
            &figs,
            &format!("time.{s}.median"),
            &r["completed"]["median_days"],
        );
        same(&figs, &format!("time.{s}.p90"), &r["completed"]["p90_days"]);
        same(&figs, &format!("time.{s}.count"), &r["completed"]["count"]);
    }
    let mut conv_filter = filter.clone();
    conv_filter.as_object_mut().unwrap().remove("stage");
    let conv = c.ok("metrics.conversion", conv_filter);
    let stage = filter.get("stage").and_then(Value::as_str);
    for r in conv["direct"]["rows"].as_array().unwrap() {
        let s = r["stage"].as_str().unwrap();
        if stage.is_some_and(|x| x != s) {
            assert!(
                !figs.contains_key(&format!("conv.{s}.rate")),
                "only the stage asked for"
            );
            continue;
        }
        same(&figs, &format!("conv.{s}.rate"), &r["rate"]);
        same(&figs, &format!("conv.{s}.moved_on"), &r["moved_on"]);
        same(&figs, &format!("conv.{s}.exits"), &r["exits"]);
    }
    same(&figs, "reached.cohort", &conv["reached"]["cohort"]);
    for (i, r) in o["lost_reasons"].as_array().unwrap().iter().enumerate() {
        same(&figs, &format!("lost.{i}.count"), &r["count"]);
        same(&figs, &format!("lost.{i}.amount"), &r["amount"]);
    }
    let mut stalled_q = json!({ "sort": "value", "limit": 10 });
    if let Some(o) = &owner {
        stalled_q["owner"] = o.clone();
    }
    if let Some(s) = stage {
        stalled_q["stage"] = json!(s);
    }
    let stalled = c.ok("metrics.stalled", stalled_q);
    same(&figs, "stalled.total", &stalled["total"]);
    same(&figs, "stalled.total_amount", &stalled["total_amount"]);
    for x in stalled["stalled"].as_array().unwrap() {
        same(&figs, &format!("stalled.{}.amount", x["id"]), &x["amount"]);
        same(&figs, &format!("stalled.{}.idle", x["id"]), &x["idle_days"]);
    }
    let owners = c.ok("metrics.owners", json!({ "from": from, "to": to }));
    for r in owners["rows"].as_array().unwrap() {
        let who = r["owner"].as_str().unwrap();
        let key = |k: &str| format!("owner.{who}.{k}");
        if owner.as_ref().is_some_and(|o| o != who) {
            assert!(!figs.contains_key(&key("won")), "only {owner:?}'s row");
            continue;
        }
        for (k, field) in [
            ("won", "won"),
            ("lost", "lost"),
            ("open", "open"),
            ("open_amount", "open_amount"),
            ("won_amount", "won_amount"),
            ("win_rate", "win_rate"),
            ("stalled", "stalled"),
            ("moved_on", "moved_on"),
            ("forced", "forced"),
            ("cycle", "cycle_median_days"),
        ] {
            same(&figs, &key(k), &r[field]);
        }
    }
    let conf = c.ok("metrics.conformance", json!({ "from": from, "to": to }));
    same(&figs, "conf.imported_wins", &conf["imported_wins"]);
    for r in conf["stages"].as_array().unwrap() {
        let key = r["key"].as_str().unwrap();
        if stage.is_some_and(|s| s != key) {
            continue;
        }
        for k in [
            "by_criteria",
            "forced",
            "skipped",
            "regressed",
            "imported",
            "breaches",
        ] {
            same(&figs, &format!("conf.{key}.{k}"), &r[k]);
        }
    }
    let trends = c.ok(
        "metrics.trends",
        period_owner(json!({ "months": 12, "to": from })),
    );
    let nov = trends["months"].as_array().unwrap().last().unwrap();
    let month = nov["month"].as_str().unwrap();
    for k in ["won", "lost", "win_rate", "won_amount"] {
        same(&figs, &format!("trend.{month}.{k}"), &nov[k]);
    }
}

#[test]
fn the_report_shows_what_the_protocol_answers_for_the_same_filters() {
    let d = Daemon::start_with(&money_process());
    let mut c = d.client();
    money_history(&mut c);
    // A process change, so the report compares the versions around it.
    let changed = money_process().replacen("stall_after_days = 30", "stall_after_days = 20", 1);
    assert_eq!(
        c.ok("process.reload", json!({ "text": changed }))["version"],
        2
    );
    let nov = json!({ "from": "2026-11-01", "to": "2026-12-01" });

    let team = report(&d, &["--month", "2026-11"]);
    assert!(
        team.contains("<title>Sales report: November 2026</title>"),
        "human dates"
    );
    assert!(!team.contains("<script"), "nothing runs");
    assert!(
        !team.contains("http://") && !team.contains("https://"),
        "nothing fetched"
    );
    assert!(
        team.contains("Version 2 came into force on"),
        "the latest change"
    );
    assert!(
        team.contains("stage `close`: stalled after 20 days instead of 30"),
        "{team}"
    );
    check_report(&mut c, &team, nov.clone());

    let tom = report(&d, &["--month", "2026-11", "--owner", "tom"]);
    assert_ne!(tom, team, "a rep's report is the rep's");
    assert!(tom.contains("<title>Sales report: November 2026 · owner tom</title>"));
    check_report(
        &mut c,
        &tom,
        json!({ "from": "2026-11-01", "to": "2026-12-01", "owner": "tom" }),
    );

    let present = report(&d, &["--month", "2026-11", "--stage", "present"]);
    assert!(
        present.contains("· stage Present"),
        "the filter is in the title"
    );
    check_report(
        &mut c,
        &present,
        json!({ "from": "2026-11-01", "to": "2026-12-01", "stage": "present" }),
    );

    let v1 = report(&d, &["--month", "2026-11", "--version", "1"]);
    assert!(v1.contains("while version 1 was in force"));
    check_report(
        &mut c,
        &v1,
        json!({ "from": "2026-11-01", "to": "2026-12-01", "version": 1 }),
    );

    let o = d.cli(&["report", "--month", "2026-11", "--csv"]);
    assert!(
        !o.status.success(),
        "a flag the report cannot honour is refused"
    );
}

#[test]
fn a_stage_renamed_then_removed_is_one_stage_counted_once() {
    let d = Daemon::start();
    let mut c = d.client();
    for i in 0..3 {
        create(
            &mut c,
            &format!("R{i}"),
            json!({ "stage": "research", "at": "2026-11-02T10:00:00Z" }),
        );
    }
    // v2: research is renamed qualify; v3: qualify is removed, its
    // prospects migrated to present.
    let renamed = default_process().replacen(
        "id = \"research\"\nname = \"Research\"",
        "id = \"qualify\"\nname = \"Qualify\"\nrenamed_from = [\"research\"]",
        1,
    );
    assert_ne!(renamed, default_process());
    assert_eq!(
        c.ok("process.reload", json!({ "text": renamed }))["version"],
        2
    );
    let start = renamed.find("[[stages]]\nid = \"qualify\"").unwrap();
    let end = renamed[start..]
        .find("[[stages]]\nid = \"present\"")
        .unwrap()
        + start;
    let removed = format!(
        "{}{}\n[migrate]\nqualify = \"present\"\n",
        &renamed[..start],
        &renamed[end..]
    );
    let r = c.ok("process.reload", json!({ "text": removed }));
    assert_eq!(
        (r["version"].as_u64(), r["migrated"].as_u64()),
        (Some(3), Some(3)),
        "{r}"
    );
    let flow = c.ok(
        "metrics.flow",
        json!({ "from": "2026-11-01", "to": "2027-01-01" }),
    );
    let rows: Vec<&Value> = flow["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["removed"].is_object())
        .collect();
    assert_eq!(rows.len(), 1, "one removed stage, not one per id: {flow:#}");
    let q = rows[0];
    assert_eq!(
        (q["stage"].as_str(), q["name"].as_str()),
        (Some("qualify"), Some("Qualify"))
    );
    assert_eq!(q["formerly"], json!(["research"]));
    assert_eq!(
        (
            q["entered"].as_i64(),
            q["exited"].as_i64(),
            q["end"].as_i64()
        ),
        (Some(3), Some(3), Some(0)),
        "counted once: {q}"
    );
    let present = row(&flow["rows"], "present");
    assert_eq!(present["entered"], 3);
}
