//! `stagecoach demo`: fills a daemon with a realistic history through the
//! normal write path (criteria enforced, explicit times), so a newcomer
//! sees real numbers at once.
//!
//! Reps differ in skill (how likely their prospects take the next step and
//! how fast), some prospects stall, many are lost with a reason, and the
//! best reach the contract. Works with the default process's stages and
//! activities.

use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::model::Millis;

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

    fn unit(&mut self) -> f64 {
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
}

/// Fills the daemon behind `client` with `prospects` prospects created over
/// the last `months` months before `now`.
pub async fn run(
    client: &mut Client,
    prospects: u64,
    months: u32,
    seed: u64,
    now: Millis,
) -> Result<DemoSummary, ClientError> {
    let mut rng = Rng::new(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
    let span = i64::from(months) * 30 * Millis::DAY;
    let start = now.0 - span;
    let mut summary = DemoSummary::default();
    let mut pending: Vec<(&str, Value)> = Vec::new();
    // Prospects are created in batches; their histories follow in batches.
    let mut created: Vec<(u64, usize, i64)> = Vec::new();
    for i in 0..prospects {
        let rep = rng.below(REPS.len() as u64) as usize;
        let at = start
            + (span as f64 * (i as f64 / prospects.max(1) as f64)) as i64
            + rng.below(Millis::DAY as u64) as i64;
        let amount = 1000 * (5 + rng.below(95));
        let employees = 10 + rng.below(2000);
        pending.push((
            "prospect.create",
            json!({ "name": format!("Prospect {}", i + 1), "company": format!("Company {}", i + 1),
                    "owner": REPS[rep].0, "at": Millis(at),
                    "fields": { "amount": amount, "employees": employees, "budget": amount } }),
        ));
        if pending.len() == 500 || i + 1 == prospects {
            for (answer, (_, params)) in client.batch(&pending).await?.into_iter().zip(&pending) {
                match answer {
                    Ok(p) => {
                        let owner = params["owner"].as_str().unwrap_or_default();
                        let rep = REPS.iter().position(|r| r.0 == owner).unwrap_or(0);
                        created.push((
                            p["id"].as_u64().unwrap_or(0),
                            rep,
                            params["at"]
                                .as_str()
                                .map_or(0, |t| Millis::parse(t).map_or(0, |m| m.0)),
                        ));
                        summary.prospects += 1;
                    }
                    Err(_) => summary.refused += 1,
                }
            }
            pending.clear();
        }
    }
    let mut calls: Vec<(&str, Value)> = Vec::new();
    for (id, rep, created_at) in created {
        let (_, skill, pace) = REPS[rep];
        let mut at = created_at;
        let mut closed = false;
        for (stage, actions) in STEPS.iter().enumerate() {
            // Rep effort between steps: emails and calls.
            for _ in 0..rng.below(3) {
                at += rng.delay(pace / 2.0);
                let kind = if rng.below(2) == 0 {
                    "email_sent"
                } else {
                    "call_made"
                };
                calls.push((
                    "activity.record",
                    json!({ "prospect": id, "kind": kind, "actor": "rep", "at": Millis(at) }),
                ));
            }
            let roll = rng.unit();
            if roll > skill {
                // Lost here, or simply stalled (no further activity).
                if roll > skill + (1.0 - skill) * 0.35 && at + Millis::DAY < now.0 {
                    at += rng.delay(pace);
                    let reason = LOSS_REASONS[rng.below(LOSS_REASONS.len() as u64) as usize];
                    calls.push(("prospect.close", json!({ "id": id, "outcome": "lost", "reason": reason, "at": Millis(at.min(now.0)) })));
                    summary.lost += 1;
                }
                break;
            }
            for action in *actions {
                at += rng.delay(pace);
                if at >= now.0 {
                    closed = true;
                    break;
                }
                calls.push(("activity.record", json!({ "prospect": id, "kind": action, "actor": "prospect", "at": Millis(at) })));
            }
            if closed {
                break;
            }
            if stage == STEPS.len() - 1 {
                summary.won += 1;
            }
        }
        if calls.len() >= 500 {
            summary.activities += send(client, &mut calls, &mut summary.refused).await?;
        }
    }
    summary.activities += send(client, &mut calls, &mut summary.refused).await?;
    Ok(summary)
}

async fn send(
    client: &mut Client,
    calls: &mut Vec<(&str, Value)>,
    refused: &mut u64,
) -> Result<u64, ClientError> {
    if calls.is_empty() {
        return Ok(0);
    }
    let mut recorded = 0;
    for (answer, (method, _)) in client.batch(calls).await?.into_iter().zip(calls.iter()) {
        match answer {
            Ok(_) if *method == "activity.record" => recorded += 1,
            Ok(_) => {}
            Err(_) => *refused += 1,
        }
    }
    calls.clear();
    Ok(recorded)
}
