//! `forecast`: a metric plugin. For open prospects, the weighted pipeline
//! (amount × the stage's win probability) and the open amount, per owner
//! and in total; for prospects won in the metric's input, the won amount.
//!
//! Config: `amount_field` (default `amount`).

use std::collections::BTreeMap;

use stagecoach_plugin_sdk::{Capability, MetricInput, MetricValue, Plugin, register_plugin};

/// The plugin.
pub struct Forecast;

impl Plugin for Forecast {
    const NAME: &'static str = "forecast";
    const DESCRIPTION: &'static str =
        "Weighted pipeline (amount × stage probability) and open amount, per owner and in total.";
    const PROVIDES: &'static [Capability] = &[Capability::Metric];

    fn metric(input: &MetricInput) -> Result<Vec<MetricValue>, String> {
        let field = input.config.text("amount_field").unwrap_or("amount");
        // owner → (weighted, open, won)
        let mut by_owner: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
        for p in input.prospects() {
            let amount = p.number(field).unwrap_or(0.0);
            let slot = by_owner.entry(p.owner.unwrap_or("(none)")).or_default();
            match p.status {
                "open" => {
                    slot.0 += amount * p.stage_probability.unwrap_or(0.0);
                    slot.1 += amount;
                }
                "won" => slot.2 += amount,
                _ => {}
            }
        }
        let mut out = Vec::new();
        let mut total = (0.0, 0.0, 0.0);
        for (owner, (weighted, open, won)) in &by_owner {
            let label = format!("owner={owner}");
            out.push(MetricValue::new(
                "weighted_pipeline",
                label.clone(),
                *weighted,
            ));
            out.push(MetricValue::new("open_amount", label.clone(), *open));
            out.push(MetricValue::new("won_amount", label, *won));
            total.0 += weighted;
            total.1 += open;
            total.2 += won;
        }
        out.push(MetricValue::new("weighted_pipeline", "", total.0));
        out.push(MetricValue::new("open_amount", "", total.1));
        out.push(MetricValue::new("won_amount", "", total.2));
        Ok(out)
    }
}

register_plugin!(Forecast);

#[cfg(test)]
mod tests {
    use super::*;
    use stagecoach_plugin_sdk::Config;

    #[test]
    fn weights_open_amounts_by_stage_probability() {
        let input = [
            ("maria", "open", 0.5, 10000),
            ("maria", "open", 0.1, 5000),
            ("tom", "won", 1.0, 7000),
            ("tom", "lost", 0.5, 9000),
        ]
        .into_iter()
        .fold(
            MetricInput::new(0, Config::default()),
            |input, (owner, status, probability, amount)| {
                input.with_prospect(
                    Some(owner),
                    "present",
                    status,
                    Some(probability),
                    &[("amount", amount.into())],
                )
            },
        );
        let out = Forecast::metric(&input).unwrap();
        let get = |name: &str, label: &str| {
            out.iter()
                .find(|v| v.name == name && v.label == label)
                .unwrap()
                .value
        };
        assert_eq!(get("weighted_pipeline", "owner=maria"), 5500.0);
        assert_eq!(get("open_amount", "owner=maria"), 15000.0);
        assert_eq!(get("won_amount", "owner=tom"), 7000.0);
        assert_eq!(get("weighted_pipeline", ""), 5500.0);
    }
}
