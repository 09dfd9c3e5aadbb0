//! The records and the contract shared by the Stagecoach daemon, its
//! command line and any Rust client: prospects, activities, transitions,
//! process versions ([`model`]), JSON-RPC framing and error codes
//! ([`protocol`]), and why a request is refused ([`error`]).
//!
//! This crate depends on no other Stagecoach crate: everything else
//! points at it.

pub mod api;
pub mod error;
pub mod model;
pub mod process;
pub mod protocol;
pub mod suggest;
