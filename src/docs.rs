//! Documentation generated from the command-line definition: shell completions and the man page.
//!
//! Generated rather than written so they can never disagree with `--help`: both come from the
//! same `clap` definition in `cli.rs`.

use crate::cli::Cli;
use crate::error::{AppError, exit};
use crate::files::write_stdout;
use clap::CommandFactory;

/// `bmw-netcheck completions <SHELL>`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<i32, AppError> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "bmw-netcheck", &mut buf);
    write_stdout(&buf);
    Ok(exit::OK)
}

/// `bmw-netcheck man`: the man page (roff) on stdout, e.g. `bmw-netcheck man > bmw-netcheck.1`.
pub fn man() -> Result<i32, AppError> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| AppError::Internal(format!("cannot render the man page ({e})")))?;
    write_stdout(&buf);
    Ok(exit::OK)
}
