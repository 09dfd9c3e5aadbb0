//! `stagecoach status --format openmetrics`: the daemon's counters in the
//! OpenMetrics text format (what node_exporter's textfile collector and
//! Prometheus-compatible scrapers read), built from `daemon.status` and
//! `plugins.list` — the same figures the protocol answers.

use std::fmt::Write as _;

use stagecoach_types::api::results::{DaemonStatus, Plugins};

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A number as OpenMetrics writes it (integers without a fraction).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

struct Out(String);

impl Out {
    /// A metric family's `# TYPE`, `# HELP` (and `# UNIT`) lines.
    fn family(&mut self, name: &str, kind: &str, unit: Option<&str>, help: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        if let Some(unit) = unit {
            let _ = writeln!(self.0, "# UNIT {name} {unit}");
        }
        let _ = writeln!(self.0, "# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    /// A family with one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, unit: Option<&str>, help: &str, value: f64) {
        self.family(name, kind, unit, help);
        let sample = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        self.sample(&sample, &[], value);
    }
}

/// The exposition for one daemon.
pub fn render(status: &DaemonStatus, plugins: &Plugins) -> String {
    let mut o = Out(String::new());
    // Gauges named `_info` rather than the `info` type: node_exporter's
    // textfile collector (Prometheus's text parser) knows no `info` type,
    // and both formats read these.
    o.family(
        "stagecoach_build_info",
        "gauge",
        None,
        "The daemon's build.",
    );
    o.sample(
        "stagecoach_build_info",
        &[("version", &status.daemon_version)],
        1.0,
    );
    o.family(
        "stagecoach_process_info",
        "gauge",
        None,
        "The process in force (name, version, file hash).",
    );
    let version = status.process.version.to_string();
    o.sample(
        "stagecoach_process_info",
        &[
            ("name", &status.process.name),
            ("version", &version),
            ("hash", &status.process.hash),
        ],
        1.0,
    );
    o.one(
        "stagecoach_process_version",
        "gauge",
        None,
        "The version of the process in force.",
        status.process.version as f64,
    );
    o.one(
        "stagecoach_process_reload_error",
        "gauge",
        None,
        "1 while the last edit of process.toml was refused (the previous version stays in force).",
        f64::from(u8::from(status.process.last_error.is_some())),
    );
    o.one(
        "stagecoach_uptime_seconds",
        "gauge",
        Some("seconds"),
        "Seconds since the daemon started.",
        status.uptime_seconds as f64,
    );
    o.one(
        "stagecoach_connections",
        "gauge",
        None,
        "Open client connections.",
        status.connections as f64,
    );
    o.one(
        "stagecoach_store_degraded",
        "gauge",
        None,
        "1 while the store refuses writes (a full disk, an I/O error).",
        f64::from(u8::from(status.store.health != "ok")),
    );
    let w = &status.writer;
    o.one(
        "stagecoach_writer_commits",
        "counter",
        None,
        "Transactions committed since start.",
        w.commits as f64,
    );
    o.one(
        "stagecoach_writer_requests",
        "counter",
        None,
        "Write requests applied since start.",
        w.requests as f64,
    );
    o.one(
        "stagecoach_writer_batch_mean",
        "gauge",
        None,
        "Write requests per commit, mean since start.",
        w.mean_batch,
    );
    o.one(
        "stagecoach_writer_commit_mean_seconds",
        "gauge",
        Some("seconds"),
        "Time committing a batch, mean since start.",
        w.mean_commit_ms / 1000.0,
    );
    o.one(
        "stagecoach_writer_apply_mean_seconds",
        "gauge",
        Some("seconds"),
        "Time applying a batch, mean since start.",
        w.mean_apply_ms / 1000.0,
    );
    if let Some(c) = &status.counts {
        for (name, help, value) in [
            ("stagecoach_prospects", "Prospects stored.", c.prospects),
            (
                "stagecoach_prospects_open",
                "Prospects still open.",
                c.open_prospects,
            ),
            ("stagecoach_activities", "Activities stored.", c.activities),
            (
                "stagecoach_transitions",
                "Stage transitions stored.",
                c.transitions,
            ),
        ] {
            o.one(name, "gauge", None, help, value as f64);
        }
    }
    type Field = fn(&stagecoach_types::api::results::PluginInfo) -> f64;
    let per_plugin: [(&str, &str, Option<&str>, &str, Field); 4] = [
        (
            "stagecoach_plugin_calls",
            "counter",
            None,
            "Calls into the plugin since start.",
            |p| p.calls as f64,
        ),
        (
            "stagecoach_plugin_failures",
            "counter",
            None,
            "Calls that failed closed (fuel, time, memory, trap, output, error).",
            |p| p.failures as f64,
        ),
        (
            "stagecoach_plugin_reused",
            "counter",
            None,
            "Answers given again for the same input without calling the plugin.",
            |p| p.reused as f64,
        ),
        (
            "stagecoach_plugin_call_mean_seconds",
            "gauge",
            Some("seconds"),
            "Wall time per call, mean since start.",
            |p| p.mean_micros / 1e6,
        ),
    ];
    for (name, kind, unit, help, value) in per_plugin {
        o.family(name, kind, unit, help);
        let sample = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_string()
        };
        for p in &plugins.plugins {
            o.sample(&sample, &[("plugin", &p.name)], value(p));
        }
    }
    o.0.push_str("# EOF\n");
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_numbers_are_written_as_openmetrics_says() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
