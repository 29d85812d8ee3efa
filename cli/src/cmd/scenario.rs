//! `pipetape scenario`: list the bundled scenarios and write one as a run log, so every replay
//! command can be tried without a cluster.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use pipetape_testkit::scenario::{bundled, BUNDLED};

use super::{CmdError, CmdResult, Ctx};
use crate::output::{self, Out};

#[derive(Debug, Subcommand)]
pub enum ScenarioCmd {
    /// List the bundled scenarios.
    List,
    /// Write a bundled scenario as a .ptape run log.
    Write(WriteArgs),
}

#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Scenario name (see `pipetape scenario list`).
    name: String,
    /// Where to write the .ptape file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Also import the run into the store.
    #[arg(long)]
    import: bool,
}

pub fn run(ctx: &Ctx, cmd: ScenarioCmd) -> CmdResult {
    match cmd {
        ScenarioCmd::List => {
            let rows: Vec<Vec<String>> = BUNDLED
                .iter()
                .map(|b| vec![b.name.to_string(), b.description.to_string()])
                .collect();
            let mut out = Out::new();
            out.write_all(output::table(&["NAME", "DESCRIPTION"], &rows).as_bytes())?;
            out.flush()?;
            Ok(0)
        }
        ScenarioCmd::Write(a) => {
            let Some(s) = bundled(&a.name) else {
                let names: Vec<&str> = BUNDLED.iter().map(|b| b.name).collect();
                return Err(CmdError::input(format!(
                    "no scenario '{}'; choose one of: {}",
                    a.name,
                    names.join(", ")
                )));
            };
            if a.output.exists() {
                return Err(CmdError::input(format!(
                    "{}: already exists; remove it or choose another path",
                    a.output.display()
                )));
            }
            let id = s.write(&a.output).map_err(CmdError::from)?;
            if a.import {
                ctx.store()?.import(&a.output)?;
            }
            if !ctx.quiet {
                crate::say!(
                    "Wrote scenario {} as run {id} to {}{}",
                    s.name,
                    a.output.display(),
                    if a.import { " (imported)" } else { "" }
                );
            }
            Ok(0)
        }
    }
}
