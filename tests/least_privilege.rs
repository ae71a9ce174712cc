//! Least privilege: the policy `fargate-stack policy` prints suffices. The realism layer enforces it
//! at the action level for the CI key (tests/support/README.md, "Action-level IAM"): `up`, `status`,
//! `deploy` and `down` all succeed with exactly its actions, nothing is denied, nothing leaks; with
//! one action removed, `up` fails in one error line naming it and the next full run goes on.

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

    // With one action of it removed, `up` stops in one line naming it (the steps that do not need it
    // go on); the next run with the whole policy goes on from there and finishes.
    let without = |removed: &str| {
        let mut narrowed = policy.clone();
        for statement in narrowed["Statement"].as_array_mut().unwrap() {
            statement["Action"].as_array_mut().unwrap().retain(|a| a != removed);
        }
        narrowed["Statement"].as_array_mut().unwrap().retain(|s| !s["Action"].as_array().unwrap().is_empty());
        narrowed.to_string()
    };
    std::fs::write(&policy_file, without("ec2:CreateSubnet")).unwrap();
    let denied = as_ci(&cli, &["up", "--yes"]);
    assert_ne!(denied.code, 0);
    // (The progress shows each step that failed; the error is one line.)
    let lines: Vec<&str> = denied.stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{}", denied.stderr);
    assert!(lines[0].contains("not allowed to perform ec2:CreateSubnet ("), "{}", lines[0]);
    assert!(lines[0].contains("`fargate-stack policy`"), "{}", lines[0]);
    std::fs::write(&policy_file, &printed.stdout).unwrap();
    let before = realism.calls().len();

    as_ci(&cli, &["up", "--yes"]).ok();
    as_ci(&cli, &["status"]).ok();
    as_ci(&cli, &["deploy", "--image", "nginx:1.28"]).ok();
    as_ci(&cli, &["down", "--yes"]).ok();

    // Once the whole policy was back, nothing was denied.
    let after: Vec<Value> = realism.calls()[before..]
        .iter()
        .filter(|c| {
            matches!(c["error"].as_str(), Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"))
        })
        .cloned()
        .collect();
    assert!(after.is_empty(), "denied with the printed policy: {after:#?}");
    let sdk = runtime().block_on(sdk_at(&emulator.url(), "us-east-1"));
    assert!(runtime().block_on(leftovers(&sdk, STACK)).is_empty(), "down left nothing");
    assert!(actions(&policy).contains("iam:PassRole"));
    eprintln!("least privilege: up, status, deploy, down in {:.1}s", started.elapsed().as_secs_f64());
}
