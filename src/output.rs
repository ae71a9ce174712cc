//! Standard output: results and JSON events. A reader that goes away (`status | head -1`) is not
//! an error: the rest of the output is dropped and the command finishes as it would have.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `text` and a newline to stdout, unless the reader has gone.
pub fn line(text: &str) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
    if let Err(e) = written {
        // A closed pipe, or stdout gone some other way: nobody reads what follows.
        tracing::debug!("stdout: {e}");
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Write a JSON value on one line.
pub fn json(value: &serde_json::Value) {
    line(&value.to_string());
}

/// Has the reader gone?
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}
