//! Least privilege: the policy `fargate-stack policy` prints suffices. The realism layer enforces it
//! at the action level for the CI key (tests/support/README.md, "Action-level IAM"): `up`, `status`,
//! `deploy` and `down` all succeed with exactly its actions, nothing is denied, nothing leaks; with
//! one action removed (a sample chain over up, deploy and down), a run fails in one error line naming
//! it and the next run goes on.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::*;
use serde_json::{json, Value};

const CI_KEY: &str = "AKIDCI0000000000TEST";
const CI_PRINCIPAL: &str = "arn:aws:iam::123456789012:user/ci";

/// A run signed with the CI key.
fn as_ci(cli: &Cli, args: &[&str]) -> Run {
    let output = cli.command(args).env("AWS_ACCESS_KEY_ID", CI_KEY).output().expect("run fargate-stack");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

/// An emulator behind the realism layer, where the CI key may do what `policy_file` allows.
struct CiWorld {
    emulator: Emulator,
    dir: tempfile::TempDir,
    policy_file: std::path::PathBuf,
    realism: Realism,
    cli: Cli,
}

impl CiWorld {
    fn start() -> CiWorld {
        let emulator = Emulator::start();
        let dir = tempfile::tempdir().unwrap();
        let policy_file = dir.path().join("ci-policy.json");
        // Nothing allowed yet but what needs no permission (the account, for `policy` itself).
        std::fs::write(&policy_file, r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
        let config = json!({
            "iam_propagation_s": 0,
            "iam_policies": {CI_KEY: {"principal": CI_PRINCIPAL, "policy_file": policy_file}},
        });
        let realism = Realism::start(&emulator, RealismOptions { config, ..Default::default() });
        let cli = Cli::at(&realism.url());
        CiWorld { emulator, dir, policy_file, realism, cli }
    }
}

fn actions(policy: &Value) -> BTreeSet<String> {
    fargate_stack::policy::actions(policy)
}

/// `policy` with the actions `removed` taken out of every statement (an emptied statement dropped).
fn without(policy: &Value, removed: &[&str]) -> String {
    let mut narrowed = policy.clone();
    let statements = narrowed["Statement"].as_array_mut().unwrap();
    for statement in statements.iter_mut() {
        statement["Action"].as_array_mut().unwrap().retain(|a| !removed.contains(&a.as_str().unwrap()));
    }
    statements.retain(|s| !s["Action"].as_array().unwrap().is_empty());
    narrowed.to_string()
}

/// The changes AWS carried out since call `from`.
fn changes_since(realism: &Realism, from: usize) -> Vec<Value> {
    realism.calls()[from..]
        .iter()
        .filter(|c| is_mutating(c["action"].as_str().unwrap_or("Get")) && c["error"].is_null())
        .cloned()
        .collect()
}

/// The calls AWS denied.
fn denials(range: &[Value]) -> Vec<Value> {
    range
        .iter()
        .filter(|c| {
            matches!(c["error"].as_str(), Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"))
        })
        .cloned()
        .collect()
}

#[test]
fn the_printed_policy_suffices_for_up_status_deploy_and_down() {
    let started = Instant::now();
    let CiWorld { emulator, dir: _dir, policy_file, realism, cli } = CiWorld::start();
    let printed = as_ci(&cli, &["policy", "--commands", "up,status,deploy,down"]).ok();
    let policy: Value = serde_json::from_str(&printed.stdout).expect("a policy document");
    assert!(!printed.stderr.contains("notice"), "the account comes from the credentials: {}", printed.stderr);
    assert!(printed.stdout.contains(":123456789012:"), "{}", printed.stdout);
    std::fs::write(&policy_file, &printed.stdout).unwrap();

    // With one action of it removed, a run stops in one error line naming it (the steps that do not
    // need it go on); the next one with another action removed gets as far as that one, and a run
    // with the whole policy finishes. One chain over one stack, each removal first used further on.
    let denied_at = |args: &[&str], removed: &str| {
        std::fs::write(&policy_file, without(&policy, &[removed])).unwrap();
        let calls = realism.calls().len();
        let run = as_ci(&cli, args);
        assert_ne!(run.code, 0, "{args:?} without {removed}: {}", run.stderr);
        // (The progress shows each step that failed; the error is one line.)
        let lines: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(lines.len(), 1, "{}", run.stderr);
        assert!(lines[0].contains(&format!("not allowed to perform {removed}")), "{}", lines[0]);
        assert!(lines[0].contains("`fargate-stack policy`"), "{}", lines[0]);
        std::fs::write(&policy_file, &printed.stdout).unwrap();
        realism.calls()[calls..].iter().filter(|c| is_mutating(c["action"].as_str().unwrap_or("Get"))).count()
    };
    let up = ["up", "--yes"];
    // Without the simulator's permission, `up` says it skips the early check and goes on until the
    // call that is denied.
    std::fs::write(&policy_file, without(&policy, &["iam:SimulatePrincipalPolicy", "ec2:CreateSubnet"])).unwrap();
    let unchecked = as_ci(&cli, &up);
    assert_ne!(unchecked.code, 0);
    assert!(unchecked.stderr.contains("the access check before any change was skipped"), "{}", unchecked.stderr);
    assert!(unchecked.stderr.contains("not allowed to perform ec2:CreateSubnet ("), "{}", unchecked.stderr);
    // With it, IAM's policy simulator stops `up` before its first change, naming the action.
    for removed in ["ec2:CreateSubnet", "elasticloadbalancing:CreateLoadBalancer", "ecs:CreateService"] {
        assert_eq!(denied_at(&up, removed), 0, "{removed}: refused before any change");
    }
    let before = realism.calls().len();
    as_ci(&cli, &up).ok();
    as_ci(&cli, &["status"]).ok();
    let full_end = realism.calls().len();
    let deploy = ["deploy", "--image", "nginx:1.28"];
    denied_at(&deploy, "iam:PassRole");
    denied_at(&deploy, "ecs:UpdateService");
    as_ci(&cli, &deploy).ok();
    let down = ["down", "--yes"];
    denied_at(&down, "ecs:DeleteService");
    let after_denials = realism.calls().len();
    as_ci(&cli, &down).ok();

    // The full policy's runs were denied nothing (the denials are the chain's only).
    let calls = realism.calls();
    assert!(denials(&calls[after_denials..]).is_empty(), "{:#?}", denials(&calls[after_denials..]));
    assert!(denials(&calls[before..full_end]).is_empty(), "{:#?}", denials(&calls[before..full_end]));
    let sdk = runtime().block_on(sdk_at(&emulator.url(), "us-east-1"));
    assert!(runtime().block_on(leftovers(&sdk, STACK)).is_empty(), "down left nothing");
    assert!(actions(&policy).contains("iam:PassRole"));
    eprintln!("least privilege: up, status, deploy, down in {:.1}s", started.elapsed().as_secs_f64());
}

/// Every action of the printed policy, removed alone, stops the run of the command that needs it
/// in one line naming it before that run changes anything — IAM's simulator, asked first by `up`,
/// `down` and `deploy`, or the call's own denial for what a run reads — and the next run with the
/// whole policy goes on. Only the actions listed in `NOT_NEEDED` let their runs succeed.
#[test]
fn each_action_removed_stops_the_run_that_needs_it_before_any_change() {
    use fargate_stack::access::Verb;
    // What these runs of a default stack work without, and when the policy needs it (README,
    // "What the tool works without").
    const NOT_NEEDED: &[(&str, &str)] = &[
        ("acm:DescribeCertificate", "a state that records a certificate the config no longer has"),
        ("application-autoscaling:DeleteScalingPolicy", "a state that records autoscaling the config dropped"),
        ("application-autoscaling:DeleteScheduledAction", "a state that records a schedule the config dropped"),
        ("application-autoscaling:DeregisterScalableTarget", "the same as DeleteScalingPolicy"),
        ("application-autoscaling:DescribeScalingPolicies", "the same"),
        ("application-autoscaling:DescribeScheduledActions", "the same as DeleteScheduledAction"),
        ("application-autoscaling:ListTagsForResource", "the same"),
        ("ecs:ListClusters", "`down --name` or adoption without a state: finding the cluster by tag"),
        ("ecs:ListServices", "the same, for the service"),
        ("elasticloadbalancing:DeleteRule", "a state that records a production rule ([deploy] strategy not rolling)"),
        ("iam:ListRoles", "the same, for the roles"),
        ("iam:SimulatePrincipalPolicy", "the check itself: without it `up` says it skips the check and goes on"),
    ];
    let started = Instant::now();
    let CiWorld { emulator, dir: _dir, policy_file, realism, cli } = CiWorld::start();
    let printed = as_ci(&cli, &["policy", "--commands", "up,status,deploy,down"]).ok().stdout;
    let policy: Value = serde_json::from_str(&printed).unwrap();
    // A run with `removed` taken out: refused in one error line naming it, nothing changed.
    let stopped = |args: &[&str], removed: &str| -> bool {
        std::fs::write(&policy_file, without(&policy, &[removed])).unwrap();
        let calls = realism.calls().len();
        let run = as_ci(&cli, args);
        std::fs::write(&policy_file, &printed).unwrap();
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
        if run.code == 0 || errors.iter().any(|e| e.contains("refusing to delete without confirmation")) {
            return false;
        }
        assert_eq!(errors.len(), 1, "{args:?} without {removed}: {}", run.stderr);
        assert!(errors[0].contains(&format!("not allowed to perform {removed}")), "{args:?}: {}", errors[0]);
        assert!(errors[0].contains("`fargate-stack policy`"), "{}", errors[0]);
        let changes = changes_since(&realism, calls);
        assert!(changes.is_empty(), "{args:?} without {removed} changed something: {changes:#?}");
        true
    };
    // `up` of a new stack finds, creates and sets up every resource: a removed action of those verbs
    // stops it. (The others would let it make the stack, so they are tried once it exists.)
    let defaults = fargate_stack::config::Config::parse("t", fargate_stack::config::DEFAULT_TOML).unwrap();
    let graph = fargate_stack::resources::stack(&fargate_stack::model::Shape::of(&defaults)).unwrap();
    let of_up: BTreeSet<&str> = graph
        .nodes()
        .iter()
        .flat_map(|n| n.permissions())
        .filter(|p| matches!(p.verb, Verb::Find | Verb::Create | Verb::Update))
        .map(|p| p.action)
        .collect();
    let all = actions(&policy);
    let mut unstopped: Vec<String> = vec![];
    let listed = |a: &str| NOT_NEEDED.iter().any(|(n, _)| *n == a);
    for action in all.iter().filter(|a| of_up.contains(a.as_str()) && !listed(a)) {
        assert!(stopped(&["up", "--yes"], action), "`up` of a new stack succeeded without {action}");
    }
    as_ci(&cli, &["up", "--yes"]).ok();
    // With the stack up: what `status` reads, what `deploy` registers and rolls, what `down` deletes.
    for action in all.iter().filter(|a| !of_up.contains(a.as_str())) {
        // (`down` without `--yes` and off a terminal stops at its question, after its check.)
        let needed = stopped(&["status"], action)
            || stopped(&["deploy", "--image", "nginx:1.28"], action)
            || stopped(&["down"], action);
        if !needed {
            unstopped.push(action.clone());
        }
    }
    assert_eq!(unstopped, NOT_NEEDED.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(), "only these not needed");
    as_ci(&cli, &["down", "--yes"]).ok();
    let sdk = runtime().block_on(sdk_at(&emulator.url(), "us-east-1"));
    assert!(runtime().block_on(leftovers(&sdk, STACK)).is_empty(), "down left nothing");
    eprintln!("least privilege: {} actions, each removed, in {:.1}s", all.len(), started.elapsed().as_secs_f64());
}

/// A canary stack (issue 20): `up`, a canary `deploy --image` and `down` under the printed policy,
/// denied nothing; without one of the actions only a strategy needs (CreateRule and ModifyRule, for
/// the production rule) `up` of the new stack stops before any change, in one line naming it.
#[test]
fn a_canary_stack_runs_under_the_printed_policy_and_needs_its_strategy_permissions() {
    let started = Instant::now();
    let CiWorld { emulator, dir: _dir, policy_file, realism, cli } = CiWorld::start();
    cli.write_config(&config_with(&[("strategy", "strategy = \"canary\""), ("bake_minutes", "bake_minutes = 0")]));
    let printed = as_ci(&cli, &["policy", "--commands", "up,status,deploy,down"]).ok().stdout;
    let policy: Value = serde_json::from_str(&printed).unwrap();
    // The infrastructure role is passed to ECS by a statement of its own. (The layer evaluates no
    // `Resource`: the tasks' roles' PassRole would allow it there, so that removal is not tried.)
    assert!(printed.contains(":role/simple-ecs-dev-ecs-infrastructure\""), "{printed}");
    // The two actions only a strategy needs (a rolling stack's policy has neither).
    for removed in ["elasticloadbalancing:CreateRule", "elasticloadbalancing:ModifyRule"] {
        std::fs::write(&policy_file, without(&policy, &[removed])).unwrap();
        let calls = realism.calls().len();
        let run = as_ci(&cli, &["up", "--yes"]);
        assert_ne!(run.code, 0, "without {removed}: {}", run.stderr);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{}", run.stderr);
        assert!(errors[0].contains(&format!("not allowed to perform {removed}")), "{}", errors[0]);
        let changes = changes_since(&realism, calls);
        assert!(changes.is_empty(), "without {removed}: {changes:#?}");
    }

    std::fs::write(&policy_file, &printed).unwrap();
    let before = realism.calls().len();
    as_ci(&cli, &["up", "--yes"]).ok();
    assert!(cli.state().unwrap()["resources"].get("listener-rule-production").is_some());
    as_ci(&cli, &["--output", "json", "deploy", "--image", "nginx:1.28"]).ok();
    // A canary ran: ECS left the production rule sending everything to the alternate group. (Not the
    // deploy's `deploy_phase` events: at this time scale the canary can finish between two reads.)
    let sdk = runtime().block_on(sdk_at(&emulator.url(), "us-east-1"));
    let state = cli.state().unwrap();
    let (rule, alternate) =
        (&state["resources"]["listener-rule-production"]["id"], &state["resources"]["target-group-alternate"]["id"]);
    let rules = runtime().block_on(sdk.elb.describe_rules().rule_arns(rule.as_str().unwrap()).send()).unwrap();
    let weights: Vec<(String, i32)> = rules.rules()[0].actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .map(|t| (t.target_group_arn().unwrap().to_string(), t.weight().unwrap_or(0)))
        .collect();
    assert!(weights.contains(&(alternate.as_str().unwrap().to_string(), 100)), "a canary shifted: {weights:?}");
    as_ci(&cli, &["status"]).ok();
    as_ci(&cli, &["down", "--yes"]).ok();
    let calls = realism.calls();
    assert!(denials(&calls[before..]).is_empty(), "{:#?}", denials(&calls[before..]));
    assert!(runtime().block_on(leftovers(&sdk, STACK)).is_empty(), "down left nothing");
    eprintln!("least privilege, canary: up, deploy, down in {:.1}s", started.elapsed().as_secs_f64());
}
