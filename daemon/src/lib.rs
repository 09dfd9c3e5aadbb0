//! Stagecoach: a local rules-engine daemon for a sales team's process.
//!
//! Sales ops describe the process in `process.toml` (stages, each with
//! objective exit criteria); the daemon keeps every prospect in exactly one
//! stage, moves it on when what the prospect did meets the criteria, and
//! keeps the full history in an embedded redb database. Clients speak
//! JSON-RPC 2.0 over a Unix socket, one JSON value per line.
//!
//! # Crates, each depending only on the ones above it
//! - `stagecoach-types` (`daemon/types`): records, JSON-RPC framing, error
//!   codes, refusals.
//! - `stagecoach-plugin-host` (`daemon/plugin-host`): the wasmtime sandbox.
//! - `stagecoach-core` (`daemon/core`): process file, criteria, lint, diff,
//!   discovery, engine, writer, store, metrics.
//! - `stagecoach-server` (`daemon/server`): the socket, the methods, live
//!   reload.
//! - `stagecoach-client` (`daemon/client`): a client of the socket.
//! - this crate, the `stagecoach` binary: the command line.
//!
//! # This crate
//! - [`cli`]: the command line, a client of the socket.
//! - [`report`]: the HTML report, from the metrics methods' answers.
//! - [`history`]: import from another CRM's CSV export, export for
//!   spreadsheets.
//! - [`demo`]: a demo team's history, written through the socket.
//! - [`plugin_build`]: `stagecoach plugins build` and `plugin test`.

pub mod cli;
pub mod demo;
pub mod history;
pub mod openmetrics;
pub mod plugin_build;
pub mod report;
pub mod scaffold;
pub mod toolchain;
