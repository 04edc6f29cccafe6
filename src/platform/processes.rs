//! Which program holds a tunnel interface, and which programs run: how a VPN's software is named
//! from evidence rather than guessed from the interface's name.
//!
//! On Linux a TUN device is an open file of the program that drives it, and the kernel names the
//! interface in that file's `/proc/<pid>/fdinfo` (`iff:\ttun0`): that process is the tunnel's
//! owner. Reading other users' processes needs the rights a VPN daemon runs with (root); where
//! they are missing, or on other systems, the owner is unknown and the running programs' names
//! (sysinfo) are the next clue.

/// The name of the program that drives the TUN interface `iface`, where the system says.
#[cfg(target_os = "linux")]
pub fn tunnel_owner(iface: &str) -> Option<String> {
    let wanted = format!("iff:\t{iface}\n");
    // Interface names are per network namespace: only a program in this one can hold ours.
    let here = std::fs::read_link("/proc/self/ns/net").ok()?;
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let pid = entry.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
            || std::fs::read_link(entry.path().join("ns/net")).ok() != Some(here.clone())
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        // Only the TUN device's descriptors are read further (a link, then one small file).
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t == std::path::Path::new("/dev/net/tun"))
                && std::fs::read_to_string(entry.path().join("fdinfo").join(fd.file_name()))
                    .is_ok_and(|info| info.contains(&wanted))
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            return Some(comm.trim().to_owned());
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
pub fn tunnel_owner(iface: &str) -> Option<String> {
    let _ = iface;
    None
}

/// The names of the programs running on this device (lowercased, deduplicated, sorted).
pub fn running() -> Vec<String> {
    let Ok(mut sys) = sysinfo::System::new() else {
        return Vec::new();
    };
    sys.refresh_processes(sysinfo::ProcessesToUpdate::All, true);
    let mut names: Vec<String> = sys
        .processes()
        .values()
        .map(|p| p.name().to_string_lossy().to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names
}
