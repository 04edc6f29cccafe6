//! The one integration-test binary: every file under `tests/all/` is a module of it, so the
//! fixtures and the tool's binary are built once. Add a test module with one `mod` line.

mod bad_input;
mod engine;
mod faults;
mod history;
mod netns;
mod reports;
mod scenarios;
mod schema;
mod show;
mod support;
mod uplinks;
mod watch;
