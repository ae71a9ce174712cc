//! `[deploy] strategy`'s infrastructure: for canary / linear / blue_green the alternate target
//! group, the production listener rule and the infrastructure role, named in the service's
//! `loadBalancers[].advancedConfiguration`; the switch to rolling and back in place; adoption by
//! tag; a kill inside the family resumed; `down` beside a second stack that keeps its own.

mod common;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;
use common::*;
use serde_json::Value;

const KEYS: [&str; 3] = ["target-group-alternate", "listener-rule-production", "role-infrastructure"];

fn config(name: &str, strategy: &str) -> String {
    config_with(&[
        ("name", &format!("name = \"{name}\"")),
        ("strategy", &format!("strategy = \"{strategy}\"")),
        ("bake_minutes", "bake_minutes = 0"),
    ])
}

fn cli_at(realism: &Realism, name: &str, strategy: &str) -> Cli {
    let cli = Cli::at(&realism.url());
    cli.write_config(&config(name, strategy));
    cli
}

fn state_of(cli: &Cli, name: &str) -> Value {
    let path = cli.dir.path().join(".fargate-stack").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn recorded(cli: &Cli, name: &str, key: &str) -> Option<String> {
    state_of(cli, name)["resources"][key]["id"].as_str().map(str::to_string)
}

fn outcome(doc: &Value, name: &str) -> Option<Value> {
    doc["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["outcome"].clone())
}

/// The stack's ECS strategy and the advanced configuration of its load balancer, as ECS reports them.
async fn service_strategy(sdk: &Sdk, name: &str) -> (String, Option<[String; 3]>) {
    let service = stack_service(sdk, name).await;
    let strategy = service.deployment_configuration().and_then(|d| d.strategy()).map_or("none", |s| s.as_str());
    let advanced = service.load_balancers()[0].advanced_configuration().map(|a| {
        [a.alternate_target_group_arn(), a.production_listener_rule(), a.role_arn()].map(|s| s.unwrap_or("").into())
    });
    (strategy.to_string(), advanced)
}

/// The non-default rules on a listener: (ARN, action type, target groups), and its default action type.
async fn rules_on(sdk: &Sdk, listener: &str) -> (Vec<(String, String, Vec<String>)>, String) {
    let out = sdk.elb.describe_rules().listener_arn(listener).send().await.unwrap();
    let mut rules = vec![];
    let mut default = String::new();
    for rule in out.rules() {
        let action = &rule.actions()[0];
        let kind = action.r#type().map_or("none", |t| t.as_str()).to_string();
        if rule.is_default() == Some(true) {
            default = kind;
            continue;
        }
        let mut groups: Vec<String> = action
            .forward_config()
            .map(|c| c.target_groups().iter().map(|t| t.target_group_arn().unwrap().to_string()).collect())
            .unwrap_or_default();
        groups.sort();
        rules.push((rule.rule_arn().unwrap().to_string(), kind, groups));
    }
    (rules, default)
}

/// The target groups (by name) each of the stack's deploy alarms watches, its own dimensions or
/// those of its metric-math metrics, sorted.
async fn alarm_target_groups(sdk: &Sdk, name: &str) -> Vec<(String, Vec<String>)> {
    let out = sdk.cloudwatch.describe_alarms().alarm_name_prefix(format!("{name}-")).send().await.unwrap();
    let mut alarms = vec![];
    for alarm in out.metric_alarms().iter().filter(|a| !a.alarm_name().unwrap().starts_with(&format!("{name}-2-"))) {
        let metrics = alarm.metrics().iter().filter_map(|q| q.metric_stat().and_then(|s| s.metric()));
        let dims = alarm.dimensions().iter().chain(metrics.flat_map(|m| m.dimensions()));
        let mut groups: Vec<String> = dims
            .filter(|d| d.name() == Some("TargetGroup"))
            .map(|d| d.value().unwrap().split('/').nth(1).unwrap().to_string())
            .collect();
        groups.sort();
        groups.dedup();
        alarms.push((alarm.alarm_name().unwrap().to_string(), groups));
    }
    alarms.sort();
    alarms
}

fn every_alarm_on(groups: &[&str]) -> Vec<(String, Vec<String>)> {
    let on = groups.iter().map(|g| g.to_string()).collect::<Vec<_>>();
    ["app-5xx-rate", "app-unhealthy-hosts"].map(|a| (a.to_string(), on.clone())).to_vec()
}

async fn role_exists(sdk: &Sdk, name: &str) -> bool {
    sdk.iam.get_role().role_name(name).send().await.is_ok()
}

async fn target_group_exists(sdk: &Sdk, name: &str) -> bool {
    sdk.elb.describe_target_groups().names(name).send().await.is_ok_and(|o| !o.target_groups().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_makes_its_rule_alternate_group_and_role_switches_in_place_and_down_leaves_the_other_stacks() {
    let emulator = Emulator::start();
    let realism = Realism::start(&emulator, RealismOptions::default());
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let other = cli_at(&realism, "app-2", "canary");
    other.run(&["up", "--no-wait"]).ok();
    let app = cli_at(&realism, "app", "canary");
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in KEYS {
        assert_eq!(planned_changes(&plan, key).0, "create", "{key}: {plan}");
    }
    app.run(&["up", "--no-wait"]).ok();

    // Made, and named by the service's advanced configuration; the rule forwards to both groups.
    let ids = KEYS.map(|k| recorded(&app, "app", k).unwrap_or_else(|| panic!("{k} recorded")));
    let role_arn =
        state_of(&app, "app")["resources"]["role-infrastructure"]["attrs"]["arn"].as_str().unwrap().to_string();
    let (strategy, advanced) = service_strategy(&sdk, "app").await;
    assert_eq!(strategy, "CANARY");
    assert_eq!(advanced, Some([ids[0].clone(), ids[1].clone(), role_arn.clone()]));
    let service = stack_service(&sdk, "app").await;
    let canary = service.deployment_configuration().and_then(|d| d.canary_configuration()).unwrap();
    assert_eq!((canary.canary_percent(), canary.canary_bake_time_in_minutes()), (Some(5.0), Some(0)));
    let listener = recorded(&app, "app", "listener").unwrap();
    let primary = recorded(&app, "app", "target-group").unwrap();
    let (rules, default) = rules_on(&sdk, &listener).await;
    let mut both = vec![primary.clone(), ids[0].clone()];
    both.sort();
    assert_eq!(rules, [(ids[1].clone(), ActionTypeEnum::Forward.as_str().to_string(), both.clone())]);
    assert_eq!(default, "fixed-response", "the rule routes; the default answers what it does not take");
    assert!(ids[0].contains(":targetgroup/app-tg-alt/") && role_arn.ends_with(":role/app-ecs-infrastructure"));
    // The deploy alarms watch both groups (the new tasks serve from the alternate one).
    assert_eq!(alarm_target_groups(&sdk, "app").await, every_alarm_on(&["app-tg", "app-tg-alt"]));
    let again = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in KEYS.iter().chain(&["service", "listener", "alarm-5xx-rate", "alarm-unhealthy-hosts"]) {
        let action = planned_changes(&again, key).0;
        assert!(["unchanged", "wait"].contains(&action.as_str()), "{key}: {action}: {again}");
    }

    // ECS moved the weights (the alternate group serving): not drift.
    let shifted = aws_sdk_elasticloadbalancingv2::types::TargetGroupTuple::builder();
    let forward = aws_sdk_elasticloadbalancingv2::types::ForwardActionConfig::builder()
        .target_groups(shifted.clone().target_group_arn(&primary).weight(0).build())
        .target_groups(shifted.target_group_arn(&ids[0]).weight(100).build())
        .build();
    let action = aws_sdk_elasticloadbalancingv2::types::Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(forward)
        .build();
    sdk.elb.modify_rule().rule_arn(&ids[1]).actions(action).send().await.unwrap();
    let moved = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(planned_changes(&moved, "listener-rule-production").0, "unchanged", "{moved}");

    // To rolling: in place, shown; the three go once the service no longer names them.
    app.write_config(&config("app", "rolling"));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (action, changes) = planned_changes(&plan, "service");
    assert_eq!(action, "update", "{plan}");
    assert!(
        changes.iter().any(|c| c.starts_with("deploy.strategy: canary 5 % for 0 min") && c.ends_with("→ rolling")),
        "{changes:?}"
    );
    for key in KEYS {
        assert_eq!(planned_changes(&plan, key).0, "delete", "{key}: {plan}");
    }
    let (action, changes) = planned_changes(&plan, "alarm-unhealthy-hosts");
    assert_eq!(action, "update", "{plan}");
    assert!(changes.iter().any(|c| c.starts_with("target group watched:") && c.contains("app-tg-alt")), "{changes:?}");
    let rolled = app.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    assert_eq!(outcome(&rolled, "service"), Some("updated".into()), "{rolled}");
    for key in KEYS {
        assert_eq!(outcome(&rolled, key), Some("deleted".into()), "{key}: {rolled}");
    }
    assert_eq!(service_strategy(&sdk, "app").await, ("ROLLING".to_string(), None));
    // The weights moved above left app-tg-alt serving: the switch keeps it, app-tg goes.
    assert_eq!(alarm_target_groups(&sdk, "app").await, every_alarm_on(&["app-tg-alt"]), "back on the one group");
    let (rules, default) = rules_on(&sdk, &listener).await;
    assert!(rules.is_empty() && default == "forward", "{rules:?} {default}");
    assert!(!target_group_exists(&sdk, "app-tg").await && !role_exists(&sdk, "app-ecs-infrastructure").await);

    // And back: in place again.
    app.write_config(&config("app", "canary"));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (action, changes) = planned_changes(&plan, "service");
    assert_eq!(action, "update", "{plan}");
    assert!(changes.iter().any(|c| c.starts_with("deploy.strategy: rolling → canary")), "{changes:?}");
    assert_eq!(planned_changes(&plan, "alarm-5xx-rate").0, "update", "{plan}");
    app.run(&["up", "--no-wait", "--yes"]).ok();
    assert_eq!(service_strategy(&sdk, "app").await.0, "CANARY");
    assert_eq!(alarm_target_groups(&sdk, "app").await, every_alarm_on(&["app-tg", "app-tg-alt"]));

    // The state lost: found again by their tags.
    let path = app.dir.path().join(".fargate-stack").join("app.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ids = KEYS.map(|k| recorded(&app, "app", k).unwrap());
    for key in KEYS {
        doc["resources"].as_object_mut().unwrap().remove(key);
    }
    std::fs::write(&path, doc.to_string()).unwrap();
    let adopted = app.run(&["--output", "json", "up", "--no-wait", "--yes", "--adopt"]).ok().json();
    for (key, id) in KEYS.iter().zip(&ids) {
        assert_eq!(outcome(&adopted, key), Some("unchanged".into()), "{key}: {adopted}");
        assert_eq!(recorded(&app, "app", key).as_ref(), Some(id), "{key}");
    }

    // Killed once ELB made the rule, before the state records it (and before the listener's
    // default action changed): the next `up` takes it back and finishes.
    sdk.elb.delete_rule().rule_arn(&ids[1]).send().await.unwrap();
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"].as_object_mut().unwrap().remove("listener-rule-production");
    std::fs::write(&path, doc.to_string()).unwrap();
    up_killed_at(&realism, &app, "CreateRule");
    let resumed = app.run(&["--output", "json", "up", "--yes", "--no-wait"]).ok().json();
    assert_eq!(outcome(&resumed, "listener-rule-production"), Some("unchanged".into()), "{resumed}");
    let (rules, default) = rules_on(&sdk, &listener).await;
    assert_eq!(rules.len(), 1, "one rule, taken back: {rules:?}");
    assert_eq!(default, "fixed-response");
    assert_eq!(service_strategy(&sdk, "app").await.1.unwrap()[1], rules[0].0, "the service names it");
    assert_exactly_one_of_strategy(&sdk).await;

    // `down` of app leaves app-2's three; `down` of app-2 leaves nothing of either.
    app.run(&["down", "--yes"]).ok();
    assert!(!target_group_exists(&sdk, "app-tg-alt").await && !role_exists(&sdk, "app-ecs-infrastructure").await);
    assert!(target_group_exists(&sdk, "app-2-tg-alt").await && role_exists(&sdk, "app-2-ecs-infrastructure").await);
    let theirs = recorded(&other, "app-2", "listener").unwrap();
    assert_eq!(rules_on(&sdk, &theirs).await.0.len(), 1, "app-2's rule stays");
    other.run(&["down", "--yes"]).ok();
    for name in ["app", "app-2"] {
        let left = leftovers(&sdk, name).await;
        assert!(left.is_empty(), "left of {name}: {left:#?}");
    }
}

/// `up` killed once the layer executed `action` (never answered).
fn up_killed_at(realism: &Realism, cli: &Cli, action: &str) {
    realism.freeze_at(action);
    let mut child =
        cli.command(&["up", "--yes", "--no-wait"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(60)).as_deref(), Some(action));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
}

/// Each stack's three exactly once, by their tags, whatever the other stack has.
async fn assert_exactly_one_of_strategy(sdk: &Sdk) {
    let all = fargate_stack::resources::sightings(sdk, &[]).await.unwrap();
    for stack in ["app", "app-2"] {
        for key in KEYS {
            let found: Vec<&str> = all
                .iter()
                .filter(|s| s.belongs_to(stack) && s.resource.as_deref() == Some(key))
                .map(|s| s.id.as_str())
                .collect();
            assert_eq!(found.len(), 1, "{stack}: {key}: {found:?}");
        }
    }
}

/// The target groups the production rule sends traffic to (weight above 0), by name.
async fn routed(sdk: &Sdk, rule: &str) -> Vec<String> {
    let out = sdk.elb.describe_rules().rule_arns(rule).send().await.unwrap();
    let forward = out.rules()[0].actions()[0].forward_config().unwrap();
    let groups = forward.target_groups().iter().filter(|t| t.weight().unwrap_or(1) > 0);
    groups.map(|t| t.target_group_arn().unwrap().split('/').nth(1).unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_rolling_while_the_alternate_group_serves_never_sends_requests_to_an_empty_group() {
    let emulator = Emulator::start();
    let options = RealismOptions { config: serde_json::json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let app = cli_at(&realism, "app", "canary");
    app.run(&["up"]).ok();
    app.run(&["deploy", "--image", "nginx:1.28"]).ok();
    let rule = recorded(&app, "app", "listener-rule-production").unwrap();
    assert_eq!(routed(&sdk, &rule).await, ["app-tg-alt"], "after the canary the alternate group serves");
    assert_eq!(realism.routing_gaps(), Vec::<Value>::new());

    // To rolling: shown, and the service stays in the group that serves (no task moves).
    app.write_config(&config("app", "rolling"));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(planned_changes(&plan, "target-group-alternate").0, "delete", "{plan}");
    let (action, changes) = planned_changes(&plan, "target-group");
    assert_eq!(action, "update", "{plan}");
    let kept =
        "role tag (the group that serves stays the target group: no task moves): target-group-alternate → target-group";
    assert_eq!(changes, [kept], "{plan}");
    // Killed once ELB deleted the rule (the listener forwards to the serving group already), before
    // the idle group goes: the next `up` deletes that one, never the group that serves.
    up_killed_at(&realism, &app, "DeleteRule");
    app.run(&["up", "--yes", "--no-wait"]).ok();
    assert_eq!(realism.routing_gaps(), Vec::<Value>::new(), "the switch to rolling");
    let listener = recorded(&app, "app", "listener").unwrap();
    let (rules, default) = rules_on(&sdk, &listener).await;
    assert!(rules.is_empty() && default == "forward", "{rules:?} {default}");
    let serving = recorded(&app, "app", "target-group").unwrap();
    assert!(serving.contains(":targetgroup/app-tg-alt/"), "the group that served is the rolling one: {serving}");
    assert_eq!(stack_service(&sdk, "app").await.load_balancers()[0].target_group_arn(), Some(serving.as_str()));
    assert!(!target_group_exists(&sdk, "app-tg").await, "the idle group is deleted");
    let again = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in ["target-group", "service", "listener"] {
        let action = planned_changes(&again, key).0;
        assert!(["unchanged", "wait"].contains(&action.as_str()), "{key}: {action}: {again}");
    }

    // A rolling deploy, then back to canary: the alternate group takes the free name.
    app.run(&["deploy", "--image", "nginx:1.29"]).ok();
    assert_eq!(realism.routing_gaps(), Vec::<Value>::new(), "a rolling deploy");
    app.write_config(&config("app", "canary"));
    app.run(&["up", "--yes"]).ok();
    assert_eq!(realism.routing_gaps(), Vec::<Value>::new(), "back to canary");
    let alternate = recorded(&app, "app", "target-group-alternate").unwrap();
    assert!(alternate.contains(":targetgroup/app-tg/"), "{alternate}");
    let rule = recorded(&app, "app", "listener-rule-production").unwrap();
    assert_eq!(routed(&sdk, &rule).await, ["app-tg-alt"]);
    app.run(&["deploy", "--image", "nginx:1.30"]).ok();
    assert_eq!(routed(&sdk, &rule).await, ["app-tg"]);
    assert_eq!(realism.routing_gaps(), Vec::<Value>::new(), "the whole way");
    app.run(&["down", "--yes"]).ok();
    let left = leftovers(&sdk, "app").await;
    assert!(left.is_empty(), "left: {left:#?}");
}
