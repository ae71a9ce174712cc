//! The declarations every resource makes, checked against the source and against each other: the
//! keys and kinds (the state file's names), the IAM actions (every SDK call in a module is
//! declared by it, every tagged create declares its tagging action), and the monthly bill's basis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::access::{Condition, Permission};
use crate::config::{Config, DEFAULT_TOML};
use crate::graph::Graph;
use crate::model::{Resource, Shape, Stepping};
use crate::resources::{service, stack, task_definition};

/// A config that asks for everything (HTTPS on a domain, both scaling policies).
fn everything_config() -> Config {
    Config::parse("t", &everything_text()).unwrap()
}

fn everything_text() -> String {
    format!(
        "{DEFAULT_TOML}\n[https]\ndomain = \"api.example.com\"\n\n[autoscaling]\nmin_count = 2\nmax_count = 6\n\
         requests_per_target = 500\n"
    )
}

/// Every node any stack can have, and the steps `deploy` and `rollback` run.
fn catalog() -> Vec<Arc<dyn Resource>> {
    let config = everything_config();
    let graph: Graph = stack(&Shape::everything(&config)).unwrap();
    let mut nodes = graph.nodes().to_vec();
    let base = aws_sdk_ecs::types::TaskDefinition::builder().build();
    nodes.push(Arc::new(Stepping(task_definition::Deploy { base, image: Some("nginx".into()) })));
    nodes.push(Arc::new(Stepping(service::Roll { runs: String::new(), force: false })));
    nodes
}

/// `fargate_stack::resources::network::Vpc` -> `src/resources/network.rs` (or `.../mod.rs`).
fn source_of(type_name: &str) -> String {
    let path: Vec<&str> = type_name.split("::").collect();
    let module = path[1..path.len() - 1].join("/");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if root.join(format!("{module}.rs")).exists() {
        format!("src/{module}.rs")
    } else {
        format!("src/{module}/mod.rs")
    }
}

const CLIENTS: &[(&str, &str)] = &[
    ("ec2", "ec2"),
    ("ecs", "ecs"),
    ("elb", "elasticloadbalancing"),
    ("dynamodb", "dynamodb"),
    ("iam", "iam"),
    ("logs", "logs"),
    ("cloudwatch", "cloudwatch"),
    ("autoscaling", "application-autoscaling"),
    ("acm", "acm"),
    ("route53", "route53"),
    ("s3", "s3"),
    ("sts", "sts"),
    ("ssm", "ssm"),
    ("secretsmanager", "secretsmanager"),
    ("wafv2", "wafv2"),
    ("kms", "kms"),
    ("pricing", "pricing"),
];

/// The IAM action of an SDK operation: the service's prefix and the operation in PascalCase.
fn action(client: &str, op: &str) -> String {
    let prefix = CLIENTS.iter().find(|(c, _)| *c == client).map(|(_, p)| *p).expect("a known client");
    let name: String = op
        .split('_')
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    // Operations authorised under another action's name.
    match format!("{prefix}:{name}").as_str() {
        "s3:HeadBucket" => "s3:ListBucket".into(),
        "s3:HeadObject" => "s3:GetObject".into(),
        "s3:PutBucketEncryption" => "s3:PutEncryptionConfiguration".into(),
        "s3:GetBucketEncryption" => "s3:GetEncryptionConfiguration".into(),
        "s3:PutPublicAccessBlock" => "s3:PutBucketPublicAccessBlock".into(),
        "s3:GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock".into(),
        "s3:PutBucketLifecycleConfiguration" => "s3:PutLifecycleConfiguration".into(),
        "s3:GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration".into(),
        "s3:ListBuckets" => "s3:ListAllMyBuckets".into(),
        "s3:ListObjectsV2" => "s3:ListBucket".into(),
        "s3:DeleteObjects" => "s3:DeleteObject".into(),
        // AWS WAF spells its acronym in capitals (AssociateWebACL), the SDK's snake case cannot.
        other if other.starts_with("wafv2:") => other.replace("WebAcl", "WebACL"),
        other => other.into(),
    }
}

/// The SDK calls in a source file (outside its tests), as IAM actions: `<...>.<client>.<op>(`
/// (`ctx.aws.ec2.describe_vpcs(`, `c.dynamodb.list_tables(`), a client bound to a name
/// (`let iam = &ctx.aws.iam;`), and the S3 backend's own client.
fn calls(path: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    let clients = CLIENTS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join("|");
    // An operation takes no argument (`summary.autoscaling.map(|r| ..)` is not one).
    let direct = regex_lite::Regex::new(&format!(r"(\w+)\s*\.\s*({clients})\s*\.\s*(\w+)\s*\(\s*\)")).unwrap();
    let bound =
        regex_lite::Regex::new(&format!(r"let\s+(\w+)\s*=\s*&\s*[\w.]*?(?:aws|clients)\s*\.\s*({clients})\s*;"))
            .unwrap();
    let mut found = BTreeSet::new();
    // `config.autoscaling.as_ref()` is the config's section, not the client.
    for c in direct.captures_iter(text).filter(|c| &c[1] != "config") {
        found.insert(action(&c[2], &c[3]));
    }
    for c in bound.captures_iter(text) {
        let (name, client) = (&c[1], &c[2]);
        // A bound client's operation goes on with its builder (`.bucket(..)`, `.send()`), which tells it
        // from a method of another value of the same name (`s3.save(&state)`, `s3.release().await`).
        let uses = regex_lite::Regex::new(&format!(r"\b{name}\s*\.\s*(\w+)\s*\(\s*\)\s*\.\s*(\w+)")).unwrap();
        for u in uses.captures_iter(text).filter(|u| &u[2] != "await") {
            found.insert(action(client, &u[1]));
        }
    }
    if path.starts_with("src/state/") {
        for c in regex_lite::Regex::new(r"\.client\s*\.\s*(\w+)\s*\(").unwrap().captures_iter(text) {
            found.insert(action("s3", &c[1]));
        }
    }
    found
}

/// Every Rust file below `dir`.
fn files(dir: &str) -> Vec<String> {
    let mut out = vec![];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// The declared actions by source file: each node's, and the commands' and state backend's own.
fn declared() -> BTreeMap<String, Vec<Permission>> {
    let mut by_file: BTreeMap<String, Vec<Permission>> = BTreeMap::new();
    for node in catalog() {
        by_file.entry(source_of(node.declared_by())).or_default().extend(node.permissions());
    }
    by_file.entry("src/commands/list.rs".into()).or_default().extend(crate::commands::list::permissions());
    by_file.entry("src/commands/logs.rs".into()).or_default().extend(crate::commands::logs::permissions());
    by_file.entry("src/state/s3.rs".into()).or_default().extend(crate::state::s3::permissions());
    by_file
        .entry("src/commands/access_check.rs".into())
        .or_default()
        .extend(crate::commands::access_check::permissions());
    by_file.entry("src/bill/live.rs".into()).or_default().extend(crate::bill::live::permissions());
    by_file.entry("src/commands/state_home.rs".into()).or_default().extend(crate::commands::state_home::permissions());
    by_file
        .entry("src/commands/state_command.rs".into())
        .or_default()
        .extend(crate::commands::state_command::permissions());
    by_file
}

#[test]
fn every_sdk_call_is_declared_by_the_module_that_makes_it() {
    let declared = declared();
    let all: BTreeSet<&str> = declared.values().flatten().map(|p| p.action).collect();
    // Every file of the tool: a call anywhere is declared somewhere.
    let sources: Vec<String> = files("src").into_iter().filter(|f| f != "src/resources/declarations.rs").collect();
    let mut missing = vec![];
    let mut everywhere = BTreeSet::new();
    for file in &sources {
        let mut made = calls(file);
        // AWS: "No permissions are required to perform this operation."
        made.remove("sts:GetCallerIdentity");
        everywhere.extend(made.iter().cloned());
        match declared.get(file) {
            // A module that declares resources declares every call it makes.
            Some(own) => {
                let own: BTreeSet<&str> = own.iter().map(|p| p.action).collect();
                missing.extend(made.iter().filter(|a| !own.contains(a.as_str())).map(|a| format!("{file}: {a}")));
            }
            // Helpers (`ec2`, `acm`): declared by the resources that call them.
            None => {
                missing.extend(made.iter().filter(|a| !all.contains(a.as_str())).map(|a| format!("{file}: {a}")));
            }
        }
    }
    assert!(missing.is_empty(), "calls no resource declares: {missing:#?}");
    // And nothing is declared that no code calls (but what AWS checks on our behalf); a resource
    // may call through another module's helpers (the listeners' lookup, the targets' health).
    let mut stale = vec![];
    for (file, permissions) in &declared {
        for p in permissions.iter().filter(|p| !p.implied && !everywhere.contains(p.action)) {
            stale.push(format!("{file}: {p}"));
        }
    }
    assert!(stale.is_empty(), "declared but never called: {stale:#?}");
}

#[test]
fn every_create_that_sends_tags_declares_its_tagging_action_and_every_role_passed_its_service() {
    const TAGGING: &[(&str, &str)] = &[
        ("ec2", "ec2:CreateTags"),
        ("ecs", "ecs:TagResource"),
        ("elasticloadbalancing", "elasticloadbalancing:AddTags"),
        ("iam", "iam:TagRole"),
        ("logs", "logs:TagResource"),
        ("cloudwatch", "cloudwatch:TagResource"),
        ("dynamodb", "dynamodb:TagResource"),
        ("acm", "acm:AddTagsToCertificate"),
        ("application-autoscaling", "application-autoscaling:TagResource"),
        ("s3", "s3:TagResource"),
    ];
    for (file, permissions) in declared() {
        let actions: BTreeSet<&str> = permissions.iter().map(|p| p.action).collect();
        for p in permissions.iter().filter(|p| p.condition == Condition::RequestTag && !p.implied) {
            let service = p.action.split(':').next().unwrap();
            let (_, tagging) = TAGGING.iter().find(|(s, _)| *s == service).unwrap_or_else(|| panic!("{p}"));
            assert!(actions.contains(tagging), "{file}: {} sends tags but {tagging} is not declared", p.action);
        }
        for p in permissions.iter().filter(|p| p.action == "iam:PassRole") {
            assert!(matches!(p.condition, Condition::PassedTo(_)), "{file}: {p}");
        }
    }
}

#[test]
fn actions_are_service_prefixed_pascal_case_and_patterns_use_known_placeholders() {
    let prefixes: Vec<&str> = CLIENTS.iter().map(|(_, p)| *p).chain(["cloudwatch"]).collect();
    for permission in declared().values().flatten() {
        let (service, name) = permission.action.split_once(':').unwrap_or_else(|| panic!("{permission}"));
        assert!(prefixes.contains(&service), "{permission}");
        assert!(name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(char::is_alphanumeric));
        if let crate::access::On::Arn(arn) = &permission.on {
            let stripped = ["{partition}", "{region}", "{account}", "{stack}", "{state_bucket}", "{state_key}"]
                .iter()
                .fold(arn.clone(), |a, p| a.replace(p, ""));
            assert!(!stripped.contains(['{', '}']), "{permission}");
            assert!(arn.starts_with("arn:{partition}:"), "{permission}");
        }
    }
}

#[test]
fn keys_and_kinds_are_the_state_files_names_declared_once_in_status_order() {
    let config = everything_config();
    let graph = stack(&Shape::of(&config).with_waits(true)).unwrap();
    let names: Vec<(String, &str)> = graph.keys().iter().map(|k| (k.to_string(), k.kind().label())).collect();
    // Typed here, not taken from the declarations: existing state files hold these names.
    let expected = [
        ("vpc", "ec2:vpc"),
        ("default-security-group", "ec2:security-group"),
        ("internet-gateway", "ec2:internet-gateway"),
        ("subnet-public-1", "ec2:subnet"),
        ("subnet-public-2", "ec2:subnet"),
        ("subnet-private-1", "ec2:subnet"),
        ("subnet-private-2", "ec2:subnet"),
        ("route-table-public", "ec2:route-table"),
        ("elastic-ip-1", "ec2:elastic-ip"),
        ("nat-gateway-1", "ec2:nat-gateway"),
        ("route-table-private-1", "ec2:route-table"),
        ("gateway-endpoint-s3", "ec2:vpc-endpoint"),
        ("gateway-endpoint-dynamodb", "ec2:vpc-endpoint"),
        ("security-group-alb", "ec2:security-group"),
        ("security-group-task", "ec2:security-group"),
        ("table", "dynamodb:table"),
        ("log-group", "logs:log-group"),
        ("role-execution", "iam:role"),
        ("role-task", "iam:role"),
        ("flow-log-group", "logs:log-group"),
        ("role-flow-logs", "iam:role"),
        ("flow-log", "ec2:flow-log"),
        ("cluster", "ecs:cluster"),
        ("task-definition", "ecs:task-definition"),
        ("access-log-bucket", "s3:bucket"),
        ("target-group", "elbv2:target-group"),
        ("load-balancer", "elbv2:load-balancer"),
        ("listener", "elbv2:listener"),
        ("service", "ecs:service"),
        ("certificate", "acm:certificate"),
        ("dns-validation-record", "route53:record"),
        ("certificate-issued", "wait"),
        ("listener-https", "elbv2:listener"),
        ("dns-alias-record", "route53:record"),
        ("scalable-target", "application-autoscaling:scalable-target"),
        ("scaling-policy-cpu", "application-autoscaling:scaling-policy"),
        ("scaling-policy-requests", "application-autoscaling:scaling-policy"),
        ("load-balancer-active", "wait"),
        ("service-healthy", "wait"),
    ];
    // The names once shipped stay, in this order and with these kinds; a new family adds its own
    // anywhere without editing this list (it is what existing state files hold, not a count).
    let mut shipped = expected.iter().map(|(n, k)| (n.to_string(), *k)).peekable();
    for name in &names {
        if shipped.peek() == Some(name) {
            shipped.next();
        }
    }
    assert_eq!(shipped.next(), None, "a shipped state name is gone or moved: {names:?}");
    // Every name once, among every key any stack can have; numbered ones count from 1 to 6.
    let all = stack(&Shape::everything(&config)).unwrap().keys();
    let unique: BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(unique.len(), all.len(), "{all:?}");
    for family in [
        crate::resources::network::PUBLIC_SUBNET,
        crate::resources::network::PRIVATE_SUBNET,
        crate::resources::network::ELASTIC_IP,
        crate::resources::network::NAT_GATEWAY,
        crate::resources::network::PRIVATE_ROUTE_TABLE,
        crate::resources::network::REGIONAL_ELASTIC_IP,
    ] {
        let numbered: Vec<String> = all.iter().filter(|k| family.contains(**k)).map(ToString::to_string).collect();
        assert_eq!(numbered.len(), 6, "{numbered:?}");
        for name in numbered {
            assert_eq!(family.parse(&name).map(|k| k.to_string()), Some(name.clone()));
        }
    }
}

/// Every price key any node of any stack bills is priced in every region of the repository's table:
/// the keys come from the resources' declarations, not from a list kept beside them.
#[test]
fn every_billed_item_of_every_node_is_priced_in_every_region_of_the_table() {
    use crate::bill::Prices;
    let everything = everything_config();
    let arm = Config::parse("t", &everything_text().replace("\"X86_64\"", "\"ARM64\"")).unwrap();
    let mut items = BTreeSet::new();
    for config in [&everything, &arm] {
        for node in catalog() {
            items.extend(node.billing(config).into_iter().map(|c| c.item));
        }
    }
    assert!(items.len() >= 20, "{items:?}");
    for region in Prices::table_regions() {
        let prices = Prices::for_region(&region).unwrap();
        for item in &items {
            assert!(prices.price(item).is_ok(), "{region} has no price for {item}");
        }
    }
}

/// The month of the hourly items, as AWS bills it.
#[test]
fn the_default_stacks_monthly_bill_follows_from_the_declarations() {
    use crate::bill::{items, Cost, Prices};
    // The issue's figure, computed from the repository's price table: NAT 32.85 + load balancer
    // 16.43 + three public IPv4 addresses 10.95 + two tasks 18.02 (78.25), and the deploy alarms'
    // three alarm metrics 0.30 (the 5xx rate's two, the unhealthy hosts' one).
    let prices = Prices::for_region("us-east-1").unwrap();
    let config = Config::parse("t", DEFAULT_TOML).unwrap();
    let cost = Cost::of(&stack(&Shape::of(&config)).unwrap().bill(&config), &prices, None).unwrap();
    assert_eq!(cost.monthly_total, 78.55, "{cost:#?}");
    assert_eq!(cost.monthly_total_max, None, "no autoscaling: one figure");
    let usage: BTreeSet<&str> = cost.usage_based.iter().map(|u| u.what.as_str()).collect();
    for what in [
        "load balancer capacity units",
        "logs ingested",
        "table writes",
        "table reads",
        "flow logs ingested (vended logs)",
    ] {
        assert!(usage.contains(what), "{what} is named as usage-based: {usage:?}");
    }
    assert!(cost.usage_based.iter().any(|u| u.what.starts_with("data processed by") && u.unit_price == 0.045));
    let ipv4: f64 = cost.items.iter().filter(|i| i.what.contains("IPv4")).map(|i| i.quantity).sum();
    assert_eq!(ipv4, 3.0, "the NAT's Elastic IP and one per load-balancer AZ");
    // ARM64 tasks bill at Graviton's prices: 2 x 7.21 instead of 2 x 9.01.
    let arm =
        Config::parse("t", &DEFAULT_TOML.replace("cpu_architecture = \"X86_64\"", "cpu_architecture = \"ARM64\""));
    let arm = arm.unwrap();
    assert_eq!(Cost::of(&stack(&Shape::of(&arm)).unwrap().bill(&arm), &prices, None).unwrap().monthly_total, 74.94);
    let bad = Config::parse("t", &DEFAULT_TOML.replace("cpu_architecture = \"X86_64\"", "cpu_architecture = \"arm\""));
    assert!(bad.unwrap_err().to_string().contains("service.cpu_architecture: \"arm\""));
    // With autoscaling, the range of the tasks (2 to 6) and the alarms of its policies.
    let scaled = Config::parse("t", &format!("{DEFAULT_TOML}\n[autoscaling]\nmin_count = 2\nmax_count = 6\n")).unwrap();
    let graph = stack(&Shape::of(&scaled)).unwrap();
    let alarms: f64 = graph
        .nodes()
        .iter()
        .flat_map(|n| n.billing(&scaled))
        .filter(|c| c.item == items::CLOUDWATCH_ALARM)
        .filter_map(|c| c.quantity.map(|q| q.min))
        .sum();
    assert_eq!(alarms, 5.0, "one CPU policy: its two alarms; the deploy alarms' three alarm metrics");
    let vcpu: Vec<_> = graph
        .nodes()
        .iter()
        .flat_map(|n| n.billing(&scaled))
        .filter(|c| c.item == items::FARGATE_VCPU_X86)
        .filter_map(|c| c.quantity)
        .collect();
    assert_eq!((vcpu[0].min, vcpu[0].max), (0.5, 1.5), "2 to 6 tasks of 0.25 vCPU");
    // The bill's range: four more tasks at 9.01 each at the top, the two alarms at 0.10 always.
    let cost = Cost::of(&graph.bill(&scaled), &prices, None).unwrap();
    let max = cost.monthly_total_max.unwrap();
    assert!((cost.monthly_total - 78.75).abs() < 0.011 && (max - 114.79).abs() < 0.011, "{cost:#?}");
}

/// Each `network.nat` mode's bill: `none` saves the NAT's hours and its Elastic IP and pays a
/// public IPv4 address per task instead (with autoscaling, per task of the range).
#[test]
fn the_bill_follows_the_nat_mode() {
    use crate::bill::{Cost, Prices};
    let prices = Prices::for_region("us-east-1").unwrap();
    let bill = |mode: &str, extra: &str| {
        let text = format!("{}{extra}", DEFAULT_TOML.replace("nat = \"single\"", &format!("nat = \"{mode}\"")));
        let config = Config::parse("t", &text).unwrap();
        Cost::of(&stack(&Shape::of(&config)).unwrap().bill(&config), &prices, None).unwrap()
    };
    // The table's us-east-1 month (730 hours) of a NAT gateway and of a public IPv4 address.
    let (nat, ipv4) = (32.85, 3.65);
    let single = bill("single", "");
    assert_eq!(single.monthly_total, 78.55);
    let per_az = bill("per_az", "");
    assert!((per_az.monthly_total - (78.55 + nat + ipv4)).abs() < 0.011, "a second NAT and its address: {per_az:#?}");
    let none = bill("none", "");
    // Cheaper by the NAT hour and its Elastic IP, dearer by the two tasks' addresses.
    assert!((none.monthly_total - (78.55 - nat - ipv4 + 2.0 * ipv4)).abs() < 0.011, "{none:#?}");
    assert!(none.monthly_total < single.monthly_total);
    assert!(!none.items.iter().any(|i| i.resource.starts_with("nat-gateway")), "no NAT gateway");
    assert!(!none.items.iter().any(|i| i.resource.starts_with("elastic-ip")), "no Elastic IP");
    assert!(!none.usage_based.iter().any(|u| u.what.starts_with("data processed by")), "no NAT data");
    // Regional: the NAT's hour in each of the two AZs (the table's per-AZ reading) and an address per
    // AZ: what per_az bills, without a NAT per public subnet.
    let regional = bill("regional", "");
    assert!((regional.monthly_total - per_az.monthly_total).abs() < 0.011, "{regional:#?}");
    let hours = regional.items.iter().find(|i| i.resource == "nat-gateway-regional").expect("the regional NAT's line");
    assert_eq!((hours.quantity, (hours.monthly * 100.0).round() / 100.0), (2.0, 2.0 * nat));
    assert_eq!(regional.items.iter().filter(|i| i.resource.starts_with("elastic-ip-regional-")).count(), 2);
    assert!(regional.usage_based.iter().any(|u| u.what == "data processed by the regional NAT gateway"));
    assert!(!regional
        .items
        .iter()
        .any(|i| i.resource.starts_with("nat-gateway-") && i.resource != "nat-gateway-regional"));
    let tasks = none.items.iter().find(|i| i.what.contains("of the tasks")).expect("the tasks' IPv4 line");
    assert_eq!((tasks.quantity, tasks.quantity_max), (2.0, None));
    // With autoscaling: an address per task of the range.
    let scaled = bill("none", "\n[autoscaling]\nmin_count = 2\nmax_count = 6\n");
    let tasks = scaled.items.iter().find(|i| i.what.contains("of the tasks")).unwrap();
    assert_eq!((tasks.quantity, tasks.quantity_max), (2.0, Some(6.0)));
}

/// The README's scale-to-zero line: the default stack with `[autoscaling]` at its two tasks, at 0
/// on weeknights (20:00 to 07:00) and at weekends, bills its tasks for 65 of every 168 hours.
#[test]
fn a_nightly_and_weekend_scale_to_zero_bills_the_tasks_hours_under_the_schedule() {
    use crate::bill::{Cost, Prices};
    let prices = Prices::for_region("us-east-1").unwrap();
    let bill = |schedule: &str| {
        let text = format!("{DEFAULT_TOML}\n[autoscaling]\nmin_count = 2\nmax_count = 2\n{schedule}");
        let config = Config::parse("t", &text).unwrap();
        Cost::of(&stack(&Shape::of(&config)).unwrap().bill(&config), &prices, None).unwrap()
    };
    let always = bill("");
    assert!((always.monthly_total - 78.75).abs() < 0.011, "78.55 and the CPU policy's two alarms: {always:#?}");
    let office = bill(
        "[[autoscaling.schedule]]\nname = \"night\"\ncron = \"0 20 ? * MON-FRI *\"\nmin_count = 0\nmax_count = 0\n\
         [[autoscaling.schedule]]\nname = \"morning\"\ncron = \"0 7 ? * MON-FRI *\"\nmin_count = 2\nmax_count = 2\n",
    );
    let tasks =
        |cost: &Cost| -> f64 { cost.items.iter().filter(|i| i.what.starts_with("Fargate")).map(|i| i.monthly).sum() };
    assert!((tasks(&always) - 18.02).abs() < 0.011, "{always:#?}");
    // 2027 has 261 weekdays of 13 hours: 3393 of its 8760 hours.
    let share = 261.0 * 13.0 / 8760.0;
    assert!((tasks(&office) - 18.02 * share).abs() < 0.02, "{} vs {}", tasks(&office), 18.02 * share);
    assert!((office.monthly_total - 67.70).abs() < 0.011, "{office:#?}");
    assert_eq!(office.monthly_total_max, None, "min and max are the same under every entry");
    assert!(office.items.iter().any(|i| i.what.contains("estimate under autoscaling.schedule")), "{office:#?}");
}
