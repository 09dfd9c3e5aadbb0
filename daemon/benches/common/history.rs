//! The generated history the scale benchmarks load: `n` prospects over a
//! year, ten activities each (prospect actions that advance it some way,
//! then the rep's emails), through the real write path.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use stagecoach_core::clock::Clock;
use stagecoach_core::engine::{ActiveProcess, NewActivity, NewProspect, WriteOp};
use stagecoach_core::store::Store;
use stagecoach_core::writer::{Writer, WriterStats};
use stagecoach_types::model::Millis;

pub const STAGES: [&str; 5] = ["prospect", "connect", "research", "present", "close"];
/// The prospect action that moves a prospect out of each stage.
pub const ADVANCE: [&str; 5] = [
    "replied",
    "meeting_held",
    "demo_scheduled",
    "proposal_requested",
    "contract_signed",
];
pub const DAY: i64 = Millis::DAY;
pub const START: i64 = 20_454 * DAY; // 2026-01-01

pub fn process() -> Arc<ActiveProcess> {
    let mut text = String::from("[process]\nname = \"bench\"\n");
    for (s, a) in STAGES.iter().zip(ADVANCE) {
        text.push_str(&format!(
            "[[stages]]\nid = \"{s}\"\nname = \"{s}\"\nexit = [{{ question = \"q\", activity = \"{a}\", actor = \"prospect\" }}]\n"
        ));
    }
    Arc::new(ActiveProcess {
        version: 1,
        hash: String::new(),
        text: text.clone(),
        loaded_at: Millis(START),
        process: stagecoach_core::process::parse(&text, "bench.toml").unwrap(),
        plugins: Default::default(),
    })
}

/// The bench process's text with `edit` applied to it, parsed: a draft.
pub fn draft(edit: impl Fn(String) -> String) -> Arc<ActiveProcess> {
    let text = edit(process().text.clone());
    Arc::new(ActiveProcess {
        version: 2,
        hash: String::new(),
        text: text.clone(),
        loaded_at: Millis(START),
        process: stagecoach_core::process::parse(&text, "draft.toml").unwrap(),
        plugins: Default::default(),
    })
}

/// Loads `n` prospects into `store` through the writer: (activities, seconds).
pub fn load(store: &Store, n: u64) -> (u64, f64) {
    let (events, _) = tokio::sync::broadcast::channel(16);
    let (writer, thread) = Writer::start(
        store.clone(),
        Clock::fixed(Millis(START + 400 * DAY)),
        events,
        Arc::new(WriterStats::default()),
    )
    .unwrap();
    let active = process();
    let mut rng = stagecoach::demo::Rng::new(0x9e37_79b9_7f4a_7c15);
    let t = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    let mut activities = 0u64;
    for i in 0..n {
        let created = START + rng.below(365) as i64 * DAY + rng.below(DAY as u64) as i64;
        let owner = format!("rep{}", rng.below(20));
        pending.push_back(writer.submit(
            active.clone(),
            WriteOp::CreateProspect(NewProspect {
                name: format!("p{i}"),
                company: None,
                owner: Some(owner),
                fields: Default::default(),
                stage: None,
                external_id: None,
                at: Some(Millis(created)),
            }),
        ));
        // Ten activities: prospect actions that advance it some way, rep noise.
        let reach = rng.below(6) as usize;
        let mut at = created;
        let steps = ADVANCE.iter().take(reach).map(|a| (*a, "prospect"));
        let noise = std::iter::repeat(("email_sent", "rep"));
        for (kind, actor) in steps.chain(noise).take(10) {
            at += (1 + rng.below(9)) as i64 * DAY;
            pending.push_back(writer.submit(
                active.clone(),
                WriteOp::RecordActivity(NewActivity {
                    prospect: i + 1,
                    kind: kind.into(),
                    actor: Some(serde_json::from_value(serde_json::json!(actor)).unwrap()),
                    at: Some(Millis(at)),
                    data: Default::default(),
                }),
            ));
            activities += 1;
        }
        while pending.len() > 20_000 {
            pending
                .pop_front()
                .unwrap()
                .blocking_recv()
                .unwrap()
                .unwrap();
        }
    }
    for p in pending {
        p.blocking_recv().unwrap().unwrap();
    }
    drop(writer);
    thread.join().unwrap();
    let load = t.elapsed().as_secs_f64();
    (activities, load)
}
