//! Write Stagecoach plugins: exit criteria, methodology checklists and
//! metrics that run sandboxed in the daemon as WebAssembly components.
//!
//! A plugin is one short file: implement [`Plugin`], then call
//! [`register_plugin!`].
//!
//! ```
//! use stagecoach_plugin_sdk::{Capability, Input, Plugin, Verdict, register_plugin};
//!
//! struct BigEnough;
//!
//! impl Plugin for BigEnough {
//!     const NAME: &'static str = "big-enough";
//!     const DESCRIPTION: &'static str = "The company has at least `min_employees` employees.";
//!     const PROVIDES: &'static [Capability] = &[Capability::Criterion];
//!
//!     fn evaluate(input: &Input) -> Result<Verdict, String> {
//!         let min = input.config.number("min_employees").unwrap_or(50.0);
//!         Ok(match input.prospect.number("employees") {
//!             Some(n) if n >= min => Verdict::met(format!("{n} employees")),
//!             Some(n) => Verdict::unmet(format!("only {n} employees, needs {min}")),
//!             None => Verdict::unmet("`employees` is not set"),
//!         })
//!     }
//! }
//!
//! register_plugin!(BigEnough);
//! ```
//!
//! Plugin logic is plain Rust: test it natively with `cargo test`, building
//! inputs with [`Prospect::new`] and its `with_*` methods. Build the plugin
//! with `stagecoach plugins build DIR`, which compiles it for
//! `wasm32-unknown-unknown` and wraps it as a component.
//!
//! The interface is versioned. This SDK builds for `stagecoach:plugin@0.3.0`
//! (`plugin-sdk/wit-0.3.0/`, see [`INTERFACE_VERSION`]), whose records it
//! reads in place; the daemon runs 0.3.0 and 0.4.0 plugins (0.4.0 packs the
//! input into bytes for interpreted languages' SDKs) and refuses others.

//! ## Memory
//!
//! On wasm the SDK installs its allocator ([`Arena`]): a bump arena in the
//! plugin's initial memory in front of the system allocator, which makes a
//! fresh instance's call several times cheaper. A plugin that brings its own
//! `#[global_allocator]` turns it off with `default-features = false`.

mod arena;
mod types;

pub use arena::Arena;

#[cfg(all(
    target_arch = "wasm32",
    not(target_feature = "atomics"),
    feature = "arena"
))]
#[global_allocator]
static ALLOCATOR: Arena = Arena::new();

pub use types::{
    Activity, Actor, ChecklistItem, Config, Input, MetricInput, MetricValue, Num, Prospect,
    ProspectSummary, Transition, Value, Verdict,
};

/// The plugin interface version this SDK builds against.
pub const INTERFACE_VERSION: &str = "0.3.0";

/// What a plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// An exit criterion (`evaluate`).
    Criterion,
    /// A methodology checklist (`checklist`).
    Checklist,
    /// A metric (`metric`).
    Metric,
}

/// A plugin. Implement the functions listed in [`Plugin::PROVIDES`]; the
/// others keep their default, which reports that they are not provided.
pub trait Plugin {
    /// The plugin's name, as `process.toml` refers to it.
    const NAME: &'static str;
    /// One sentence on what it checks or computes.
    const DESCRIPTION: &'static str;
    /// The functions it implements.
    const PROVIDES: &'static [Capability];
    /// Whether `evaluate` and `checklist` read the prospect's activity log.
    /// Say `false` when they read only fields and config: the daemon then
    /// leaves the log out, and each call is cheaper (the prospect's
    /// `activities` are empty and `activities_truncated` is set).
    const READS_ACTIVITIES: bool = true;

    /// An exit criterion: is it met for this prospect?
    fn evaluate(input: &Input) -> Result<Verdict, String> {
        let _ = input;
        Err(format!(
            "`{}` does not provide an exit criterion",
            Self::NAME
        ))
    }

    /// A methodology checklist: each item done or not, with evidence.
    fn checklist(input: &Input) -> Result<Vec<ChecklistItem>, String> {
        let _ = input;
        Err(format!("`{}` does not provide a checklist", Self::NAME))
    }

    /// A metric: named values folded from prospects and transitions.
    fn metric(input: &MetricInput) -> Result<Vec<MetricValue>, String> {
        let _ = input;
        Err(format!("`{}` does not provide a metric", Self::NAME))
    }
}

/// Log levels for [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for plugin authors.
    Debug,
    /// Normal events.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// Writes a line to the daemon's log (to stderr when run natively).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::stagecoach::plugin::host::{Level as L, log_byte, log_end};
        let level = match level {
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        for b in message.bytes().take(4096) {
            log_byte(b);
        }
        log_end(level);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit-0.3.0",
        world: "stagecoach-plugin",
        pub_export_macro: true,
        export_macro_name: "export_stagecoach_plugin",
        default_bindings_module: "stagecoach_plugin_sdk::bindings",
    });
}

/// The glue [`register_plugin!`] expands to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::bindings::exports::stagecoach::plugin::plugin as wit;
    use super::bindings::stagecoach::plugin::types as t;
    use super::{Capability, Plugin};

    pub use super::bindings::export_stagecoach_plugin;
    pub use super::bindings::exports::stagecoach::plugin::plugin::Guest;

    /// Sends panic messages to the daemon's log before the trap that
    /// follows loses them.
    fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                super::log(super::Level::Error, &format!("plugin panicked: {info}"));
            }));
        });
    }

    pub fn describe<P: Plugin>() -> t::Info {
        install_panic_hook();
        t::Info {
            name: P::NAME.to_string(),
            description: P::DESCRIPTION.to_string(),
            provides: P::PROVIDES
                .iter()
                .map(|c| match c {
                    Capability::Criterion => t::Capability::Criterion,
                    Capability::Checklist => t::Capability::Checklist,
                    Capability::Metric => t::Capability::Metric,
                })
                .collect(),
            reads_activities: P::READS_ACTIVITIES,
        }
    }

    pub fn evaluate<P: Plugin>(input: wit::Input) -> Result<wit::Verdict, String> {
        install_panic_hook();
        P::evaluate(&input.try_into()?).map(Into::into)
    }

    pub fn checklist<P: Plugin>(input: wit::Input) -> Result<Vec<wit::ChecklistItem>, String> {
        install_panic_hook();
        P::checklist(&input.try_into()?).map(|items| items.into_iter().map(Into::into).collect())
    }

    pub fn metric<P: Plugin>(input: wit::MetricInput) -> Result<Vec<wit::MetricValue>, String> {
        install_panic_hook();
        P::metric(&input.try_into()?).map(|values| values.into_iter().map(Into::into).collect())
    }
}

/// A methodology checklist plugin in one declaration: its name, a
/// description, and the items for a prospect `p`. Defines the type
/// `Checklist` and registers it.
///
/// ```
/// use stagecoach_plugin_sdk::{ChecklistItem, checklist_plugin};
///
/// checklist_plugin! {
///     name: "two-steps",
///     description: "The prospect replied and shared a budget.",
///     items: |p| vec![
///         ChecklistItem::prospect_did("reply", "Replied", p, "replied"),
///         ChecklistItem::field("budget", "Budget shared", p, "budget"),
///     ],
/// }
/// ```
#[macro_export]
macro_rules! checklist_plugin {
    (name: $name:literal, description: $description:literal, items: |$p:ident| $items:expr $(,)?) => {
        /// The plugin.
        pub struct Checklist;

        impl $crate::Plugin for Checklist {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            const PROVIDES: &'static [$crate::Capability] = &[$crate::Capability::Checklist];

            fn checklist(input: &$crate::Input) -> Result<Vec<$crate::ChecklistItem>, String> {
                let $p = &input.prospect;
                Ok($items)
            }
        }

        $crate::register_plugin!(Checklist);
    };
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as the component's
/// implementation of the Stagecoach plugin interface. Call it once per crate.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __StagecoachPluginExport;

        impl $crate::__private::Guest for __StagecoachPluginExport {
            fn describe() -> $crate::bindings::stagecoach::plugin::types::Info {
                $crate::__private::describe::<$plugin>()
            }
            fn evaluate(
                input: $crate::bindings::stagecoach::plugin::types::Input,
            ) -> Result<$crate::bindings::stagecoach::plugin::types::Verdict, String> {
                $crate::__private::evaluate::<$plugin>(input)
            }
            fn checklist(
                input: $crate::bindings::stagecoach::plugin::types::Input,
            ) -> Result<Vec<$crate::bindings::stagecoach::plugin::types::ChecklistItem>, String>
            {
                $crate::__private::checklist::<$plugin>(input)
            }
            fn metric(
                input: $crate::bindings::stagecoach::plugin::types::MetricInput,
            ) -> Result<Vec<$crate::bindings::stagecoach::plugin::types::MetricValue>, String> {
                $crate::__private::metric::<$plugin>(input)
            }
        }

        // Only a wasm build exports the interface: native builds (unit tests)
        // would hand the component's export names to the system linker.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::export_stagecoach_plugin!(__StagecoachPluginExport);
    };
}
