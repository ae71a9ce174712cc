//! `logs`: the service's log events from CloudWatch Logs, oldest first, one line each:
//! `time  task-id  message`. The task definition sends the container's output to the stack's log
//! group with the stream prefix `<stack>`, so ECS names the streams `<stack>/app/<task-id>`. That
//! output is whatever the container wrote: text shows its control characters escaped
//! ([`output::printable`]), `--output json` gives it byte for byte.
//!
//! `--follow` polls FilterLogEvents about every 2 s. Each poll re-reads a window before the newest
//! event seen, because CloudWatch shows an event only once it is ingested, which may be after
//! newer events of another task (the awslogs driver sends in batches); events are de-duplicated by
//! their eventId, so none is printed twice. The window grows with the lateness observed (ingestion
//! time minus event time), so that an event is skipped only if it arrives later than twice the
//! worst lateness seen so far (and at least 30 s).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::access::{self, Permission};
use crate::cli::{LogsArgs, OutputFormat};
use crate::commands::{CommandError, Setup};
use crate::context::Ctx;
use crate::error::{AwsContext, StackError};
use crate::model::{Declared, Managed};
use crate::output::{self, printable};
use crate::report::{self, Report, Text};
use crate::resources::logs::{log_group_name, LogGroup, LOG_GROUP};
use crate::state::State;

/// How often `--follow` asks for new events.
const POLL: Duration = Duration::from_secs(2);
/// The least a poll re-reads before the newest event seen.
const MIN_WINDOW_MS: i64 = 30_000;
/// The most: a late event beyond this is not waited for.
const MAX_WINDOW_MS: i64 = 15 * 60_000;

/// One log event: a JSON line under `--output json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEvent {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub timestamp_ms: i64,
    pub task_id: String,
    pub stream: String,
    pub message: String,
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingestion_time_ms: Option<i64>,
}

impl Report for LogEvent {
    const COMMAND: &'static str = "logs";

    fn render(&self, text: &mut Text) {
        text.line(format!("{}  {}  {}", self.time, printable(&self.task_id), printable(&self.message)));
    }
}

impl LogEvent {
    fn of(e: &aws_sdk_cloudwatchlogs::types::FilteredLogEvent) -> LogEvent {
        let timestamp_ms = e.timestamp().unwrap_or_default();
        let stream = e.log_stream_name().unwrap_or_default().to_string();
        LogEvent {
            time: format_time(timestamp_ms),
            timestamp_ms,
            task_id: task_id(&stream).to_string(),
            message: e.message().unwrap_or_default().trim_end_matches(['\n', '\r']).to_string(),
            event_id: e.event_id().unwrap_or_default().to_string(),
            ingestion_time_ms: e.ingestion_time(),
            stream,
        }
    }
}

/// `<stack>/app/<task-id>` -> `<task-id>`.
pub fn task_id(stream: &str) -> &str {
    stream.rsplit('/').next().unwrap_or(stream)
}

fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// How events are printed: JSON lines, plain text, or text with a colour per task.
struct Printer {
    format: OutputFormat,
    colour: bool,
    tasks: HashMap<String, Style>,
    printed: u64,
}

const PALETTE: [AnsiColor; 6] =
    [AnsiColor::Cyan, AnsiColor::Magenta, AnsiColor::Yellow, AnsiColor::Green, AnsiColor::Blue, AnsiColor::BrightRed];

impl Printer {
    fn new(format: OutputFormat) -> Printer {
        // A terminal gets colours (unless NO_COLOR says otherwise); a pipe gets plain text.
        let colour = format == OutputFormat::Text
            && anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
        Printer { format, colour, tasks: HashMap::new(), printed: 0 }
    }

    /// Text shows control characters as escapes, on a terminal and in a pipe alike (the text may
    /// reach a terminal later: `less -R`, a CI log viewer, a file `cat` later); JSON keeps the
    /// message byte-exact.
    fn print(&mut self, event: &LogEvent) {
        self.printed += 1;
        if self.format == OutputFormat::Json {
            report::emit(self.format, event);
            return;
        }
        let (task_id, message) = (printable(&event.task_id), printable(&event.message));
        if !self.colour {
            output::line(&format!("{}  {task_id}  {message}", event.time));
            return;
        }
        // Each task keeps the colour it was first seen with.
        let next = PALETTE[self.tasks.len() % PALETTE.len()];
        let style =
            *self.tasks.entry(event.task_id.clone()).or_insert_with(|| Style::new().fg_color(Some(next.into())));
        let dim = Style::new().dimmed();
        output::line(&format!(
            "{}{}{}  {}{}{}  {}",
            dim.render(),
            event.time,
            dim.render_reset(),
            style.render(),
            task_id,
            style.render_reset(),
            message
        ));
    }
}

/// Reads the group's events with FilterLogEvents, every page.
struct Reader<'a> {
    ctx: &'a Ctx,
    group: String,
    filter: Option<String>,
}

impl Reader<'_> {
    /// Every event from `start_ms` on, page by page (oldest first), handed to `each` as it comes.
    async fn read(&self, start_ms: i64, each: &mut dyn FnMut(LogEvent)) -> Result<(), StackError> {
        let mut token: Option<String> = None;
        loop {
            let out = self
                .ctx
                .aws
                .logs
                .filter_log_events()
                .log_group_name(&self.group)
                .start_time(start_ms)
                .set_filter_pattern(self.filter.clone())
                .set_next_token(token.clone())
                .send()
                .await
                .ctx("read the log events of", &self.group)?;
            // A page holds events in time order; CloudWatch may also answer with an empty page
            // and a token while it searches on.
            let mut page: Vec<LogEvent> = out.events().iter().map(LogEvent::of).collect();
            page.sort_by_key(|e| e.timestamp_ms);
            page.into_iter().for_each(&mut *each);
            match out.next_token() {
                Some(next) if token.as_deref() != Some(next) => token = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }
}

/// What `--follow` has printed, to print every event once.
#[derive(Debug)]
pub struct Seen {
    /// eventId -> timestamp, for the events a poll may return again.
    ids: HashMap<String, i64>,
    start_ms: i64,
    newest_ms: Option<i64>,
    window_ms: i64,
}

impl Seen {
    pub fn new(start_ms: i64) -> Seen {
        Seen { ids: HashMap::new(), start_ms, newest_ms: None, window_ms: MIN_WINDOW_MS }
    }

    /// Where the next poll starts: a window before the newest event seen.
    pub fn next_start(&self) -> i64 {
        self.newest_ms.map_or(self.start_ms, |newest| (newest - self.window_ms).max(self.start_ms))
    }

    /// True the first time an event is offered.
    pub fn first_time(&mut self, event: &LogEvent) -> bool {
        if self.ids.contains_key(&event.event_id) {
            return false;
        }
        self.ids.insert(event.event_id.clone(), event.timestamp_ms);
        self.newest_ms = Some(self.newest_ms.map_or(event.timestamp_ms, |n| n.max(event.timestamp_ms)));
        if let Some(ingested) = event.ingestion_time_ms {
            let lateness = (ingested - event.timestamp_ms).max(0);
            let wanted = 2 * lateness + POLL.as_millis() as i64;
            self.window_ms = self.window_ms.max(wanted).min(MAX_WINDOW_MS);
        }
        true
    }

    /// Forget what the next poll cannot return (older than where it starts).
    pub fn prune(&mut self) {
        let from = self.next_start();
        self.ids.retain(|_, ts| *ts >= from);
    }
}

/// Resolves on SIGINT or SIGTERM. Created before the first poll, so a signal is never missed.
struct Stop {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> std::io::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Stop { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// What `logs` calls beyond finding the log group (the log group's own `Find`).
pub fn permissions() -> Vec<Permission> {
    let group = access::arn("logs", &format!("log-group:{}:*", log_group_name(access::STACK)));
    vec![Permission::inspect("logs:FilterLogEvents").on(group)]
}

pub async fn run(setup: &Setup, args: &LogsArgs) -> Result<ExitCode, CommandError> {
    // Listening from the start: Ctrl-C while the first page loads still ends cleanly.
    let mut stop = if args.follow {
        Some(Stop::new().map_err(|e| CommandError::Usage(format!("cannot listen for Ctrl-C: {e}")))?)
    } else {
        None
    };
    let state = setup.read_state().await?;
    let recorded = state.as_ref().and_then(|s| s.id(&LOG_GROUP.to_string()));
    let ctx = setup.read_only(state.unwrap_or_else(|| State::new(&setup.config.name, &setup.region)));
    let group = match LogGroup::PLAIN.find(&ctx.scope_of(LOG_GROUP, Declared::default())).await? {
        Some(group) => group.log_group_name().unwrap_or_default().to_string(),
        None => {
            let name = recorded.clone().unwrap_or_else(|| log_group_name(ctx.stack()));
            return Err(CommandError::NotDeployed(match recorded {
                Some(_) => format!(
                    "stack {}: log group {name} is recorded in {} but no longer exists (deleted outside \
                     fargate-stack); `fargate-stack up` re-creates it",
                    setup.config.name,
                    setup.location()
                ),
                None => format!(
                    "stack {} is not deployed in {}: no log group {name} (and no state at {}); \
                     `fargate-stack up` creates it",
                    setup.config.name,
                    setup.region,
                    setup.location()
                ),
            }));
        }
    };
    let start_ms = args.since.start_ms(chrono::Utc::now());
    let reader = Reader { ctx: &ctx, group: group.clone(), filter: args.filter.clone() };
    let mut printer = Printer::new(setup.format);
    let since = format!("since {}", format_time(start_ms));
    let matching = args.filter.as_ref().map(|f| format!(" matching {f:?}")).unwrap_or_default();
    let Some(stop) = stop.as_mut() else {
        reader.read(start_ms, &mut |e| printer.print(&e)).await?;
        if printer.printed == 0 {
            eprintln!("no log events in {group}{matching} {since}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let mut seen = Seen::new(start_ms);
    let mut first = true;
    loop {
        let from = seen.next_start();
        let mut each = |e: LogEvent| {
            if seen.first_time(&e) {
                printer.print(&e);
            }
        };
        let poll = reader.read(from, &mut each);
        tokio::select! {
            read = poll => read?,
            _ = stop.wait() => break,
        }
        seen.prune();
        if first {
            first = false;
            if printer.printed == 0 && setup.format == OutputFormat::Text {
                eprintln!("no log events in {group}{matching} {since} yet; waiting for new ones (Ctrl-C to stop)");
            }
        }
        // Nobody reads any more (`logs -f | head`): done.
        if output::closed() {
            break;
        }
        // Between polls too: nothing new may be written for a long time.
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = output::gone() => break,
            _ = stop.wait() => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, ts: i64, ingested: i64) -> LogEvent {
        LogEvent {
            time: format_time(ts),
            timestamp_ms: ts,
            task_id: "t".into(),
            stream: "s/app/t".into(),
            message: "m".into(),
            event_id: id.into(),
            ingestion_time_ms: Some(ingested),
        }
    }

    #[test]
    fn task_ids_come_from_the_stream_names_ecs_uses() {
        assert_eq!(task_id("app/app/0123456789abcdef0123456789abcdef"), "0123456789abcdef0123456789abcdef");
        assert_eq!(task_id("plain"), "plain");
        assert_eq!(format_time(1_764_090_131_123), "2025-11-25T17:02:11.123Z");
    }

    #[test]
    fn following_prints_each_event_once_and_rereads_a_window_for_late_ones() {
        let mut seen = Seen::new(1_000);
        assert_eq!(seen.next_start(), 1_000, "nothing seen: from --since");
        assert!(seen.first_time(&event("a", 100_000, 100_500)));
        assert!(!seen.first_time(&event("a", 100_000, 100_500)), "a repeat is not printed");
        assert_eq!(seen.next_start(), 100_000 - MIN_WINDOW_MS);
        // An event that arrived 40 s late widens the window for the ones after it.
        assert!(seen.first_time(&event("b", 90_000, 130_000)));
        assert_eq!(seen.next_start(), 100_000 - (2 * 40_000 + 2_000));
        seen.prune();
        assert!(!seen.first_time(&event("b", 90_000, 130_000)), "still remembered inside the window");
        // Far-future events move the window; what falls out of it is forgotten.
        assert!(seen.first_time(&event("c", 10_000_000, 10_000_100)));
        seen.prune();
        assert_eq!(seen.ids.len(), 1);
        // The window never goes before --since.
        let mut early = Seen::new(50_000);
        early.first_time(&event("x", 51_000, 51_000));
        assert_eq!(early.next_start(), 50_000);
    }

    #[test]
    fn the_window_is_capped() {
        let mut seen = Seen::new(0);
        seen.first_time(&event("a", 0, 3_600_000));
        assert_eq!(seen.window_ms, MAX_WINDOW_MS);
    }
}
