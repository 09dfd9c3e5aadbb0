//! `process.toml`: the sales process as sales ops write it, parsed and
//! validated into a [`Process`].
//!
//! Parsing goes through raw serde structs that keep source spans, then a
//! validation pass that turns them into typed stages and exit criteria. Every
//! error names the file, line, column and key, with a hint where one helps.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use serde::Deserialize;
use serde_spanned::Spanned;

use stagecoach_types::model::{Actor, FieldValue};

pub use stagecoach_types::process::{
    ActivityKind, AdvanceMode, Check, CriterionMode, ExitCriterion, Money, Op, PluginDecl, Process,
    Stage,
};

const OPS: &str = "`=`, `!=`, `<`, `<=`, `>`, `>=`, `present`";

/// The operator written as `text`, if it is one.
fn parse_op(text: &str) -> Option<Op> {
    Some(match text {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "present" => Op::Present,
        _ => return None,
    })
}

/// Parses and validates `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Process, InvalidProcess> {
    let locate = Locator::new(text, file);
    let deserializer = toml::Deserializer::parse(text).map_err(|e| locate.toml(&e, ""))?;
    let raw: RawFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // Spanned<T> shows up in the path as a private field; hide it.
        let path = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let path = if path == "." { String::new() } else { path };
        locate.toml(e.inner(), &path)
    })?;
    validate(raw, &locate)
}

pub use stagecoach_types::error::{InvalidProcess, ProcessError};

/// Turns byte offsets into lines and columns.
struct Locator<'a> {
    text: &'a str,
    file: &'a str,
    /// Where each line starts, found once: a position is a binary search
    /// and a walk along one line, so locating every stage of a 10,000-stage
    /// file is linear, not quadratic.
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str, file: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Locator {
            text,
            file,
            line_starts,
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.text.floor_char_boundary(offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ProcessError {
        let (line, column) = self.line_col(span.start);
        ProcessError {
            file: self.file.to_string(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    fn toml(&self, e: &toml::de::Error, key: &str) -> InvalidProcess {
        let (line, column) = e.span().map_or((1, 1), |s| self.line_col(s.start));
        let message = e.message().trim().to_string();
        let hint = if message.starts_with("unknown field") {
            Some("check the spelling; the README's `process.toml` reference lists every key".into())
        } else if message.starts_with("missing field") {
            Some("add the key; see the default `process.toml` for an example".into())
        } else {
            None
        };
        InvalidProcess {
            errors: vec![ProcessError {
                file: self.file.to_string(),
                line,
                column,
                key: key.to_string(),
                message,
                hint,
            }],
        }
    }
}

trait WithHint {
    fn hint(self, hint: impl Into<String>) -> Self;
}

impl WithHint for ProcessError {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    process: RawMeta,
    #[serde(default)]
    activities: BTreeMap<String, ActivityKind>,
    #[serde(default)]
    stages: Vec<Spanned<RawStage>>,
    #[serde(default)]
    migrate: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    plugins: Vec<Spanned<RawPlugin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    path: String,
    #[serde(default)]
    fuel: Option<u64>,
    #[serde(default)]
    memory_mib: Option<Spanned<u32>>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_input_kib: Option<u32>,
    #[serde(default)]
    max_output_kib: Option<u32>,
    #[serde(default)]
    max_items: Option<u32>,
    #[serde(default)]
    max_text_bytes: Option<u32>,
    #[serde(default)]
    max_log_kib: Option<u32>,
    #[serde(default)]
    max_log_lines_per_second: Option<u32>,
    #[serde(default)]
    max_file_mib: Option<u32>,
    #[serde(default)]
    config: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    review_every_days: Option<u32>,
    #[serde(default)]
    amount_field: Option<Spanned<String>>,
    #[serde(default)]
    currency: Option<Spanned<String>>,
    #[serde(default)]
    strict_activities: Option<bool>,
    #[serde(default)]
    require_lost_reason: Option<bool>,
    #[serde(default)]
    lost_reasons: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stall_after_days: Option<u32>,
    #[serde(default)]
    advance: AdvanceMode,
    #[serde(default)]
    mode: Option<CriterionMode>,
    #[serde(default)]
    probability: Option<Spanned<f64>>,
    #[serde(default)]
    renamed_from: Vec<Spanned<String>>,
    #[serde(default)]
    exit: Vec<Spanned<RawCriterion>>,
    #[serde(default)]
    checklists: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    question: String,
    #[serde(default)]
    activity: Option<String>,
    #[serde(default)]
    actor: Option<Actor>,
    #[serde(default)]
    at_least: Option<Spanned<u32>>,
    #[serde(default)]
    since_entering: Option<bool>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    op: Option<Spanned<String>>,
    #[serde(default)]
    value: Option<Spanned<toml::Value>>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    checklist: Option<String>,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    mode: Option<CriterionMode>,
}

const OUTCOMES: [&str; 2] = ["won", "lost"];

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn validate(raw: RawFile, at: &Locator<'_>) -> Result<Process, InvalidProcess> {
    let mut errors = Vec::new();
    if raw.stages.is_empty() {
        errors.push(
            at.error(0..0, "stages", "the process has no stages")
                .hint("add at least one `[[stages]]` table"),
        );
    }

    let mut money = Money::default();
    if let Some(f) = &raw.process.amount_field {
        if f.get_ref().trim().is_empty() {
            errors.push(
                at.error(f.span(), "process.amount_field", "`amount_field` is empty")
                    .hint("name the prospect field holding a deal's amount, like `amount`"),
            );
        }
        money.amount_field = f.get_ref().clone();
    }
    if let Some(c) = &raw.process.currency {
        let code = c.get_ref();
        if code.len() != 3 || !code.chars().all(|x| x.is_ascii_uppercase()) {
            errors.push(
                at.error(
                    c.span(),
                    "process.currency",
                    format!("`{code}` is not a currency code"),
                )
                .hint("use the ISO 4217 code, like `EUR`, `USD` or `GBP`"),
            );
        }
        money.currency = Some(code.clone());
    }
    let mut lost_reasons: Vec<String> = Vec::new();
    for (i, r) in raw.process.lost_reasons.iter().enumerate() {
        let reason = r.get_ref().trim();
        if reason.is_empty() {
            errors.push(at.error(
                r.span(),
                format!("process.lost_reasons[{i}]"),
                "a lost reason is empty",
            ));
        } else if lost_reasons.iter().any(|x| x.eq_ignore_ascii_case(reason)) {
            errors.push(at.error(
                r.span(),
                format!("process.lost_reasons[{i}]"),
                format!("lost reason `{reason}` is listed twice"),
            ));
        } else {
            lost_reasons.push(reason.to_string());
        }
    }
    let activity_kinds: Vec<&str> = raw.activities.keys().map(String::as_str).collect();

    // Plugins first: criteria and checklists refer to them by name.
    let mut plugin_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut plugins = Vec::new();
    for (i, spanned) in raw.plugins.into_iter().enumerate() {
        let position = at.line_col(spanned.span().start);
        let rp = spanned.into_inner();
        let name = rp.name.get_ref().clone();
        if !valid_id(&name) {
            errors.push(
                at.error(
                    rp.name.span(),
                    format!("plugins[{i}].name"),
                    format!("invalid plugin name `{name}`"),
                )
                .hint("use lowercase letters, digits, `-` and `_`, like `icp-fit`"),
            );
            continue;
        }
        if plugin_index.insert(name.clone(), i).is_some() {
            errors.push(at.error(
                rp.name.span(),
                format!("plugins[{i}].name"),
                format!("duplicate plugin name `{name}`"),
            ));
            continue;
        }
        let defaults = stagecoach_types::api::results::Limits::default();
        if let Some(m) = &rp.memory_mib
            && (*m.get_ref() == 0 || *m.get_ref() > stagecoach_types::api::results::MAX_MEMORY_MIB)
        {
            errors.push(at.error(
                m.span(),
                format!("plugins[{i}].memory_mib"),
                format!(
                    "`memory_mib` must be between 1 and {}",
                    stagecoach_types::api::results::MAX_MEMORY_MIB
                ),
            ));
        }
        let set = stagecoach_types::process::SetLimits {
            fuel: rp.fuel.is_some(),
            memory_mib: rp.memory_mib.is_some(),
            timeout_ms: rp.timeout_ms.is_some(),
        };
        plugins.push(PluginDecl {
            name,
            path: rp.path,
            limits_set: set,
            limits: stagecoach_types::api::results::Limits {
                fuel: rp.fuel.unwrap_or(defaults.fuel),
                memory_mib: rp
                    .memory_mib
                    .map_or(defaults.memory_mib, Spanned::into_inner),
                timeout_ms: rp.timeout_ms.unwrap_or(defaults.timeout_ms),
                max_input_kib: rp.max_input_kib.unwrap_or(defaults.max_input_kib),
                max_output_kib: rp.max_output_kib.unwrap_or(defaults.max_output_kib),
                max_items: rp.max_items.unwrap_or(defaults.max_items),
                max_text_bytes: rp.max_text_bytes.unwrap_or(defaults.max_text_bytes),
                max_log_kib: rp.max_log_kib.unwrap_or(defaults.max_log_kib),
                max_log_lines_per_second: rp
                    .max_log_lines_per_second
                    .unwrap_or(defaults.max_log_lines_per_second),
                max_file_mib: rp.max_file_mib.unwrap_or(defaults.max_file_mib),
            },
            config: rp.config.map(flatten_config).unwrap_or_default(),
            at: position,
        });
    }

    let mut seen: HashSet<String> = HashSet::new();
    for (i, stage) in raw.stages.iter().enumerate() {
        let id = stage.get_ref().id.get_ref();
        let key = format!("stages[{i}].id");
        if !valid_id(id) {
            errors.push(
                at.error(
                    stage.get_ref().id.span(),
                    &key,
                    format!("invalid stage id `{id}`"),
                )
                .hint("use lowercase letters, digits, `-` and `_`, like `awaiting-demo`"),
            );
        } else if OUTCOMES.contains(&id.as_str()) {
            errors.push(
                at.error(
                    stage.get_ref().id.span(),
                    &key,
                    format!("`{id}` is an outcome, not a stage"),
                )
                .hint("prospects reach `won` and `lost` with `prospect.close`; remove this stage"),
            );
        } else if !seen.insert(id.clone()) {
            errors.push(at.error(
                stage.get_ref().id.span(),
                &key,
                format!("duplicate stage id `{id}`"),
            ));
        }
    }

    let mut stages = Vec::with_capacity(raw.stages.len());
    let mut renamed: HashSet<String> = HashSet::new();
    for (old, target) in &raw.migrate {
        let key = format!("migrate.{old}");
        if seen.contains(old) {
            errors.push(
                at.error(
                    target.span(),
                    &key,
                    format!("`{old}` is still a stage id in this file"),
                )
                .hint("only a removed stage can be migrated"),
            );
        } else if !seen.contains(target.get_ref()) {
            errors.push(at.error(
                target.span(),
                &key,
                format!(
                    "`{}` is not a stage in this file{}",
                    target.get_ref(),
                    stagecoach_types::suggest::hint_suffix(
                        target.get_ref(),
                        seen.iter().map(String::as_str)
                    )
                ),
            ));
        } else if !renamed.insert(old.clone()) {
            errors.push(at.error(
                target.span(),
                &key,
                format!("`{old}` is mapped more than once"),
            ));
        }
    }
    for (i, spanned) in raw.stages.into_iter().enumerate() {
        let line = at.line_col(spanned.span().start).0;
        let raw_stage = spanned.into_inner();
        for (j, old) in raw_stage.renamed_from.iter().enumerate() {
            let key = format!("stages[{i}].renamed_from[{j}]");
            if seen.contains(old.get_ref()) {
                errors.push(
                    at.error(
                        old.span(),
                        &key,
                        format!("`{}` is still a stage id in this file", old.get_ref()),
                    )
                    .hint("a stage can only be renamed from an id that no longer exists"),
                );
            } else if !renamed.insert(old.get_ref().clone()) {
                errors.push(at.error(
                    old.span(),
                    &key,
                    format!("`{}` is mapped by more than one stage", old.get_ref()),
                ));
            }
        }
        if let Some(p) = &raw_stage.probability
            && !(0.0..=1.0).contains(p.get_ref())
        {
            errors.push(
                at.error(
                    p.span(),
                    format!("stages[{i}].probability"),
                    "probability must be between 0 and 1",
                )
                .hint("write 25% as `0.25`"),
            );
        }
        for (j, name) in raw_stage.checklists.iter().enumerate() {
            if !plugin_index.contains_key(name.get_ref()) {
                let guess = stagecoach_types::suggest::hint_suffix(
                    name.get_ref(),
                    plugin_index.keys().map(String::as_str),
                );
                errors.push(
                    at.error(name.span(), format!("stages[{i}].checklists[{j}]"), format!("no plugin named `{}`{guess}", name.get_ref()))
                        .hint("declare the checklist plugin in a `[[plugins]]` table with `name` and `path`"),
                );
            }
        }
        let mut exit = Vec::with_capacity(raw_stage.exit.len());
        for (j, criterion) in raw_stage.exit.into_iter().enumerate() {
            match validate_criterion(
                criterion,
                &format!("stages[{i}].exit[{j}]"),
                at,
                &plugin_index,
                &activity_kinds,
                raw_stage.mode,
            ) {
                Ok(c) => exit.push(c),
                Err(e) => errors.push(e),
            }
        }
        stages.push(Stage {
            id: raw_stage.id.into_inner(),
            name: raw_stage.name,
            description: raw_stage.description,
            stall_after_days: raw_stage.stall_after_days,
            advance: raw_stage.advance,
            probability: raw_stage.probability.map(Spanned::into_inner),
            renamed_from: raw_stage
                .renamed_from
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            exit,
            checklists: raw_stage
                .checklists
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            line,
        });
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(InvalidProcess { errors });
    }
    Ok(Process {
        name: raw.process.name,
        description: raw.process.description,
        review_every_days: raw.process.review_every_days,
        activities: raw.activities,
        money,
        strict_activities: raw.process.strict_activities.unwrap_or(true),
        require_lost_reason: raw.process.require_lost_reason.unwrap_or(false),
        lost_reasons,
        stages,
        plugins,
        migrate: raw
            .migrate
            .into_iter()
            .map(|(k, v)| (k, v.into_inner()))
            .collect(),
    })
}

fn validate_criterion(
    spanned: Spanned<RawCriterion>,
    key: &str,
    at: &Locator<'_>,
    plugins: &BTreeMap<String, usize>,
    activity_kinds: &[&str],
    stage_mode: Option<CriterionMode>,
) -> Result<ExitCriterion, ProcessError> {
    let span = spanned.span();
    let position = at.line_col(span.start);
    let c = spanned.into_inner();
    let mode = c.mode;
    if c.question.trim().is_empty() {
        return Err(at
            .error(span, format!("{key}.question"), "the question is empty")
            .hint("write the yes/no question this criterion answers, like \"Did the prospect reply?\""));
    }
    let kinds = [
        c.activity.is_some(),
        c.field.is_some(),
        c.answer.is_some(),
        c.plugin.is_some(),
        c.checklist.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(at
            .error(span, key, "an exit criterion needs exactly one of `activity`, `field`, `answer`, `plugin` or `checklist`")
            .hint("`activity = \"replied\"`, `field = \"budget\", op = \">=\", value = 10000`, `answer = \"nda_signed\"`, `plugin = \"icp-fit\"` or `checklist = \"meddpicc\", at_least = 6`"));
    }
    let not_for = |name: &str, present: bool, what: &str| -> Result<(), ProcessError> {
        if present {
            Err(at.error(
                span.clone(),
                format!("{key}.{name}"),
                format!("`{name}` applies only to {what} criteria"),
            ))
        } else {
            Ok(())
        }
    };
    let declared = |name: &str, what: &str| -> Result<(), ProcessError> {
        if plugins.contains_key(name) {
            return Ok(());
        }
        let known: Vec<String> = plugins.keys().map(|k| format!("`{k}`")).collect();
        let guess =
            stagecoach_types::suggest::hint_suffix(name, plugins.keys().map(String::as_str));
        Err(at
            .error(
                span.clone(),
                format!("{key}.{what}"),
                format!("no plugin named `{name}`{guess}"),
            )
            .hint(if known.is_empty() {
                "declare it in a `[[plugins]]` table with `name` and `path`".to_string()
            } else {
                format!("declared plugins: {}", known.join(", "))
            }))
    };
    if c.config.is_some() && c.plugin.is_none() {
        not_for("config", true, "plugin")?;
    }
    let check = if let Some(plugin) = c.plugin {
        for (name, present) in [
            ("actor", c.actor.is_some()),
            ("at_least", c.at_least.is_some()),
            ("since_entering", c.since_entering.is_some()),
            ("op", c.op.is_some()),
            ("value", c.value.is_some()),
        ] {
            if present {
                not_for(
                    name,
                    true,
                    if name == "op" || name == "value" {
                        "field"
                    } else {
                        "activity"
                    },
                )?;
            }
        }
        declared(&plugin, "plugin")?;
        Check::Plugin {
            plugin,
            config: c.config.map(flatten_config).unwrap_or_default(),
        }
    } else if let Some(checklist) = c.checklist {
        not_for("op", c.op.is_some(), "field")?;
        not_for("value", c.value.is_some(), "field")?;
        not_for("actor", c.actor.is_some(), "activity")?;
        not_for("since_entering", c.since_entering.is_some(), "activity")?;
        declared(&checklist, "checklist")?;
        let at_least = match c.at_least {
            Some(n) if *n.get_ref() == 0 => {
                return Err(at.error(
                    n.span(),
                    format!("{key}.at_least"),
                    "`at_least` must be 1 or more",
                ));
            }
            other => other.map(Spanned::into_inner),
        };
        Check::Checklist {
            checklist,
            at_least,
        }
    } else if let Some(kind) = c.activity {
        not_for("op", c.op.is_some(), "field")?;
        not_for("value", c.value.is_some(), "field")?;
        // A misspelt kind would be a criterion no prospect can ever meet.
        if !activity_kinds.is_empty() && !activity_kinds.contains(&kind.as_str()) {
            let guess =
                stagecoach_types::suggest::hint_suffix(&kind, activity_kinds.iter().copied());
            return Err(at
                .error(
                    span,
                    format!("{key}.activity"),
                    format!("activity kind `{kind}` is not declared in `[activities]`{guess}"),
                )
                .hint(format!(
                    "fix the spelling, or declare it: `{kind} = {{ actor = \"prospect\", description = \"…\" }}`"
                )));
        }
        let at_least = match c.at_least {
            Some(n) if *n.get_ref() == 0 => {
                return Err(at
                    .error(
                        n.span(),
                        format!("{key}.at_least"),
                        "`at_least` must be 1 or more",
                    )
                    .hint("remove the criterion if the activity is not required"));
            }
            Some(n) => n.into_inner(),
            None => 1,
        };
        Check::Activity {
            kind,
            actor: c.actor,
            at_least,
            since_entering: c.since_entering.unwrap_or(false),
        }
    } else {
        let what = "activity";
        not_for("actor", c.actor.is_some(), what)?;
        not_for("at_least", c.at_least.is_some(), what)?;
        not_for("since_entering", c.since_entering.is_some(), what)?;
        if let Some(field) = c.answer {
            not_for("op", c.op.is_some(), "field")?;
            not_for("value", c.value.is_some(), "field")?;
            Check::Answer { field }
        } else {
            let field = c.field.expect("one kind is set");
            let Some(op_text) = c.op else {
                return Err(at
                    .error(span, format!("{key}.op"), "a field criterion needs `op`")
                    .hint(format!("one of {OPS}")));
            };
            let op = parse_op(op_text.get_ref()).ok_or_else(|| {
                let text = op_text.get_ref();
                let mut e = at.error(
                    op_text.span(),
                    format!("{key}.op"),
                    format!("unknown operator `{text}`, expected one of {OPS}"),
                );
                let guess = match text.as_str() {
                    "=>" => Some(">="),
                    "=<" => Some("<="),
                    "==" => Some("="),
                    "<>" => Some("!="),
                    _ => None,
                };
                if let Some(g) = guess {
                    e = e.hint(format!("did you mean `{g}`?"));
                }
                e
            })?;
            let value = match (op, c.value) {
                (Op::Present, None) => None,
                (Op::Present, Some(v)) => {
                    return Err(at
                        .error(v.span(), format!("{key}.value"), "`present` takes no value")
                        .hint("remove `value`, or use `=` to compare"));
                }
                (_, None) => {
                    return Err(at.error(
                        span,
                        format!("{key}.value"),
                        format!("operator `{}` needs a `value`", op.as_str()),
                    ));
                }
                (_, Some(v)) => {
                    let vspan = v.span();
                    let value = match v.into_inner() {
                        toml::Value::String(s) => FieldValue::Text(s),
                        toml::Value::Integer(n) => FieldValue::Number(n as f64),
                        toml::Value::Float(n) => FieldValue::Number(n),
                        toml::Value::Boolean(b) => FieldValue::Bool(b),
                        other => {
                            return Err(at.error(
                                vspan,
                                format!("{key}.value"),
                                format!(
                                    "a {} cannot be compared; use a string, number or boolean",
                                    other.type_str()
                                ),
                            ));
                        }
                    };
                    if op.is_ordering() && value.as_number().is_none() {
                        return Err(at
                            .error(
                                vspan,
                                format!("{key}.value"),
                                format!(
                                    "operator `{}` compares numbers, but the value is not a number",
                                    op.as_str()
                                ),
                            )
                            .hint("quantifiable criteria compare numbers, like `value = 10000`"));
                    }
                    Some(value)
                }
            };
            Check::Field { field, op, value }
        }
    };
    Ok(ExitCriterion {
        question: c.question,
        check,
        mode: mode.or(stage_mode).unwrap_or_default(),
        at: position,
    })
}

/// Flattens a config table into named scalars: nested tables become dotted
/// names (`weights.employees`), arrays of scalars comma-separated text.
fn flatten_config(table: toml::Table) -> Vec<(String, FieldValue)> {
    fn scalar(v: &toml::Value) -> Option<FieldValue> {
        Some(match v {
            toml::Value::String(s) => FieldValue::Text(s.clone()),
            toml::Value::Integer(n) => FieldValue::Number(*n as f64),
            toml::Value::Float(n) => FieldValue::Number(*n),
            toml::Value::Boolean(b) => FieldValue::Bool(*b),
            toml::Value::Datetime(d) => FieldValue::Text(d.to_string()),
            _ => return None,
        })
    }
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, FieldValue)>) {
        for (k, v) in table {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&name, t, out),
                toml::Value::Array(items) => {
                    let parts: Vec<String> = items
                        .iter()
                        .filter_map(scalar)
                        .map(|v| v.to_string())
                        .collect();
                    out.push((name, FieldValue::Text(parts.join(","))));
                }
                other => {
                    if let Some(v) = scalar(other) {
                        out.push((name, v));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk("", &table, &mut out);
    out
}

/// The content hash used for process versions: BLAKE3, hex.
pub fn content_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[process]
name = "test"

[[stages]]
id = "prospect"
name = "Prospect"
exit = [{ question = "Replied?", activity = "replied", actor = "prospect" }]

[[stages]]
id = "connect"
name = "Connect"
exit = [
  { question = "Budget?", field = "budget", op = ">=", value = 10000 },
  { question = "NDA?", answer = "nda_signed" },
]
"#;

    #[test]
    fn parses_a_good_process() {
        let p = parse(GOOD, "process.toml").unwrap();
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[1].exit.len(), 2);
        assert!(matches!(
            p.stages[1].exit[0].check,
            Check::Field { op: Op::Ge, .. }
        ));
    }

    #[test]
    fn unknown_operator_names_line_column_key_and_hint() {
        let bad = GOOD.replace("op = \">=\"", "op = \"=>\"");
        let err = parse(&bad, "process.toml").unwrap_err();
        let e = &err.errors[0];
        assert_eq!(e.key, "stages[1].exit[0].op");
        let line = bad.lines().nth(13).unwrap();
        assert_eq!(e.line, 14);
        assert_eq!(e.column, line.find("\"=>\"").unwrap() + 1);
        assert!(e.message.contains("unknown operator `=>`"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `>=`?"));
        assert!(err.to_string().starts_with(&format!(
            "process.toml:14:{}: stages[1].exit[0].op:",
            e.column
        )));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let bad = GOOD.replace("name = \"Connect\"", "name = \"Connect");
        let err = parse(&bad, "p.toml").unwrap_err();
        assert_eq!(err.errors[0].line, 12, "{err}");
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let bad = GOOD.replace("actor = \"prospect\"", "actr = \"prospect\"");
        let err = parse(&bad, "p.toml").unwrap_err();
        let e = &err.errors[0];
        assert_eq!(e.key, "stages[0].exit[0].actr");
        assert_eq!(e.line, 8);
        assert!(e.message.contains("unknown field `actr`"), "{}", e.message);
    }

    #[test]
    fn duplicate_ids_and_outcomes_are_refused() {
        let bad = GOOD.replace("id = \"connect\"", "id = \"prospect\"");
        let err = parse(&bad, "p.toml").unwrap_err();
        assert!(
            err.errors[0]
                .message
                .contains("duplicate stage id `prospect`")
        );
        let bad = GOOD.replace("id = \"connect\"", "id = \"won\"");
        let err = parse(&bad, "p.toml").unwrap_err();
        assert!(err.errors[0].message.contains("outcome"));
    }

    #[test]
    fn criteria_need_exactly_one_kind() {
        let bad = GOOD.replace(
            "answer = \"nda_signed\"",
            "answer = \"nda\", activity = \"x\"",
        );
        let err = parse(&bad, "p.toml").unwrap_err();
        assert!(err.errors[0].message.contains("exactly one of"));
        let bad = GOOD.replace("value = 10000", "value = \"lots\"");
        let err = parse(&bad, "p.toml").unwrap_err();
        assert!(err.errors[0].message.contains("compares numbers"));
    }

    #[test]
    fn the_default_process_is_valid() {
        let text = include_str!("../../../process.toml");
        let p = parse(text, "process.toml").unwrap();
        let ids: Vec<_> = p.stages.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["prospect", "connect", "research", "present", "close"]);
        assert!(p.stages.iter().all(|s| !s.exit.is_empty()));
    }
}

#[cfg(test)]
mod wire_tests {
    /// `process.get` sends the parsed process; a client reads it back whole
    /// (positions in the file are not part of it).
    #[test]
    fn the_parsed_process_reads_back_as_itself_over_the_wire() {
        let text = include_str!("../../../process.toml");
        let mut p = super::parse(text, "process.toml").unwrap();
        let json = serde_json::to_value(&p).unwrap();
        let back: super::Process = serde_json::from_value(json.clone()).unwrap_or_else(|e| {
            panic!("{e}\n{json:#}");
        });
        for s in &mut p.stages {
            s.line = 0;
            for c in &mut s.exit {
                c.at = (0, 0);
            }
        }
        for d in &mut p.plugins {
            d.at = (0, 0);
        }
        assert_eq!(back, p);
    }
}
