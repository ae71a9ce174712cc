//! Deploys a team trusts (issue 20): a canary or blue/green deploy shown phase by phase (text line
//! and `deploy_phase` events), ended on one target group serving; an alarm in ALARM during the bake
//! (or during a rolling deploy) rolls it back by itself, and the failure names the alarm, its value,
//! its threshold and the revision serving again, which the state records; a deploy killed in each
//! phase is finished by the next run.

mod common;

use std::io::BufRead;
use std::process::Child;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use common::*;
use serde_json::{json, Value};

/// A stack whose deploys use `strategy`, baking `bake_minutes` (AWS minutes; the world runs at
/// time scale 0.02, so a minute is 1.2 s).
fn world(strategy: &str, bake_minutes: u32) -> (Emulator, Realism, Cli) {
    let emulator = Emulator::start();
    let config = json!({"iam_propagation_s": 0});
    let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    let cli = Cli::at(&realism.url());
    let strategy = format!("strategy = \"{strategy}\"");
    let bake = format!("bake_minutes = {bake_minutes}");
    cli.write_config(&config_with(&[("strategy", &strategy), ("bake_minutes", &bake)]));
    cli.run(&["up"]).ok();
    (emulator, realism, cli)
}

const ALARM: &str = "simple-ecs-dev-5xx-rate";
const GOOD: &str = "simple-ecs-dev-server:1";

/// `deploy --output json` left running, its JSON lines read as they come.
struct Streaming {
    child: Child,
    lines: Receiver<Value>,
    got: Vec<Value>,
}

impl Streaming {
    fn start(cli: &Cli, args: &[&str]) -> Streaming {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let mut child = cli.spawn(&all);
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
            }
        });
        Streaming { child, lines, got: vec![] }
    }

    /// Events until one `done` accepts (returned), or panic after `timeout`.
    fn until(&mut self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(event) => {
                    self.got.push(event.clone());
                    if done(&event) {
                        return event;
                    }
                }
                Err(_) => panic!("timed out; got {:#?}", self.got),
            }
        }
    }

    /// The run's end: its exit code and result document.
    fn finish(mut self) -> (i32, Value, Vec<Value>) {
        let result = self.until(Duration::from_secs(60), |e| e["event"] == "result");
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        (code, result, self.got)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn phases(events: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = vec![];
    for e in events.iter().filter(|e| e["event"] == "deploy_phase") {
        let phase = e["phase"].as_str().unwrap().to_string();
        if seen.last() != Some(&phase) {
            seen.push(phase);
        }
    }
    seen
}

/// ECS's lifecycle stages in order: the events never go back.
const STAGES: [&str; 10] = [
    "reconcile_service",
    "pre_scale_up",
    "scale_up",
    "post_scale_up",
    "test_traffic_shift",
    "post_test_traffic_shift",
    "production_traffic_shift",
    "post_production_traffic_shift",
    "bake_time",
    "clean_up",
];

fn in_order(phases: &[String]) -> bool {
    let index: Vec<usize> = phases.iter().filter_map(|p| STAGES.iter().position(|s| s == p)).collect();
    index.windows(2).all(|w| w[0] <= w[1])
}

/// The production rule's weights: (target group ARN, weight), from the rule the state records.
async fn weights(sdk: &Sdk, cli: &Cli) -> Vec<(String, i32)> {
    let state = cli.state().unwrap();
    let rule = state["resources"]["listener-rule-production"]["id"].as_str().expect("a production rule").to_string();
    let out = sdk.elb.describe_rules().rule_arns(&rule).send().await.unwrap();
    let action = out.rules()[0].actions().iter().find(|a| a.forward_config().is_some()).expect("a forward");
    let groups = action.forward_config().unwrap().target_groups();
    groups.iter().map(|g| (g.target_group_arn().unwrap().to_string(), g.weight().unwrap_or(0))).collect()
}

fn recorded_revision(cli: &Cli) -> String {
    let state = cli.state().unwrap();
    state["resources"]["task-definition"]["id"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// What the service serves: its PRIMARY deployment's revision, and its deployments' count.
async fn serving(sdk: &Sdk) -> (String, usize) {
    let service = sdk.service().await;
    let primary = service.deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap();
    let revision = primary.task_definition().unwrap().rsplit('/').next().unwrap().to_string();
    (revision, service.deployments().len())
}

/// Put the stack's 5xx-rate alarm into ALARM as CloudWatch would: 7.5 % against 5 %.
async fn trip_alarm(sdk: &Sdk) {
    let reason = "Threshold Crossed: 2 out of the last 2 datapoints [7.5 (03/12/26 20:01:00), 6.0 (03/12/26 \
                  20:00:00)] were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition).";
    let data = r#"{"version":"1.0","queryDate":"2026-12-03T20:02:10.000+0000","startDate":"2026-12-03T20:00:00.000+0000","period":60,"recentDatapoints":[6.0,7.5],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2026-12-03T20:01:00.000+0000","value":7.5},{"timestamp":"2026-12-03T20:00:00.000+0000","value":6.0}]}"#;
    let call = sdk.cloudwatch.set_alarm_state().alarm_name(ALARM).state_value(StateValue::Alarm);
    call.state_reason(reason).state_reason_data(data).send().await.unwrap();
}

/// The failure names the alarm, its value, its threshold and what serves again, in text and JSON.
fn assert_alarm_named(result: &Value) {
    assert_eq!(result["ok"], false, "{result:#}");
    let alarm = &result["alarm"];
    assert_eq!(
        (alarm["alarm"].as_str(), alarm["value"].as_f64(), alarm["threshold"].as_f64(), alarm["serving"].as_str()),
        (Some(ALARM), Some(7.5), Some(5.0), Some(GOOD)),
        "{result:#}"
    );
    let error = result["error"].as_str().unwrap();
    for part in [ALARM, "value 7.5", "threshold 5", &format!("{GOOD} serves again")] {
        assert!(error.contains(part), "{part:?} in {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_canary_deploy_shows_its_phases_and_ends_with_one_target_group_serving() {
    let (_emulator, realism, cli) = world("canary", 1);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let (code, result, events) = Streaming::start(&cli, &["deploy", "--image", "nginx:1.28"]).finish();
    assert_eq!(code, 0, "{result:#}");
    let seen = phases(&events);
    assert!(in_order(&seen), "{seen:?}");
    for phase in ["scale_up", "production_traffic_shift", "bake_time"] {
        assert!(seen.iter().any(|p| p == phase), "{phase} in {seen:?}");
    }
    let shifts: Vec<&Value> = events.iter().filter(|e| e["phase"] == "production_traffic_shift").collect();
    assert!(shifts.iter().any(|e| e["traffic"] == json!({"old": 95, "new": 5})), "the canary's 5 %: {shifts:#?}");
    for e in events.iter().filter(|e| e["event"] == "deploy_phase") {
        assert_eq!(e["stack"], "simple-ecs-dev");
        assert!(e["running"]["new"].is_i64() && e["at"].is_string(), "{e}");
    }
    assert!(events.iter().any(|e| e["phase"] == "bake_time" && e["bake_remaining_s"].is_u64()), "{events:#?}");
    // One target group serves, the other none; one deployment, of the new revision, which the state records.
    let mut split: Vec<i32> = weights(&sdk, &cli).await.into_iter().map(|(_, w)| w).collect();
    split.sort();
    assert_eq!(split, vec![0, 100]);
    assert_eq!(serving(&sdk).await, ("simple-ecs-dev-server:2".to_string(), 1));
    assert_eq!(recorded_revision(&cli), "simple-ecs-dev-server:2");
    // Text: one `deployment` line with the phases.
    let text = cli.run(&["deploy", "--image", "nginx:1.29"]).ok();
    let lines: Vec<&str> = text.stderr.lines().filter(|l| l.contains(" deployment ")).collect();
    assert!(lines.iter().any(|l| l.contains("bake_time (in_progress)")), "{}", text.stderr);
    assert_eq!(lines.iter().filter(|l| l.contains("watching")).count(), 1, "{}", text.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_alarm_fires_during_the_bake_rolls_back_and_the_old_revision_keeps_serving() {
    // A 3-minute bake (3.6 s here): time to put the alarm into ALARM during it.
    let (_emulator, realism, cli) = world("canary", 3);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let before = weights(&sdk, &cli).await;
    let mut run = Streaming::start(&cli, &["deploy", "--image", "nginx:500s"]);
    run.until(Duration::from_secs(45), |e| e["phase"] == "bake_time");
    trip_alarm(&sdk).await;
    let (code, result, _) = run.finish();
    assert_ne!(code, 0);
    assert_alarm_named(&result);
    assert_eq!(recorded_revision(&cli), GOOD, "the state records what serves");
    assert_eq!(serving(&sdk).await.0, GOOD);
    assert_eq!(weights(&sdk, &cli).await, before, "all traffic back on the old target group");
    // The alarm back to OK, the next deploy of a good image goes ahead from there.
    let ok = sdk.cloudwatch.set_alarm_state().alarm_name(ALARM).state_value(StateValue::Ok);
    ok.state_reason("fixed").send().await.unwrap();
    cli.run(&["deploy", "--image", "nginx:1.28"]).ok();
    assert_eq!(recorded_revision(&cli), "simple-ecs-dev-server:3");
    assert_eq!(serving(&sdk).await, ("simple-ecs-dev-server:3".to_string(), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_all_traffic_at_once_and_rolls_back_on_an_alarm() {
    let (_emulator, realism, cli) = world("blue_green", 5);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let first = weights(&sdk, &cli).await;
    let (code, result, events) = Streaming::start(&cli, &["deploy", "--image", "nginx:1.28"]).finish();
    assert_eq!(code, 0, "{result:#}");
    // All at once: no split between 0 and 100.
    let splits: Vec<&Value> = events.iter().filter_map(|e| e.get("traffic")).collect();
    assert!(splits.iter().all(|t| t["new"] == 0 || t["new"] == 100), "{splits:?}");
    let switched = weights(&sdk, &cli).await;
    let serving_tg = |w: &[(String, i32)]| w.iter().find(|(_, w)| *w == 100).unwrap().0.clone();
    assert_ne!(serving_tg(&switched), serving_tg(&first), "the other target group serves now");
    // The next one goes back to the first, unless its alarm fires: then the second keeps serving.
    let mut run = Streaming::start(&cli, &["deploy", "--image", "nginx:500s"]);
    run.until(Duration::from_secs(45), |e| e["phase"] == "bake_time");
    trip_alarm(&sdk).await;
    let (code, result, _) = run.finish();
    assert_ne!(code, 0);
    assert_eq!(result["alarm"]["serving"], "simple-ecs-dev-server:2", "{result:#}");
    assert_eq!(recorded_revision(&cli), "simple-ecs-dev-server:2");
    assert_eq!(serving_tg(&weights(&sdk, &cli).await), serving_tg(&switched));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_deploy_is_rolled_back_by_an_alarm_too() {
    let emulator = Emulator::start();
    // Tasks take 10 s to start: the alarm goes off while the new ones start.
    let config = json!({"iam_propagation_s": 0, "task_start_s": 500});
    let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    let cli = Cli::at(&realism.url());
    cli.run(&["up"]).ok();
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let mut run = Streaming::start(&cli, &["deploy", "--image", "nginx:500s"]);
    run.until(Duration::from_secs(30), |e| e["event"] == "deploy_phase" && e["phase"] == "scale_up");
    trip_alarm(&sdk).await;
    let (code, result, events) = run.finish();
    assert_ne!(code, 0);
    assert_alarm_named(&result);
    assert!(events.iter().all(|e| e.get("traffic").is_none()), "rolling: no production rule");
    assert_eq!(recorded_revision(&cli), GOOD);
    assert_eq!(serving(&sdk).await.0, GOOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_in_each_phase_is_finished_by_the_next_run() {
    let (_emulator, realism, cli) = world("canary", 2);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    // One kill per phase; the next run is `deploy` of the same image, or `up` (which keeps it).
    let kills =
        [("scale_up", "deploy"), ("production_traffic_shift", "up"), ("bake_time", "deploy"), ("clean_up", "up")];
    for (n, (phase, next)) in kills.iter().enumerate() {
        let image = format!("nginx:1.{}", 30 + n);
        let mut run = Streaming::start(&cli, &["deploy", "--image", &image]);
        run.until(Duration::from_secs(45), |e| e["phase"] == *phase);
        run.kill();
        let again = match *next {
            "deploy" => cli.run(&["--output", "json", "deploy", "--image", &image]),
            _ => cli.run(&["--output", "json", "up"]),
        };
        assert_eq!(again.code, 0, "killed in {phase}, then {next}: {}\n{}", again.stdout, again.stderr);
        let revision = format!("simple-ecs-dev-server:{}", n + 2);
        assert_eq!(recorded_revision(&cli), revision, "killed in {phase}");
        assert_eq!(serving(&sdk).await, (revision, 1), "killed in {phase}");
        let mut split: Vec<i32> = weights(&sdk, &cli).await.into_iter().map(|(_, w)| w).collect();
        split.sort();
        assert_eq!(split, vec![0, 100], "killed in {phase}");
    }
}
