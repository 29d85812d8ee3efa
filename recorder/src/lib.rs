//! pipetape's recorder: the pipeline spec ([`spec`]) and, in later work, the runner, wrap mode
//! and cluster observers. It writes through `pipetape-store` and never reads old runs.

pub mod runner;
pub mod spec;
