//! `stagecoach demo`: fills a daemon with a realistic history through the
//! normal write path (criteria enforced, explicit times), so a newcomer
//! sees real numbers at once.
//!
//! Reps differ in skill (how likely their prospects take the next step and
//! how fast), some prospects stall, many are lost with a reason, and the
//! best reach the contract. Works with the default process's stages and
//! activities.
//!
//! History is written in time order, and half-way through the period the
//! process changes the way teams change it: Research exits on the shared
//! requirements alone (the demo date moves to Present). The new text is
//! written to the daemon's process file (`process.reload` with `text`), so
//! the two versions can be compared (`metrics compare`, the report's
//! before/after); `--keep-process` leaves the process alone.

use serde_json::{Value, json};

use stagecoach_client::{Client, ClientError};
use stagecoach_types::api::{methods, params};
use stagecoach_types::model::Millis;

/// Reps and their skill: chance to take each next step, mean days per step.
const REPS: [(&str, f64, f64); 6] = [
    ("maria", 0.80, 4.0),
    ("tom", 0.65, 6.0),
    ("aisha", 0.72, 5.0),
    ("li", 0.58, 8.0),
    ("jonas", 0.68, 5.5),
    ("sofia", 0.75, 7.0),
];

/// The prospect actions that move a prospect through the default process.
const STEPS: [&[&str]; 5] = [
    &["replied"],
    &["meeting_held"],
    &["requirements_shared", "demo_scheduled"],
    &["demo_attended", "proposal_requested"],
    &["contract_signed"],
];

const LOSS_REASONS: [&str; 5] = [
    "no budget",
    "chose a competitor",
    "no decision",
    "bad timing",
    "not a fit",
];

/// A deterministic generator (xorshift), so a seed reproduces a history.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is replaced: xorshift needs a set bit).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An exponential-ish delay around `mean` days, in ms.
    fn delay(&mut self, mean: f64) -> i64 {
        let u = self.unit().max(1e-9);
        ((-u.ln() * mean).min(mean * 6.0) * Millis::DAY as f64) as i64 + 3_600_000
    }
}

/// What the demo wrote.
#[derive(Debug, Default)]
pub struct DemoSummary {
    /// Prospects created.
    pub prospects: u64,
    /// Activities recorded.
    pub activities: u64,
    /// Won.
    pub won: u64,
    /// Lost.
    pub lost: u64,
    /// Requests the daemon refused (should be none).
    pub refused: u64,
    /// The process change made mid-way: (new version, when it took effect).
    pub process_change: Option<(u64, Millis)>,
    /// Why no process change was made, when none was.
    pub no_change: Option<String>,
    /// The change rewrote a case of the process's tests that pinned the old
    /// rule.
    pub tests_changed: bool,
}

/// What to fill.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many prospects.
    pub prospects: u64,
    /// Over how many months before `now`.
    pub months: u32,
    /// The same seed gives the same history.
    pub seed: u64,
    /// The end of the history.
    pub now: Millis,
    /// Change the process half-way.
    pub change_process: bool,
}

/// One thing that happens to a demo prospect.
enum Happening {
    Create {
        rep: usize,
        amount: u64,
        employees: u64,
    },
    Activity {
        kind: &'static str,
        by_rep: bool,
    },
    Lost {
        reason: &'static str,
    },
}

/// The change the demo makes half-way, on the default process: Research
/// no longer waits for the demo date. `None` when the process has no such
/// criterion (a custom process).
pub fn changed_process(text: &str) -> Option<String> {
    let stage = text.find("id = \"research\"")?;
    let line_start = stage + text[stage..].find("activity = \"demo_scheduled\"")?;
    let line_start = text[..line_start].rfind('\n')? + 1;
    // The criterion must still be inside the research stage.
    if text[stage..line_start].contains("[[stages]]") {
        return None;
    }
    let line_end = line_start + text[line_start..].find('\n')? + 1;
    let exit = stage + text[stage..line_start].rfind("exit = [")?;
    let mut out = String::with_capacity(text.len() + 120);
    out.push_str(&text[..exit]);
    out.push_str(
        "# Changed by `stagecoach demo`: research exits on the shared requirements\n# alone; the demo date is set during Present.\n",
    );
    out.push_str(&text[exit..line_start]);
    out.push_str(&text[line_end..]);
    Some(out)
}

/// The default process's test case the mid-way change contradicts, and
/// what it becomes: the demo changes the tests with the process, as sales
/// ops would (the daemon refuses a process its own tests fail).
const CASE_BEFORE: &str = r#"[[case]]
name = "research waits for both the requirements and a demo date"
activities = [{ kind = "replied" }, { kind = "meeting_held" }, { kind = "requirements_shared" }]
expect = { stage = "research", met = ["Did the prospect share their requirements?"], unmet = ["Did the prospect accept a demo date?"] }
"#;
const CASE_AFTER: &str = r#"# Changed by `stagecoach demo` with the process: research exits on the shared
# requirements alone; the demo date is set during Present.
[[case]]
name = "research exits on the requirements alone"
activities = [{ kind = "replied" }, { kind = "meeting_held" }, { kind = "requirements_shared" }]
expect = { stage = "present", unmet = ["Did the prospect attend the demo?"] }
"#;

/// The process's tests with the case the mid-way change contradicts
/// rewritten; `None` when they do not have that case (the daemon then
/// checks the change against them as they are).
pub fn changed_tests(tests: &str) -> Option<String> {
    tests
        .contains(CASE_BEFORE)
        .then(|| tests.replacen(CASE_BEFORE, CASE_AFTER, 1))
}

/// Fills the daemon behind `client` with `prospects` prospects created over
/// the last `months` months before `now`.
pub async fn run(client: &mut Client, o: &DemoOptions) -> Result<DemoSummary, ClientError> {
    let mut rng = Rng::new(o.seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
    let now = o.now;
    let span = i64::from(o.months) * 30 * Millis::DAY;
    let start = now.0 - span;
    let mut summary = DemoSummary::default();
    // Every prospect's history, then all of it in time order.
    let mut happenings: Vec<(i64, usize, Happening)> = Vec::new();
    for i in 0..o.prospects as usize {
        let rep = rng.below(REPS.len() as u64) as usize;
        let created = start
            + (span as f64 * (i as f64 / o.prospects.max(1) as f64)) as i64
            + rng.below(Millis::DAY as u64) as i64;
        happenings.push((
            created,
            i,
            Happening::Create {
                rep,
                amount: 1000 * (5 + rng.below(95)),
                employees: 10 + rng.below(2000),
            },
        ));
        let (_, skill, pace) = REPS[rep];
        let mut at = created;
        'stages: for (stage, actions) in STEPS.iter().enumerate() {
            // Rep effort between steps: emails and calls.
            for _ in 0..rng.below(3) {
                at += rng.delay(pace / 2.0);
                let kind = if rng.below(2) == 0 {
                    "email_sent"
                } else {
                    "call_made"
                };
                if at < now.0 {
                    happenings.push((at, i, Happening::Activity { kind, by_rep: true }));
                }
            }
            let roll = rng.unit();
            if roll > skill {
                // Lost here, or simply stalled (no further activity).
                if roll > skill + (1.0 - skill) * 0.35 && at + Millis::DAY < now.0 {
                    at += rng.delay(pace);
                    let reason = LOSS_REASONS[rng.below(LOSS_REASONS.len() as u64) as usize];
                    happenings.push((at.min(now.0 - 1), i, Happening::Lost { reason }));
                    summary.lost += 1;
                }
                break;
            }
            for action in *actions {
                at += rng.delay(pace);
                if at >= now.0 {
                    break 'stages;
                }
                happenings.push((
                    at,
                    i,
                    Happening::Activity {
                        kind: action,
                        by_rep: false,
                    },
                ));
            }
            if stage == STEPS.len() - 1 {
                summary.won += 1;
            }
        }
    }
    // Stable: each prospect's own happenings keep their order.
    happenings.sort_by_key(|h| h.0);

    let change_at = start + span / 2;
    let mut changed = !o.change_process;
    let mut ids: Vec<u64> = vec![0; o.prospects as usize];
    let mut batch_start = 0;
    while batch_start < happenings.len() {
        let mut end = (batch_start + 1000).min(happenings.len());
        if !changed {
            // Everything before the change goes in before it.
            let split = happenings[batch_start..end]
                .iter()
                .position(|h| h.0 >= change_at)
                .map_or(end, |p| batch_start + p);
            if split == batch_start {
                change_process(client, change_at, &mut summary).await?;
                changed = true;
                continue;
            }
            end = split;
        }
        let batch = &happenings[batch_start..end];
        // Creations first (the activities need the ids), then the rest in
        // time order.
        let creates: Vec<(&str, Value)> = batch
            .iter()
            .filter_map(|(at, i, h)| match h {
                Happening::Create { rep, amount, employees } => Some((
                    "prospect.create",
                    json!({ "name": format!("Prospect {}", i + 1), "company": format!("Company {}", i + 1),
                            "owner": REPS[*rep].0, "at": Millis(*at),
                            "fields": { "amount": amount, "employees": employees, "budget": amount } }),
                )),
                _ => None,
            })
            .collect();
        let created: Vec<usize> = batch
            .iter()
            .filter(|h| matches!(h.2, Happening::Create { .. }))
            .map(|h| h.1)
            .collect();
        if !creates.is_empty() {
            for (answer, i) in client.batch(&creates).await?.into_iter().zip(created) {
                match answer {
                    Ok(p) => {
                        ids[i] = p["id"].as_u64().unwrap_or(0);
                        summary.prospects += 1;
                    }
                    Err(_) => summary.refused += 1,
                }
            }
        }
        let calls: Vec<(&str, Value)> = batch
            .iter()
            .filter_map(|(at, i, h)| {
                let id = ids[*i];
                match h {
                    Happening::Create { .. } => None,
                    Happening::Activity { kind, by_rep } => Some((
                        "activity.record",
                        json!({ "prospect": id, "kind": kind, "actor": if *by_rep { "rep" } else { "prospect" }, "at": Millis(*at) }),
                    )),
                    Happening::Lost { reason } => Some((
                        "prospect.close",
                        json!({ "id": id, "outcome": "lost", "reason": reason, "at": Millis(*at) }),
                    )),
                }
            })
            .collect();
        if !calls.is_empty() {
            for (answer, (method, _)) in client.batch(&calls).await?.into_iter().zip(&calls) {
                match answer {
                    Ok(_) if *method == "activity.record" => summary.activities += 1,
                    Ok(_) => {}
                    Err(_) => summary.refused += 1,
                }
            }
        }
        batch_start = end;
    }
    if !changed {
        change_process(client, change_at, &mut summary).await?;
    }
    Ok(summary)
}

/// Makes the mid-way process change through `process.reload` with the new
/// text; history written from here on is stamped with the new version.
async fn change_process(
    client: &mut Client,
    at: i64,
    summary: &mut DemoSummary,
) -> Result<(), ClientError> {
    let current = client
        .request::<methods::ProcessGet>(&params::ProcessGet::default())
        .await?;
    let Some(text) = changed_process(&current.text) else {
        summary.no_change = Some(
            "the process has no research stage with a `demo_scheduled` criterion to drop".into(),
        );
        return Ok(());
    };
    let tests = current.tests.as_deref().and_then(changed_tests);
    let tests_changed = tests.is_some();
    let reload = client
        .request::<methods::ProcessReload>(&params::ProcessReload {
            text: Some(text),
            tests,
        })
        .await;
    match reload {
        Ok(r) => {
            summary.process_change = Some((r.version, Millis(at)));
            summary.tests_changed = tests_changed;
        }
        // The process's own tests (or a plugin) refused it: the history
        // goes on under the version in force, and the summary says why.
        Err(ClientError::Rpc(e)) if e.code == stagecoach_types::protocol::INVALID_PROCESS => {
            let why = e
                .data
                .as_ref()
                .and_then(|d| d.errors.as_ref())
                .and_then(|errors| errors.first())
                .map(|first| {
                    format!(
                        "{}:{}: {} {}",
                        first.file, first.line, first.key, first.message
                    )
                })
                .unwrap_or(e.message);
            summary.no_change = Some(format!("the daemon refused the mid-way change ({why})"));
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mid_way_change_drops_one_criterion_of_the_default_process() {
        let text = include_str!("../../process.toml");
        let changed = changed_process(text).expect("the default process has the criterion");
        let before = stagecoach_core::process::parse(text, "process.toml").unwrap();
        let after = stagecoach_core::process::parse(&changed, "process.toml").unwrap();
        let research =
            |p: &stagecoach_core::process::Process| p.stage("research").unwrap().exit.len();
        assert_eq!(research(&before), 2);
        assert_eq!(research(&after), 1);
        let others = |p: &stagecoach_core::process::Process| {
            p.stages
                .iter()
                .filter(|s| s.id != "research")
                .map(|s| s.exit.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(others(&before), others(&after));
        // A process without that criterion is left alone.
        assert!(changed_process(&changed).is_none());
        // The default process's tests have the case the change contradicts.
        let tests = include_str!("../../process.test.toml");
        let changed_tests = changed_tests(tests).expect("the default tests have the case");
        assert!(!changed_tests.contains(CASE_BEFORE) && changed_tests.contains(CASE_AFTER));
        assert!(super::changed_tests(&changed_tests).is_none());
    }
}
