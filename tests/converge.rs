//! `up` converges: updates in place, refuses replacements, repairs drift, plans without changing
//! anything, and never orphans a stack whose state file was lost.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_state_is_adopted_by_up_adopt_only_and_cleaned_by_down_name() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let vpc_before = cli.state().unwrap()["resources"]["vpc"]["id"].clone();
    std::fs::remove_file(cli.state_path()).unwrap();
    // Taking over what carries the stack's tag is a decision: off a terminal, without --adopt, the
    // run stops before any change, naming what it would adopt (anyone who can tag a resource could
    // otherwise hand it to the stack, to be rewritten and deleted with it).
    let plan = cli.run(&["up", "--dry-run"]).ok();
    let adopt = format!("adopt: {} resources carry the stack's tag", default_resources());
    assert!(plan.stdout.contains(&adopt) && plan.stdout.contains("--adopt"), "{}", plan.stdout);
    let refused = cli.run(&["up", "--no-wait"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let line = refused.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(line.starts_with("error: refusing to adopt without --adopt"), "{line}");
    assert!(
        line.contains(&format!("{} resources carry stack simple-ecs-dev's tag", default_resources()))
            && line.contains(&format!("vpc {}", vpc_before.as_str().unwrap())),
        "{line}"
    );
    assert!(cli.state().is_none(), "nothing written");
    assert_exactly_one_stack(&sdk).await;
    let again = cli.run(&["--output", "json", "up", "--no-wait", "--adopt"]).ok().json();
    assert_exactly_one_stack(&sdk).await;
    assert_eq!(cli.state().unwrap()["resources"]["vpc"]["id"], vpc_before, "adopted, not recreated");
    assert_eq!(cli.state().unwrap()["resources"].as_object().unwrap().len(), default_resources());
    let created: Vec<_> = again["steps"].as_array().unwrap().iter().filter(|s| s["outcome"] == "created").collect();
    assert!(created.is_empty(), "nothing created: {created:?}");

    // No state at all: plain `down` has nothing to go on and says how to find the stack...
    std::fs::remove_file(cli.state_path()).unwrap();
    let nothing = cli.run(&["down", "--yes"]).ok();
    assert!(nothing.stdout.contains("down --name simple-ecs-dev"), "{}", nothing.stdout);
    assert!(!leftovers(&sdk, STACK).await.is_empty());
    // ...and `down --name` finds every resource by tag and name, and says that is how it found them.
    let asked = cli.run(&["down", "--name", STACK]);
    assert_eq!(asked.code, 1, "off a terminal, --yes is needed");
    assert!(asked.stderr.contains(" (found by tag or name; not in the state)"), "{}", asked.stderr);
    cli.run(&["down", "--yes", "--name", STACK]).ok();
    let left = leftovers(&sdk, STACK).await;
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_update_in_place() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    // A new stack's plan carries its monthly bill, from nothing.
    let first = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(
        (first["cost"]["monthly_total"].as_f64(), first["cost"]["before"]["monthly_total"].as_f64()),
        (Some(78.55), Some(0.0))
    );
    cli.run(&["up", "--no-wait"]).ok();
    let before = cli.state().unwrap();
    // A permissions boundary given to an existing stack is put on both roles in place.
    let boundary = sdk
        .iam
        .create_policy()
        .policy_name("boundary")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let edits = config_with(&[
        ("image", "image = \"nginx:1.27-alpine\""),
        ("desired_count", "desired_count = 3"),
        ("cpu_architecture", "cpu_architecture = \"ARM64\""),
        ("retention_days", "retention_days = 30"),
        ("listener_port", "listener_port = 8080"),
        ("APP_ID", "APP_ID = \"v2\""),
    ]);
    cli.write_config(&format!("{edits}\n[iam]\npermissions_boundary = \"{boundary}\"\n"));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let action = |name: &str| {
        plan["resources"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["action"].clone()
    };
    for changed in ["task-definition", "service", "log-group", "listener", "security-group-alb", "role-task"] {
        assert_eq!(action(changed), "update", "{changed}: {plan}");
    }
    assert_eq!(action("vpc"), "unchanged");
    // Three ARM64 tasks instead of two x86 ones move the bill by the tasks' lines, from what was
    // applied: 2 x 9.01 out, 3 x 7.21 in.
    let cost = &plan["cost"];
    assert_eq!((cost["before"]["monthly_total"].as_f64(), cost["monthly_total"].as_f64()), (Some(78.55), Some(82.15)));
    let moved: Vec<String> = cost["before"]["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}: {} → {}", m["what"].as_str().unwrap(), m["before"], m["after"]))
        .collect();
    assert_eq!(
        moved,
        [
            "Fargate memory (arm64): 0.0 → 3.9",
            "Fargate memory (x86_64): 3.24 → 0.0",
            "Fargate vCPU (arm64): 0.0 → 17.73",
            "Fargate vCPU (x86_64): 14.78 → 0.0"
        ],
        "{cost:#}"
    );
    assert_eq!(cost["region"], "us-east-1");
    assert!(cost["usage_based"].as_array().unwrap().iter().any(|u| u["what"] == "load balancer capacity units"));

    // The first up with ./fargate-stack.toml after the built-in config must be confirmed.
    let unconfirmed = cli.run(&["up", "--no-wait"]);
    assert_eq!(unconfirmed.code, 1);
    assert!(unconfirmed.stderr.contains("(built-in default) (applied last"), "{}", unconfirmed.stderr);
    let result = cli.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    let outcome =
        |name: &str| result["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["outcome"].clone();
    assert_eq!(outcome("vpc"), "unchanged");
    assert_eq!(outcome("task-definition"), "updated");
    assert_eq!(outcome("service"), "updated");
    let after = cli.state().unwrap();
    for same in ["vpc", "load-balancer", "listener", "table", "cluster", "target-group", "service"] {
        assert_eq!(before["resources"][same]["id"], after["resources"][same]["id"], "{same} replaced");
    }
    assert_eq!(
        result["outputs"]["url"],
        format!("http://{}:8080", result["outputs"]["alb_dns_name"].as_str().unwrap())
    );

    // status shows the bill of what was applied.
    let shown = cli.run(&["--output", "json", "status"]).json();
    assert_eq!(shown["cost"]["monthly_total"].as_f64(), Some(82.15), "{}", shown["cost"]);
    let service = sdk.service().await;
    assert_eq!(service.desired_count(), 3);
    assert!(service.task_definition().unwrap().ends_with("simple-ecs-dev-server:2"));
    let def = sdk.ecs.describe_task_definition().task_definition("simple-ecs-dev-server:2").send().await.unwrap();
    let container = &def.task_definition().unwrap().container_definitions()[0];
    assert_eq!(container.image(), Some("nginx:1.27-alpine"));
    let platform = def.task_definition().unwrap().runtime_platform().unwrap();
    assert_eq!(platform.cpu_architecture().map(|a| a.as_str()), Some("ARM64"));
    assert!(container.environment().iter().any(|kv| kv.name() == Some("APP_ID") && kv.value() == Some("v2")));
    let groups = sdk.logs.describe_log_groups().log_group_name_prefix("/ecs/simple-ecs-dev").send().await.unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(30));
    let lb_arn = after["resources"]["load-balancer"]["id"].as_str().unwrap();
    let listeners = sdk.elb.describe_listeners().load_balancer_arn(lb_arn).send().await.unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    assert_eq!(listeners.listeners()[0].port(), Some(8080));
    let alb_sg = after["resources"]["security-group-alb"]["id"].as_str().unwrap();
    let group = sdk.ec2.describe_security_groups().group_ids(alb_sg).send().await.unwrap();
    let ingress = group.security_groups()[0].ip_permissions();
    assert_eq!(ingress.len(), 1, "{ingress:?}");
    assert_eq!(ingress[0].from_port(), Some(8080));

    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let again = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert!(again["steps"].as_array().unwrap().iter().all(|s| s["outcome"] == "unchanged"), "{again}");
    let boundary_of = |role: &'static str| {
        let iam = sdk.iam.clone();
        async move {
            let r = iam.get_role().role_name(role).send().await.unwrap();
            r.role().unwrap().permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_string)
        }
    };
    for role in ["simple-ecs-dev-task-role", "simple-ecs-dev-execution-role", "simple-ecs-dev-flow-logs"] {
        assert_eq!(boundary_of(role).await.as_deref(), Some(boundary.as_str()), "{role}");
    }
    // Dropped from the config: taken off again.
    cli.write_config(&edits);
    let dropped = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    let outcome = |name: &str| {
        dropped["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["outcome"].clone()
    };
    assert_eq!((outcome("role-task"), outcome("role-execution")), ("updated".into(), "updated".into()));
    assert_eq!(outcome("role-flow-logs"), "updated");
    for role in ["simple-ecs-dev-task-role", "simple-ecs-dev-execution-role", "simple-ecs-dev-flow-logs"] {
        assert_eq!(boundary_of(role).await, None, "{role}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_that_replace_are_refused_and_change_nothing() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let before = cli.state().unwrap();
    for (edit, needle) in [
        (("cidr", "cidr = \"10.1.0.0/16\""), "network.cidr: 10.0.0.0/16 → 10.1.0.0/16"),
        (("az_count", "az_count = 3"), "network.az_count: 2 → 3"),
        (
            ("sort_key", "sort_key = { name = \"created_at\", type = \"S\" }"),
            "table keys: id:S,created_at:N → id:S,created_at:S",
        ),
    ] {
        cli.write_config(&config_with(&[edit]));
        let run = cli.run(&["up", "--no-wait"]);
        assert_eq!(run.code, 1, "{needle}");
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        // Says how, and never by taking the stack down (an outage, and the next `up` refuses the same).
        let safe = !run.stderr.contains("down") && run.stderr.to_lowercase().contains("put ");
        assert!(safe && run.stderr.contains("cannot"), "says how: {}", run.stderr);
    }
    assert_eq!(cli.state().unwrap()["resources"], before["resources"], "state unchanged");
    let defs = sdk.ecs.list_task_definitions().family_prefix("simple-ecs-dev-server").send().await.unwrap();
    assert_eq!(defs.task_definition_arns().len(), 1, "no new task definition revision");
    let table = sdk.dynamodb.describe_table().table_name("simple-ecs-dev-messages").send().await.unwrap();
    assert_eq!(table.table().unwrap().attribute_definitions().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_group_drift_is_reported_and_repaired() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let task_sg = cli.state().unwrap()["resources"]["security-group-task"]["id"].as_str().unwrap().to_string();
    let ssh = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    sdk.ec2.authorize_security_group_ingress().group_id(&task_sg).ip_permissions(ssh).send().await.unwrap();
    // The open egress older versions left on the task group (all traffic anywhere).
    let open = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build();
    sdk.ec2.authorize_security_group_egress().group_id(&task_sg).ip_permissions(open).send().await.unwrap();
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    // HTTPS anywhere and to the gateway endpoints' prefix lists, DNS to the VPC's resolver.
    let resources = cli.state().unwrap()["resources"].clone();
    let mut lists: Vec<&str> = ["gateway-endpoint-s3", "gateway-endpoint-dynamodb"]
        .iter()
        .map(|k| resources[*k]["attrs"]["prefix_list"].as_str().unwrap())
        .collect();
    lists.sort();
    let wanted = format!("tcp 53 10.0.0.2/32, tcp 443 0.0.0.0/0,{}, udp 53 10.0.0.2/32", lists.join(","));
    assert!(plan.contains(&format!("egress: all traffic 0.0.0.0/0, {wanted} → {wanted}")), "{plan}");
    // A trust policy as older versions wrote it (aws:SourceAccount without aws:SourceArn) is drift too.
    let role = "simple-ecs-dev-task-role";
    let old_trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]});
    sdk.iam.update_assume_role_policy().role_name(role).policy_document(old_trust.to_string()).send().await.unwrap();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3);
    let doc = status.json();
    for name in ["security-group-task", "role-task"] {
        let row = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
        assert_eq!(row["status"], "drifted", "{row}");
    }
    let repaired = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    for name in ["security-group-task", "role-task"] {
        let step = repaired["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
        assert_eq!(step["outcome"], "updated", "{name}");
    }
    let group = sdk.ec2.describe_security_groups().group_ids(&task_sg).send().await.unwrap();
    assert_eq!(group.security_groups()[0].ip_permissions().len(), 1);
    let egress = group.security_groups()[0].ip_permissions_egress();
    assert_eq!(egress.len(), 3, "the open rule revoked: {egress:?}");
    assert!(egress.iter().all(|p| p.ip_protocol() != Some("-1")), "{egress:?}");
    let trust = sdk.iam.get_role().role_name(role).send().await.unwrap();
    let trust = percent_encoding::percent_decode_str(trust.role().unwrap().assume_role_policy_document().unwrap())
        .decode_utf8()
        .unwrap()
        .to_string();
    assert!(trust.contains("aws:SourceArn") && trust.contains("arn:aws:ecs:us-east-1:123456789012:*"), "{trust}");
    assert_eq!(cli.run(&["status"]).code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(plan["dry_run"], true);
    let steps = plan["resources"].as_array().unwrap();
    assert_eq!(steps.len(), default_resources());
    // The VPC's default group is made by AWS with the VPC: `up` only empties it.
    let made_by_aws = |s: &&serde_json::Value| s["name"] == "default-security-group";
    assert!(steps.iter().filter(|s| !made_by_aws(s)).all(|s| s["action"] == "create"), "{plan}");
    let default_group = steps.iter().find(made_by_aws).unwrap();
    assert_eq!(default_group["action"], "update", "{default_group}");
    assert_eq!(default_group["detail"], "AWS makes it with the vpc; its rules are removed");
    assert!(cli.state().is_none(), "no state written");
    assert!(leftovers(&sdk, STACK).await.is_empty(), "nothing created");
    let text = cli.run(&["up", "--dry-run"]).ok();
    assert!(
        text.stdout.contains("create")
            && text.stdout.contains(&format!("plan: {} to create, 0 to adopt, 1 to update", default_resources() - 1)),
        "{}",
        text.stdout
    );
    // The default has no domain: the plan says it serves plain HTTP rather than leave it to a scanner.
    assert!(plan["plain_http"].as_str().is_some_and(|n| n.contains("ELB.1")), "{plan}");
    assert!(text.stdout.contains("note: HTTP only: without [https]"), "{}", text.stdout);
    // CI can stop on a plan: --detailed-exitcode as Terraform's (2: changes), and a plan that `up`
    // would refuse is an error with or without it.
    assert_eq!(cli.run(&["up", "--dry-run", "--detailed-exitcode"]).code, 2);
    let exit = |cli: &Cli, detailed: bool| {
        let args: &[&str] = if detailed { &["up", "--dry-run", "--detailed-exitcode"] } else { &["up", "--dry-run"] };
        let run = cli.run(args);
        (run.code, run.stdout, run.stderr)
    };
    // Blocked: a domain in no hosted zone; a table of the stack's name that is not the stack's.
    cli.write_config(&format!("{}\n[https]\ndomain = \"api.example.com\"\n", config_with(&[])));
    let (code, stdout, stderr) = exit(&cli, false);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("blocked: ") && stderr.contains("no public hosted zone"), "{stdout}\n{stderr}");
    assert_eq!(exit(&cli, true).0, 1);
    std::fs::remove_file(cli.dir.path().join("fargate-stack.toml")).unwrap();
    let id = aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name("id")
        .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
        .build()
        .unwrap();
    let key = aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name("id")
        .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
        .build()
        .unwrap();
    let billing = aws_sdk_dynamodb::types::BillingMode::PayPerRequest;
    let foreign = format!("{STACK}-messages");
    let table = sdk.dynamodb.create_table().table_name(&foreign).attribute_definitions(id).key_schema(key);
    table.billing_mode(billing).send().await.unwrap();
    let (code, stdout, _) = exit(&cli, true);
    assert_eq!(code, 1, "a foreign table: {stdout}");
    assert!(stdout.contains("blocked: "), "{stdout}");
    sdk.dynamodb.delete_table().table_name(&foreign).send().await.unwrap();

    // Refused: a table key or CIDR change on a stack that exists; none: 0 either way.
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(exit(&cli, true).0, 0, "no changes");
    for edit in
        [("partition_key", "partition_key = { name = \"pk\", type = \"S\" }"), ("cidr", "cidr = \"10.1.0.0/16\"")]
    {
        cli.write_config(&config_with(&[edit]));
        let (code, stdout, stderr) = exit(&cli, false);
        assert_eq!(code, 1, "{edit:?}: {stdout}");
        assert!(stdout.contains("refused: ") && stderr.contains("`up` would change nothing"), "{stdout}\n{stderr}");
        // The advice never sends the stack down (that is an outage, and the next `up` refuses the same).
        let refused = cli.run(&["up", "--yes"]);
        assert_eq!(refused.code, 1);
        assert!(!refused.stderr.contains("down"), "{}", refused.stderr);
        let advice = if edit.0 == "partition_key" {
            "table: table keys: id:S,created_at:N → pk:S,created_at:N (AWS cannot change this in place: it needs a \
             new table). A table's keys are fixed when DynamoDB creates it: new keys need a new table, and a new \
             table would not hold the old one's items. Run `fargate-stack up --replace table`"
        } else {
            "vpc: network.cidr: 10.0.0.0/16 → 10.1.0.0/16 (AWS cannot change this in place: it needs a new vpc). \
             AWS cannot change a VPC's CIDR in place, and the stack's subnets, NAT and load balancer are laid out for \
             its zones: either change means a new VPC with everything in it"
        };
        assert!(refused.stderr.contains(advice), "{}", refused.stderr);
    }
    // Following it: the values put back, `up` has nothing to do and the stack runs on.
    cli.write_config(&config_with(&[]));
    assert_eq!(exit(&cli, true).0, 0, "no changes once the values are back");
    cli.write_config(&config_with(&[("desired_count", "desired_count = 3")]));
    assert_eq!((exit(&cli, false).0, exit(&cli, true).0), (0, 2), "changes `up` can apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repaired_route_is_an_update_not_a_creation() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let table = cli.state().unwrap()["resources"]["route-table-private-1"]["id"].as_str().unwrap().to_string();
    sdk.ec2.delete_route().route_table_id(&table).destination_cidr_block("0.0.0.0/0").send().await.unwrap();
    // Two repairs on one table (the old `MaxWith` merge turned the second into "created").
    let described = sdk.ec2.describe_route_tables().route_table_ids(&table).send().await.unwrap();
    let association = described.route_tables()[0].associations()[0].route_table_association_id().unwrap().to_string();
    sdk.ec2.disassociate_route_table().association_id(association).send().await.unwrap();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3);
    let row = status.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "route-table-private-1")
        .unwrap()
        .clone();
    assert_eq!(row["status"], "drifted", "{row}");
    assert_eq!(row["changes"][0]["field"], "route 0.0.0.0/0", "{row}");
    assert_eq!(row["changes"][0]["from"], "none", "{row}");
    let repaired = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    let step =
        repaired["steps"].as_array().unwrap().iter().find(|s| s["name"] == "route-table-private-1").unwrap().clone();
    assert_eq!(step["outcome"], "updated", "the table existed: {step}");
    assert_eq!(cli.run(&["status"]).code, 0);
}

/// The secure defaults of issue 24 (point-in-time recovery, Container Insights, a year of logs, a
/// non-blocking log driver), their drift outside fargate-stack, and each turned by the config: all
/// in place, through the realism layer (moto has no UpdateClusterSettings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_defaults_are_set_drift_is_reported_and_the_config_turns_them_in_place() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let cli = Cli::at(&realism.url());
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let costs = plan["costs"].to_string();
    assert!(costs.contains("keeps 365 days") && costs.contains("meets Security Hub CloudWatch.16"), "{plan}");
    cli.run(&["up", "--no-wait"]).ok();

    let table = "simple-ecs-dev-messages";
    let recovery = || async {
        let out = sdk.dynamodb.describe_continuous_backups().table_name(table).send().await.unwrap();
        let desc = out.continuous_backups_description().unwrap().point_in_time_recovery_description().cloned();
        desc.and_then(|d| d.point_in_time_recovery_status().cloned()).unwrap().as_str().to_string()
    };
    let insights = || async {
        let out = sdk
            .ecs
            .describe_clusters()
            .clusters("simple-ecs-dev-cluster")
            .include(aws_sdk_ecs::types::ClusterField::Settings)
            .send()
            .await
            .unwrap();
        let cluster = out.clusters()[0].clone();
        let setting = cluster.settings().iter().find(|s| s.name().map(|n| n.as_str()) == Some("containerInsights"));
        setting.and_then(|s| s.value()).unwrap_or("absent").to_string()
    };
    let log_options = || async {
        let service = sdk.service().await;
        let def = sdk.ecs.describe_task_definition().task_definition(service.task_definition().unwrap()).send();
        let def = def.await.unwrap();
        let container = def.task_definition().unwrap().container_definitions()[0].clone();
        container.log_configuration().unwrap().options().cloned().unwrap()
    };
    let retention = || async {
        let groups = sdk.logs.describe_log_groups().log_group_name_prefix("/ecs/simple-ecs-dev").send().await.unwrap();
        groups.log_groups()[0].retention_in_days()
    };
    assert_eq!(recovery().await, "ENABLED");
    assert_eq!(insights().await, "enabled");
    assert_eq!(retention().await, Some(365));
    let options = log_options().await;
    assert_eq!((options["mode"].as_str(), options["max-buffer-size"].as_str()), ("non-blocking", "25m"));
    // Read-only root filesystem, with nginx's three writable paths on task storage; the image's user.
    let (def, container) = app_container(&sdk).await;
    assert_eq!(container.readonly_root_filesystem(), Some(true));
    let mounts: Vec<(&str, &str)> =
        container.mount_points().iter().map(|m| (m.source_volume().unwrap(), m.container_path().unwrap())).collect();
    assert_eq!(mounts, [("writable-1", "/var/cache/nginx"), ("writable-2", "/var/run"), ("writable-3", "/tmp")]);
    let volumes: Vec<&str> = def.volumes().iter().map(|v| v.name().unwrap()).collect();
    assert_eq!(volumes, ["writable-1", "writable-2", "writable-3"]);
    assert!(def.volumes().iter().all(|v| v.host().is_none()), "task storage, no host path");
    assert_eq!(container.user(), None);
    let state = cli.state().unwrap();
    let lb_arn = state["resources"]["load-balancer"]["id"].as_str().unwrap().to_string();
    let protection = || async {
        let out = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(&lb_arn).send().await.unwrap();
        let attr = out.attributes().iter().find(|a| a.key() == Some("deletion_protection.enabled")).cloned();
        attr.and_then(|a| a.value().map(str::to_string)).unwrap_or_default()
    };
    assert_eq!(protection().await, "true", "deletion protection on by default (ELB.6)");
    assert_eq!(state["resources"]["table"]["attrs"]["point_in_time_recovery"], "on");
    assert_eq!(state["resources"]["cluster"]["attrs"]["container_insights"], "enabled");

    // Turned off outside fargate-stack: drift, which `up` puts back.
    let off = aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(false)
        .build()
        .unwrap();
    sdk.dynamodb
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(off)
        .send()
        .await
        .unwrap();
    let disabled = aws_sdk_ecs::types::ClusterSetting::builder()
        .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
        .value("disabled")
        .build();
    sdk.ecs.update_cluster_settings().cluster("simple-ecs-dev-cluster").settings(disabled).send().await.unwrap();
    // Access logs turned off and their bucket's expiry removed.
    let bucket = state["resources"]["access-log-bucket"]["id"].as_str().unwrap().to_string();
    let logs_off = aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
        .key("access_logs.s3.enabled")
        .value("false")
        .build();
    sdk.elb.modify_load_balancer_attributes().load_balancer_arn(&lb_arn).attributes(logs_off).send().await.unwrap();
    sdk.s3.delete_bucket_lifecycle().bucket(&bucket).send().await.unwrap();
    let access_logs = || async {
        let out = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(&lb_arn).send().await.unwrap();
        let attr = out.attributes().iter().find(|a| a.key() == Some("access_logs.s3.enabled")).cloned();
        attr.and_then(|a| a.value().map(str::to_string)).unwrap_or_default()
    };
    let expiry = || async {
        let out = sdk.s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await;
        out.ok().and_then(|l| l.rules().first().and_then(|r| r.expiration()).and_then(|e| e.days()))
    };
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stderr);
    let doc = status.json();
    let row = |name: &str| doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("table")["status"], "drifted");
    assert!(row("table")["detail"].as_str().unwrap().contains("table.point_in_time_recovery: off → on"), "{doc}");
    assert_eq!(row("cluster")["status"], "drifted");
    assert!(row("cluster")["detail"].as_str().unwrap().contains("cluster.container_insights: disabled → enabled"));
    assert!(row("load-balancer")["detail"].as_str().unwrap().contains("access_logs.s3.enabled: false → true"), "{doc}");
    let expiration = "load_balancer.access_logs_expiration_days: never → 90 days";
    assert!(row("access-log-bucket")["detail"].as_str().unwrap().contains(expiration), "{doc}");
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!((recovery().await, insights().await), ("ENABLED".to_string(), "enabled".to_string()));
    assert_eq!((access_logs().await.as_str(), expiry().await), ("true", Some(90)));

    // Each turned by the config, in place.
    let config = config_with(&[
        ("point_in_time_recovery", "point_in_time_recovery = false"),
        ("container_insights", "container_insights = \"enhanced\""),
        ("retention_days", "retention_days = 30"),
        ("mode", "mode = \"blocking\""),
        ("writable_paths", "writable_paths = [\"/tmp\"]"),
        ("access_logs_expiration_days", "access_logs_expiration_days = 30"),
    ]);
    cli.write_config(&config.replacen("[service]\n", "[service]\nuser = \"101:101\"\n", 1));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let action = |name: &str| {
        plan["resources"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["action"].clone()
    };
    for changed in ["table", "cluster", "log-group", "task-definition", "access-log-bucket"] {
        assert_eq!(action(changed), "update", "{changed}: {plan}");
    }
    let costs = plan["costs"].to_string();
    assert!(costs.contains("keeps 30 days") && costs.contains("CloudWatch.16 fails"), "{plan}");
    assert!(costs.contains("of 30 days of logs"), "the access logs' storage: {plan}");
    cli.run(&["up", "--no-wait", "--yes"]).ok();
    assert_eq!(expiry().await, Some(30));
    assert_eq!(recovery().await, "DISABLED");
    assert_eq!(insights().await, "enhanced");
    assert_eq!(retention().await, Some(30));
    let options = log_options().await;
    assert_eq!(options.get("mode").map(String::as_str), Some("blocking"));
    assert!(!options.contains_key("max-buffer-size"), "{options:?}");
    let (def, container) = app_container(&sdk).await;
    assert_eq!(container.user(), Some("101:101"));
    assert_eq!(container.mount_points().len(), 1);
    assert_eq!(container.mount_points()[0].container_path(), Some("/tmp"));
    assert_eq!(def.volumes().len(), 1);
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);

    // AWS (and the realism layer) refuse to delete a protected load balancer: `down` lifts it first.
    assert_eq!(protection().await, "true");
    let down = cli.run(&["down", "--yes"]).ok();
    let said = format!("{}{}", down.stdout, down.stderr);
    assert!(said.contains("deletion protection turned off"), "{said}");
    let left = leftovers(&sdk, STACK).await;
    assert!(left.is_empty(), "left behind: {left:#?}");
}

/// The service's task definition and its app container.
async fn app_container(sdk: &Sdk) -> (aws_sdk_ecs::types::TaskDefinition, aws_sdk_ecs::types::ContainerDefinition) {
    let service = sdk.service().await;
    let def = sdk.ecs.describe_task_definition().task_definition(service.task_definition().unwrap()).send().await;
    let def = def.unwrap().task_definition().unwrap().clone();
    let container = def.container_definitions()[0].clone();
    (def, container)
}

/// Run `args`, freeze the realism layer once AWS created a table, and kill the run.
fn kill_at_create_table(cli: &Cli, realism: &Realism, args: &[&str]) {
    realism.freeze_at("CreateTable");
    let null = std::process::Stdio::null;
    let mut child = cli.command(args).stdout(null()).stderr(null()).spawn().unwrap();
    let frozen = realism.wait_frozen(std::time::Duration::from_secs(60));
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(frozen.as_deref(), Some("CreateTable"));
    realism.thaw();
}

/// The table's keys changed: the refusal names what is replaced and why and advises
/// `up --replace table`; following it (killed once at the new table's creation and resumed by a
/// plain `up`) moves the running service onto a new table in a rolling deployment, keeps the old
/// table with its items where the run says, and leaves a second stack alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_key_change_follows_the_advice_onto_a_new_table_and_keeps_the_old_items() {
    use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let config = serde_json::json!({"iam_propagation_s": 0});
    let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
    let cli = Cli::at(&realism.url());
    cli.write_config(&config_with(&[]));
    cli.run(&["up"]).ok();
    let other = Cli::at(&realism.url());
    other.write_config(&config_with(&[("name", "name = \"simple-ecs-dev-2\"")]));
    other.run(&["up", "--no-wait"]).ok();
    let other_state_file = other.dir.path().join(".fargate-stack/simple-ecs-dev-2.json");
    let other_state = std::fs::read_to_string(&other_state_file).unwrap();
    let old = format!("{STACK}-messages");
    for i in 0..3 {
        let item = sdk.dynamodb.put_item().table_name(&old).item("id", AttributeValue::S(format!("m{i}")));
        item.item("created_at", AttributeValue::N(i.to_string())).send().await.unwrap();
    }

    // Refused, naming what would be replaced and why, and what to run instead (never `down`).
    cli.write_config(&config_with(&[("partition_key", "partition_key = { name = \"pk\", type = \"S\" }")]));
    let refused = cli.run(&["up"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("table: table keys: id:S,created_at:N → pk:S,created_at:N (AWS cannot change this"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("down"), "{}", refused.stderr);
    let advised = refused.stderr.split("Run `fargate-stack ").nth(1).and_then(|s| s.split('`').next()).unwrap();
    assert_eq!(advised, "up --replace table");
    let advised: Vec<&str> = advised.split(' ').collect();
    let wrong = cli.run(&["up", "--replace", "vpc"]);
    assert!(wrong.code != 0 && wrong.stderr.contains("--replace vpc: `up` replaces only table"), "{}", wrong.stderr);
    let mut dry = vec!["up", "--dry-run"];
    dry.extend(&advised[1..]);
    let plan = cli.run(&dry).ok();
    assert!(plan.stdout.contains("(replaces it: `up --replace table`)"), "{}", plan.stdout);

    // Followed, and killed once AWS made the new table but before the run heard of it.
    let before = realism.calls().len();
    kill_at_create_table(&cli, &realism, &advised);
    let table = &cli.state().unwrap()["resources"]["table"];
    let new = table["id"].as_str().unwrap().to_string();
    assert!(new.starts_with(&format!("{old}-")), "recorded first: {table}");
    assert_eq!(table["attrs"]["replaces"].as_str(), Some(old.as_str()), "recorded first: {table}");
    // The plan and `status` say it is unfinished and what the next `up` does.
    let unfinished = format!(
        "unfinished: an interrupted `up --replace table` began replacing table {old} by {new} (keys pk:S,created_at:N) \
         and did not finish: the next `up` (no --replace needed) creates {new} if it is not there yet, rolls the \
         service onto it, then takes {old} out of the stack"
    );
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    assert!(plan.contains(&unfinished), "{plan}");
    assert!(cli.run(&["status"]).stdout.contains(&unfinished));
    // A plain `up` finishes it: nothing is deleted, the service rolls onto the new table.
    let done = cli.run(&["--output", "json", "up"]).ok().json();
    let calls = &realism.calls()[before..];
    let called = |action: &str| calls.iter().filter(|c| c["action"] == action && c["error"].is_null()).count();
    assert_eq!((called("CreateTable"), called("DeleteTable")), (1, 0), "one new table, none deleted");
    assert_eq!((called("CreateService"), called("DeleteService")), (0, 0), "the service keeps running");
    assert!(called("UpdateService") >= 1);
    let note = done["notes"][0].as_str().unwrap_or_default();
    let kept = format!(
        "table {old} was replaced by {new} (keys pk:S,created_at:N): {old} is kept as it was, with its 3 items (keys \
         id:S,created_at:N)"
    );
    assert!(note.starts_with(&kept), "{done:#}");
    assert!(note.contains(&format!("aws dynamodb scan --table-name {old}")), "{note}");
    let (code, status) = {
        let run = cli.run(&["--output", "json", "status"]);
        (run.code, run.json())
    };
    assert_eq!(code, 0, "{status:#}");
    assert_eq!(
        (status["service"]["running"].clone(), status["service"]["healthy_targets"].clone()),
        (2.into(), 2.into())
    );
    let described = sdk.dynamodb.describe_table().table_name(&new).send().await.unwrap();
    let keys: Vec<(String, KeyType)> = described
        .table()
        .unwrap()
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, [("pk".to_string(), KeyType::Hash), ("created_at".to_string(), KeyType::Range)]);
    let revision = cli.state().unwrap()["resources"]["task-definition"]["id"].as_str().unwrap().to_string();
    let task = sdk.ecs.describe_task_definition().task_definition(&revision).send().await.unwrap();
    let env = task.task_definition().unwrap().container_definitions()[0].environment().to_vec();
    assert!(env.iter().any(|e| e.name() == Some("DYNAMODB_MESSAGES_TABLE") && e.value() == Some(new.as_str())));
    // The task role granted both tables while the old tasks ran, and now only the new one.
    assert_eq!(called("PutRolePolicy"), 2, "the grant widened for the rollout, then narrowed");
    let role = cli.state().unwrap()["resources"]["role-task"]["id"].as_str().unwrap().to_string();
    let policy = sdk.iam.get_role_policy().role_name(&role).policy_name("fargate-stack").send().await.unwrap();
    let policy = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8().unwrap().to_string();
    assert!(!policy.contains(&format!("table/{old}/")) && policy.contains(&format!("table/{new}")), "{policy}");
    // The old table, where the note says: its items, no longer the stack's.
    let count = sdk.dynamodb.scan().table_name(&old).select(aws_sdk_dynamodb::types::Select::Count).send().await;
    assert_eq!(count.unwrap().count(), 3);
    let arn = sdk
        .dynamodb
        .describe_table()
        .table_name(&old)
        .send()
        .await
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_string();
    let tags = sdk.dynamodb.list_tags_of_resource().resource_arn(&arn).send().await.unwrap();
    assert!(tags.tags().iter().all(|t| !t.key().starts_with("fargate-stack:")), "{tags:?}");
    // With no state, the stack's table is the replacement (the old one left the stack).
    let state = std::fs::read_to_string(cli.state_path()).unwrap();
    std::fs::remove_file(cli.state_path()).unwrap();
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let row = plan["resources"].as_array().unwrap().iter().find(|r| r["name"] == "table").unwrap().clone();
    assert_eq!((row["action"].as_str(), row["id"].as_str()), (Some("adopt"), Some(new.as_str())), "{row}");
    std::fs::write(cli.state_path(), state).unwrap();
    // The other stack: untouched.
    assert_eq!(std::fs::read_to_string(&other_state_file).unwrap(), other_state);
    assert_eq!(other.run(&["status"]).code, 0);

    // Another replacement, killed as the first was, then `down`: the table it was replacing (with
    // an item now) leaves the stack as it is, the unfinished replacement is deleted.
    let item = sdk.dynamodb.put_item().table_name(&new).item("pk", AttributeValue::S("a".into()));
    item.item("created_at", AttributeValue::N("1".into())).send().await.unwrap();
    let sort = ("sort_key", "sort_key = { name = \"at\", type = \"S\" }");
    cli.write_config(&config_with(&[("partition_key", "partition_key = { name = \"pk\", type = \"S\" }"), sort]));
    kill_at_create_table(&cli, &realism, &advised);
    let down = cli.run(&["--output", "json", "down", "--yes"]).ok().json();
    let kept = format!("{new} is kept as it was, with its 1 item (keys pk:S,created_at:N)");
    assert!(down["notes"].to_string().contains(&kept), "{down:#}");
    // The notes' last step (the kept tables deleted): nothing of the stack is left.
    for table in [&old, &new] {
        sdk.dynamodb.update_table().table_name(table).deletion_protection_enabled(false).send().await.unwrap();
        sdk.dynamodb.delete_table().table_name(table).send().await.unwrap();
    }
    assert_eq!(leftovers(&sdk, STACK).await, Vec::<String>::new());
    assert!(!leftovers(&sdk, "simple-ecs-dev-2").await.is_empty());
}

/// `[service] container_port` changed on a running stack, with a second stack present: the plan names
/// the target group `up` replaces and why; `up` makes the new one first, moves the listener and the
/// service to it (killed once between the listener and the service, the plan and `status` say what
/// is unfinished, and a plain `up` finishes it), and deletes the old one last; the tasks' group lets
/// in only the new port at the end; a second `up` changes nothing; the other stack is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_port_change_replaces_the_target_group_without_downtime() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let cli = Cli::at(&realism.url());
    cli.write_config(&config_with(&[]));
    cli.run(&["up"]).ok();
    let other = Cli::at(&realism.url());
    other.write_config(&config_with(&[("name", "name = \"other\"")]));
    other.run(&["up", "--no-wait", "--yes"]).ok();
    let other_state_file = other.dir.path().join(".fargate-stack/other.json");
    let other_state = std::fs::read_to_string(&other_state_file).unwrap();
    let resource = |key: &str| cli.state().unwrap()["resources"][key]["id"].as_str().unwrap().to_string();
    let old = resource("target-group");

    cli.write_config(&config_with(&[("container_port", "container_port = 8080")]));
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    let row = format!(
        "replace target group {STACK}-tg (service.container_port: 80 → 8080): AWS cannot change it in place; a new \
         one is created, the listeners and the service move to it, then the old one is deleted: no downtime"
    );
    assert!(plan.contains(&row) && !plan.contains("refused"), "{plan}");

    // Killed once the listener forwards to the new target group, before the service moved.
    realism.freeze_at("ModifyListener");
    let null = std::process::Stdio::null;
    let mut child = cli.command(&["up"]).stdout(null()).stderr(null()).spawn().unwrap();
    let frozen = realism.wait_frozen(std::time::Duration::from_secs(60));
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(frozen.as_deref(), Some("ModifyListener"));
    realism.thaw();
    let new = resource("target-group");
    assert_ne!(new, old, "the new target group recorded as soon as it exists");
    let unfinished = format!(
        "unfinished: an interrupted `up` replaced target group {STACK}-tg (port 80) by {STACK}-tg2 and did not \
         finish: the next `up` moves the listeners and the service to {STACK}-tg2 where they are not yet, then \
         deletes {STACK}-tg"
    );
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    assert!(plan.contains(&unfinished), "{plan}");
    let status = cli.run(&["status"]);
    assert!(status.stdout.contains(&unfinished), "{}", status.stdout);

    let before = realism.calls().len();
    let done = cli.run(&["--output", "json", "up"]).ok().json();
    let calls = &realism.calls()[before..];
    let at = |action: &str| calls.iter().position(|c| c["action"] == action && c["error"].is_null());
    let (moved, deleted) = (at("UpdateService").unwrap(), at("DeleteTargetGroup").unwrap());
    assert!(moved < deleted, "the old target group goes once the service left it");
    assert!(at("CreateService").is_none() && at("DeleteService").is_none(), "the service keeps running");
    assert!(done["notes"].to_string().contains(&format!("target group {STACK}-tg deleted")), "{done:#}");
    let service = sdk.service().await;
    let target = &service.load_balancers()[0];
    assert_eq!((target.target_group_arn(), target.container_port()), (Some(new.as_str()), Some(8080)));
    let gone = sdk.elb.describe_target_groups().target_group_arns(&old).send().await;
    assert!(gone.is_err(), "the old target group is deleted: {gone:?}");
    let tg = sdk.elb.describe_target_groups().target_group_arns(&new).send().await.unwrap();
    assert_eq!(tg.target_groups()[0].port(), Some(8080));
    let listeners = sdk.elb.describe_listeners().load_balancer_arn(resource("load-balancer")).send().await.unwrap();
    assert_eq!(listeners.listeners()[0].default_actions()[0].target_group_arn(), Some(new.as_str()));
    let task_group = sdk.ec2.describe_security_groups().group_ids(resource("security-group-task")).send().await;
    let ingress = task_group.unwrap().security_groups()[0].ip_permissions().to_vec();
    let ports: Vec<Option<i32>> = ingress.iter().map(|p| p.from_port()).collect();
    assert_eq!(ports, [Some(8080)], "the old port's rule dropped: {ingress:?}");
    assert_eq!(cli.run(&["status"]).code, 0);
    let again = cli.run(&["--output", "json", "up"]).ok().json();
    assert_eq!(again["nothing_to_change"], true, "{again:#}");
    assert_eq!(std::fs::read_to_string(&other_state_file).unwrap(), other_state);
    assert_eq!(other.run(&["status"]).code, 0);
}

/// `[service]`'s container and deployment options and `[load_balancer]`'s idle timeout and matcher
/// turned on a running stack, with a second stack present: each a plan row, applied in place (a new
/// task definition revision, UpdateService, the attributes), drift in them reported by `status`
/// and repaired, and a second `up` a no-op. The other stack is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_service_and_load_balancer_options_update_in_place() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let other = Cli::at(&realism.url());
    other.write_config(&config_with(&[("name", "name = \"other\"")]));
    other.run(&["up", "--no-wait", "--yes"]).ok();
    let cli = Cli::at(&realism.url());
    cli.run(&["up", "--no-wait"]).ok();
    let state = cli.state().unwrap();
    let lb_arn = state["resources"]["load-balancer"]["id"].as_str().unwrap().to_string();
    let tg_arn = state["resources"]["target-group"]["id"].as_str().unwrap().to_string();
    let service = sdk.service().await;
    let deployment = service.deployment_configuration().unwrap();
    assert_eq!((deployment.minimum_healthy_percent(), deployment.maximum_percent()), (Some(100), Some(200)));
    assert_eq!((service.health_check_grace_period_seconds(), service.enable_execute_command()), (Some(30), false));

    let edits = config_with(&[
        ("readonly_root_filesystem", "readonly_root_filesystem = false"),
        ("additional_ports", "additional_ports = [9090]"),
        ("minimum_healthy_percent", "minimum_healthy_percent = 50"),
        ("maximum_percent", "maximum_percent = 150"),
        ("enable_execute_command", "enable_execute_command = true"),
        ("idle_timeout_seconds", "idle_timeout_seconds = 120"),
        ("health_check_matcher", "health_check_matcher = \"200-299\""),
    ]);
    let service_lines = "command = [\"nginx\", \"-g\", \"daemon off;\"]\nentrypoint = [\"/docker-entrypoint.sh\"]\n\
                         stop_timeout = 10\nhealth_check_grace_period_seconds = 45\n";
    let health = "[service.health_check]\ncommand = [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]\n\
                  interval_seconds = 10\nstart_period_seconds = 20\n";
    let edits = format!("{}\n{health}", edits.replacen("[service]\n", &format!("[service]\n{service_lines}"), 1));
    // Out of ECS's or ELB's range: refused before any AWS call, naming the key.
    let before = realism.calls().len();
    for (from, to, says) in [
        ("stop_timeout = 10", "stop_timeout = 500", "service.stop_timeout: 500: Fargate takes 2 to 120 seconds"),
        ("idle_timeout_seconds = 120", "idle_timeout_seconds = 4001", "load_balancer.idle_timeout_seconds: 4001: "),
        ("\"200-299\"", "\"200-600\"", "load_balancer.health_check_matcher: \"200-600\": HTTP codes of 200 to 499"),
    ] {
        cli.write_config(&edits.replace(from, to));
        let refused = cli.run(&["up", "--no-wait", "--yes"]);
        assert_eq!(refused.code, 1, "{}", refused.stderr);
        assert!(refused.stderr.contains(says), "{}", refused.stderr);
    }
    assert_eq!(realism.calls().len(), before, "no AWS call");
    cli.write_config(&edits);
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let changes = |name: &str| planned_changes(&plan, name);
    let (action, definition) = changes("task-definition");
    assert_eq!(action, "update");
    for row in [
        "service.readonly_root_filesystem: read-only, writable /var/cache/nginx, /var/run, /tmp → writable",
        "service.command: the image's → [\\nginx\\, \\-g\\, \\daemon off;\\]",
        "service.entrypoint: the image's → [\\/docker-entrypoint.sh\\]",
        "service.health_check: none → CMD-SHELL curl -f http://localhost/ || exit 1 (every 10 s, timeout 5 s, 3 retries, \
         start period 20 s)",
        "service.stop_timeout: 30 (ECS's default) → 10",
        "service.additional_ports: none → 9090",
    ] {
        assert!(definition.iter().any(|c| c == row), "{row} not in {definition:#?}");
    }
    let (action, service_rows) = changes("service");
    assert_eq!(action, "update");
    for row in [
        "service.health_check_grace_period_seconds: 30 → 45",
        "service.minimum_healthy_percent: 100 → 50",
        "service.maximum_percent: 200 → 150",
        "service.enable_execute_command: false → true",
    ] {
        assert!(service_rows.iter().any(|c| c == row), "{row} not in {service_rows:#?}");
    }
    assert_eq!(
        changes("load-balancer"),
        ("update".into(), vec!["load_balancer.idle_timeout_seconds: 60 → 120".into()])
    );
    assert_eq!(
        changes("target-group"),
        ("update".into(), vec!["load_balancer.health_check_matcher: 200-399 → 200-299".into()])
    );
    assert_eq!(changes("role-task").0, "update", "ECS Exec's grants");
    assert_eq!(changes("vpc").0, "unchanged");

    let applied = cli.run(&["--output", "json", "up", "--no-wait", "--yes"]).ok().json();
    let outcome = |name: &str| {
        applied["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["outcome"].clone()
    };
    for name in ["task-definition", "service", "load-balancer", "target-group", "role-task"] {
        assert_eq!(outcome(name), "updated", "{name}: {applied}");
    }
    // A new revision with the container's options.
    let (def, container) = app_container(&sdk).await;
    assert_eq!(def.revision(), 2);
    assert_eq!(container.command(), ["nginx", "-g", "daemon off;"]);
    assert_eq!(container.entry_point(), ["/docker-entrypoint.sh"]);
    assert_eq!(container.stop_timeout(), Some(10));
    assert_eq!(container.readonly_root_filesystem(), Some(false));
    let ports: Vec<i32> = container.port_mappings().iter().filter_map(|p| p.container_port()).collect();
    assert_eq!(ports, [80, 9090]);
    let check = container.health_check().unwrap();
    assert_eq!(check.command(), ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    assert_eq!(
        (check.interval(), check.timeout(), check.retries(), check.start_period()),
        (Some(10), Some(5), Some(3), Some(20))
    );
    // The service's settings, by UpdateService.
    let service = sdk.service().await;
    let deployment = service.deployment_configuration().unwrap();
    assert_eq!((deployment.minimum_healthy_percent(), deployment.maximum_percent()), (Some(50), Some(150)));
    assert_eq!((service.health_check_grace_period_seconds(), service.enable_execute_command()), (Some(45), true));
    // ECS Exec's channels on the task role.
    let policy = sdk.iam.get_role_policy().role_name("simple-ecs-dev-task-role").policy_name("fargate-stack");
    let policy = policy.send().await.unwrap();
    let policy = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8().unwrap().to_string();
    for action in ["ssmmessages:CreateControlChannel", "ssmmessages:OpenDataChannel"] {
        assert!(policy.contains(action), "{policy}");
    }
    // The load balancer's idle timeout and the target group's matcher.
    let idle = || async {
        let out = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(&lb_arn).send().await.unwrap();
        let attr = out.attributes().iter().find(|a| a.key() == Some("idle_timeout.timeout_seconds")).cloned();
        attr.and_then(|a| a.value().map(str::to_string)).unwrap_or_default()
    };
    assert_eq!(idle().await, "120");
    let tg = sdk.elb.describe_target_groups().target_group_arns(&tg_arn).send().await.unwrap();
    assert_eq!(tg.target_groups()[0].matcher().and_then(|m| m.http_code()), Some("200-299"));
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);

    // Changed outside fargate-stack: drift in status, put back by `up`.
    let idle_60 = aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
        .key("idle_timeout.timeout_seconds")
        .value("60")
        .build();
    sdk.elb.modify_load_balancer_attributes().load_balancer_arn(&lb_arn).attributes(idle_60).send().await.unwrap();
    let update = sdk.ecs.update_service().cluster("simple-ecs-dev-cluster").service("simple-ecs-dev-service");
    update.health_check_grace_period_seconds(0).send().await.unwrap();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stderr);
    let doc = status.json();
    let detail = |name: &str| {
        let row = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
        (row["status"].as_str().unwrap().to_string(), row["detail"].as_str().unwrap_or_default().to_string())
    };
    let (state, said) = detail("load-balancer");
    assert!(state == "drifted" && said.contains("load_balancer.idle_timeout_seconds: 60 → 120"), "{state}: {said}");
    let (state, said) = detail("service");
    assert!(
        state == "drifted" && said.contains("service.health_check_grace_period_seconds: 0 → 45"),
        "{state}: {said}"
    );
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(idle().await, "120");
    assert_eq!(sdk.service().await.health_check_grace_period_seconds(), Some(45));
    let again = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert!(again["steps"].as_array().unwrap().iter().all(|s| s["outcome"] == "unchanged"), "{again}");

    // The emulator refuses what AWS refuses, as moto does not.
    let too_long = aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
        .key("idle_timeout.timeout_seconds")
        .value("4001")
        .build();
    let refused =
        sdk.elb.modify_load_balancer_attributes().load_balancer_arn(&lb_arn).attributes(too_long).send().await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("InvalidConfigurationRequest"));

    // The other stack kept its revision, its settings and its load balancer's attributes.
    let theirs = sdk.ecs.describe_services().cluster("other-cluster").services("other-service").send().await.unwrap();
    let theirs = &theirs.services()[0];
    assert!(theirs.task_definition().unwrap().ends_with("other-server:1"));
    assert_eq!((theirs.health_check_grace_period_seconds(), theirs.enable_execute_command()), (Some(30), false));
    let plan = other.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let planned = plan["resources"].as_array().unwrap();
    assert!(planned.iter().all(|r| r["action"] == "unchanged"), "{plan}");
}

/// `network.nat = "none"`: no NAT gateway, no Elastic IP, the tasks in the public subnets with a
/// public IP (reachable only from the load balancer's group); then `single`, `per_az`, `single` (every
/// private subnet keeps a route to an available NAT gateway throughout) and `none`: the new
/// egress path exists and is routed before the service moves onto it, the old one goes after;
/// `down` leaves nothing, and another stack beside it is untouched throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_none_runs_the_tasks_public_and_switching_modes_builds_the_new_path_first() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let other = Cli::at(&realism.url());
    other.write_config(&config_with(&[("name", "name = \"app-2\"")]));
    other.run(&["up", "--no-wait"]).ok();
    let cli = Cli::at(&realism.url());
    let none = config_with(&[("nat", "nat = \"none\"")]);
    cli.write_config(&none);

    let row = |doc: &serde_json::Value, name: &str| {
        let rows = doc["resources"].as_array().unwrap();
        rows.iter().find(|r| r["name"] == name).cloned().unwrap_or(serde_json::Value::Null)
    };
    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let state = cli.state().unwrap();
    let resources = &state["resources"];
    for absent in ["nat-gateway-1", "elastic-ip-1", "route-table-private-1", "subnet-private-1", "subnet-private-2"] {
        assert!(resources[absent].is_null(), "{absent} in {resources}");
    }
    // Ours: moto filters neither NAT gateways nor addresses by tag.
    let our_nats = || async {
        let out = sdk.ec2.describe_nat_gateways().send().await.unwrap();
        let ours = out.nat_gateways().iter().filter(|n| tagged(n.tags(), STACK));
        ours.filter(|n| n.state().is_some_and(|s| s.as_str() != "deleted")).count()
    };
    assert_eq!(our_nats().await, 0, "no NAT gateway");
    let eips = sdk.ec2.describe_addresses().send().await.unwrap();
    assert!(!eips.addresses().iter().any(|a| tagged(a.tags(), STACK)), "no Elastic IP");
    let network = |service: &aws_sdk_ecs::types::Service| {
        let vpc = service.network_configuration().unwrap().awsvpc_configuration().unwrap().clone();
        let mut subnets = vpc.subnets().to_vec();
        subnets.sort();
        (subnets, vpc.assign_public_ip().map(|p| p.as_str().to_string()))
    };
    let ids = |state: &serde_json::Value, keys: [&str; 2]| {
        let mut ids: Vec<String> = keys.iter().map(|k| state["resources"][k]["id"].as_str().unwrap().into()).collect();
        ids.sort();
        ids
    };
    let public = ids(&state, ["subnet-public-1", "subnet-public-2"]);
    assert_eq!(network(&sdk.service().await), (public.clone(), Some("ENABLED".into())));
    // Still reachable only from the load balancer's group.
    let tasks = resources["security-group-task"]["id"].as_str().unwrap();
    let group = sdk.ec2.describe_security_groups().group_ids(tasks).send().await.unwrap();
    let ingress = group.security_groups()[0].ip_permissions();
    assert!(ingress.iter().all(|p| p.ip_ranges().is_empty() && p.user_id_group_pairs().len() == 1), "{ingress:?}");
    assert_eq!(ingress[0].user_id_group_pairs()[0].group_id(), resources["security-group-alb"]["id"].as_str());
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert_eq!(status["service"]["healthy_targets"], 2, "it serves: {}", status["service"]);
    assert!(status["service"]["egress"].as_str().unwrap().contains("nat = none"), "{}", status["service"]);
    let tasks_ipv4 = status["cost"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["what"].as_str().unwrap().contains("of the tasks"))
        .cloned();
    assert_eq!(tasks_ipv4.expect("a line for the tasks' addresses")["quantity"], 2.0);

    // To `single`: the plan shows what is made, the service's move and the bill's change.
    cli.write_config(&config_with(&[]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for made in ["nat-gateway-1", "elastic-ip-1", "route-table-private-1", "subnet-private-1", "subnet-private-2"] {
        assert_eq!(row(&plan, made)["action"], "create", "{made}: {plan}");
    }
    let service = row(&plan, "service");
    assert_eq!(service["action"], "update", "{service}");
    let moved = &service["changes"][0];
    assert!(moved["from"].as_str().unwrap().ends_with(", public IP"), "{service}");
    assert_eq!(moved["to"], "the private subnets, no public IP", "{service}");
    let before = plan["cost"]["before"]["monthly_total"].as_f64().unwrap();
    assert!(before < plan["cost"]["monthly_total"].as_f64().unwrap(), "{}", plan["cost"]);
    let mark = realism.calls().len();
    let up = cli.run(&["--output", "json", "up", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let calls: Vec<serde_json::Value> = realism.calls().into_iter().skip(mark).collect();
    let at = |action: &str| calls.iter().position(|c| c["action"] == action && c["error"].is_null()).unwrap();
    // The NAT is available and routed before the service moves its tasks behind it.
    assert!(at("CreateNatGateway") < at("CreateRoute") && at("CreateRoute") < at("UpdateService"), "{calls:?}");
    let state = cli.state().unwrap();
    let private = ids(&state, ["subnet-private-1", "subnet-private-2"]);
    assert_eq!(network(&sdk.service().await), (private, Some("DISABLED".into())));
    assert_eq!(our_nats().await, 1);
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert!(status["resources"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{status}");
    assert_eq!(status["service"]["healthy_targets"], 2);

    // To `per_az`: a second NAT gateway and address, the second AZ's private subnet routed through it.
    cli.write_config(&config_with(&[("nat", "nat = \"per_az\"")]));
    let up = cli.run(&["--output", "json", "up", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert_eq!(our_nats().await, 2);
    let state = cli.state().unwrap();
    let id = |key: &str| state["resources"][key]["id"].as_str().unwrap().to_string();
    let table = sdk.ec2.describe_route_tables().route_table_ids(id("route-table-private-2")).send().await.unwrap();
    let table = &table.route_tables()[0];
    assert_eq!(table.associations()[0].subnet_id(), Some(id("subnet-private-2").as_str()));
    let default = table.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).unwrap();
    assert_eq!(default.nat_gateway_id(), Some(id("nat-gateway-2").as_str()));

    // Back to `single`: every private subnet's effective route table (its own, else the VPC's main
    // one) sends 0.0.0.0/0 to an available NAT gateway at every sample during `up` and after it,
    // when the second gateway and its table are gone (AZ 2's subnet moved onto table 1 first).
    let (vpc, private) = (id("vpc"), [id("subnet-private-1"), id("subnet-private-2")]);
    cli.write_config(&config_with(&[]));
    let mut child = cli.command(&["up", "--yes"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut checked = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        let targets = nat_egress(&sdk, &vpc, &private).await;
        let live = available_nats(&sdk).await;
        // A sample counts when no route moved while the gateways' states were read.
        if nat_egress(&sdk, &vpc, &private).await == targets {
            let dead = targets.iter().zip(&private).filter(|(t, _)| !t.as_ref().is_some_and(|t| live.contains(t)));
            assert_eq!(dead.collect::<Vec<_>>(), [], "private subnets without egress (available: {live:?})");
            checked += 1;
        }
        if done {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(checked > 3, "{checked} samples");
    let state = cli.state().unwrap();
    let single = state["resources"]["nat-gateway-1"]["id"].as_str().unwrap().to_string();
    assert_eq!(nat_egress(&sdk, &vpc, &private).await, [Some(single.clone()), Some(single)]);
    for gone in ["nat-gateway-2", "elastic-ip-2", "route-table-private-2"] {
        assert!(state["resources"][gone].is_null(), "{gone}");
    }
    assert_eq!(our_nats().await, 1);

    // And back to `none`: the service moves to the public subnets first, then the NAT path goes.
    cli.write_config(&none);
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for gone in ["nat-gateway-1", "elastic-ip-1", "route-table-private-1", "subnet-private-1", "subnet-private-2"] {
        assert_eq!(row(&plan, gone)["action"], "delete", "{gone}: {plan}");
    }
    let mark = realism.calls().len();
    let up = cli.run(&["--output", "json", "up", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let calls: Vec<serde_json::Value> = realism.calls().into_iter().skip(mark).collect();
    let at = |action: &str| calls.iter().position(|c| c["action"] == action && c["error"].is_null()).unwrap();
    assert!(at("UpdateService") < at("DeleteNatGateway") && at("DeleteNatGateway") < at("ReleaseAddress"));
    assert_eq!(network(&sdk.service().await), (public, Some("ENABLED".into())));
    let state = cli.state().unwrap();
    for gone in ["subnet-private-1", "subnet-private-2", "nat-gateway-1", "nat-gateway-2", "elastic-ip-2"] {
        assert!(state["resources"][gone].is_null(), "{gone}");
    }
    assert_eq!(our_nats().await, 0);
    let again = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert!(again["resources"].as_array().unwrap().iter().all(|r| r["action"] == "unchanged"), "{again}");

    cli.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty(), "{:?}", leftovers(&sdk, STACK).await);
    assert_exactly_one_of(&sdk, "app-2").await;
}

/// `network.nat = "regional"` through the realism layer (moto refuses regional NAT gateways; the
/// layer emulates them): the plan and its bill, `up` killed once while AWS creates the gateway and
/// resumed, `status`, one private route table for both AZs, an outside change of its route repaired,
/// a switch to `single` during which the private route always points at an available NAT gateway,
/// and `down` leaving nothing; another stack beside it is untouched throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_regional_serves_every_az_from_one_gateway_and_switches_without_a_gap() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let other = Cli::at(&realism.url());
    other.write_config(&config_with(&[("name", "name = \"app-2\"")]));
    other.run(&["up", "--no-wait"]).ok();
    let cli = Cli::at(&realism.url());
    let regional = config_with(&[("nat", "nat = \"regional\"")]);
    cli.write_config(&regional);
    let row = |doc: &serde_json::Value, name: &str| {
        let rows = doc["resources"].as_array().unwrap();
        rows.iter().find(|r| r["name"] == name).cloned().unwrap_or(serde_json::Value::Null)
    };

    // The plan: one gateway and an address per AZ, no zonal NAT; the bill prices both AZs.
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    // The gateway endpoints stay on the private route table (nat != none).
    let made = ["nat-gateway-regional", "elastic-ip-regional-1", "elastic-ip-regional-2", "route-table-private-1"];
    for made in made.into_iter().chain(["gateway-endpoint-s3", "gateway-endpoint-dynamodb"]) {
        assert_eq!(row(&plan, made)["action"], "create", "{made}: {plan}");
    }
    for absent in ["nat-gateway-1", "elastic-ip-1", "route-table-private-2"] {
        assert!(row(&plan, absent).is_null(), "{absent}: {plan}");
    }
    let items = plan["cost"]["items"].as_array().unwrap();
    let hours = items.iter().find(|i| i["resource"] == "nat-gateway-regional").expect("the regional NAT's line");
    assert_eq!((hours["quantity"].as_f64(), hours["monthly"].as_f64()), (Some(2.0), Some(65.7)), "{hours}");

    // Killed once while AWS creates the gateway, resumed by a plain `up`.
    realism.freeze_at("CreateNatGateway");
    let null = std::process::Stdio::null;
    let mut child = cli.command(&["up"]).stdout(null()).stderr(null()).spawn().unwrap();
    let frozen = realism.wait_frozen(std::time::Duration::from_secs(60));
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(frozen.as_deref(), Some("CreateNatGateway"));
    realism.thaw();
    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let ours = |nats: &[aws_sdk_ec2::types::NatGateway]| -> Vec<(String, String)> {
        let alive =
            nats.iter().filter(|n| tagged(n.tags(), STACK) && n.state().is_some_and(|s| s.as_str() != "deleted"));
        alive
            .map(|n| {
                (
                    n.nat_gateway_id().unwrap().to_string(),
                    n.availability_mode().map_or("zonal", |m| m.as_str()).to_string(),
                )
            })
            .collect()
    };
    let nats = sdk.ec2.describe_nat_gateways().send().await.unwrap();
    let state = cli.state().unwrap();
    let id = |state: &serde_json::Value, key: &str| state["resources"][key]["id"].as_str().unwrap().to_string();
    let gateway = id(&state, "nat-gateway-regional");
    assert_eq!(ours(nats.nat_gateways()), [(gateway.clone(), "regional".to_string())], "one gateway after the kill");
    assert!(state["resources"]["nat-gateway-1"].is_null());

    // Status: every row ok, the service serving; one table routes both private subnets to it.
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert!(status["resources"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{status}");
    assert_eq!(status["service"]["healthy_targets"], 2);
    assert!(row(&status, "nat-gateway-regional")["id"] == gateway.as_str(), "{status}");
    let table = id(&state, "route-table-private-1");
    let route_target = || async {
        let out = sdk.ec2.describe_route_tables().route_table_ids(&table).send().await.unwrap();
        let t = &out.route_tables()[0];
        let mut subnets: Vec<String> =
            t.associations().iter().filter_map(|a| a.subnet_id().map(String::from)).collect();
        subnets.sort();
        let default = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
        (default.and_then(|r| r.nat_gateway_id().or(r.gateway_id())).map(String::from), subnets)
    };
    let mut private = vec![id(&state, "subnet-private-1"), id(&state, "subnet-private-2")];
    private.sort();
    assert_eq!(route_target().await, (Some(gateway.clone()), private.clone()));

    // An outside change of the route: drift, repaired by `up`.
    let igw = id(&state, "internet-gateway");
    sdk.ec2
        .replace_route()
        .route_table_id(&table)
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();
    let drift = cli.run(&["--output", "json", "status"]);
    assert_ne!(drift.code, 0);
    let drifted = row(&drift.json(), "route-table-private-1");
    assert_eq!(drifted["status"], "drifted", "{drifted}");
    cli.run(&["up", "--yes"]).ok();
    assert_eq!(route_target().await.0, Some(gateway.clone()), "repaired");

    // To `single`: the plan shows the move and the bill's change; during `up` the private route
    // points at an available NAT gateway at every sample, and the regional one goes last.
    cli.write_config(&config_with(&[]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for (name, action) in [("nat-gateway-1", "create"), ("elastic-ip-1", "create"), ("route-table-private-1", "update")]
        .into_iter()
        .chain(["nat-gateway-regional", "elastic-ip-regional-1", "elastic-ip-regional-2"].map(|n| (n, "delete")))
    {
        assert_eq!(row(&plan, name)["action"], action, "{name}: {plan}");
    }
    let (before, after) =
        (plan["cost"]["before"]["monthly_total"].as_f64().unwrap(), plan["cost"]["monthly_total"].as_f64().unwrap());
    assert!((before - after - 36.5).abs() < 0.011, "a NAT AZ-hour and an address less: {}", plan["cost"]);
    let mark = realism.calls().len();
    let mut child = cli.command(&["up", "--yes"]).stdout(null()).stderr(null()).spawn().unwrap();
    let mut checked = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        let (first, _) = route_target().await;
        let target = first.clone().unwrap_or_default();
        let out = sdk.ec2.describe_nat_gateways().nat_gateway_ids(&target).send().await.unwrap();
        let live = out.nat_gateways().first().and_then(|n| n.state()).map(|s| s.as_str().to_string());
        // A sample counts when the route did not move while the gateway's state was read.
        if route_target().await.0 == first {
            assert_eq!(live.as_deref(), Some("available"), "the private route points at {first:?}");
            checked += 1;
        }
        if done {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(checked > 3, "{checked} samples");
    let calls: Vec<serde_json::Value> = realism.calls().into_iter().skip(mark).collect();
    let at = |action: &str| calls.iter().position(|c| c["action"] == action && c["error"].is_null()).unwrap();
    assert!(at("CreateNatGateway") < at("ReplaceRoute") && at("ReplaceRoute") < at("DeleteNatGateway"), "{calls:?}");
    assert!(at("DeleteNatGateway") < at("ReleaseAddress"));
    let state = cli.state().unwrap();
    let zonal = id(&state, "nat-gateway-1");
    assert_eq!(route_target().await, (Some(zonal.clone()), private));
    for gone in ["nat-gateway-regional", "elastic-ip-regional-1", "elastic-ip-regional-2"] {
        assert!(state["resources"][gone].is_null(), "{gone}");
    }
    let nats = sdk.ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(ours(nats.nat_gateways()), [(zonal, "zonal".to_string())]);
    let status = cli.run(&["--output", "json", "status"]).ok().json();
    assert!(status["resources"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{status}");

    cli.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty(), "{:?}", leftovers(&sdk, STACK).await);
    assert_exactly_one_of(&sdk, "app-2").await;
}

/// For each of `subnets`, the NAT gateway its effective route table (its own association, else the
/// VPC's main table) sends 0.0.0.0/0 to, if any.
async fn nat_egress(sdk: &Sdk, vpc: &str, subnets: &[String]) -> Vec<Option<String>> {
    let in_vpc = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
    let out = sdk.ec2.describe_route_tables().filters(in_vpc).send().await.unwrap();
    let tables = out.route_tables();
    let main = tables.iter().find(|t| t.associations().iter().any(|a| a.main() == Some(true)));
    let effective = |subnet: &String| {
        let own = tables.iter().find(|t| t.associations().iter().any(|a| a.subnet_id() == Some(subnet.as_str())));
        let default = own.or(main)?.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))?;
        default.nat_gateway_id().map(String::from)
    };
    subnets.iter().map(effective).collect()
}

/// The ids of the NAT gateways in state `available`.
async fn available_nats(sdk: &Sdk) -> Vec<String> {
    let out = sdk.ec2.describe_nat_gateways().send().await.unwrap();
    let available = out.nat_gateways().iter().filter(|n| n.state().is_some_and(|s| s.as_str() == "available"));
    available.filter_map(|n| n.nat_gateway_id().map(String::from)).collect()
}

/// The emulator behind the realism layer at a fast time scale (IAM propagates at once), and an SDK on it.
async fn fast_realism() -> (Emulator, Realism, Sdk) {
    let emulator = Emulator::start();
    let options =
        RealismOptions { time_scale: 0.005, config: serde_json::json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let sdk = sdk_at(&realism.url(), "us-east-1").await;
    (emulator, realism, sdk)
}

/// `[service] container_port` changed under `[deploy] strategy = "canary"`, on a stack a canary
/// deploy left serving from its alternate target group: refused, naming the port and the advice;
/// the advice followed step by step (rolling, the port, canary again) keeps the service's tasks
/// healthy, the state and the stack in agreement and nothing leaked after each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_port_change_under_canary_follows_the_printed_advice() {
    let (_emulator, realism, sdk) = fast_realism().await;
    let cli = Cli::at(&realism.url());
    // (A run that hangs fails the test.)
    let within = std::time::Duration::from_secs(30);
    let (canary, rolling) = (("strategy", "strategy = \"canary\""), ("strategy", "strategy = \"rolling\""));
    let (bake, port) = (("bake_minutes", "bake_minutes = 0"), ("container_port", "container_port = 8080"));
    cli.write_config(&config_with(&[canary, bake]));
    cli.run_within(&["up"], within).ok();
    cli.run_within(&["deploy", "--image", "nginx:1.28"], within).ok();
    settled(&sdk, &cli, "canary deploy").await;

    // Refused before any change, saying how.
    cli.write_config(&config_with(&[canary, bake, port]));
    let before = realism.calls().len();
    let refused = cli.run_within(&["up"], within);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let advice = "set [deploy] strategy = \"rolling\" and run `up` (the target group that serves stays, the other \
                  one is deleted), change the port and run `up`, then set the strategy back";
    assert!(refused.stderr.contains("service.container_port: 80 → 8080"), "{}", refused.stderr);
    assert!(refused.stderr.contains(advice), "{}", refused.stderr);
    let changed: Vec<serde_json::Value> =
        realism.calls()[before..].iter().filter(|c| is_mutating(c["action"].as_str().unwrap())).cloned().collect();
    assert!(changed.is_empty(), "{changed:#?}");

    // 1. Rolling, on the old port: the group that serves stays (after the canary deploy, the
    // alternate one), the other is deleted, and no request meets an empty group on the way.
    cli.write_config(&config_with(&[rolling, bake]));
    cli.run_within(&["up"], within).ok();
    let service = settled(&sdk, &cli, "rolling").await;
    assert_eq!(strategy_of(&service), ("ROLLING".into(), false));
    assert!(cli.state().unwrap()["resources"].get("target-group-alternate").is_none());
    assert!(realism.routing_gaps().is_empty(), "{:#?}", realism.routing_gaps());
    // 2. The new port: the target group is replaced, without downtime.
    cli.write_config(&config_with(&[rolling, bake, port]));
    cli.run_within(&["up"], within).ok();
    let service = settled(&sdk, &cli, "the port").await;
    assert_eq!(service.load_balancers()[0].container_port(), Some(8080));
    // 3. Canary again, on the new port.
    cli.write_config(&config_with(&[canary, bake, port]));
    cli.run_within(&["up"], within).ok();
    let service = settled(&sdk, &cli, "canary again").await;
    assert_eq!(strategy_of(&service), ("CANARY".into(), true));
    assert_eq!(service.load_balancers()[0].container_port(), Some(8080));
    let alternate = cli.state().unwrap()["resources"]["target-group-alternate"]["id"].as_str().unwrap().to_string();
    let out = sdk.elb.describe_target_groups().target_group_arns(&alternate).send().await.unwrap();
    assert_eq!(out.target_groups()[0].port(), Some(8080));

    cli.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty(), "{:?}", leftovers(&sdk, STACK).await);
}

/// The service's ECS strategy and whether it names an alternate target group.
fn strategy_of(service: &aws_sdk_ecs::types::Service) -> (String, bool) {
    let strategy = service.deployment_configuration().and_then(|d| d.strategy()).map_or("none", |s| s.as_str());
    (strategy.to_string(), service.load_balancers()[0].advanced_configuration().is_some())
}

/// After a step: every task runs and is a healthy target, the plan is empty, and what AWS lists of
/// the stack is exactly what the state records. The service as ECS describes it.
async fn settled(sdk: &Sdk, cli: &Cli, step: &str) -> aws_sdk_ecs::types::Service {
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{step}: {}", status.stdout);
    let service = &status.json()["service"];
    assert_eq!((service["running"].clone(), service["healthy_targets"].clone()), (2.into(), 2.into()), "{step}");
    let plan = cli.run(&["up", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{step}: a plan with changes: {}", plan.stdout);
    let state = cli.state().unwrap();
    let recorded = state["resources"].as_object().unwrap();
    let all = fargate_stack::resources::sightings(sdk, &[]).await.unwrap();
    let ours: Vec<_> = all.iter().filter(|s| s.belongs_to(STACK) && s.active).collect();
    let leaked: Vec<_> =
        ours.iter().filter(|s| s.resource.as_deref().is_none_or(|k| !recorded.contains_key(k))).collect();
    assert!(leaked.is_empty(), "{step}: not recorded: {leaked:#?}");
    // (Every revision of the task definition stays ACTIVE, for a rollback.)
    let mut keys: Vec<&str> =
        ours.iter().filter_map(|s| s.resource.as_deref()).filter(|k| *k != "task-definition").collect();
    keys.sort_unstable();
    let twice: Vec<_> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    let twice: Vec<_> = ours.iter().filter(|s| s.resource.as_deref().is_some_and(|k| twice.contains(&k))).collect();
    assert!(twice.is_empty(), "{step}: more than one of: {twice:#?}");
    sdk.service().await
}
