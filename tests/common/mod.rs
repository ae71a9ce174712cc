//! Test support: a moto server per test on a free loopback port, the real binary run against it,
//! and SDK clients to check what it made.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use serde_json::Value;

pub const STACK: &str = "simple-ecs-dev";
pub const STACK_TAG: &str = "fargate-stack:stack";

/// A moto server owned by one test; killed on drop.
pub struct Emulator {
    pub port: u16,
    child: Child,
}

fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("FARGATE_STACK_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    assert!(local.exists(), "moto is not installed: run scripts/setup-emulator (or scripts/test)");
    local
}

/// A bodyless HTTP request to a loopback port; the response body if the status is 200.
pub fn http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// Start moto on a port the OS picks (`-p 0`) and read the port from its banner, so two
    /// tests can never race for one port.
    /// moto runs through `tests/support/moto_cbor.py` (its server with CloudWatch's CBOR
    /// translated), with the virtualenv's Python.
    pub fn start_with(env: &[(&str, &str)]) -> Emulator {
        let mut cmd = Command::new(venv_python());
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_cbor.py");
        cmd.arg(launcher).args(["-H", "127.0.0.1", "-p", "0"]).stdout(Stdio::null()).stderr(Stdio::piped());
        // No stack has instances: skip loading moto's AMI catalogue at every (re)start of EC2.
        cmd.env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start moto_server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // moto logs every request to stderr: keep draining it after the banner.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                if !sent {
                    if let Some(port) =
                        line.split("http://127.0.0.1:").nth(1).and_then(|p| p.trim().parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                        sent = true;
                    }
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(60)).expect("moto_server did not start");
        let emulator = Emulator { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !emulator.answers() {
            assert!(Instant::now() < deadline, "moto_server does not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    fn answers(&self) -> bool {
        http(self.port, "GET", "/moto-api/").is_some()
    }

    /// Forget every resource (moto's reset API).
    pub fn reset(&self) {
        http(self.port, "POST", "/moto-api/reset").expect("reset moto");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn sdk(&self) -> Sdk {
        sdk_at(&self.url(), "us-east-1").await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tool's own clients, pointed at the emulator, to check what it made.
pub use fargate_stack::aws::Clients as Sdk;

/// Clients for `region` at an endpoint (the emulator, or the realism layer in front of it).
pub async fn sdk_at(url: &str, region: &str) -> Sdk {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await;
    Sdk::new(&config)
}

/// A working directory and the binary pointed at one emulator.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    /// `FARGATE_STACK_STATE` for every run (e.g. `s3://bucket/stacks/`); unset when `None`.
    pub state_location: Option<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// The last JSON document on stdout (commands with --output json print events, then a result).
    pub fn json(&self) -> Value {
        if let Ok(v) = serde_json::from_str(&self.stdout) {
            return v;
        }
        let last = self.stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).expect("a JSON line");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
    }
}

impl Cli {
    pub fn new(emulator: &Emulator) -> Cli {
        Cli::at(&emulator.url())
    }

    /// A CLI whose AWS endpoint is `endpoint`, isolated from the user's AWS config files.
    pub fn at(endpoint: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        for f in ["aws-config", "aws-credentials"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        Cli { dir, endpoint: endpoint.to_string(), state_location: None }
    }

    /// A CLI whose runs keep the state at `location` (through `FARGATE_STACK_STATE`).
    pub fn with_state(endpoint: &str, location: &str) -> Cli {
        Cli { state_location: Some(location.to_string()), ..Cli::at(endpoint) }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        // FARGATE_STACK_BIN runs the tests against another build (e.g. an older one, to show a
        // test fails without a fix).
        let binary =
            std::env::var("FARGATE_STACK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_fargate-stack").to_string());
        let mut cmd = Command::new(binary);
        cmd.current_dir(self.dir.path())
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("FARGATE_STACK_STATE")
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("aws-credentials"))
            .stdin(Stdio::null());
        if let Some(location) = &self.state_location {
            cmd.env("FARGATE_STACK_STATE", location);
        }
        cmd
    }

    /// A run left going, its stdout and stderr piped to the test.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start fargate-stack")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run fargate-stack"))
    }

    /// Run `args`, killed if it has not ended within `limit` (exit code -1 then): a run that
    /// hangs fails its test instead of holding it for its own budgets.
    pub fn run_within(&self, args: &[&str], limit: Duration) -> Run {
        let mut child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run");
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).ok();
            s
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            err.read_to_string(&mut s).ok();
            s
        });
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                child.kill().ok();
                child.wait().ok();
                break -1;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Run { code, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join(".fargate-stack").join(format!("{STACK}.json"))
    }

    pub fn state(&self) -> Option<Value> {
        std::fs::read_to_string(self.state_path()).ok().map(|s| serde_json::from_str(&s).expect("state is JSON"))
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("fargate-stack.toml"), text).unwrap();
    }
}

/// Build a runtime for a synchronous test body that needs the SDK.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn ec2_tag_filter(stack: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(format!("tag:{STACK_TAG}")).values(stack).build()
}

/// Does an EC2 tag list name `stack` exactly? (The emulator ignores some tag filters, and stack
/// names can be prefixes of each other: `app` and `app-2`.)
pub fn tagged(tags: &[aws_sdk_ec2::types::Tag], stack: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(stack))
}

/// Everything of the stack that AWS still lists, by tag or by name (each resource kind listed as
/// its module declares: `resources::sightings`). Empty when `down` left nothing.
pub async fn leftovers(sdk: &Sdk, stack: &str) -> Vec<String> {
    let all = fargate_stack::resources::sightings(sdk, &[]).await.expect("list what AWS has");
    all.iter().filter(|s| s.belongs_to(stack)).map(|s| format!("{} {}", s.kind, s.id)).collect()
}

/// The default config under `stack`'s name.
pub fn default_config(stack: &str) -> fargate_stack::config::Config {
    let text = include_str!("../../config/default.toml")
        .replace(&format!("name = \"{STACK}\""), &format!("name = \"{stack}\""));
    fargate_stack::config::Config::parse("test", &text).expect("the default config")
}

/// How many resources the stack of `config` has (its graph's, waits left out): what the state
/// records after `up`, and the plan creates.
pub fn resources_of(config: &fargate_stack::config::Config) -> usize {
    let shape = fargate_stack::model::Shape::of(config);
    fargate_stack::resources::stack(&shape).expect("the graph").resources().count()
}

/// How many resources the default stack has.
pub fn default_resources() -> usize {
    resources_of(&default_config(STACK))
}

/// The default config with one `key = value` line replaced.
pub fn config_with(edits: &[(&str, &str)]) -> String {
    let mut text = include_str!("../../config/default.toml").to_string();
    for (key, line) in edits {
        let old = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key}"))
            .to_string();
        text = text.replacen(&old, line, 1);
    }
    text
}

/// Exactly one of each of the stack's resources exists (no duplicates after retries or kills).
pub async fn assert_exactly_one_stack(sdk: &Sdk) {
    assert_exactly_one_of(sdk, STACK).await
}

/// Exactly one of each of `stack`'s resources (the default stack's, each that AWS lists) exists,
/// whatever else is in the emulator.
pub async fn assert_exactly_one_of(sdk: &Sdk, stack: &str) {
    let all = fargate_stack::resources::sightings(sdk, &[]).await.expect("list what AWS has");
    let ours: Vec<_> = all.iter().filter(|s| s.belongs_to(stack) && s.active).collect();
    let keys = fargate_stack::resources::listed(&default_config(stack)).expect("the graph");
    for key in &keys {
        let found: Vec<&str> = ours
            .iter()
            .filter(|s| s.resource.as_deref() == Some(key.to_string().as_str()))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{stack}: {key}: {found:?}");
    }
    let unexpected: Vec<_> =
        ours.iter().filter(|s| !keys.iter().any(|k| s.resource.as_deref() == Some(k.to_string().as_str()))).collect();
    assert!(unexpected.is_empty(), "{stack}: {unexpected:#?}");
}

/// The AWS realism layer (tests/support/aws_realism.py) in front of a moto server: AWS's timings
/// scaled down, its checks, lingering ENIs, IAM propagation, faults, and a call log.
pub struct Realism {
    pub port: u16,
    pub call_log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Debug)]
pub struct RealismOptions {
    pub time_scale: f64,
    pub fault_rate: f64,
    /// Extra config keys (see tests/support/README.md), as a JSON object.
    pub config: Value,
}

impl Default for RealismOptions {
    fn default() -> Self {
        RealismOptions { time_scale: 0.02, fault_rate: 0.0, config: serde_json::json!({}) }
    }
}

pub fn venv_python() -> PathBuf {
    moto_server().with_file_name("python")
}

impl Realism {
    pub fn start(emulator: &Emulator, options: RealismOptions) -> Realism {
        let dir = tempfile::tempdir().unwrap();
        let call_log = dir.path().join("calls.jsonl");
        let config = dir.path().join("realism.json");
        std::fs::write(&config, options.config.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws_realism.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .args(["--upstream", &emulator.url(), "--port", "0"])
            .args(["--time-scale", &options.time_scale.to_string(), "--fault-rate", &options.fault_rate.to_string()])
            .arg("--call-log")
            .arg(&call_log)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the realism layer");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("realism layer said {line:?}"))
            .parse()
            .unwrap();
        Realism { port, call_log, child, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every time a listener began sending requests to a target group of a serving service with no
    /// healthy target (tests/support/README.md, "Routing gaps"), checked now too.
    pub fn routing_gaps(&self) -> Vec<Value> {
        let body = http(self.port, "GET", "/realism/routing-gaps").expect("routing gaps");
        let doc: Value = serde_json::from_str(&body).unwrap();
        doc["gaps"].as_array().cloned().unwrap_or_default()
    }

    /// Execute the `n`th mutating call (counted since the layer started) but never answer it.
    pub fn freeze_after_mutations(&self, n: usize) {
        http(self.port, "POST", &format!("/realism/freeze?after={n}")).expect("freeze");
    }

    /// Execute the next mutating call of `action` but never answer it.
    pub fn freeze_at(&self, action: &str) {
        http(self.port, "POST", &format!("/realism/freeze?action={action}")).expect("freeze");
    }

    /// The action the layer froze on, once it has.
    pub fn wait_frozen(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let body = http(self.port, "GET", "/realism/frozen").expect("frozen?");
            let v: Value = serde_json::from_str(&body).unwrap();
            if let Some(action) = v["frozen"].as_str() {
                return Some(action.to_string());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    pub fn thaw(&self) {
        http(self.port, "POST", "/realism/thaw").expect("thaw");
    }

    /// Every call so far, as logged by the layer.
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.call_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|c: &Value| c["service"] != "moto-api")
            .collect()
    }
}

impl Drop for Realism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls that change something (by action name: anything but Describe/List/Get/Head/Scan/Query...),
/// as the realism layer counts them for `freeze_after_mutations`.
pub fn is_mutating(action: &str) -> bool {
    !["Describe", "List", "Get", "Head", "Scan", "Query", "BatchGet", "Simulate"].iter().any(|p| action.starts_with(p))
}

/// Create an S3 bucket (in us-east-1) for states.
pub async fn create_bucket(sdk: &Sdk, bucket: &str) {
    sdk.s3.create_bucket().bucket(bucket).send().await.unwrap();
}

/// An S3 object as JSON, if it exists.
pub async fn s3_json(sdk: &Sdk, bucket: &str, key: &str) -> Option<Value> {
    let out = match sdk.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return None,
        Err(e) => panic!("get s3://{bucket}/{key}: {e:?}"),
    };
    let bytes = out.body.collect().await.unwrap().into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("s3://{bucket}/{key} is not JSON: {e}")))
}

/// Resources an S3 state records (0 if there is none).
pub async fn s3_recorded(sdk: &Sdk, bucket: &str, key: &str) -> usize {
    s3_json(sdk, bucket, key).await.and_then(|s| s["resources"].as_object().map(|r| r.len())).unwrap_or(0)
}

pub trait SdkExt {
    /// The stack's ECS service as ECS describes it (with tags).
    async fn service(&self) -> aws_sdk_ecs::types::Service;
}

impl SdkExt for Sdk {
    async fn service(&self) -> aws_sdk_ecs::types::Service {
        let out = self
            .ecs
            .describe_services()
            .cluster("simple-ecs-dev-cluster")
            .services("simple-ecs-dev-service")
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap();
        out.services().first().cloned().expect("the service exists")
    }
}

/// Stack `name`'s ECS service as ECS describes it.
pub async fn stack_service(sdk: &Sdk, name: &str) -> aws_sdk_ecs::types::Service {
    let cluster = format!("{name}-cluster");
    let out = sdk.ecs.describe_services().cluster(cluster).services(format!("{name}-service")).send().await;
    out.unwrap().services()[0].clone()
}

/// A plan's row for resource `name`: its action and its changes as `field: from → to` (quotes dropped).
pub fn planned_changes(plan: &Value, name: &str) -> (String, Vec<String>) {
    let r = plan["resources"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
    let list: Vec<String> = r["changes"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|c| format!("{}: {} → {}", c["field"].as_str().unwrap(), c["from"], c["to"]).replace('"', ""))
        .collect();
    (r["action"].as_str().unwrap().to_string(), list)
}
