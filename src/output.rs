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

/// Has the reader gone, even though nothing was written since (`logs -f | head -1` while nothing new
/// is logged)? poll(2) reports the write end of a pipe whose reader closed it as POLLERR (POLLHUP
/// for a socket); a terminal or a file never is.
pub fn reader_gone() -> bool {
    if closed() {
        return true;
    }
    #[cfg(unix)]
    {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let stdout = std::io::stdout();
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
        let gone = PollFlags::POLLERR | PollFlags::POLLHUP;
        if poll(&mut fds, PollTimeout::ZERO).is_ok() && fds[0].revents().is_some_and(|r| r.intersects(gone)) {
            CLOSED.store(true, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Returns once the reader has gone; checked a few times a second.
pub async fn gone() {
    while !reader_gone() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
