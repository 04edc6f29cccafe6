//! bmw-netcheck: why can't the My BMW app connect, from this device?
//!
//! The binary is thin glue: parse the command line, dispatch, and map every outcome to one exit
//! code in one place (0 pass, 1 warn, 2 fail, 3 the tool could not run).

mod cli;
mod diagnose;
mod docs;
mod error;
mod explain;
#[cfg(test)]
mod fuzz;
mod history;
mod iface;
mod knowledge;
mod list;
mod lock;
mod model;
mod output;
mod probe;
mod profile;
mod progress;
mod redact;
mod report;
mod run;
mod runner;
mod sanitize;
mod schema;
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
                    eprintln!("bmw-netcheck: error: {first} (see --help)");
                    exit::TOOL
                }
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bmw-netcheck: error: {e}");
            exit::TOOL
        }
    }
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
        Some(cli::Command::Watch(args)) => watch::run(&args),
        Some(cli::Command::Schema) => schema::run(),
        Some(cli::Command::Show(args)) => show::run(&args),
    }
}
