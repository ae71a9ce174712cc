//! The state in S3, shared by a team: runs from different working directories, locking with S3
//! conditional writes, a killed run's lock and `unlock`, `list`, `state init`, `state push` /
//! `state pull`, and bad input.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use fargate_stack::state::s3::{self, Bucket};
use fargate_stack::state::{Backend, Recorded, S3Backend, StateError};
use serde_json::{json, Value};

const BUCKET: &str = "team-state";
const LOCATION: &str = "s3://team-state/stacks/";
const KEY: &str = "stacks/simple-ecs-dev.json";
const LOCK: &str = "stacks/simple-ecs-dev.json.lock";

/// Start `args` and SIGKILL it once the S3 state records at least `at` resources; the number
/// recorded then.
async fn kill_when_recorded(sdk: &Sdk, cli: &Cli, args: &[&str], at: usize) -> (usize, u32) {
    // No $USER, as in many CI containers: the lock names the uid's user all the same.
    let mut command = cli.command(args);
    command.env_remove("USER").env_remove("LOGNAME").env_remove("USERNAME");
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let started = Instant::now();
    loop {
        let n = s3_recorded(sdk, BUCKET, KEY).await;
        if n >= at {
            child.kill().unwrap();
            child.wait().unwrap();
            return (n, pid);
        }
        assert!(child.try_wait().unwrap().is_none(), "finished before {at} resources were recorded");
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The lock ID the error of a run that found the state locked names.
fn lock_id_in(stderr: &str) -> String {
    stderr.split("(lock ID ").nth(1).and_then(|rest| rest.split(')').next()).expect("a lock ID").to_string()
}

fn one_line(run: &Run) -> &str {
    let lines: Vec<&str> = run.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "one clear line, got:\n{}", run.stderr);
    lines[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_ups_from_two_directories_one_wins_at_once_and_down_runs_from_a_third() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    // AWS's waits (scaled) make the winner's `up` last seconds: the other run meets its lock.
    let options = RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let cli = Cli::with_state(&realism.url(), LOCATION);
            std::thread::spawn(move || {
                let started = Instant::now();
                let run = cli.run(&["up", "--no-wait"]);
                (run, started.elapsed(), cli)
            })
        })
        .collect();
    let mut runs: Vec<(Run, Duration, Cli)> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    runs.sort_by_key(|(run, _, _)| run.code);
    let [(won, won_in, _), (lost, lost_in, loser)] = &runs[..] else { unreachable!() };
    assert_eq!(won.code, 0, "{}", won.stderr);
    assert_eq!(lost.code, 1, "exactly one run wins: {}", lost.stderr);
    // At once: without waiting for the winner (absolute times mean little on a loaded machine).
    assert!(lost_in < won_in, "fails at once: {lost_in:?} vs {won_in:?}");
    let line = one_line(lost);
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    assert!(
        line.contains(&format!("state {LOCATION}simple-ecs-dev.json is locked by another fargate-stack run: up by "))
    );
    assert!(line.contains(&format!(" on {host} (pid ")) && line.contains(" since 20"), "{line}");
    assert!(line.contains("(lock ID ") && line.contains(" unlock "), "{line}");
    assert_exactly_one_stack(&sdk).await;

    // Group commit: fewer state writes than resources recorded.
    let calls = realism.calls();
    let puts = calls.iter().filter(|c| c["action"] == "PutObject" && c["error"].is_null()).count();
    let refused = calls.iter().filter(|c| c["action"] == "PutObject" && c["error"] == "PreconditionFailed").count();
    let recorded = s3_recorded(&sdk, BUCKET, KEY).await;
    assert_eq!(recorded, default_resources());
    assert_eq!(refused, 1, "the losing run's lock attempt");
    eprintln!(
        "up with the state in S3: {puts} PutObject calls (1 lock + {} state writes) for {recorded} resources",
        puts - 1
    );
    assert!(puts - 1 < recorded, "{puts} PUTs: the executor's simultaneous finishes share writes");

    // The loser's directory sees the winner's stack; `status` takes no lock.
    let status = loser.run(&["--output", "json", "status"]);
    let doc = status.json();
    assert_eq!(
        (doc["tracked"].as_bool(), doc["state_file"].as_str()),
        (Some(true), Some("s3://team-state/stacks/simple-ecs-dev.json"))
    );

    // `down` from a directory that never ran `up`.
    let elsewhere = Cli::with_state(&realism.url(), LOCATION);
    elsewhere.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty());
    assert!(s3_json(&sdk, BUCKET, KEY).await.is_none(), "the state object is deleted with the stack");
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_none(), "no lock left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_up_keeps_its_lock_and_another_directory_resumes_after_unlock() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    // Warm moto up so the kill lands inside the run.
    Cli::with_state(&emulator.url(), LOCATION).run(&["status"]);
    let first = Cli::with_state(&emulator.url(), LOCATION);
    let (at_kill, pid) = kill_when_recorded(&sdk, &first, &["up", "--no-wait"], 8).await;

    // What the run wrote up to the kill is intact, and its lock names it.
    let state = s3_json(&sdk, BUCKET, KEY).await.expect("state written");
    assert!(state["resources"].as_object().unwrap().len() >= at_kill.min(8), "{state}");
    let lock = s3_json(&sdk, BUCKET, LOCK).await.expect("a killed run keeps its lock");
    assert_eq!((lock["pid"].as_u64(), lock["command"].as_str()), (Some(pid as u64), Some("up")));
    for field in ["lock_id", "holder", "host", "started"] {
        assert!(lock[field].as_str().is_some_and(|v| !v.is_empty()), "{field}: {lock}");
    }
    let me = std::process::Command::new("id").arg("-un").output().unwrap();
    assert_eq!(lock["holder"].as_str(), Some(String::from_utf8_lossy(&me.stdout).trim()), "the uid's name: {lock}");
    let id = lock["lock_id"].as_str().unwrap().to_string();

    let second = Cli::with_state(&emulator.url(), LOCATION);
    let started = Instant::now();
    let blocked = second.run(&["up", "--no-wait"]);
    assert_eq!(blocked.code, 1);
    assert!(started.elapsed() < Duration::from_secs(20), "fails at once, without waiting for the holder");
    let line = one_line(&blocked);
    assert!(line.contains(&format!("(pid {pid})")) && line.contains(&format!("(lock ID {id})")), "{line}");
    assert!(line.contains(&format!("`fargate-stack --state s3://{BUCKET}/{KEY} unlock {id}`")), "{line}");
    assert_eq!(lock_id_in(&blocked.stderr), id);
    // A dry run reads past the lock.
    let plan = second.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert!(plan["counts"]["create"].as_u64().unwrap() > 0, "{plan}");
    // `status` reads past the lock, and shows it.
    let status = second.run(&["--output", "json", "status"]).json();
    assert_eq!((status["tracked"].as_bool(), status["lock"]["lock_id"].as_str()), (Some(true), Some(id.as_str())));
    let text = second.run(&["status"]);
    assert!(
        text.stdout.contains("locked by up by ") && text.stdout.contains(&format!("`unlock {id}`")),
        "{}",
        text.stdout
    );

    // Only the lock with this ID is removed, after showing who held it.
    let wrong = second.run(&["unlock", "0000-not-it"]);
    assert_eq!(wrong.code, 1);
    assert!(one_line(&wrong).contains(&format!("has ID {id}")) && wrong.stderr.contains("nothing was removed"));
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_some());
    let unlocked = second.run(&["unlock", &id]).ok();
    assert!(unlocked.stdout.contains(&format!("removed lock {id}")), "{}", unlocked.stdout);
    assert!(unlocked.stdout.contains("up by ") && unlocked.stdout.contains(&format!("(pid {pid})")));
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_none());
    let again = second.run(&["--output", "json", "unlock", &id]);
    assert_eq!(again.code, 1);
    assert!(again.json()["error"]["message"].as_str().unwrap().contains("is not locked"), "{}", again.stdout);

    // The next run resumes from the state the killed one wrote: nothing twice.
    second.run(&["up", "--no-wait"]).ok();
    assert_exactly_one_stack(&sdk).await;
    assert_eq!(s3_recorded(&sdk, BUCKET, KEY).await, default_resources());
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_none(), "a run that ends removes its lock");

    Cli::with_state(&emulator.url(), LOCATION).run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty());
    // A `down` stopped between its last write (nothing recorded) and deleting the state: the next
    // `down` removes the empty state.
    let empty = json!({"schema_version": 1, "stack": STACK, "region": "us-east-1", "resources": {}}).to_string();
    sdk.s3.put_object().bucket(BUCKET).key(KEY).body(empty.into_bytes().into()).send().await.unwrap();
    let down = second.run(&["down", "--yes"]).ok();
    assert!(down.stdout.contains("recorded nothing and was removed"), "{}", down.stdout);
    assert!(s3_json(&sdk, BUCKET, KEY).await.is_none() && s3_json(&sdk, BUCKET, LOCK).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_lost_its_lock_cannot_overwrite_a_newer_state() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    // moto's default account, as GetCallerIdentity names it.
    let bucket = Bucket::new(&sdk.s3, BUCKET, "us-east-1", "123456789012");
    let rec = |id: &str| Recorded { kind: "ec2:vpc".into(), id: id.into(), attrs: Default::default() };

    let (first, mut mine) = S3Backend::open(bucket.clone(), KEY, STACK, "up").await.unwrap();
    assert!(!first.exists());
    mine.resources.insert("vpc".into(), rec("vpc-1"));
    first.save(&mine).await.unwrap();
    // Someone unlocks while the first run still goes on, and a second run takes over.
    s3::unlock(&bucket, KEY, &first.lock_info().unwrap().lock_id).await.unwrap();
    let (second, theirs) = S3Backend::open(bucket.clone(), KEY, STACK, "down").await.unwrap();
    assert_eq!(theirs, mine, "the second run reads what the first wrote");
    let mut newer = theirs.clone();
    newer.resources.remove("vpc");
    newer.resources.insert("subnet-public-1".into(), rec("subnet-1"));
    second.save(&newer).await.unwrap();

    // The first run's ETag is stale: its write and its delete are refused, nothing is lost.
    mine.resources.insert("internet-gateway".into(), rec("igw-1"));
    let err = first.save(&mine).await.unwrap_err();
    assert!(matches!(err, StateError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("changed by someone else") && err.to_string().contains("without overwriting"));
    assert!(matches!(first.remove().await, Err(StateError::Conflict { .. })));
    assert_eq!(bucket.read_state(KEY).await.unwrap().unwrap().0, newer);
    // Its end does not remove the second run's lock.
    first.release().await;
    let (lock, _) = bucket.read_lock(KEY).await.unwrap().expect("still locked");
    assert_eq!(lock.unwrap().lock_id, second.lock_info().unwrap().lock_id);

    // A run that finds no state creates it only if nobody did meanwhile (If-None-Match: *).
    let other_key = "stacks/other.json";
    let (late, fresh) = S3Backend::open(bucket.clone(), other_key, "other", "up").await.unwrap();
    let raced =
        serde_json::to_vec(&json!({"schema_version": 1, "stack": "other", "region": "us-east-1", "resources": {}}));
    sdk.s3.put_object().bucket(BUCKET).key(other_key).body(raced.unwrap().into()).send().await.unwrap();
    assert!(matches!(late.save(&fresh).await, Err(StateError::Conflict { .. })));
    late.release().await;
    second.remove().await.unwrap();
    second.release().await;
    assert!(bucket.read_lock(KEY).await.unwrap().is_none() && bucket.read_state(KEY).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_finds_every_stack_by_its_tag_with_its_status() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    let options = RealismOptions { time_scale: 0.01, config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let via = sdk_at(&realism.url(), "us-east-1").await;
    // Three stacks whose names are prefixes of each other, each with its state at its own key.
    let stack = |name: &str| {
        let cli = Cli::with_state(&realism.url(), LOCATION);
        cli.write_config(&config_with(&[("name", &format!("name = \"{name}\""))]));
        cli
    };
    let (app, app2, app20) = (stack("app"), stack("app-2"), stack("app-20"));
    let ups: Vec<_> = [(app, "up"), (app2, "--no-wait"), (app20, "--no-wait")]
        .into_iter()
        .map(|(cli, flag)| {
            std::thread::spawn(move || {
                let args: &[&str] = if flag == "up" { &["up"] } else { &["up", "--no-wait"] };
                cli.run(args).ok();
                cli
            })
        })
        .collect();
    let clis: Vec<Cli> = ups.into_iter().map(|t| t.join().unwrap()).collect();
    // app-2 loses its log group: partial.
    via.logs.delete_log_group().log_group_name("/ecs/app-2").send().await.unwrap();
    // app-20's tasks lose their way out and it is asked for a third: it keeps deploying.
    let tables = via
        .ec2
        .describe_route_tables()
        .filters(ec2_tag_filter("app-20"))
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:fargate-stack:resource")
                .values("route-table-private-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let private = tables.route_tables()[0].route_table_id().unwrap();
    via.ec2.delete_route().route_table_id(private).destination_cidr_block("0.0.0.0/0").send().await.unwrap();
    via.ecs.update_service().cluster("app-20-cluster").service("app-20-service").desired_count(3).send().await.unwrap();
    // Something tagged with a value that is no stack name is left out, with a warning.
    let stray = via.ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    let stray_id = stray.vpc().unwrap().vpc_id().unwrap();
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    via.ec2
        .create_tags()
        .resources(stray_id)
        .tags(tag(STACK_TAG, "Not A Stack"))
        .tags(tag("fargate-stack:resource", "vpc"))
        .send()
        .await
        .unwrap();

    // From a directory with no state and another stack's config.
    let anywhere = Cli::at(&realism.url());
    let listed = anywhere.run(&["--output", "json", "list"]).ok();
    let doc = listed.json();
    let stacks = doc["stacks"].as_array().unwrap();
    let names: Vec<&str> = stacks.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "app-2", "app-20"], "{doc:#}");
    let by = |name: &str| stacks.iter().find(|s| s["name"] == name).unwrap().clone();
    let (up, partial, deploying) = (by("app"), by("app-2"), by("app-20"));
    let all = default_resources() as u64;
    assert_eq!(
        (up["status"].as_str(), up["resources"].as_u64(), up["expected"].as_u64()),
        (Some("up"), Some(all), Some(all))
    );
    assert!(up["url"].as_str().unwrap().starts_with("http://app-alb"), "{up}");
    let partial_row = (partial["status"].as_str(), partial["resources"].as_u64());
    assert_eq!(partial_row, (Some("partial"), Some(all - 1)), "{partial}");
    assert!(partial["detail"].as_str().unwrap().contains("log-group"), "{partial}");
    assert_eq!(deploying["status"].as_str(), Some("deploying"), "{deploying}");
    assert!(deploying["detail"].as_str().unwrap().contains("running"), "{deploying}");
    for s in stacks {
        assert_eq!(s["drift_checked"], false, "no stack here is the config's");
        let created = chrono::DateTime::parse_from_rfc3339(s["created"].as_str().unwrap()).unwrap();
        let age = chrono::Utc::now().signed_duration_since(created);
        assert!(age.num_seconds() >= 0 && age.num_seconds() < 300, "{s}");
    }
    assert!(doc["warnings"].to_string().contains("Not A Stack"), "{doc}");

    // From app-20's own directory its drift is judged: the missing route and the count.
    let own = clis[2].run(&["--output", "json", "list"]).ok();
    let doc = own.json();
    let app20 = doc["stacks"].as_array().unwrap().iter().find(|s| s["name"] == "app-20").unwrap().clone();
    assert_eq!((app20["status"].as_str(), app20["drift_checked"].as_bool()), (Some("drifted"), Some(true)), "{app20}");
    let text = clis[2].run(&["list"]).ok();
    assert!(text.stdout.lines().next().unwrap().starts_with("STACK"), "{}", text.stdout);
    assert!(text.stdout.contains("app-2 ") && text.stdout.contains("partial"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_locations_are_one_clear_line_and_change_nothing() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    let options = RealismOptions { config: json!({"s3_denied_buckets": ["theirs-state"]}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let eu = sdk_at(&realism.url(), "eu-west-1").await;
    eu.s3
        .create_bucket()
        .bucket("eu-state")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A bucket of the team's name that another account owns (deleted and made again there): moto
    // serves it to every account, as S3 does a bucket whose policy lets anyone in.
    let in_another_account = |r: &mut aws_smithy_runtime_api::client::orchestrator::HttpRequest| {
        r.headers_mut().insert("x-moto-account-id", "111111111111");
    };
    sdk.s3.create_bucket().bucket("moved-state").customize().mutate_request(in_another_account).send().await.unwrap();
    // A state object of another stack where this stack's would be.
    let foreign = json!({"schema_version": 1, "stack": "other", "region": "us-east-1", "resources": {}}).to_string();
    sdk.s3
        .put_object()
        .bucket(BUCKET)
        .key("stacks/foreign.json")
        .body(foreign.clone().into_bytes().into())
        .send()
        .await
        .unwrap();

    let cases = [
        ("s3://no-such-bucket/stacks/", "S3 bucket no-such-bucket does not exist"),
        ("s3://theirs-state/stacks/", "no permission to"),
        ("s3://eu-state/stacks/", "S3 bucket eu-state is in eu-west-1, but this run is in us-east-1"),
        ("s3://Team_State/stacks/", "invalid state location \"s3://Team_State/stacks/\""),
        ("s3:/team-state/x.json", "expected s3://BUCKET/KEY"),
        ("s3://team-state/stacks/foreign.json", "belongs to stack \"other\""),
        ("s3://moved-state/stacks/", "S3 bucket moved-state does not belong to account 123456789012"),
    ];
    for (location, needle) in cases {
        let cli = Cli::with_state(&realism.url(), location);
        for args in [&["up", "--no-wait"][..], &["status"][..], &["down", "--yes"][..], &["up", "--dry-run"][..]] {
            let run = cli.run(args);
            assert_eq!(run.code, 1, "{location} {args:?}: {}", run.stdout);
            let line = one_line(&run);
            assert!(line.contains(needle), "{location} {args:?}: {line}");
        }
    }
    // The same checks for --state and the config's `state`.
    let cli = Cli::at(&realism.url());
    let run = cli.run(&["--state", "gs://team-state/x.json", "status"]);
    assert!(one_line(&run).contains("gs:// is not supported"), "{}", run.stderr);
    cli.write_config(&config_with(&[("name", "name = \"simple-ecs-dev\"\nstate = \"s3://team-state//x.json\"")]));
    let run = cli.run(&["status"]);
    assert!(one_line(&run).contains(": state: \"s3://team-state//x.json\": "), "{}", run.stderr);
    assert!(one_line(&Cli::at(&realism.url()).run(&["unlock", "x"])).contains("is a local file"));
    // `state init` does not take the other account's bucket either; naming its owner is how to use
    // a bucket of another account on purpose.
    let moved = Cli::at(&realism.url());
    assert!(one_line(&moved.run(&["state", "init", "s3://moved-state"])).contains("does not belong to account"));
    let on_purpose = moved.run(&["--state", "s3://moved-state/", "--state-bucket-owner", "111111111111", "status"]);
    assert!(!on_purpose.stderr.contains("does not belong") && on_purpose.code != 1, "{}", on_purpose.stderr);
    let bad_owner = moved.run(&["--state-bucket-owner", "1234", "status"]);
    assert!(bad_owner.code == 2 && bad_owner.stderr.contains("12 digits"), "{}", bad_owner.stderr);
    // The permission message names what is missing.
    let denied = Cli::with_state(&realism.url(), "s3://theirs-state/stacks/").run(&["up", "--no-wait"]);
    assert!(denied.stderr.contains("AccessDenied") && denied.stderr.contains("s3:PutObject"), "{}", denied.stderr);
    // From a regional endpoint of the wrong region S3 says AuthorizationHeaderMalformed instead.
    let malformed = Realism::start(
        &emulator,
        RealismOptions { config: json!({"s3_region_mismatch": "malformed"}), ..Default::default() },
    );
    let run = Cli::with_state(&malformed.url(), "s3://eu-state/stacks/").run(&["status"]);
    assert!(one_line(&run).contains("is in eu-west-1, but this run is in us-east-1"), "{}", run.stderr);

    // Nothing was made or changed: no VPC, the foreign state as it was, no lock anywhere.
    assert!(sdk.ec2.describe_vpcs().filters(ec2_tag_filter(STACK)).send().await.unwrap().vpcs().is_empty());
    assert_eq!(
        s3_json(&sdk, BUCKET, "stacks/foreign.json").await.unwrap(),
        serde_json::from_str::<Value>(&foreign).unwrap()
    );
    let keys = sdk.s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<&str> = keys.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["stacks/foreign.json"], "a refused run leaves no lock behind");
    let theirs = sdk.s3.list_objects_v2().bucket("moved-state").send().await.unwrap();
    assert!(theirs.contents().is_empty(), "nothing went to the other account's bucket: {theirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_init_makes_a_state_bucket_and_only_checks_one_that_exists() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let realism = Realism::start(&emulator, RealismOptions::default());
    let via = sdk_at(&realism.url(), "us-east-1").await;
    let cli = Cli::at(&realism.url());

    let made = cli.run(&["state", "init", "s3://new-state/stacks"]).ok();
    assert!(made.stdout.starts_with("created bucket new-state in us-east-1"), "{}", made.stdout);
    assert!(made.stdout.contains("--state s3://new-state/stacks/"), "{}", made.stdout);
    let versioning = via.s3.get_bucket_versioning().bucket("new-state").send().await.unwrap();
    assert_eq!(versioning.status(), Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled));
    let block = via.s3.get_public_access_block().bucket("new-state").send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        [
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ],
        [Some(true); 4]
    );
    let policy = via.s3.get_bucket_policy().bucket("new-state").send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Effect"], "Deny");
    assert_eq!(policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"], "false");
    let encryption = via.s3.get_bucket_encryption().bucket("new-state").send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(), "AES256");

    // Again: it exists and has everything.
    let checked = cli.run(&["--output", "json", "state", "init", "s3://new-state"]).ok().json();
    assert_eq!((checked["created"].as_bool(), checked["ok"].as_bool()), (Some(false), Some(true)), "{checked}");
    assert_eq!(checked["state"], "s3://new-state/");

    // A plain bucket that exists: what is missing is listed, with how to add it; nothing changes.
    sdk.s3.create_bucket().bucket("plain-state").send().await.unwrap();
    let plain = cli.run(&["state", "init", "s3://plain-state"]);
    assert_eq!(plain.code, 3, "{}\n{}", plain.stdout, plain.stderr);
    assert!(plain.stdout.starts_with("bucket plain-state exists in us-east-1: checked it, changed nothing"));
    for missing in ["versioning", "public access blocked", "TLS-only bucket policy"] {
        let row = plain.stdout.lines().find(|l| l.trim_start().starts_with(missing)).unwrap();
        assert!(row.contains("MISSING") && row.contains(": needed so that "), "{row}");
    }
    assert!(!plain.stdout.contains("\nuse it with"), "not ready, so not offered as is: {}", plain.stdout);
    assert!(plain
        .stdout
        .contains("once the settings marked MISSING are added, use it with: --state s3://plain-state/"));
    assert!(plain.stdout.contains("aws s3api put-bucket-versioning --bucket plain-state"), "{}", plain.stdout);
    assert!(via.s3.get_bucket_versioning().bucket("plain-state").send().await.unwrap().status().is_none());
    assert!(via.s3.get_bucket_policy().bucket("plain-state").send().await.is_err(), "no policy was added");

    // In another region, with its location constraint.
    cli.run(&["--region", "eu-west-1", "state", "init", "s3://eu-new-state"]).ok();
    let location = sdk.s3.get_bucket_location().bucket("eu-new-state").send().await.unwrap();
    assert_eq!(location.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
    // Not a bucket URI.
    let bad = cli.run(&["state", "init", "team-state"]);
    assert!(one_line(&bad).contains("`state init` takes s3://BUCKET"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_push_and_pull_move_a_state_and_never_overwrite_a_different_one() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let realism = Realism::start(&emulator, RealismOptions { time_scale: 0.001, ..Default::default() });
    let laptop = Cli::at(&realism.url());
    laptop.run(&["up", "--no-wait"]).ok();
    let local: Value = laptop.state().unwrap();
    // The team's bucket, made by `state init` (TLS-only policy and all).
    laptop.run(&["state", "init", "s3://team-state"]).ok();

    let pushed = laptop.run(&["--state", LOCATION, "state", "push"]).ok();
    assert!(pushed.stdout.contains(&format!("({} resources) moved", default_resources())), "{}", pushed.stdout);
    assert_eq!(s3_json(&sdk, BUCKET, KEY).await.unwrap(), local);
    let uri = format!("s3://{BUCKET}/{KEY}");
    let pointer = laptop.state().unwrap();
    assert_eq!((pointer["moved_to"].as_str(), pointer.get("resources")), (Some(uri.as_str()), None), "{pointer}");
    let aside = laptop.state_path().with_file_name("simple-ecs-dev.json.pushed");
    assert_eq!(serde_json::from_str::<Value>(&std::fs::read_to_string(aside).unwrap()).unwrap(), local);
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_none());
    let again = laptop.run(&["--state", LOCATION, "state", "push"]);
    assert!(one_line(&again).contains("nothing to push"), "{}", again.stderr);
    let vpc_id = local["resources"]["vpc"]["id"].as_str().unwrap().to_string();
    let state_tag = || async {
        let vpcs = sdk.ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.unwrap();
        let tags = vpcs.vpcs()[0].tags().to_vec();
        tags.iter().find(|t| t.key() == Some("fargate-stack:state")).and_then(|t| t.value()).map(str::to_string)
    };
    assert_eq!(state_tag().await.as_deref(), Some(uri.as_str()), "the stack's VPC says where its state lives");

    // Plain runs in that directory follow the pointer to the S3 state: no second state.
    let status = laptop.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    assert_eq!((doc["tracked"].as_bool(), doc["state_file"].as_str()), (Some(true), Some(uri.as_str())), "{doc}");
    let up = laptop.run(&["up", "--no-wait"]).ok();
    assert!(up.stderr.contains(&format!("(state {uri})")), "{}", up.stderr);
    assert_eq!(laptop.state().unwrap()["moved_to"], uri.as_str(), "still the pointer");
    assert_exactly_one_stack(&sdk).await;

    // Another checkout (no pointer, no state): refused or told where the state is, never adopted.
    let clone = Cli::at(&realism.url());
    let refused = clone.run(&["up", "--no-wait"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("says its state lives at {uri}"))
            && refused.stderr.contains(&format!("run with `--state {uri}`")),
        "{}",
        refused.stderr
    );
    assert!(clone.state().is_none(), "no second state");
    let plan = clone.run(&["up", "--dry-run"]);
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("blocked: stack simple-ecs-dev in us-east-1: its VPC {vpc_id} says")));
    let status = clone.run(&["--output", "json", "status"]);
    assert_eq!((status.code, status.json()["state_elsewhere"].as_str()), (3, Some(uri.as_str())), "{}", status.stdout);
    let deploy = clone.run(&["--output", "json", "deploy", "--image", "nginx:1.28"]);
    let error = &deploy.json()["error"];
    assert_eq!((deploy.code, error["kind"].as_str()), (1, Some("state_elsewhere")), "{}", deploy.stdout);
    assert!(error["message"].as_str().unwrap().contains(&uri), "{error}");
    assert!(clone.run(&["down", "--yes", "--name", STACK]).stderr.contains(&uri), "down refuses too");
    assert_exactly_one_stack(&sdk).await;

    // A teammate works from the S3 state, named in the stack's config.
    let teammate = Cli::at(&realism.url());
    teammate.write_config(&config_with(&[("name", &format!("name = \"{STACK}\"\nstate = \"{LOCATION}\""))]));
    let status = teammate.run(&["--output", "json", "status"]).json();
    assert_eq!(status["tracked"], true, "{status}");
    teammate.run(&["up", "--no-wait"]).ok();
    assert_exactly_one_stack(&sdk).await;

    // A different local state is never overwritten by a pull, nor a different S3 state by a push.
    let shared = s3_json(&sdk, BUCKET, KEY).await.unwrap();
    let mut other = local.clone();
    other["resources"].as_object_mut().unwrap().remove("log-group");
    std::fs::create_dir_all(teammate.state_path().parent().unwrap()).unwrap();
    std::fs::write(teammate.state_path(), other.to_string()).unwrap();
    let refused = teammate.run(&["state", "pull"]);
    assert!(one_line(&refused).contains("already holds a different state"), "{}", refused.stderr);
    assert_eq!(s3_json(&sdk, BUCKET, KEY).await.unwrap(), shared, "unchanged");
    let refused = teammate.run(&["state", "push"]);
    assert!(one_line(&refused).contains("already holds a different state"), "{}", refused.stderr);
    assert!(teammate.state().is_some(), "the local file stays where it was");

    std::fs::remove_file(teammate.state_path()).unwrap();
    let pulled = teammate.run(&["state", "pull"]).ok();
    assert!(pulled.stdout.contains(&format!("{LOCATION}simple-ecs-dev.json → ")), "{}", pulled.stdout);
    assert_eq!(teammate.state().unwrap(), shared);
    assert_eq!(state_tag().await.as_deref(), Some("local"), "the tag moves with the state");
    let plan = Cli::with_state(&realism.url(), LOCATION).run(&["up", "--dry-run"]);
    assert!(plan.code == 1 && plan.stdout.contains("says its state lives at local"), "{}", plan.stdout);
    assert!(s3_json(&sdk, BUCKET, KEY).await.is_none() && s3_json(&sdk, BUCKET, LOCK).await.is_none());
    let nothing = teammate.run(&["state", "pull"]);
    assert!(one_line(&nothing).contains("nothing to pull"), "{}", nothing.stderr);

    // --state wins over the config's `state`.
    let local_file = teammate.state_path().display().to_string();
    teammate.run(&["--state", &local_file, "down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_gives_up_its_lock() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    let realism = Realism::start(&emulator, RealismOptions { time_scale: 0.05, ..Default::default() });
    let cli = Cli::with_state(&realism.url(), LOCATION);
    let child = cli.command(&["up"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while s3_recorded(&sdk, BUCKET, KEY).await < 3 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_some());
    // Ctrl-C (CI sends SIGTERM the same way).
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by SIGINT: released the lock on {LOCATION}simple-ecs-dev.json")),
        "{stderr}"
    );
    assert!(s3_json(&sdk, BUCKET, LOCK).await.is_none(), "the lock is given up");
    assert!(s3_recorded(&sdk, BUCKET, KEY).await >= 3, "what was done is recorded");
    // The next run needs no unlock.
    cli.run(&["up", "--no-wait"]).ok();
    assert_exactly_one_stack(&sdk).await;
    cli.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

/// `--lock-timeout` (as Terraform's `-lock-timeout`): a run waits for a lock another run holds,
/// showing the holder, and goes on once it is released; past the timeout it fails as without it.
/// For the local file lock and the S3 lock. `down` of an empty state takes the lock and needs no
/// other AWS call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_waits_for_the_holder_on_both_backends() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    create_bucket(&sdk, BUCKET).await;
    let empty = json!({"schema_version": 1, "stack": STACK, "region": "us-east-1", "resources": {}}).to_string();
    // Reads the child's stderr until `needle`, then keeps draining it (a closed stderr would fail the run).
    let wait_for = |child: &mut std::process::Child, needle: &str| {
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = vec![];
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if line.contains(needle) {
                return;
            }
            seen.push(line);
        }
        panic!("no {needle:?} on stderr: {seen:#?}");
    };
    // A `down` that waits for the lock, once it says so.
    let waiting = |cli: &Cli, needle: &str| {
        let mut child = cli.spawn(&["--lock-timeout", "2m", "down", "--yes"]);
        wait_for(&mut child, needle);
        assert!(child.try_wait().unwrap().is_none(), "still waiting");
        child
    };

    // Local: the test holds the OS lock on the state's lock file, as a running `up` would.
    let cli = Cli::at(&emulator.url());
    std::fs::create_dir_all(cli.state_path().parent().unwrap()).unwrap();
    std::fs::write(cli.state_path(), &empty).unwrap();
    let lock_path = cli.state_path().with_file_name(format!("{STACK}.json.lock"));
    let held = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&lock_path).unwrap();
    held.lock().unwrap();
    std::io::Write::write_all(&mut &held, b"pid 4242 on build-7 since 2026-11-25T17:02:11Z").unwrap();
    let started = Instant::now();
    let timed_out = cli.run(&["--lock-timeout", "1s", "down", "--yes"]);
    assert_eq!(timed_out.code, 1, "{}", timed_out.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for the timeout");
    assert!(timed_out.stderr.contains("waiting for it (up to 1s more"), "{}", timed_out.stderr);
    assert!(
        timed_out.stderr.contains("is locked by another fargate-stack run (pid 4242 on build-7"),
        "{}",
        timed_out.stderr
    );
    let child =
        waiting(&cli, "locked by another fargate-stack run: pid 4242 on build-7 since 2026-11-25T17:02:11Z; waiting");
    held.unlock().unwrap();
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "goes on once the lock is released");
    assert!(String::from_utf8_lossy(&out.stdout).contains("recorded nothing and was removed"));
    assert!(cli.state().is_none());

    // S3: a lock object another run left.
    let remote = Cli::with_state(&emulator.url(), LOCATION);
    sdk.s3.put_object().bucket(BUCKET).key(KEY).body(empty.clone().into_bytes().into()).send().await.unwrap();
    let holder = json!({"lock_id": "11111111-2222-3333-4444-555555555555", "holder": "alice", "host": "build-7",
        "pid": 4242, "started": "2026-11-25T17:02:11Z", "command": "up", "version": "0.1.0"});
    let lock_body = holder.to_string().into_bytes();
    sdk.s3.put_object().bucket(BUCKET).key(LOCK).body(lock_body.into()).send().await.unwrap();
    let timed_out = remote.run(&["--lock-timeout", "1s", "down", "--yes"]);
    assert_eq!(timed_out.code, 1, "{}", timed_out.stderr);
    assert!(timed_out.stderr.contains("gave up waiting for the lock"), "{}", timed_out.stderr);
    assert!(timed_out.stderr.contains("(lock ID 11111111-2222-3333-4444-555555555555)"), "{}", timed_out.stderr);
    let child = waiting(&remote, "up by alice on build-7 (pid 4242) since 2026-11-25T17:02:11Z; waiting for it");
    sdk.s3.delete_object().bucket(BUCKET).key(LOCK).send().await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "goes on once the lock is released");
    assert!(s3_json(&sdk, BUCKET, KEY).await.is_none() && s3_json(&sdk, BUCKET, LOCK).await.is_none());
}
