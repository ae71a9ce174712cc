//! Scheduled scaling: `[[autoscaling.schedule]]` entries as Application Auto Scaling scheduled
//! actions on the stack's scalable target, with a second stack's actions of the same entry names
//! beside them. One `up` of each, through the realism layer (fast).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_applicationautoscaling::types::{
    ScalableDimension, ScalableTargetAction, ScheduledAction, ServiceNamespace,
};
use common::*;
use serde_json::{json, Value};

const OTHER: &str = "simple-ecs-dev-2";

const NIGHT: &str = "[[autoscaling.schedule]]\nname = \"night\"\ncron = \"0 20 ? * MON-FRI *\"\nmin_count = 0\n\
                     max_count = 0\ntimezone = \"Europe/Berlin\"\n";
const MORNING: &str = "[[autoscaling.schedule]]\nname = \"morning\"\ncron = \"cron(0 7 ? * MON-FRI *)\"\n\
                       min_count = 2\nmax_count = 4\ntimezone = \"Europe/Berlin\"\n";

/// The default stack under `name` with `[autoscaling]` 2..=4 and `schedule`.
fn config(name: &str, schedule: &str) -> String {
    let name_line = format!("name = \"{name}\"");
    let text = config_with(&[("name", name_line.as_str())]);
    format!("{text}\n[autoscaling]\nmin_count = 2\nmax_count = 4\n\n{schedule}")
}

fn resource_id(name: &str) -> String {
    format!("service/{name}-cluster/{name}-service")
}

/// The scheduled actions on a stack's service, by name: (schedule, time zone, min, max).
async fn actions(sdk: &Sdk, name: &str) -> Vec<(String, String, String, Option<i32>, Option<i32>)> {
    let out = sdk
        .autoscaling
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(name))
        .send()
        .await
        .unwrap();
    let mut all: Vec<_> = out
        .scheduled_actions()
        .iter()
        .filter(|a| a.resource_id() == resource_id(name))
        .map(|a: &ScheduledAction| {
            let range = a.scalable_target_action();
            (
                a.scheduled_action_name().to_string(),
                a.schedule().to_string(),
                a.timezone().unwrap_or_default().to_string(),
                range.and_then(|r| r.min_capacity()),
                range.and_then(|r| r.max_capacity()),
            )
        })
        .collect();
    all.sort();
    all
}

fn action(name: &str, schedule: &str, min: i32, max: i32) -> (String, String, String, Option<i32>, Option<i32>) {
    (name.into(), schedule.into(), "Europe/Berlin".into(), Some(min), Some(max))
}

fn row<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_made_shown_repaired_narrowed_and_torn_down() {
    let started = Instant::now();
    let emulator = Emulator::start();
    let options = RealismOptions { time_scale: 0.005, config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let cli = Cli::at(&realism.url());
    let other = Cli::at(&realism.url());
    let both = format!("{NIGHT}\n{MORNING}");
    cli.write_config(&config(STACK, &both));
    other.write_config(&config(OTHER, NIGHT));

    // The plan: the actions are a resource of their own, and the bill is the month under the schedule.
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let planned = row(&plan, "scheduled-actions");
    assert_eq!(
        (planned["action"].as_str(), planned["kind"].as_str()),
        (Some("create"), Some("application-autoscaling:scheduled-action"))
    );
    let text = cli.run(&["up", "--dry-run"]).ok().stdout;
    assert!(text.contains("estimate under autoscaling.schedule"), "{text}");

    // Killed once AWS made the first action (before the state records any): the next `up` adopts it
    // by its name under the stack's target and puts the other.
    realism.freeze_at("PutScheduledAction");
    let mut child = cli.command(&["up", "--yes"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(60)).as_deref(), Some("PutScheduledAction"));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
    let (night, morning) = (format!("{STACK}-schedule-night"), format!("{STACK}-schedule-morning"));
    assert_eq!(actions(&sdk, STACK).await.len(), 1, "one made before the kill");
    assert!(cli.state().unwrap()["resources"].get("scheduled-actions").is_none(), "and not recorded");
    let resumed = cli.run(&["--output", "json", "up", "--yes"]).ok().json();
    let step = resumed["steps"].as_array().unwrap().iter().find(|r| r["name"] == "scheduled-actions").unwrap();
    assert_eq!(step["outcome"], "updated", "{step}");
    other.run(&["up", "--yes"]).ok();
    let mine =
        vec![action(&morning, "cron(0 7 ? * MON-FRI *)", 2, 4), action(&night, "cron(0 20 ? * MON-FRI *)", 0, 0)];
    assert_eq!(actions(&sdk, STACK).await, mine, "as read back from Application Auto Scaling");
    let theirs = vec![action(&format!("{OTHER}-schedule-night"), "cron(0 20 ? * MON-FRI *)", 0, 0)];
    assert_eq!(actions(&sdk, OTHER).await, theirs, "the second stack's, same entry name, no collision");
    let recorded = cli.state().unwrap()["resources"]["scheduled-actions"]["id"].as_str().unwrap().to_string();
    assert_eq!(recorded, format!("{morning},{night}"), "the state records them");

    // `status`: the next change, as the entries' crons say from now.
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert_eq!(status["state"], "up", "{status}");
    assert_eq!(row(&status, "scheduled-actions")["status"], "ok");
    let parsed = fargate_stack::config::Config::parse("t", &config(STACK, &both)).unwrap();
    let schedule = &parsed.autoscaling.as_ref().unwrap().schedule;
    let (at, entry) = fargate_stack::config::next_change(schedule, chrono::Utc::now()).unwrap();
    let next = &status["next_scheduled_change"];
    assert_eq!(next["at"], at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "{next}");
    assert_eq!((next["name"].as_str(), next["timezone"].as_str()), (Some(entry.name.as_str()), Some("Europe/Berlin")));
    assert_eq!(
        (next["min_count"].as_u64(), next["max_count"].as_u64()),
        (Some(entry.min_count.into()), Some(entry.max_count.into()))
    );
    let text = cli.run(&["status"]).ok().stdout;
    assert!(text.contains("next scheduled change: "), "{text}");

    // The night's range on the target (as if `night` had fired) is the schedule's doing: no drift.
    let target = |min: i32, max: i32| {
        sdk.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id(STACK))
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(min)
            .max_capacity(max)
            .send()
    };
    target(0, 0).await.unwrap();
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert_eq!(row(&status, "scalable-target")["status"], "ok", "{status}");

    // Changed and deleted outside fargate-stack: drift in `status`, rows in the plan, `up` repairs.
    let put = sdk
        .autoscaling
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(STACK))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .scheduled_action_name(&night)
        .schedule("cron(0 22 ? * MON-FRI *)")
        .timezone("Europe/Berlin")
        .scalable_target_action(ScalableTargetAction::builder().min_capacity(1).max_capacity(1).build());
    put.send().await.unwrap();
    let delete = sdk
        .autoscaling
        .delete_scheduled_action()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(STACK))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .scheduled_action_name(&morning);
    delete.send().await.unwrap();
    let drifted = cli.run(&["--output", "json", "status"]);
    assert_eq!(drifted.code, 3, "drift needs attention: {}", drifted.stderr);
    let status = drifted.json();
    assert_eq!(
        (status["state"].as_str(), row(&status, "scheduled-actions")["status"].as_str()),
        (Some("drifted"), Some("drifted"))
    );
    assert_eq!(row(&status, "service")["status"], "ok", "0 tasks under the night's range is no drift: {status}");
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (verb, changes) = planned_changes(&plan, "scheduled-actions");
    assert_eq!(verb, "update");
    assert_eq!(
        changes,
        vec![
            "autoscaling.schedule morning: absent → cron(0 7 ? * MON-FRI *) Europe/Berlin, min 2, max 4",
            "autoscaling.schedule night: cron(0 22 ? * MON-FRI *) Europe/Berlin, min 1, max 1 → cron(0 20 ? * MON-FRI *) \
             Europe/Berlin, min 0, max 0",
        ]
    );
    cli.run(&["up", "--yes"]).ok();
    assert_eq!(actions(&sdk, STACK).await, mine, "repaired");

    // An entry dropped from the config: a removal row, and `up` deletes its action only.
    cli.write_config(&config(STACK, NIGHT));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (verb, changes) = planned_changes(&plan, "scheduled-actions");
    assert_eq!(verb, "update");
    assert_eq!(
        changes,
        vec![
            "autoscaling.schedule morning: cron(0 7 ? * MON-FRI *) Europe/Berlin, min 2, max 4 → absent (`up` deletes the \
             scheduled action)"
        ]
    );
    cli.run(&["up", "--yes"]).ok();
    assert_eq!(actions(&sdk, STACK).await, mine[1..].to_vec());
    assert_eq!(cli.state().unwrap()["resources"]["scheduled-actions"]["id"], night.as_str());

    // `down`: nothing of the stack left in Application Auto Scaling; the other stack's untouched.
    let down = cli.run(&["--output", "json", "down", "--yes"]).ok().json();
    let step = down["steps"].as_array().unwrap().iter().find(|r| r["name"] == "scheduled-actions").unwrap();
    assert_eq!(step["outcome"], "deleted", "{down}");
    assert!(actions(&sdk, STACK).await.is_empty());
    assert!(leftovers(&sdk, STACK).await.is_empty(), "{:?}", leftovers(&sdk, STACK).await);
    assert_eq!(actions(&sdk, OTHER).await, theirs);
    eprintln!("scheduled scaling: {:.1}s", started.elapsed().as_secs_f64());
}
