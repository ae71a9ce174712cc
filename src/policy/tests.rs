use serde_json::{json, Value};

use super::*;
use crate::commands::policy::declarations;
use crate::config::{Config, DEFAULT_TOML};

fn target(account: &str, state: Option<(&str, &str)>) -> Target {
    Target {
        partition: "aws".into(),
        region: "eu-west-1".into(),
        account: account.into(),
        stack: "shop-prod".into(),
        state: state.map(|(b, k)| (b.into(), k.into())),
    }
}

/// The config with everything (HTTPS on a domain, both scaling policies), named `shop-prod`.
fn policy(commands: &[&str], target: &Target) -> Value {
    let text = format!(
        "{}\n[https]\ndomain = \"api.example.com\"\n\n[autoscaling]\nmin_count = 2\nmax_count = 6\n\
         requests_per_target = 500\n",
        DEFAULT_TOML.replace("simple-ecs-dev", "shop-prod")
    );
    let config = Config::parse("t", &text).unwrap();
    document(commands, &declarations(&config).unwrap(), target)
}

fn statements(doc: &Value) -> Vec<Value> {
    doc["Statement"].as_array().unwrap().clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn one_service_per_statement_named_by_its_sid_and_no_wildcard_action() {
    let doc = policy(COMMANDS, &target("123456789012", None));
    assert_eq!(doc["Version"], "2012-10-17");
    let mut sids = BTreeSet::new();
    for s in statements(&doc) {
        let sid = s["Sid"].as_str().unwrap().to_string();
        assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "{sid}");
        assert!(sids.insert(sid.clone()), "duplicate Sid {sid}");
        assert_eq!(s["Effect"], "Allow");
        let actions = strings(&s["Action"]);
        let services: BTreeSet<&str> = actions.iter().map(|a| a.split(':').next().unwrap()).collect();
        assert_eq!(services.len(), 1, "{sid}: {actions:?}");
        let service: String = services.iter().next().unwrap().replace('-', "").to_lowercase();
        assert!(sid.to_lowercase().starts_with(&service), "{sid} names {service}");
        for a in &actions {
            assert!(!a.contains('*') && !a.contains('?'), "{sid}: {a}");
        }
        for r in strings(&s["Resource"]) {
            assert!(r == "*" || r.starts_with("arn:aws:"), "{r}");
            let unfilled = ["{partition}", "{region}", "{account}", "{stack}", "{state_bucket}", "{state_key}"];
            assert!(!unfilled.iter().any(|p| r.contains(p)), "unfilled placeholder: {r}");
        }
    }
}

#[test]
fn every_declared_action_of_the_commands_is_in_it_and_nothing_else() {
    let config = Config::parse("t", DEFAULT_TOML).unwrap();
    let declared = declarations(&config).unwrap();
    let doc = document(&["up"], &declared, &target("123456789012", None));
    let expected: BTreeSet<String> = declared
        .resources
        .iter()
        .filter(|p| verbs("up").contains(&p.verb) && p.verb != Verb::State)
        .map(|p| p.action.to_string())
        .collect();
    assert_eq!(actions(&doc), expected);
    // What AWS checks on the tool's behalf is listed though nothing calls it.
    for implied in ["iam:PassRole", "ec2:CreateTags", "ecs:TagResource", "elasticloadbalancing:AddTags", "iam:TagRole"]
    {
        assert!(actions(&doc).contains(implied), "{implied}");
    }
}

#[test]
fn resources_are_the_stacks_own_and_tag_conditions_name_it() {
    let doc = policy(COMMANDS, &target("123456789012", None));
    for s in statements(&doc) {
        let sid = s["Sid"].as_str().unwrap();
        let resources = strings(&s["Resource"]);
        if sid.ends_with("NoResourceLevel") {
            assert_eq!(resources, ["*"], "{sid}");
            assert!(s.get("Condition").is_none(), "{sid}");
            continue;
        }
        if resources.contains(&"*".to_string()) {
            assert!(sid.ends_with("AnyResource") && s.get("Condition").is_some(), "{sid}: * without a condition");
            continue;
        }
        for r in &resources {
            assert!(
                r.contains(":eu-west-1:123456789012:")
                    || r.contains("::123456789012:")
                    || r.starts_with("arn:aws:route53:::")
                    || r.starts_with("arn:aws:s3:::shop-prod-alb-logs-123456789012-eu-west-1")
                    // `list` looks at every stack's.
                    || r.starts_with("arn:aws:s3:::*-alb-logs-123456789012-eu-west-1"),
                "{sid}: {r}"
            );
        }
        let condition = s["Condition"].to_string();
        if sid.ends_with("TaggedWithStack") {
            assert!(condition.contains(r#""aws:ResourceTag/fargate-stack:stack":"shop-prod""#), "{sid}: {condition}");
        }
        if sid.contains("CreateWithStackTag") {
            assert!(condition.contains(r#""aws:RequestTag/fargate-stack:stack":"shop-prod""#), "{sid}: {condition}");
            assert!(strings(&s["Action"]).iter().all(|a| !a.contains(":Delete")), "{sid}");
        }
    }
}

#[test]
fn pass_role_only_for_the_stacks_roles_and_each_only_to_its_service() {
    let doc = policy(&["up"], &target("123456789012", None));
    let pass: Vec<Value> =
        statements(&doc).into_iter().filter(|s| strings(&s["Action"]).contains(&"iam:PassRole".into())).collect();
    assert_eq!(pass.len(), 2, "{pass:?}");
    let to = |service: &str| {
        let found = pass.iter().find(|s| s["Condition"]["StringEquals"]["iam:PassedToService"] == service);
        found.unwrap_or_else(|| panic!("no PassRole to {service}: {pass:?}")).clone()
    };
    let ecs = to("ecs-tasks.amazonaws.com");
    assert_eq!(strings(&ecs["Action"]), ["iam:PassRole"]);
    for role in strings(&ecs["Resource"]) {
        assert!(role.starts_with("arn:aws:iam::123456789012:role/shop-prod-") && role.ends_with("-role"), "{role}");
    }
    // The flow logs' role, to the flow logs service only, and not among the roles ECS may get.
    let flow_logs = to("vpc-flow-logs.amazonaws.com");
    assert_eq!(strings(&flow_logs["Resource"]), ["arn:aws:iam::123456789012:role/shop-prod-flow-logs"]);
}

#[test]
fn tags_on_create_only_as_part_of_the_creates() {
    let doc = policy(&["up"], &target("123456789012", None));
    let s = statements(&doc).into_iter().find(|s| s["Sid"] == "Ec2TagOnCreate").expect("ec2 tag-on-create");
    assert_eq!(strings(&s["Action"]), ["ec2:CreateTags"]);
    let creates = strings(&s["Condition"]["StringEquals"]["ec2:CreateAction"]);
    assert!(creates.contains(&"CreateVpc".into()) && creates.contains(&"CreateSubnet".into()), "{creates:?}");
}

#[test]
fn read_only_commands_change_nothing_and_list_covers_every_stack() {
    let status = actions(&policy(&["status", "logs"], &target("123456789012", None)));
    let changes = ["Create", "Delete", "Put", "Update", "Modify", "Register", "Tag", "Attach", "Authorize"];
    for a in &status {
        let name = a.split(':').nth(1).unwrap();
        assert!(!changes.iter().any(|c| name.starts_with(c)), "status/logs may {a}");
    }
    assert!(status.contains("logs:FilterLogEvents"));
    let list = policy(&["list"], &target("123456789012", None)).to_string();
    assert!(!list.contains("shop-prod"), "list is for every stack: {list}");
    let deploy = actions(&policy(&["deploy"], &target("123456789012", None)));
    for a in ["ecs:RegisterTaskDefinition", "ecs:UpdateService", "iam:PassRole"] {
        assert!(deploy.contains(a), "{a}");
    }
    assert!(!deploy.contains("ec2:CreateVpc") && !deploy.contains("ec2:DeleteVpc"));
}

#[test]
fn an_unknown_account_is_a_wildcard_in_the_account_field_only() {
    let doc = policy(&["up"], &target("*", None)).to_string();
    assert!(doc.contains("arn:aws:ec2:eu-west-1:*:vpc/*"), "{doc}");
    assert!(doc.contains("arn:aws:iam::*:role/shop-prod-"), "{doc}");
    assert!(!doc.contains("123456789012"));
}

#[test]
fn an_s3_state_adds_its_bucket_and_keys_and_a_local_one_nothing() {
    // With the state in a local file, S3 is only the stack's access-log bucket (and ListAllMyBuckets,
    // which has no resource level).
    let local = policy(&["up"], &target("123456789012", None));
    for s in statements(&local).iter().filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("s3:"))) {
        for r in strings(&s["Resource"]) {
            assert!(r == "*" || r.starts_with("arn:aws:s3:::shop-prod-alb-logs-123456789012-eu-west-1"), "{r}");
        }
    }
    let doc = policy(&["status"], &target("123456789012", Some(("team-state", "stacks/shop.json"))));
    let s3: Vec<Value> =
        statements(&doc).into_iter().filter(|s| s["Sid"].as_str().unwrap().starts_with("S3")).collect();
    let resources: BTreeSet<String> = s3.iter().flat_map(|s| strings(&s["Resource"])).collect();
    assert!(resources.contains("arn:aws:s3:::team-state/stacks/shop.json*"), "{resources:?}");
    assert!(resources.contains("arn:aws:s3:::team-state"), "{resources:?}");
    let actions: BTreeSet<String> = s3.iter().flat_map(|s| strings(&s["Action"])).collect();
    for a in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"] {
        assert!(actions.contains(a), "{a}");
    }
}

/// Each action reaches only the resources declared for it: the state bucket, a bucket like the
/// access-log bucket, gets none of the access-log bucket's settings or its deletion.
#[test]
fn no_action_reaches_another_actions_resources() {
    let doc = policy(&["up", "down"], &target("123456789012", Some(("team-state", "stacks/shop.json"))));
    for s in statements(&doc) {
        if strings(&s["Resource"]).contains(&"arn:aws:s3:::team-state".to_string()) {
            assert_eq!(strings(&s["Action"]), ["s3:ListBucket"], "{s}");
        }
        if strings(&s["Resource"]).iter().any(|r| r.starts_with("arn:aws:s3:::team-state/")) {
            let actions = strings(&s["Action"]);
            assert!(actions.iter().all(|a| a.ends_with("Object")), "{s}");
        }
    }
}

#[test]
fn partitions_follow_the_region() {
    assert_eq!(partition("eu-west-1"), "aws");
    assert_eq!(partition("cn-north-1"), "aws-cn");
    assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
}

#[test]
fn split_documents_are_each_under_the_managed_policy_limit_and_hold_every_statement_once() {
    let full = policy(COMMANDS, &target("123456789012", Some(("team-state", "stacks/shop.json"))));
    assert!(full.to_string().len() > MANAGED_POLICY_LIMIT, "the whole policy is over the limit");
    let parts = split(&full);
    assert!(parts.len() >= 2, "{}", parts.len());
    let mut again = vec![];
    for part in &parts {
        assert!(part.to_string().len() < MANAGED_POLICY_LIMIT, "{}", part.to_string().len());
        assert_eq!(part["Version"], "2012-10-17");
        again.extend(statements(part));
    }
    assert_eq!(again, statements(&full), "every statement once, in order");
    assert_eq!(split(&policy(&["status"], &target("123456789012", None))).len(), 1);
    // A statement over the limit alone is shared out by its actions.
    let actions: Vec<String> = (0..400).map(|i| format!("ec2:DescribeSomethingLong{i:04}")).collect();
    let huge = json!({"Statement": [{"Sid": "Ec2Big", "Effect": "Allow", "Action": actions, "Resource": "*"}]});
    let parts = split(&huge);
    assert!(parts.len() >= 2 && parts.iter().all(|p| p.to_string().len() < MANAGED_POLICY_LIMIT));
    let total: usize = parts.iter().flat_map(statements).map(|s| s["Action"].as_array().unwrap().len()).sum();
    assert_eq!(total, 400);
}
