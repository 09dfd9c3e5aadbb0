//! The protocol's methods: parameters parsed into types and dispatched in
//! one place. One module per protocol area.
//!
//! Write methods are submitted to the writer *before* [`dispatch`] returns
//! its future, so requests pipelined on one connection are applied in the
//! order they arrived even though their answers are awaited concurrently.

mod activity;
mod daemon;
mod history;
mod import;
mod metrics;
mod plugins;
mod process;
mod prospect;
mod simulate;

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use stagecoach_core::store::StoreError;
use stagecoach_types::api::{self, methods as m};
use stagecoach_types::protocol::{ErrorData, INTERNAL_ERROR, METHOD_NOT_FOUND, RpcError};

pub(crate) use stagecoach_types::api::params::NoParams;

pub use crate::context::{Ctx, Reply};
pub use import::give_up_import;
pub use process::reevaluate_open;

/// Runs a blocking read on the blocking pool.
fn read<F>(f: F) -> Reply
where
    F: FnOnce() -> Result<Value, ReadError> + Send + 'static,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.map_err(RpcError::from),
            Err(e) => Err(RpcError::new(
                INTERNAL_ERROR,
                format!("read task failed: {e}"),
            )),
        }
    })
}

/// The figures `process.simulate` measures of one period of `store` under
/// `active` (flow, time in stage, conversion, outcomes), as it answers
/// them: for the simulate benchmark, which times them on the scratch store.
pub fn measure(
    store: &stagecoach_core::store::Store,
    active: &stagecoach_core::engine::ActiveProcess,
    period: &stagecoach_types::api::params::Period,
    now: stagecoach_types::model::Millis,
) -> Result<stagecoach_types::api::results::Measured, RpcError> {
    metrics::measure(store, active, period, now).map_err(RpcError::from)
}

/// The answer of a measuring thread; a thread that panicked is an
/// internal error saying what failed.
fn joined<T>(
    thread: std::thread::ScopedJoinHandle<'_, Result<T, ReadError>>,
    what: &str,
) -> Result<T, ReadError> {
    thread.join().unwrap_or_else(|_| {
        Err(ReadError::Rpc(RpcError::new(
            INTERNAL_ERROR,
            format!("measuring {what} failed"),
        )))
    })
}

/// A read that failed: either the client's fault or the store's.
enum ReadError {
    Rpc(RpcError),
    Store(StoreError),
}

impl From<RpcError> for ReadError {
    fn from(e: RpcError) -> Self {
        ReadError::Rpc(e)
    }
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> Self {
        ReadError::Store(e)
    }
}

impl From<ReadError> for RpcError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Rpc(e) => e,
            ReadError::Store(e) => RpcError::new(INTERNAL_ERROR, e.to_string()),
        }
    }
}

fn ready(result: Result<Value, RpcError>) -> Reply {
    Box::pin(std::future::ready(result))
}

/// A request's named parameters: as JSON, or already parsed into the
/// method's own type ([`Method::parse`], off the runtime, for a large
/// request).
pub enum Params {
    /// The `params` object.
    Json(Value),
    /// What [`Method::parse`] made of them.
    Typed(Box<dyn Any + Send>),
}

/// Parses named parameters into `T`, with a message naming the bad key.
fn params<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            RpcError::params(format!("invalid params: {inner}"))
        } else {
            RpcError::params(format!("invalid params: `{path}`: {inner}"))
        }
    })
}

/// `T` from the text of a `params` object `levels` deep in its line: one
/// pass, without a `Value` in between. `None` where parsing the line into
/// a `Value` and then into `T` would not give the same `T`: whatever does
/// not parse (bad JSON, a bad parameter, a key given twice, which a `Value`
/// keeps the last of) goes that way instead, and is answered as it always
/// was. Read as `levels` arrays around the object, so that the depth
/// limit counts from where the object is in the line, as it did.
fn params_text<T: DeserializeOwned>(text: &str, levels: usize) -> Option<T> {
    let wrapped = format!("{}{text}{}", "[".repeat(levels), "]".repeat(levels));
    let mut de = serde_json::Deserializer::from_str(&wrapped);
    let value = serde::de::DeserializeSeed::deserialize(Nested::<T>(levels, PhantomData), &mut de);
    value.ok().filter(|_| de.end().is_ok())
}

/// `T` inside `.0` arrays of one element each.
struct Nested<T>(usize, PhantomData<T>);

impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for Nested<T> {
    type Value = T;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        if self.0 == 0 {
            return T::deserialize(d);
        }
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for Nested<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of one element")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let inner = Nested::<T>(self.0 - 1, PhantomData);
        seq.next_element_seed(inner)?
            .ok_or_else(|| serde::de::Error::custom("an empty array"))
    }
}

/// One protocol method, declared once: its name, the names of its
/// parameters (read from its parameter type) and its handler.
pub struct Method {
    /// `noun.verb`.
    pub name: &'static str,
    /// Its named parameters, as its parameter type declares them.
    pub params: fn() -> &'static [&'static str],
    /// The fields of its result, where the result is a typed struct (empty
    /// while it is still free-form JSON).
    pub result_fields: fn() -> &'static [&'static str],
    /// Parses the text of a `params` object, `levels` deep in its line,
    /// into the method's parameter type, for [`Params::Typed`]; `None`
    /// where the line must go as JSON instead ([`params_text`]).
    pub parse: fn(&str, usize) -> Option<Box<dyn Any + Send>>,
    /// Parses the parameters (unless they are [`Params::Typed`]) and
    /// starts the method.
    handler: fn(&Arc<Ctx>, Params) -> Reply,
    /// After answering, the connection receives notifications.
    pub subscribes: bool,
    /// It changes state: later requests on the same connection wait for
    /// its answer, so they see what it wrote.
    pub writes: bool,
}

macro_rules! method {
    ($m:ty, $f:path) => {
        method!($m, $f, read)
    };
    ($m:ty, $f:path, write) => {
        Method {
            writes: true,
            ..method!($m, $f, read)
        }
    };
    ($m:ty, $f:path, subscribe) => {
        Method {
            subscribes: true,
            ..method!($m, $f, read)
        }
    };
    ($m:ty, $f:path, read) => {
        Method {
            name: <$m as api::Method>::NAME,
            params: field_names::<<$m as api::Method>::Params>,
            result_fields: field_names::<<$m as api::Method>::Result>,
            parse: |text, levels| {
                params_text::<<$m as api::Method>::Params>(text, levels)
                    .map(|p| Box::new(p) as Box<dyn Any + Send>)
            },
            handler: |ctx, p| {
                let typed = match p {
                    Params::Json(v) => params::<<$m as api::Method>::Params>(v),
                    Params::Typed(parsed) => Ok(*parsed
                        .downcast::<<$m as api::Method>::Params>()
                        .expect("parsed by this method's `parse`")),
                };
                match typed {
                    Ok(p) => $f(ctx, p),
                    Err(e) => ready(Err(e)),
                }
            },
            subscribes: false,
            writes: false,
        }
    };
}

/// Every method, each with its handler. Names and parameter types come
/// from `stagecoach_types::api::methods`, the contract clients build on;
/// the `method not found` error, `events.subscribe` and the check against
/// docs/protocol.md all read this table.
pub static METHODS: &[Method] = &[
    method!(m::DaemonStatus, daemon::status),
    method!(m::EventsSubscribe, daemon::subscribe, subscribe),
    method!(m::ProcessGet, process::get),
    method!(m::ProcessVersions, process::versions),
    method!(m::ProcessValidate, process::validate),
    method!(m::ProcessDiff, process::diff),
    method!(m::ProcessReload, process::reload, write),
    method!(m::ProcessSimulate, simulate::simulate),
    method!(m::ProcessReevaluate, process::reevaluate, write),
    method!(m::ProcessDiscover, history::discover),
    method!(m::ProspectCreate, prospect::create, write),
    method!(m::ProspectGet, prospect::get),
    method!(m::ProspectList, prospect::list),
    method!(m::ProspectUpdate, prospect::update, write),
    method!(m::ProspectEvaluate, prospect::evaluate),
    method!(m::ProspectAdvance, prospect::advance, write),
    method!(m::ProspectMove, prospect::force_move, write),
    method!(m::ProspectClose, prospect::close, write),
    method!(m::ProspectLookup, history::lookup),
    method!(m::ProspectImport, import::import, write),
    method!(m::ImportBegin, import::begin, write),
    method!(m::ImportDeals, import::deals, write),
    method!(m::ImportCommit, import::commit, write),
    method!(m::ImportAbort, import::abort, write),
    method!(m::ActivityRecord, activity::record, write),
    method!(m::ActivityList, activity::list),
    method!(m::PluginsList, plugins::list),
    method!(m::MetricsPlugin, plugins::metric),
    method!(m::MetricsFlow, metrics::flow),
    method!(m::MetricsTimeInStage, metrics::time_in_stage),
    method!(m::MetricsConversion, metrics::conversion),
    method!(m::MetricsOutcomes, metrics::outcomes),
    method!(m::MetricsStalled, metrics::stalled),
    method!(m::MetricsOwners, metrics::owners),
    method!(m::MetricsTrends, metrics::trends),
    method!(m::MetricsCriteria, metrics::criteria),
    method!(m::MetricsConformance, metrics::conformance),
    method!(m::MetricsCompare, metrics::compare),
    method!(m::ExportPage, history::page),
];

/// The method called `name`.
pub fn method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// Starts `method`. Writes are queued before this returns.
pub fn dispatch(ctx: &Arc<Ctx>, method: Option<&'static Method>, name: &str, p: Params) -> Reply {
    match method {
        Some(m) => (m.handler)(ctx, p),
        None => ready(Err(unknown_method(name))),
    }
}

fn unknown_method(name: &str) -> RpcError {
    let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
    let hint = names
        .iter()
        .find(|m| m.split('.').next() == name.split('.').next())
        .map(|m| format!("; did you mean `{m}`? methods are `noun.verb`"))
        .unwrap_or_default();
    RpcError::new(METHOD_NOT_FOUND, format!("unknown method `{name}`{hint}")).with_data(ErrorData {
        methods: Some(names.iter().map(|n| n.to_string()).collect()),
        ..ErrorData::default()
    })
}

/// The field names a parameter type declares: serde hands them to the
/// deserializer of a struct, which here stops and keeps them.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names read")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.unwrap_or(&[])
}

#[cfg(test)]
mod doc_tests {
    //! docs/protocol.md is what client authors read: its method table and
    //! notification list must name exactly what the daemon serves.

    use std::collections::{BTreeMap, BTreeSet};

    use super::METHODS;
    use stagecoach_types::protocol::events;

    const DOC: &str = include_str!("../../../../docs/protocol.md");

    /// The backticked names at the top level of a table cell: `a`, `b?`
    /// count; text in parentheses (a field's own values or shape) does not.
    fn top_level_names(cell: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let (mut depth, mut in_tick, mut token) = (0usize, false, String::new());
        for c in cell.chars() {
            match c {
                '`' if in_tick => {
                    in_tick = false;
                    let name = token.trim_end_matches('?');
                    if depth == 0
                        && !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        names.insert(name.to_string());
                    }
                    token.clear();
                }
                '`' => in_tick = true,
                _ if in_tick => token.push(c),
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        names
    }

    /// method → its documented parameters, from the `## Methods` table.
    fn documented_methods() -> BTreeMap<String, BTreeSet<String>> {
        let section = DOC.split("## Methods").nth(1).expect("a Methods section");
        let section = section.split("\n## ").next().unwrap();
        let mut methods = BTreeMap::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            let params = cells
                .get(2)
                .map_or_else(BTreeSet::new, |c| top_level_names(c));
            methods.insert(name.to_string(), params);
        }
        methods
    }

    #[test]
    fn every_method_and_parameter_is_documented_and_nothing_else() {
        let documented = documented_methods();
        let served: BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
        let contract: BTreeSet<&str> = stagecoach_types::api::methods::NAMES
            .iter()
            .copied()
            .collect();
        assert_eq!(
            served, contract,
            "every method of the typed contract is served"
        );
        let listed: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
        assert_eq!(
            served.difference(&listed).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "served but missing from docs/protocol.md"
        );
        assert_eq!(
            listed.difference(&served).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "documented but not served"
        );
        for m in METHODS {
            let declared: BTreeSet<String> = (m.params)().iter().map(|s| s.to_string()).collect();
            assert_eq!(
                documented[m.name], declared,
                "`{}`: the parameters docs/protocol.md lists (left) differ from the method's",
                m.name
            );
        }
    }

    #[test]
    fn every_field_of_a_typed_result_is_documented() {
        let section = DOC.split("## Methods").nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap();
        let mut gaps = Vec::new();
        for m in METHODS {
            let line = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", m.name)))
                .expect("documented");
            let result = line.split('|').nth(3).unwrap_or_default();
            let missing: Vec<&str> = (m.result_fields)()
                .iter()
                .copied()
                .filter(|f| {
                    !result.contains(&format!("`{f}`"))
                        && !result.contains(&format!("`{f}?`"))
                        && !result.contains(&format!("{{{f},"))
                        && !result.contains(&format!(", {f},"))
                        && !result.contains(&format!(", {f}}}"))
                })
                .collect();
            if !missing.is_empty() {
                gaps.push(format!("`{}`: {missing:?}", m.name));
            }
        }
        assert!(
            gaps.is_empty(),
            "docs/protocol.md does not name these result fields:\n{}",
            gaps.join("\n")
        );
    }

    #[test]
    fn every_notification_is_documented_and_nothing_else() {
        let section = DOC
            .split("## Notifications")
            .nth(1)
            .expect("a Notifications section");
        let section = section.split("\n## ").next().unwrap();
        let documented: BTreeSet<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("- `")?.split('`').next())
            .collect();
        let sent: BTreeSet<&str> = events::ALL.iter().copied().collect();
        assert_eq!(documented, sent);
    }

    #[test]
    fn every_field_of_an_error_s_data_is_documented() {
        let section = DOC.split("## Errors").nth(1).expect("an Errors section");
        let section = section.split("\n## ").next().unwrap();
        let missing: Vec<&str> = super::field_names::<stagecoach_types::protocol::ErrorData>()
            .iter()
            .copied()
            .filter(|f| !section.contains(&format!("`{f}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/protocol.md's Errors table does not name these `data` fields: {missing:?}"
        );
    }

    #[test]
    fn parameter_names_come_from_the_types() {
        let flow = METHODS.iter().find(|m| m.name == "metrics.flow").unwrap();
        assert!((flow.params)().contains(&"from"));
        let status = METHODS.iter().find(|m| m.name == "daemon.status").unwrap();
        assert!((status.params)().is_empty());
    }
}
