//! pipetape's recorder: the pipeline spec ([`spec`]), the runner ([`runner`]: stages and steps,
//! with [`gates`], [`signals`] and the [`sink`] every record goes through), the recording
//! session around it ([`session`]), wrap mode ([`wrap`]) and the cluster observers
//! ([`observe`]). It reports progress through a [`console::Console`] and never writes to the
//! terminal itself; it writes through `pipetape-store` and never reads old runs (it does not
//! depend on the replayer).

pub mod bench;
pub mod console;
pub mod gates;
pub mod observe;
pub mod runner;
pub mod session;
pub mod signals;
pub mod sink;
pub mod spec;
pub mod wrap;
