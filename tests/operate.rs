//! Operating what runs: `logs` (pages, tasks, late events, `--follow` stopped by a signal, an empty
//! group, a missing stack), `deploy --image` from CI and a laptop `up` that keeps it, `rollback`,
//! `status` with the rollout and the service's events, and shell completions.

mod common;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::*;
use serde_json::{json, Value};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A 32-hex ECS task id.
fn task(n: u32) -> String {
    format!("{n:08x}{:024x}", 0xabcdefu64 * n as u64)
}

/// The stream ECS's awslogs driver writes a task's output to (`awslogs-stream-prefix` = the stack).
fn stream(stack: &str, task: &str) -> String {
    format!("{stack}/app/{task}")
}

/// Put `(timestamp, message)` events (in time order) in a stream, creating it if needed.
async fn put(sdk: &Sdk, group: &str, stream: &str, events: &[(i64, String)]) {
    let created = sdk.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    if let Err(e) = created {
        assert!(format!("{e:?}").contains("ResourceAlreadyExists"), "{e:?}");
    }
    for chunk in events.chunks(10_000) {
        let batch = chunk.iter().map(|(t, m)| InputLogEvent::builder().timestamp(*t).message(m).build().unwrap());
        let out = sdk
            .logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(batch.collect()))
            .send()
            .await
            .unwrap();
        assert!(out.rejected_log_events_info().is_none(), "{out:?}");
    }
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A command's stdout lines as they come, and its stderr.
struct Streaming {
    child: Child,
    lines: Receiver<String>,
    errors: Receiver<String>,
}

impl Streaming {
    fn start(cli: &Cli, args: &[&str]) -> Streaming {
        let mut child = cli.spawn(args);
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (tx, errors) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Streaming { child, lines, errors }
    }

    /// Lines until `done` says enough, or panic after `timeout`.
    fn read_until(&self, got: &mut Vec<Value>, timeout: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(got) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))),
                Err(_) => panic!("timed out; got {got:#?}"),
            }
        }
    }

    fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.errors.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("no {needle:?} on stderr"),
            }
        }
    }

    /// Send `signal` (INT, TERM) and return the exit code and the rest of stdout.
    fn stop(mut self, signal: &str) -> (Option<i32>, Vec<String>) {
        let sent =
            std::process::Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
        assert!(sent.unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running 10 s after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF.
        let rest = self.lines.iter().collect();
        (status.code(), rest)
    }
}

/// The realism layer, for FilterLogEvents as AWS answers it (streams interleaved by time); its tasks
/// write no logs here, so that the tests' own events are all there is.
fn logs_world(emulator: &Emulator) -> Realism {
    let config = json!({"container_logs": false, "iam_propagation_s": 0});
    Realism::start(emulator, RealismOptions { time_scale: 0.005, config, ..Default::default() })
}

fn named(realism: &Realism, name: &str) -> Cli {
    let cli = Cli::at(&realism.url());
    cli.write_config(&config_with(&[("name", &format!("name = \"{name}\""))]));
    cli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_print_every_event_oldest_first_with_its_task_across_pages_and_only_the_stacks() {
    let emulator = Emulator::start();
    let world = logs_world(&emulator);
    let sdk = emulator.sdk().await;
    // Two stacks whose names are prefixes of each other: /ecs/app and /ecs/app-2.
    let app = named(&world, "app");
    let other = named(&world, "app-2");
    app.run(&["up", "--no-wait"]).ok();
    other.run(&["up", "--no-wait"]).ok();
    let (one, two) = (task(1), task(2));
    // More than one page (FilterLogEvents returns at most 10,000 events), the second task's events
    // between the first's.
    let start = now_ms() - 12 * 60_000;
    let many: Vec<(i64, String)> = (0..10_050).map(|i| (start + i * 10, format!("GET /item/{i} 200"))).collect();
    put(&sdk, "/ecs/app", &stream("app", &one), &many).await;
    let few = vec![
        (start + 5, "started".to_string()),
        (start + 50_000, "ERROR connection refused".to_string()),
        (start + 100_600, "stopping".to_string()),
    ];
    put(&sdk, "/ecs/app", &stream("app", &two), &few).await;
    put(&sdk, "/ecs/app-2", &stream("app-2", &task(3)), &[(start + 7, "from app-2".to_string())]).await;

    let run = app.run(&["--output", "json", "logs", "--since", "15m"]).ok();
    let events = json_lines(&run.stdout);
    assert_eq!(events.len(), 10_053, "every event once, over two pages");
    assert!(events.iter().all(|e| e["schema_version"] == 1 && e["command"] == "logs"));
    let times: Vec<i64> = events.iter().map(|e| e["timestamp_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let tasks: BTreeSet<&str> = events.iter().map(|e| e["task_id"].as_str().unwrap()).collect();
    assert_eq!(tasks, BTreeSet::from([one.as_str(), two.as_str()]), "task ids from the stream names; not app-2's");
    assert_eq!(events[1]["message"], "started");
    assert_eq!(events[1]["stream"], stream("app", &two));

    // Text, piped: `time  task-id  message`, no colour codes.
    let text = app.run(&["logs", "--since", "15m", "--filter", "ERROR"]).ok();
    let expected_time =
        chrono::DateTime::from_timestamp_millis(start + 50_000).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    assert_eq!(text.stdout, format!("{expected_time}  {two}  ERROR connection refused\n"));
    assert!(!text.stdout.contains('\u{1b}'));

    // --since as a time: only what came after it.
    let from = chrono::DateTime::from_timestamp_millis(start + 100_000).unwrap().to_rfc3339();
    let since = app.run(&["--output", "json", "logs", "--since", &from]).ok();
    let late = json_lines(&since.stdout);
    assert_eq!(late.len(), 50 + 1, "the last 50 requests and `stopping`");
    assert!(late.iter().all(|e| e["timestamp_ms"].as_i64().unwrap() >= start + 100_000));
    // On a terminal (forced here, as CLICOLOR_FORCE does), each task keeps a colour of its own.
    let coloured = app.command(&["logs", "--since", &from]).env("CLICOLOR_FORCE", "1").output().unwrap();
    let coloured = String::from_utf8(coloured.stdout).unwrap();
    let line_of = |task: &str| coloured.lines().find(|l| l.contains(task)).unwrap().to_string();
    assert!(line_of(&one).contains(&format!("\u{1b}[36m{one}\u{1b}[0m")), "{:?}", line_of(&one));
    assert!(line_of(&two).contains(&format!("\u{1b}[35m{two}\u{1b}[0m")), "{:?}", line_of(&two));
    // --since as a duration: nothing in the last second.
    let recent = app.run(&["logs", "--since", "1s"]).ok();
    assert!(recent.stdout.is_empty());
    assert!(recent.stderr.contains("no log events in /ecs/app since "), "{}", recent.stderr);

    // The other stack sees only its own.
    let theirs = json_lines(&other.run(&["--output", "json", "logs", "--since", "15m"]).ok().stdout);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["message"], "from app-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_new_and_late_events_once_and_exits_0_on_sigint() {
    let emulator = Emulator::start();
    let world = logs_world(&emulator);
    let sdk = emulator.sdk().await;
    let cli = Cli::at(&world.url());
    cli.run(&["up", "--no-wait"]).ok();
    let group = format!("/ecs/{STACK}");
    let (one, two, three) = (task(1), task(2), task(3));
    let t0 = now_ms() - 60_000;
    put(&sdk, &group, &stream(STACK, &one), &[(t0, "a1".into()), (t0 + 1_000, "a2".into())]).await;
    put(&sdk, &group, &stream(STACK, &two), &[(t0 + 500, "b1".into())]).await;

    let follow = Streaming::start(&cli, &["--output", "json", "logs", "--follow", "--since", "5m"]);
    let mut got = vec![];
    follow.read_until(&mut got, Duration::from_secs(30), |g| g.len() >= 3);
    // New events, and then one that arrives late: its time is 20 s before the newest seen.
    let newest = now_ms();
    put(&sdk, &group, &stream(STACK, &one), &[(newest - 100, "a3".into()), (newest, "a4".into())]).await;
    follow.read_until(&mut got, Duration::from_secs(30), |g| g.len() >= 5);
    put(&sdk, &group, &stream(STACK, &three), &[(newest - 20_000, "late".into())]).await;
    follow.read_until(&mut got, Duration::from_secs(30), |g| g.len() >= 6);
    // Two more polls: a repeat would show by now.
    std::thread::sleep(Duration::from_millis(4_500));
    let (code, rest) = follow.stop("INT");
    assert_eq!(code, Some(0), "Ctrl-C ends --follow cleanly");
    got.extend(rest.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    let messages: Vec<&str> = got.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["a1", "b1", "a2", "a3", "a4", "late"], "each once, none skipped");
    let ids: BTreeSet<&str> = got.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), got.len());
    assert_eq!(got[5]["task_id"], three.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_say_so_when_the_stack_is_missing_or_its_group_is_empty_and_escape_control_characters() {
    let emulator = Emulator::start();
    let world = logs_world(&emulator);
    let cli = Cli::at(&world.url());
    let missing = cli.run(&["logs"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("stack simple-ecs-dev is not deployed in us-east-1: no log group /ecs/simple-ecs-dev"),
        "{}",
        missing.stderr
    );
    let doc = cli.run(&["--output", "json", "logs"]).json();
    assert_eq!((doc["command"].as_str(), doc["error"]["kind"].as_str()), (Some("logs"), Some("not_deployed")));

    cli.run(&["up", "--no-wait"]).ok();
    let empty = cli.run(&["logs"]).ok();
    assert!(empty.stdout.is_empty());
    assert!(empty.stderr.contains("no log events in /ecs/simple-ecs-dev since "), "{}", empty.stderr);
    // Following an empty group waits for events; SIGTERM ends it cleanly too.
    let follow = Streaming::start(&cli, &["logs", "--follow"]);
    follow.wait_stderr("waiting for new ones (Ctrl-C to stop)", Duration::from_secs(30));
    let (code, rest) = follow.stop("TERM");
    assert_eq!((code, rest.len()), (Some(0), 0));

    // A container that writes terminal escape sequences (a window title, clear screen, a carriage
    // return over the line, a bell, C1's CSI, DEL, a right-to-left override) cannot act on the
    // operator's terminal: text shows them escaped, piped or on a terminal; JSON keeps them exact.
    let hostile = "ok\u{1b}]0;you have been pwned\u{7}\u{1b}[2J\u{1b}[H\rFAKE: deploy succeeded\u{9b}31m\u{7f}\u{202e}x\ttab\nline2";
    let sdk = emulator.sdk().await;
    put(&sdk, "/ecs/simple-ecs-dev", &stream(STACK, &task(9)), &[(now_ms() - 1000, hostile.to_string())]).await;
    let escaped = "ok\\x1b]0;you have been pwned\\x07\\x1b[2J\\x1b[H\\rFAKE: deploy succeeded\\u{9b}31m\\x7f\\u{202e}x\ttab\\nline2";
    let piped = cli.run(&["logs"]).ok();
    assert!(piped.stdout.ends_with(&format!("  {}  {escaped}\n", task(9))), "{:?}", piped.stdout);
    let coloured = cli.command(&["logs"]).env("CLICOLOR_FORCE", "1").output().unwrap();
    let coloured = String::from_utf8(coloured.stdout).unwrap();
    assert!(coloured.ends_with(&format!("  {escaped}\n")), "{coloured:?}");
    for text in [&piped.stdout, &coloured] {
        let controls: Vec<char> = text.chars().filter(|c| c.is_control() && !"\t\n\u{1b}".contains(*c)).collect();
        assert!(controls.is_empty(), "{controls:?} in {text:?}");
        assert_eq!(text.lines().count(), 1, "one event, one line: {text:?}");
    }
    // The only escape sequences on the terminal are the tool's own colours.
    let sequences: BTreeSet<&str> =
        coloured.split('\u{1b}').skip(1).map(|s| &s[..s.find('m').map_or(0, |i| i + 1)]).collect();
    assert!(sequences.iter().all(|s| s.starts_with('[') && s.ends_with('m')), "{sequences:?}");
    let json = cli.run(&["--output", "json", "logs"]).ok();
    assert_eq!(json.json()["message"], hostile, "byte-exact in JSON");
    // `logs -f | head -1` while nothing new is logged: it notices that its reader went away.
    // (From a moment after the event above, so that nothing is printed before it waits.)
    std::thread::sleep(Duration::from_secs(2));
    let mut child = cli.spawn(&["logs", "--follow", "--since", "1s"]);
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let waiting =
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).any(|l| l.contains("waiting for new ones")));
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`logs --follow` still running 10 s after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(waiting.join().unwrap(), "it was following");
}

fn realism(emulator: &Emulator) -> Realism {
    Realism::start(emulator, RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() })
}

fn count(calls: &[Value], action: &str) -> usize {
    calls.iter().filter(|c| c["action"] == action && c["error"].is_null()).count()
}

fn status(cli: &Cli, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--output", "json", "status"];
    all.extend_from_slice(args);
    let run = cli.run(&all);
    (run.code, run.json())
}

fn task_definition_attrs(cli: &Cli) -> Value {
    cli.state().unwrap()["resources"]["task-definition"].clone()
}

fn revision_of(arn: &Value) -> String {
    arn.as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_deploy_is_kept_by_a_laptop_up_until_the_config_image_changes() {
    let emulator = Emulator::start();
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    cli.run(&["up"]).ok();

    // CI ships an image; the laptop's config still says nginx:latest.
    let deployed = cli.run(&["--output", "json", "deploy", "--image", "nginx:1.28"]).ok().json();
    assert_eq!(deployed["command"], "deploy");
    assert_eq!((deployed["ok"].as_bool(), deployed["image"].as_str()), (Some(true), Some("nginx:1.28")));
    assert_eq!(deployed["previous_image"], "nginx:latest");
    assert_eq!(
        (deployed["task_definition"].as_str(), deployed["waited"].as_bool()),
        (Some("simple-ecs-dev-server:2"), Some(true))
    );
    let steps: Vec<(&str, &str)> = deployed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("role-execution", "unchanged"),
            ("task-definition", "created"),
            ("service", "updated"),
            ("service-healthy", "waited")
        ]
    );
    let (code, doc) = status(&cli, &[]);
    assert_eq!(code, 0, "{doc:#}");
    let service = &doc["service"];
    assert_eq!(service["image"], "nginx:1.28", "status shows the running image");
    assert_eq!(service["image_choice"]["source"], "deploy");
    assert_eq!(service["deployments"][0]["image"], "nginx:1.28");
    assert!(doc["resources"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{doc:#}");

    // The laptop's plan says the deployed image stays, and why.
    let plan = cli.run(&["up", "--dry-run"]).ok();
    assert!(
        plan.stdout.contains(
            "image: keeps nginx:1.28 from `deploy`; the config's nginx:latest is unchanged since the last up"
        ),
        "{}",
        plan.stdout
    );
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let row = |plan: &Value, name: &str| {
        plan["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).cloned().unwrap()
    };
    assert_eq!(row(&plan, "task-definition")["action"], "unchanged");
    let before = realism.calls().len();
    let up = cli.run(&["up"]).ok();
    assert!(up.stderr.contains("image: keeps nginx:1.28 from `deploy`"), "{}", up.stderr);
    let calls = &realism.calls()[before..];
    assert_eq!((count(calls, "RegisterTaskDefinition"), count(calls, "UpdateService")), (0, 0), "no roll back");
    assert_eq!(status(&cli, &[]).1["service"]["image"], "nginx:1.28");

    // The config's image changes: that wins, and says what it replaces.
    cli.write_config(&config_with(&[("image", "image = \"nginx:1.29\"")]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let td = row(&plan, "task-definition");
    assert_eq!(td["action"], "update");
    assert_eq!(td["changes"][0], json!({"field": "service.image", "from": "nginx:1.28", "to": "nginx:1.29"}));
    let note = plan["image"].as_str().unwrap();
    assert!(note.contains("changed since the last up (nginx:latest → nginx:1.29): it replaces nginx:1.28"), "{note}");
    cli.run(&["up", "--yes"]).ok();
    assert_eq!(status(&cli, &[]).1["service"]["image"], "nginx:1.29");
    let attrs = &task_definition_attrs(&cli)["attrs"];
    assert_eq!((attrs["config_image"].as_str(), attrs.get("deployed_image")), (Some("nginx:1.29"), None));

    // CI again, and the laptop's (unchanged) config keeps it again.
    cli.run(&["deploy", "--image", "nginx:1.30"]).ok();
    let before = realism.calls().len();
    cli.run(&["up"]).ok();
    assert_eq!(count(&realism.calls()[before..], "RegisterTaskDefinition"), 0);
    assert_eq!(status(&cli, &[]).1["service"]["image"], "nginx:1.30");
    // The same image again: nothing to register or roll; --force starts new tasks anyway.
    let again = cli.run(&["deploy", "--image", "nginx:1.30"]).ok();
    assert!(again.stdout.contains("runs nginx:1.30 (simple-ecs-dev-server:4); nothing to deploy"), "{}", again.stdout);
    let before = realism.calls().len();
    cli.run(&["deploy", "--image", "nginx:1.30", "--force"]).ok();
    let calls = &realism.calls()[before..];
    assert_eq!((count(calls, "RegisterTaskDefinition"), count(calls, "UpdateService")), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_goes_back_one_completed_revision_at_a_time() {
    let emulator = Emulator::start();
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    cli.run(&["up"]).ok();
    cli.run(&["deploy", "--image", "nginx:1.28"]).ok();
    cli.run(&["deploy", "--image", "nginx:1.29"]).ok();
    let image = |cli: &Cli| status(cli, &[]).1["service"]["image"].as_str().unwrap().to_string();

    let back = cli.run(&["--output", "json", "rollback"]).ok().json();
    assert_eq!(
        (back["command"].as_str(), back["task_definition"].as_str()),
        (Some("rollback"), Some("simple-ecs-dev-server:2"))
    );
    assert_eq!((back["image"].as_str(), back["previous_image"].as_str()), (Some("nginx:1.28"), Some("nginx:1.29")));
    assert_eq!(image(&cli), "nginx:1.28");
    let text = cli.run(&["rollback"]).ok();
    assert!(
        text.stdout.contains("rolled stack simple-ecs-dev in us-east-1 back to simple-ecs-dev-server:1 (nginx:latest) from simple-ecs-dev-server:2 (nginx:1.28)"),
        "{}",
        text.stdout
    );
    assert_eq!(image(&cli), "nginx:latest");
    let refused = cli.run(&["--output", "json", "rollback"]);
    assert_eq!(refused.code, 1);
    let doc = refused.json();
    assert_eq!(doc["error"]["kind"], "refused");
    assert!(doc["error"]["message"].as_str().unwrap().contains("nothing to roll back to"), "{doc}");
    // A laptop up after it: the config's image runs, nothing to change.
    let before = realism.calls().len();
    cli.run(&["up"]).ok();
    assert_eq!(count(&realism.calls()[before..], "RegisterTaskDefinition"), 0);

    // A deploy nobody waited for that is then rolled back: back to the last completed revision.
    cli.run(&["deploy", "--image", "nginx:1.31"]).ok();
    cli.run(&["deploy", "--image", "nginx:1.32", "--no-wait"]).ok();
    let back = cli.run(&["--output", "json", "rollback"]).ok().json();
    assert_eq!(back["image"], "nginx:1.31");
    assert_eq!(revision_of(&task_definition_attrs(&cli)["id"]), "simple-ecs-dev-server:4");
    assert_eq!(image(&cli), "nginx:1.31");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_explains_itself_and_the_stack_keeps_its_good_revision() {
    let emulator = Emulator::start();
    // Tasks take 5 s to start here, so that `status` right after `deploy --no-wait` sees the rollout
    // before the circuit breaker ends it, even on a loaded CI machine (at 2 s the whole suite on 2
    // cores once saw the rollback already under way).
    let config = json!({"iam_propagation_s": 0, "task_start_s": 250});
    let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    let cli = Cli::at(&realism.url());
    cli.run(&["up"]).ok();
    let good = task_definition_attrs(&cli);

    // An image that cannot be pulled: tasks fail to start, the circuit breaker rolls back.
    let failed = cli.run(&["--output", "json", "deploy", "--image", "nginx:no-such-tag"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    // True the moment it is said: the rollback's deployment is done, not still starting tasks.
    let (_, now) = status(&cli, &["--events", "0"]);
    let service = &now["service"];
    assert_eq!(service["deployments"].as_array().unwrap().len(), 1, "{service:#}");
    assert_eq!(
        (service["deployments"][0]["task_definition"].as_str(), service["rollout"].as_str()),
        (Some("simple-ecs-dev-server:1"), Some("COMPLETED")),
        "{service:#}"
    );
    assert_eq!((service["running"].clone(), service["healthy_targets"].clone()), (json!(2), json!(2)), "{service:#}");
    let doc = failed.json();
    assert_eq!((doc["command"].as_str(), doc["ok"].as_bool()), (Some("deploy"), Some(false)));
    assert!(
        doc["error"].as_str().unwrap().contains("rolled back to simple-ecs-dev-server:1 by the circuit breaker"),
        "{doc:#}"
    );
    assert_eq!(
        doc["restored"],
        "the circuit breaker put the service back on simple-ecs-dev-server:1 (nginx:latest), and the state records \
         it: it serves again (its deployment completed, every task runs, every target is healthy)"
    );

    let events: Vec<&str> = doc["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(events.iter().any(|e| e.ends_with("deployment failed: tasks failed to start.")), "{events:#?}");
    let stopped = doc["stopped_tasks"].as_array().unwrap();
    assert!(
        stopped.iter().any(|t| t["reason"].as_str().unwrap().starts_with("CannotPullContainerError")),
        "{stopped:#?}"
    );
    assert_eq!(task_definition_attrs(&cli), good, "the state records what runs");

    // status explains it too, in text and JSON, with as many events as asked for.
    let text = cli.run(&["status", "--events", "10"]).ok();
    for needle in [
        "deployment failed: tasks failed to start.",
        "rolling back to deployment",
        "CannotPullContainerError",
        "image: nginx:latest",
    ] {
        assert!(text.stdout.contains(needle), "no {needle:?} in\n{}", text.stdout);
    }
    let (code, doc) = status(&cli, &["--events", "3"]);
    assert_eq!(code, 0);
    let service = &doc["service"];
    assert_eq!(service["events"].as_array().unwrap().len(), 3);
    assert!(service["rollout_reason"].as_str().unwrap().contains("rolled back"), "{service:#}");
    // The rollback deployment runs the good revision (it may still be rolling out).
    let primary = &service["deployments"][0];
    assert_eq!(
        (primary["status"].as_str(), primary["task_definition"].as_str(), primary["image"].as_str()),
        (Some("PRIMARY"), Some("simple-ecs-dev-server:1"), Some("nginx:latest"))
    );
    // The laptop's up does not roll forward onto the bad image.
    let before = realism.calls().len();
    cli.run(&["up"]).ok();
    assert_eq!(count(&realism.calls()[before..], "UpdateService"), 0);

    // Targets that fail health checks, deployed without waiting: status shows the rollout while it
    // runs, then why it failed; rollback puts the state back on the revision that completed.
    cli.run(&["deploy", "--image", "nginx:fails-health-checks", "--no-wait"]).ok();
    let (_, doc) = status(&cli, &[]);
    let deployments = doc["service"]["deployments"].as_array().unwrap();
    assert_eq!(deployments[0]["rollout"], "IN_PROGRESS", "{deployments:#?}");
    assert_eq!(deployments[0]["image"], "nginx:fails-health-checks");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (code, doc) = loop {
        let (code, doc) = status(&cli, &["--events", "20"]);
        let events = doc["service"]["events"].to_string();
        // The events and the service row come from separate describe calls: wait until both
        // show the rollback, then check what each says.
        if events.contains("deployment failed: tasks failed ELB health checks.") && code != 0 {
            break (code, doc);
        }
        assert!(Instant::now() < deadline, "no circuit breaker, or status still 0: {doc:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(doc["service"]["events"].to_string().contains("is unhealthy in (target-group"), "{doc:#}");
    assert_eq!(code, 3, "the state says the failed revision, the service runs the good one: drifted");
    let back = cli.run(&["--output", "json", "rollback"]).ok().json();
    assert_eq!(back["task_definition"], "simple-ecs-dev-server:1");
    assert_eq!(status(&cli, &[]).0, 0);
}

/// A `deploy` killed after any of its AWS changes is finished by the next `deploy` (or `up`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_after_any_change_is_finished_by_the_next_run() {
    let emulator = Emulator::start();
    let options = RealismOptions { time_scale: 0.002, config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let mut killed = vec![];
    for n in 1.. {
        emulator.reset();
        let realism = Realism::start(&emulator, options.clone());
        let cli = Cli::at(&realism.url());
        cli.run(&["up"]).ok();
        let before = realism.calls().iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).count();
        realism.freeze_after_mutations(before + n);
        let mut child = cli
            .command(&["deploy", "--image", "nginx:1.28"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let frozen = loop {
            if let Some(action) = realism.wait_frozen(Duration::from_millis(50)) {
                break Some(action);
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
        };
        let _ = child.kill();
        child.wait().unwrap();
        let Some(action) = frozen else { break };
        killed.push(action.clone());
        realism.thaw();
        // Alternately the CI's retry and the laptop's up finish it.
        let next: &[&str] = if n % 2 == 1 { &["deploy", "--image", "nginx:1.28"] } else { &["up"] };
        cli.run(next).ok();
        let (code, doc) = status(&cli, &[]);
        assert_eq!(code, 0, "killed after {action}, then {next:?}: {doc:#}");
        assert_eq!(doc["service"]["image"], "nginx:1.28", "killed after {action}, then {next:?}");
        let services = emulator.sdk().await.ecs.list_services().cluster("simple-ecs-dev-cluster").send().await.unwrap();
        assert_eq!(services.service_arns().len(), 1);
    }
    assert!(killed.len() >= 2, "{killed:?}");
    eprintln!("deploy killed after each of: {killed:?}");
}

#[test]
fn completions_are_scripts_for_each_shell_without_aws_or_a_valid_config() {
    let cli = Cli::at("http://127.0.0.1:9");
    // A broken local config does not matter: completions need neither it nor AWS.
    cli.write_config("this is not toml");
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let run = cli.run(&["completions", shell]).ok();
        for word in ["fargate-stack", "deploy", "rollback", "logs", "completions"] {
            assert!(run.stdout.contains(word), "{shell}: no {word}");
        }
        // The shell itself accepts the script, where it is installed.
        let path = cli.dir.path().join(format!("completion.{shell}"));
        std::fs::write(&path, &run.stdout).unwrap();
        match std::process::Command::new(checker).arg("-n").arg(&path).output() {
            Ok(out) => assert!(out.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("{checker} not installed ({e}): syntax not checked"),
        }
    }
    let doc = cli.run(&["--output", "json", "completions", "bash"]).ok().json();
    assert_eq!((doc["command"].as_str(), doc["shell"].as_str()), (Some("completions"), Some("bash")));
    assert!(doc["script"].as_str().unwrap().contains("complete -F"));
    assert_ne!(cli.run(&["completions", "tcsh"]).code, 0);
}

/// A stand-in for the load balancer on 127.0.0.1: answers every request with the status set (and
/// a body saying it), and keeps the head of each request it got.
struct StandIn {
    port: u16,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl StandIn {
    fn start() -> StandIn {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicU16, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let requests = Arc::new(Mutex::new(vec![]));
        let (answer, seen) = (status.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut head = vec![];
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let (code, reason, body) = match answer.load(Ordering::SeqCst) {
                    200 => (200, "OK", "<h1>Welcome to nginx!</h1>".to_string()),
                    code => (
                        code,
                        "Service Unavailable",
                        format!("<html>\r\n<h1>{code} Service Temporarily Unavailable</h1>\r\n</html>"),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {code} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).ok();
            }
        });
        StandIn { port, status, requests }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_answers_after_every_rollout_or_the_deploy_fails_showing_the_answer() {
    let emulator = Emulator::start();
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    let stand_in = StandIn::start();
    let port = stand_in.port.to_string();
    // The load balancer listens on the stand-in's port; --resolve sends the check to 127.0.0.1.
    cli.write_config(&config_with(&[("listener_port", &format!("listener_port = {port}"))]));
    let any_name = format!("*:{port}:127.0.0.1");

    // `up`: its rollout completes, then the URL answers 200: status, latency, URL and address shown.
    let up = cli.run(&["up", "--resolve", &any_name]).ok();
    let dns = cli.state().unwrap()["resources"]["load-balancer"]["attrs"]["dns_name"].as_str().unwrap().to_string();
    let url = format!("http://{dns}:{port}");
    let shown = up.stdout.lines().find(|l| l.contains("url check:")).unwrap_or_else(|| panic!("{}", up.stdout));
    let expected = format!("  url check: GET {url} answered 200 OK in ");
    assert!(shown.starts_with(&expected), "{shown}");
    assert!(shown.ends_with(&format!(" ms from 127.0.0.1:{port} (--resolve {any_name})")), "{shown}");
    let requests = stand_in.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("GET / HTTP/1.1\r\n"), "{}", requests[0]);
    assert!(
        requests[0].to_lowercase().contains(&format!("host: {dns}:{port}\r\n")),
        "the stack's name: {}",
        requests[0]
    );

    // A new release answers 503: the rollout completed, the deploy fails (exit 1) and says what runs,
    // the URL, the status and the first part of the body; JSON has it as `url_check`.
    stand_in.answer(503);
    let exact = format!("{dns}:{port}:127.0.0.1");
    let failed = cli.run(&["--output", "json", "deploy", "--image", "nginx:1.28", "--resolve", &exact]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let doc = failed.json();
    assert_eq!((doc["command"].as_str(), doc["ok"].as_bool()), (Some("deploy"), Some(false)));
    let check = &doc["url_check"];
    assert_eq!(
        (check["status"].as_u64(), check["ok"].as_bool(), check["attempts"].as_u64()),
        (Some(503), Some(false), Some(1))
    );
    assert_eq!(check["body"], "<html> <h1>503 Service Temporarily Unavailable</h1> </html>");
    assert_eq!((check["url"].as_str(), check["resolve"].as_str()), (Some(url.as_str()), Some(exact.as_str())));
    let error = failed.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{}", failed.stderr));
    for said in [
        "error: the rollout completed: stack simple-ecs-dev runs simple-ecs-dev-server:2 (nginx:1.28), every task",
        &format!("but its URL does not answer: GET {url} answered 503 Service Unavailable in "),
        "body: \"<html> <h1>503 Service Temporarily Unavailable</h1> </html>\"",
    ] {
        assert!(error.contains(said), "{said}\nin: {error}");
    }
    let events = json_lines(&failed.stdout);
    let check_events: Vec<&Value> = events.iter().filter(|e| e["resource"] == "url-check").collect();
    assert_eq!(check_events.last().unwrap()["phase"], "FAILED", "{check_events:?}");
    assert_eq!(
        revision_of(&task_definition_attrs(&cli)["id"]),
        "simple-ecs-dev-server:2",
        "the state records what runs"
    );

    // Its rollout completed but it did not answer: not a revision `rollback` goes back to.
    assert!(error.contains("`rollback` does not count it as a revision to go back to"), "{error}");
    let history = task_definition_attrs(&cli)["attrs"]["completed_revisions"].as_str().unwrap().to_string();
    assert!(!history.contains("simple-ecs-dev-server:2"), "{history}");

    // --no-verify: no request; an emulator without --resolve: one line says the check is skipped.
    // The rollback skips nginx:1.28, which answered 503, for the last revision that did answer.
    cli.run(&["deploy", "--image", "nginx:1.29", "--no-verify"]).ok();
    let rolled_back = cli.run(&["rollback"]).ok();
    assert!(rolled_back.stdout.contains("back to simple-ecs-dev-server:1 (nginx:latest)"), "{}", rolled_back.stdout);
    assert_eq!(stand_in.requests().len(), 2, "no request with --no-verify or without --resolve");
    let skipped: Vec<&str> = rolled_back.stderr.lines().filter(|l| l.contains("url check")).collect();
    assert_eq!(skipped.len(), 1, "{}", rolled_back.stderr);
    assert!(
        skipped[0].starts_with(&format!("url check skipped: the AWS endpoint is {}", cli.endpoint)),
        "{}",
        skipped[0]
    );
    assert!(!rolled_back.stdout.contains("url check"), "{}", rolled_back.stdout);

    // A service set to run no task (a schedule's night, desired_count = 0): the load balancer can
    // only answer 503, as asked; nothing is requested and one line says why.
    let listener = format!("listener_port = {port}");
    cli.write_config(&config_with(&[("listener_port", &listener), ("desired_count", "desired_count = 0")]));
    let night = cli.run(&["up", "--resolve", &any_name]).ok();
    let skipped: Vec<&str> = night.stderr.lines().filter(|l| l.contains("url check")).collect();
    assert_eq!(skipped.len(), 1, "{}", night.stderr);
    assert!(skipped[0].starts_with("url check skipped: the service is set to run no task (desired count 0)"));
    assert_eq!(stand_in.requests().len(), 2);
}
