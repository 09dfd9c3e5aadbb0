//! The Stagecoach daemon: start-up, the Unix socket and its connections,
//! the JSON-RPC methods, live reload of `process.toml`, and shutdown.
//!
//! - [`server`]: start-up, the socket, connections, limits, shutdown.
//! - [`rpc`]: the methods, one module per protocol area, dispatched in one place.
//! - [`context`]: what every request may touch (store, writer, process in force).
//! - [`watch`] and [`live`]: watching files the way people save them;
//!   reloading `process.toml` into a new version without dropping anything.
//!
//! The rules, the store and the metrics are `stagecoach-core`'s; this
//! crate puts them on the socket.

pub mod ahead;
pub mod context;
pub mod files;
pub mod live;
pub mod notify;
pub mod rpc;
pub mod server;
pub mod watch;

pub use server::{
    DEFAULT_IMPORT_IDLE_SECS, DEFAULT_IMPORT_MAX_SECS, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUED_MIB,
    Limits, ServeConfig, ServeError, run,
};
