//! The options a security scanner asks for that need the user's own resources, against the
//! emulator with a second stack present, every run signed with a key the realism layer holds to the
//! policy `fargate-stack policy` prints: a WAF web ACL associated with the load balancer
//! (`[load_balancer] waf_web_acl_arn`): a bad ARN refused before any change, drift (another ACL, or
//! none, found on the load balancer) shown and repaired, the key's removal disassociating it; the
//! user's KMS keys for the table and the log group (`[table] kms_key_arn`, `[logs] kms_key_arn`): a
//! key whose policy does not let CloudWatch Logs use it refused before any change, a key set at
//! creation (the second stack) and changed in place; `down` removing only the association, before
//! the load balancer, and leaving the user's web ACLs and keys.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_wafv2::types::{AllowAction, DefaultAction, Scope, VisibilityConfig};
use common::*;
use serde_json::{json, Value};

const OTHER: &str = "other";

fn row<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

/// The default config with extra `key = value` lines at the top of `[section]`.
fn config(extra: &[(&str, String)]) -> String {
    let mut text = include_str!("../config/default.toml").to_string();
    for (section, line) in extra {
        let header = format!("[{section}]\n");
        assert!(text.contains(&header), "{section}");
        text = text.replacen(&header, &format!("{header}{line}\n"), 1);
    }
    text
}

fn with_acl(acl: &str) -> String {
    config(&[("load_balancer", format!("waf_web_acl_arn = {acl:?}"))])
}

fn with_keys(acl: &str, table_key: &str, logs_key: &str) -> String {
    config(&[
        ("load_balancer", format!("waf_web_acl_arn = {acl:?}")),
        ("table", format!("kms_key_arn = {table_key:?}")),
        ("logs", format!("kms_key_arn = {logs_key:?}")),
    ])
}

/// A KMS key with `policy` (none: KMS's default, the account's root only); its ARN.
async fn kms_key(sdk: &Sdk, policy: Option<String>) -> String {
    let out = sdk.kms.create_key().set_policy(policy).send().await.unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_string()
}

/// A key policy as AWS's CloudWatch Logs guide writes it: the account, and the service of the region.
fn logs_key_policy() -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:*"}}}]})
    .to_string()
}

/// The key a table and a log group are encrypted with.
async fn keys_of(sdk: &Sdk, table: &str, group: &str) -> (Option<String>, Option<String>) {
    let out = sdk.dynamodb.describe_table().table_name(table).send().await.unwrap();
    let sse = out.table().unwrap().sse_description();
    let table_key = sse.and_then(|s| s.kms_master_key_arn()).map(str::to_string);
    let groups = sdk.logs.describe_log_groups().log_group_name_prefix(group).send().await.unwrap();
    let group = groups.log_groups().iter().find(|g| g.log_group_name() == Some(group)).unwrap();
    (table_key, group.kms_key_id().map(str::to_string))
}

const CI_KEY: &str = "AKIDCI0000000000TEST";

/// Runs signed with the CI key, which the realism layer holds to its policy file.
fn as_ci(cli: &Cli, args: &[&str]) -> Run {
    Run::from(cli.command(args).env("AWS_ACCESS_KEY_ID", CI_KEY).output().unwrap())
}

async fn web_acl(sdk: &Sdk, name: &str) -> String {
    let visibility = VisibilityConfig::builder()
        .sampled_requests_enabled(false)
        .cloud_watch_metrics_enabled(false)
        .metric_name(name);
    let out = sdk
        .wafv2
        .create_web_acl()
        .name(name)
        .scope(Scope::Regional)
        .default_action(DefaultAction::builder().allow(AllowAction::builder().build()).build())
        .visibility_config(visibility.build().unwrap())
        .send()
        .await
        .unwrap();
    out.summary().unwrap().arn().unwrap().to_string()
}

/// The web ACL associated with a load balancer, if any.
async fn acl_of(sdk: &Sdk, lb: &str) -> Option<String> {
    let out = sdk.wafv2.get_web_acl_for_resource().resource_arn(lb).send().await.unwrap();
    out.web_acl().map(|a| a.arn().to_string())
}

fn mutations_since(realism: &Realism, before: usize) -> Vec<String> {
    realism.calls()[before..]
        .iter()
        .map(|c| c["action"].as_str().unwrap_or_default().to_string())
        .filter(|a| is_mutating(a))
        .collect()
}

#[test]
fn a_users_web_acl_is_associated_checked_repaired_and_left_alone() {
    let started = Instant::now();
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("ci-policy.json");
    std::fs::write(&policy_file, r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
    let iam = json!({CI_KEY: {"principal": "arn:aws:iam::123456789012:user/ci", "policy_file": policy_file}});
    let realism = Realism::start(
        &emulator,
        RealismOptions {
            time_scale: 0.005,
            config: json!({"iam_propagation_s": 0, "iam_policies": iam}),
            ..Default::default()
        },
    );
    let rt = runtime();
    let sdk = rt.block_on(sdk_at(&realism.url(), "us-east-1"));
    let (edge, intruder, bare_key, logs_key) = rt.block_on(async {
        let acls = (web_acl(&sdk, "edge").await, web_acl(&sdk, "intruder").await);
        (acls.0, acls.1, kms_key(&sdk, None).await, kms_key(&sdk, Some(logs_key_policy())).await)
    });
    // The policy printed for the config with every option of this test.
    let printer = Cli::at(&realism.url());
    printer.write_config(&with_keys(&edge, &logs_key, &logs_key));
    let printed = as_ci(&printer, &["policy", "--commands", "up,status,down"]).ok();
    std::fs::write(&policy_file, &printed.stdout).unwrap();
    for action in
        ["wafv2:AssociateWebACL", "elasticloadbalancing:SetWebACL", "logs:AssociateKmsKey", "kms:GetKeyPolicy"]
    {
        assert!(printed.stdout.contains(action), "{action}: {}", printed.stdout);
    }

    // A well-formed ARN of no web ACL: refused before any change, naming the key.
    let app = Cli::at(&realism.url());
    let missing = edge.rsplit_once('/').unwrap().0.to_string() + "/00000000-0000-4000-8000-000000000000";
    app.write_config(&with_acl(&missing));
    let before = realism.calls().len();
    let refused = as_ci(&app, &["up", "--yes", "--no-wait"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("load_balancer.waf_web_acl_arn") && refused.stderr.contains("does not exist"),
        "{}",
        refused.stderr
    );
    assert_eq!(mutations_since(&realism, before), Vec::<String>::new());
    // Another region's ACL: refused alike, before any call.
    app.write_config(&with_acl(&edge.replace("us-east-1", "us-west-2")));
    let refused = as_ci(&app, &["up", "--yes", "--no-wait"]);
    assert!(refused.stderr.contains("load_balancer.waf_web_acl_arn") && refused.stderr.contains("us-west-2"));

    // A second stack, without WAF, its table and log group encrypted with the key from the start.
    let other = Cli::at(&realism.url());
    let other_config =
        config(&[("table", format!("kms_key_arn = {logs_key:?}")), ("logs", format!("kms_key_arn = {logs_key:?}"))]);
    other.write_config(&other_config.replace(&format!("name = \"{STACK}\""), &format!("name = \"{OTHER}\"")));
    as_ci(&other, &["up", "--yes", "--no-wait"]).ok();

    // Associated; the plan says what it bills.
    app.write_config(&with_acl(&edge));
    let plan = as_ci(&app, &["up", "--dry-run"]).ok();
    assert!(plan.stdout.contains("waf-association") && plan.stdout.contains("$0.60 per million"), "{}", plan.stdout);
    as_ci(&app, &["up", "--yes", "--no-wait"]).ok();
    let state = app.state().unwrap();
    assert_eq!(state["resources"]["waf-association"]["id"], edge.as_str());
    let lb = state["resources"]["load-balancer"]["id"].as_str().unwrap().to_string();
    let other_state: Value =
        serde_json::from_str(&std::fs::read_to_string(other.dir.path().join(".fargate-stack/other.json")).unwrap())
            .unwrap();
    let other_lb = other_state["resources"]["load-balancer"]["id"].as_str().unwrap().to_string();
    rt.block_on(async {
        assert_eq!(acl_of(&sdk, &lb).await.as_deref(), Some(edge.as_str()));
        assert_eq!(acl_of(&sdk, &other_lb).await, None, "the other stack's load balancer");
    });

    // Another ACL put on it outside fargate-stack: drift, put back by `up`.
    rt.block_on(sdk.wafv2.associate_web_acl().web_acl_arn(&intruder).resource_arn(&lb).send()).unwrap();
    let status = as_ci(&app, &["--output", "json", "status"]);
    let doc = status.json();
    let waf = row(&doc, "waf-association");
    assert_eq!(waf["status"], "drifted", "{waf}");
    assert!(waf["detail"].as_str().unwrap().contains("intruder"), "{waf}");
    as_ci(&app, &["up", "--yes", "--no-wait"]).ok();
    assert_eq!(rt.block_on(acl_of(&sdk, &lb)).as_deref(), Some(edge.as_str()));
    // Disassociated outside: missing, associated again by `up`.
    rt.block_on(sdk.wafv2.disassociate_web_acl().resource_arn(&lb).send()).unwrap();
    let doc = as_ci(&app, &["--output", "json", "status"]).json();
    assert_eq!(row(&doc, "waf-association")["status"], "missing", "{doc}");
    as_ci(&app, &["up", "--yes", "--no-wait"]).ok();
    assert_eq!(rt.block_on(acl_of(&sdk, &lb)).as_deref(), Some(edge.as_str()));
    let again = as_ci(&app, &["--output", "json", "up", "--dry-run"]).ok();
    let (action, changes) = planned_changes(&again.json(), "waf-association");
    assert!(!["create", "update"].contains(&action.as_str()) && changes.is_empty(), "{action}: {changes:?}");

    // The key removed: disassociated, the ACL kept.
    app.write_config(&default_config_text(STACK));
    as_ci(&app, &["up", "--yes", "--no-wait"]).ok();
    assert_eq!(rt.block_on(acl_of(&sdk, &lb)), None);
    assert!(app.state().unwrap()["resources"].get("waf-association").is_none());

    // KMS keys: the other stack's were set at creation.
    let other_keys = rt.block_on(keys_of(&sdk, "other-messages", "/ecs/other"));
    assert_eq!(other_keys, (Some(logs_key.clone()), Some(logs_key.clone())));
    // A key whose policy does not let CloudWatch Logs use it: refused before any change, naming it.
    app.write_config(&with_keys(&edge, &logs_key, &bare_key));
    let before = realism.calls().len();
    let refused = as_ci(&app, &["up", "--yes", "--no-wait"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("logs.kms_key_arn") && refused.stderr.contains("logs.us-east-1.amazonaws.com"),
        "{}",
        refused.stderr
    );
    assert_eq!(mutations_since(&realism, before), Vec::<String>::new());
    // Good keys, and the ACL back: changed in place (the table and the log group stay).
    app.write_config(&with_keys(&edge, &logs_key, &logs_key));
    let plan = as_ci(&app, &["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(planned_changes(&plan, "table").0, "update", "{plan}");
    assert_eq!(planned_changes(&plan, "log-group").0, "update", "{plan}");
    assert_eq!(planned_changes(&plan, "flow-log-group").0, "update", "the flow logs' group takes it too: {plan}");
    let table = app.state().unwrap()["resources"]["table"]["id"].as_str().unwrap().to_string();
    // Killed right after AWS took the association (before the state records it): the next run finds
    // it on the load balancer, records it and finishes the rest.
    realism.freeze_at("AssociateWebACL");
    let mut child = app
        .command(&["up", "--yes", "--no-wait"])
        .env("AWS_ACCESS_KEY_ID", CI_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(60)).as_deref(), Some("AssociateWebACL"));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
    assert!(app.state().unwrap()["resources"].get("waf-association").is_none(), "killed before it was recorded");
    as_ci(&app, &["up", "--yes", "--no-wait"]).ok();
    assert_eq!(app.state().unwrap()["resources"]["waf-association"]["id"], edge.as_str());
    assert_eq!(app.state().unwrap()["resources"]["table"]["id"], table.as_str(), "the same table");
    let mine = rt.block_on(keys_of(&sdk, &table, "/ecs/simple-ecs-dev"));
    assert_eq!(mine, (Some(logs_key.clone()), Some(logs_key.clone())));
    let flow_logs = rt.block_on(keys_of(&sdk, &table, "/vpc/simple-ecs-dev/flow-logs")).1;
    assert_eq!(flow_logs, Some(logs_key.clone()), "every log group of the stack is encrypted with logs.kms_key_arn");
    assert_eq!(rt.block_on(acl_of(&sdk, &lb)).as_deref(), Some(edge.as_str()));
    let doc = as_ci(&app, &["--output", "json", "status"]).json();
    for name in ["table", "log-group", "waf-association"] {
        assert_ne!(row(&doc, name)["status"], "drifted", "{name}: {doc}");
    }

    // `down`: the association goes before the load balancer; the user's ACLs and keys stay.
    let before = realism.calls().len();
    as_ci(&app, &["down", "--yes"]).ok();
    let actions = mutations_since(&realism, before);
    let at = |a: &str| actions.iter().position(|x| x == a).unwrap_or_else(|| panic!("no {a} in {actions:?}"));
    assert!(at("DisassociateWebACL") < at("DeleteLoadBalancer"), "{actions:?}");
    rt.block_on(async {
        assert!(leftovers(&sdk, STACK).await.is_empty());
        for arn in [&edge, &intruder] {
            let (name, id) = {
                let parts: Vec<&str> = arn.rsplitn(3, '/').collect();
                (parts[1].to_string(), parts[0].to_string())
            };
            sdk.wafv2.get_web_acl().name(name).id(id).scope(Scope::Regional).send().await.expect("the ACL stays");
        }
        for key in [&bare_key, &logs_key] {
            let meta = sdk.kms.describe_key().key_id(key).send().await.expect("the key stays");
            assert!(meta.key_metadata().unwrap().enabled(), "{key}");
        }
    });
    eprintln!("protection (waf): {:.1}s", started.elapsed().as_secs_f64());
}

fn default_config_text(stack: &str) -> String {
    include_str!("../config/default.toml").replace(&format!("name = \"{STACK}\""), &format!("name = \"{stack}\""))
}
