//! `icp-fit`: an exit criterion scoring the prospect against the ideal
//! customer profile given in its config.
//!
//! Config (every check is optional; only configured checks count):
//! - `min_employees`: the `employees` field is at least this;
//! - `min_budget`: the `budget` field is at least this;
//! - `industries`: the `industry` field is one of these (comma-separated);
//! - `countries`: the `country` field is one of these (comma-separated);
//! - `min_score`: the share of checks that must pass, 0–1 (default 1).

use stagecoach_plugin_sdk::{Capability, Input, Num, Plugin, Verdict, register_plugin};

/// The plugin.
pub struct IcpFit;

impl Plugin for IcpFit {
    const NAME: &'static str = "icp-fit";
    const DESCRIPTION: &'static str =
        "Scores the prospect's fields against the ideal customer profile in its config.";
    const PROVIDES: &'static [Capability] = &[Capability::Criterion];
    const READS_ACTIVITIES: bool = false;

    fn evaluate(input: &Input) -> Result<Verdict, String> {
        let p = &input.prospect;
        let c = &input.config;
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        // Each check is described once, as passed or as failed.
        let mut check = |ok: bool, text: String| {
            if ok {
                passed.push(text)
            } else {
                failed.push(text)
            }
        };
        for (config, field) in [("min_employees", "employees"), ("min_budget", "budget")] {
            if let Some(min) = c.number(config) {
                match p.number(field) {
                    Some(v) => {
                        let ok = v >= min;
                        let sign = if ok { "≥" } else { "<" };
                        check(ok, format!("{field} {} {sign} {}", Num(v), Num(min)))
                    }
                    None => check(false, format!("`{field}` not set")),
                }
            }
        }
        for (config, field) in [("industries", "industry"), ("countries", "country")] {
            let allowed = c.list(config);
            if allowed.is_empty() {
                continue;
            }
            match p.text(field) {
                Some(v) => {
                    if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                        check(true, format!("{field} {v}"))
                    } else {
                        check(false, format!("{field} {v} not in {}", allowed.join(", ")))
                    }
                }
                None => check(false, format!("`{field}` not set")),
            }
        }
        let total = passed.len() + failed.len();
        if total == 0 {
            return Err("icp-fit has no checks configured; set `min_employees`, `min_budget`, `industries` or `countries`".into());
        }
        let min_score = c.number("min_score").unwrap_or(1.0);
        let score = passed.len() as f64 / total as f64;
        let detail = passed
            .iter()
            .chain(&failed)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let reason = format!("ICP score {}/{total} ({detail})", passed.len());
        Ok(if score + 1e-9 >= min_score {
            Verdict::met(reason)
        } else {
            Verdict::unmet(reason)
        })
    }
}

register_plugin!(IcpFit);

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_plugin_sdk::{Config, Prospect};

    fn config() -> Config {
        Config::default()
            .with("min_employees", 50)
            .with("industries", "SaaS, fintech")
            .with("min_score", 0.5)
    }

    #[test]
    fn scores_configured_checks() {
        let fits = Prospect::new("prospect")
            .with_field("employees", 200)
            .with_field("industry", "saas");
        let v = IcpFit::evaluate(&Input::new(fits, 0, config())).unwrap();
        assert!(v.met);
        assert_eq!(
            v.reason,
            "ICP score 2/2 (employees 200 ≥ 50; industry saas)"
        );

        let half = Prospect::new("prospect")
            .with_field("employees", 10)
            .with_field("industry", "fintech");
        assert!(
            IcpFit::evaluate(&Input::new(half.clone(), 0, config()))
                .unwrap()
                .met
        );
        let strict = config().with("min_score", 1.0);
        let strict = Config {
            entries: strict
                .entries
                .into_iter()
                .filter(|(k, v)| k != "min_score" || *v == 1.0.into())
                .collect(),
        };
        assert!(!IcpFit::evaluate(&Input::new(half, 0, strict)).unwrap().met);
    }

    #[test]
    fn missing_fields_fail_and_no_config_is_an_error() {
        let v = IcpFit::evaluate(&Input::new(Prospect::new("p"), 0, config())).unwrap();
        assert!(!v.met);
        assert!(v.reason.contains("`employees` not set"));
        assert!(IcpFit::evaluate(&Input::new(Prospect::new("p"), 0, Config::default())).is_err());
    }
}
