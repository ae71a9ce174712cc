//! The full cycle against the realism layer: AWS's timings (scaled), its checks, lingering ENIs,
//! IAM propagation and throttling. Passing against bare moto is not enough.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

fn count(calls: &[Value], action: &str, error: Option<&str>) -> usize {
    calls.iter().filter(|c| c["action"] == action && c["error"].as_str() == error).count()
}

fn errors_by_action(calls: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| !c["error"].is_null()) {
        *out.entry(format!("{}:{}", c["action"].as_str().unwrap(), c["error"].as_str().unwrap())).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_waits_for_what_aws_needs_and_leaves_nothing() {
    let emulator = Emulator::start();
    // IAM propagation has its own test; here any refused call means a wrong order.
    let options = RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let cli = Cli::at(&realism.url());
    let sdk = emulator.sdk().await;

    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let result = up.json();
    // The progress showed AWS's own states while waiting.
    for state in ["\"detail\":\"pending\"", "\"detail\":\"provisioning\""] {
        assert!(up.stdout.contains(state), "no {state} in progress events");
    }
    let waited = result["steps"].as_array().unwrap().iter().find(|s| s["name"] == "service-healthy").unwrap().clone();
    assert_eq!(waited["outcome"], "waited");

    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    for r in doc["resources"].as_array().unwrap() {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert_eq!(doc["service"]["running"], 2);
    assert_eq!(doc["service"]["healthy_targets"], 2);
    assert_eq!(doc["service"]["rollout"], "COMPLETED");

    // AWS refused nothing that a correct ordering avoids.
    let calls = realism.calls();
    let refused: Vec<&Value> = calls
        .iter()
        .filter(|c| {
            c["error"]
                .as_str()
                .is_some_and(|e| !["RequestLimitExceeded", "Throttling", "ThrottlingException"].contains(&e))
        })
        .filter(|c| c["action"].as_str().is_some_and(is_mutating))
        .collect();
    assert!(refused.is_empty(), "AWS would have refused: {refused:#?}");

    // Access logs on, into the stack's own bucket, which the layer checked lets ELB write.
    // (Read through the layer, which keeps a policy's conditioned statements that moto cannot hold.)
    let bucket = access_log_bucket(&sdk_at(&realism.url(), "us-east-1").await, &cli).await;

    // A second up: one round of describe calls, not one change.
    cli.run(&["up"]).ok();
    let again = &realism.calls()[calls.len()..];
    let mutating: Vec<&Value> = again.iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).collect();
    assert!(mutating.is_empty() && !again.is_empty(), "no-op up changed things: {mutating:#?}");

    // Logs in the bucket: `down` keeps it and says so, and `down --delete-data` empties and deletes it.
    let log = aws_sdk_s3::primitives::ByteStream::from_static(b"h2 2026-12-03T07:00:00Z app/x 1.2.3.4:5 - 200");
    sdk.s3.put_object().bucket(&bucket).key("AWSLogs/123456789012/x.log.gz").body(log).send().await.unwrap();
    let before_down = realism.calls().len();
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    assert!(down.stdout.contains(&format!("bucket {bucket} holds access logs and was kept")), "{}", down.stdout);
    assert_eq!(leftovers(&sdk, STACK).await, [format!("s3:bucket {bucket}")]);
    let status = cli.run(&["status"]);
    assert!(status.stdout.contains(&format!("only access-log bucket {bucket} is left")), "{}", status.stdout);
    let emptied = cli.run(&["down", "--yes", "--delete-data"]);
    assert_eq!(emptied.code, 0, "{}\n{}", emptied.stdout, emptied.stderr);
    let left = leftovers(&sdk, STACK).await;
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(cli.state().is_none(), "the state goes with the bucket");
    // Teardown followed AWS's hard constraints: the load balancer and the NAT gateway went while the
    // service drained, and each delete waited for the ENIs that block it (read calls) instead of
    // being refused and retried.
    let down_calls = &realism.calls()[before_down..];
    let errors = errors_by_action(down_calls);
    assert!(
        !errors.keys().any(|k| k.ends_with(":DependencyViolation") || k.ends_with(":InvalidIPAddress.InUse")),
        "a delete ran before what blocks it was gone: {errors:?}"
    );
    assert!(count(down_calls, "DescribeNetworkInterfaces", None) >= 2, "waited for the ENIs");
    let first = |action: &str| {
        down_calls
            .iter()
            .find(|c| c["action"] == action)
            .map(|c| c["start"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no {action}"))
    };
    let drained = down_calls
        .iter()
        .filter(|c| c["action"] == "DeleteSubnet")
        .map(|c| c["start"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(
        first("DeleteLoadBalancer") < drained && first("DeleteNatGateway") < drained,
        "started with the service's drain"
    );
    assert_eq!(count(down_calls, "DeleteVpc", None), 1);
}

/// The load balancer logs to the stack's own bucket, which is private, SSE-S3, expiring, tagged,
/// and whose policy lets the region's ELB account write; its name.
async fn access_log_bucket(sdk: &Sdk, cli: &Cli) -> String {
    let state = cli.state().unwrap();
    let bucket = state["resources"]["access-log-bucket"]["id"].as_str().unwrap().to_string();
    assert_eq!(bucket, format!("{STACK}-alb-logs-123456789012-us-east-1"));
    let lb = state["resources"]["load-balancer"]["id"].as_str().unwrap();
    let out = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(lb).send().await.unwrap();
    let attr = |key: &str| out.attributes().iter().find(|a| a.key() == Some(key)).and_then(|a| a.value());
    assert_eq!(attr("access_logs.s3.enabled"), Some("true"));
    assert_eq!(attr("access_logs.s3.bucket"), Some(bucket.as_str()));
    let s3 = &sdk.s3;
    let sse = s3.get_bucket_encryption().bucket(&bucket).send().await.unwrap();
    let rule = &sse.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(), "AES256");
    let block = s3.get_public_access_block().bucket(&bucket).send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!((block.block_public_acls(), block.restrict_public_buckets()), (Some(true), Some(true)));
    let owner = s3.get_bucket_ownership_controls().bucket(&bucket).send().await.unwrap();
    assert_eq!(owner.ownership_controls().unwrap().rules()[0].object_ownership().as_str(), "BucketOwnerEnforced");
    let life = s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.unwrap();
    assert_eq!(life.rules()[0].expiration().and_then(|e| e.days()), Some(90));
    let tags = s3.get_bucket_tagging().bucket(&bucket).send().await.unwrap();
    assert!(
        tags.tag_set().iter().any(|t| t.key() == "fargate-stack:stack" && t.value() == STACK),
        "tagged at creation"
    );
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let policy = policy.policy().unwrap();
    assert!(policy.contains("arn:aws:iam::127311923021:root") && policy.contains("aws:SecureTransport"), "{policy}");
    bucket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_creation_rides_out_iam_propagation() {
    let emulator = Emulator::start();
    // Roles unusable by ECS for 5 s after creation (scaled from 250 s).
    let options = RealismOptions { config: json!({"iam_propagation_s": 250}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let cli = Cli::at(&realism.url());
    cli.run(&["up", "--no-wait"]).ok();
    let calls = realism.calls();
    assert!(count(&calls, "CreateService", Some("InvalidParameterException")) >= 1, "{:?}", errors_by_action(&calls));
    assert_eq!(count(&calls, "CreateService", None), 1);
}

/// Where a test keeps the stack's state.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Local,
    /// `s3://STATE_BUCKET/stacks/<name>.json`, locked with conditional writes.
    S3,
}

const STATE_BUCKET: &str = "realism-state";
const STATE_KEY: &str = "stacks/simple-ecs-dev.json";

/// A CLI at `url` keeping its state where `backend` says (the bucket is made here, in moto).
async fn cli_for(backend: Backend, emulator: &Emulator, url: &str) -> Cli {
    match backend {
        Backend::Local => Cli::at(url),
        Backend::S3 => {
            create_bucket(&emulator.sdk().await, STATE_BUCKET).await;
            Cli::with_state(url, &format!("s3://{STATE_BUCKET}/stacks/"))
        }
    }
}

/// Run `args`; if the state is locked by a run that died, `unlock` it (with the ID the error
/// names) and run again, as a user would.
fn run_unlocking(cli: &Cli, args: &[&str]) -> Run {
    let run = cli.run(args);
    if !run.stderr.contains("is locked by another fargate-stack run") {
        return run;
    }
    let id = run.stderr.split(" unlock ").nth(1).and_then(|rest| rest.split('`').next()).expect("a lock ID");
    cli.run(&["unlock", id]).ok();
    cli.run(args)
}

async fn throttled_up_and_down(backend: Backend) {
    let emulator = Emulator::start();
    // With the state in S3, a fifth of its conditional writes also meet a racing one (409).
    let config = match backend {
        Backend::Local => json!({}),
        Backend::S3 => json!({"s3_conditional_conflict_rate": 0.2}),
    };
    let options = RealismOptions { fault_rate: 0.1, config, ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let cli = cli_for(backend, &emulator, &realism.url()).await;
    let sdk = emulator.sdk().await;
    let up = cli.run(&["up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(leftovers(&sdk, STACK).await.is_empty());
    let calls = realism.calls();
    let injected = calls.iter().filter(|c| c["injected"] == true && !c["error"].is_null()).count();
    assert!(injected * 100 >= calls.len() * 5, "{injected} faults in {} calls", calls.len());
    if backend == Backend::S3 {
        let s3_faults = |code: &str| calls.iter().filter(|c| c["service"] == "s3" && c["error"] == code).count();
        assert!(
            s3_faults("SlowDown") + s3_faults("InternalError") + s3_faults("ServiceUnavailable") > 0,
            "no S3 faults"
        );
        assert!(s3_faults("ConditionalRequestConflict") > 0, "no conditional-write races");
        assert!(s3_json(&sdk, STATE_BUCKET, STATE_KEY).await.is_none(), "down removes the state");
        assert!(s3_json(&sdk, STATE_BUCKET, &format!("{STATE_KEY}.lock")).await.is_none(), "no lock left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_down_pass_with_a_tenth_of_calls_throttled() {
    throttled_up_and_down(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_down_pass_with_a_tenth_of_calls_throttled_and_the_state_in_s3() {
    throttled_up_and_down(Backend::S3).await;
}

/// Kill `command` after each of its kill points (see `kill_points`): the layer executes that
/// mutating call and never answers it, so what it made exists but the tool never learns its ID.
/// The next run must find it again by tag or name, and after `down` nothing may remain. With the
/// state in S3 a killed run keeps its lock, which the next run reports and `unlock` removes. One
/// test per command and backend, so that the four run side by side.
async fn killed_after_any_mutating_call(backend: Backend, command: &str) {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let options = RealismOptions { time_scale: 0.001, ..Default::default() };
    // One step at a time, so that mutating call n is the same call in every run.
    let args: &[&str] = if command == "up" {
        &["--max-concurrency", "1", "up", "--no-wait"]
    } else {
        &["--max-concurrency", "1", "down", "--yes"]
    };
    let points = kill_points(backend, &emulator, command, args).await;
    let mut killed = vec![];
    for n in points {
        emulator.reset();
        let realism = Realism::start(&emulator, options.clone());
        let cli = cli_for(backend, &emulator, &realism.url()).await;
        if command == "down" {
            cli.run(&["up", "--no-wait"]).ok();
        }
        let before = realism.calls().iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).count();
        realism.freeze_after_mutations(before + n);
        let mut child =
            cli.command(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let frozen = loop {
            if let Some(action) = realism.wait_frozen(std::time::Duration::from_millis(50)) {
                break Some(action);
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
        };
        let _ = child.kill();
        child.wait().unwrap();
        let action = frozen.unwrap_or_else(|| panic!("{command}: mutating call {n} was never made"));
        killed.push(action.clone());
        realism.thaw();
        if command == "up" {
            run_unlocking(&cli, &["up", "--no-wait"]).ok();
            assert_exactly_one_stack(&sdk).await;
        }
        run_unlocking(&cli, &["down", "--yes"]).ok();
        let left = leftovers(&sdk, STACK).await;
        assert!(left.is_empty(), "{command} killed after mutating call {n} ({action}): left {left:#?}");
        if backend == Backend::S3 {
            assert!(s3_json(&sdk, STATE_BUCKET, STATE_KEY).await.is_none(), "{command} killed at {n}: state left");
        }
    }
    let min = match (backend, command) {
        (Backend::Local, "up") => 30,
        (Backend::Local, _) => 20,
        // The lock, a sample of the state writes, the removals.
        (Backend::S3, _) => 10,
    };
    assert!(killed.len() >= min, "{command}: only {} kill points: {killed:?}", killed.len());
    eprintln!("{command} ({backend:?}): killed after each of {} mutating calls: {killed:?}", killed.len());
}

/// Which mutating calls of `args` to kill after, numbered as they come in an uninterrupted run.
/// Sampled so that each kind of resume is taken once (these four tests are the longest of the
/// suite; the guide: kill points whose resumes are alike are sampled):
/// - With the local state: every action's first call. A second `CreateSubnet`, `CreateRole` or
///   `PutMetricAlarm` is resumed as the first was, by the same adoption by tag or name, so the run
///   grows with the kinds of call, not with the resources. Of a run of settings put on one S3 bucket
///   (its public access block, encryption, policy, lifecycle: each resumed alike, by the next run's
///   diff) only the first.
/// - With the state in S3: writes to the state's bucket (the lock, the state writes, the state's and
///   the lock's deletion: object writes, not the access-log bucket's settings): the first three (the
///   lock, the first state, the first resource recorded), the last three (the last resource
///   recorded, the state's and lock's removal) and every fourth in between: a state with resource k
///   recorded resumes as the state with k + 1 does. A kill between two writes (a resource made, not
///   yet recorded) is resumed by adoption by tag, which does not depend on where the state is: the
///   local run covers it.
async fn kill_points(backend: Backend, emulator: &Emulator, command: &str, args: &[&str]) -> Vec<usize> {
    emulator.reset();
    let realism = Realism::start(emulator, RealismOptions { time_scale: 0.001, ..Default::default() });
    let cli = cli_for(backend, emulator, &realism.url()).await;
    if command == "down" {
        cli.run(&["up", "--no-wait"]).ok();
    }
    let before = realism.calls().iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).count();
    cli.run(args).ok();
    let calls: Vec<Value> =
        realism.calls().into_iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).collect();
    let calls = &calls[before..];
    let bucket_setting = |c: &Value| {
        c["service"] == "s3" && c["action"].as_str().is_some_and(|a| a.starts_with("Put") && !a.ends_with("Object"))
    };
    let points: Vec<usize> = match backend {
        Backend::Local => {
            let mut taken = std::collections::HashSet::new();
            (0..calls.len())
                .filter(|&i| {
                    let bucket_run = bucket_setting(&calls[i]) && i > 0 && bucket_setting(&calls[i - 1]);
                    taken.insert(calls[i]["action"].as_str().unwrap()) && !bucket_run
                })
                .collect()
        }
        Backend::S3 => {
            let state_write =
                |c: &Value| c["service"] == "s3" && c["action"].as_str().is_some_and(|a| a.ends_with("Object"));
            let writes: Vec<usize> = (0..calls.len()).filter(|&i| state_write(&calls[i])).collect();
            let last_three = writes.len().saturating_sub(3);
            writes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j < 3 || *j >= last_three || j % 4 == 0)
                .map(|(_, &i)| i)
                .collect()
        }
    };
    let points: Vec<usize> = points.into_iter().map(|i| i + 1).collect();
    assert!(!points.is_empty(), "{command} made no mutating call");
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_any_mutating_call_of_up_the_next_run_adopts_and_nothing_leaks() {
    killed_after_any_mutating_call(Backend::Local, "up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_any_mutating_call_of_down_the_next_down_finishes_and_nothing_leaks() {
    killed_after_any_mutating_call(Backend::Local, "down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_any_mutating_call_of_up_with_the_state_in_s3_the_next_run_unlocks_and_resumes() {
    killed_after_any_mutating_call(Backend::S3, "up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_any_mutating_call_of_down_with_the_state_in_s3_the_next_run_unlocks_and_finishes() {
    killed_after_any_mutating_call(Backend::S3, "down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_deployment_is_a_failure_and_the_next_up_recovers() {
    let emulator = Emulator::start();
    let options = RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let cli = Cli::at(&realism.url());
    cli.run(&["up"]).ok();
    let good = cli.state().unwrap()["resources"]["task-definition"]["id"].as_str().unwrap().to_string();

    // An image whose tasks never pass health checks: the circuit breaker rolls back.
    cli.write_config(&config_with(&[("image", "image = \"nginx:fails-health-checks\"")]));
    let failed = cli.run(&["up", "--yes"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("rolled back"), "{}", failed.stderr);
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "status is honest about what runs");
    let doc = status.json();
    let service = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "service").unwrap().clone();
    assert_eq!(service["status"], "drifted", "{service}");

    // Back to a good image: up rolls forward and waits for a healthy service.
    cli.write_config(&config_with(&[]));
    cli.run(&["up"]).ok();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(status.json()["service"]["healthy_targets"], 2);
    let now = cli.state().unwrap()["resources"]["task-definition"]["id"].as_str().unwrap().to_string();
    assert_ne!(now, good, "a new revision with the good image");
}
