//! pipetape's store: the event model ([`model`]), the `.ptape` log format ([`format`],
//! [`writer`], [`reader`]), the run catalog ([`catalog`]) and the store directory that ties
//! them together ([`store`]: runs, RUN resolution, archives), and shared history on object
//! storage ([`remote`], layout in `store/REMOTE.md`). [`synth`] generates realistic
//! synthetic runs; [`bench`] measures the log format on them.
//!
//! Start reading at [`model::Record`], then [`writer::LogWriter`] and [`reader::LogReader`].

pub mod catalog;
pub mod columns;
pub mod compact;
pub mod error;
pub mod format;
pub mod index;
pub mod k8s;
pub mod mask;
pub mod model;
pub mod reader;
pub mod readiness;
#[cfg(feature = "remote")]
pub mod remote;
pub mod retention;
pub mod store;
pub mod streams;
pub mod time;
pub mod trace;
mod varint;
mod wire;
pub mod writer;

pub use error::{Error, Result};
pub use format::RunId;
pub use model::{Body, Record, Source};
pub use reader::{Damage, DamageKind, LogReader, Recovery};
pub use wire::Peek;
pub use writer::{LogAppender, LogWriter, WriterOptions};
