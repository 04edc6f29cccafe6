//! storage: free space on the filesystems that hold the given paths.
//!
//! Low storage makes apps crash at start or sign-in, so it is part of "why doesn't it connect".
//! We ask the kernel about the filesystem that holds each path (statvfs), which is exact for
//! tmpfs, overlay and network mounts alike — a disk list would hide some of them. Paths on the
//! same filesystem are reported once.

use crate::model::{Check, Probe, Status, ms};
use crate::probe::definition::{
    By, Definition, DeviceFuture, DeviceInput, Key, Metric, Perf, Prometheus, Run, Scale,
};
use crate::profile::Thresholds;
use std::path::PathBuf;
use std::time::Instant;

/// The storage probe as the registry ([`crate::probe::registry`]) lists it.
pub const DEFINITION: Definition = Definition {
    probe: Probe::Storage,
    name: "storage",
    description: "free space on the filesystems the app and the tool write to",
    codes: &[
        "storage.ok",
        "storage.low",
        "storage.error",
        "storage.timeout",
        "storage.skipped",
    ],
    keys: &[
        Key::scalar("path"),
        Key::scalar("free_bytes"),
        Key::scalar("total_bytes"),
    ],
    metrics: &[
        Metric {
            key: "free_bytes",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_storage_free_bytes",
                help: "Free space on the filesystem holding each checked path, in bytes.",
                scale: Scale::Plain,
                by: By::Path,
            },
            nagios: Perf::None,
        },
        Metric {
            key: "total_bytes",
            prometheus: Prometheus::Gauge {
                family: "bmw_netcheck_storage_total_bytes",
                help: "Size of the filesystem holding each checked path, in bytes.",
                scale: Scale::Plain,
                by: By::Path,
            },
            nagios: Perf::None,
        },
    ],
    needs: &[],
    run: Run::Device(start),
};

/// Starts the look: statvfs on a hung network mount blocks, so it runs off the async workers.
fn start(input: std::sync::Arc<DeviceInput>) -> DeviceFuture {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || run(&input.storage_paths, &input.profile.thresholds))
            .await
            .unwrap_or_default()
    })
}

/// The default paths: the home directory (where apps keep their data) and the temp directory.
pub fn default_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        paths.push(PathBuf::from(home));
    } else if let Some(profile) = std::env::var_os("USERPROFILE").filter(|h| !h.is_empty()) {
        paths.push(PathBuf::from(profile));
    }
    paths.push(std::env::temp_dir());
    paths
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Judges free space against the thresholds.
pub fn judge(free: u64, t: &Thresholds) -> (Status, &'static str) {
    if free < t.storage_fail_bytes {
        (Status::Fail, "storage.low")
    } else if free < t.storage_warn_bytes {
        (Status::Warn, "storage.low")
    } else {
        (Status::Pass, "storage.ok")
    }
}

/// Checks every path; blocking (statvfs on a hung network mount can block), so the runner calls
/// it on a blocking thread and bounds it by the deadline.
pub fn run(paths: &[PathBuf], t: &Thresholds) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut seen = Vec::new();
    for path in paths {
        let started = Instant::now();
        // A path from the command line or the environment: outside text like any other.
        let shown = crate::sanitize::outside(&path.display().to_string());
        match crate::platform::fs::space(path) {
            Ok((free, total, fsid)) => {
                if seen.contains(&(fsid, total)) {
                    continue;
                }
                seen.push((fsid, total));
                let (status, code) = judge(free, t);
                let pct = if total > 0 {
                    free as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                let summary = match code {
                    "storage.ok" => format!(
                        "{} free of {} ({pct:.0}%) on the filesystem of {shown}",
                        human_bytes(free),
                        human_bytes(total)
                    ),
                    _ => format!(
                        "only {} free of {} on the filesystem of {shown} (below {})",
                        human_bytes(free),
                        human_bytes(total),
                        human_bytes(if status == Status::Fail {
                            t.storage_fail_bytes
                        } else {
                            t.storage_warn_bytes
                        })
                    ),
                };
                checks.push(
                    Check::new(Probe::Storage, None, status, code, summary)
                        .took(started.elapsed())
                        .with("path", shown)
                        .with("free_bytes", free)
                        .with("total_bytes", total)
                        .with("free_pct", (pct * 10.0).round() / 10.0)
                        .with("measure_ms", ms(started.elapsed())),
                );
            }
            Err(e) => checks.push(
                Check::new(
                    Probe::Storage,
                    None,
                    Status::Warn,
                    "storage.error",
                    format!("cannot measure free space of {shown}: {e}"),
                )
                .took(started.elapsed())
                .with("path", shown)
                .with("free_bytes", serde_json::Value::Null)
                .with("total_bytes", serde_json::Value::Null),
            ),
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let t = Thresholds::default();
        assert_eq!(judge(10 << 30, &t), (Status::Pass, "storage.ok"));
        assert_eq!(judge(500 << 20, &t), (Status::Warn, "storage.low"));
        assert_eq!(judge(100 << 20, &t), (Status::Fail, "storage.low"));
    }

    #[test]
    fn measures_a_real_filesystem_once() {
        let dir = std::env::temp_dir();
        let checks = run(&[dir.clone(), dir], &Thresholds::default());
        assert_eq!(checks.len(), 1);
        let c = &checks[0];
        assert!(c.data["total_bytes"].as_u64().unwrap_or(0) > 0);
        assert!(
            c.data["free_bytes"].as_u64().unwrap_or(u64::MAX)
                <= c.data["total_bytes"].as_u64().unwrap_or(0)
        );
    }

    #[test]
    fn bytes_for_humans() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
