//! The terminal side of a recorded run: what `pipetape run` and `pipetape record` show while
//! the pipeline runs. The recorder reports through [`Console`]; this draws it: step output
//! prefixed with `[stage/step]`, banners, GitHub Actions' `::group::` folds, a live status line
//! of running steps on an interactive terminal, and warnings on stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipetape_recorder::console::Console;

/// How output reaches the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal {
    /// Print step output (prefixed with `[stage/step]`) and banners.
    pub echo: bool,
    /// Wrap each step's output in `::group::` / `::endgroup::` (GitHub Actions).
    pub github: bool,
    /// Keep a status line of running steps and their elapsed time (an interactive terminal).
    pub live: bool,
}

/// The console of `pipetape run` and `pipetape record`.
pub struct TerminalConsole {
    term: Terminal,
    quiet: bool,
    live: Arc<LiveView>,
}

/// The live view: which steps run, since when, and whether the status line is on screen.
#[derive(Default)]
struct LiveView(Mutex<Live>);

#[derive(Default)]
struct Live {
    running: BTreeMap<String, Instant>,
    shown: bool,
}

impl LiveView {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn redraw(&self) {
        let mut l = self.lock();
        let mut out = std::io::stdout().lock();
        if l.shown {
            let _ = out.write_all(b"\r\x1b[2K");
            l.shown = false;
        }
        if !l.running.is_empty() {
            let now = Instant::now();
            let r: Vec<(String, Duration)> = l
                .running
                .iter()
                .map(|(k, v)| (k.clone(), now - *v))
                .collect();
            let _ = write!(out, "\x1b[2m{}\x1b[0m", status_line(&r));
            l.shown = true;
        }
        let _ = out.flush();
    }

    /// Prints a line under the status line (clearing and redrawing it).
    fn print(&self, text: &str) {
        {
            let mut l = self.lock();
            let mut out = std::io::stdout().lock();
            if l.shown {
                let _ = out.write_all(b"\r\x1b[2K");
                l.shown = false;
            }
            let _ = writeln!(out, "{text}");
        }
        self.redraw();
    }
}

/// The status line: running steps with their elapsed time, longest-running first.
pub fn status_line(running: &[(String, Duration)]) -> String {
    let mut r: Vec<&(String, Duration)> = running.iter().collect();
    r.sort_by_key(|x| std::cmp::Reverse(x.1));
    let parts: Vec<String> = r
        .iter()
        .map(|(l, d)| format!("{l} {}", crate::output::duration(d.as_nanos() as u64)))
        .collect();
    format!("running: {}", parts.join(" · "))
}

impl TerminalConsole {
    /// A console for `term`; `quiet` silences notices (warnings always show). Call inside a
    /// tokio runtime for the live status line to tick.
    pub fn new(term: Terminal, quiet: bool) -> Arc<TerminalConsole> {
        let c = Arc::new(TerminalConsole {
            term,
            quiet,
            live: Arc::default(),
        });
        if term.live && term.echo {
            // Redraw the status line every second while the console lives.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let view = Arc::downgrade(&c.live);
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match view.upgrade() {
                            Some(v) => v.redraw(),
                            None => return,
                        }
                    }
                });
            }
        }
        c
    }

    fn line(&self, text: &str) {
        if self.term.live {
            self.live.print(text);
        } else {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }
}

impl Console for TerminalConsole {
    fn step_lines(&self, prefix: &str, lines: &[&str], stderr: bool) {
        if !self.term.echo || lines.is_empty() {
            return;
        }
        if self.term.live {
            // Clear the status line, print, draw it again (all on the terminal's stdout).
            for l in lines {
                self.live.print(&format!("[{prefix}] {l}"));
            }
            return;
        }
        let mut text =
            String::with_capacity(lines.iter().map(|l| l.len() + prefix.len() + 4).sum());
        for l in lines {
            text.push('[');
            text.push_str(prefix);
            text.push_str("] ");
            text.push_str(l);
            text.push('\n');
        }
        // A closed terminal must not stop the pipeline.
        let _ = if stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    }

    fn banner(&self, text: &str) {
        if self.term.echo {
            self.line(text);
        }
    }

    fn group(&self, label: Option<&str>) {
        if self.term.github && self.term.echo {
            match label {
                Some(l) => self.line(&format!("::group::{l}")),
                None => self.line("::endgroup::"),
            }
        }
    }

    fn running(&self, label: &str, on: bool) {
        if !self.term.live {
            return;
        }
        {
            let mut l = self.live.lock();
            if on {
                l.running.insert(label.to_string(), Instant::now());
            } else {
                l.running.remove(label);
            }
        }
        // Redraw now, so nothing printed after the last step lands on a stale status line.
        self.live.redraw();
    }

    fn warn(&self, text: &str) {
        eprintln!("pipetape: WARNING: {text}");
    }

    fn notice(&self, text: &str) {
        if !self.quiet {
            eprintln!("pipetape: {text}");
        }
    }

    fn echoes(&self) -> bool {
        self.term.echo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_lists_the_longest_running_first() {
        let r = vec![
            ("test/unit".to_string(), Duration::from_secs(3)),
            ("build/images".to_string(), Duration::from_secs(75)),
        ];
        assert_eq!(
            status_line(&r),
            "running: build/images 1m15s · test/unit 3.0s"
        );
    }
}
