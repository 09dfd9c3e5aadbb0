//! Process discovery: learn the process from closed deals.
//!
//! The guide's advice — "look back at the last five or ten deals that
//! closed: what were the major steps, how long did each take?" — done on
//! real data. From the activity histories of closed deals (out of the
//! database or a CSV export of another CRM) this builds:
//!
//! - the **steps**: each activity kind with the share of won deals that show
//!   it and its median time from the deal's creation; the *main* steps are
//!   those seen in at least `min_support` of won deals;
//! - the **directly-follows graph** of activity kinds (noise below
//!   `min_share` of deals left out), with counts and median and p90 days
//!   per step;
//! - the **variants**: the most common orders of the main steps;
//! - **cycle length** for won and lost deals, and a **breakdown by owner**;
//! - a **mapping onto the five generic stages** (Prospect, Connect,
//!   Research, Present, Close) and a **draft `process.toml`** whose exit
//!   criteria are the prospect actions that preceded progress, with the
//!   evidence (how many deals, median days) in comments.
//!
//! Everything here is a pure function of the deals, so the daemon
//! (`process.discover`) and the command line (straight from CSV files) give
//! the same answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::metrics::durations;
pub use stagecoach_types::api::results::{
    Discovery, Edge, Fit, FitRow, Options, OwnerStats, StageMap, StepStats, Variant,
};
use stagecoach_types::model::{Actor, Millis};

/// One closed deal's history.
#[derive(Debug, Clone)]
pub struct Deal {
    /// The deal's id (external id when there is one).
    pub key: String,
    /// The owning rep.
    pub owner: Option<String>,
    /// Won or not.
    pub won: bool,
    /// Still open (then not won): used only to check the draft's fit.
    pub open: bool,
    /// When the deal was created.
    pub created: Millis,
    /// When it was closed.
    pub closed: Millis,
    /// Its activities, in time order.
    pub steps: Vec<Step>,
}

/// One activity of a deal.
#[derive(Debug, Clone)]
pub struct Step {
    /// The activity kind.
    pub kind: String,
    /// When.
    pub at: Millis,
    /// Who did it.
    pub actor: Actor,
}

/// The five generic stages, each with the words that name the prospect
/// action ending it (checked in this order; the first match wins).
const GENERIC: [(&str, &str, &str, &[&str]); 5] = [
    (
        "prospect",
        "Prospect",
        "Find potential customers who fit the ideal customer profile and reach out to them.",
        &[
            "repl", "respon", "answer", "inbound", "signup", "sign_up", "download", "opened",
            "interest", "connect",
        ],
    ),
    (
        "connect",
        "Connect",
        "Initiate contact to judge whether the lead is worth pursuing: a first call or meeting.",
        &[
            "meeting",
            "call_held",
            "call_attended",
            "intro",
            "qualif",
            "call",
        ],
    ),
    (
        "research",
        "Research",
        "Learn the prospect's company, needs and goals well enough to tailor a presentation.",
        &[
            "requirement",
            "need",
            "discovery",
            "pain",
            "research",
            "assessment",
            "question",
            "budget",
        ],
    ),
    (
        "present",
        "Present",
        "Demonstrate how the product solves the prospect's specific problems.",
        &[
            "demo", "present", "proposal", "quote", "pricing", "trial", "pilot", "evaluat",
        ],
    ),
    (
        "close",
        "Close",
        "Negotiate terms, handle objections and get the contract signed.",
        &[
            "contract",
            "sign",
            "purchase",
            "order",
            "payment",
            "paid",
            "agreement",
            "negotiat",
            "legal",
            "closed",
        ],
    ),
];

/// Words that make an action the *agreement to* the next stage's action
/// ("demo_scheduled" ends Research, "demo_attended" ends Present).
const AGREES: [&str; 4] = ["schedul", "book", "accept", "request"];

/// Which generic stage an activity kind ends, by its name.
fn generic_stage(kind: &str) -> Option<usize> {
    let k = kind.to_lowercase();
    // Signing ends Close whatever else the name says.
    if GENERIC[4].3.iter().any(|w| k.contains(w)) {
        return Some(4);
    }
    let noun = GENERIC[..4]
        .iter()
        .position(|(_, _, _, words)| words.iter().any(|w| k.contains(w)))?;
    if AGREES.iter().any(|w| k.contains(w)) && noun > 0 {
        // Asking for a proposal is the end of the presentation itself.
        if k.contains("proposal") || k.contains("quote") {
            return Some(noun);
        }
        return Some(noun - 1);
    }
    Some(noun)
}

/// The largest share of lost and open deals that may show the last
/// stage's exit action: above it, the action does not mark a win.
const CLOSE_MAX_OTHERS: f64 = 0.25;

/// The share of `deals` with a prospect step of `kind`.
fn prospect_share(deals: &[&Deal], kind: &str) -> f64 {
    if deals.is_empty() {
        return 0.0;
    }
    let n = deals
        .iter()
        .filter(|d| {
            d.steps
                .iter()
                .any(|s| s.kind == kind && s.actor == Actor::Prospect)
        })
        .count();
    n as f64 / deals.len() as f64
}

/// Makes the last stage exit only on actions the won deals show and the
/// others mostly do not; returns whether it must close by hand, and why.
fn safe_close(
    stages: &mut [StageMap],
    steps: &[StepStats],
    won: &[&Deal],
    others: &[&Deal],
    min_support: f64,
) -> (bool, String) {
    let Some(last) = stages.last_mut() else {
        return (true, "no prospect action is common to the won deals".into());
    };
    if others.is_empty() {
        return (
            false,
            "no lost or open deals to check the last stage's action against".into(),
        );
    }
    let before = last.exit.clone();
    last.exit
        .retain(|k| prospect_share(others, k) <= CLOSE_MAX_OTHERS);
    if !last.exit.is_empty() {
        let k = &last.exit[0];
        return (
            false,
            format!(
                "`{k}`: {:.0}% of won deals, {:.0}% of lost and open ones",
                prospect_share(won, k) * 100.0,
                prospect_share(others, k) * 100.0
            ),
        );
    }
    let best = steps
        .iter()
        .filter(|s| s.actor == Actor::Prospect)
        .map(|s| {
            (
                s,
                prospect_share(won, &s.kind),
                prospect_share(others, &s.kind),
            )
        })
        .filter(|(_, w, o)| *w >= min_support && *o <= CLOSE_MAX_OTHERS)
        .max_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)));
    match best {
        Some((s, w, o)) => {
            last.exit = vec![s.kind.clone()];
            (
                false,
                format!(
                    "`{}` ({:.0}% of won deals, {:.0}% of the others) instead of {} (shown by most lost and open deals too)",
                    s.kind,
                    w * 100.0,
                    o * 100.0,
                    before.join(", ")
                ),
            )
        }
        None => {
            last.exit = before;
            (
                true,
                "no prospect action shown by the won deals is rare among lost and open ones".into(),
            )
        }
    }
}

/// Replays every deal under the draft's stages (each exits once all its
/// actions happened, by the prospect): where would it stand?
fn fit(stages: &[StageMap], deals: &[Deal], manual_close: bool) -> Fit {
    let mut rows: Vec<FitRow> = stages
        .iter()
        .map(|s| FitRow {
            stage: s.id.clone(),
            ..FitRow::default()
        })
        .chain(std::iter::once(FitRow {
            stage: "won".into(),
            ..FitRow::default()
        }))
        .collect();
    let mut f = Fit {
        manual_close,
        ..Fit::default()
    };
    if stages.is_empty() {
        f.stages = rows;
        return f;
    }
    let top = if manual_close {
        stages.len() - 1
    } else {
        stages.len()
    };
    for d in deals {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut at = 0;
        let advance = |seen: &BTreeSet<&str>, at: &mut usize| {
            while *at < top && stages[*at].exit.iter().all(|k| seen.contains(k.as_str())) {
                *at += 1;
            }
        };
        advance(&seen, &mut at);
        for s in d.steps.iter().filter(|s| s.actor == Actor::Prospect) {
            seen.insert(&s.kind);
            advance(&seen, &mut at);
        }
        let row = &mut rows[at];
        match (d.won, d.open) {
            (true, _) => row.won += 1,
            (false, true) => row.open += 1,
            (false, false) => row.lost += 1,
        }
    }
    let won_row = rows.last().expect("the won row");
    f.won_closed_won = won_row.won;
    f.lost_closed_won = won_row.lost;
    f.open_closed_won = won_row.open;
    f.stages = rows;
    f
}

const CREATED: &str = "(created)";

/// Runs discovery over `deals`. The analysis reads won deals (and lost
/// ones with `include_lost`); lost and open deals always serve to check the
/// draft: its last stage must not close them won.
pub fn discover(deals: &[Deal], options: &Options, generated_at: Millis) -> Discovery {
    let analysed: Vec<&Deal> = deals
        .iter()
        .filter(|d| d.won || (options.include_lost && !d.open))
        .collect();
    let won: Vec<&Deal> = deals.iter().filter(|d| d.won).collect();
    let others: Vec<&Deal> = deals.iter().filter(|d| !d.won).collect();
    let lost_count = analysed.len() - won.len();

    let steps = step_stats(&won, options);
    let main: Vec<&StepStats> = steps.iter().filter(|s| s.main).collect();
    // Variants follow the prospect's steps: the order of a rep's emails and
    // calls around them is noise that would make every deal its own path.
    let main_kinds: BTreeSet<&str> = main
        .iter()
        .filter(|s| s.actor == Actor::Prospect)
        .map(|s| s.kind.as_str())
        .collect();

    let mut kind_deals: HashMap<&str, usize> = HashMap::new();
    for d in &analysed {
        let kinds: BTreeSet<&str> = d.steps.iter().map(|s| s.kind.as_str()).collect();
        for k in kinds {
            *kind_deals.entry(k).or_default() += 1;
        }
    }
    let min_deals = (options.min_share * analysed.len() as f64).ceil().max(1.0) as usize;
    let kept = |k: &str| kind_deals.get(k).copied().unwrap_or(0) >= min_deals;

    let edges = graph(&analysed, &kept);
    let variants = variants(&analysed, &main_kinds, options.variants);
    let owners = owners(&analysed);
    let mut stages = map_stages(&won, &main);
    let (manual_close, close_note) =
        safe_close(&mut stages, &steps, &won, &others, options.min_support);
    let mut fit_found = fit(&stages, deals, manual_close);
    if fit_found.lost_closed_won + fit_found.open_closed_won > 0 {
        // Not offered as is: the last stage closes by hand.
        fit_found = fit(&stages, deals, true);
    }
    fit_found.close_note = close_note;
    let draft = draft(
        &stages,
        &fit_found,
        &steps,
        won.len(),
        owners.len(),
        analysed.iter().map(|d| d.created).min(),
        analysed.iter().map(|d| d.closed).max(),
        generated_at,
    );
    let cycle = |want_won: bool| {
        durations(
            analysed
                .iter()
                .filter(|d| d.won == want_won)
                .map(|d| d.closed.0 - d.created.0)
                .collect(),
        )
    };
    let mut steps = steps;
    for stage in &stages {
        for kind in &stage.exit {
            if let Some(s) = steps.iter_mut().find(|s| &s.kind == kind) {
                s.stage = Some(stage.id.clone());
            }
        }
    }
    let mut found = Discovery {
        options: options.clone(),
        deals: analysed.len(),
        won: won.len(),
        lost: lost_count,
        owners_count: owners.len(),
        from: analysed.iter().map(|d| d.created).min(),
        to: analysed.iter().map(|d| d.closed).max(),
        won_cycle: cycle(true),
        lost_cycle: cycle(false),
        steps,
        edges,
        variants,
        owners,
        stages,
        fit: fit_found,
        draft,
        dot: String::new(),
        without_direction: BTreeMap::new(),
    };
    found.dot = dot(&found);
    found
}

fn step_stats(won: &[&Deal], options: &Options) -> Vec<StepStats> {
    struct Acc {
        deals: usize,
        /// Deals with this kind done by the prospect: what a criterion
        /// with `actor = "prospect"` sees.
        prospect_deals: usize,
        from_start: Vec<i64>,
        prospect: usize,
        rep: usize,
    }
    let mut by_kind: BTreeMap<&str, Acc> = BTreeMap::new();
    for d in won {
        let mut seen = BTreeSet::new();
        let mut by_prospect = BTreeSet::new();
        for s in &d.steps {
            let acc = by_kind.entry(&s.kind).or_insert(Acc {
                deals: 0,
                prospect_deals: 0,
                from_start: Vec::new(),
                prospect: 0,
                rep: 0,
            });
            match s.actor {
                Actor::Prospect => {
                    acc.prospect += 1;
                    if by_prospect.insert(s.kind.as_str()) {
                        acc.prospect_deals += 1;
                    }
                }
                Actor::Rep => acc.rep += 1,
            }
            if seen.insert(s.kind.as_str()) {
                acc.deals += 1;
                acc.from_start.push(s.at.0 - d.created.0);
            }
        }
    }
    let total = won.len().max(1) as f64;
    let mut out: Vec<StepStats> = by_kind
        .into_iter()
        .map(|(kind, acc)| {
            let actor = if acc.rep > acc.prospect {
                Actor::Rep
            } else {
                Actor::Prospect
            };
            // A prospect action is as common as the deals where the
            // prospect did it, not where anyone did.
            let deals = match actor {
                Actor::Prospect => acc.prospect_deals,
                Actor::Rep => acc.deals,
            };
            let support = deals as f64 / total;
            StepStats {
                kind: kind.to_string(),
                actor,
                won_deals: deals,
                support: round(support, 3),
                main: support >= options.min_support,
                from_start: durations(acc.from_start),
                stage: None,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.main.cmp(&a.main).then(
            a.from_start
                .median_days
                .partial_cmp(&b.from_start.median_days)
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    out
}

fn graph(deals: &[&Deal], kept: &dyn Fn(&str) -> bool) -> Vec<Edge> {
    let mut edges: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for d in deals {
        let mut prev: (&str, Millis) = (CREATED, d.created);
        for s in d.steps.iter().filter(|s| kept(&s.kind)) {
            if s.kind == prev.0 {
                // A repeat (three emails in a row) is one step in the graph.
                continue;
            }
            edges
                .entry((prev.0.to_string(), s.kind.clone()))
                .or_default()
                .push(s.at.0 - prev.1.0);
            prev = (&s.kind, s.at);
        }
        let end = if d.won { "(won)" } else { "(lost)" };
        edges
            .entry((prev.0.to_string(), end.to_string()))
            .or_default()
            .push(d.closed.0 - prev.1.0);
    }
    let mut out: Vec<Edge> = edges
        .into_iter()
        .map(|((from, to), gaps)| Edge {
            from,
            to,
            count: gaps.len(),
            days: durations(gaps),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.from.cmp(&b.from)));
    out
}

fn variants(deals: &[&Deal], main: &BTreeSet<&str>, limit: usize) -> Vec<Variant> {
    let mut counts: HashMap<Vec<String>, (usize, usize)> = HashMap::new();
    for d in deals {
        let mut path: Vec<String> = Vec::new();
        for s in &d.steps {
            if main.contains(s.kind.as_str()) && !path.contains(&s.kind) {
                path.push(s.kind.clone());
            }
        }
        let c = counts.entry(path).or_default();
        c.0 += 1;
        c.1 += usize::from(d.won);
    }
    let total = deals.len().max(1) as f64;
    let mut out: Vec<Variant> = counts
        .into_iter()
        .map(|(path, (n, won))| Variant {
            path,
            deals: n,
            share: round(n as f64 / total, 3),
            won,
        })
        .collect();
    out.sort_by(|a, b| b.deals.cmp(&a.deals).then(a.path.cmp(&b.path)));
    out.truncate(limit);
    out
}

fn owners(deals: &[&Deal]) -> Vec<OwnerStats> {
    let mut by: BTreeMap<&str, Vec<&Deal>> = BTreeMap::new();
    for d in deals {
        by.entry(d.owner.as_deref().unwrap_or("(none)"))
            .or_default()
            .push(d);
    }
    by.into_iter()
        .map(|(owner, ds)| {
            let won: Vec<&&Deal> = ds.iter().filter(|d| d.won).collect();
            let mut counts: Vec<usize> = ds.iter().map(|d| d.steps.len()).collect();
            counts.sort_unstable();
            OwnerStats {
                owner: owner.to_string(),
                deals: ds.len(),
                won: won.len(),
                win_rate: round(won.len() as f64 / ds.len().max(1) as f64, 3),
                won_cycle: durations(won.iter().map(|d| d.closed.0 - d.created.0).collect()),
                median_activities: counts.get(counts.len() / 2).copied().unwrap_or(0) as f64,
            }
        })
        .collect()
}

/// Assigns the main prospect actions (in order of median time from
/// creation) to the generic stages: by name where the name says, else the
/// stage of the step before; stages never go backwards. With no name
/// matching at all, the steps are spread evenly, the last one closing.
fn map_stages(won: &[&Deal], main: &[&StepStats]) -> Vec<StageMap> {
    let actions: Vec<&StepStats> = main
        .iter()
        .copied()
        .filter(|s| s.actor == Actor::Prospect)
        .collect();
    let named: Vec<Option<usize>> = actions.iter().map(|s| generic_stage(&s.kind)).collect();
    let mut assigned = Vec::with_capacity(actions.len());
    if named.iter().all(Option::is_none) {
        let k = actions.len();
        for i in 0..k {
            assigned.push(if k == 1 {
                4
            } else {
                (i * 4 + (k - 1) / 2) / (k - 1)
            });
        }
    } else {
        let mut current = 0;
        for n in &named {
            current = n.map_or(current, |n| n.max(current));
            assigned.push(current);
        }
    }
    let mut out = Vec::new();
    let mut previous_exit: Vec<&str> = Vec::new();
    for (g, (id, name, _, _)) in GENERIC.iter().enumerate() {
        let exit: Vec<&str> = actions
            .iter()
            .zip(&assigned)
            .filter(|(_, a)| **a == g)
            .map(|(s, _)| s.kind.as_str())
            .collect();
        if exit.is_empty() {
            continue;
        }
        // A stay starts when the previous stage's last step happened (or at
        // creation) and ends with this stage's last step.
        let mut stays = Vec::new();
        for d in won {
            let first_at = |kind: &str| d.steps.iter().find(|s| s.kind == kind).map(|s| s.at);
            let end: Option<Vec<Millis>> = exit.iter().map(|k| first_at(k)).collect();
            let start: Option<Vec<Millis>> = previous_exit.iter().map(|k| first_at(k)).collect();
            if let (Some(end), Some(start)) = (end, start) {
                let end = end.into_iter().max().unwrap_or(d.created);
                let start = start.into_iter().max().unwrap_or(d.created);
                stays.push((end.0 - start.0).max(0));
            }
        }
        out.push(StageMap {
            id: id.to_string(),
            name: name.to_string(),
            exit: exit.iter().map(|s| s.to_string()).collect(),
            days: durations(stays),
        });
        previous_exit = exit;
    }
    out
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

fn days(d: Option<f64>) -> String {
    d.map_or("-".into(), |d| format!("{d:.1}"))
}

/// "demo_attended" → "Demo attended".
fn words(kind: &str) -> String {
    let text = kind.replace(['_', '-', '.'], " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key (bare when it can be).
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        quoted(s)
    }
}

#[allow(clippy::too_many_arguments)]
fn draft(
    stages: &[StageMap],
    fit: &Fit,
    steps: &[StepStats],
    won: usize,
    owners: usize,
    from: Option<Millis>,
    to: Option<Millis>,
    generated_at: Millis,
) -> String {
    let date = |m: Option<Millis>| m.map_or("-".into(), |m| m.to_string()[..10].to_string());
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Draft process discovered by `stagecoach discover` on {}.",
        date(Some(generated_at))
    );
    let _ = writeln!(
        t,
        "# Evidence: {won} won deals of {owners} owner(s), created {} .. closed {}.",
        date(from),
        date(to)
    );
    t.push_str(
        "# Each exit criterion is a prospect action that most won deals show\n\
         # before moving on. Review every one before serving this file: keep\n\
         # the actions that truly mark progress, and add the ones your data\n\
         # cannot show (budget confirmed, decision maker met, …).\n\n",
    );
    t.push_str("[process]\nname = \"Discovered process\"\n");
    let _ = writeln!(
        t,
        "description = {}",
        quoted(&format!("Learned from {won} won deals."))
    );
    t.push_str("review_every_days = 120\n\n[activities]\n");
    for s in steps {
        let _ = writeln!(
            t,
            "{} = {{ actor = {}, description = {} }}",
            key(&s.kind),
            quoted(s.actor.as_str()),
            quoted(&format!(
                "Seen in {} of {} won deals ({:.0}%)",
                s.won_deals,
                won,
                s.support * 100.0
            ))
        );
    }
    if stages.is_empty() {
        // Nothing to learn from: a single stage a rep closes by hand keeps
        // the file valid and says so.
        t.push_str(
            "\n# No prospect action is common to the won deals: record more history\n\
             # (or say which kinds are the prospect's: --prospect-kinds), or lower\n\
             # --min-support, and run discovery again. Until then a person closes won.\n\
             [[stages]]\nid = \"close\"\nname = \"Close\"\nadvance = \"manual\"\nexit = [\n  { question = \"Did the prospect sign?\", activity = \"contract_signed\", actor = \"prospect\" },\n]\n",
        );
        if !steps.iter().any(|s| s.kind == "contract_signed") {
            t = t.replace(
                "[activities]\n",
                "[activities]\ncontract_signed = { actor = \"prospect\" }\n",
            );
        }
        return t;
    }
    for stage in stages {
        let (_, name, description, _) = GENERIC
            .iter()
            .find(|g| g.0 == stage.id)
            .expect("a generic stage");
        let _ = writeln!(
            t,
            "\n[[stages]]\nid = {}\nname = {}",
            quoted(&stage.id),
            quoted(name)
        );
        let _ = writeln!(t, "description = {}", quoted(description));
        let _ = writeln!(
            t,
            "# {} won deals show every step of this stage: median {} days in it, p90 {}.",
            stage.days.count,
            days(stage.days.median_days),
            days(stage.days.p90_days)
        );
        if let Some(p90) = stage.days.p90_days {
            let _ = writeln!(t, "stall_after_days = {}", (p90.ceil() as i64).max(1));
        }
        let last = std::ptr::eq(stage, stages.last().expect("stages"));
        if last {
            let _ = writeln!(t, "# Closing: {}.", fit.close_note);
            let _ = writeln!(
                t,
                "# Replayed under this draft: {} of {} won deals close won; lost deals closed won: {}, open deals closed won: {}.",
                fit.won_closed_won,
                fit.stages.iter().map(|r| r.won).sum::<usize>(),
                fit.lost_closed_won,
                fit.open_closed_won
            );
            if fit.manual_close {
                t.push_str("# The action below would close lost or open deals won: a person closes won.\nadvance = \"manual\"\n");
            }
        }
        t.push_str("exit = [\n");
        for kind in &stage.exit {
            if let Some(s) = steps.iter().find(|s| &s.kind == kind) {
                let _ = writeln!(
                    t,
                    "  # `{kind}`: {} of {won} won deals ({:.0}%), median {} days after creation (p90 {})",
                    s.won_deals,
                    s.support * 100.0,
                    days(s.from_start.median_days),
                    days(s.from_start.p90_days)
                );
            }
            let _ = writeln!(
                t,
                "  {{ question = {}, activity = {}, actor = \"prospect\" }},",
                quoted(&format!("{}?", words(kind))),
                quoted(kind)
            );
        }
        t.push_str("]\n");
    }
    t
}

/// The directly-follows graph as Graphviz DOT: edge labels give the count
/// and the median days; thicker edges carry more deals.
fn dot(d: &Discovery) -> String {
    let mut t = String::from(
        "digraph discovered {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let _ = writeln!(t, "  \"(created)\" [shape=circle, label=\"start\"];");
    let _ = writeln!(t, "  \"(won)\" [shape=doublecircle, label=\"won\"];");
    if d.lost > 0 {
        let _ = writeln!(t, "  \"(lost)\" [shape=doublecircle, label=\"lost\"];");
    }
    for s in d.steps.iter().filter(|s| s.main) {
        let _ = writeln!(
            t,
            "  {} [style=\"rounded,bold\"{}];",
            dot_id(&s.kind),
            s.stage
                .as_ref()
                .map(|g| format!(", xlabel={}", dot_id(g)))
                .unwrap_or_default()
        );
    }
    let max = d.edges.iter().map(|e| e.count).max().unwrap_or(1).max(1) as f64;
    for e in &d.edges {
        let _ = writeln!(
            t,
            "  {} -> {} [label=\"{} · {} d\", penwidth={:.1}];",
            dot_id(&e.from),
            dot_id(&e.to),
            e.count,
            days(e.days.median_days),
            1.0 + 4.0 * e.count as f64 / max
        );
    }
    t.push_str("}\n");
    t
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Options from request parameters, checked.
pub fn options(
    include_lost: bool,
    min_support: Option<f64>,
    min_share: Option<f64>,
    variants: Option<usize>,
) -> Result<Options, String> {
    let mut o = Options {
        include_lost,
        ..Options::default()
    };
    for (name, value, slot) in [
        ("min_support", min_support, &mut o.min_support),
        ("min_share", min_share, &mut o.min_share),
    ] {
        if let Some(v) = value {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                return Err(format!("`{name}` must be a share between 0 and 1, not {v}"));
            }
            *slot = v;
        }
    }
    if let Some(v) = variants {
        o.variants = v;
    }
    Ok(o)
}

/// Steps in time order (ties keep recording order).
pub fn sorted(mut steps: Vec<Step>) -> Vec<Step> {
    steps.sort_by_key(|s| s.at);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_onto_the_generic_stages() {
        assert_eq!(generic_stage("replied"), Some(0));
        assert_eq!(generic_stage("meeting_held"), Some(1));
        assert_eq!(generic_stage("meeting_booked"), Some(0));
        assert_eq!(generic_stage("requirements_shared"), Some(2));
        assert_eq!(generic_stage("demo_scheduled"), Some(2));
        assert_eq!(generic_stage("demo_attended"), Some(3));
        assert_eq!(generic_stage("proposal_requested"), Some(3));
        assert_eq!(generic_stage("contract_signed"), Some(4));
        assert_eq!(generic_stage("step_b"), None);
    }

    fn deal(key: &str, steps: &[(&str, i64)], close_day: i64) -> Deal {
        Deal {
            open: false,
            key: key.into(),
            owner: Some("ana".into()),
            won: true,
            created: Millis(0),
            closed: Millis(close_day * Millis::DAY),
            steps: steps
                .iter()
                .map(|(k, d)| Step {
                    kind: k.to_string(),
                    at: Millis(d * Millis::DAY),
                    actor: Actor::Prospect,
                })
                .collect(),
        }
    }

    #[test]
    fn every_draft_is_a_valid_process() {
        let lint_clean = |d: &Discovery| {
            let p = crate::process::parse(&d.draft, "draft.toml")
                .unwrap_or_else(|e| panic!("{e}\n{}", d.draft));
            let warnings = crate::lint::lint(&p, Millis(0), Some(Millis(0)));
            assert!(warnings.is_empty(), "{warnings:?}\n{}", d.draft);
        };
        // No deals at all, and deals whose only steps are the rep's.
        lint_clean(&discover(&[], &Options::default(), Millis(0)));
        let mut rep_only = deal("r", &[("email_sent", 1)], 3);
        rep_only.steps[0].actor = Actor::Rep;
        lint_clean(&discover(&[rep_only], &Options::default(), Millis(0)));
        // Kinds that need quoting in TOML.
        let odd = deal(
            "o",
            &[("demo attended (on-site)", 2), ("contract.signed", 4)],
            5,
        );
        lint_clean(&discover(&[odd], &Options::default(), Millis(0)));
    }

    #[test]
    fn unnamed_steps_spread_over_the_stages_in_order() {
        let deals: Vec<Deal> = (0..4)
            .map(|i| deal(&i.to_string(), &[("a", 1), ("b", 3), ("c", 6)], 7))
            .collect();
        let d = discover(&deals, &Options::default(), Millis(0));
        let ids: Vec<(&str, &[String])> = d
            .stages
            .iter()
            .map(|s| (s.id.as_str(), s.exit.as_slice()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("prospect", &["a".to_string()][..]),
                ("research", &["b".to_string()][..]),
                ("close", &["c".to_string()][..]),
            ]
        );
        assert_eq!(d.stages[1].days.median_days, Some(2.0));
        assert_eq!(d.won_cycle.median_days, Some(7.0));
    }
}
