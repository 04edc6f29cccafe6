//! bmw-netcheck: why can't the My BMW app connect, from this device?
//!
//! The binary is thin glue: parse the command line, hand it to the library
//! ([`bmw_netcheck::dispatch`]), and map every outcome to one exit code in one place (0 pass,
//! 1 warn, 2 fail, 3 the tool could not run).

use bmw_netcheck::error::exit;
use bmw_netcheck::{cli, dispatch, one_line};
use clap::Parser;
use clap::error::ErrorKind;

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
                    eprintln!("bmw-netcheck: error: {}", one_line(&cli::usage_line(&e)));
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
