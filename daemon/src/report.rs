//! `stagecoach report`: one self-contained HTML file (inline SVG and CSS,
//! nothing fetched) with the funnel, flow per stage, time in stage,
//! conversion, stalled prospects by owner, and the latest process change
//! before and after.

use std::fmt::Write as _;

use stagecoach_client::{Client, ClientError};
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::Millis;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A figure as the report prints it: whole numbers without decimals, "–"
/// for none.
fn figure(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        Some(f) => format!("{f:.1}"),
    }
}

/// Horizontal bars: (label, value, note).
fn bars(rows: &[(String, f64, String)], color: &str) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max).max(1.0);
    let height = rows.len() * 28 + 8;
    let mut svg =
        format!(r#"<svg viewBox="0 0 820 {height}" width="820" height="{height}" role="img">"#);
    for (i, (label, value, note)) in rows.iter().enumerate() {
        let y = i * 28 + 4;
        let w = (value / max * 360.0).max(1.0);
        let _ = write!(
            svg,
            r#"<text x="0" y="{}" font-size="13">{}</text><rect x="130" y="{y}" width="{w:.1}" height="20" rx="3" fill="{color}"/><text x="{:.1}" y="{}" font-size="12">{}</text>"#,
            y + 15,
            esc(label),
            130.0 + w + 6.0,
            y + 15,
            esc(note)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><tr>");
    for h in headers {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr>");
    for r in rows {
        html.push_str("<tr>");
        for c in r {
            let _ = write!(html, "<td>{}</td>", esc(c));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// Builds the report for [from, to) from the daemon's metrics.
pub async fn build(client: &mut Client, from: Millis, to: Millis) -> Result<String, ClientError> {
    let period = params::Period {
        from,
        to,
        ..Default::default()
    };
    let flow = client.request::<methods::MetricsFlow>(&period).await?;
    let time = client
        .request::<methods::MetricsTimeInStage>(&period)
        .await?;
    let conversion = client
        .request::<methods::MetricsConversion>(&params::ConversionPeriod {
            from,
            to,
            ..Default::default()
        })
        .await?;
    let stalled = client
        .request::<methods::MetricsStalled>(&params::MetricsStalled::default())
        .await?;
    let outcomes = client
        .request::<methods::MetricsOutcomes>(&params::OutcomesPeriod {
            from,
            to,
            ..Default::default()
        })
        .await?;
    let process = client
        .request::<methods::ProcessGet>(&params::ProcessGet::default())
        .await?;
    let version = process.version;
    let before_after = if version > 1 {
        // When the change took effect: its load, or the first history
        // recorded under it when that is earlier (backfills, the demo).
        let versions = client
            .request::<methods::ProcessVersions>(&params::NoParams {})
            .await?;
        let loaded: Option<Millis> = versions
            .versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| v.in_force_from)
            .or(Some(process.loaded_at));
        let diff = client
            .request::<methods::ProcessDiff>(&params::ProcessDiff {
                from: version - 1,
                to: Some(version),
            })
            .await?;
        // The 30 days before the change against the 30 days after it.
        let at = loaded.unwrap_or(to);
        let window = 30 * Millis::DAY;
        let side = |from: Millis, to: Millis| params::Period {
            from,
            to,
            ..Default::default()
        };
        let compare = client
            .request::<methods::MetricsCompare>(&params::MetricsCompare {
                a: side(Millis(at.0 - window), at),
                b: side(at, Millis(at.0 + window)),
            })
            .await?;
        Some((loaded, diff, compare))
    } else {
        None
    };

    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Sales process report</h1><p class=sub>{} · {} → {} · process version {}</p>",
        esc(process.process.as_ref().map_or("", |p| p.name.as_str())),
        esc(&from.to_string()),
        esc(&to.to_string()),
        version
    );

    // Funnel: how far the period's cohort got.
    let reached: Vec<(String, f64, String)> = conversion
        .reached
        .rows
        .iter()
        .map(|r| {
            let share = r
                .share
                .map_or(String::new(), |s| format!(" ({:.0}%)", s * 100.0));
            (
                r.stage.clone(),
                r.reached as f64,
                format!("{}{share}", r.reached),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Funnel</h2><p>{}</p>{}",
        esc(&conversion.reached.label),
        bars(&reached, "#3b82f6")
    );

    // Flow per stage.
    let flow_rows: Vec<Vec<String>> = flow
        .rows
        .iter()
        .map(|r| {
            let k = |kind: &str| {
                r.exited_by_kind
                    .get(kind)
                    .map_or("–".to_string(), |n| n.to_string())
            };
            vec![
                r.stage.clone(),
                r.start.to_string(),
                r.entered.to_string(),
                r.exited.to_string(),
                r.end.to_string(),
                k("advanced"),
                k("lost"),
                k("won"),
                k("forced"),
            ]
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Flow per stage</h2><p>end = start + entered − exited, whole UTC days.</p>{}",
        table(
            &[
                "stage", "start", "entered", "exited", "end", "advanced", "lost", "won", "forced"
            ],
            &flow_rows
        )
    );

    // Outcomes, with what an import recorded as the source had it.
    let pct = |v: Option<f64>| v.map_or("–".into(), |r| format!("{:.1}%", r * 100.0));
    let outcome_rows = vec![
        vec!["won".to_string(), outcomes.won.to_string()],
        vec!["lost".to_string(), outcomes.lost.to_string()],
        vec!["win rate".to_string(), pct(outcomes.win_rate)],
        vec![
            "won cycle, median days".to_string(),
            figure(outcomes.cycle.median_days),
        ],
        vec![
            "lost cycle, median days".to_string(),
            figure(outcomes.lost_cycle.median_days),
        ],
        vec!["won amount".to_string(), figure(Some(outcomes.won_amount))],
        vec![
            "won by import, not earned under the criteria".to_string(),
            outcomes.won_imported.to_string(),
        ],
    ];
    let _ = write!(
        body,
        "<h2>Outcomes</h2><p>Deals closed in the period. An imported win the replayed history did not earn under the exit criteria counts as won (the source's fact) and is counted apart.</p>{}",
        table(&["outcome", "value"], &outcome_rows)
    );

    // Time in stage.
    let medians: Vec<(String, f64, String)> = time
        .rows
        .iter()
        .map(|r| {
            let c = &r.completed;
            (
                r.stage.clone(),
                c.median_days.unwrap_or(0.0),
                format!(
                    "median {} d · p90 {} d · {} stays",
                    figure(c.median_days),
                    figure(c.p90_days),
                    c.count
                ),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Time in stage</h2><p>Stays that ended in the period.</p>{}",
        bars(&medians, "#10b981")
    );

    // Conversion.
    let conv: Vec<(String, f64, String)> = conversion
        .direct
        .rows
        .iter()
        .map(|r| {
            let rate = r.rate.unwrap_or(0.0);
            (
                format!("{} → {}", r.stage, r.next),
                rate * 100.0,
                format!("{:.0}% ({} of {})", rate * 100.0, r.moved_on, r.exits),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Conversion between stages</h2><p>{}</p>{}",
        esc(&conversion.direct.label),
        bars(&conv, "#f59e0b")
    );

    // Stalled by owner.
    let stalled_rows: Vec<(String, f64, String)> = stalled
        .by_owner
        .iter()
        .map(|(owner, n)| {
            (
                if owner.is_empty() {
                    "(none)".to_string()
                } else {
                    owner.clone()
                },
                *n as f64,
                n.to_string(),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Stalled prospects by owner</h2><p>Open prospects idle longer than their stage allows, now.</p>{}",
        bars(&stalled_rows, "#ef4444")
    );

    // Latest process change.
    body.push_str("<h2>Latest process change</h2>");
    match before_after {
        None => body.push_str("<p>Only one process version so far.</p>"),
        Some((loaded, diff, compare)) => {
            let _ = write!(
                body,
                "<p>Version {} loaded {}:</p><ul>",
                version,
                esc(&loaded.map(|m| m.to_string()).unwrap_or_default())
            );
            for c in &diff.changes {
                let _ = write!(body, "<li>{}</li>", esc(c));
            }
            body.push_str(
                "</ul><p>The 30 days before the change against the 30 days after it.</p>",
            );
            let rate = |x: Option<f64>| x.map_or("–".into(), |f| format!("{:.0}%", f * 100.0));
            let cmp_rows: Vec<Vec<String>> = compare
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.stage.clone(),
                        format!("{} / {}", r.a.flow.entered, r.b.flow.entered),
                        format!("{} / {}", rate(r.a.advance_rate), rate(r.b.advance_rate)),
                        format!(
                            "{} / {}",
                            figure(r.a.time_in_stage.median_days),
                            figure(r.b.time_in_stage.median_days)
                        ),
                    ]
                })
                .collect();
            body.push_str(&table(
                &[
                    "stage",
                    "entered before / after",
                    "advance rate before / after",
                    "median days before / after",
                ],
                &cmp_rows,
            ));
        }
    }

    Ok(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Sales process report</title><style>
body{{font-family:system-ui,sans-serif;margin:32px;color:#111;max-width:900px}}
h1{{margin-bottom:0}}.sub{{color:#555;margin-top:4px}}h2{{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}}
table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ddd;padding:4px 10px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#f3f4f6}}svg text{{font-family:system-ui,sans-serif}}
</style></head><body>{body}</body></html>
"#
    ))
}
