//! pipetape's replayer: folds a log into a run model, computes metrics and diffs, renders
//! reports and serves a read-only Kubernetes API. It never talks to a cluster. Work on it is
//! tracked in issues 4, 6 and 7; this crate has no public items yet.
