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

fn actions(policy: &Value) -> BTreeSet<String> {
    fargate_stack::policy::actions(policy)
}

#[test]
fn the_printed_policy_suffices_for_up_status_deploy_and_down() {
    let started = Instant::now();
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
    let printed = as_ci(&cli, &["policy", "--commands", "up,status,deploy,down"]).ok();
    let policy: Value = serde_json::from_str(&printed.stdout).expect("a policy document");
    assert!(!printed.stderr.contains("notice"), "the account comes from the credentials: {}", printed.stderr);
    assert!(printed.stdout.contains(":123456789012:"), "{}", printed.stdout);
    std::fs::write(&policy_file, &printed.stdout).unwrap();

    // With one action of it removed, a run stops in one error line naming it (the steps that do not
    // need it go on); the next one with another action removed gets as far as that one, and a run
    // with the whole policy finishes. One chain over one stack, each removal first used further on.
    let without = |removed: &[&str]| {
        let mut narrowed = policy.clone();
        for statement in narrowed["Statement"].as_array_mut().unwrap() {
            statement["Action"].as_array_mut().unwrap().retain(|a| !removed.contains(&a.as_str().unwrap()));
        }
        narrowed["Statement"].as_array_mut().unwrap().retain(|s| !s["Action"].as_array().unwrap().is_empty());
        narrowed.to_string()
    };
    let denied_at = |args: &[&str], removed: &str| {
        std::fs::write(&policy_file, without(&[removed])).unwrap();
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
    std::fs::write(&policy_file, without(&["iam:SimulatePrincipalPolicy", "ec2:CreateSubnet"])).unwrap();
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
    let denials = |range: &[Value]| -> Vec<Value> {
        range
            .iter()
            .filter(|c| {
                matches!(c["error"].as_str(), Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"))
            })
            .cloned()
            .collect()
    };
    assert!(denials(&calls[after_denials..]).is_empty(), "{:#?}", denials(&calls[after_denials..]));
    assert!(denials(&calls[before..full_end]).is_empty(), "{:#?}", denials(&calls[before..full_end]));
    let sdk = runtime().block_on(sdk_at(&emulator.url(), "us-east-1"));
    assert!(runtime().block_on(leftovers(&sdk, STACK)).is_empty(), "down left nothing");
    assert!(actions(&policy).contains("iam:PassRole"));
    eprintln!("least privilege: up, status, deploy, down in {:.1}s", started.elapsed().as_secs_f64());
}
