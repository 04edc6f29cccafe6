//! The `history` command: read the log, summarize its last runs, print them.

use super::store::{default_path, load};
use super::summary::{JsonHistory, human, summarize};
use crate::cli::{ExplainFormat, HistoryArgs};
use crate::error::{AppError, exit};

/// `bmw-netcheck history`: the last N runs, a trend line, endpoint trends and flapping checks.
pub fn command(args: &HistoryArgs) -> Result<i32, AppError> {
    let path = match &args.history {
        Some(p) => p.clone(),
        None => default_path().ok_or_else(|| {
            AppError::Input(
                "no state directory for this user (HOME unset?); name the log with --history FILE"
                    .into(),
            )
        })?,
    };
    let loaded = load(&path).map_err(|e| AppError::Input(format!("history: {e}")))?;
    const SHOWN_WARNINGS: usize = 5;
    for w in loaded.skipped.iter().take(SHOWN_WARNINGS) {
        eprintln!("bmw-netcheck: warning: {w}");
    }
    if loaded.skipped.len() > SHOWN_WARNINGS {
        eprintln!(
            "bmw-netcheck: warning: {} more lines of {} are not reports; skipped",
            loaded.skipped.len() - SHOWN_WARNINGS,
            path.display()
        );
    }
    let summary = summarize(&loaded.runs, args.last as usize, loaded.skipped.len());
    let text = match args.format {
        ExplainFormat::Json => {
            let mut v = serde_json::to_vec_pretty(&JsonHistory {
                file: path.display().to_string(),
                summary: &summary,
            })
            .map_err(|e| AppError::Internal(format!("cannot encode the history ({e})")))?;
            v.push(b'\n');
            v
        }
        ExplainFormat::Human => {
            crate::term::decide_color(args.color, false);
            human(&summary, &path).into_bytes()
        }
    };
    crate::files::write_stdout(&text);
    Ok(exit::OK)
}
