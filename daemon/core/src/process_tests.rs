//! Process tests: named cases beside `process.toml` (in
//! `process.test.toml`), each a prospect's fields and a sequence of
//! activities, with what is expected after them — stage, status, which
//! criteria are met, checklist counts. Run against the process and its
//! real plugins in a scratch store: by `stagecoach test`, by `lint`, and by
//! the daemon before a reload (a process whose tests fail is refused).
//!
//! ```toml
//! [[case]]
//! name = "a reply and a meeting reach research"
//! fields = { budget = 20000 }
//! activities = [
//!   { kind = "replied" },
//!   { kind = "meeting_held", at = "2026-01-05" },
//! ]
//! expect = { stage = "research", unmet = ["Did the prospect share their requirements?"] }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{ActiveProcess, Answer, NewActivity, NewProspect, WriteOp};
use crate::store::{Store, StoreError, Tables};
use stagecoach_types::api::results::Checklist;
use stagecoach_types::model::{Actor, Fields, Millis, Status};

/// The test file of a process file: `process.toml` → `process.test.toml`.
pub fn tests_path(process: &Path) -> PathBuf {
    let stem = process
        .file_stem()
        .map_or("process".into(), |s| s.to_string_lossy().into_owned());
    process.with_file_name(format!("{stem}.test.toml"))
}

/// A test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The cases, in file order.
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it checks, in words.
    pub name: String,
    /// The stage the prospect starts in (default: the first).
    #[serde(default)]
    pub stage: Option<String>,
    /// Its fields at creation.
    #[serde(default)]
    pub fields: Fields,
    /// When it is created (default 2026-01-01T09:00:00Z).
    #[serde(default)]
    pub created: Option<String>,
    /// What it does, in order; each without `at` one hour after the one
    /// before.
    #[serde(default)]
    pub activities: Vec<CaseActivity>,
    /// What must hold afterwards.
    pub expect: Expect,
}

/// One activity of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseActivity {
    /// The kind.
    pub kind: String,
    /// Who (default: the kind's declared actor).
    #[serde(default)]
    pub actor: Option<Actor>,
    /// When (RFC 3339 or a date).
    #[serde(default)]
    pub at: Option<String>,
}

/// What a case expects; what it leaves out is not checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The stage it is in (for a closed prospect: the one it closed from).
    #[serde(default)]
    pub stage: Option<String>,
    /// `open`, `won` or `lost`.
    #[serde(default)]
    pub status: Option<Status>,
    /// Questions of its stage's exit criteria that must be met.
    #[serde(default)]
    pub met: Vec<String>,
    /// Questions that must be unmet.
    #[serde(default)]
    pub unmet: Vec<String>,
    /// Checklist name → items done.
    #[serde(default)]
    pub checklists: BTreeMap<String, u64>,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its line in the test file.
    pub line: usize,
    /// Every expectation that did not hold, as `expected …, got …`.
    pub failures: Vec<String>,
}

/// Parses a test file; errors name line and column.
pub fn parse(text: &str) -> Result<(TestFile, Vec<usize>), String> {
    let file: TestFile = toml::from_str(text).map_err(|e| e.to_string())?;
    // Each case's line: the `[[case]]` headers in order.
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[case]]"))
        .map(|(i, _)| i + 1)
        .collect();
    Ok((file, lines))
}

const DEFAULT_CREATED: &str = "2026-01-01T09:00:00Z";

/// Runs every case against `active` in the empty `scratch` store.
pub fn run(
    active: &ActiveProcess,
    file: &TestFile,
    lines: &[usize],
    scratch: &Store,
) -> Result<Vec<CaseResult>, StoreError> {
    let mut out = Vec::with_capacity(file.cases.len());
    for (i, case) in file.cases.iter().enumerate() {
        let mut failures = Vec::new();
        let created = match Millis::parse(case.created.as_deref().unwrap_or(DEFAULT_CREATED)) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("`created`: {e}"));
                Millis::parse(DEFAULT_CREATED).expect("a valid default")
            }
        };
        let mut txn = scratch.begin_write()?;
        let id = {
            let mut t = Tables::open(&txn, scratch.next_ids()?)?;
            let op = WriteOp::CreateProspect(NewProspect {
                name: case.name.clone(),
                company: None,
                owner: None,
                fields: case.fields.clone(),
                stage: case.stage.clone(),
                external_id: None,
                at: Some(created),
            });
            let id = match crate::engine::apply(&mut t, active, &op, created)? {
                Ok((Answer::Prospect(p), _)) => Some(p.prospect.id),
                Ok(_) => None,
                Err(e) => {
                    failures.push(format!("cannot create the prospect: {e}"));
                    None
                }
            };
            if let Some(id) = id {
                let mut at = created;
                for (j, a) in case.activities.iter().enumerate() {
                    at = match &a.at {
                        Some(text) => match Millis::parse(text) {
                            Ok(t) => t,
                            Err(e) => {
                                failures.push(format!("activities[{j}].at: {e}"));
                                continue;
                            }
                        },
                        None => Millis(at.0 + 3_600_000),
                    };
                    let op = WriteOp::RecordActivity(NewActivity {
                        prospect: id,
                        kind: a.kind.clone(),
                        actor: a.actor,
                        at: Some(at),
                        data: Default::default(),
                    });
                    if let Err(e) = crate::engine::apply(&mut t, active, &op, at)? {
                        failures.push(format!("activities[{j}] (`{}`) was refused: {e}", a.kind));
                    }
                }
            }
            t.finish()?;
            t.take_log();
            id
        };
        txn.set_durability(redb::Durability::None)?;
        txn.commit()?;
        if let Some(id) = id {
            check(active, scratch, id, &case.expect, &mut failures)?;
        }
        out.push(CaseResult {
            name: case.name.clone(),
            line: lines.get(i).copied().unwrap_or(0),
            failures,
        });
    }
    Ok(out)
}

fn check(
    active: &ActiveProcess,
    scratch: &Store,
    id: u64,
    expect: &Expect,
    failures: &mut Vec<String>,
) -> Result<(), StoreError> {
    let snap = scratch.snapshot()?;
    let Some(p) = snap.prospect(id)? else {
        return Ok(());
    };
    if let Some(stage) = &expect.stage
        && *stage != p.stage
    {
        failures.push(format!("expected stage `{stage}`, got `{}`", p.stage));
    }
    if let Some(status) = expect.status
        && status != p.status
    {
        failures.push(format!(
            "expected status `{}`, got `{}`",
            status.as_str(),
            p.status.as_str()
        ));
    }
    if expect.met.is_empty() && expect.unmet.is_empty() && expect.checklists.is_empty() {
        return Ok(());
    }
    let Some(stage) = active.process.stage(&p.stage) else {
        return Ok(());
    };
    let now = p.last_activity_at;
    let e = crate::engine::evaluate(&snap, active, &p, stage, now, !expect.checklists.is_empty())?;
    for (want, list) in [(true, &expect.met), (false, &expect.unmet)] {
        for q in list {
            match e.verdicts.iter().find(|v| v.question == *q) {
                None => failures.push(format!("stage `{}` has no criterion \"{q}\"", stage.id)),
                Some(v) if v.met != want => failures.push(format!(
                    "expected \"{q}\" {}, got {} ({})",
                    if want { "met" } else { "unmet" },
                    if v.met { "met" } else { "unmet" },
                    v.reason
                )),
                Some(_) => {}
            }
        }
    }
    if !expect.checklists.is_empty() {
        let lists = crate::criteria::stage_checklists(
            stage,
            &p,
            &e.facts,
            e.as_of,
            active.plugin_context(),
        );
        for (name, want) in &expect.checklists {
            match lists.iter().find(|c| match c {
                Checklist::Items { name: n, .. } | Checklist::Failed { name: n, .. } => n == name,
            }) {
                None => failures.push(format!("stage `{}` shows no checklist `{name}`", stage.id)),
                Some(Checklist::Failed { error, .. }) => {
                    failures.push(format!("checklist `{name}` failed: {error}"))
                }
                Some(Checklist::Items { done, total, .. }) if done != want => failures.push(
                    format!("expected {want} of checklist `{name}` done, got {done} of {total}"),
                ),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// JUnit XML for CI systems: one test suite, one test case per case.
pub fn junit(suite: &str, results: &[CaseResult]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{}\" failures=\"{failed}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">\n",
        results.len(),
        esc(suite),
        results.len()
    );
    for r in results {
        xml.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            esc(suite),
            esc(&r.name)
        ));
        if r.failures.is_empty() {
            xml.push_str("/>\n");
        } else {
            xml.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                esc(&r.failures[0]),
                esc(&r.failures.join("\n"))
            ));
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}
