//! What the user sees while a command runs: one line per resource.
//!
//! On a terminal, indicatif spinners (on stderr); off a terminal, plain timestamped lines (on
//! stderr); with `--output json`, JSON events on stdout and nothing else.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    /// Nothing shown (internal checks).
    Hidden,
}

impl Mode {
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

struct Shared {
    mode: Mode,
    multi: MultiProgress,
    started: Instant,
    width: usize,
}

#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
}

impl Progress {
    pub fn new(mode: Mode, names: &[String]) -> Progress {
        let multi = MultiProgress::with_draw_target(if mode == Mode::Tty {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        let width = names.iter().map(|n| n.len()).max().unwrap_or(10).max(10);
        Progress { shared: Arc::new(Shared { mode, multi, started: Instant::now(), width }) }
    }

    /// Progress that shows nothing.
    pub fn hidden() -> Progress {
        Progress::new(Mode::Hidden, &[])
    }

    /// A line for one resource, shown as queued until it starts.
    pub fn line(&self, name: &str) -> Line {
        let bar = (self.shared.mode == Mode::Tty).then(|| {
            let bar = self.shared.multi.add(ProgressBar::new_spinner());
            bar.set_style(self.style(false));
            bar.set_prefix(name.to_string());
            bar.set_message("queued");
            bar
        });
        Line {
            inner: Some(Arc::new(LineInner {
                name: name.to_string(),
                bar,
                shared: self.shared.clone(),
                state: Mutex::new(LineState { started: None, last: String::new() }),
            })),
        }
    }

    /// Queued lines show no clock; started ones tick their own elapsed time (frozen when done).
    fn style(&self, clock: bool) -> ProgressStyle {
        let clock = if clock { "  {secs:.dim}" } else { "" };
        ProgressStyle::with_template(&format!("{{spinner:.cyan}} {{prefix:<{}}} {{msg}}{clock}", self.shared.width))
            .expect("valid template")
            .with_key("secs", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            })
            .tick_strings(&["◐", "◓", "◑", "◒", "●"])
    }

    /// Print a message above the progress lines (or plainly).
    pub fn note(&self, message: &str) {
        match self.shared.mode {
            Mode::Tty => self.shared.multi.suspend(|| eprintln!("{message}")),
            Mode::Plain => eprintln!("{message}"),
            Mode::Json => crate::output::json(&serde_json::json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "event": "note",
                "message": message,
            })),
            Mode::Hidden => {}
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Stop drawing; the finished lines stay on screen as the run's record.
    pub fn finish(&self) {}
}

struct LineState {
    started: Option<Instant>,
    last: String,
}

struct LineInner {
    name: String,
    bar: Option<ProgressBar>,
    shared: Arc<Shared>,
    state: Mutex<LineState>,
}

/// One resource's line. Cheap to clone; `Line::hidden()` prints nothing.
#[derive(Clone)]
pub struct Line {
    inner: Option<Arc<LineInner>>,
}

impl Line {
    pub fn hidden() -> Line {
        Line { inner: None }
    }

    /// The resource's work began (`creating`, `deleting`, `checking`).
    pub fn start(&self, phase: &str) {
        if let Some(inner) = &self.inner {
            let first = {
                let mut state = inner.state.lock().expect("line lock");
                let first = state.started.is_none();
                state.started.get_or_insert_with(Instant::now);
                first
            };
            if let (Some(bar), true) = (&inner.bar, first) {
                bar.set_style(Progress { shared: inner.shared.clone() }.style(true));
                bar.reset_elapsed();
                bar.enable_steady_tick(Duration::from_millis(120));
            }
        }
        self.emit(phase, "");
    }

    /// Waiting on AWS; `aws_state` is what AWS reports (`pending`, `provisioning`, `draining`...).
    pub fn waiting(&self, aws_state: &str) {
        self.emit("waiting", aws_state);
    }

    /// Finished: `ready`, `exists`, `deleted`, `gone`...
    pub fn done(&self, phase: &str, detail: &str) {
        self.emit(phase, detail);
        if let Some(bar) = self.inner.as_ref().and_then(|i| i.bar.as_ref()) {
            bar.finish();
        }
    }

    pub fn failed(&self, error: &str) {
        self.emit("FAILED", error);
        if let Some(bar) = self.inner.as_ref().and_then(|i| i.bar.as_ref()) {
            bar.abandon();
        }
    }

    pub fn skipped(&self, reason: &str) {
        self.done("skipped", reason);
    }

    /// Another line of the same run (a wait's detail, e.g. the deployment it watches); hidden if
    /// this one is.
    pub fn sibling(&self, name: &str) -> Line {
        match &self.inner {
            Some(inner) => Progress { shared: inner.shared.clone() }.line(name),
            None => Line::hidden(),
        }
    }

    /// A JSON event of its own (`deploy_phase`), written only with `--output json`; `event` holds
    /// its fields but the schema version.
    pub fn event(&self, event: serde_json::Value) {
        let Some(inner) = &self.inner else { return };
        if inner.shared.mode != Mode::Json {
            return;
        }
        let mut out = serde_json::json!({ "schema_version": crate::report::SCHEMA_VERSION });
        if let (Some(out), serde_json::Value::Object(fields)) = (out.as_object_mut(), event) {
            out.extend(fields);
        }
        crate::output::json(&out);
    }

    fn emit(&self, phase: &str, detail: &str) {
        let Some(inner) = &self.inner else { return };
        let elapsed = {
            let mut state = inner.state.lock().expect("line lock");
            let key = format!("{phase}\u{0}{detail}");
            if state.last == key {
                return;
            }
            state.last = key;
            state.started.map(|s| s.elapsed()).unwrap_or_default()
        };
        let text = if detail.is_empty() { phase.to_string() } else { format!("{phase} ({detail})") };
        match inner.shared.mode {
            Mode::Tty => {
                if let Some(bar) = &inner.bar {
                    bar.set_message(text);
                }
            }
            Mode::Plain => eprintln!(
                "[{:>6.1}s] {:<width$} {text}",
                inner.shared.started.elapsed().as_secs_f64(),
                inner.name,
                width = inner.shared.width
            ),
            Mode::Json => crate::output::json(&serde_json::json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "event": "resource",
                "resource": inner.name,
                "phase": phase,
                "detail": detail,
                "elapsed_ms": elapsed.as_millis() as u64,
                "t_ms": inner.shared.started.elapsed().as_millis() as u64,
            })),
            Mode::Hidden => {}
        }
    }
}
