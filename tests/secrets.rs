//! `[service.secrets]` against the emulator, with a second stack present: a missing reference is
//! refused before any change; the task definition hands the container ARNs (`valueFrom`), never
//! values; the execution role may read exactly the referenced ARNs (and decrypt with their
//! customer-managed key); no output and no state holds a value; removing a secret revokes its grant
//! (a run killed in the middle of it resumes); `deploy --restart` rolls new tasks; `down` leaves the
//! parameters and secrets, which are the user's.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_ssm::types::ParameterType;
use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "pw-5ecret-Value-7d1f";
const TOKEN: &str = "tok-9xq-Secret-v1";
const ROTATED: &str = "tok-9xq-Secret-v2";
const OTHER_VALUE: &str = "other-Stack-Value-31";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER: &str = "other";

fn config(name: &str, secrets: &[(&str, &str)]) -> String {
    let name_line = format!("name = \"{name}\"");
    let mut text = config_with(&[("name", &name_line)]);
    text.push_str("\n[service.secrets]\n");
    for (var, reference) in secrets {
        text.push_str(&format!("{var} = \"{reference}\"\n"));
    }
    text
}

fn decode(document: &str) -> Value {
    let text = percent_encoding::percent_decode_str(document).decode_utf8().unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The execution role's inline policy, as statements keyed by Sid.
async fn grants(sdk: &Sdk, stack: &str) -> Value {
    let role = format!("{stack}-execution-role");
    let doc = sdk.iam.get_role_policy().role_name(&role).policy_name("fargate-stack").send().await.unwrap();
    let doc = decode(doc.policy_document());
    let mut by_sid = serde_json::Map::new();
    for s in doc["Statement"].as_array().unwrap() {
        by_sid.insert(s["Sid"].as_str().unwrap().to_string(), s.clone());
    }
    Value::Object(by_sid)
}

/// The app container's secrets in the recorded task definition: name -> valueFrom.
async fn container_secrets(sdk: &Sdk, arn: &str) -> (Vec<(String, String)>, Vec<String>) {
    let out = sdk.ecs.describe_task_definition().task_definition(arn).send().await.unwrap();
    let container = &out.task_definition().unwrap().container_definitions()[0];
    let secrets = container.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect();
    let env = container.environment().iter().map(|kv| kv.name().unwrap_or_default().to_string()).collect();
    (secrets, env)
}

fn recorded_definition(cli: &Cli) -> String {
    cli.state().unwrap()["resources"]["task-definition"]["id"].as_str().unwrap().to_string()
}

#[test]
fn secrets_pass_by_reference_with_exact_grants_and_never_show() {
    let started = Instant::now();
    let emulator = Emulator::start();
    let realism = Realism::start(
        &emulator,
        RealismOptions { time_scale: 0.005, config: json!({"iam_propagation_s": 0}), ..Default::default() },
    );
    let rt = runtime();
    let sdk = rt.block_on(sdk_at(&realism.url(), "us-east-1"));
    // The user's parameters and secret, made outside fargate-stack.
    let (param_arn, secret_arn) = rt.block_on(async {
        let put = |name: &str, value: &str, key: Option<&str>| {
            sdk.ssm
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(ParameterType::SecureString)
                .set_key_id(key.map(str::to_string))
                .send()
        };
        put("/app/db/password", PASSWORD, Some(KEY_ID)).await.unwrap();
        put("/other/key", OTHER_VALUE, None).await.unwrap();
        let secret = serde_json::to_string(&json!({"token": TOKEN})).unwrap();
        let created = sdk.secretsmanager.create_secret().name("prod/api").secret_string(secret).send().await.unwrap();
        ("arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password".to_string(), created.arn().unwrap().to_string())
    });
    let mut outputs: Vec<String> = vec![];
    let mut keep = |run: Run| -> Run {
        outputs.push(run.stdout.clone());
        outputs.push(run.stderr.clone());
        run
    };

    // A reference to nothing: refused before any change, naming it.
    let app = Cli::at(&realism.url());
    app.write_config(&config(STACK, &[("DB_PASSWORD", "ssm:/app/db/missing")]));
    let before = realism.calls().len();
    let refused = keep(app.run(&["up", "--yes"]));
    assert_ne!(refused.code, 0);
    let error: Vec<&str> = refused.stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error.len(), 1, "{}", refused.stderr);
    assert!(
        error[0].contains("service.secrets.DB_PASSWORD: ssm:/app/db/missing: no such SSM parameter"),
        "{}",
        error[0]
    );
    let mutated: Vec<Value> = realism.calls()[before..]
        .iter()
        .filter(|c| is_mutating(c["action"].as_str().unwrap_or("Get")))
        .cloned()
        .collect();
    assert!(mutated.is_empty(), "{mutated:#?}");
    assert!(app.state().is_none_or(|s| s["resources"].as_object().is_none_or(|r| r.is_empty())));

    // A second stack with its own secret.
    let other = Cli::at(&realism.url());
    other.write_config(&config(OTHER, &[("OTHER_KEY", "ssm:/other/key")]));
    keep(other.run(&["up", "--yes", "--no-wait"]).ok());

    let wanted = [("API_TOKEN", "secretsmanager:prod/api:token"), ("DB_PASSWORD", "ssm:/app/db/password")];
    app.write_config(&config(STACK, &wanted));
    keep(app.run(&["up", "--dry-run"]).ok());
    keep(app.run(&["-vv", "--output", "json", "up", "--yes", "--no-wait"]).ok());
    keep(app.run(&["status"]).ok());
    keep(app.run(&["--output", "json", "status"]).ok());

    // By reference: ARNs in the task definition, the secret's JSON key in ECS's form.
    let (secrets, env) = rt.block_on(container_secrets(&sdk, &recorded_definition(&app)));
    assert_eq!(
        secrets,
        [("API_TOKEN".to_string(), format!("{secret_arn}:token::")), ("DB_PASSWORD".to_string(), param_arn.clone())]
    );
    assert!(!env.iter().any(|e| e == "API_TOKEN" || e == "DB_PASSWORD"), "{env:?}");
    // Exactly these ARNs, and the parameter's customer-managed key through SSM only.
    let mine = rt.block_on(grants(&sdk, STACK));
    assert_eq!(mine["ReadParameters"]["Action"], json!(["ssm:GetParameters"]));
    assert_eq!(mine["ReadParameters"]["Resource"], json!([param_arn]));
    assert_eq!(mine["ReadSecrets"]["Action"], json!(["secretsmanager:GetSecretValue"]));
    assert_eq!(mine["ReadSecrets"]["Resource"], json!([secret_arn]));
    assert_eq!(
        mine["DecryptParameters"]["Resource"],
        json!([format!("arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}")])
    );
    assert_eq!(mine["DecryptParameters"]["Condition"]["StringEquals"]["kms:ViaService"], "ssm.us-east-1.amazonaws.com");
    assert!(mine.get("DecryptSecrets").is_none(), "the secret uses AWS's managed key: {mine:#}");
    let theirs = rt.block_on(grants(&sdk, OTHER));
    assert_eq!(theirs["ReadParameters"]["Resource"], json!(["arn:aws:ssm:us-east-1:123456789012:parameter/other/key"]));
    assert!(theirs.get("ReadSecrets").is_none() && theirs.get("DecryptParameters").is_none(), "{theirs:#}");

    // Rotation needs no `up`: `deploy --restart` starts new tasks of the same revision.
    rt.block_on(
        sdk.secretsmanager
            .put_secret_value()
            .secret_id("prod/api")
            .secret_string(json!({"token": ROTATED}).to_string())
            .send(),
    )
    .unwrap();
    let revision = recorded_definition(&app);
    let before = realism.calls().len();
    keep(app.run(&["deploy", "--restart", "--no-wait"]).ok());
    let actions: Vec<String> =
        realism.calls()[before..].iter().map(|c| c["action"].as_str().unwrap_or_default().to_string()).collect();
    assert!(actions.iter().any(|a| a == "UpdateService"), "{actions:?}");
    assert!(!actions.iter().any(|a| a == "RegisterTaskDefinition"), "the same revision: {actions:?}");
    assert_eq!(recorded_definition(&app), revision);

    // Removing a secret revokes its grant and registers a revision without it; killed right after the
    // revoking call, the next run finishes it.
    app.write_config(&config(STACK, &wanted[1..]));
    realism.freeze_at("PutRolePolicy");
    let mut child = app
        .command(&["up", "--yes", "--no-wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(realism.wait_frozen(Duration::from_secs(60)).as_deref(), Some("PutRolePolicy"));
    child.kill().unwrap();
    child.wait().unwrap();
    realism.thaw();
    keep(app.run(&["up", "--yes", "--no-wait"]).ok());
    let mine = rt.block_on(grants(&sdk, STACK));
    assert!(mine.get("ReadSecrets").is_none(), "revoked: {mine:#}");
    assert_eq!(mine["ReadParameters"]["Resource"], json!([param_arn]));
    let (secrets, _) = rt.block_on(container_secrets(&sdk, &recorded_definition(&app)));
    assert_eq!(secrets, [("DB_PASSWORD".to_string(), param_arn.clone())]);
    let again = keep(app.run(&["--output", "json", "up", "--dry-run"]).ok());
    assert!(!again.stdout.contains("\"update\""), "converged: {}", again.stdout);

    // `down` removes the grants with the role and leaves the user's parameters and secret.
    let state_text = std::fs::read_to_string(app.state_path()).unwrap();
    keep(app.run(&["down", "--yes"]).ok());
    assert!(rt.block_on(leftovers(&sdk, STACK)).is_empty());
    rt.block_on(async {
        sdk.ssm.get_parameter().name("/app/db/password").send().await.expect("the parameter stays");
        sdk.secretsmanager.describe_secret().secret_id("prod/api").send().await.expect("the secret stays");
    });
    assert_eq!(
        rt.block_on(grants(&sdk, OTHER))["ReadParameters"],
        theirs["ReadParameters"],
        "the other stack's grant stays"
    );

    // No value anywhere: every output, the state, the other stack's state.
    let other_state = std::fs::read_to_string(other.dir.path().join(".fargate-stack/other.json")).unwrap();
    for (i, text) in outputs.iter().chain([&state_text, &other_state]).enumerate() {
        for value in [PASSWORD, TOKEN, ROTATED, OTHER_VALUE] {
            assert!(!text.contains(value), "output {i} shows a secret's value: {text}");
        }
    }
    eprintln!("secrets: {:.1}s", started.elapsed().as_secs_f64());
}
