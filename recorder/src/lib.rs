//! pipetape's recorder: the pipeline runner, wrap mode and the cluster observers. It writes
//! through `pipetape-store` and never reads old runs. Work on it is tracked in issues 3 and 5;
//! this crate has no public items yet.
