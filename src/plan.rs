//! What the command line asks for, resolved once before anything runs: the profile and the
//! probes selected, how the probes are set ([`Probing`]), how a run starts ([`Start`]), and
//! where its report goes ([`Delivery`], [`Record`]). The parts below take these plans, never
//! clap's `RunArgs`, so none of them needs to know the command line.

use crate::cli::RunArgs;
use crate::error::AppError;
use crate::model::Probe;
use crate::profile::{self, Profile};
use crate::report::Format;
use crate::resolverurl::{ControlSetting, DnsServer};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// How the probes are set: the step timeout, the latency samples, the resolver asked.
#[derive(Debug, Clone)]
pub struct Probing {
    pub timeout: Duration,
    pub samples: u32,
    pub resolver: Option<DnsServer>,
    /// `--control`; the profile's `control` key when absent.
    pub control: Option<ControlSetting>,
    /// `--proxy` and `--pac`: where the proxy settings come from.
    pub proxy: crate::proxysettings::ProxyFlag,
    pub pac: Option<String>,
}

impl Probing {
    pub fn of(args: &RunArgs) -> Probing {
        Probing {
            timeout: args.timeout,
            samples: args.samples,
            resolver: args.resolver.clone(),
            control: args.control.clone(),
            proxy: args.proxy.clone(),
            pac: args.pac.clone(),
        }
    }

    /// The resolver as the dns checks name it: `system`, or as given with `--resolver`.
    pub fn resolver_label(&self) -> String {
        self.resolver
            .as_ref()
            .map_or_else(|| "system".to_owned(), DnsServer::to_string)
    }
}

/// How a scheduled run starts: the single-instance lock (beside `--history` when that is
/// given) and the start jitter.
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub lock: bool,
    pub history: Option<PathBuf>,
    pub jitter: Option<Duration>,
}

impl Start {
    pub fn of(args: &RunArgs) -> Start {
        Start {
            lock: args.lock,
            history: args.history.clone(),
            jitter: args.jitter,
        }
    }
}

/// Where a finished run is recorded: the history log named, the default one, or none.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub history: Option<PathBuf>,
    pub disabled: bool,
}

impl Record {
    pub fn of(args: &RunArgs) -> Record {
        Record {
            history: args.history.clone(),
            disabled: args.no_history,
        }
    }
}

/// Where and how a finished report goes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub format: Format,
    pub output: Option<PathBuf>,
    /// Nothing on stdout when every check passed (`--quiet`).
    pub quiet: bool,
    /// Markdown keeps host names, user names and private addresses (`--no-redact`).
    pub no_redact: bool,
    /// The human report's width (a terminal's) and whether it lists every check (`-v`).
    pub layout: crate::report::human::Layout,
    /// `--no-redact` / `--redact`: which personal details the report keeps.
    pub redaction: Redaction,
    pub record: Record,
}

/// Which personal details a rendered report loses beyond credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redaction {
    /// `--no-redact`: Markdown keeps them.
    pub no_redact: bool,
    /// `--redact`: every format loses them, JSON included.
    pub redact: bool,
}

impl Delivery {
    pub fn of(args: &RunArgs) -> Delivery {
        Delivery {
            format: args.format,
            output: args.output.clone(),
            quiet: args.quiet,
            no_redact: args.no_redact,
            redaction: Redaction {
                no_redact: args.no_redact,
                redact: args.redact,
            },
            layout: crate::report::human::Layout {
                width: crate::term::width(args.output.is_some()),
                verbose: args.verbose,
            },
            record: Record::of(args),
        }
    }
}

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
    .and_then(|mut p| {
        // Flag over file over default: `--egress` asks, `--stun` names the servers.
        p.egress.enabled |= args.egress;
        if !args.stun.is_empty() {
            p.egress.stun = crate::request::stun_servers(&args.stun)
                .map_err(|e| AppError::usage(format!("--stun: {e}")))?;
        }
        Ok(p)
    })
}

/// The probes of a run with this profile: the public-address check (`egress`) asks a server
/// on the Internet, so it runs only when asked for (`--egress`, `[egress] enabled = true`, or
/// by name with `--only`).
pub fn selection_for(args: &RunArgs, profile: &Profile) -> Selection {
    let mut sel = selection(args);
    let named = sel
        .only
        .as_ref()
        .is_some_and(|o| o.contains(&crate::model::Probe::Egress));
    if !profile.egress.enabled && !named {
        sel.skip.insert(crate::model::Probe::Egress);
    }
    sel
}

/// Which probes run and which are reported.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Option<BTreeSet<Probe>>,
    pub skip: BTreeSet<Probe>,
}

impl Selection {
    /// Is this probe's result part of the report?
    pub fn reported(&self, p: Probe) -> bool {
        !self.skip.contains(&p) && self.only.as_ref().is_none_or(|o| o.contains(&p))
    }

    /// Does this stage run? A stage left out with `--skip` does not, and neither do those that
    /// need it; with `--only`, the stages a chosen one needs run without being reported.
    pub fn runs(&self, p: Probe) -> bool {
        if self.skip.contains(&p) {
            return false;
        }
        match &self.only {
            None => true,
            Some(only) => {
                only.contains(&p)
                    || Probe::all()
                        .iter()
                        .any(|later| only.contains(later) && later.needs().contains(&p))
            }
        }
    }
}

pub fn selection(args: &RunArgs) -> Selection {
    Selection {
        only: args.only_set(),
        skip: args.skip.iter().copied().collect(),
    }
}

/// Where a finished run's metrics are pushed (`--push`), as which instance, and the times the
/// push's share of the deadline is taken from.
#[derive(Debug, Clone)]
pub struct PushTo {
    pub base: Option<String>,
    pub instance: Option<String>,
    pub timeout: Duration,
    pub deadline: Duration,
}

impl PushTo {
    pub fn of(args: &RunArgs) -> PushTo {
        PushTo {
            base: args.push.clone(),
            instance: args.instance.clone(),
            timeout: args.timeout,
            deadline: args.deadline,
        }
    }
}

/// What a run checks: the built-in set of `--region` and `--service` or the `--profile` file,
/// the extra roots of `--ca-file` and the paths the storage probe looks at.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub region: String,
    pub profile: Option<PathBuf>,
    pub service: Option<crate::cli::Service>,
    pub ca_file: Option<PathBuf>,
    pub storage_paths: Vec<PathBuf>,
    /// `--egress` and its `--stun` servers, as given (a child run is told them again).
    pub egress: bool,
    pub stun: Vec<String>,
}

impl Scope {
    pub fn of(args: &RunArgs) -> Scope {
        Scope {
            region: args.region.clone(),
            profile: args.profile.clone(),
            service: args.service,
            ca_file: args.ca_file.clone(),
            storage_paths: args.storage_path.clone(),
            egress: args.egress,
            stun: args.stun.clone(),
        }
    }
}

/// The links a run goes over: the system's routing (none named), the interfaces of
/// `--interface`, or every uplink that is up (`--via all`).
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub interfaces: Vec<String>,
    pub every_uplink: bool,
}

impl Links {
    pub fn of(args: &RunArgs) -> Links {
        Links {
            interfaces: args.interface.clone(),
            every_uplink: args.via.is_some(),
        }
    }
}

/// All that a run started as a child of this binary is told (`crate::child`): what it checks,
/// how, within which deadline, over which links, and where it is recorded.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scope: Scope,
    pub selection: Selection,
    pub probing: Probing,
    pub deadline: Duration,
    pub links: Links,
    pub record: Record,
}

impl Plan {
    pub fn of(args: &RunArgs) -> Plan {
        Plan {
            scope: Scope::of(args),
            selection: selection(args),
            probing: Probing::of(args),
            deadline: args.deadline,
            links: Links::of(args),
            record: Record::of(args),
        }
    }
}
