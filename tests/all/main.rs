//! The one integration-test binary: every file under `tests/all/` is a module of it, so the
//! fixtures and the tool's binary are built once. Add a test module with one `mod` line.

// Scenario scripts, long on purpose; the 80-line rule is for src/.
#![allow(clippy::too_many_lines)]

mod bad_input;
mod bmw_facts;
mod children;
mod egress;
mod engine;
mod faults;
mod fleet;
mod history;
mod hostile;
mod layers;
mod netns;
mod packaging;
mod realbump;
mod realcontrol;
mod realdns;
mod realfirewall;
mod realpac;
mod realpath;
mod realproxy;
mod realrpz;
mod realtls;
mod realvpn;
mod registry;
mod reports;
mod resolvers;
mod scenarios;
mod schema;
mod show;
mod snapshots;
mod support;
mod uplinks;
mod watch;
