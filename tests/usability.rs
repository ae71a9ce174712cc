//! The rough edges a first user hits (issue 9): an honest status without a state, a closed pipe,
//! another config than the one last applied, lock files, endpoint/profile/region mistakes,
//! located config errors, a plan that reads like a diff, a retained table, and JSON documents.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn lock_files(cli: &Cli) -> Vec<String> {
    let dir = cli.dir.path().join(".fargate-stack");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_state_status_and_the_plan_say_what_exists() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    std::fs::remove_file(cli.state_path()).unwrap();
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    let doc = status.json();
    assert_eq!(doc["state"], "untracked");
    assert_eq!(doc["tracked"], false);
    assert_eq!(doc["resources"].as_array().unwrap().len(), default_resources());
    assert!(doc["hint"].as_str().unwrap().contains("down --name simple-ecs-dev"), "{doc}");
    let text = cli.run(&["status"]);
    assert!(
        text.stdout.contains("untracked") && text.stdout.contains("run `fargate-stack up --adopt` to adopt"),
        "{}",
        text.stdout
    );
    let plan = cli.run(&["up", "--dry-run"]).ok();
    assert!(plan.stdout.contains(&format!("plan: 0 to create, {} to adopt", default_resources())), "{}", plan.stdout);
    assert!(cli.state().is_none(), "read-only");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    for args in [&["status"][..], &["--output", "json", "status"][..], &["up", "--dry-run"][..]] {
        let mut child = cli.spawn(args);
        // The reader goes away before anything is written: every write meets a closed pipe.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn another_config_than_the_one_last_applied_is_shown_and_must_be_confirmed() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let prod = cli.dir.path().join("prod.toml");
    std::fs::write(&prod, config_with(&[("desired_count", "desired_count = 3")])).unwrap();
    cli.run(&["--config", prod.to_str().unwrap(), "up", "--no-wait"]).ok();
    assert_eq!(cli.state().unwrap()["applied"]["config"], prod.display().to_string());
    // Forgetting --config: the built-in default would scale the service back to 2.
    let plan = cli.run(&["up", "--dry-run"]).ok();
    assert!(plan.stdout.contains("service.desired_count: 3 → 2"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("but {} was applied last", prod.display())), "{}", plan.stdout);
    let refused = cli.run(&["up", "--no-wait"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("without confirmation") && refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(cli.run(&["--config", prod.to_str().unwrap(), "status"]).code, 0, "nothing changed");
    // The same config again needs no confirmation; --yes applies the other one.
    cli.run(&["--config", prod.to_str().unwrap(), "up", "--no-wait"]).ok();
    cli.run(&["up", "--no-wait", "--yes"]).ok();
    assert_eq!(cli.state().unwrap()["applied"]["config"], "(built-in default)");
}

#[test]
fn lock_files_go_when_a_run_ends_and_a_clean_failure_is_not_reported_as_a_crash() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    std::fs::create_dir_all(cli.state_path().parent().unwrap()).unwrap();
    std::fs::write(cli.state_path(), "{not json").unwrap();
    assert_eq!(cli.run(&["up", "--no-wait"]).code, 1);
    assert!(lock_files(&cli).is_empty(), "{:?}", lock_files(&cli));
    std::fs::remove_file(cli.state_path()).unwrap();
    let up = cli.run(&["up", "--no-wait"]).ok();
    assert!(!up.stderr.contains("did not finish"), "{}", up.stderr);
    cli.run(&["status"]).ok();
    Cli::new(&emulator).run(&["down", "--name", "nosuch", "--yes"]).ok();
    cli.run(&["down", "--yes"]).ok();
    assert!(lock_files(&cli).is_empty(), "{:?}", lock_files(&cli));
}

#[test]
fn endpoint_profile_and_region_mistakes_are_named_at_once() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let bad_url = Cli::at("127.0.0.1:5000").run(&["status"]);
    assert_eq!(bad_url.code, 2);
    assert!(
        bad_url.stderr.contains("expected http://HOST[:PORT]") && !bad_url.stderr.contains("credentials"),
        "{}",
        bad_url.stderr
    );
    let started = Instant::now();
    let profile = cli.run(&["--profile", "nosuch", "status"]);
    assert_eq!(profile.code, 1);
    assert!(profile.stderr.contains("AWS profile \"nosuch\" does not exist"), "{}", profile.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A named profile's region applies when neither --region nor the environment gives one.
    std::fs::write(cli.dir.path().join("aws-config"), "[profile team]\nregion = eu-west-2\n").unwrap();
    let out = cli.command(&["--output", "json", "--profile", "team", "status"]).env_remove("AWS_REGION").output();
    let status = Run::from(out.unwrap());
    assert_eq!(status.json()["region"], "eu-west-2", "{}{}", status.stdout, status.stderr);
    let region = cli.run(&["--region", "nowhere-9", "status"]);
    assert_eq!(region.code, 2);
    assert!(region.stderr.contains("expected an AWS region name"), "{}", region.stderr);
}

#[test]
fn a_dead_network_shows_its_retries() {
    // Accepts connections and closes them at once: the SDK retries, and says so.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let cli = Cli::at(&url);
    let mut child = cli.command(&["status"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) && !seen.contains("retrying") {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    });
    let seen = reader.join().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("cannot reach AWS") && seen.contains("retrying, attempt 2 of 10"), "{seen}");
}

#[test]
fn config_errors_name_the_key_the_value_and_the_line() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    // The line is where the key sits in the written config, found rather than typed in.
    let line_of = |text: &str, edited: &str| 1 + text.lines().position(|l| l == edited).unwrap();
    for (edit, needle) in [
        // One format for every kind of error: FILE:LINE: key: message.
        (("cidr", "cidr = \"10.0.0.0/33\""), "network.cidr: \"10.0.0.0/33\": "),
        (("cpu", "cpu = \"256\""), "service.cpu: \"256\": invalid type: string \"256\", expected u32"),
        (("memory", "memory = 4096"), "service.memory: 4096: with cpu 256 Fargate accepts"),
    ] {
        let needle = format!("fargate-stack.toml:{}: {needle}", line_of(&config_with(&[edit]), edit.1));
        cli.write_config(&config_with(&[edit]));
        let run = cli.run(&["status"]);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(&needle), "{needle}: {}", run.stderr);
        let json = cli.run(&["--output", "json", "status"]);
        let doc = json.json();
        assert_eq!((doc["schema_version"].clone(), doc["ok"].clone()), (Value::from(1), Value::from(false)));
        assert_eq!(doc["error"]["kind"], "config");
        assert!(doc["error"]["message"].as_str().unwrap().contains(&needle), "{doc}");
    }
    // The deprecated network.nat_gateways is still read, with a line saying what to write instead;
    // a count that names no mode is refused with both keys named.
    let edit = ("nat", "nat_gateways = 2");
    let line = line_of(&config_with(&[edit]), edit.1);
    cli.write_config(&config_with(&[edit]));
    let run = cli.run(&["status"]);
    let warning = format!("warning: fargate-stack.toml:{line}: network.nat_gateways is deprecated");
    assert!(run.stderr.contains(&warning) && run.stderr.contains("`nat = \"per_az\"`"), "{}", run.stderr);
    cli.write_config(&config_with(&[edit, ("az_count", "az_count = 3")]));
    let run = cli.run(&["status"]);
    assert_eq!(run.code, 1);
    assert!(run
        .stderr
        .contains(&format!("fargate-stack.toml:{line}: network.nat_gateways: 2: has no network.nat mode")));
}

#[test]
fn the_plan_reads_like_a_diff_and_down_lists_what_it_deletes() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let long = format!("APP_ID = \"{}\"", "v".repeat(150));
    cli.write_config(&config_with(&[
        ("image", "image = \"nginx:1.27\""),
        ("desired_count", "desired_count = 3"),
        ("APP_ID", &long),
    ]));
    // A row with a detail (the log group, deleted behind the tool's back) beside a long change line.
    runtime().block_on(async {
        let sdk = emulator.sdk().await;
        sdk.logs.delete_log_group().log_group_name(format!("/ecs/{STACK}")).send().await.unwrap();
    });
    let plan = cli.run(&["up", "--dry-run"]).ok();
    // A long change line does not pad the other rows out to its width.
    let padded: Vec<&str> = plan.stdout.lines().filter(|l| l.contains(&" ".repeat(40))).collect();
    assert!(padded.is_empty(), "{padded:#?}");
    for needle in [
        "service.image: nginx:latest → nginx:1.27",
        "service.desired_count: 2 → 3",
        "rollout: the service rolls onto a new task definition revision (service.image: nginx:latest → nginx:1.27;",
        "plan: 1 to create, 0 to adopt, 2 to update",
    ] {
        assert!(plan.stdout.contains(needle), "{needle}: {}", plan.stdout);
    }
    let json = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(json["counts"]["update"], 2, "{json}");
    let service = json["resources"].as_array().unwrap().iter().find(|r| r["name"] == "service").unwrap().clone();
    assert_eq!(service["changes"][0], serde_json::json!({"field": "service.desired_count", "from": "2", "to": "3"}));
    // Off a terminal `down` refuses, and says what it would have deleted (all but the log group).
    let down = cli.run(&["down"]);
    assert_eq!(down.code, 1);
    assert!(
        down.stderr.contains("pass --yes")
            && down.stderr.contains(&format!("{} resources of stack simple-ecs-dev", default_resources() - 1)),
        "{}",
        down.stderr
    );
    assert!(down.stderr.contains("load-balancer arn:"), "{}", down.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_table_is_a_finished_state() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    cli.run(&["up", "--no-wait"]).ok();
    let item = [
        ("id".to_string(), aws_sdk_dynamodb::types::AttributeValue::S("1".into())),
        ("created_at".to_string(), aws_sdk_dynamodb::types::AttributeValue::N("1".into())),
    ];
    sdk.dynamodb.put_item().table_name("simple-ecs-dev-messages").set_item(Some(item.into())).send().await.unwrap();
    let down = cli.run(&["--output", "json", "down", "--yes", "--retain-table"]).ok().json();
    assert_eq!(down["state"], "retained");
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    assert_eq!(doc["state"], "retained");
    assert_eq!(doc["resources"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["resources"][0]["status"], "ok");
    let text = cli.run(&["status"]).ok();
    assert!(
        text.stdout.contains("retained") && text.stdout.contains("kept by `down --retain-table`"),
        "{}",
        text.stdout
    );
}

#[test]
fn every_json_document_has_a_schema_version_and_a_state() {
    let emulator = Emulator::start();
    let cli = Cli::new(&emulator);
    let up = cli.run(&["--output", "json", "up", "--no-wait"]).ok();
    let lines: Vec<Value> = up.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 20, "progress events and a result");
    for doc in &lines {
        assert_eq!(doc["schema_version"], 1, "{doc}");
    }
    let result = lines.last().unwrap();
    assert_eq!((result["command"].as_str(), result["state"].as_str()), (Some("up"), Some("deploying")));
    let events: Vec<&str> = lines.iter().filter_map(|d| d["event"].as_str()).collect();
    assert!(events.contains(&"resource") && events.contains(&"note") && events.contains(&"result"), "{events:?}");
    for phase in lines.iter().filter(|d| d["event"] == "resource").filter_map(|d| d["phase"].as_str()) {
        assert!(!phase.is_empty());
    }
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!((plan["schema_version"].clone(), plan["command"].clone()), (Value::from(1), Value::from("plan")));
    let status = cli.run(&["--output", "json", "status"]).json();
    assert_eq!((status["command"].as_str(), status["state"].as_str()), (Some("status"), Some("deploying")));
    let down = cli.run(&["--output", "json", "down", "--yes"]).ok().json();
    assert_eq!((down["command"].as_str(), down["state"].as_str()), (Some("down"), Some("not_deployed")));
}

/// `init` writes a config that `up --dry-run` takes as it is (with a domain too, given its zone),
/// and never writes over a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_the_plan_takes_as_it_is_and_never_overwrites() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let cli = Cli::new(&emulator);
    let written = cli.run(&["init", "--name", "shop-init", "--image", "nginx:1.27"]).ok();
    assert!(written.stdout.contains("wrote fargate-stack.toml (stack shop-init)"), "{}", written.stdout);
    let path = cli.dir.path().join("fargate-stack.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    let config = fargate_stack::config::Config::parse("t", &text).unwrap();
    let rows = plan["resources"].as_array().unwrap();
    assert_eq!(rows.len(), resources_of(&config), "{plan}");
    // Everything made new; the VPC's default group only has its rules removed.
    assert!(rows.iter().all(|r| r["action"] == "create" || r["name"] == "default-security-group"), "{plan}");
    assert_eq!(plan["stack"], "shop-init", "{plan}");

    std::fs::write(&path, "# mine\n").unwrap();
    let refused = cli.run(&["init", "--name", "other"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("fargate-stack.toml exists: not overwritten"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let bad = cli.run(&["init", "--config", "x.toml", "--domain", "API.example.com"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("use lower case"), "{}", bad.stderr);

    // --config names where it goes; with --domain, [https] is on and the plan finds the zone.
    sdk.route53.create_hosted_zone().name("example.com").caller_reference("init").send().await.unwrap();
    cli.run(&["--config", "web.toml", "init", "--name", "web", "--domain", "api.example.com"]).ok();
    let plan = cli.run(&["--config", "web.toml", "--output", "json", "up", "--dry-run"]).ok().json();
    let keys: Vec<&str> = plan["resources"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(keys.iter().any(|k| k.contains("certificate")), "{keys:?}");
}
