//! pipetape's recorder: the pipeline spec ([`spec`]), the runner ([`runner`]) and the recording
//! session around it ([`session`]); cluster observers come later. It writes through
//! `pipetape-store` and never reads old runs.

pub mod bench;
pub mod gates;
pub mod observe;
pub mod runner;
pub mod session;
pub mod signals;
pub mod sink;
pub mod spec;
pub mod wrap;
