//! `stagecoach report`: one self-contained HTML file for a sales manager
//! (inline SVG and CSS, nothing fetched, readable on a laptop and printed
//! on A4): headline figures against the previous period, the funnel, flow,
//! conversion, time in stage as a distribution, trends, lost reasons, the
//! stalled deals themselves, a scorecard per rep, and the latest process
//! change with the version truly in force on each side.
//!
//! Every figure comes from the daemon's `metrics.*` answers for the same
//! filters, and carries them in `data-k` (what it is) and `data-v` (the
//! answer's value), so a test can check the page against the protocol.

use std::fmt::Write as _;

use stagecoach_client::{Client, ClientError};
use stagecoach_types::api::results::{Durations, StageLabel, VersionWindow};
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::Millis;

/// What a report is of: a period and the same filters `metrics` takes.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Start, inclusive.
    pub from: Millis,
    /// End, exclusive.
    pub to: Millis,
    /// Only this rep's prospects.
    pub owner: Option<String>,
    /// Only while this process version was in force.
    pub version: Option<u64>,
    /// Only this stage (flow, time in stage, conversion, stalled).
    pub stage: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn int(n: i64) -> String {
    num_format::ToFormattedString::to_formatted_string(&n, &num_format::Locale::en)
}

fn money(v: f64, currency: Option<&str>) -> String {
    let whole = int(v.round() as i64);
    match currency {
        Some(c) => format!("{c} {whole}"),
        None => whole,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |r| format!("{:.1}%", r * 100.0))
}

fn days(v: Option<f64>) -> String {
    v.map_or("–".into(), |d| format!("{d:.1} d"))
}

/// A figure: what it is (`key`), the answer's value, and how it shows.
fn fig(key: &str, value: impl std::fmt::Display, shown: &str) -> String {
    format!(
        r#"<span data-k="{}" data-v="{}">{}</span>"#,
        esc(key),
        esc(&value.to_string()),
        esc(shown)
    )
}

/// [`fig`] inside SVG text.
fn tfig(key: &str, value: impl std::fmt::Display, shown: &str) -> String {
    format!(
        r#"<tspan data-k="{}" data-v="{}">{}</tspan>"#,
        esc(key),
        esc(&value.to_string()),
        esc(shown)
    )
}

fn opt(v: Option<f64>) -> String {
    v.map_or("null".into(), |x| x.to_string())
}

/// The civil date of a time, UTC.
fn date(m: Millis) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(m.0)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn human_date(m: Millis) -> String {
    date(m).strftime("%-d %B %Y").to_string()
}

/// "November 2026", "Q3 2026", "2026", or "1 June 2026 – 15 July 2026".
pub fn human_period(from: Millis, to: Millis) -> String {
    let (a, b) = (date(from), date(Millis(to.0 - 1)));
    let whole_days = from.0 % Millis::DAY == 0 && to.0 % Millis::DAY == 0;
    let last_of_month = |d: jiff::civil::Date| d.last_of_month() == d;
    if whole_days && a.day() == 1 && last_of_month(b) {
        if a.year() == b.year() && a.month() == b.month() {
            return a.strftime("%B %Y").to_string();
        }
        if a.year() == b.year() && a.month() == 1 && b.month() == 12 {
            return a.year().to_string();
        }
        if a.year() == b.year() && (a.month() - 1) % 3 == 0 && b.month() == a.month() + 2 {
            return format!("Q{} {}", (a.month() - 1) / 3 + 1, a.year());
        }
    }
    format!("{} – {}", human_date(from), human_date(Millis(to.0 - 1)))
}

/// The period before [from, to): the previous calendar month (quarter,
/// year) when the period is one, else the same length just before.
fn previous_period(from: Millis, to: Millis) -> (Millis, Millis) {
    let (a, b) = (date(from), date(Millis(to.0 - 1)));
    if from.0 % Millis::DAY == 0
        && to.0 % Millis::DAY == 0
        && a.day() == 1
        && b.last_of_month() == b
    {
        let months = (i32::from(b.year()) - i32::from(a.year())) * 12 + i32::from(b.month())
            - i32::from(a.month())
            + 1;
        if let Ok(start) = a.checked_sub(jiff::Span::new().months(months)) {
            let ms = start
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp().as_millisecond())
                .unwrap_or(from.0);
            return (Millis(ms), from);
        }
    }
    (Millis(from.0 - (to.0 - from.0)), from)
}

/// A stage's display name with what became of it.
fn stage_name(id: &str, label: &StageLabel) -> String {
    let mut s = if label.name.is_empty() {
        id.to_string()
    } else {
        label.name.clone()
    };
    if let Some(r) = &label.removed {
        s.push_str(&format!(" (removed in v{}", r.in_version));
        if let Some(to) = &r.moved_to {
            s.push_str(&format!(", moved to {to}"));
        }
        s.push(')');
    } else if !label.formerly.is_empty() {
        s.push_str(&format!(" (formerly {})", label.formerly.join(", ")));
    }
    s
}

/// The change of a figure against the previous period, as a small line.
fn delta(now: Option<f64>, before: Option<f64>, kind: Delta, against: &str) -> String {
    let (Some(n), Some(b)) = (now, before) else {
        return format!(r#"<div class="delta">no {against} figure</div>"#);
    };
    // (the change in words, whether it is good news; None: no change worth a colour)
    let (text, up) = match kind {
        Delta::Ratio if b != 0.0 => {
            let change = (n - b) / b.abs() * 100.0;
            let text = if change.abs() < 10.0 {
                format!("{change:+.1}%")
            } else {
                format!("{change:+.0}%")
            };
            (text, (change.abs() >= 0.05).then_some(change > 0.0))
        }
        Delta::Ratio => return format!(r#"<div class="delta">none in {against}</div>"#),
        Delta::Points => {
            let change = (n - b) * 100.0;
            (
                format!("{change:+.1} pts"),
                (change.abs() >= 0.05).then_some(change > 0.0),
            )
        }
        Delta::Days => (
            format!("{:+.1} d", n - b),
            ((n - b).abs() >= 0.05).then_some(n < b),
        ),
    };
    let Some(up) = up else {
        return format!(r#"<div class="delta">unchanged vs {}</div>"#, esc(against));
    };
    let class = if up { "good" } else { "bad" };
    format!(
        r#"<div class="delta {class}">{text} vs {}</div>"#,
        esc(against)
    )
}

#[derive(Clone, Copy)]
enum Delta {
    Ratio,
    Points,
    Days,
}

fn card(label: &str, figure: &str, sub: &str) -> String {
    format!(
        r#"<div class="card"><div class="label">{}</div><div class="figure">{figure}</div>{sub}</div>"#,
        esc(label)
    )
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr></thead><tbody>");
    for r in rows {
        html.push_str("<tr>");
        for c in r {
            let _ = write!(html, "<td>{c}</td>");
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

/// The funnel: centred bars, each as wide as the share of the cohort that
/// reached the stage.
fn funnel(rows: &[(String, String, u64, Option<f64>)]) -> String {
    let max = rows.iter().map(|r| r.2).max().unwrap_or(0).max(1) as f64;
    let h = rows.len() * 34 + 4;
    let mut svg =
        format!(r#"<svg viewBox="0 0 560 {h}" class="chart" role="img" aria-label="Funnel">"#);
    for (i, (id, name, n, share)) in rows.iter().enumerate() {
        let w = (*n as f64 / max * 300.0).max(2.0);
        let x = 270.0 - w / 2.0;
        let y = i * 34 + 2;
        let shade = 210 - (i * 120 / rows.len().max(1)) as i64;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="28" rx="3" fill="hsl(217,70%,{}%)"/><text x="14" y="{}" class="lbl">{}</text><text x="556" y="{}" text-anchor="end" class="num">{}{}</text>"#,
            shade.clamp(30, 80) / 3 + 35,
            y + 19,
            esc(name),
            y + 19,
            tfig(&format!("reached.{id}"), n, &int(*n as i64)),
            share.map_or(String::new(), |s| format!(" · {:.0}%", s * 100.0)),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Conversion bars on a 0–100% scale, with gridlines, so 75% and 84% look
/// different.
fn conversion_bars(rows: &[(String, String, Option<f64>, String)]) -> String {
    let h = rows.len() * 30 + 24;
    let (x0, span) = (170.0, 250.0);
    let mut svg =
        format!(r#"<svg viewBox="0 0 560 {h}" class="chart" role="img" aria-label="Conversion">"#);
    for p in [0, 25, 50, 75, 100] {
        let x = x0 + span * f64::from(p) / 100.0;
        let _ = write!(
            svg,
            r#"<line x1="{x}" y1="0" x2="{x}" y2="{}" class="grid"/><text x="{x}" y="{}" text-anchor="middle" class="axis">{p}%</text>"#,
            h - 18,
            h - 4
        );
    }
    for (i, (label, key, rate, note)) in rows.iter().enumerate() {
        let y = i * 30 + 2;
        let w = rate.map_or(0.0, |r| r * span);
        let _ = write!(
            svg,
            r##"<text x="0" y="{}" class="lbl">{}</text><rect x="{x0}" y="{y}" width="{w:.1}" height="22" rx="2" fill="#f59e0b"/><text x="{:.1}" y="{}" class="num">{} {}</text>"##,
            y + 16,
            esc(label),
            x0 + w + 6.0,
            y + 16,
            tfig(key, opt(*rate), &pct(*rate)),
            note
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Time in stage as box plots: quartiles as the box, the median as a line,
/// the 90th percentile as a whisker.
fn box_plots(rows: &[(String, String, &Durations)]) -> String {
    let longest = rows
        .iter()
        .filter_map(|r| r.2.p90_days)
        .fold(1.0f64, f64::max);
    // Ticks at round numbers of days (1, 2 or 5 times a power of ten), at
    // most five steps to the axis's end.
    let step = [1.0, 2.0, 5.0]
        .iter()
        .flat_map(|m| (0..6).map(move |e| m * 10f64.powi(e)))
        .filter(|s| longest / s <= 5.0)
        .fold(f64::INFINITY, f64::min);
    let ticks = (longest / step).ceil().max(1.0);
    let max = ticks * step;
    let h = rows.len() * 30 + 24;
    let (x0, span) = (190.0, 480.0);
    let x = |d: f64| x0 + d / max * span;
    let mut svg = format!(
        r#"<svg viewBox="0 0 1000 {h}" class="chart wide" role="img" aria-label="Time in stage">"#
    );
    for t in 0..=(ticks as u32) {
        let d = step * f64::from(t);
        let _ = write!(
            svg,
            r#"<line x1="{:.1}" y1="0" x2="{:.1}" y2="{}" class="grid"/><text x="{:.1}" y="{}" text-anchor="middle" class="axis">{d:.0} d</text>"#,
            x(d),
            x(d),
            h - 18,
            x(d),
            h - 4
        );
    }
    for (i, (id, name, d)) in rows.iter().enumerate() {
        let y = (i * 30 + 2) as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}" class="lbl">{}</text>"#,
            y + 16.0,
            esc(name)
        );
        if let (Some(q1), Some(m), Some(q3), Some(p90)) =
            (d.p25_days, d.median_days, d.p75_days, d.p90_days)
        {
            let _ = write!(
                svg,
                r##"<line x1="{:.1}" y1="{}" x2="{:.1}" y2="{}" class="whisker"/><rect x="{:.1}" y="{y}" width="{:.1}" height="22" fill="#a7f3d0" stroke="#059669"/><line x1="{:.1}" y1="{y}" x2="{:.1}" y2="{}" class="median"/><line x1="{:.1}" y1="{}" x2="{:.1}" y2="{}" class="whisker"/>"##,
                x(q3),
                y + 11.0,
                x(p90),
                y + 11.0,
                x(q1),
                (x(q3) - x(q1)).max(1.5),
                x(m),
                x(m),
                y + 22.0,
                x(p90),
                y + 4.0,
                x(p90),
                y + 18.0,
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" class="num">median {} · p90 {} · {} stays</text>"#,
            x0 + span + 16.0,
            y + 16.0,
            tfig(
                &format!("time.{id}.median"),
                opt(d.median_days),
                &days(d.median_days)
            ),
            tfig(
                &format!("time.{id}.p90"),
                opt(d.p90_days),
                &days(d.p90_days)
            ),
            tfig(&format!("time.{id}.count"), d.count, &int(d.count as i64)),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// `2026-07` as `Jul 2026`.
fn short_month(month: &str) -> String {
    format!("{month}-01")
        .parse::<jiff::civil::Date>()
        .map(|d| d.strftime("%b %Y").to_string())
        .unwrap_or_else(|_| month.to_string())
}

/// Won value per month as bars, win rate as a line (0–100% on the right).
fn trend_chart(months: &[(String, f64, Option<f64>)], currency: Option<&str>) -> String {
    let max = months.iter().map(|m| m.1).fold(1.0f64, f64::max);
    let n = months.len().max(1);
    let (x0, width, top, height) = (60.0, 880.0, 10.0, 150.0);
    let step = width / n as f64;
    let mut svg =
        r#"<svg viewBox="0 0 1000 200" class="chart wide" role="img" aria-label="Trends">"#
            .to_string();
    let _ = write!(
        svg,
        r#"<text x="0" y="14" class="axis">{}</text><text x="0" y="{}" class="axis">0</text>"#,
        esc(&money(max, currency)),
        top + height
    );
    for p in [0, 50, 100] {
        let y = top + height - f64::from(p) / 100.0 * height;
        let _ = write!(
            svg,
            r##"<text x="1000" y="{:.1}" text-anchor="end" class="axis" fill="#dc2626">{p}%</text>"##,
            y + 4.0
        );
    }
    let mut points = Vec::new();
    for (i, (month, won, rate)) in months.iter().enumerate() {
        let bx = x0 + step * i as f64 + step * 0.15;
        let bh = won / max * height;
        let _ = write!(
            svg,
            r##"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#93c5fd"/><text x="{:.1}" y="196" text-anchor="middle" class="axis">{}</text>"##,
            top + height - bh,
            step * 0.7,
            bx + step * 0.35,
            esc(&short_month(month))
        );
        if let Some(r) = rate {
            points.push(format!(
                "{:.1},{:.1}",
                bx + step * 0.35,
                top + height - r * height
            ));
        }
    }
    if points.len() > 1 {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#dc2626" stroke-width="2"/>"##,
            points.join(" ")
        );
    }
    for p in &points {
        let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
        let _ = write!(svg, r##"<circle cx="{x}" cy="{y}" r="3" fill="#dc2626"/>"##);
    }
    svg.push_str("</svg>");
    svg
}

/// Whether a difference is likely real, in words with its evidence.
fn verdict(s: Option<&stagecoach_types::api::results::Significance>) -> String {
    let Some(s) = s else {
        return "–".into();
    };
    let detail = if s.verdict == "too few to tell" {
        format!("{} and {} cases", s.n_a, s.n_b)
    } else if let Some(p) = s.p_value {
        format!("p = {p:.3}")
    } else if let Some((l, u)) = s.interval {
        format!("{:+.0} to {:+.0} pts", l * 100.0, u * 100.0)
    } else {
        String::new()
    };
    format!("{} ({})", esc(&s.verdict), esc(&detail))
}

/// The versions in force during [from, to), each with its window.
fn in_force(versions: &[VersionWindow], from: Millis, to: Millis) -> Vec<&VersionWindow> {
    versions
        .iter()
        .filter(|v| v.in_force_from < to && v.in_force_until.is_none_or(|u| u > from))
        .collect()
}

fn version_window_text(v: &VersionWindow) -> String {
    match v.in_force_until {
        Some(u) => format!(
            "version {} ({} – {})",
            v.version,
            human_date(v.in_force_from),
            human_date(u)
        ),
        None => format!(
            "version {} (since {})",
            v.version,
            human_date(v.in_force_from)
        ),
    }
}

/// Builds the report from the daemon's metrics.
pub async fn build(client: &mut Client, f: &Filters) -> Result<String, ClientError> {
    let period = params::Period {
        from: f.from,
        to: f.to,
        stage: f.stage.clone(),
        owner: f.owner.clone(),
        version: f.version,
    };
    let flow = client.request::<methods::MetricsFlow>(&period).await?;
    // A version narrows every figure of the period to when it was in force.
    let (from, to) = (flow.from, flow.to);
    let time = client
        .request::<methods::MetricsTimeInStage>(&period)
        .await?;
    let conversion = client
        .request::<methods::MetricsConversion>(&params::ConversionPeriod {
            from: f.from,
            to: f.to,
            owner: f.owner.clone(),
            version: f.version,
        })
        .await?;
    let outcomes_of = |from: Millis, to: Millis| params::OutcomesPeriod {
        from,
        to,
        owner: f.owner.clone(),
        amount_field: None,
    };
    let outcomes = client
        .request::<methods::MetricsOutcomes>(&outcomes_of(from, to))
        .await?;
    let (pf, pt) = previous_period(from, to);
    let before = client
        .request::<methods::MetricsOutcomes>(&outcomes_of(pf, pt))
        .await?;
    let stalled = client
        .request::<methods::MetricsStalled>(&params::MetricsStalled {
            owner: f.owner.clone(),
            stage: f.stage.clone(),
            sort: Some(params::StalledSort::Value),
            limit: Some(10),
        })
        .await?;
    let owners = client
        .request::<methods::MetricsOwners>(&params::MetricsOwners { from, to })
        .await?;
    let trends = client
        .request::<methods::MetricsTrends>(&params::MetricsTrends {
            months: 12,
            to: Some(Millis(to.0 - 1)),
            owner: f.owner.clone(),
        })
        .await?;
    let conformance = client
        .request::<methods::MetricsConformance>(&params::MetricsConformance { from, to })
        .await?;
    let process = client
        .request::<methods::ProcessGet>(&params::ProcessGet::default())
        .await?;
    let versions = client
        .request::<methods::ProcessVersions>(&params::NoParams {})
        .await?;
    let cur = outcomes.currency.as_deref();
    let m = |v: f64| money(v, cur);

    // The latest process change, with the version in force on each side.
    let last_change = versions
        .versions
        .iter()
        .rev()
        .find(|v| v.version > 1)
        .cloned();
    let change = match &last_change {
        None => None,
        Some(v) => {
            let diff = client
                .request::<methods::ProcessDiff>(&params::ProcessDiff {
                    from: v.version - 1,
                    to: Some(v.version),
                })
                .await?;
            let at = v.in_force_from;
            let window = 30 * Millis::DAY;
            let side = |from: Millis, to: Millis, version: u64| params::Period {
                from,
                to,
                stage: None,
                owner: f.owner.clone(),
                version: Some(version),
            };
            let compare = client
                .request::<methods::MetricsCompare>(&params::MetricsCompare {
                    a: side(Millis(at.0 - window), at, v.version - 1),
                    b: side(at, Millis(at.0 + window), v.version),
                })
                .await?;
            Some((v.clone(), diff, compare))
        }
    };

    let mut body = String::new();
    // Title: what, when, with which filters, under which versions.
    let mut filters = Vec::new();
    if let Some(o) = &f.owner {
        filters.push(format!("owner {o}"));
    }
    if let Some(s) = &f.stage {
        let name = flow
            .rows
            .first()
            .map_or(s.clone(), |r| stage_name(&r.stage, &r.label));
        filters.push(format!("stage {name}"));
    }
    if let Some(v) = f.version {
        filters.push(format!("while version {v} was in force"));
    }
    let process_name = process.process.as_ref().map_or("", |p| p.name.as_str());
    let title = format!(
        "{}{}",
        human_period(from, to),
        if filters.is_empty() {
            String::new()
        } else {
            format!(" · {}", filters.join(" · "))
        }
    );
    let forced: Vec<String> = in_force(&versions.versions, from, to)
        .into_iter()
        .map(version_window_text)
        .collect();
    let _ = write!(
        body,
        r#"<header><h1>Sales report: {}</h1><p class="sub">{} · process in force: {}</p><p class="sub">Generated {} from the Stagecoach daemon. Periods are whole UTC days; pipeline, weighted value and stalled deals are as of now.</p></header>"#,
        esc(&title),
        esc(process_name),
        esc(&forced.join(", ")),
        esc(&human_date(Millis::now())),
    );

    // Headline figures.
    let against = human_period(pf, pt);
    let mut cards = String::new();
    cards.push_str(&card(
        "Won value",
        &fig(
            "headline.won_amount",
            outcomes.won_amount,
            &m(outcomes.won_amount),
        ),
        &delta(
            Some(outcomes.won_amount),
            Some(before.won_amount),
            Delta::Ratio,
            &against,
        ),
    ));
    cards.push_str(&card(
        "Win rate",
        &fig(
            "headline.win_rate",
            opt(outcomes.win_rate),
            &pct(outcomes.win_rate),
        ),
        &format!(
            "{}<div class=\"delta\">{} won · {} lost{}</div>",
            delta(outcomes.win_rate, before.win_rate, Delta::Points, &against),
            fig("headline.won", outcomes.won, &int(outcomes.won as i64)),
            fig("headline.lost", outcomes.lost, &int(outcomes.lost as i64)),
            if outcomes.won_imported > 0 {
                format!(
                    "<br>{} of the wins recorded by an import as the source had them, not earned under the exit criteria",
                    fig(
                        "headline.won_imported",
                        outcomes.won_imported,
                        &int(outcomes.won_imported as i64)
                    )
                )
            } else {
                String::new()
            },
        ),
    ));
    cards.push_str(&card(
        "Sales cycle (median)",
        &fig(
            "headline.cycle_median",
            opt(outcomes.cycle.median_days),
            &days(outcomes.cycle.median_days),
        ),
        &delta(
            outcomes.cycle.median_days,
            before.cycle.median_days,
            Delta::Days,
            &against,
        ),
    ));
    cards.push_str(&card(
        "Average deal (won)",
        &fig(
            "headline.mean_won",
            opt(outcomes.mean_won_amount),
            &outcomes.mean_won_amount.map_or("–".into(), m),
        ),
        &delta(
            outcomes.mean_won_amount,
            before.mean_won_amount,
            Delta::Ratio,
            &against,
        ),
    ));
    cards.push_str(&card(
        "Pipeline now",
        &fig(
            "headline.open_amount",
            outcomes.open_amount,
            &m(outcomes.open_amount),
        ),
        &format!(
            "<div class=\"delta\">{} open deals · weighted {}</div>",
            fig("headline.open", outcomes.open, &int(outcomes.open as i64)),
            fig(
                "headline.weighted",
                outcomes.weighted_pipeline,
                &m(outcomes.weighted_pipeline)
            ),
        ),
    ));
    cards.push_str(&card(
        "Velocity",
        &fig(
            "headline.velocity",
            opt(outcomes.velocity_per_day),
            &outcomes
                .velocity_per_day
                .map_or("–".into(), |v| format!("{} / day", m(v))),
        ),
        "<div class=\"delta\">open × win rate × average deal ÷ mean cycle</div>",
    ));
    let _ = write!(body, r#"<section class="cards">{cards}</section>"#);

    // Funnel and conversion.
    let only = |id: &str| f.stage.as_ref().is_none_or(|s| s == id);
    let names: std::collections::HashMap<&str, String> = conversion
        .direct
        .rows
        .iter()
        .map(|r| (r.stage.as_str(), stage_name(&r.stage, &r.label)))
        .collect();
    let reached: Vec<(String, String, u64, Option<f64>)> = conversion
        .reached
        .rows
        .iter()
        .filter(|r| only(&r.stage) || r.stage == "won")
        .map(|r| {
            let name = names
                .get(r.stage.as_str())
                .cloned()
                .unwrap_or_else(|| "Won".into());
            (r.stage.clone(), name, r.reached, r.share)
        })
        .collect();
    let conv_rows: Vec<(String, String, Option<f64>, String)> = conversion
        .direct
        .rows
        .iter()
        .filter(|r| only(&r.stage))
        .map(|r| {
            let next = names
                .get(r.next.as_str())
                .cloned()
                .unwrap_or_else(|| "Won".into());
            let mut note = format!(
                "({} of {})",
                tfig(
                    &format!("conv.{}.moved_on", r.stage),
                    r.moved_on,
                    &int(r.moved_on as i64)
                ),
                tfig(
                    &format!("conv.{}.exits", r.stage),
                    r.exits,
                    &int(r.exits as i64)
                ),
            );
            if r.forced > 0 {
                note.push_str(&format!(" · {} forced", int(r.forced as i64)));
            }
            (
                format!("{} → {next}", names[r.stage.as_str()]),
                format!("conv.{}.rate", r.stage),
                r.rate,
                note,
            )
        })
        .collect();
    // The notes carry figures (SVG markup, escaped where built).
    let conv_svg = conversion_bars(&conv_rows);
    let _ = write!(
        body,
        r#"<section class="two"><div><h2>Funnel</h2><p class="note">Of the {} prospects that entered {} in the period, how many ever reached each stage.</p>{}</div><div><h2>Conversion between stages</h2><p class="note">Moved on to the next stage (won, from the last) ÷ every exit from the stage, exits in the period. Forced moves, a migration's too, are moves, not conversion.</p>{conv_svg}</div></section>"#,
        fig(
            "reached.cohort",
            conversion.reached.cohort,
            &int(conversion.reached.cohort as i64)
        ),
        esc(reached.first().map_or("", |r| r.1.as_str())),
        funnel(&reached),
    );

    // Flow.
    let flow_rows: Vec<Vec<String>> = flow
        .rows
        .iter()
        .map(|r| {
            let k = |what: &str, v: i64| fig(&format!("flow.{}.{what}", r.stage), v, &int(v));
            let by = |kind: &str| {
                let v = r.exited_by_kind.get(kind).copied().unwrap_or(0);
                k(kind, v)
            };
            vec![
                esc(&stage_name(&r.stage, &r.label)),
                k("start", r.start),
                k("entered", r.entered),
                k("exited", r.exited),
                k("end", r.end),
                by("advanced"),
                by("won"),
                by("lost"),
                by("forced"),
            ]
        })
        .collect();
    let _ = write!(
        body,
        r#"<section><h2>Flow per stage</h2><p class="note">In the stage at the start, entered and left during the period, and there at its end: end = start + entered − exited.</p>{}</section>"#,
        table(
            &[
                "stage", "start", "entered", "exited", "end", "advanced", "won", "lost", "forced"
            ],
            &flow_rows
        )
    );

    // Time in stage.
    let time_rows: Vec<(String, String, &Durations)> = time
        .rows
        .iter()
        .map(|r| {
            (
                r.stage.clone(),
                stage_name(&r.stage, &r.label),
                &r.completed,
            )
        })
        .collect();
    let _ = write!(
        body,
        r#"<section><h2>Time in stage</h2><p class="note">Stays that ended in the period: the box spans the middle half (quartiles), the line is the median, the whisker reaches the 90th percentile.</p>{}</section>"#,
        box_plots(&time_rows)
    );

    // Trends.
    let months: Vec<(String, f64, Option<f64>)> = trends
        .months
        .iter()
        .map(|mo| (mo.month.clone(), mo.won_amount, mo.win_rate))
        .collect();
    let trend_rows: Vec<Vec<String>> = trends
        .months
        .iter()
        .map(|mo| {
            let key = |what: &str| format!("trend.{}.{what}", mo.month);
            let first = mo.stages.iter().find(|s| only(&s.stage));
            vec![
                esc(&human_period(mo.from, mo.to)),
                first.map_or("–".into(), |s| int(s.entered)),
                fig(&key("won"), mo.won, &int(mo.won as i64)),
                fig(&key("lost"), mo.lost, &int(mo.lost as i64)),
                fig(&key("win_rate"), opt(mo.win_rate), &pct(mo.win_rate)),
                fig(&key("won_amount"), mo.won_amount, &m(mo.won_amount)),
            ]
        })
        .collect();
    let first_name = trends
        .months
        .last()
        .and_then(|mo| mo.stages.iter().find(|s| only(&s.stage)))
        .map_or("first stage".to_string(), |s| {
            names
                .get(s.stage.as_str())
                .cloned()
                .unwrap_or(s.stage.clone())
        });
    let _ = write!(
        body,
        r#"<section><h2>Twelve months</h2><p class="note">Won value per month (bars) and win rate (line).</p>{}{}</section>"#,
        trend_chart(&months, cur),
        table(
            &[
                "month",
                &format!("entered {first_name}"),
                "won",
                "lost",
                "win rate",
                "won value"
            ],
            &trend_rows
        )
    );

    // Lost reasons and stalled deals.
    let lost_rows: Vec<Vec<String>> = outcomes
        .lost_reasons
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                esc(r.reason.as_deref().unwrap_or("(no reason given)")),
                fig(&format!("lost.{i}.count"), r.count, &int(r.count as i64)),
                fig(&format!("lost.{i}.amount"), r.amount, &m(r.amount)),
            ]
        })
        .collect();
    let lost = if lost_rows.is_empty() {
        "<p>No deals lost in the period.</p>".to_string()
    } else {
        table(&["reason", "deals", "value"], &lost_rows)
    };
    let stalled_rows: Vec<Vec<String>> = stalled
        .stalled
        .iter()
        .map(|x| {
            vec![
                esc(&x.name),
                esc(x.owner.as_deref().unwrap_or("–")),
                esc(names
                    .get(x.stage.as_str())
                    .map_or(x.stage.as_str(), |n| n.as_str())),
                fig(
                    &format!("stalled.{}.idle", x.id),
                    x.idle_days,
                    &int(x.idle_days),
                ),
                x.amount.map_or("–".into(), |a| {
                    fig(&format!("stalled.{}.amount", x.id), a, &m(a))
                }),
            ]
        })
        .collect();
    let _ = write!(
        body,
        r#"<section class="two"><div><h2>Why deals were lost</h2>{lost}</div><div><h2>Stalled deals</h2><p class="note">{} open deals idle longer than their stage allows, worth {}; the largest {} below.</p>{}</div></section>"#,
        fig("stalled.total", stalled.total, &int(stalled.total as i64)),
        fig(
            "stalled.total_amount",
            stalled.total_amount,
            &m(stalled.total_amount)
        ),
        stalled.stalled.len(),
        if stalled_rows.is_empty() {
            String::new()
        } else {
            table(
                &["deal", "owner", "stage", "idle days", "value"],
                &stalled_rows,
            )
        }
    );

    // Scorecard.
    let score_rows: Vec<Vec<String>> = owners
        .rows
        .iter()
        .filter(|r| f.owner.as_ref().is_none_or(|o| *o == r.owner))
        .map(|r| {
            let who = if r.owner.is_empty() {
                "(none)"
            } else {
                &r.owner
            };
            let key = |what: &str| format!("owner.{}.{what}", r.owner);
            vec![
                esc(who),
                fig(&key("open"), r.open, &int(r.open as i64)),
                fig(&key("open_amount"), r.open_amount, &m(r.open_amount)),
                fig(&key("moved_on"), r.moved_on, &int(r.moved_on as i64)),
                fig(&key("won"), r.won, &int(r.won as i64)),
                fig(&key("lost"), r.lost, &int(r.lost as i64)),
                fig(&key("win_rate"), opt(r.win_rate), &pct(r.win_rate)),
                fig(
                    &key("cycle"),
                    opt(r.cycle_median_days),
                    &days(r.cycle_median_days),
                ),
                fig(&key("won_amount"), r.won_amount, &m(r.won_amount)),
                fig(&key("stalled"), r.stalled, &int(r.stalled as i64)),
                fig(&key("forced"), r.forced, &int(r.forced as i64)),
            ]
        })
        .collect();
    let _ = write!(
        body,
        r#"<section><h2>Scorecard per rep</h2><p class="note">Moved on, won, lost, win rate, cycle and won value in the period; open deals, their value and stalled deals now.</p>{}</section>"#,
        table(
            &[
                "rep",
                "open",
                "pipeline",
                "moved on",
                "won",
                "lost",
                "win rate",
                "cycle",
                "won value",
                "stalled",
                "forced moves"
            ],
            &score_rows
        )
    );

    // Are we following our own process?
    let conf_rows: Vec<Vec<String>> = conformance
        .stages
        .iter()
        .filter(|r| only(&r.key))
        .map(|r| {
            let k = |what: &str| format!("conf.{}.{what}", r.key);
            let n = |what: &str, v: u64| fig(&k(what), v, &int(v as i64));
            vec![
                esc(&r.name),
                n("by_criteria", r.by_criteria),
                n("forced", r.forced),
                n("skipped", r.skipped),
                n("regressed", r.regressed),
                n("imported", r.imported),
                n("breaches", r.breaches),
            ]
        })
        .collect();
    let reasons: String = conformance
        .forced_reasons
        .iter()
        .take(5)
        .map(|r| format!("<li>{} — {}</li>", esc(&r.reason), int(r.count as i64)))
        .collect();
    let _ = write!(
        body,
        r#"<section><h2>Are we following our own process?</h2><p class="note">Moves out of each stage in the period (all reps) by who decided them: the exit criteria, a person forcing it, a source's dated history (skipped, regressed, imported); warn breaches are shadow criteria unmet on those moves. Imports recorded {} wins and {} losses without the criteria.</p>{}{}</section>"#,
        fig(
            "conf.imported_wins",
            conformance.imported_wins,
            &int(conformance.imported_wins as i64)
        ),
        fig(
            "conf.imported_losses",
            conformance.imported_losses,
            &int(conformance.imported_losses as i64)
        ),
        table(
            &[
                "stage",
                "by the criteria",
                "forced",
                "skipped",
                "regressed",
                "imported",
                "warn breaches"
            ],
            &conf_rows
        ),
        if reasons.is_empty() {
            String::new()
        } else {
            format!("<p>Why moves were forced:</p><ul>{reasons}</ul>")
        }
    );

    // The latest process change.
    body.push_str("<section><h2>Latest process change</h2>");
    match change {
        None => body.push_str("<p>One process version so far: nothing to compare.</p>"),
        Some((v, diff, compare)) => {
            let _ = write!(
                body,
                "<p>Version {} came into force on {} (version {} before it). What changed:</p><ul>",
                v.version,
                esc(&human_date(v.in_force_from)),
                v.version - 1
            );
            for c in &diff.changes {
                let _ = write!(body, "<li>{}</li>", esc(c));
            }
            let rows: Vec<Vec<String>> = compare
                .rows
                .iter()
                .map(|r| {
                    let k = |side: &str, what: &str| format!("change.{}.{side}.{what}", r.stage);
                    vec![
                        esc(&stage_name(&r.stage, &r.a.flow.label)),
                        format!(
                            "{} → {}",
                            fig(&k("a", "entered"), r.a.flow.entered, &int(r.a.flow.entered)),
                            fig(&k("b", "entered"), r.b.flow.entered, &int(r.b.flow.entered))
                        ),
                        format!(
                            "{} → {}",
                            fig(
                                &k("a", "rate"),
                                opt(r.a.advance_rate),
                                &pct(r.a.advance_rate)
                            ),
                            fig(
                                &k("b", "rate"),
                                opt(r.b.advance_rate),
                                &pct(r.b.advance_rate)
                            )
                        ),
                        verdict(r.significance.as_ref().map(|s| &s.conversion)),
                        format!(
                            "{} → {}",
                            days(r.a.time_in_stage.median_days),
                            days(r.b.time_in_stage.median_days)
                        ),
                        verdict(r.significance.as_ref().map(|s| &s.time_in_stage)),
                    ]
                })
                .collect();
            let win = compare.win_rate.as_ref().map_or(String::new(), |w| {
                let [a, b] = w.sides();
                format!(
                    "<p>Win rate {} → {}: {}.</p>",
                    esc(&a),
                    esc(&b),
                    verdict(Some(&w.significance))
                )
            });
            let _ = write!(
                body,
                "</ul><p class=\"note\">The 30 days before the change under version {} ({} – {}) against the 30 days after it under version {} ({} – {}).</p>{}",
                v.version - 1,
                esc(&human_date(compare.a.from)),
                esc(&human_date(Millis(compare.a.to.0 - 1))),
                v.version,
                esc(&human_date(compare.b.from)),
                esc(&human_date(Millis(compare.b.to.0 - 1))),
                table(
                    &[
                        "stage",
                        "entered",
                        "conversion",
                        "real?",
                        "median days in stage",
                        "real?"
                    ],
                    &rows
                )
            );
            body.push_str(&win);
            body.push_str("<p class=\"note\">Real? Conversion and win rate by Newcombe's 95% interval for a difference of proportions, days in stage by the Mann–Whitney test (p &lt; 0.05); with fewer than 10 on a side there is too little to tell.</p>");
        }
    }
    body.push_str("</section>");

    Ok(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sales report: {}</title><style>{CSS}</style></head><body>{body}</body></html>
"#,
        esc(&title)
    ))
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:24px 32px;color:#111827;max-width:1240px;font-size:14px;line-height:1.4}
header h1{margin:0;font-size:24px}.sub{color:#4b5563;margin:4px 0}
h2{font-size:16px;margin:0 0 6px;padding-bottom:4px;border-bottom:1px solid #e5e7eb}
section{margin-top:22px;break-inside:avoid}
.note{color:#6b7280;margin:2px 0 8px;font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;background:#f9fafb}
.card .label{color:#4b5563;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .figure{font-size:20px;font-weight:650;margin:2px 0;font-variant-numeric:tabular-nums;white-space:nowrap}
.delta{color:#6b7280;font-size:12px}.delta.good{color:#047857}.delta.bad{color:#b91c1c}
.two{display:grid;grid-template-columns:1fr 1fr;gap:24px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:right;white-space:nowrap}
td:first-child{white-space:nowrap}
td:first-child,th:first-child{text-align:left}
th{background:#f3f4f6;font-weight:600;font-size:12.5px}
.chart{width:100%;height:auto;display:block}
.chart text{font-family:inherit}.chart .lbl{font-size:13px;fill:#111827}.chart .num{font-size:12.5px;fill:#374151}
.chart .axis{font-size:12px;fill:#6b7280}.chart .grid{stroke:#e5e7eb}
.chart .median{stroke:#065f46;stroke-width:3}.chart .whisker{stroke:#059669;stroke-width:1.5}
ul{margin:4px 0 8px 18px;padding:0}
@media (max-width:900px){.two{grid-template-columns:1fr}}
@page{size:A4;margin:12mm}
@media print{body{padding:0;max-width:none;font-size:11px}.two{grid-template-columns:1fr}.two .chart{max-width:480px}.wide .lbl{font-size:16px}.wide .num{font-size:15px}.wide .axis{font-size:13px}.card .figure{font-size:17px}section{margin-top:14px}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_people_say_them() {
        let p =
            |a: &str, b: &str| human_period(Millis::parse(a).unwrap(), Millis::parse(b).unwrap());
        assert_eq!(p("2026-06-01", "2026-07-01"), "June 2026");
        assert_eq!(p("2026-07-01", "2026-10-01"), "Q3 2026");
        assert_eq!(p("2026-01-01", "2027-01-01"), "2026");
        assert_eq!(p("2026-06-01", "2026-07-16"), "1 June 2026 – 15 July 2026");
        let prev = |a: &str, b: &str| {
            let (f, t) = previous_period(Millis::parse(a).unwrap(), Millis::parse(b).unwrap());
            human_period(f, t)
        };
        assert_eq!(prev("2026-03-01", "2026-04-01"), "February 2026");
        assert_eq!(prev("2026-07-01", "2026-10-01"), "Q2 2026");
        assert_eq!(
            prev("2026-06-11", "2026-06-21"),
            "1 June 2026 – 10 June 2026"
        );
    }
}
