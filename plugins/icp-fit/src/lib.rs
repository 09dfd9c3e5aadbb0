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
        // Each check is described once, as passed or as failed, straight
        // into one of two strings, with `push_str` rather than `format!`:
        // every instruction of a plugin is metered, and the formatting
        // machinery was most of this plugin's work.
        let mut passed = Tally::default();
        let mut failed = Tally::default();
        for (config, field) in [("min_employees", "employees"), ("min_budget", "budget")] {
            let Some(min) = c.number(config) else {
                continue;
            };
            match p.number(field) {
                Some(v) => {
                    let (tally, op) = if v >= min {
                        (&mut passed, " ≥ ")
                    } else {
                        (&mut failed, " < ")
                    };
                    let out = tally.next(&[field, " "]);
                    Num(v).push_to(out);
                    out.push_str(op);
                    Num(min).push_to(out);
                }
                None => {
                    failed.next(&["`", field, "` not set"]);
                }
            }
        }
        for (config, field) in [("industries", "industry"), ("countries", "country")] {
            let mut allowed = c.items(config).peekable();
            if allowed.peek().is_none() {
                continue;
            }
            match p.text(field) {
                Some(v) if allowed.clone().any(|a| a.eq_ignore_ascii_case(v)) => {
                    passed.next(&[field, " ", v]);
                }
                Some(v) => {
                    let out = failed.next(&[field, " ", v, " not in "]);
                    for (i, a) in allowed.enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        out.push_str(a);
                    }
                }
                None => {
                    failed.next(&["`", field, "` not set"]);
                }
            }
        }
        let total = passed.count + failed.count;
        if total == 0 {
            return Err("icp-fit has no checks configured; set `min_employees`, `min_budget`, `industries` or `countries`".into());
        }
        let min_score = c.number("min_score").unwrap_or(1.0);
        let score = f64::from(passed.count) / f64::from(total);
        let mut reason = String::with_capacity(24 + passed.text.len() + failed.text.len());
        reason.push_str("ICP score ");
        Num(passed.count.into()).push_to(&mut reason);
        reason.push('/');
        Num(total.into()).push_to(&mut reason);
        reason.push_str(" (");
        reason.push_str(&passed.text);
        if passed.count > 0 && failed.count > 0 {
            reason.push_str("; ");
        }
        reason.push_str(&failed.text);
        reason.push(')');
        Ok(if score + 1e-9 >= min_score {
            Verdict::met(reason)
        } else {
            Verdict::unmet(reason)
        })
    }
}

/// The checks with one outcome, described as `a; b; c`.
struct Tally {
    count: u32,
    text: String,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            count: 0,
            // Room for a few checks: no growing on the way.
            text: String::with_capacity(96),
        }
    }
}

impl Tally {
    /// Starts the next check's description with `parts`; returns the text
    /// to finish it in.
    fn next(&mut self, parts: &[&str]) -> &mut String {
        if self.count > 0 {
            self.text.push_str("; ");
        }
        self.count += 1;
        for part in parts {
            self.text.push_str(part);
        }
        &mut self.text
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
        let strict = Config::default()
            .with("min_employees", 50)
            .with("industries", "SaaS, fintech");
        assert!(!IcpFit::evaluate(&Input::new(half, 0, strict)).unwrap().met);
    }

    #[test]
    fn missing_fields_fail_and_no_config_is_an_error() {
        let v = IcpFit::evaluate(&Input::new(Prospect::new("p"), 0, config())).unwrap();
        assert!(!v.met);
        assert!(v.reason.contains("`employees` not set"));
        let elsewhere = Prospect::new("p")
            .with_field("employees", 12.5)
            .with_field("industry", "retail");
        let v = IcpFit::evaluate(&Input::new(elsewhere, 0, config())).unwrap();
        assert!(!v.met);
        assert_eq!(
            v.reason,
            "ICP score 0/2 (employees 12.5 < 50; industry retail not in SaaS, fintech)"
        );
        assert!(IcpFit::evaluate(&Input::new(Prospect::new("p"), 0, Config::default())).is_err());
    }
}
