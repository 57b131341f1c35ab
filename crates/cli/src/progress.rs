//! [`TerminalProgress`]: the engine's progress drawn as indicatif bars on stderr. Only the CLI draws
//! on the terminal; the engine reports through [`offerloop_engine::Progress`].

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use offerloop_engine::{Phase, PhaseProgress, Progress};

/// Draws a bar per phase (a spinner when the length is unknown) on stderr; indicatif hides them when
/// stderr is not a terminal.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalProgress;

impl TerminalProgress {
    /// Bars on a terminal, nothing otherwise.
    pub fn for_stderr() -> Arc<dyn Progress> {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Arc::new(Self)
        } else {
            Arc::new(offerloop_engine::Silent)
        }
    }
}

impl Progress for TerminalProgress {
    fn start(&self, phase: Phase, total: Option<u64>) -> Box<dyn PhaseProgress> {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        match total {
            Some(_) => {
                if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({elapsed})") {
                    bar.set_style(style.progress_chars("=> "));
                }
            }
            None => bar.enable_steady_tick(Duration::from_millis(120)),
        }
        bar.set_message(phase.label());
        Box::new(Bar(bar))
    }
}

/// One phase's bar, cleared when dropped.
struct Bar(ProgressBar);

impl PhaseProgress for Bar {
    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
