//! Never touch what isn't ours: two stacks in one account whose names are prefixes of each other
//! (`app`, `app-2`), through every path that finds resources without a state (adoption by `up`,
//! `down --name`, `status` and the plan without a state). The emulator ignores tag filters on
//! DescribeNatGateways, so a tool that trusted the server-side filter would take the other
//! stack's NAT gateway.

mod common;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use common::*;
use serde_json::Value;

fn named_config(name: &str) -> String {
    config_with(&[("name", &format!("name = \"{name}\""))])
}

fn cli_for(emulator: &Emulator, name: &str) -> Cli {
    let cli = Cli::new(emulator);
    cli.write_config(&named_config(name));
    cli
}

/// A working directory for stack `name`, through the realism layer.
fn cli_at(realism: &Realism, name: &str) -> Cli {
    let cli = Cli::at(&realism.url());
    cli.write_config(&named_config(name));
    cli
}

/// What a run's JSON says `up` did to resource `name`.
fn outcome(doc: &Value, name: &str) -> Option<Value> {
    doc["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["outcome"].clone())
}

fn state_of(cli: &Cli, name: &str) -> Value {
    let path = cli.dir.path().join(".fargate-stack").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(state: &Value) -> Vec<String> {
    state["resources"].as_object().unwrap().values().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_whose_names_are_prefixes_of_each_other_never_touch_each_other() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let app2 = cli_for(&emulator, "app-2");
    app2.run(&["up", "--no-wait"]).ok();
    let app2_ids = ids(&state_of(&app2, "app-2"));

    // `down` of a stack that does not exist finds nothing, deletes nothing.
    let stranger = Cli::new(&emulator);
    let nothing = stranger.run(&["--output", "json", "down", "--name", "nosuch", "--yes"]).ok().json();
    assert!(nothing["steps"].as_array().unwrap().iter().all(|s| s["outcome"] == "absent"), "{nothing}");
    assert_exactly_one_of(&sdk, "app-2").await;
    let warnings = nothing["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "reported once: {warnings:?}");

    // `up` of `app` (a prefix of `app-2`) builds its own stack and adopts nothing of app-2.
    let app = cli_for(&emulator, "app");
    let up = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    let adopted: Vec<&Value> = up["steps"].as_array().unwrap().iter().filter(|s| s["outcome"] == "unchanged").collect();
    assert!(adopted.is_empty(), "a new stack adopts nothing: {adopted:?}");
    assert_exactly_one_of(&sdk, "app").await;
    assert_exactly_one_of(&sdk, "app-2").await;
    let app_state = state_of(&app, "app");
    for id in ids(&app_state) {
        assert!(!app2_ids.contains(&id), "app recorded app-2's {id}");
    }
    // Its private route goes through its own NAT gateway, in its own VPC.
    let resources = &app_state["resources"];
    let (vpc, nat, table) = (
        resources["vpc"]["id"].as_str().unwrap(),
        resources["nat-gateway-1"]["id"].as_str().unwrap(),
        resources["route-table-private-1"]["id"].as_str().unwrap(),
    );
    let described = sdk.ec2.describe_nat_gateways().nat_gateway_ids(nat).send().await.unwrap();
    assert_eq!(described.nat_gateways()[0].vpc_id(), Some(vpc));
    let routes = sdk.ec2.describe_route_tables().route_table_ids(table).send().await.unwrap();
    let default =
        routes.route_tables()[0].routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).unwrap();
    assert_eq!(default.nat_gateway_id(), Some(nat));
    // The other stack's gateway, handed back by a filter the emulator did not apply, was reported.
    let warnings = up["warnings"].as_array().cloned().unwrap_or_default();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("app-2")), "{up}");
    assert_eq!(app.run(&["status"]).code, 0);

    // Without a state, `status` and the plan find `app` by tag, and only `app`.
    let elsewhere = cli_for(&emulator, "app");
    let status = elsewhere.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "deployed but not tracked here: {}", status.stdout);
    let doc = status.json();
    assert_eq!(doc["state"], "untracked");
    let found: Vec<String> =
        doc["resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(found.len(), default_resources(), "{found:?}");
    for id in &found {
        assert!(!app2_ids.contains(id), "status of app found app-2's {id}");
    }
    // `status --name`, with no state and no config of that name, finds the same, as `down --name` would.
    let named = Cli::new(&emulator).run(&["--output", "json", "status", "--name", "app"]);
    assert_eq!(named.code, 3, "{}", named.stderr);
    let doc = named.json();
    assert_eq!((doc["stack"].as_str(), doc["state"].as_str()), (Some("app"), Some("untracked")), "{doc}");
    let ids: Vec<&str> = doc["resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), default_resources(), "{ids:?}");
    assert!(ids.iter().all(|id| !app2_ids.contains(&id.to_string())), "{ids:?}");
    let plan = elsewhere.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let actions: Vec<&str> =
        plan["resources"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.iter().all(|a| *a == "adopt"), "{actions:?}");

    // `down --name app` with no state deletes app, and nothing of app-2.
    let no_state = Cli::new(&emulator);
    no_state.run(&["down", "--name", "app", "--yes"]).ok();
    let left = leftovers(&sdk, "app").await;
    assert!(left.is_empty(), "left of app: {left:#?}");
    assert_exactly_one_of(&sdk, "app-2").await;
    assert_eq!(app2.run(&["status"]).code, 0, "app-2 is intact");

    app2.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, "app-2").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_resource_that_is_not_ours_is_left_alone() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let app2 = cli_for(&emulator, "app-2");
    app2.run(&["up", "--no-wait"]).ok();
    let app = cli_for(&emulator, "app");
    app.run(&["up", "--no-wait"]).ok();
    // A state file edited (or copied) to point at another stack's NAT gateway.
    let path = app.dir.path().join(".fargate-stack/app.json");
    let mut state = state_of(&app, "app");
    let theirs = state_of(&app2, "app-2")["resources"]["nat-gateway-1"]["id"].clone();
    state["resources"]["nat-gateway-1"]["id"] = theirs.clone();
    std::fs::write(&path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    let down = app.run(&["down", "--yes"]);
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert!(down.stderr.contains("is not stack app's") && down.stderr.contains("left alone"), "{}", down.stderr);
    let nat = sdk.ec2.describe_nat_gateways().nat_gateway_ids(theirs.as_str().unwrap()).send().await.unwrap();
    assert_eq!(nat.nat_gateways()[0].state().map(|s| s.as_str()), Some("available"), "app-2's NAT untouched");
    assert_exactly_one_of(&sdk, "app-2").await;
}

/// The documented recovery when the state is lost: `down --name` finds the stack by tag and takes it
/// down at AWS's pace (the realism layer: lingering ENIs, a group referenced by another group's rule
/// cannot be deleted), next to a stack whose name extends it, which stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_down_by_name_finishes_and_leaves_nothing_next_to_a_stack_whose_name_extends_it() {
    let emulator = Emulator::start();
    let options = RealismOptions { config: serde_json::json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let sdk = emulator.sdk().await;
    let at = |name: &str| cli_at(&realism, name);
    let extended = at("probe-2");
    extended.run(&["up", "--no-wait"]).ok();
    let probe = at("probe");
    probe.run(&["up", "--no-wait"]).ok();

    // Someone's group in the stack's VPC with a rule referencing the tasks' group: that does not
    // go by waiting, so the run stops at once and names it.
    let recorded = &state_of(&probe, "probe")["resources"];
    let (vpc, task_group) =
        (recorded["vpc"]["id"].as_str().unwrap(), recorded["security-group-task"]["id"].as_str().unwrap());
    let theirs =
        sdk.ec2.create_security_group().group_name("hand-made").description("x").vpc_id(vpc).send().await.unwrap();
    let theirs = theirs.group_id().unwrap();
    let pair = aws_sdk_ec2::types::UserIdGroupPair::builder().group_id(task_group).build();
    let rule = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(80)
        .to_port(80)
        .user_id_group_pairs(pair);
    sdk.ec2.authorize_security_group_ingress().group_id(theirs).ip_permissions(rule.build()).send().await.unwrap();
    let held =
        Cli::at(&realism.url()).run_within(&["down", "--name", "probe", "--yes"], std::time::Duration::from_secs(120));
    assert_eq!(held.code, 1, "{}", held.stderr);
    let named =
        format!("in use by ingress rule tcp 80 {task_group} of group {theirs} (hand-made, carrying no stack tag)");
    assert!(held.stderr.contains(&named), "{}", held.stderr);
    sdk.ec2.delete_security_group().group_id(theirs).send().await.unwrap();

    // The state lost: a directory with none, and no config.
    let started = std::time::Instant::now();
    let down = Cli::at(&realism.url())
        .run_within(&["--output", "json", "down", "--name", "probe", "--yes"], std::time::Duration::from_secs(240));
    let took = started.elapsed();
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    // AWS releases a deleted load balancer's and stopped tasks' ENIs within ~20 minutes (24 s at the
    // layer's scale); the rest is the tool's polling.
    assert!(took < std::time::Duration::from_secs(120), "took {took:?}");
    let doc = down.json();
    let outcome =
        |name: &str| doc["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["outcome"].clone());
    for group in ["security-group-task", "security-group-alb", "vpc"] {
        assert_eq!(outcome(group), Some("deleted".into()), "{group}: {doc}");
    }
    assert_eq!(outcome("default-security-group"), Some("goes_with_vpc".into()), "not 'already gone': {doc}");
    let left = leftovers(&sdk, "probe").await;
    assert!(left.is_empty(), "left of probe: {left:#?}");
    assert_exactly_one_of(&sdk, "probe-2").await;
    assert_eq!(extended.run(&["status"]).code, 0, "probe-2 is whole");

    extended.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, "probe-2").await.is_empty());
}

/// The VPC's flow logs, beside another stack's: made and tagged for each stack's own VPC, group
/// and role, shown by `status`, their retention brought back, turned off by the config (the other
/// stack's untouched), and nothing of either left after `down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_logs_are_each_stacks_own_and_go_when_turned_off() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let other = cli_for(&emulator, "app-2");
    other.run(&["up", "--no-wait"]).ok();
    let app = cli_for(&emulator, "app");
    app.run(&["up", "--no-wait"]).ok();
    let recorded = state_of(&app, "app")["resources"].clone();
    let (vpc, flow_log) = (recorded["vpc"]["id"].as_str().unwrap(), recorded["flow-log"]["id"].as_str().unwrap());
    assert_eq!(recorded["flow-log-group"]["id"], "/vpc/app/flow-logs");
    assert_eq!(recorded["role-flow-logs"]["id"], "app-flow-logs");

    let described = sdk.ec2.describe_flow_logs().flow_log_ids(flow_log).send().await.unwrap();
    let made = &described.flow_logs()[0];
    assert_eq!((made.resource_id(), made.log_group_name()), (Some(vpc), Some("/vpc/app/flow-logs")));
    assert_eq!(made.traffic_type().map(|t| t.as_str()), Some("ALL"));
    assert_eq!(made.deliver_logs_permission_arn(), recorded["role-flow-logs"]["attrs"]["arn"].as_str());
    let tags: Vec<(&str, &str)> = made.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert!(tags.contains(&("fargate-stack:stack", "app")) && tags.contains(&("fargate-stack:resource", "flow-log")));
    let role = sdk.iam.get_role().role_name("app-flow-logs").send().await.unwrap();
    let trust = percent_encoding::percent_decode_str(role.role().unwrap().assume_role_policy_document().unwrap());
    let trust = trust.decode_utf8().unwrap();
    assert!(trust.contains("vpc-flow-logs.amazonaws.com") && trust.contains(":vpc-flow-log/*"), "{trust}");
    let inline =
        sdk.iam.get_role_policy().role_name("app-flow-logs").policy_name("fargate-stack").send().await.unwrap();
    let inline = percent_encoding::percent_decode_str(inline.policy_document()).decode_utf8().unwrap().to_string();
    let group_arn = recorded["flow-log-group"]["attrs"]["arn"].as_str().unwrap();
    assert!(inline.contains(&format!("\"{group_arn}:*\"")) && !inline.contains("CreateLogGroup"), "{inline}");
    let retention = || async {
        let groups = sdk.logs.describe_log_groups().log_group_name_prefix("/vpc/app/").send().await.unwrap();
        groups.log_groups().iter().map(|g| g.retention_in_days()).collect::<Vec<_>>()
    };
    assert_eq!(retention().await, [Some(365)]);

    // `status` shows them; a retention changed by hand is brought back in place.
    let status = app.run(&["--output", "json", "status"]).ok().json();
    let rows: Vec<&str> = status["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for key in ["flow-log-group", "role-flow-logs", "flow-log"] {
        assert!(rows.contains(&key), "{key}: {rows:?}");
    }
    sdk.logs.put_retention_policy().log_group_name("/vpc/app/flow-logs").retention_in_days(30).send().await.unwrap();
    let repaired = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(outcome(&repaired, "flow-log-group"), Some("updated".into()), "{repaired}");
    assert_eq!(retention().await, [Some(365)]);

    // Turned off: the plan says what goes and why, `up` removes all three, app-2's stay.
    app.write_config(&config_with(&[("name", "name = \"app\""), ("enabled", "enabled = false")]));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let action = |name: &str| {
        plan["resources"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["action"].clone()
    };
    for key in ["flow-log-group", "role-flow-logs", "flow-log"] {
        assert_eq!(action(key), "delete", "{key}: {plan}");
    }
    assert!(plan.to_string().contains("EC2.6"), "{plan}");
    let off = app.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    for key in ["flow-log-group", "role-flow-logs", "flow-log"] {
        assert_eq!(outcome(&off, key), Some("deleted".into()), "{key}: {off}");
        assert!(state_of(&app, "app")["resources"].get(key).is_none(), "{key} still recorded");
    }
    let left = sdk.ec2.describe_flow_logs().send().await.unwrap();
    let vpcs: Vec<Option<&str>> = left.flow_logs().iter().map(|f| f.resource_id()).collect();
    assert!(!vpcs.contains(&Some(vpc)) && vpcs.len() == 1, "only app-2's: {vpcs:?}");
    assert!(retention().await.is_empty());
    assert_exactly_one_of(&sdk, "app-2").await;

    for (cli, name) in [(&app, "app"), (&other, "app-2")] {
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, name).await;
        assert!(left.is_empty(), "left of {name}: {left:#?}");
    }
    assert!(sdk.ec2.describe_flow_logs().send().await.unwrap().flow_logs().is_empty());
}

/// The S3 and DynamoDB gateway endpoints, beside another stack's (through the realism layer: AWS
/// refuses a VPC's delete while it has endpoints): on exactly this stack's private route tables,
/// routed to the services' prefix lists, named in the tasks' egress, shown by `status`, a route
/// table removed by hand put back, turned off by the config (app-2's untouched), nothing left
/// after `down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_endpoints_are_on_this_stacks_private_route_tables_and_go_when_turned_off() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let realism = Realism::start(&emulator, RealismOptions::default());
    let at = |name: &str| cli_at(&realism, name);
    let other = at("app-2");
    other.run(&["up", "--no-wait"]).ok();
    let app = at("app");
    app.run(&["up", "--no-wait"]).ok();
    let recorded = state_of(&app, "app")["resources"].clone();
    let id = |key: &str| recorded[key]["id"].as_str().unwrap().to_string();
    let (vpc, table) = (id("vpc"), id("route-table-private-1"));
    let endpoints = |vpc: String| {
        let sdk = &sdk;
        async move {
            let out = sdk.ec2.describe_vpc_endpoints().filters(filter("vpc-id", &vpc)).send().await.unwrap();
            let live = out.vpc_endpoints().iter().filter(|e| e.state().map(|s| s.as_str()) == Some("available"));
            live.map(|e| (e.service_name().unwrap().to_string(), e.route_table_ids().to_vec())).collect::<Vec<_>>()
        }
    };
    let mut made = endpoints(vpc.clone()).await;
    made.sort();
    let on_private = vec![table.clone()];
    assert_eq!(
        made,
        [
            ("com.amazonaws.us-east-1.dynamodb".into(), on_private.clone()),
            ("com.amazonaws.us-east-1.s3".into(), on_private)
        ]
    );
    let s3 = sdk.ec2.describe_vpc_endpoints().vpc_endpoint_ids(id("gateway-endpoint-s3")).send().await.unwrap();
    let s3 = &s3.vpc_endpoints()[0];
    assert_eq!(s3.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
    let tags: Vec<(&str, &str)> = s3.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert!(
        tags.contains(&("fargate-stack:stack", "app"))
            && tags.contains(&("fargate-stack:resource", "gateway-endpoint-s3"))
    );
    // Each prefix list is routed to its endpoint in the private table, and named in the tasks' egress.
    let lists: Vec<String> = ["gateway-endpoint-s3", "gateway-endpoint-dynamodb"]
        .iter()
        .map(|k| recorded[*k]["attrs"]["prefix_list"].as_str().unwrap().to_string())
        .collect();
    let routes = sdk.ec2.describe_route_tables().route_table_ids(&table).send().await.unwrap();
    let routed: Vec<(Option<&str>, Option<&str>)> = routes.route_tables()[0]
        .routes()
        .iter()
        .filter(|r| r.destination_prefix_list_id().is_some())
        .map(|r| (r.destination_prefix_list_id(), r.gateway_id()))
        .collect();
    assert_eq!(routed.len(), 2, "{routed:?}");
    assert!(routed.contains(&(Some(lists[0].as_str()), Some(id("gateway-endpoint-s3").as_str()))), "{routed:?}");
    let egress = || async {
        let group = sdk.ec2.describe_security_groups().group_ids(id("security-group-task")).send().await.unwrap();
        let group = group.security_groups()[0].clone();
        group
            .ip_permissions_egress()
            .iter()
            .flat_map(|p| p.prefix_list_ids().to_vec())
            .filter_map(|p| p.prefix_list_id().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let mut named = egress().await;
    named.sort();
    let mut wanted = lists.clone();
    wanted.sort();
    assert_eq!(named, wanted);
    // app-2's endpoints are its own, on its own table.
    let other_state = state_of(&other, "app-2")["resources"].clone();
    let other_vpc = other_state["vpc"]["id"].as_str().unwrap().to_string();
    let other_table = other_state["route-table-private-1"]["id"].as_str().unwrap().to_string();
    let theirs = endpoints(other_vpc.clone()).await;
    assert!(theirs.len() == 2 && theirs.iter().all(|(_, t)| t == std::slice::from_ref(&other_table)), "{theirs:?}");

    // `status` shows them; a table removed from an endpoint by hand is drift, put back in place.
    let status = app.run(&["--output", "json", "status"]).ok().json();
    let rows: Vec<&str> = status["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(rows.contains(&"gateway-endpoint-s3") && rows.contains(&"gateway-endpoint-dynamodb"), "{rows:?}");
    sdk.ec2
        .modify_vpc_endpoint()
        .vpc_endpoint_id(id("gateway-endpoint-s3"))
        .remove_route_table_ids(&table)
        .send()
        .await
        .unwrap();
    let drifted = app.run(&["--output", "json", "status"]).json();
    let row = drifted["resources"].as_array().unwrap().iter().find(|r| r["name"] == "gateway-endpoint-s3").unwrap();
    assert_eq!((row["status"].as_str(), row["changes"][0]["to"].as_str()), (Some("drifted"), Some(table.as_str())));
    let rows = drifted["resources"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["name"] == "gateway-endpoint-dynamodb" && r["status"] == "ok"), "{drifted}");
    let repaired = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(outcome(&repaired, "gateway-endpoint-s3"), Some("updated".into()), "{repaired}");
    assert!(endpoints(vpc.clone()).await.iter().all(|(_, t)| t == std::slice::from_ref(&table)));

    // Made but not recorded (a run killed right after the create): adopted by its tag, not made
    // twice (AWS would refuse a second S3 endpoint on the table), app-2's left alone.
    let path = app.dir.path().join(".fargate-stack").join("app.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"].as_object_mut().unwrap().remove("gateway-endpoint-s3");
    std::fs::write(&path, doc.to_string()).unwrap();
    let adopted = app.run(&["--output", "json", "up", "--no-wait", "--adopt"]).ok().json();
    assert_ne!(outcome(&adopted, "gateway-endpoint-s3"), Some("created".into()), "{adopted}");
    assert_eq!(state_of(&app, "app")["resources"]["gateway-endpoint-s3"]["id"], recorded["gateway-endpoint-s3"]["id"]);
    assert_eq!(endpoints(vpc.clone()).await.len(), 2);

    // Turned off: the plan deletes both, `up` removes them and the egress rules, app-2's stay.
    app.write_config(&config_with(&[("name", "name = \"app\""), ("gateway_endpoints", "gateway_endpoints = false")]));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in ["gateway-endpoint-s3", "gateway-endpoint-dynamodb"] {
        let row = plan["resources"].as_array().unwrap().iter().find(|p| p["name"] == key).unwrap();
        assert_eq!(row["action"], "delete", "{key}: {plan}");
    }
    let off = app.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    for key in ["gateway-endpoint-s3", "gateway-endpoint-dynamodb"] {
        assert_eq!(outcome(&off, key), Some("deleted".into()), "{key}: {off}");
        assert!(state_of(&app, "app")["resources"].get(key).is_none(), "{key} still recorded");
    }
    assert!(endpoints(vpc).await.is_empty());
    assert!(egress().await.is_empty(), "the tasks' egress names no prefix list without the endpoints");
    assert_eq!(endpoints(other_vpc).await.len(), 2);

    // On again, then `down` of both: nothing of either left (the VPC's delete waits for its endpoints).
    app.write_config(&named_config("app"));
    app.run(&["up", "--no-wait", "--yes"]).ok();
    for (cli, name) in [(&app, "app"), (&other, "app-2")] {
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, name).await;
        assert!(left.is_empty(), "left of {name}: {left:#?}");
    }
}

fn filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(name).values(value).build()
}

/// `[tags]` reach a resource of every service at creation (ECS tasks through the service), and
/// only the stack that has them: the other stack's resources carry none. Through a tag-enforcing
/// SCP (the realism layer's `required_request_tags`): every create carries them, and a stack
/// without them is denied at its first create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tags_are_on_every_service_of_their_stack_only() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let plain = cli_for(&emulator, "plain");
    plain.run(&["up", "--no-wait"]).ok();
    let config = serde_json::json!({"required_request_tags": {"cost centre": "cc-42/eu"}});
    let scp = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    let refused = Cli::at(&scp.url());
    refused.write_config(&named_config("refused"));
    let denied = refused.run(&["up", "--no-wait"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("not allowed to perform ec2:CreateVpc"), "{}", denied.stderr);
    let tagged = Cli::at(&scp.url());
    tagged.write_config(&format!(
        "{}\n[tags]\nteam = \"payments\"\n\"cost centre\" = \"cc-42/eu\"\n",
        named_config("tagged")
    ));
    tagged.run(&["up", "--no-wait"]).ok();

    let want = [("team", "payments"), ("cost centre", "cc-42/eu")];
    for stack in ["tagged", "plain"] {
        let cli = if stack == "tagged" { &tagged } else { &plain };
        let state = state_of(cli, stack);
        let found = tags_by_service(&sdk, &state).await;
        assert_eq!(found.len(), 10, "{found:?}");
        for (what, tags) in found {
            assert!(tags.iter().any(|(k, v)| k == "fargate-stack:stack" && v == stack), "{stack} {what}: {tags:?}");
            for (k, v) in want {
                let has = tags.iter().any(|(tk, tv)| tk == k && tv == v);
                assert_eq!(has, stack == "tagged", "{stack} {what}: {k}={v} in {tags:?}");
            }
        }
    }
    let service = stack_service(&sdk, "tagged").await;
    assert_eq!(service.propagate_tags(), Some(&aws_sdk_ecs::types::PropagateTags::Service));

    // The access-log bucket keeps its tags in step (S3 replaces the whole set): a changed tag is
    // in the plan and applied, and a tag someone else put there stays.
    let bucket = state_of(&tagged, "tagged")["resources"]["access-log-bucket"]["id"].as_str().unwrap().to_string();
    let mut set = sdk.s3.get_bucket_tagging().bucket(&bucket).send().await.unwrap().tag_set().to_vec();
    set.push(aws_sdk_s3::types::Tag::builder().key("backup").value("daily").build().unwrap());
    let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(set)).build().unwrap();
    sdk.s3.put_bucket_tagging().bucket(&bucket).tagging(tagging).send().await.unwrap();
    tagged.write_config(&format!(
        "{}\n[tags]\nteam = \"billing\"\n\"cost centre\" = \"cc-42/eu\"\n",
        named_config("tagged")
    ));
    let plan = tagged.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (action, changes) = planned_changes(&plan, "access-log-bucket");
    assert_eq!(action, "update", "{plan}");
    assert!(changes.iter().any(|c| c == "tags.team: payments → billing"), "{changes:?}");
    tagged.run(&["up", "--no-wait"]).ok();
    let set = sdk.s3.get_bucket_tagging().bucket(&bucket).send().await.unwrap().tag_set().to_vec();
    let pairs: Vec<(&str, &str)> = set.iter().map(|t| (t.key(), t.value())).collect();
    assert!(pairs.contains(&("team", "billing")) && pairs.contains(&("backup", "daily")), "{pairs:?}");
    assert!(pairs.contains(&("fargate-stack:stack", "tagged")), "{pairs:?}");
}

/// (what, its tags) for a resource of each service the stack tags, read back from AWS.
async fn tags_by_service(sdk: &Sdk, state: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let id =
        |key: &str| state["resources"][key]["id"].as_str().unwrap_or_else(|| panic!("{key} in {state}")).to_string();
    let pairs = |v: Vec<(Option<&str>, Option<&str>)>| -> Vec<(String, String)> {
        v.into_iter().map(|(k, v)| (k.unwrap_or_default().to_string(), v.unwrap_or_default().to_string())).collect()
    };
    let mut out = vec![];
    let vpc = sdk.ec2.describe_vpcs().vpc_ids(id("vpc")).send().await.unwrap();
    let vpc_tags = vpc.vpcs()[0].tags().iter().map(|t| (t.key(), t.value())).collect();
    out.push(("ec2 vpc".to_string(), pairs(vpc_tags)));
    let cluster = sdk.ecs.describe_clusters().clusters(id("cluster")).send().await.unwrap();
    let cluster_arn = cluster.clusters()[0].cluster_arn().unwrap().to_string();
    for (key, arn) in [("cluster", cluster_arn), ("service", id("service")), ("task-definition", id("task-definition"))]
    {
        let t = sdk.ecs.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
        out.push((format!("ecs {key}"), pairs(t.tags().iter().map(|t| (t.key(), t.value())).collect())));
    }
    let t = sdk.elb.describe_tags().resource_arns(id("load-balancer")).resource_arns(id("target-group")).send().await;
    for d in t.unwrap().tag_descriptions() {
        let tags = d.tags().iter().map(|t| (t.key(), t.value())).collect();
        out.push((format!("elbv2 {}", d.resource_arn().unwrap_or_default()), pairs(tags)));
    }
    let role = state["resources"]["role-task"]["id"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let t = sdk.iam.list_role_tags().role_name(&role).send().await.unwrap();
    out.push(("iam role".into(), t.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()));
    let table = sdk.dynamodb.describe_table().table_name(id("table")).send().await.unwrap();
    let arn = table.table().unwrap().table_arn().unwrap().to_string();
    let t = sdk.dynamodb.list_tags_of_resource().resource_arn(&arn).send().await.unwrap();
    out.push((
        "dynamodb table".into(),
        t.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
    ));
    let groups = sdk.logs.describe_log_groups().log_group_name_prefix(id("log-group")).send().await.unwrap();
    let arn = groups.log_groups()[0].arn().unwrap().trim_end_matches(":*").to_string();
    let t = sdk.logs.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    out.push(("logs group".into(), t.tags().cloned().unwrap_or_default().into_iter().collect()));
    let t = sdk.s3.get_bucket_tagging().bucket(id("access-log-bucket")).send().await.unwrap();
    out.push(("s3 bucket".into(), t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()));
    out
}

/// The alarms app's deployments watch, as ECS reports them (none when off).
async fn deployment_alarms(sdk: &Sdk, name: &str) -> Option<(Vec<String>, bool, bool)> {
    let service = stack_service(sdk, name).await;
    let alarms = service.deployment_configuration().and_then(|d| d.alarms())?;
    let mut names = alarms.alarm_names().to_vec();
    names.sort();
    Some((names, alarms.enable(), alarms.rollback()))
}

/// The metric alarms named for `name`, with their state and threshold.
async fn alarms_of(sdk: &Sdk, name: &str) -> Vec<(String, String, f64)> {
    let out = sdk.cloudwatch.describe_alarms().alarm_name_prefix(format!("{name}-")).send().await.unwrap();
    let mut alarms: Vec<(String, String, f64)> = out
        .metric_alarms()
        .iter()
        .filter(|a| {
            ["5xx-rate", "unhealthy-hosts", "p99-latency"]
                .iter()
                .any(|w| a.alarm_name() == Some(&format!("{name}-{w}")))
        })
        .map(|a| {
            (a.alarm_name().unwrap().to_string(), a.state_value().unwrap().as_str().to_string(), a.threshold().unwrap())
        })
        .collect();
    alarms.sort_by(|a, b| a.0.cmp(&b.0));
    alarms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_alarms_are_each_stacks_own_attached_to_its_deployments_and_go_when_turned_off() {
    let emulator = Emulator::start();
    let realism = Realism::start(&emulator, RealismOptions::default());
    // Through the layer: it keeps CloudWatch's states and ECS's deployment configuration as AWS does.
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let at = |name: &str| cli_at(&realism, name);
    let other = at("app-2");
    other.run(&["up", "--no-wait"]).ok();
    let app = at("app");
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(planned_changes(&plan, "alarm-5xx-rate").0, "create", "{plan}");
    app.run(&["up", "--no-wait"]).ok();

    // Made, tagged, new (no data yet), on app's target group, and watched by app's deployments.
    let (rate, hosts) = ("app-5xx-rate".to_string(), "app-unhealthy-hosts".to_string());
    let insufficient = "INSUFFICIENT_DATA".to_string();
    assert_eq!(
        alarms_of(&sdk, "app").await,
        [(rate.clone(), insufficient.clone(), 5.0), (hosts.clone(), insufficient.clone(), 1.0)]
    );
    let recorded = state_of(&app, "app")["resources"].clone();
    let described = sdk.cloudwatch.describe_alarms().alarm_names(&rate).send().await.unwrap();
    let alarm = described.metric_alarms()[0].clone();
    let tg = recorded["target-group"]["id"].as_str().unwrap();
    let dims: Vec<String> = alarm.metrics()[0]
        .metric_stat()
        .unwrap()
        .metric()
        .unwrap()
        .dimensions()
        .iter()
        .map(|d| d.value().unwrap().to_string())
        .collect();
    assert!(tg.ends_with(dims[0].trim_start_matches("targetgroup/")), "{dims:?} {tg}");
    let tags = sdk.cloudwatch.list_tags_for_resource().resource_arn(alarm.alarm_arn().unwrap()).send().await.unwrap();
    let tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
    assert!(
        tags.contains(&("fargate-stack:stack", "app")) && tags.contains(&("fargate-stack:resource", "alarm-5xx-rate"))
    );
    assert_eq!(deployment_alarms(&sdk, "app").await, Some((vec![rate.clone(), hosts.clone()], true, true)));
    let theirs = vec!["app-2-5xx-rate".to_string(), "app-2-unhealthy-hosts".to_string()];
    assert_eq!(deployment_alarms(&sdk, "app-2").await, Some((theirs.clone(), true, true)));

    // `status` shows each alarm's state: one put into ALARM as CloudWatch would on bad datapoints.
    let why = "Threshold Crossed: 2 out of the last 2 datapoints were greater than the threshold (5.0)";
    sdk.cloudwatch
        .set_alarm_state()
        .alarm_name(&rate)
        .state_value(StateValue::Alarm)
        .state_reason(why)
        .send()
        .await
        .unwrap();
    let status = app.run(&["--output", "json", "status"]).ok().json();
    let row = |doc: &Value, name: &str| {
        doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone()
    };
    assert_eq!(row(&status, "alarm-5xx-rate")["detail"], format!("state ALARM: {why}"), "{status}");
    assert_eq!(row(&status, "alarm-unhealthy-hosts")["detail"], "state INSUFFICIENT_DATA");
    let text = app.run(&["status"]).ok().stdout;
    assert!(text.contains("state ALARM"), "{text}");

    // A new threshold: in place, shown in the plan; the alarm keeps its state (AWS's PutMetricAlarm).
    app.write_config(&config_with(&[("name", "name = \"app\""), ("error_rate_percent", "error_rate_percent = 10.0")]));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let (action, changes) = planned_changes(&plan, "alarm-5xx-rate");
    assert_eq!(action, "update", "{plan}");
    assert_eq!(changes, ["threshold: 5 % 5xx (deploy.error_rate_percent) → 10 % 5xx (deploy.error_rate_percent)"]);
    app.run(&["up", "--no-wait", "--yes"]).ok();
    assert_eq!(alarms_of(&sdk, "app").await[0], (rate.clone(), "ALARM".to_string(), 10.0));

    // Deleted outside the tool, and the service's deployments no longer watching: both repaired.
    sdk.cloudwatch.delete_alarms().alarm_names(&hosts).send().await.unwrap();
    let off = aws_sdk_ecs::types::DeploymentAlarms::builder()
        .alarm_names(&rate)
        .enable(false)
        .rollback(false)
        .build()
        .unwrap();
    let deployment = aws_sdk_ecs::types::DeploymentConfiguration::builder().alarms(off).build();
    sdk.ecs
        .update_service()
        .cluster("app-cluster")
        .service("app-service")
        .deployment_configuration(deployment)
        .send()
        .await
        .unwrap();
    let status = app.run(&["--output", "json", "status"]).json();
    assert_eq!(row(&status, "alarm-unhealthy-hosts")["status"], "missing", "{status}");
    let service = row(&status, "service");
    assert_eq!(service["status"], "drifted", "{service}");
    assert!(service["detail"].as_str().unwrap().contains("deploy.alarms"), "{service}");
    let repaired = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(outcome(&repaired, "alarm-unhealthy-hosts"), Some("created".into()), "{repaired}");
    assert_eq!(outcome(&repaired, "service"), Some("updated".into()), "{repaired}");
    assert_eq!(deployment_alarms(&sdk, "app").await, Some((vec![rate.clone(), hosts.clone()], true, true)));

    // Killed once CloudWatch made an alarm, before the state records it: the next `up` adopts it.
    sdk.cloudwatch.delete_alarms().alarm_names(&hosts).send().await.unwrap();
    let path = app.dir.path().join(".fargate-stack").join("app.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["resources"].as_object_mut().unwrap().remove("alarm-unhealthy-hosts");
    std::fs::write(&path, doc.to_string()).unwrap();
    realism.freeze_at("PutMetricAlarm");
    let mut child =
        app.command(&["up", "--yes", "--no-wait"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(60)).as_deref(), Some("PutMetricAlarm"));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
    let resumed = app.run(&["--output", "json", "up", "--yes", "--no-wait"]).ok().json();
    assert_eq!(outcome(&resumed, "alarm-unhealthy-hosts"), Some("unchanged".into()), "{resumed}");
    assert_eq!(state_of(&app, "app")["resources"]["alarm-unhealthy-hosts"]["id"], hosts.as_str());
    assert_eq!(alarms_of(&sdk, "app").await.len(), 2);

    // Off: the deployments stop watching them first, then they go; app-2's stay.
    app.write_config(&config_with(&[("name", "name = \"app\""), ("alarms", "alarms = false")]));
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(planned_changes(&plan, "alarm-5xx-rate").0, "delete", "{plan}");
    let off = app.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    assert_eq!(outcome(&off, "alarm-5xx-rate"), Some("deleted".into()), "{off}");
    assert_eq!(deployment_alarms(&sdk, "app").await, Some((vec![], false, false)));
    assert!(alarms_of(&sdk, "app").await.is_empty());
    assert_eq!(alarms_of(&sdk, "app-2").await.len(), 2);

    // `down` of app leaves app-2's; `down` of app-2 leaves nothing of either.
    app.run(&["down", "--yes"]).ok();
    assert_eq!(alarms_of(&sdk, "app-2").await.len(), 2);
    other.run(&["down", "--yes"]).ok();
    for name in ["app", "app-2"] {
        let left = leftovers(&sdk, name).await;
        assert!(left.is_empty(), "left of {name}: {left:#?}");
    }
}

/// Every user-tagged resource a stack's state records, with its tags as AWS has them (the VPC's
/// default security group is AWS's and carries none of ours).
async fn every_tag_set(sdk: &Sdk, state: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let pairs = |v: Vec<(&str, &str)>| -> Vec<(String, String)> {
        v.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut out = vec![];
    for (key, r) in state["resources"].as_object().unwrap() {
        let (kind, id) = (r["kind"].as_str().unwrap(), r["id"].as_str().unwrap().to_string());
        let tags: Vec<(String, String)> = match kind.split(':').next().unwrap() {
            _ if key == "default-security-group" || kind.ends_with(":scaling-policy") => continue,
            "ec2" => {
                let out = sdk.ec2.describe_tags().filters(filter("resource-id", &id)).send().await.unwrap();
                pairs(out.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect())
            }
            "elbv2" => {
                let out = sdk.elb.describe_tags().resource_arns(&id).send().await.unwrap();
                let d = &out.tag_descriptions()[0];
                pairs(d.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect())
            }
            "ecs" => {
                let arn = match key.as_str() {
                    "cluster" => sdk.ecs.describe_clusters().clusters(&id).send().await.unwrap().clusters()[0]
                        .cluster_arn()
                        .unwrap()
                        .to_string(),
                    _ => id,
                };
                let out = sdk.ecs.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
                pairs(out.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect())
            }
            "iam" => {
                let name = id.rsplit('/').next().unwrap();
                let out = sdk.iam.list_role_tags().role_name(name).send().await.unwrap();
                pairs(out.tags().iter().map(|t| (t.key(), t.value())).collect())
            }
            "dynamodb" => {
                let arn = r["attrs"]["arn"].as_str().unwrap();
                let out = sdk.dynamodb.list_tags_of_resource().resource_arn(arn).send().await.unwrap();
                pairs(out.tags().iter().map(|t| (t.key(), t.value())).collect())
            }
            "logs" => {
                let groups = sdk.logs.describe_log_groups().log_group_name_prefix(&id).send().await.unwrap();
                let arn = groups.log_groups()[0].arn().unwrap().trim_end_matches(":*").to_string();
                let out = sdk.logs.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
                out.tags().cloned().unwrap_or_default().into_iter().collect()
            }
            "application-autoscaling" => {
                let out = sdk.autoscaling.list_tags_for_resource().resource_arn(&id).send().await.unwrap();
                out.tags().cloned().unwrap_or_default().into_iter().collect()
            }
            "s3" => {
                let out = sdk.s3.get_bucket_tagging().bucket(&id).send().await.unwrap();
                pairs(out.tag_set().iter().map(|t| (t.key(), t.value())).collect())
            }
            "cloudwatch" => {
                let arn = r["attrs"]["arn"].as_str().unwrap();
                let out = sdk.cloudwatch.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
                pairs(out.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect())
            }
            other => panic!("{key}: a kind this test does not read ({other})"),
        };
        let mut tags = tags;
        tags.sort();
        out.push((key.clone(), tags));
    }
    out
}

fn tag_of<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const CI_KEY: &str = "AKIDCI0000000000TEST";

/// A run signed with the CI key, which may do what the printed policy allows; it succeeds.
fn as_ci(cli: &Cli, args: &[&str]) -> Run {
    Run::from(cli.command(args).env("AWS_ACCESS_KEY_ID", CI_KEY).output().expect("run fargate-stack")).ok()
}

/// `[tags]` kept in step by `up`: a changed value, an added key and a removed key are one grouped
/// line of the plan and applied to every resource of the stack (and recorded in its state); a
/// tag changed or removed outside the tool is drift that `status` reports and `up` repairs; a
/// tag someone else added is left alone, and the other stack's tags never change. A no-op `up`
/// makes no tagging call.
#[tokio::test(flavor = "multi_thread")]
async fn user_tags_are_kept_in_step_and_their_drift_repaired_on_this_stack_only() {
    let started = std::time::Instant::now();
    let emulator = Emulator::start();
    // The sync runs with exactly the policy `fargate-stack policy` prints (the layer's action-level IAM).
    let policy_dir = tempfile::tempdir().unwrap();
    let policy_file = policy_dir.path().join("ci-policy.json");
    std::fs::write(&policy_file, r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
    let iam =
        serde_json::json!({CI_KEY: {"principal": "arn:aws:iam::123456789012:user/ci", "policy_file": policy_file}});
    let config = serde_json::json!({"iam_propagation_s": 0, "iam_policies": iam});
    let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    // Through the layer: it keeps the scalable target's tags, which the emulator does not.
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    let scaling = "[autoscaling]\nmin_count = 2\nmax_count = 4\n";
    let with_tags = |name: &str, tags: &str| format!("{}\n{scaling}\n[tags]\n{tags}\n", named_config(name));
    let other = Cli::at(&realism.url());
    other.write_config(&with_tags("other", "team = \"payments\"\ncost = \"cc-42\""));
    let app = Cli::at(&realism.url());
    app.write_config(&with_tags("app", "team = \"payments\"\ncost = \"cc-42\""));
    other.run(&["up", "--no-wait"]).ok();
    app.run(&["up", "--no-wait"]).ok();
    let others_before = every_tag_set(&sdk, &state_of(&other, "other")).await;
    let state = state_of(&app, "app");
    assert_eq!(state["user_tags"], serde_json::json!({"team": "payments", "cost": "cc-42"}), "{state}");
    let vpc = state["resources"]["vpc"]["id"].as_str().unwrap().to_string();
    let backup = aws_sdk_ec2::types::Tag::builder().key("backup").value("daily").build();
    sdk.ec2.create_tags().resources(&vpc).tags(backup).send().await.unwrap();

    // A changed value, an added key, a removed key: one grouped line, one update per resource.
    app.write_config(&with_tags("app", "team = \"platform\"\nowner = \"ops\""));
    let tagged = every_tag_set(&sdk, &state).await;
    let plan = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let groups = plan["tags"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{plan}");
    let changes: Vec<String> = groups[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}: {} → {}", c["field"], c["from"], c["to"]).replace('"', ""))
        .collect();
    assert_eq!(changes, ["tags.cost: cc-42 → (removed)", "tags.owner: (none) → ops", "tags.team: payments → platform"]);
    let mut grouped: Vec<String> =
        groups[0]["resources"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    grouped.sort();
    let mut every: Vec<String> = tagged.iter().map(|(k, _)| k.clone()).collect();
    every.sort();
    assert_eq!(grouped, every, "every resource carrying the stack's tags, once");
    assert!(every.len() >= 25, "{every:?}");
    for key in &every {
        assert_eq!(planned_changes(&plan, key).0, "update", "{key}: {plan}");
    }
    let text = app.run(&["up", "--dry-run"]).ok().stdout;
    let line = format!(
        "tags on {} resources: tags.cost: cc-42 → (removed); tags.owner: (none) → ops; tags.team: payments → platform",
        every.len()
    );
    assert!(text.contains(&line), "{text}");
    assert!(!text.contains("  update "), "no row per resource: {text}");
    let printed = app.run(&["policy", "--commands", "up,status"]).ok().stdout;
    std::fs::write(&policy_file, &printed).unwrap();
    // Killed in the middle of the sync (an EC2 key taken off, answered never): the state holds the
    // keys of both sets, and the next `up` finishes the sync.
    realism.freeze_at("DeleteTags");
    let null = std::process::Stdio::null;
    let mut child = app
        .command(&["up", "--no-wait"])
        .env("AWS_ACCESS_KEY_ID", CI_KEY)
        .stdout(null())
        .stderr(null())
        .spawn()
        .unwrap();
    let frozen = realism.wait_frozen(std::time::Duration::from_secs(60));
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(frozen.as_deref(), Some("DeleteTags"));
    realism.thaw();
    let killed = state_of(&app, "app");
    assert_eq!(killed["user_tags"], serde_json::json!({"team": "platform", "owner": "ops", "cost": "cc-42"}));
    let calls = realism.calls().len();
    as_ci(&app, &["up", "--no-wait"]);
    let tagging: Vec<String> = realism.calls()[calls..]
        .iter()
        .map(|c| c["action"].as_str().unwrap_or_default().to_string())
        .filter(|a| a.contains("Tag"))
        .collect();
    assert!(!tagging.is_empty(), "the resumed run finishes the sync");
    let state = state_of(&app, "app");
    assert_eq!(state["user_tags"], serde_json::json!({"team": "platform", "owner": "ops"}), "{state}");
    for (key, tags) in every_tag_set(&sdk, &state).await {
        assert_eq!(tag_of(&tags, "team"), Some("platform"), "{key}: {tags:?}");
        assert_eq!(tag_of(&tags, "owner"), Some("ops"), "{key}: {tags:?}");
        assert_eq!(tag_of(&tags, "cost"), None, "{key}: {tags:?}");
        assert_eq!(tag_of(&tags, "fargate-stack:stack"), Some("app"), "{key}: {tags:?}");
        assert_eq!(tag_of(&tags, "backup"), (key == "vpc").then_some("daily"), "someone else's tag stays: {key}");
    }

    // Drift: a value changed and a tag removed outside the tool; reported, then put back.
    let table_arn = state["resources"]["table"]["attrs"]["arn"].as_str().unwrap().to_string();
    let rogue = aws_sdk_dynamodb::types::Tag::builder().key("team").value("rogue").build().unwrap();
    sdk.dynamodb.tag_resource().resource_arn(&table_arn).tags(rogue).send().await.unwrap();
    let tg = state["resources"]["target-group"]["id"].as_str().unwrap().to_string();
    sdk.elb.remove_tags().resource_arns(&tg).tag_keys("owner").send().await.unwrap();
    let status = app.run(&["--output", "json", "status"]).json();
    let row = |name: &str| status["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("table")["status"], "drifted", "{status}");
    assert!(row("table")["detail"].as_str().unwrap().contains("tags.team: rogue → platform"), "{status}");
    assert_eq!(row("target-group")["status"], "drifted", "{status}");
    assert!(row("target-group")["detail"].as_str().unwrap().contains("tags.owner: (none) → ops"), "{status}");
    assert_eq!(row("vpc")["status"], "ok", "an extra tag is no drift: {status}");
    as_ci(&app, &["up", "--no-wait"]);
    for (key, tags) in every_tag_set(&sdk, &state).await {
        assert_eq!((tag_of(&tags, "team"), tag_of(&tags, "owner")), (Some("platform"), Some("ops")), "{key}");
    }

    // In step: a no-op `up` changes nothing and makes no tagging call.
    let calls = realism.calls().len();
    let noop = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(noop["nothing_to_change"], true, "{noop}");
    let made: Vec<Value> = realism.calls()[calls..].to_vec();
    assert!(!made.iter().any(|c| is_mutating(c["action"].as_str().unwrap_or("Get"))), "{made:#?}");
    eprintln!("no-op up with [tags]: {} calls", made.len());
    assert_eq!(every_tag_set(&sdk, &state_of(&other, "other")).await, others_before, "the other stack untouched");
    let denied: Vec<Value> = realism
        .calls()
        .into_iter()
        .filter(|c| c["error"].as_str().is_some_and(|e| e.contains("Denied") || e == "UnauthorizedOperation"))
        .collect();
    assert!(denied.is_empty(), "the printed policy suffices for the sync: {denied:#?}");
    eprintln!("tags kept in step in {:.1}s", started.elapsed().as_secs_f64());
}
