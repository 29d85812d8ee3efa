//! pipetape's test kit: what tests, the demo and the benchmarks build runs from, kept out of
//! the libraries that record and replay.
//!
//! - [`scenario`]: the built-in scenarios (a full-stack nightly, green or with a fault) written
//!   as real logs, for `pipetape demo`, `pipetape scenario` and the tests;
//! - [`synth`]: a seeded generator of large, realistic synthetic runs;
//! - [`objects`]: Kubernetes object JSON shaped like a real API server's, for both;
//! - [`bench`]: the measurements `pipetape bench` prints.
//!
//! It depends on the store and the replayer; nothing but the binary and tests depends on it.

pub mod bench;
pub mod objects;
pub mod scenario;
pub mod synth;
