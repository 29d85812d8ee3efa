//! The pure analysis of runs: [`fold`] a log into a model, answer questions about it
//! ([`query`]), extract comparable [`metrics`], choose a [`baseline`] and [`diff`] a run against
//! it. Nothing here renders or serves; see `crate::render` and `crate::serve`.

pub mod baseline;
pub mod diff;
pub mod fold;
pub mod graph;
pub mod history;
pub mod key;
pub mod metrics;
pub mod parquet;
pub mod query;
