//! `plugins.list` and `metrics.plugin`: the loaded plugins, and running a
//! metric plugin over the data.

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, ReadError, Reply, read, ready};
use stagecoach_core::store::ProspectFilter;
use stagecoach_plugin_host::{Capability, MetricData};
use stagecoach_types::api::params::MetricsPlugin;
use stagecoach_types::api::results::{PluginMetric, Plugins};
use stagecoach_types::protocol::{ErrorData, NOT_FOUND, RpcError};

pub(super) fn list(ctx: &Arc<Ctx>, _: super::NoParams) -> Reply {
    let active = ctx.active();
    let mut plugins: Vec<_> = active.plugins.plugins.values().map(|p| p.stats()).collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    ready(Ok(json!(Plugins {
        plugins,
        process_version: active.version,
    })))
}

/// Largest number of prospects and transitions handed to a metric plugin.
const MAX_METRIC_ROWS: usize = 100_000;

pub(super) fn metric(ctx: &Arc<Ctx>, p: MetricsPlugin) -> Reply {
    let active = ctx.active();
    let Some(plugin) = active.plugins.get(&p.plugin).cloned() else {
        return ready(Err(RpcError::new(
            NOT_FOUND,
            format!("no plugin named `{}` is loaded", p.plugin),
        )
        .with_data(ErrorData {
            plugin: Some(p.plugin.clone()),
            ..ErrorData::default()
        })));
    };
    if !plugin.provides.contains(&Capability::Metric) {
        return ready(Err(RpcError::params(format!(
            "plugin `{}` does not provide a metric",
            p.plugin
        ))));
    }
    let now = p.at.unwrap_or_else(|| ctx.clock.now());
    let ctx = ctx.clone();
    read(move || {
        let filter = ProspectFilter {
            owner: p.owner,
            limit: MAX_METRIC_ROWS,
            ..Default::default()
        };
        let prospects = ctx.store.prospects(&filter)?;
        let mut transitions = Vec::new();
        for prospect in &prospects {
            if transitions.len() >= MAX_METRIC_ROWS {
                break;
            }
            transitions.extend(ctx.store.transitions(prospect.id)?);
        }
        let config = active
            .process
            .plugins
            .iter()
            .find(|d| d.name == plugin.name)
            .map(|d| d.config.clone())
            .unwrap_or_default();
        let data = MetricData {
            now,
            config,
            prospects: prospects
                .into_iter()
                .map(|p| {
                    let probability = active.process.stage(&p.stage).and_then(|s| s.probability);
                    (p, probability)
                })
                .collect(),
            transitions,
        };
        let (values, stats) = plugin.metric(&data).map_err(|f| {
            ReadError::Rpc(RpcError::new(
                stagecoach_types::protocol::INTERNAL_ERROR,
                f.to_string(),
            ))
        })?;
        Ok(json!(PluginMetric {
            plugin: plugin.name.clone(),
            values,
            micros: stats.micros,
        }))
    })
}
