//! bmw-netcheck's engine: why can't the My BMW app connect, from this device?
//!
//! The library holds everything the binary does — the profile, the runner and its probes, the
//! diagnosis, the reports and the model they share — so that the binary (`main.rs`) is only
//! argument parsing and exit codes, and so that the integration tests and the benchmarks use
//! the same constants and fixtures the tool uses instead of copies of them.
//!
//! The layers, from the ground up (a module uses only those below it; `tests/all/layers.rs`
//! fails on an import circle and on a command importing another):
//! - [`model`], [`error`], [`sanitize`], [`redact`], [`files`], [`term`], [`runtime`],
//!   [`platform`]: the shared vocabulary, the tool's own utilities and what only the OS can tell;
//! - [`profile`], [`knowledge`], [`probe`] with its [`probe::registry`]: what is checked and how;
//! - [`plan`]: the command line resolved once into what each part needs;
//! - [`runner`], [`crosscheck`], [`diagnose`], [`engine`]: one run, and what it means;
//!   [`child`]: a run as a child process of this binary (for `watch` and a run per uplink);
//! - [`report`], [`output`]: the formats a report is rendered in, and its delivery;
//! - the commands ([`run`], [`list`], [`explain`], [`history`], [`serve`], [`watch`], [`show`],
//!   [`schema`], [`docs`]), each of which stands alone.

pub mod child;
pub mod cli;
pub mod crosscheck;
pub mod diagnose;
pub mod docs;
pub mod engine;
pub mod error;
pub mod explain;
pub mod files;
#[cfg(test)]
mod fuzz;
pub mod history;
pub mod hostname;
pub mod iface;
pub mod inspection;
pub mod instance;
pub mod interceptors;
pub mod knowledge;
pub mod list;
pub mod lock;
pub mod model;
pub mod output;
pub mod pac;
pub mod plan;
pub mod platform;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod proxypath;
pub mod proxysettings;
pub mod push;
pub mod redact;
pub mod report;
pub mod request;
pub mod resolverurl;
pub mod run;
pub mod runner;
pub mod runtime;
pub mod safefile;
pub mod sanitize;
pub mod schema;
pub mod serve;
pub mod sharedconn;
pub mod show;
pub mod term;
pub mod uplinks;
pub mod watch;

use error::AppError;

/// Runs one parsed command line and returns its exit code (0 pass, 1 warn, 2 fail), or the
/// error that stopped the tool itself (exit 3).
pub fn dispatch(cli: cli::Cli) -> Result<i32, AppError> {
    match cli.command {
        None => run::run(&cli.run),
        Some(cli::Command::Run(args)) => run::run(&args),
        Some(cli::Command::List(args)) => list::run(&args),
        Some(cli::Command::Explain {
            suspect,
            format,
            color,
        }) => {
            term::decide_color(color, false);
            explain::run(suspect.as_deref(), format)
        }
        Some(cli::Command::History(args)) => history::command(&args),
        Some(cli::Command::Completions { shell }) => docs::completions(shell),
        Some(cli::Command::Man) => docs::man(),
        Some(cli::Command::Serve(args)) => serve::command(&args),
        Some(cli::Command::Watch(args)) => watch::run(&args),
        Some(cli::Command::Schema) => schema::run(),
        Some(cli::Command::Show(args)) => show::run(&args),
    }
}

/// An error message as the one line stderr gets: whatever it quotes (a path, an environment
/// value, a line of a profile) has its secrets removed and its control characters made visible.
pub fn one_line(message: &str) -> String {
    sanitize::outside_capped(&redact::redact_credentials(message).0, 1024)
}
