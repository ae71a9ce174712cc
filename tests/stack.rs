//! The real binary against a moto server: every row of the reference stack, tags, status, and a
//! `down` that leaves nothing.

mod common;

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, TableStatus};
use aws_sdk_ec2::types::Filter;
use common::*;
use serde_json::{json, Value};

fn tags_ok(tags: impl IntoIterator<Item = (String, String)>, name_prefix: &str) -> Result<(), String> {
    let tags: Vec<(String, String)> = tags.into_iter().collect();
    let get = |k: &str| tags.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.clone());
    if get(STACK_TAG).as_deref() != Some(STACK) {
        return Err(format!("missing {STACK_TAG}={STACK}: {tags:?}"));
    }
    match get("Name") {
        Some(n) if n.starts_with(name_prefix) => Ok(()),
        other => Err(format!("Name tag {other:?} does not start with {name_prefix}")),
    }
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

fn decode(doc: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8().unwrap();
    serde_json::from_str(&decoded).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_builds_the_reference_stack_status_reports_it_and_down_removes_it() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let sdk = emulator.sdk().await;

    let up = cli.run(&["--output", "json", "up", "--no-wait"]).ok();
    let result = up.json();
    assert_eq!(result["ok"], true, "{}", up.stdout);
    let outputs = &result["outputs"];
    assert_eq!(outputs["table_name"], "simple-ecs-dev-messages");
    assert_eq!(outputs["cluster_name"], "simple-ecs-dev-cluster");
    assert_eq!(outputs["service_name"], "simple-ecs-dev-service");
    let dns = outputs["alb_dns_name"].as_str().unwrap();
    assert_eq!(outputs["url"], format!("http://{dns}"));
    // JSON mode writes only JSON to stdout.
    for line in up.stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("non-JSON line {line:?}: {e}"));
    }

    // ---- VPC over 2 AZs, public + private /24 subnets
    let vpcs = sdk.ec2.describe_vpcs().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    let vpc_id = vpc.vpc_id().unwrap();
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    tags_ok(ec2_tags(vpc.tags()), "simple-ecs-dev-vpc").unwrap();
    let dns_hostnames = sdk
        .ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(dns_hostnames.enable_dns_hostnames().and_then(|v| v.value()), Some(true));

    let subnets = sdk.ec2.describe_subnets().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    let subnets = subnets.subnets();
    assert_eq!(subnets.len(), 4);
    let by_key = |key: &str| {
        subnets
            .iter()
            .find(|s| s.tags().iter().any(|t| t.key() == Some("fargate-stack:resource") && t.value() == Some(key)))
            .unwrap_or_else(|| panic!("no subnet {key}"))
    };
    let public = [by_key("subnet-public-1"), by_key("subnet-public-2")];
    let private = [by_key("subnet-private-1"), by_key("subnet-private-2")];
    assert_eq!(public.map(|s| s.cidr_block().unwrap()), ["10.0.0.0/24", "10.0.1.0/24"]);
    assert_eq!(private.map(|s| s.cidr_block().unwrap()), ["10.0.2.0/24", "10.0.3.0/24"]);
    assert_ne!(public[0].availability_zone(), public[1].availability_zone());
    assert_eq!(public[0].availability_zone(), private[0].availability_zone());
    assert_ne!(private[0].availability_zone(), private[1].availability_zone());
    for s in subnets {
        assert_eq!(s.vpc_id(), Some(vpc_id));
        tags_ok(ec2_tags(s.tags()), "simple-ecs-dev-subnet-").unwrap();
        assert_ne!(s.map_public_ip_on_launch(), Some(true), "no automatic public IPs");
    }

    // ---- internet gateway, NAT gateway + EIP, route tables
    let igws = sdk.ec2.describe_internet_gateways().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id));
    tags_ok(ec2_tags(igw.tags()), "simple-ecs-dev-igw").unwrap();

    let eips = sdk.ec2.describe_addresses().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    assert_eq!(eips.addresses().len(), 1);
    tags_ok(ec2_tags(eips.addresses()[0].tags()), "simple-ecs-dev-nat-eip").unwrap();
    let nats = sdk.ec2.describe_nat_gateways().filter(ec2_tag_filter(STACK)).send().await.unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
    let nat = &nats.nat_gateways()[0];
    assert_eq!(nat.subnet_id(), public[0].subnet_id());
    assert_eq!(nat.nat_gateway_addresses()[0].allocation_id(), eips.addresses()[0].allocation_id());
    tags_ok(ec2_tags(nat.tags()), "simple-ecs-dev-nat").unwrap();

    let tables = sdk.ec2.describe_route_tables().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    assert_eq!(tables.route_tables().len(), 2);
    for t in tables.route_tables() {
        tags_ok(ec2_tags(t.tags()), "simple-ecs-dev-").unwrap();
        let default =
            t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).expect("default route");
        let associated: BTreeSet<&str> = t.associations().iter().filter_map(|a| a.subnet_id()).collect();
        if default.gateway_id() == igw.internet_gateway_id() {
            assert_eq!(associated, public.iter().map(|s| s.subnet_id().unwrap()).collect());
        } else {
            assert_eq!(default.nat_gateway_id(), nat.nat_gateway_id());
            assert_eq!(associated, private.iter().map(|s| s.subnet_id().unwrap()).collect());
        }
    }

    // ---- security groups
    let default_sg = sdk
        .ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc_id).build())
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .unwrap();
    let default_sg = &default_sg.security_groups()[0];
    assert!(
        default_sg.ip_permissions().is_empty() && default_sg.ip_permissions_egress().is_empty(),
        "default SG has rules"
    );
    let groups = sdk.ec2.describe_security_groups().filters(ec2_tag_filter(STACK)).send().await.unwrap();
    let group = |name: &str| groups.security_groups().iter().find(|g| g.group_name() == Some(name)).unwrap().clone();
    let alb_sg = group("simple-ecs-dev-alb");
    let task_sg = group("simple-ecs-dev-task");
    assert_eq!(groups.security_groups().len(), 2);
    tags_ok(ec2_tags(alb_sg.tags()), "simple-ecs-dev-alb").unwrap();
    tags_ok(ec2_tags(task_sg.tags()), "simple-ecs-dev-task").unwrap();
    let [alb_in] = alb_sg.ip_permissions() else { panic!("ALB SG ingress: {:?}", alb_sg.ip_permissions()) };
    assert_eq!((alb_in.ip_protocol(), alb_in.from_port(), alb_in.to_port()), (Some("tcp"), Some(80), Some(80)));
    assert_eq!(alb_in.ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
    let [alb_out] = alb_sg.ip_permissions_egress() else {
        panic!("ALB SG egress: {:?}", alb_sg.ip_permissions_egress())
    };
    assert_eq!((alb_out.from_port(), alb_out.to_port()), (Some(80), Some(80)));
    assert!(alb_out.ip_ranges().is_empty());
    assert_eq!(alb_out.user_id_group_pairs()[0].group_id(), task_sg.group_id());
    let [task_in] = task_sg.ip_permissions() else { panic!("task SG ingress: {:?}", task_sg.ip_permissions()) };
    assert_eq!((task_in.from_port(), task_in.to_port()), (Some(80), Some(80)));
    assert!(task_in.ip_ranges().is_empty(), "tasks must not be reachable from any CIDR");
    assert_eq!(task_in.user_id_group_pairs().len(), 1);
    assert_eq!(task_in.user_id_group_pairs()[0].group_id(), alb_sg.group_id());
    // Egress restricted: HTTPS anywhere (image pulls, AWS APIs through the NAT) and DNS to the VPC resolver.
    let mut egress: Vec<(String, Option<i32>, Vec<String>)> = task_sg
        .ip_permissions_egress()
        .iter()
        .map(|p| {
            let cidrs = p.ip_ranges().iter().filter_map(|r| r.cidr_ip().map(str::to_string)).collect();
            (p.ip_protocol().unwrap_or_default().to_string(), p.from_port(), cidrs)
        })
        .collect();
    egress.sort();
    assert_eq!(
        egress,
        [
            ("tcp".to_string(), Some(53), vec!["10.0.0.2/32".to_string()]),
            ("tcp".to_string(), Some(443), vec!["0.0.0.0/0".to_string()]),
            ("udp".to_string(), Some(53), vec!["10.0.0.2/32".to_string()]),
        ],
        "task egress"
    );

    // ---- DynamoDB table
    let table = sdk.dynamodb.describe_table().table_name("simple-ecs-dev-messages").send().await.unwrap();
    let table = table.table().unwrap();
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()), Some(&BillingMode::PayPerRequest));
    assert_eq!(table.deletion_protection_enabled(), Some(true));
    let keys: Vec<(String, KeyType)> =
        table.key_schema().iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect();
    assert_eq!(keys, [("id".to_string(), KeyType::Hash), ("created_at".to_string(), KeyType::Range)]);
    let types: BTreeSet<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|a| (a.attribute_name().to_string(), a.attribute_type().as_str().to_string()))
        .collect();
    assert_eq!(types, [("created_at".into(), "N".into()), ("id".into(), "S".into())].into());
    let table_arn = table.table_arn().unwrap().to_string();
    let table_tags = sdk.dynamodb.list_tags_of_resource().resource_arn(&table_arn).send().await.unwrap();
    tags_ok(table_tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())), "simple-ecs-dev-messages")
        .unwrap();

    // ---- log group
    let groups = sdk.logs.describe_log_groups().log_group_name_prefix("/ecs/simple-ecs-dev").send().await.unwrap();
    let [log_group] = groups.log_groups() else { panic!("log groups: {:?}", groups.log_groups()) };
    assert_eq!(log_group.retention_in_days(), Some(365), "a year by default (CloudWatch.16)");
    let log_tags =
        sdk.logs.list_tags_for_resource().resource_arn(log_group.log_group_arn().unwrap()).send().await.unwrap();
    tags_ok(log_tags.tags().cloned().unwrap_or_default(), "/ecs/simple-ecs-dev").unwrap();

    // ---- IAM roles: inline least-privilege policies
    for (role, policy_check) in [("simple-ecs-dev-task-role", "task"), ("simple-ecs-dev-execution-role", "execution")] {
        let r = sdk.iam.get_role().role_name(role).send().await.unwrap();
        let r = r.role().unwrap();
        let trust = decode(r.assume_role_policy_document().unwrap());
        assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
        let account = table_arn.split(':').nth(4).unwrap();
        let condition = &trust["Statement"][0]["Condition"];
        assert_eq!(condition["StringEquals"]["aws:SourceAccount"], account, "{role}");
        assert_eq!(condition["ArnLike"]["aws:SourceArn"], format!("arn:aws:ecs:us-east-1:{account}:*"), "{role}");
        let tags = sdk.iam.list_role_tags().role_name(role).send().await.unwrap();
        tags_ok(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())), role).unwrap();
        let attached = sdk.iam.list_attached_role_policies().role_name(role).send().await.unwrap();
        assert!(attached.attached_policies().is_empty(), "no managed policies on {role}");
        let doc = sdk.iam.get_role_policy().role_name(role).policy_name("fargate-stack").send().await.unwrap();
        let doc = decode(doc.policy_document());
        let statements = doc["Statement"].as_array().unwrap();
        if policy_check == "task" {
            assert_eq!(statements.len(), 1);
            let actions: Vec<&str> =
                statements[0]["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
            assert!(actions.contains(&"dynamodb:PutItem") && actions.contains(&"dynamodb:Query"));
            assert!(actions.iter().all(|a| !a.contains('*') && !a.ends_with("Table")), "{actions:?}");
            assert_eq!(statements[0]["Resource"], serde_json::json!([table_arn, format!("{table_arn}/index/*")]));
        } else {
            // nginx comes from Docker Hub: no ECR grant needed, only the log group's streams.
            assert_eq!(statements.len(), 1, "{doc}");
            assert_eq!(statements[0]["Action"], serde_json::json!(["logs:CreateLogStream", "logs:PutLogEvents"]));
            assert!(statements[0]["Resource"].as_str().unwrap().contains("log-group:/ecs/simple-ecs-dev:log-stream:"));
        }
    }

    // ---- ECS cluster, task definition, service
    let clusters = sdk
        .ecs
        .describe_clusters()
        .clusters("simple-ecs-dev-cluster")
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .send()
        .await
        .unwrap();
    let cluster = &clusters.clusters()[0];
    assert_eq!(cluster.status(), Some("ACTIVE"));
    tags_ok(
        cluster.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())),
        "simple-ecs-dev-cluster",
    )
    .unwrap();
    let service = &sdk.service().await;
    assert_eq!(service.desired_count(), 2);
    assert_eq!(service.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Fargate));
    tags_ok(
        service.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())),
        "simple-ecs-dev-service",
    )
    .unwrap();
    let awsvpc = service.network_configuration().unwrap().awsvpc_configuration().unwrap();
    let service_subnets: BTreeSet<&str> = awsvpc.subnets().iter().map(String::as_str).collect();
    assert_eq!(service_subnets, private.iter().map(|s| s.subnet_id().unwrap()).collect());
    assert_eq!(awsvpc.security_groups(), [task_sg.group_id().unwrap().to_string()]);
    assert_eq!(awsvpc.assign_public_ip(), Some(&aws_sdk_ecs::types::AssignPublicIp::Disabled));
    let lb_link = &service.load_balancers()[0];
    assert_eq!(lb_link.container_port(), Some(80));
    assert_eq!(lb_link.container_name(), Some("app"));

    let def = sdk
        .ecs
        .describe_task_definition()
        .task_definition(service.task_definition().unwrap())
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    tags_ok(
        def.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())),
        "simple-ecs-dev-server",
    )
    .unwrap();
    let def = def.task_definition().unwrap();
    assert_eq!((def.cpu(), def.memory()), (Some("256"), Some("512")));
    assert_eq!(def.network_mode(), Some(&aws_sdk_ecs::types::NetworkMode::Awsvpc));
    assert!(def.requires_compatibilities().contains(&aws_sdk_ecs::types::Compatibility::Fargate));
    assert!(def.execution_role_arn().unwrap().ends_with("role/simple-ecs-dev-execution-role"));
    assert!(def.task_role_arn().unwrap().ends_with("role/simple-ecs-dev-task-role"));
    let container = &def.container_definitions()[0];
    assert_eq!(container.image(), Some("nginx:latest"));
    assert_eq!(container.port_mappings()[0].container_port(), Some(80));
    let env: BTreeSet<(String, String)> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_string(), kv.value().unwrap().to_string()))
        .collect();
    assert_eq!(
        env,
        [
            ("APP_ID".to_string(), "nginx-ecs-server".to_string()),
            ("DYNAMODB_MESSAGES_TABLE".to_string(), "simple-ecs-dev-messages".to_string())
        ]
        .into()
    );
    let logs = container.log_configuration().unwrap();
    assert_eq!(logs.log_driver().as_str(), "awslogs");
    assert_eq!(logs.options().unwrap()["awslogs-group"], "/ecs/simple-ecs-dev");
    assert_eq!(logs.options().unwrap()["awslogs-region"], "us-east-1");

    // ---- ALB, target group, listener
    let lbs = sdk.elb.describe_load_balancers().names("simple-ecs-dev-alb").send().await.unwrap();
    let [lb] = lbs.load_balancers() else { panic!("{:?}", lbs.load_balancers()) };
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(lb.r#type().map(|s| s.as_str()), Some("application"));
    assert_eq!(lb.dns_name(), Some(dns));
    assert_eq!(lb.security_groups(), [alb_sg.group_id().unwrap().to_string()]);
    let lb_subnets: BTreeSet<&str> = lb.availability_zones().iter().filter_map(|z| z.subnet_id()).collect();
    assert_eq!(lb_subnets, public.iter().map(|s| s.subnet_id().unwrap()).collect());
    let lb_arn = lb.load_balancer_arn().unwrap();
    let attrs = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(lb_arn).send().await.unwrap();
    assert!(attrs
        .attributes()
        .iter()
        .any(|a| a.key() == Some("routing.http.drop_invalid_header_fields.enabled") && a.value() == Some("true")));
    let tgs = sdk.elb.describe_target_groups().names("simple-ecs-dev-tg").send().await.unwrap();
    let [tg] = tgs.target_groups() else { panic!() };
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!((tg.port(), tg.protocol().map(|p| p.as_str())), (Some(80), Some("HTTP")));
    assert_eq!(tg.health_check_path(), Some("/"));
    assert_eq!(tg.vpc_id(), Some(vpc_id));
    assert_eq!(lb_link.target_group_arn(), tg.target_group_arn());
    let tg_attrs = sdk
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg.target_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(tg_attrs
        .attributes()
        .iter()
        .any(|a| a.key() == Some("deregistration_delay.timeout_seconds") && a.value() == Some("30")));
    let listeners = sdk.elb.describe_listeners().load_balancer_arn(lb_arn).send().await.unwrap();
    let [listener] = listeners.listeners() else { panic!() };
    assert_eq!(listener.port(), Some(80));
    assert_eq!(listener.default_actions()[0].target_group_arn(), tg.target_group_arn());
    let arns = [lb_arn, tg.target_group_arn().unwrap(), listener.listener_arn().unwrap()];
    let described = sdk
        .elb
        .describe_tags()
        .set_resource_arns(Some(arns.iter().map(|a| a.to_string()).collect()))
        .send()
        .await
        .unwrap();
    assert_eq!(described.tag_descriptions().len(), 3);
    for d in described.tag_descriptions() {
        tags_ok(
            d.tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())),
            "simple-ecs-dev-",
        )
        .unwrap();
    }

    // ---- state file
    let state = cli.state().expect("state file");
    assert_eq!(state["schema_version"], 1);
    assert_eq!(state["stack"], STACK);
    assert_eq!(state["resources"]["vpc"]["id"], vpc_id);
    let text = std::fs::read_to_string(cli.state_path()).unwrap();
    assert!(!text.contains("testing") && !text.to_lowercase().contains("secret"), "no credentials in the state file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(cli.state_path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // ---- status, checked live
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    let doc = status.json();
    assert_eq!(doc["stack"], STACK);
    assert_eq!(doc["region"], "us-east-1");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["state"], "deploying", "the emulator never runs the tasks");
    assert_eq!(doc["outputs"], result["outputs"]);
    let resources = doc["resources"].as_array().unwrap();
    assert_eq!(resources.len(), default_resources());
    for r in resources {
        let expected = if r["name"] == "service" { "pending" } else { "ok" };
        assert_eq!(r["status"], expected, "{r}");
        assert!(r["kind"].as_str().unwrap().contains(':'));
        assert!(r["id"].as_str().is_some_and(|id| !id.is_empty()), "{r}");
    }
    let vpc_row = resources.iter().find(|r| r["name"] == "vpc").unwrap();
    assert_eq!(vpc_row["kind"], "ec2:vpc");
    assert_eq!(doc["service"]["desired"], 2);
    assert_eq!(doc["service"]["running"], 0, "moto runs no tasks");
    assert_eq!(doc["service"]["healthy_targets"], 0);
    let text = cli.run(&["status"]).ok();
    assert!(
        text.stdout.contains("RESOURCE") && text.stdout.contains("outputs:") && text.stdout.contains(dns),
        "{}",
        text.stdout
    );

    // ---- down removes everything
    let down = cli.run(&["down", "--yes"]).ok();
    assert!(down.stdout.contains("is down"), "{}", down.stdout);
    let left = leftovers(&sdk, STACK).await;
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(cli.state().is_none(), "state file removed once empty");
    let status = cli.run(&["--output", "json", "status"]).ok();
    assert_eq!(status.json()["state"], "not_deployed", "nothing found by tag either");
    // A second down has nothing to do.
    cli.run(&["down", "--yes"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_up_changes_nothing() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let state_before = cli.state().unwrap();
    let again = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    for step in again["steps"].as_array().unwrap() {
        assert_eq!(step["outcome"], "unchanged", "{step}");
    }
    assert_eq!(cli.state().unwrap(), state_before);
    let sdk = emulator.sdk().await;
    assert_eq!(sdk.ec2.describe_vpcs().filters(ec2_tag_filter(STACK)).send().await.unwrap().vpcs().len(), 1);
    let defs = sdk.ecs.list_task_definitions().family_prefix("simple-ecs-dev-server").send().await.unwrap();
    assert_eq!(defs.task_definition_arns().len(), 1, "no new revision");
    access_logs_move_to_a_given_bucket_only_if_elb_may_write_there(&sdk, &cli).await;
}

/// `access_logs = { bucket, prefix }`: refused before any change while the bucket's policy does not
/// let ELB write; then the load balancer's attributes change in place, the stack's own (empty)
/// bucket goes, and `down` leaves the given bucket alone.
async fn access_logs_move_to_a_given_bucket_only_if_elb_may_write_there(sdk: &Sdk, cli: &Cli) {
    const GIVEN: &str = "team-alb-logs";
    let own = cli.state().unwrap()["resources"]["access-log-bucket"]["id"].as_str().unwrap().to_string();
    create_bucket(sdk, GIVEN).await;
    cli.write_config(&config_with(&[(
        "access_logs",
        "access_logs = { bucket = \"team-alb-logs\", prefix = \"alb\" }",
    )]));
    // (`--yes`: this config file replaces the built-in one the stack was made with.)
    let refused = cli.run(&["up", "--no-wait", "--yes"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("does not let Elastic Load Balancing write"), "{}", refused.stderr);
    assert!(refused.stderr.contains("arn:aws:iam::127311923021:root"), "names the statement: {}", refused.stderr);
    assert!(sdk.s3.head_bucket().bucket(&own).send().await.is_ok(), "nothing was changed");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::127311923021:root"}, "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{GIVEN}/alb/AWSLogs/123456789012/*")}]});
    sdk.s3.put_bucket_policy().bucket(GIVEN).policy(policy.to_string()).send().await.unwrap();
    let plan = cli.run(&["up", "--dry-run", "--yes"]).ok();
    assert!(plan.stdout.contains("access_logs.s3.bucket") && plan.stdout.contains(GIVEN), "{}", plan.stdout);
    cli.run(&["up", "--no-wait", "--yes"]).ok();
    let state = cli.state().unwrap();
    assert!(state["resources"].get("access-log-bucket").is_none(), "{state}");
    assert!(sdk.s3.head_bucket().bucket(&own).send().await.is_err(), "the stack's own empty bucket went");
    let lb = state["resources"]["load-balancer"]["id"].as_str().unwrap();
    let out = sdk.elb.describe_load_balancer_attributes().load_balancer_arn(lb).send().await.unwrap();
    let attr = |key: &str| out.attributes().iter().find(|a| a.key() == Some(key)).and_then(|a| a.value());
    assert_eq!((attr("access_logs.s3.bucket"), attr("access_logs.s3.prefix")), (Some(GIVEN), Some("alb")));
    cli.run(&["down", "--yes"]).ok();
    assert!(sdk.s3.head_bucket().bucket(GIVEN).send().await.is_ok(), "the given bucket is the user's");
    assert!(leftovers(sdk, STACK).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_never_deletes_a_table_with_items_silently() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let sdk = emulator.sdk().await;
    cli.run(&["up", "--no-wait"]).ok();
    for i in 0..3 {
        if i == 1 {
            let one = cli.run(&["down", "--yes"]);
            assert!(one.stderr.contains("simple-ecs-dev-messages holds 1 item;"), "{}", one.stderr);
        }
        sdk.dynamodb
            .put_item()
            .table_name("simple-ecs-dev-messages")
            .item("id", AttributeValue::S(format!("m{i}")))
            .item("created_at", AttributeValue::N(i.to_string()))
            .send()
            .await
            .unwrap();
    }
    let refused = cli.run(&["down", "--yes"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("simple-ecs-dev-messages holds 3 items"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--delete-data") && refused.stderr.contains("--retain-table"));
    assert_eq!(
        sdk.ec2.describe_vpcs().filters(ec2_tag_filter(STACK)).send().await.unwrap().vpcs().len(),
        1,
        "nothing deleted"
    );

    // --retain-table: everything else goes, the table stays protected and recorded.
    cli.run(&["down", "--yes", "--retain-table"]).ok();
    let left = leftovers(&sdk, STACK).await;
    assert_eq!(left, ["dynamodb:table simple-ecs-dev-messages"]);
    let table = sdk.dynamodb.describe_table().table_name("simple-ecs-dev-messages").send().await.unwrap();
    assert_eq!(table.table().unwrap().deletion_protection_enabled(), Some(true));
    let state = cli.state().unwrap();
    assert_eq!(state["resources"].as_object().unwrap().len(), 1);
    assert_eq!(state["resources"]["table"]["attrs"]["retained"], "true");

    // --no-backup needs --delete-data; it is refused on its own.
    assert_eq!(cli.run(&["down", "--yes", "--no-backup"]).code, 2);
    // --delete-data: backed up first, then deleted.
    let deleted = cli.run(&["down", "--yes", "--delete-data"]).ok();
    assert!(deleted.stdout.contains("table backup: arn:"), "{}", deleted.stdout);
    let backups = sdk.dynamodb.list_backups().table_name("simple-ecs-dev-messages").send().await.unwrap();
    assert_eq!(backups.backup_summaries().len(), 1);
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

#[test]
fn down_asks_and_refuses_off_a_terminal() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let refused = cli.run(&["down"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("stdin is not a terminal; pass --yes"), "{}", refused.stderr);
    assert!(cli.state().unwrap()["resources"].as_object().unwrap().len() > 20, "nothing deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_missing_and_drifted_and_up_repairs_them() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let sdk = emulator.sdk().await;
    cli.run(&["up", "--no-wait"]).ok();
    sdk.logs.delete_log_group().log_group_name("/ecs/simple-ecs-dev").send().await.unwrap();
    sdk.ecs
        .update_service()
        .cluster("simple-ecs-dev-cluster")
        .service("simple-ecs-dev-service")
        .desired_count(5)
        .send()
        .await
        .unwrap();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stderr);
    let doc = status.json();
    let row = |name: &str| doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("log-group")["status"], "missing");
    assert_eq!(row("service")["status"], "drifted");
    assert!(row("service")["detail"].as_str().unwrap().contains("service.desired_count: 5 → 2"), "{}", row("service"));
    assert_eq!(row("service")["changes"][0]["from"], "5");

    cli.run(&["up", "--no-wait"]).ok();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert_eq!(sdk.service().await.desired_count(), 2);
}

#[test]
fn status_without_state_is_not_deployed() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let run = cli.run(&["--output", "json", "status"]).ok();
    assert_eq!(run.json()["state"], "not_deployed");
    let run = cli.run(&["status"]).ok();
    assert!(run.stdout.contains("not deployed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_waits_for_running_tasks_and_healthy_targets() {
    // moto reports 2 running tasks but never registers targets: this test plays the ALB's part.
    let emulator = Emulator::start_with(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let cli = Cli::new(&emulator);
    let sdk = emulator.sdk().await;
    let child = cli.command(&["--output", "json", "up"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    let tg_arn = loop {
        assert!(started.elapsed().as_secs() < 60, "service never created");
        let svc = sdk
            .ecs
            .describe_services()
            .cluster("simple-ecs-dev-cluster")
            .services("simple-ecs-dev-service")
            .send()
            .await;
        if svc.is_ok_and(|s| !s.services().is_empty()) {
            let tgs = sdk.elb.describe_target_groups().names("simple-ecs-dev-tg").send().await.unwrap();
            break tgs.target_groups()[0].target_group_arn().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // While no target is healthy, up keeps waiting.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut child = child;
    assert!(child.try_wait().unwrap().is_none(), "up returned before the targets were healthy");
    for ip in ["10.0.2.10", "10.0.3.10"] {
        let target = aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder().id(ip).port(80).build();
        sdk.elb.register_targets().target_group_arn(&tg_arn).targets(target).send().await.unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["ok"], true);
    let waited = last["steps"].as_array().unwrap().iter().find(|s| s["name"] == "service-healthy").unwrap();
    assert_eq!(waited["outcome"], "waited");
    assert!(stdout.contains("healthy 0/2"), "progress showed the health wait");
}

#[test]
fn bad_config_fails_before_any_aws_call() {
    // No emulator: the endpoint is a closed port, so any AWS call would fail differently.
    let cli = Cli::at("http://127.0.0.1:9");
    for (edits, needle) in [
        (vec![("cpu", "cpu = 300")], "service.cpu"),
        (vec![("retention_days", "retention_days = 10")], "logs.retention_days"),
        (vec![("max_buffer_size", "max_buffer_size = \"25\"")], "logs.max_buffer_size"),
        (vec![("mode", "mode = \"lossy\"")], "mode"),
        (vec![("container_insights", "container_insights = \"on\"")], "container_insights"),
        (vec![("point_in_time_recovery", "point_in_time_recovery = \"yes\"")], "point_in_time_recovery"),
        (vec![("cidr", "cidr = \"10.0.0.0/25\"")], "network.cidr"),
        (vec![("az_count", "az_count = 1")], "network.az_count"),
        (vec![("listener_port", "listener_port = 70000")], "load_balancer.listener_port"),
        (vec![("access_logs", "access_logs = { bucket = \"Logs_Bucket\" }")], "load_balancer.access_logs"),
        (
            vec![("access_logs", "access_logs = { bucket = \"logs\", prefix = \"x/AWSLogs\" }")],
            "load_balancer.access_logs",
        ),
        (vec![("access_logs_expiration_days", "access_logs_expiration_days = 0")], "access_logs_expiration_days"),
    ] {
        cli.write_config(&config_with(&edits));
        let run = cli.run(&["up"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "one-line error: {}", run.stderr);
        assert!(cli.state().is_none());
    }
    cli.write_config(&format!("{}\nsurprise = 1\n", include_str!("../config/default.toml")));
    let run = cli.run(&["status"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("surprise"), "{}", run.stderr);
}

#[test]
fn help_and_version() {
    let cli = Cli::at("http://127.0.0.1:9");
    let version = cli.run(&["--version"]).ok();
    assert!(version.stdout.starts_with("fargate-stack "));
    for cmd in [vec!["--help"], vec!["up", "--help"], vec!["down", "--help"], vec!["status", "--help"]] {
        let help = cli.run(&cmd).ok();
        assert!(help.stdout.contains("Example"), "{cmd:?}: {}", help.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_data_without_backup_skips_the_backup() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let sdk = emulator.sdk().await;
    cli.run(&["up", "--no-wait"]).ok();
    sdk.dynamodb
        .put_item()
        .table_name("simple-ecs-dev-messages")
        .item("id", AttributeValue::S("m".into()))
        .item("created_at", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let down = cli.run(&["down", "--yes", "--delete-data", "--no-backup"]).ok();
    assert!(!down.stdout.contains("backup"), "{}", down.stdout);
    let backups = sdk.dynamodb.list_backups().send().await.unwrap();
    assert!(backups.backup_summaries().is_empty());
    assert!(leftovers(&sdk, STACK).await.is_empty());
}
