//! Safe by default: locking, refusing bad input before any change, actionable credential errors.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

/// An endpoint that accepts connections and never answers: the first run hangs holding its lock.
fn silent_endpoint() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn a_second_run_on_the_same_state_fails_at_once_naming_the_holder() {
    let (_listener, url) = silent_endpoint();
    let cli = Cli::at(&url);
    let mut first = cli.command(&["up"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    let lock = cli.state_path().with_file_name(format!("{STACK}.json.lock"));
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map(|s| s.is_empty()).unwrap_or(true) {
        assert!(started.elapsed() < Duration::from_secs(20), "first run never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second_started = Instant::now();
    let second = cli.run(&["up"]);
    assert_eq!(second.code, 1);
    assert!(second_started.elapsed() < Duration::from_secs(5), "fails at once");
    let pid = first.id();
    assert!(second.stderr.contains("locked by another fargate-stack run"), "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {pid} on ")) && second.stderr.contains(" since 20"),
        "{}",
        second.stderr
    );
    // A killed run leaves no lock that blocks the next one (the OS releases it).
    first.kill().unwrap();
    first.wait().unwrap();
    let mut third = cli.command(&["up"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    third.kill().unwrap();
    let mut err = String::new();
    third.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    third.wait().unwrap();
    assert!(!err.contains("locked"), "{err}");
    // ...and the next run says the killed one did not finish.
    assert!(err.contains(&format!("(pid {pid} on ")) && err.contains("did not finish"), "{err}");
}

#[test]
fn more_zones_than_the_region_has_is_refused_before_any_change() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    cli.write_config(&config_with(&[("az_count", "az_count = 3")]));
    // moto's us-west-1 has two zones.
    let run = cli.run(&["--region", "us-west-1", "up", "--no-wait"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("network.az_count = 3 but region us-west-1 has 2 available zones"), "{}", run.stderr);
    assert!(cli.state().is_none_or(|s| s["resources"].as_object().unwrap().is_empty()), "nothing recorded");
    let rt = runtime();
    rt.block_on(async {
        let sdk = emulator.sdk().await;
        let west = aws_sdk_ec2::Client::from_conf(
            sdk.ec2.config().to_builder().region(aws_config::Region::new("us-west-1")).build(),
        );
        let vpcs = west.describe_vpcs().filters(ec2_tag_filter(STACK)).send().await.unwrap();
        assert!(vpcs.vpcs().is_empty(), "no VPC created");
    });
}

#[test]
fn missing_credentials_and_unreachable_endpoints_get_a_short_actionable_message() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let no_creds =
        cli.command(&["up"]).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").output().unwrap();
    let stderr = String::from_utf8_lossy(&no_creds.stderr);
    assert_eq!(no_creds.status.code(), Some(1));
    assert!(stderr.contains("no AWS credentials found") && stderr.contains("aws sso login"), "{stderr}");
    assert!(stderr.trim().lines().count() <= 2, "short: {stderr}");

    // -v adds the SDK's details.
    let verbose = cli
        .command(&["-v", "up"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&verbose.stderr).contains("details:"), "{verbose:?}");

    // A closed port fails at once (not after the SDK's 25-30 s of retries), naming the endpoint.
    let closed = Cli::at("http://127.0.0.1:1");
    let started = Instant::now();
    let run = closed.run(&["up"]);
    assert_eq!(run.code, 1);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("cannot connect to the AWS endpoint http://127.0.0.1:1"), "{}", run.stderr);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(!run.stderr.contains("DispatchFailure {"), "no SDK debug dump: {}", run.stderr);
}

#[test]
fn state_files_that_cannot_be_trusted_are_refused() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    std::fs::create_dir_all(cli.state_path().parent().unwrap()).unwrap();
    for (content, needle) in [
        ("{not json", "is not valid JSON"),
        (
            r#"{"schema_version": 7, "stack": "simple-ecs-dev", "region": "us-east-1", "resources": {}}"#,
            "newer than this fargate-stack",
        ),
        (
            r#"{"schema_version": 1, "stack": "other", "region": "us-east-1", "resources": {}}"#,
            "belongs to stack \"other\"",
        ),
        (r#"{"schema_version": 1, "stack": "simple-ecs-dev", "region": "eu-west-1", "resources": {}}"#, "in eu-west-1"),
    ] {
        std::fs::write(cli.state_path(), content).unwrap();
        for cmd in [&["up", "--no-wait"][..], &["status"][..], &["down", "--yes"][..]] {
            let run = cli.run(cmd);
            assert_eq!(run.code, 1, "{cmd:?} with {content}");
            assert!(run.stderr.contains(needle), "{cmd:?}: {}", run.stderr);
        }
    }
}
