//! `stagecoach plugins build` and `stagecoach plugins run`: building plugin
//! crates into components, and running one plugin on one input outside the
//! daemon.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use stagecoach_plugin_host::{CallInput, Limits, MetricData, PluginHost};
use stagecoach_types::model::{Activity, Actor, FieldValue, Millis, Prospect, Status};

/// The target plugins are compiled for: no WASI, so the component imports
/// only the Stagecoach host interface.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Wraps a core module built with `wit-bindgen` into a component.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .map_err(|e| format!("{e:#}"))?
        .validate(true)
        .encode()
        .map_err(|e| format!("{e:#}"))
}

fn package_name(dir: &Path) -> Result<String, String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read `{}`: {e}", manifest.display()))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| format!("`{}`: {e}", manifest.display()))?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("`{}` has no `[package] name`", manifest.display()))
}

/// Builds each plugin crate in `dirs` for [`TARGET`] (release, no debug
/// info) and writes `<out>/<package>.wasm` components. Returns the files.
pub fn build_crates(
    dirs: &[PathBuf],
    out: &Path,
    target_dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let mut built = Vec::new();
    for dir in dirs {
        let name = package_name(dir)?;
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--target", TARGET, "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            // Small plugins: no debug info in the component.
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
            // A 128 KiB shadow stack instead of Rust's default 1 MiB: a fresh
            // instance then maps, faults in and resets far fewer pages.
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
                "-Clink-arg=-zstack-size=131072",
            )
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building `{name}` failed\nhint: is the target installed? `rustup target add {TARGET}`"
            ));
        }
        let core = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let bytes = std::fs::read(&core).map_err(|e| {
            format!(
                "cannot read `{}`: {e}\nhint: the crate needs `crate-type = [\"cdylib\"]`",
                core.display()
            )
        })?;
        let component = componentize(&bytes).map_err(|e| format!("`{name}`: {e}"))?;
        let dest = out.join(format!("{name}.wasm"));
        let tmp = dest.with_extension("wasm.tmp");
        std::fs::write(&tmp, &component)
            .map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
        // Rename so a watching daemon never reads a half-written plugin.
        std::fs::rename(&tmp, &dest)
            .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
        built.push(dest);
    }
    Ok(built)
}

/// Compiles each built plugin into the daemon's compiled-plugin cache at
/// `cache` (by content hash, as the daemon looks it up), and checks that it
/// loads and describes itself.
pub fn precompile(files: &[PathBuf], cache: &Path) -> Result<(), String> {
    let host = PluginHost::new(Some(cache.to_path_buf()))?;
    for file in files {
        let bytes =
            std::fs::read(file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
        let name = file
            .file_stem()
            .map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
        let limits = stagecoach_plugin_host::runtime_of(&bytes).default_limits();
        let started = std::time::Instant::now();
        let plugin = host
            .load(&name, file, &bytes, limits)
            .map_err(|e| e.to_string())?;
        let took = started.elapsed();
        if took.as_secs_f64() > 1.0 {
            println!(
                "compiled {name} ({}) into {} in {:.1} s",
                serde_json::to_value(plugin.runtime)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                cache.display(),
                took.as_secs_f64()
            );
        }
    }
    Ok(())
}

/// A prospect in a `plugin run` fixture: only `stage` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureProspect {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    stage: String,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    created_at: Option<Millis>,
    #[serde(default)]
    stage_entered_at: Option<Millis>,
    #[serde(default)]
    fields: stagecoach_types::model::Fields,
    #[serde(default)]
    activities: Vec<FixtureActivity>,
    #[serde(default)]
    probability: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureActivity {
    kind: String,
    #[serde(default)]
    actor: Option<Actor>,
    at: Millis,
    #[serde(default)]
    data: serde_json::Map<String, Value>,
}

/// A `plugin run` input file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[serde(default)]
    prospect: Option<FixtureProspect>,
    #[serde(default)]
    prospects: Vec<FixtureProspect>,
    #[serde(default)]
    transitions: Vec<stagecoach_types::model::Transition>,
    #[serde(default)]
    now: Option<Millis>,
    #[serde(default)]
    config: stagecoach_types::model::Fields,
}

fn prospect(f: FixtureProspect) -> (Prospect, Vec<Activity>, Option<f64>) {
    let id = f.id.unwrap_or(1);
    let created = f.created_at.unwrap_or_default();
    let activities = f
        .activities
        .into_iter()
        .enumerate()
        .map(|(i, a)| Activity {
            id: i as u64 + 1,
            prospect: id,
            kind: a.kind,
            actor: a.actor.unwrap_or(Actor::Prospect),
            at: a.at,
            data: a.data,
        })
        .collect::<Vec<_>>();
    let last = activities.iter().map(|a| a.at).max().unwrap_or(created);
    (
        Prospect {
            id,
            external_id: None,
            name: f.name.unwrap_or_else(|| "Fixture prospect".into()),
            company: f.company,
            owner: f.owner,
            fields: f.fields,
            stage: f.stage,
            status: f.status.unwrap_or(Status::Open),
            created_at: created,
            stage_entered_at: f.stage_entered_at.unwrap_or(created),
            last_activity_at: last,
            closed_at: None,
            owner_since: None,
        },
        activities,
        f.probability,
    )
}

/// Which export `plugin run` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Call {
    /// `evaluate` (exit criterion).
    Evaluate,
    /// `checklist`.
    Checklist,
    /// `metric`.
    Metric,
}

/// What `stagecoach plugins run` prints (as JSON with `--json`).
#[derive(Debug, Serialize)]
pub struct FixtureRun {
    /// The plugin, as it describes itself.
    pub plugin: RanPlugin,
    /// What the call answered.
    pub result: FixtureResult,
    /// Fuel the call consumed.
    pub fuel_used: u64,
    /// Its wall time, µs.
    pub micros: f64,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: usize,
}

/// The plugin a fixture ran.
#[derive(Debug, Serialize)]
pub struct RanPlugin {
    /// Its name (the file's stem).
    pub name: String,
    /// What it says it does.
    pub description: String,
    /// What it provides.
    pub provides: Vec<stagecoach_plugin_host::Capability>,
    /// BLAKE3 of the file, hex.
    pub hash: String,
}

/// A call's answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FixtureResult {
    /// `evaluate`: met or not, and why.
    Verdict {
        /// Whether the criterion is met.
        met: bool,
        /// Why.
        reason: String,
    },
    /// `checklist`: the items.
    Items(Vec<stagecoach_plugin_host::ChecklistItem>),
    /// `metric`: the values.
    Values(Vec<stagecoach_types::api::results::MetricValue>),
}

/// The limits `plugin run` was given; the rest are the daemon's defaults
/// for the plugin's runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLimits {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Memory per call, MiB.
    pub memory_mib: Option<u32>,
    /// Wall-clock limit per call, ms.
    pub timeout_ms: Option<u64>,
}

/// Runs one plugin on one fixture; returns what to print.
pub fn run_fixture(
    file: &Path,
    fixture: &Path,
    call: Option<Call>,
    set: RunLimits,
    cache: &Path,
) -> Result<FixtureRun, String> {
    let bytes =
        std::fs::read(file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let text = std::fs::read_to_string(fixture)
        .map_err(|e| format!("cannot read `{}`: {e}", fixture.display()))?;
    let fixture: Fixture =
        serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", fixture.display()))?;
    let defaults = stagecoach_plugin_host::runtime_of(&bytes).default_limits();
    let limits = Limits {
        fuel: set.fuel.unwrap_or(defaults.fuel),
        memory_mib: set.memory_mib.unwrap_or(defaults.memory_mib),
        timeout_ms: set.timeout_ms.unwrap_or(defaults.timeout_ms),
        ..defaults
    };
    let host = PluginHost::new(Some(cache.to_path_buf()))?;
    let name = file
        .file_stem()
        .map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
    let plugin = host
        .load(&name, file, &bytes, limits)
        .map_err(|e| e.to_string())?;
    let call = match call {
        Some(c) => c,
        None => match plugin.provides.first() {
            Some(stagecoach_plugin_host::Capability::Checklist) => Call::Checklist,
            Some(stagecoach_plugin_host::Capability::Metric) => Call::Metric,
            _ => Call::Evaluate,
        },
    };
    let now = fixture.now.unwrap_or_else(Millis::now);
    let config: Vec<(String, FieldValue)> = fixture.config.into_iter().collect();
    let described = RanPlugin {
        name,
        description: plugin.description.clone(),
        provides: plugin.provides.clone(),
        hash: plugin.hash.clone(),
    };
    let (result, stats) = match call {
        Call::Evaluate | Call::Checklist => {
            let p = fixture.prospect.ok_or("the fixture needs a `prospect`")?;
            let (prospect, activities, _) = prospect(p);
            let input = CallInput {
                prospect: &prospect,
                activities: &activities,
                now,
                config: &config,
            };
            if call == Call::Evaluate {
                let (v, stats) = plugin.evaluate(&input).map_err(|f| f.to_string())?;
                (
                    FixtureResult::Verdict {
                        met: v.met,
                        reason: v.reason,
                    },
                    stats,
                )
            } else {
                let (items, stats) = plugin.checklist(&input).map_err(|f| f.to_string())?;
                (FixtureResult::Items(items), stats)
            }
        }
        Call::Metric => {
            let data = MetricData {
                now,
                config,
                prospects: fixture
                    .prospects
                    .into_iter()
                    .map(|p| {
                        let (p, _, probability) = prospect(p);
                        (p, probability)
                    })
                    .collect(),
                transitions: fixture.transitions,
            };
            let (values, stats) = plugin.metric(&data).map_err(|f| f.to_string())?;
            (FixtureResult::Values(values), stats)
        }
    };
    Ok(FixtureRun {
        plugin: described,
        result,
        fuel_used: stats.fuel_used,
        micros: stats.micros,
        peak_memory_bytes: stats.peak_memory,
    })
}
