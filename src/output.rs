//! Standard output: results and JSON events. A reader that goes away (`status | head -1`) is not
//! an error: the rest of the output is dropped and the command finishes as it would have.

use std::borrow::Cow;
use std::fmt::Write as _;
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

/// `text` from elsewhere (a container's output) made safe to print as text: control characters (C0
/// but tab, DEL, C1) and the bidirectional formatting characters are written as escapes (`\x1b`, `\r`,
/// `\n`, `\u{9b}`, `\u{202e}`) instead of being sent to the terminal, where they could move the cursor,
/// clear the screen, set the window title, rewrite a line or start one that looks like another event.
/// Backslashes stay as they are: a message that spells `\x1b` looks like an escaped one, but cannot
/// act on the terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !needs_escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent_and_the_rest_is_left_alone() {
        assert!(matches!(printable("GET /a 200\ttook 3 ms, 10€ \\x1b"), Cow::Borrowed(_)));
        for (raw, shown) in [
            ("\u{1b}]0;owned\u{7}", "\\x1b]0;owned\\x07"),
            ("\u{1b}[2J\u{1b}[H", "\\x1b[2J\\x1b[H"),
            ("ok\rFAKE", "ok\\rFAKE"),
            ("one\ntwo", "one\\ntwo"),
            ("\u{0}\u{8}\u{7f}", "\\x00\\x08\\x7f"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
        ] {
            assert_eq!(printable(raw), shown, "{raw:?}");
        }
    }
}
