//! Integration tests: the real `stagecoach` binary, over its real socket,
//! on a real redb file in a temporary directory.

mod support;

mod analytics;
mod bounds;
mod cli;
mod client;
mod crm;
mod durability;
mod habits;
mod history;
mod iterate;
mod languages;
mod lifecycle;
mod live;
mod metrics;
mod numbers;
mod plugins;
mod protocol;
mod sandbox;
mod sessions;
mod simulate;
