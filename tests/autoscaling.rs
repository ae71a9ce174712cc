//! Target-tracking autoscaling: the service registered with Application Auto Scaling, one policy
//! per metric, and an `up` that never fights the autoscaler. Every test runs through the realism
//! layer: moto answers Application Auto Scaling's tagging calls with HTTP 500, and knows nothing of
//! the service-linked role, the registration's clamping or AWS's eventual consistency.

mod common;

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableTarget, ScalingPolicy, ServiceNamespace};
use common::*;
use serde_json::{json, Value};

/// min 2, max 6, CPU 50 %, 800 requests per target.
const SCALING: &str = "min_count = 2\nmax_count = 6\ncpu_target_percent = 50\nrequests_per_target = 800\n\
                       scale_in_cooldown_seconds = 120\nscale_out_cooldown_seconds = 30";

/// The default stack under `name`, with `[autoscaling]` when given.
fn config(name: &str, scaling: Option<&str>, edits: &[(&str, &str)]) -> String {
    let name_line = format!("name = \"{name}\"");
    let mut all = vec![("name", name_line.as_str())];
    all.extend_from_slice(edits);
    let mut text = config_with(&all);
    if let Some(scaling) = scaling {
        text.push_str(&format!("\n[autoscaling]\n{scaling}\n"));
    }
    text
}

/// The service as Application Auto Scaling names it.
fn resource_id(name: &str) -> String {
    format!("service/{name}-cluster/{name}-service")
}

fn state(cli: &Cli, name: &str) -> Value {
    let path = cli.dir.path().join(".fargate-stack").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("a state file")).unwrap()
}

fn row<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} in {doc}"))
}

fn mutating(calls: &[Value]) -> Vec<String> {
    calls.iter().map(|c| c["action"].as_str().unwrap().to_string()).filter(|a| is_mutating(a)).collect()
}

fn position(calls: &[Value], action: &str) -> usize {
    calls
        .iter()
        .position(|c| c["action"] == action && c["error"].is_null())
        .unwrap_or_else(|| panic!("no successful {action}"))
}

/// Every ECS scalable target Application Auto Scaling has.
async fn targets(sdk: &Sdk) -> Vec<ScalableTarget> {
    let out = sdk.autoscaling.describe_scalable_targets().service_namespace(ServiceNamespace::Ecs).send().await;
    out.unwrap().scalable_targets().to_vec()
}

async fn target(sdk: &Sdk, name: &str) -> Option<ScalableTarget> {
    targets(sdk).await.into_iter().find(|t| t.resource_id() == resource_id(name))
}

/// The policies under a service's target.
async fn policies(sdk: &Sdk, name: &str) -> Vec<ScalingPolicy> {
    let out = sdk
        .autoscaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(name))
        .send()
        .await
        .unwrap();
    let mut all = out.scaling_policies().to_vec();
    all.sort_by(|a, b| a.policy_name().cmp(b.policy_name()));
    all
}

fn target_value(policy: &ScalingPolicy) -> f64 {
    policy.target_tracking_scaling_policy_configuration().unwrap().target_value()
}

async fn desired(sdk: &Sdk, name: &str) -> i32 {
    stack_service(sdk, name).await.desired_count()
}

/// What an autoscaler does: set the service's desired count.
async fn autoscale(sdk: &Sdk, name: &str, count: i32) {
    sdk.ecs
        .update_service()
        .cluster(format!("{name}-cluster"))
        .service(format!("{name}-service"))
        .desired_count(count)
        .send()
        .await
        .unwrap();
}

/// The realism layer at `time_scale` with `config` over its defaults, and SDK clients through it.
async fn world(emulator: &Emulator, time_scale: f64, config: Value) -> (Realism, Sdk) {
    let realism = Realism::start(emulator, RealismOptions { time_scale, config, ..Default::default() });
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    (realism, sdk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_registers_the_service_with_a_policy_per_metric_and_down_deregisters_it_first() {
    let emulator = Emulator::start();
    // AWS's consistency windows stretched so that `up` surely meets them: Application Auto Scaling
    // does not see a new service for 1 s, and PutScalingPolicy a new target for 0.5 s.
    let windows = json!({"iam_propagation_s": 0, "aas_service_visible_s": 100, "aas_target_visible_s": 50});
    let (realism, sdk) = world(&emulator, 0.01, windows).await;
    let cli = Cli::at(&realism.url());
    cli.write_config(&config(STACK, Some(SCALING), &[]));

    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for (name, kind) in [
        ("scalable-target", "application-autoscaling:scalable-target"),
        ("scaling-policy-cpu", "application-autoscaling:scaling-policy"),
        ("scaling-policy-requests", "application-autoscaling:scaling-policy"),
    ] {
        let r = row(&plan, "resources", name);
        assert_eq!((r["action"].as_str(), r["kind"].as_str()), (Some("create"), Some(kind)), "{r}");
    }
    let text = cli.run(&["up", "--dry-run"]).ok().stdout;
    let scaled = fargate_stack::config::Config::parse("t", &config(STACK, Some(SCALING), &[])).unwrap();
    assert_eq!(resources_of(&scaled), default_resources() + 3, "a target and two policies");
    // All but the VPC's default group, which AWS makes with the VPC.
    assert!(text.contains(&format!("plan: {} to create", resources_of(&scaled) - 1)), "{text}");
    assert!(text.contains("note: with [autoscaling], Application Auto Scaling owns the running count"), "{text}");

    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert!(up.stdout.contains("\"name\":\"scalable-target\""), "a progress line of its own");
    for name in ["scalable-target", "scaling-policy-cpu", "scaling-policy-requests"] {
        assert_eq!(row(&up.json(), "steps", name)["outcome"], "created");
    }
    // AWS's "not yet" answers were ridden out, not reported.
    let calls = realism.calls();
    let refused =
        |action: &str, code: &str| calls.iter().filter(|c| c["action"] == action && c["error"] == code).count();
    assert!(refused("RegisterScalableTarget", "ValidationException") >= 1, "the service was not visible yet");
    assert!(refused("PutScalingPolicy", "ObjectNotFoundException") >= 1, "the target was not visible yet");

    // Registered as configured, with the service-linked role AWS creates, and tagged as the stack's.
    let registered = target(&sdk, STACK).await.expect("registered");
    assert_eq!((registered.min_capacity(), registered.max_capacity()), (2, 6));
    assert!(registered.role_arn().ends_with("/AWSServiceRoleForApplicationAutoScaling_ECSService"));
    let arn = registered.scalable_target_arn().unwrap();
    let tags = sdk.autoscaling.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get(STACK_TAG).map(String::as_str), Some(STACK));
    let recorded = state(&cli, STACK);
    let resources = &recorded["resources"];
    assert_eq!(resources["scalable-target"]["id"], arn);
    assert_eq!(resources["scalable-target"]["attrs"]["max_count"], "6");
    let all = policies(&sdk, STACK).await;
    let names: Vec<&str> = all.iter().map(|p| p.policy_name()).collect();
    assert_eq!(names, [format!("{STACK}-cpu"), format!("{STACK}-requests")]);
    assert_eq!(resources["scaling-policy-cpu"]["id"], all[0].policy_arn());
    assert_eq!((target_value(&all[0]), target_value(&all[1])), (50.0, 800.0));
    let cpu = all[0].target_tracking_scaling_policy_configuration().unwrap();
    assert_eq!(
        (cpu.scale_in_cooldown(), cpu.scale_out_cooldown(), cpu.disable_scale_in()),
        (Some(120), Some(30), Some(false))
    );
    let label =
        all[1].target_tracking_scaling_policy_configuration().unwrap().predefined_metric_specification().unwrap();
    let lb = resources["load-balancer"]["id"].as_str().unwrap();
    let tg = resources["target-group"]["id"].as_str().unwrap();
    assert_eq!(
        label.resource_label().unwrap(),
        format!("{}/{}", lb.split_once(":loadbalancer/").unwrap().1, tg.rsplit_once(':').unwrap().1)
    );

    // `status` shows the three resources and the range the desired count is kept in.
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    for name in ["scalable-target", "scaling-policy-cpu", "scaling-policy-requests"] {
        assert_eq!(row(&doc, "resources", name)["status"], "ok");
    }
    assert_eq!(doc["service"]["desired"], 2);
    assert_eq!(doc["service"]["autoscaling"], json!({"min": 2, "max": 6}));
    let text = cli.run(&["status"]).ok().stdout;
    assert!(text.contains("service: desired 2 (autoscaling 2..=6)"), "{text}");
    assert!(text.contains("application-autoscaling:scaling-policy"), "{text}");

    // `down` deletes the policies, deregisters the target, and only then touches the service.
    let before = realism.calls().len();
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    let calls = &realism.calls()[before..];
    let deregistered = position(calls, "DeregisterScalableTarget");
    assert!(position(calls, "DeleteScalingPolicy") < deregistered);
    assert!(deregistered < position(calls, "UpdateService"), "scaled to 0 only once the autoscaler is gone");
    assert!(deregistered < position(calls, "DeleteService"));
    assert!(targets(&sdk).await.is_empty(), "nothing left in Application Auto Scaling");
    assert!(policies(&sdk, STACK).await.is_empty());
    let left = leftovers(&emulator.sdk().await, STACK).await;
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscalers_count_is_never_reset_inside_the_range_and_is_clamped_outside() {
    let emulator = Emulator::start();
    let (realism, sdk) = world(&emulator, 0.005, json!({"iam_propagation_s": 0})).await;
    let cli = Cli::at(&realism.url());
    // A range that cannot hold is refused before any AWS call, naming the key.
    cli.write_config(&config(STACK, Some("min_count = 7\nmax_count = 6"), &[]));
    let refused = cli.run(&["up", "--no-wait"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains(": autoscaling.min_count: 7: "), "{}", refused.stderr);
    assert!(realism.calls().is_empty(), "{:?}", realism.calls());
    cli.write_config(&config(STACK, Some(SCALING), &[]));
    cli.run(&["up", "--no-wait"]).ok();

    // Inside [2, 6]: the autoscaler's choice, not drift, and `up` changes nothing.
    autoscale(&sdk, STACK, 5).await;
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    assert_ne!(row(&doc, "resources", "service")["status"], "drifted", "{doc}");
    assert_eq!(doc["service"]["desired"], 5);
    let before = realism.calls().len();
    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let changed = mutating(&realism.calls()[before..]);
    assert!(changed.is_empty(), "up fought the autoscaler: {changed:?}");
    assert_eq!(row(&up.json(), "steps", "service")["outcome"], "unchanged");
    assert_eq!(desired(&sdk, STACK).await, 5);
    let no_op = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(no_op["nothing_to_change"], true, "{no_op}");

    // Above the range: drift, and `up` brings it to the nearest bound with one call.
    autoscale(&sdk, STACK, 9).await;
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    let service = row(&status.json(), "resources", "service").clone();
    assert_eq!(service["status"], "drifted", "{service}");
    assert!(service["detail"].as_str().unwrap().contains("desired count (autoscaling range 2..=6): 9 → 6"));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let planned = row(&plan, "resources", "service");
    assert_eq!((planned["action"].as_str(), planned["changes"][0]["to"].as_str()), (Some("update"), Some("6")));
    let before = realism.calls().len();
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(mutating(&realism.calls()[before..]), ["UpdateService"]);
    assert_eq!(desired(&sdk, STACK).await, 6);

    // Below it: up to min_count.
    autoscale(&sdk, STACK, 1).await;
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(desired(&sdk, STACK).await, 2);
    assert_eq!(cli.run(&["status"]).code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_update_in_place_and_removing_the_section_deregisters_and_restores_the_count() {
    let emulator = Emulator::start();
    let (realism, sdk) = world(&emulator, 0.005, json!({"iam_propagation_s": 0})).await;
    let cli = Cli::at(&realism.url());
    cli.write_config(&config(STACK, Some(SCALING), &[]));
    cli.run(&["up", "--no-wait"]).ok();
    let target_arn = target(&sdk, STACK).await.unwrap().scalable_target_arn().unwrap().to_string();
    let cpu_arn = policies(&sdk, STACK).await[0].policy_arn().to_string();
    autoscale(&sdk, STACK, 5).await;

    // A wider range, another CPU target, no request tracking.
    let wider = "min_count = 3\nmax_count = 8\ncpu_target_percent = 70\n\
                 scale_in_cooldown_seconds = 120\nscale_out_cooldown_seconds = 30";
    cli.write_config(&config(STACK, Some(wider), &[("desired_count", "desired_count = 3")]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let changes = |name: &str| planned_changes(&plan, name);
    assert_eq!(
        changes("scalable-target"),
        ("update".into(), vec!["autoscaling.min_count: 2 → 3".into(), "autoscaling.max_count: 6 → 8".into()])
    );
    assert_eq!(
        changes("scaling-policy-cpu"),
        ("update".into(), vec!["autoscaling.cpu_target_percent: 50 → 70".into()])
    );
    assert_eq!(changes("scaling-policy-requests").0, "delete");
    let service = changes("service");
    assert!(
        service.0 != "update" && service.1.is_empty(),
        "5 is inside 3..=8, and desired_count only starts a new service: {service:?}"
    );
    cli.run(&["up", "--no-wait"]).ok();
    let updated = target(&sdk, STACK).await.unwrap();
    assert_eq!(updated.scalable_target_arn(), Some(target_arn.as_str()), "updated in place");
    assert_eq!((updated.min_capacity(), updated.max_capacity()), (3, 8));
    let left = policies(&sdk, STACK).await;
    assert_eq!(left.len(), 1, "the request policy is gone");
    assert_eq!((left[0].policy_arn(), target_value(&left[0])), (cpu_arn.as_str(), 70.0));
    assert!(state(&cli, STACK)["resources"].get("scaling-policy-requests").is_none());
    assert_eq!(desired(&sdk, STACK).await, 5);

    // No [autoscaling] at all: deregistered before the service gets desired_count back.
    cli.write_config(&config(STACK, None, &[("desired_count", "desired_count = 4")]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for name in ["scalable-target", "scaling-policy-cpu"] {
        assert_eq!(row(&plan, "resources", name)["action"], "delete");
    }
    let service = row(&plan, "resources", "service");
    assert_eq!((service["changes"][0]["from"].as_str(), service["changes"][0]["to"].as_str()), (Some("5"), Some("4")));
    let before = realism.calls().len();
    let up = cli.run(&["--output", "json", "up", "--no-wait"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let calls = &realism.calls()[before..];
    assert!(
        position(calls, "DeregisterScalableTarget") < position(calls, "UpdateService"),
        "the autoscaler goes first"
    );
    assert!(target(&sdk, STACK).await.is_none());
    assert!(policies(&sdk, STACK).await.is_empty());
    assert_eq!(desired(&sdk, STACK).await, 4);
    let recorded = state(&cli, STACK);
    assert!(recorded["resources"].as_object().unwrap().keys().all(|k| !k.starts_with("scal")), "{recorded}");
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(status.json()["service"].get("autoscaling").is_none());
    let before = realism.calls().len();
    cli.run(&["up", "--no-wait"]).ok();
    assert!(mutating(&realism.calls()[before..]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_up_resumes_with_one_target_and_one_policy_per_metric_and_down_finds_an_unrecorded_one() {
    let emulator = Emulator::start();
    // No "not yet" answers: the mutating calls of a run are the same in every run.
    let options = RealismOptions {
        time_scale: 0.001,
        config: json!({"iam_propagation_s": 0, "aas_service_visible_s": 0, "aas_target_visible_s": 0}),
        ..Default::default()
    };
    let realism = Realism::start(&emulator, options);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let cli = Cli::at(&realism.url());
    let (plain, scaled) = (config(STACK, None, &[]), config(STACK, Some(SCALING), &[]));
    cli.write_config(&plain);
    cli.run(&["up", "--no-wait"]).ok();
    // From a stack without autoscaling, `up` makes exactly these calls, one at a time.
    // (The third, the request policy's PutScalingPolicy, is resumed the same way as the second.)
    for (n, expected) in [(1, "RegisterScalableTarget"), (2, "PutScalingPolicy")] {
        cli.write_config(&scaled);
        realism.freeze_after_mutations(mutating(&realism.calls()).len() + n);
        let mut child = cli
            .command(&["--max-concurrency", "1", "up", "--no-wait"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let frozen = realism.wait_frozen(Duration::from_secs(30));
        child.kill().unwrap();
        child.wait().unwrap();
        realism.thaw();
        assert_eq!(frozen.as_deref(), Some(expected), "mutating call {n}");

        let resumed = cli.run(&["--output", "json", "up", "--no-wait"]);
        assert_eq!(resumed.code, 0, "{}", resumed.stderr);
        let adopted = ["scalable-target", "scaling-policy-cpu"][n - 1];
        assert_ne!(row(&resumed.json(), "steps", adopted)["outcome"], "created", "{adopted} was adopted");
        let ours: Vec<_> = targets(&sdk).await.into_iter().filter(|t| t.resource_id() == resource_id(STACK)).collect();
        assert_eq!(ours.len(), 1, "killed after call {n}");
        let names: Vec<String> = policies(&sdk, STACK).await.iter().map(|p| p.policy_name().to_string()).collect();
        assert_eq!(names, [format!("{STACK}-cpu"), format!("{STACK}-requests")], "killed after call {n}");
        let recorded = state(&cli, STACK);
        for key in ["scalable-target", "scaling-policy-cpu", "scaling-policy-requests"] {
            assert!(recorded["resources"].get(key).is_some(), "{key} recorded after call {n}");
        }
        // Back to no autoscaling for the next kill point.
        cli.write_config(&plain);
        cli.run(&["up", "--no-wait"]).ok();
        assert!(target(&sdk, STACK).await.is_none());
    }

    // Killed right after registering, before the state recorded it, then [autoscaling] removed:
    // `down` still finds the target by the service's name and its tags.
    cli.write_config(&scaled);
    realism.freeze_after_mutations(mutating(&realism.calls()).len() + 1);
    let mut child = cli
        .command(&["up", "--no-wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(30)).as_deref(), Some("RegisterScalableTarget"));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
    assert!(state(&cli, STACK)["resources"].get("scalable-target").is_none());
    cli.write_config(&plain);
    let down = cli.run(&["--output", "json", "down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(row(&down.json(), "steps", "scalable-target")["outcome"], "deleted");
    assert!(targets(&sdk).await.is_empty());
    assert!(leftovers(&emulator.sdk().await, STACK).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_keep_to_their_own_targets_and_leave_anyone_elses_alone() {
    let emulator = Emulator::start();
    let (realism, sdk) = world(&emulator, 0.005, json!({"iam_propagation_s": 0})).await;
    let (app, app2) = (Cli::at(&realism.url()), Cli::at(&realism.url()));
    app.write_config(&config("app", None, &[]));
    app.run(&["up", "--no-wait"]).ok();

    // Someone registered app's service by hand (no tags): `up` refuses to take it over.
    let register = |min: i32, max: i32| {
        sdk.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id("app"))
            .scalable_dimension(aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(min)
            .max_capacity(max)
            .send()
    };
    register(1, 3).await.unwrap();
    app.write_config(&config("app", Some(SCALING), &[]));
    let refused = app.run(&["up", "--no-wait"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("is not stack app's (no fargate-stack:stack tag)"), "{}", refused.stderr);
    let theirs = target(&sdk, "app").await.unwrap();
    assert_eq!((theirs.min_capacity(), theirs.max_capacity()), (1, 3), "left as it was");
    let status = app.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3);
    assert_eq!(row(&status.json(), "resources", "scalable-target")["status"], "missing");
    sdk.autoscaling
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id("app"))
        .scalable_dimension(aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .unwrap();
    app.run(&["up", "--no-wait"]).ok();

    // app-2, whose names have app's as a prefix, beside it.
    app2.write_config(&config("app-2", Some(SCALING), &[]));
    app2.run(&["up", "--no-wait"]).ok();
    assert_eq!(targets(&sdk).await.len(), 2);
    for (cli, name) in [(&app, "app"), (&app2, "app-2")] {
        assert_eq!(cli.run(&["status"]).code, 0, "{name}");
        let names: Vec<String> = policies(&sdk, name).await.iter().map(|p| p.policy_name().to_string()).collect();
        assert_eq!(names, [format!("{name}-cpu"), format!("{name}-requests")]);
    }
    // app-2's autoscaler at work is none of app's business.
    autoscale(&sdk, "app-2", 6).await;
    let before = realism.calls().len();
    app.run(&["up", "--no-wait"]).ok();
    assert!(mutating(&realism.calls()[before..]).is_empty());

    app.run(&["down", "--yes"]).ok();
    let left: Vec<String> = targets(&sdk).await.iter().map(|t| t.resource_id().to_string()).collect();
    assert_eq!(left, [resource_id("app-2")], "app's down took only app's target");
    assert_eq!(policies(&sdk, "app-2").await.len(), 2);
    assert_eq!(desired(&sdk, "app-2").await, 6);
    assert_eq!(app2.run(&["status"]).code, 0);
    app2.run(&["down", "--yes"]).ok();
    assert!(targets(&sdk).await.is_empty());
    let moto = emulator.sdk().await;
    for name in ["app", "app-2"] {
        let left = leftovers(&moto, name).await;
        assert!(left.is_empty(), "{name} left {left:#?}");
    }
}
