//! Requests built from arguments, with the contract's typed parameters.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

use stagecoach_types::api::{Method, methods, params};
use stagecoach_types::model::FieldValue;

use super::args::{MetricsCmd, PeriodArgs, ProspectCmd, parse_period};

pub(crate) fn key_values(pairs: &[String], what: &str) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("{what} `{pair}` is not `key=value`\nhint: for example `--{what} budget=12000`");
        };
        map.insert(k.trim().to_string(), json!(FieldValue::parse_cli(v.trim())));
    }
    Ok(map)
}

pub(crate) fn prospect_request(cmd: &ProspectCmd) -> Result<(&'static str, Value)> {
    Ok(match cmd {
        ProspectCmd::Create {
            name,
            company,
            owner,
            fields,
            stage,
            external_id,
            at,
        } => typed::<methods::ProspectCreate>(params::NewProspect {
            name: name.clone(),
            company: company.clone(),
            owner: owner.clone(),
            fields: serde_json::from_value(Value::Object(key_values(fields, "field")?))?,
            stage: stage.clone(),
            external_id: external_id.clone(),
            at: at.at,
        }),
        ProspectCmd::Get { id } => {
            typed::<methods::ProspectGet>(params::ById { id: *id, at: None })
        }
        ProspectCmd::Evaluate { id } => {
            typed::<methods::ProspectEvaluate>(params::ById { id: *id, at: None })
        }
        ProspectCmd::List {
            stage,
            owner,
            status,
            limit,
            after,
        } => typed::<methods::ProspectList>(params::ProspectList {
            stage: stage.clone(),
            owner: owner.clone(),
            status: status
                .as_deref()
                .map(|s| choice("--status", s))
                .transpose()?,
            limit: Some(*limit),
            after: *after,
        }),
        ProspectCmd::Update {
            id,
            name,
            company,
            owner,
            fields,
            unset,
            at,
        } => {
            let mut f = key_values(fields, "field")?;
            for k in unset {
                f.insert(k.clone(), Value::Null);
            }
            typed::<methods::ProspectUpdate>(params::ProspectUpdate {
                id: *id,
                name: name.clone(),
                company: company.clone(),
                owner: owner.clone(),
                fields: f,
                at: at.at,
            })
        }
        ProspectCmd::Advance { id, at } => {
            typed::<methods::ProspectAdvance>(params::ById { id: *id, at: at.at })
        }
        ProspectCmd::Move {
            id,
            stage,
            reason,
            at,
        } => typed::<methods::ProspectMove>(params::ProspectMove {
            id: *id,
            to: stage.clone(),
            reason: reason.clone(),
            by: std::env::var("USER").ok(),
            at: at.at,
        }),
        ProspectCmd::Close {
            id,
            outcome,
            reason,
            at,
        } => typed::<methods::ProspectClose>(params::ProspectClose {
            id: *id,
            outcome: choice("outcome", outcome)?,
            reason: reason.clone(),
            at: at.at,
        }),
    })
}

/// One of an enum's wire values (`won`, `rep`, …), or an error listing
/// what the argument accepts.
pub(crate) fn choice<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_value(Value::String(value.to_string()))
        .map_err(|e| anyhow::anyhow!("{what} `{value}`: {e}"))
}

/// A request for method `M`, built from its typed parameters: the name and
/// the parameters come from the contract the daemon serves.
pub(crate) fn typed<M: Method>(params: M::Params) -> (&'static str, Value) {
    (
        M::NAME,
        serde_json::to_value(params).expect("parameters serialize"),
    )
}

pub(crate) fn metrics_request(cmd: &MetricsCmd) -> Result<(&'static str, Value)> {
    Ok(match cmd {
        MetricsCmd::Flow(p) => typed::<methods::MetricsFlow>(p.period()?),
        MetricsCmd::TimeInStage(p) => typed::<methods::MetricsTimeInStage>(p.period()?),
        MetricsCmd::Conversion(p) => {
            p.refuse_stage("conversion is per stage already")?;
            let period = p.period()?;
            typed::<methods::MetricsConversion>(params::ConversionPeriod {
                from: period.from,
                to: period.to,
                owner: period.owner,
                version: period.version,
            })
        }
        MetricsCmd::Outcomes(p) => {
            p.refuse_stage("outcomes are of closed deals, whatever stage they closed from")?;
            if p.version.is_some() {
                anyhow::bail!(
                    "`--version` does not apply to `metrics outcomes`: give the period the version was in force (`stagecoach process versions` lists the windows)"
                );
            }
            let period = p.period()?;
            typed::<methods::MetricsOutcomes>(params::OutcomesPeriod {
                from: period.from,
                to: period.to,
                owner: period.owner,
                amount_field: None,
            })
        }
        MetricsCmd::Stalled {
            owner,
            stage,
            sort,
            limit,
            ..
        } => typed::<methods::MetricsStalled>(params::MetricsStalled {
            owner: owner.clone(),
            stage: stage.clone(),
            sort: Some(match sort {
                super::args::StalledOrder::Idle => params::StalledSort::Idle,
                super::args::StalledOrder::Value => params::StalledSort::Value,
            }),
            limit: (*limit > 0).then_some(*limit),
        }),
        MetricsCmd::Owners(p) => typed::<methods::MetricsOwners>(
            p.period_only("owners", "it has a row for every owner, over every version")?,
        ),
        MetricsCmd::Criteria(p) => typed::<methods::MetricsCriteria>(p.period_only(
            "criteria",
            "the process in force's criteria over the deals closed in it",
        )?),
        MetricsCmd::Conformance(p) => typed::<methods::MetricsConformance>(
            p.period_only("conformance", "it has a row per stage and per owner")?,
        ),
        MetricsCmd::Trends {
            months, to, owner, ..
        } => typed::<methods::MetricsTrends>(params::MetricsTrends {
            months: *months,
            to: *to,
            owner: owner.clone(),
        }),
        MetricsCmd::Compare {
            a,
            b,
            a_version,
            b_version,
            owner,
        } => {
            let side = |text: &str, version: Option<u64>| -> Result<params::Period> {
                let (from, to) = parse_period(text).map_err(anyhow::Error::msg)?;
                Ok(params::Period {
                    from,
                    to,
                    stage: None,
                    owner: owner.clone(),
                    version,
                })
            };
            typed::<methods::MetricsCompare>(params::MetricsCompare {
                a: side(a, *a_version)?,
                b: side(b, *b_version)?,
            })
        }
    })
}

impl PeriodArgs {
    /// `--stage` is an error, not ignored, where a figure is not per stage.
    pub(crate) fn refuse_stage(&self, why: &str) -> Result<()> {
        match &self.stage {
            Some(_) => anyhow::bail!("`--stage` does not apply here: {why}"),
            None => Ok(()),
        }
    }

    /// The period of a command that takes nothing else (`metrics owners`,
    /// `criteria`, `conformance`): `--stage`, `--owner` and `--version` are
    /// refused, saying why.
    pub(crate) fn period_only(&self, command: &str, why: &str) -> Result<params::PeriodOnly> {
        if self.stage.is_some() || self.owner.is_some() || self.version.is_some() {
            bail!("`metrics {command}` takes a period only: {why}");
        }
        let (from, to) = self.range()?;
        Ok(params::PeriodOnly { from, to })
    }

    pub(crate) fn period(&self) -> Result<params::Period> {
        let (from, to) = self.range()?;
        Ok(params::Period {
            from,
            to,
            stage: self.stage.clone(),
            owner: self.owner.clone(),
            version: self.version,
        })
    }
}
