//! `pipetape replay step [RUN] [--at T]`: the interactive terminal UI (the UI itself is
//! `pipetape_replayer::step`; this owns the terminal).

use std::io::IsTerminal;

use clap::Args;
use pipetape_replayer::step::{App, Key};
use pipetape_replayer::time::parse_at;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::{CmdError, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct StepArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Start with the cursor at T (an offset such as 5m12s, or an RFC 3339 time).
    #[arg(long, value_name = "T")]
    at: Option<String>,
}

fn map(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Char('q'),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        _ => return None,
    })
}

pub fn step(ctx: &Ctx, a: StepArgs) -> CmdResult {
    if !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        return Err(CmdError::input(
            "replay step is interactive and needs a terminal; in scripts use `pipetape replay timeline`, `replay events` or `replay state --at T`",
        ));
    }
    let r = ctx.resolve(&a.run)?;
    let l = pipetape_replayer::load_lazy(&r.path).map_err(|e| CmdError::input(e.to_string()))?;
    for d in &l.damage {
        ctx.warn(format!(
            "{}: {d}; showing what was readable",
            r.path.display()
        ));
    }
    let m = &l.model;
    let at = match &a.at {
        Some(t) => {
            let at =
                parse_at(t, |w| m.mono_at_wall(w)).map_err(|e| CmdError::input(e.to_string()))?;
            pipetape_replayer::analysis::query::check_at(m, at, t)
                .map_err(|e| CmdError::input(e.to_string()))?;
            Some(at)
        }
        None => None,
    };
    let mut app = App::new(m, at);
    let mut term = ratatui::try_init()
        .map_err(|e| CmdError::input(format!("cannot set up the terminal: {e}")))?;
    let result = (|| -> std::io::Result<()> {
        while !app.quit {
            term.draw(|f| app.render(f))?;
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if let Some(key) = map(k.code, k.modifiers) {
                        app.key(key);
                    }
                }
                // A resize redraws at the new size on the next loop.
                _ => {}
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result.map_err(|e| CmdError::input(format!("terminal error: {e}")))?;
    Ok(0)
}
