//! Formatting helpers shared by commands: durations, times, tables, and writing to stdout in a
//! way that treats a closed pipe (`pipetape ... | head`) as success.

use std::io::Write;

pub use pipetape_replayer::render::text::{bytes, duration, table, time};

/// Prints a line on stdout; a closed stdout (`| head`) is not an error and never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Buffered stdout.
pub struct Out(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl Out {
    /// Locks stdout.
    pub fn new() -> Out {
        Out(std::io::BufWriter::with_capacity(
            64 << 10,
            std::io::stdout().lock(),
        ))
    }
}

impl Write for Out {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
