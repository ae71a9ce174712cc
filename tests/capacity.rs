//! Paying less for the same service: Fargate Spot through a capacity provider strategy, switched on
//! and off on a running stack beside another one. Through the realism layer: moto lets a service
//! use providers its cluster does not have, switch between a launch type and a strategy without a
//! new deployment, and places no task on a provider.

mod common;

use common::*;
use serde_json::{json, Value};

const SPOT: &str = "desired_count = 2\nspot = { base = 1, weight = 3 }";

fn config(name: &str, service_edit: Option<&str>) -> String {
    let name_line = format!("name = \"{name}\"");
    let mut edits = vec![("name", name_line.as_str())];
    if let Some(edit) = service_edit {
        edits.push(("desired_count", edit));
    }
    config_with(&edits)
}

fn row<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} in {doc}"))
}

fn strategy(s: &aws_sdk_ecs::types::Service) -> Vec<(String, i32, i32)> {
    s.capacity_provider_strategy().iter().map(|i| (i.capacity_provider().to_string(), i.base(), i.weight())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_is_switched_on_and_off_on_a_running_stack_and_down_leaves_nothing() {
    let emulator = Emulator::start();
    let realism = Realism::start(
        &emulator,
        RealismOptions { time_scale: 0.005, config: json!({"iam_propagation_s": 0}), ..Default::default() },
    );
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let (app, app2) = (Cli::at(&realism.url()), Cli::at(&realism.url()));
    app.write_config(&config("app", None));
    app.run(&["up", "--no-wait"]).ok();
    app2.write_config(&config("app-2", None));
    app2.run(&["up", "--no-wait"]).ok();
    let cluster = sdk.ecs.describe_clusters().clusters("app-cluster").send().await.unwrap();
    assert_eq!(cluster.clusters()[0].capacity_providers(), ["FARGATE", "FARGATE_SPOT"], "made with both");
    // A cluster made before the stack knew of Spot has no provider: the next `up` associates them.
    let bare = sdk.ecs.put_cluster_capacity_providers().cluster("app-cluster").set_capacity_providers(Some(vec![]));
    bare.set_default_capacity_provider_strategy(Some(vec![])).send().await.unwrap();

    // The plan says what changes and what it saves; the Spot lines are marked as estimates.
    app.write_config(&config("app", Some(SPOT)));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let changes = row(&plan, "resources", "service")["changes"].to_string();
    assert!(
        changes.contains("service.spot") && changes.contains("FARGATE base 1 weight 1, FARGATE_SPOT weight 3"),
        "{changes}"
    );
    assert!(row(&plan, "resources", "cluster")["changes"].to_string().contains("FARGATE, FARGATE_SPOT"), "{plan}");
    let text = app.run(&["up", "--dry-run"]).ok().stdout;
    assert!(text.contains("the service moves to its new capacity providers in a new deployment"), "{text}");
    let items = plan["cost"]["items"].to_string();
    assert!(items.contains("Fargate Spot vCPU (x86_64, estimate: Spot prices vary)"), "{items}");
    let (before, after) = (&plan["cost"]["before"]["monthly_total"], &plan["cost"]["monthly_total"]);
    assert!(after.as_f64() < before.as_f64(), "one of two tasks on Spot costs less: {before} -> {after}");

    // Applied: providers first, then the service moved onto the strategy with a new deployment
    // (the realism layer refuses the move without one, as AWS does).
    let calls_before = realism.calls().len();
    app.run(&["up", "--no-wait"]).ok();
    let calls = &realism.calls()[calls_before..];
    let ok = |action: &str| calls.iter().position(|c| c["action"] == action && c["error"].is_null());
    assert!(ok("PutClusterCapacityProviders").unwrap() < ok("UpdateService").unwrap());
    let s = stack_service(&sdk, "app").await;
    assert_eq!(strategy(&s), [("FARGATE".into(), 1, 1), ("FARGATE_SPOT".into(), 0, 3)]);
    assert_eq!(s.launch_type(), None);
    assert_eq!(
        stack_service(&sdk, "app-2").await.launch_type().map(|l| l.as_str()),
        Some("FARGATE"),
        "app-2 untouched"
    );
    let path = app.dir.path().join(".fargate-stack").join("app.json");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(state["resources"]["cluster"]["attrs"]["capacity_providers"], "FARGATE, FARGATE_SPOT");

    // `status`: the strategy and where the tasks run (1 on the base, the other by weight on Spot).
    let status = app.run(&["--output", "json", "status"]).json();
    assert_eq!(
        status["service"]["capacity"],
        json!({"strategy": "FARGATE base 1 weight 1, FARGATE_SPOT weight 3", "tasks": {"FARGATE": 1, "FARGATE_SPOT": 1}})
    );
    assert!(status["cost"]["items"].to_string().contains("Fargate Spot memory"));
    let text = app.run(&["status"]).stdout;
    assert!(
        text.contains("capacity: FARGATE base 1 weight 1, FARGATE_SPOT weight 3; tasks: FARGATE 1, FARGATE_SPOT 1"),
        "{text}"
    );
    let again = realism.calls().len();
    app.run(&["up", "--no-wait"]).ok();
    assert!(realism.calls()[again..].iter().all(|c| !is_mutating(c["action"].as_str().unwrap())), "converged");

    // Drift: the service put back on the launch type by hand is a change `status` reports and `up`
    // undoes. A lost state: the next `up` adopts cluster and service by tag and changes nothing.
    let by_hand = sdk.ecs.update_service().cluster("app-cluster").service("app-service");
    by_hand.set_capacity_provider_strategy(Some(vec![])).force_new_deployment(true).send().await.unwrap();
    let drift = app.run(&["--output", "json", "status"]);
    assert_ne!(drift.code, 0);
    assert!(
        row(&drift.json(), "resources", "service")["changes"].to_string().contains("service.spot"),
        "{}",
        drift.stdout
    );
    app.run(&["up", "--no-wait"]).ok();
    assert_eq!(strategy(&stack_service(&sdk, "app").await).len(), 2, "put back");
    std::fs::remove_file(app.dir.path().join(".fargate-stack").join("app.json")).unwrap();
    let adopted = realism.calls().len();
    app.run(&["up", "--no-wait", "--adopt"]).ok();
    let mutating: Vec<String> = realism.calls()[adopted..]
        .iter()
        .map(|c| c["action"].as_str().unwrap().to_string())
        .filter(|a| is_mutating(a) && !a.starts_with("Tag"))
        .collect();
    assert!(!mutating.iter().any(|a| a == "UpdateService" || a == "PutClusterCapacityProviders"), "{mutating:?}");

    // Spot off: back to the launch type (an empty strategy and a new deployment); the cluster keeps
    // both providers, so nothing waits on it.
    app.write_config(&config("app", Some("desired_count = 2")));
    app.run(&["up", "--no-wait"]).ok();
    let s = stack_service(&sdk, "app").await;
    assert_eq!((s.launch_type().map(|l| l.as_str()), strategy(&s)), (Some("FARGATE"), vec![]));
    let status = app.run(&["--output", "json", "status"]).json();
    assert_eq!(status["service"]["capacity"], json!({"strategy": "launch type FARGATE"}));

    for cli in [&app, &app2] {
        cli.run(&["down", "--yes"]).ok();
    }
    let moto = emulator.sdk().await;
    for name in ["app", "app-2"] {
        let left = leftovers(&moto, name).await;
        assert!(left.is_empty(), "{name} left {left:#?}");
    }
}
