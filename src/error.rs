//! The tool's own faults, as opposed to findings about the network.
//!
//! A dead host is data (a [`crate::model::Check`]); a bad profile, an unreadable CA file or an
//! unwritable output is an [`AppError`]: the run cannot mean anything, so it stops with exit 3 and
//! one line on stderr that names what was wrong.

use std::fmt;

#[derive(Debug)]
pub enum AppError {
    /// Command-line usage: an invalid flag value or combination.
    Usage(String),
    /// The profile could not be read or is invalid.
    Profile(String),
    /// Any other input the run depends on (CA file, resolver, storage path).
    Input(String),
    /// Writing the report or the history failed.
    Output(String),
    /// Another run holds the single-instance lock.
    Locked(String),
    /// A fault in the tool itself.
    Internal(String),
}

impl AppError {
    pub fn usage(msg: impl Into<String>) -> AppError {
        AppError::Usage(msg.into())
    }

    pub fn profile(path: &str, what: impl fmt::Display) -> AppError {
        AppError::Profile(format!("profile {path}: {what}"))
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (AppError::Usage(m)
        | AppError::Profile(m)
        | AppError::Input(m)
        | AppError::Output(m)
        | AppError::Locked(m)
        | AppError::Internal(m)) = self;
        // One line, always: messages from libraries sometimes carry newlines.
        f.write_str(&m.replace(['\n', '\r'], " "))
    }
}

impl std::error::Error for AppError {}

/// Exit codes, those of monitoring plugins (Nagios, Icinga, Sensu).
pub mod exit {
    /// Every check passed (skips allowed).
    pub const OK: i32 = 0;
    /// At least one warning, no failure.
    pub const WARN: i32 = 1;
    /// At least one failure.
    pub const FAIL: i32 = 2;
    /// The check itself could not run.
    pub const TOOL: i32 = 3;

    /// The exit code of a run whose worst status is `worst`.
    pub fn of(worst: crate::model::Status) -> i32 {
        match worst {
            crate::model::Status::Fail => FAIL,
            crate::model::Status::Warn => WARN,
            crate::model::Status::Pass | crate::model::Status::Skip => OK,
        }
    }
}
