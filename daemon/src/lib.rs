//! Stagecoach: a local rules-engine daemon for a sales team's process.
//!
//! Sales ops describe the process in `process.toml` (stages, each with
//! objective exit criteria); the daemon keeps every prospect in exactly one
//! stage, moves it on when what the prospect did meets the criteria, and
//! keeps the full history in an embedded redb database. Clients speak
//! JSON-RPC 2.0 over a Unix socket, one JSON value per line.
//!
//! # Layout
//! - [`model`]: prospects, activities, transitions, process versions.
//! - [`process`]: parsing and validating `process.toml`, with line/column errors.
//! - [`criteria`]: evaluating a stage's exit criteria for one prospect.
//! - [`lint`] and [`diff`]: the guide's mistakes as warnings; what changed
//!   between two process versions, in words.
//! - [`watch`] and [`live`]: watching files the way people save them;
//!   reloading `process.toml` into a new version without dropping anything.
//! - [`store`]: the redb tables, typed reads, and indexes.
//! - [`engine`]: every change (create, record, advance, move, close) as an
//!   operation applied inside a write transaction.
//! - [`writer`]: the single writer thread with group commit.
//! - [`protocol`]: JSON-RPC framing and error codes.
//! - [`rpc`]: the methods, one module per protocol area, dispatched in one place.
//! - [`server`]: start-up, the socket, connections, limits, shutdown.
//! - [`client`] and [`cli`]: the command line, a client of the socket.
//! - [`metrics`]: counters kept with every transition, and the exact
//!   flow, time-in-stage, conversion and outcome queries over them.
//! - [`history`] and [`discover`]: import from another CRM's CSV export,
//!   export for spreadsheets, and learning a draft process from closed deals.
//! - [`clock`]: where "now" comes from, passed in.

pub mod cli;
pub mod client;
pub mod clock;
pub mod criteria;
pub mod demo;
pub mod diff;
pub mod discover;
pub mod engine;
pub mod history;
pub mod lint;
pub mod live;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod process;
pub mod protocol;
pub mod report;
pub mod rpc;
pub mod server;
pub mod store;
pub mod watch;
pub mod writer;

pub use server::{Limits, ServeConfig, ServeError, run};
