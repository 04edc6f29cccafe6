//! Progress on stderr while probes run: "waiting for: api, sign-in (3 of 7 done)".
//!
//! A run takes a few seconds and up to `--deadline` on a bad network; without a sign of life a
//! person at a terminal presses Ctrl-C just before the answer. So while a person is watching
//! (stderr is a terminal and the format is human) one line on stderr names what is still
//! pending, rewritten in place and cleared before the report is printed. Never otherwise: a
//! cron mail, a pipe or a JSON consumer must not see control characters.
//!
//! `Progress` is a cheap handle (`Clone + Send + Sync`); the runner calls [`Progress::done`]
//! from any task as each endpoint finishes. The line appears only once the run has taken
//! [`SHOW_AFTER`] (a fast run should not flicker) and then ticks with the elapsed time, from a
//! small thread that ends with the run.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Runs shorter than this show no progress at all.
pub const SHOW_AFTER: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(250);

/// Whether progress should be shown: only to a person watching a human report.
pub fn wanted(human_format: bool) -> bool {
    human_format && std::io::stderr().is_terminal()
}

#[derive(Clone, Debug)]
pub struct Progress {
    inner: Option<Arc<Mutex<State>>>,
}

#[derive(Debug)]
struct State {
    pending: Vec<String>,
    total: usize,
    /// Whether a line is on screen and must be cleared.
    drawn: bool,
    /// Set once [`SHOW_AFTER`] has passed; before that nothing is drawn.
    visible: bool,
    finished: bool,
    width: usize,
    started: Instant,
}

impl Progress {
    /// `enabled` comes from [`wanted`]; a disabled `Progress` does nothing at all.
    pub fn new(enabled: bool, names: Vec<String>) -> Progress {
        if !enabled || names.is_empty() {
            return Progress { inner: None };
        }
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w >= 20)
            .unwrap_or(80);
        let state = State {
            total: names.len(),
            pending: names,
            drawn: false,
            visible: false,
            finished: false,
            width,
            started: Instant::now(),
        };
        let inner = Arc::new(Mutex::new(state));
        let weak = Arc::downgrade(&inner);
        // The ticker holds only a weak reference: it ends when the run's handles are gone.
        let _ = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || ticker(weak));
        Progress { inner: Some(inner) }
    }

    /// `name` has finished (its last stage recorded a check, or it was cut by the deadline).
    pub fn done(&self, name: &str) {
        self.update(|s| {
            if let Some(i) = s.pending.iter().position(|n| n == name) {
                s.pending.remove(i);
            }
        });
    }

    /// Clears the line. Call before printing the report; dropping the last handle does it too.
    pub fn finish(self) {
        if let Some(inner) = &self.inner {
            let mut s = lock(inner);
            clear(&mut s);
            s.finished = true;
        }
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        if let Some(inner) = &self.inner {
            let mut s = lock(inner);
            if !s.finished {
                change(&mut s);
                draw(&mut s);
            }
        }
    }
}

fn ticker(state: Weak<Mutex<State>>) {
    std::thread::sleep(SHOW_AFTER);
    loop {
        let Some(inner) = state.upgrade() else {
            return;
        };
        {
            let mut s = lock(&inner);
            if s.finished {
                return;
            }
            s.visible = true;
            draw(&mut s);
        }
        drop(inner);
        std::thread::sleep(TICK);
    }
}

fn draw(s: &mut State) {
    if !s.visible {
        return;
    }
    let elapsed = s.started.elapsed().as_secs_f64();
    let text = line(&s.pending, s.total, s.width.saturating_sub(8));
    let mut err = std::io::stderr().lock();
    // A failed write to a terminal is not worth stopping the run for.
    let _ = write!(err, "\r\x1b[2K{text} {elapsed:.1} s").and_then(|_| err.flush());
    s.drawn = true;
}

impl Drop for State {
    fn drop(&mut self) {
        clear(self);
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panicking task must not take the terminal's state with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn clear(s: &mut State) {
    if s.drawn {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K").and_then(|_| err.flush());
        s.drawn = false;
    }
}

/// The text of the line, cut to fit `width` columns so it never wraps (a wrapped line could not
/// be cleared with one carriage return).
fn line(pending: &[String], total: usize, width: usize) -> String {
    let done = total - pending.len();
    let tail = format!(" ({done} of {total} done)");
    if pending.is_empty() {
        return format!("finishing…{tail}");
    }
    let head = "waiting for: ";
    let room = width
        .saturating_sub(1)
        .saturating_sub(head.chars().count() + tail.chars().count());
    let mut names = String::new();
    for (i, n) in pending.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let more = pending.len() - i;
        let candidate = format!("{sep}{n}");
        let ellipsis_room = if more > 1 { 6 } else { 0 };
        if names.chars().count() + candidate.chars().count() + ellipsis_room > room {
            names.push_str(if i == 0 { "…" } else { ", …" });
            break;
        }
        names.push_str(&candidate);
    }
    format!("{head}{names}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn line_names_what_is_pending_and_fits() {
        assert_eq!(
            line(&names(&["api", "sign-in"]), 5, 80),
            "waiting for: api, sign-in (3 of 5 done)"
        );
        assert_eq!(line(&[], 2, 80), "finishing… (2 of 2 done)");
        let many: Vec<String> = (0..40).map(|i| format!("endpoint-{i}")).collect();
        let l = line(&many, 40, 60);
        assert!(l.chars().count() < 60, "{l}");
        assert!(l.contains(", …"), "{l}");
    }

    #[test]
    fn disabled_progress_is_inert_and_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Progress>();
        let p = Progress::new(false, names(&["api"]));
        p.done("api");
        p.clone().finish();
    }
}
