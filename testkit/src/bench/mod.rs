//! The measurements of `pipetape bench`: the log format ([`log`]), the replayer ([`replay`])
//! and the recorder's overhead on a chatty step ([`recorder`]). The binary adds the suites
//! that need it running (diff, observe, remote).

pub mod history;
pub mod log;
pub mod recorder;
pub mod replay;
