//! A run killed at any moment leaves a state file that the next `up` or `down` continues from:
//! nothing is created twice and nothing leaks.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Resources recorded in the state file right now (0 if it is absent or mid-rename).
fn recorded(cli: &Cli) -> usize {
    cli.state().and_then(|s| s["resources"].as_object().map(|r| r.len())).unwrap_or(0)
}

/// Start `args`, SIGKILL it once the state records `at` resources (or `down` has removed down to
/// `at`), and return how many were recorded at the kill.
fn kill_when(cli: &Cli, args: &[&str], reached: impl Fn(usize) -> bool) -> usize {
    let mut child =
        cli.command(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    loop {
        let n = recorded(cli);
        if reached(n) {
            child.kill().unwrap();
            child.wait().unwrap();
            return n;
        }
        if child.try_wait().unwrap().is_some() {
            return recorded(cli); // finished before the kill point
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
}

async fn assert_exactly_one_stack(sdk: &Sdk) {
    let f = || ec2_tag_filter(STACK);
    assert_eq!(sdk.ec2.describe_vpcs().filters(f()).send().await.unwrap().vpcs().len(), 1, "VPCs");
    assert_eq!(sdk.ec2.describe_subnets().filters(f()).send().await.unwrap().subnets().len(), 4, "subnets");
    assert_eq!(
        sdk.ec2.describe_internet_gateways().filters(f()).send().await.unwrap().internet_gateways().len(),
        1,
        "IGWs"
    );
    assert_eq!(
        sdk.ec2.describe_route_tables().filters(f()).send().await.unwrap().route_tables().len(),
        2,
        "route tables"
    );
    assert_eq!(sdk.ec2.describe_security_groups().filters(f()).send().await.unwrap().security_groups().len(), 2, "SGs");
    assert_eq!(sdk.ec2.describe_addresses().filters(f()).send().await.unwrap().addresses().len(), 1, "EIPs");
    let nats = sdk.ec2.describe_nat_gateways().filter(f()).send().await.unwrap();
    let live = nats.nat_gateways().iter().filter(|n| n.state().map(|s| s.as_str()) != Some("deleted")).count();
    assert_eq!(live, 1, "NAT gateways");
    let lbs = sdk.elb.describe_load_balancers().send().await.unwrap();
    assert_eq!(lbs.load_balancers().len(), 1, "load balancers");
    let listeners = sdk
        .elb
        .describe_listeners()
        .load_balancer_arn(lbs.load_balancers()[0].load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1, "listeners");
    assert_eq!(sdk.elb.describe_target_groups().send().await.unwrap().target_groups().len(), 1, "target groups");
    let defs = sdk.ecs.list_task_definitions().family_prefix("simple-ecs-dev-server").send().await.unwrap();
    assert_eq!(defs.task_definition_arns().len(), 1, "task definition revisions");
    let services = sdk.ecs.list_services().cluster("simple-ecs-dev-cluster").send().await.unwrap();
    assert_eq!(services.service_arns().len(), 1, "services");
    assert_eq!(sdk.iam.list_roles().send().await.unwrap().roles().len(), 2, "roles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_killed_at_any_point_resumes_without_duplicates_or_leaks() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    // Warm moto up so kill points land inside the run, not in its first-request start-up.
    Cli::new(&emulator).run(&["status"]);
    let mut killed_at = vec![];
    for at in [1, 3, 6, 9, 12, 15, 18, 21] {
        emulator.reset();
        let cli = Cli::new(&emulator);
        killed_at.push(kill_when(&cli, &["up", "--no-wait"], |n| n >= at));
        cli.run(&["up", "--no-wait"]).ok();
        assert_exactly_one_stack(&sdk).await;
        assert_eq!(recorded(&cli), 23);
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, STACK).await;
        assert!(left.is_empty(), "killed at {at}: left {left:#?}");
    }
    // The kills happened at distinct points, not all after the run ended.
    killed_at.dedup();
    assert!(killed_at.len() >= 5, "kill points {killed_at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_killed_at_any_point_finishes_on_the_next_down() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    for at in [20, 15, 10, 5, 1] {
        emulator.reset();
        let cli = Cli::new(&emulator);
        cli.run(&["up", "--no-wait"]).ok();
        kill_when(&cli, &["down", "--yes"], |n| n <= at);
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, STACK).await;
        assert!(left.is_empty(), "killed at {at}: left {left:#?}");
        assert!(cli.state().is_none());
    }
}
