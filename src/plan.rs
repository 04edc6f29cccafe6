//! What the command line asks for, resolved before anything runs: the profile and the probes
//! selected.

use crate::cli::RunArgs;
use crate::error::AppError;
use crate::profile::{self, Profile};
use crate::runner::Selection;

/// The profile of this run: the file of `--profile`, or the built-in set of `--region` and
/// `--service`. `--service` names a built-in set, so it cannot be combined with `--profile`
/// (which replaces the built-in sets): the run would not check what the user asked for.
pub fn load_profile(args: &RunArgs) -> Result<Profile, AppError> {
    match (&args.profile, args.service) {
        (Some(_), Some(_)) => Err(AppError::usage(
            "--service chooses a built-in endpoint set and --profile replaces the built-in sets: use one or the other",
        )),
        (Some(path), None) => profile::load(path),
        (None, service) => {
            profile::builtin_set(&args.region, service == Some(crate::cli::Service::Cardata))
        }
    }
}

pub fn selection(args: &RunArgs) -> Selection {
    Selection {
        only: args.only_set(),
        skip: args.skip.iter().copied().collect(),
    }
}
