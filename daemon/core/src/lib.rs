//! The rules of Stagecoach, without the socket: the process file, exit
//! criteria, the store and its metric counters, every change as an
//! operation, the single writer, and the metrics queries.
//!
//! - [`process`]: parsing and validating `process.toml`, with line/column errors.
//! - [`criteria`]: evaluating a stage's exit criteria for one prospect.
//! - [`lint`] and [`diff`]: the guide's mistakes as warnings; what changed
//!   between two process versions, in words.
//! - [`discover`]: learning a draft process from closed deals.
//! - [`store`]: the redb tables, typed reads, indexes and metric counters.
//! - [`engine`]: every change (create, record, advance, move, close,
//!   import) as an operation applied inside a write transaction.
//! - [`writer`]: the single writer thread with group commit.
//! - [`metrics`]: the exact flow, time-in-stage, conversion and outcome
//!   queries over the counters.
//! - [`process_tests`]: the cases beside `process.toml`, run in a scratch store.
//! - [`simulate`]: replaying the stored history under a draft, in a scratch store.
//! - [`stats`]: whether a difference is likely real (Wilson, Newcombe, Mann–Whitney).
//! - [`clock`]: where "now" comes from, passed in.
//!
//! Depends on `stagecoach-types` and the plugin host only.

pub mod clock;
pub mod criteria;
pub mod diff;
pub mod discover;
pub mod engine;
pub mod lint;
pub mod metrics;
pub mod process;
pub mod process_tests;
pub mod simulate;
pub mod stats;
pub mod store;
pub mod writer;
