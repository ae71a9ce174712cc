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

/// Run `args` for at most `limit`; `None` if it was still running (then it is killed).
fn run_at_most(cli: &Cli, args: &[&str], limit: Duration) -> Option<Run> {
    let mut child =
        cli.command(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Some(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_lock_or_the_state_is_refused_and_the_file_it_names_is_untouched() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    // Refused before any AWS call: an endpoint that never answers would only hang a run that got further.
    let (_listener, url) = silent_endpoint();
    let cli = Cli::at(&url);
    let dir = cli.state_path().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let victim = cli.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let lock = dir.join(format!("{STACK}.json.lock"));
    let refused = |what: &str, needle: &str| {
        let run = run_at_most(&cli, &["up"], Duration::from_secs(10)).unwrap_or_else(|| panic!("{what}: not refused"));
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{what}: one line: {line}");
        assert!(line.contains("refusing to use") && line.contains(needle), "{what}: {line}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "{what}: the victim is untouched");
    };

    symlink(&victim, &lock).unwrap();
    let needle =
        format!(".fargate-stack/{STACK}.json.lock: the lock file is a symbolic link (to {})", victim.display());
    refused("a link at the lock", &needle);
    std::fs::remove_file(&lock).unwrap();
    // A link to a file that does not exist yet is refused too (it would be created through it).
    symlink(cli.dir.path().join("created-through-the-link"), &lock).unwrap();
    refused("a dangling link at the lock", "is a symbolic link");
    assert!(!cli.dir.path().join("created-through-the-link").exists());
    std::fs::remove_file(&lock).unwrap();
    // A hard link is the victim itself under another name.
    std::fs::hard_link(&victim, &lock).unwrap();
    refused("a hard link at the lock", "has 2 hard links");
    std::fs::remove_file(&lock).unwrap();
    symlink(&victim, cli.state_path()).unwrap();
    refused("a link at the state", "the state file is a symbolic link");
    std::fs::remove_file(cli.state_path()).unwrap();
    // A directory everyone may write to: anyone could plant the link.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused("a world-writable directory", "writable by everyone (mode 777)");
    assert!(!lock.exists(), "nothing created there");
    // With the sticky bit (as /tmp), others cannot replace what is ours: the run goes ahead.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(run_at_most(&cli, &["up"], Duration::from_secs(3)).is_none(), "a sticky directory is fine");
}
