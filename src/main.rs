//! bmw-netcheck: why can't the My BMW app connect, from this device?
//!
//! The binary is thin glue: parse the command line, dispatch, and map every outcome to one exit
//! code in one place (0 pass, 1 warn, 2 fail, 3 the tool could not run).

mod cli;
mod crosscheck;
mod diagnose;
mod docs;
mod error;
mod explain;
#[cfg(test)]
mod fuzz;
mod history;
mod iface;
mod instance;
mod interceptors;
mod knowledge;
mod list;
mod lock;
mod model;
mod output;
mod probe;
mod profile;
mod progress;
mod push;
mod redact;
mod report;
mod run;
mod runner;
mod safefile;
mod sanitize;
mod schema;
mod serve;
mod show;
mod uplinks;
mod watch;

use clap::Parser;
use clap::error::ErrorKind;
use error::{AppError, exit};

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    exit::OK
                }
                _ => {
                    // clap's message spans several lines; the contract wants one.
                    let text = e.to_string();
                    let first = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid usage")
                        .trim_start_matches("error: ");
                    eprintln!("bmw-netcheck: error: {} (see --help)", one_line(first));
                    exit::TOOL
                }
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bmw-netcheck: error: {}", one_line(&e.to_string()));
            exit::TOOL
        }
    }
}

/// An error message as the one line stderr gets: whatever it quotes (a path, an environment
/// value, a line of a profile) has its secrets removed and its control characters made visible.
fn one_line(message: &str) -> String {
    sanitize::outside_capped(&redact::redact_credentials(message).0, 1024)
}

fn dispatch(cli: cli::Cli) -> Result<i32, AppError> {
    match cli.command {
        None => run::run(&cli.run),
        Some(cli::Command::Run(args)) => run::run(&args),
        Some(cli::Command::List(args)) => list::run(&args),
        Some(cli::Command::Explain { suspect, format }) => explain::run(suspect.as_deref(), format),
        Some(cli::Command::History(args)) => history::command(&args),
        Some(cli::Command::Completions { shell }) => docs::completions(shell),
        Some(cli::Command::Man) => docs::man(),
        Some(cli::Command::Serve(args)) => serve::command(&args),
        Some(cli::Command::Watch(args)) => watch::run(&args),
        Some(cli::Command::Schema) => schema::run(),
        Some(cli::Command::Show(args)) => show::run(&args),
    }
}
