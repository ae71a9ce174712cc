//! HTTPS on the user's domain: a certificate requested and validated through Route 53 (or given by
//! ARN), the HTTPS listener, the redirect, the alias record, switching modes in place, and `down`
//! removing exactly what `up` made. Against the realism layer: ACM issues a certificate only once
//! its validation record is in the zone, a listener needs an issued certificate, a certificate in
//! use cannot be deleted, Route 53 judges change batches and alias targets as AWS does.

mod common;

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use common::*;
use serde_json::{json, Value};

const DOMAIN: &str = "api.example.com";

/// AWS's timings scaled to 1/200 (validation: 0.6 s), for tests about what is made, not when.
fn realism(emulator: &Emulator) -> Realism {
    let config = json!({"iam_propagation_s": 0});
    Realism::start(emulator, RealismOptions { time_scale: 0.005, config, ..Default::default() })
}

/// The default config with `[https]` added (and `edits` applied).
fn with_https(edits: &[(&str, &str)], section: &str) -> String {
    format!("{}\n[https]\n{section}\n", config_with(edits))
}

/// A public hosted zone; its ID without `/hostedzone/`.
async fn make_zone(sdk: &Sdk, name: &str, reference: &str) -> String {
    let out = sdk.route53.create_hosted_zone().name(name).caller_reference(reference).send().await.unwrap();
    out.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string()
}

/// (name, type, what it holds) of every record of the zone but its SOA and NS.
async fn records(sdk: &Sdk, zone: &str) -> Vec<(String, String, String)> {
    let out = sdk.route53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|s| !matches!(s.r#type(), RrType::Soa | RrType::Ns))
        .map(|s| {
            let holds = match s.alias_target() {
                Some(a) => format!("alias {} {}", a.dns_name().trim_end_matches('.'), a.hosted_zone_id()),
                None => s.resource_records().iter().map(|r| r.value().to_string()).collect::<Vec<_>>().join(","),
            };
            (s.name().to_string(), s.r#type().as_str().to_string(), holds)
        })
        .collect()
}

/// Write a simple record straight into the zone (someone else's record).
async fn put_record(sdk: &Sdk, zone: &str, name: &str, rtype: RrType, value: &str) {
    change_record(sdk, zone, ChangeAction::Upsert, (name, rtype, value)).await;
}

/// Write or delete a simple record straight in the zone.
async fn change_record(sdk: &Sdk, zone: &str, action: ChangeAction, (name, rtype, value): (&str, RrType, &str)) {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(rtype)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder().action(action).resource_record_set(set).build().unwrap();
    sdk.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// ARNs of every certificate ACM has.
async fn certificates(sdk: &Sdk) -> Vec<String> {
    let out = sdk.acm.list_certificates().send().await.unwrap();
    out.certificate_summary_list().iter().map(|c| c.certificate_arn().unwrap().to_string()).collect()
}

/// Import a self-signed certificate for `domain` valid for `days` (a certificate given by ARN).
async fn import_certificate(sdk: &Sdk, domain: &str, days: u32) -> String {
    const MAKE: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sys.argv[1])])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=int(sys.argv[2])))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(sys.argv[1])]), critical=False)
        .sign(key, hashes.SHA256()))
print(cert.public_bytes(serialization.Encoding.PEM).decode(), end="")
print(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                        serialization.NoEncryption()).decode(), end="")
"#;
    let out = std::process::Command::new(venv_python()).args(["-c", MAKE, domain, &days.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pem = String::from_utf8(out.stdout).unwrap();
    let split = pem.find("-----BEGIN RSA PRIVATE KEY-----").unwrap();
    let (cert, key) = pem.split_at(split);
    let blob = |s: &str| aws_sdk_acm::primitives::Blob::new(s.as_bytes().to_vec());
    let out = sdk.acm.import_certificate().certificate(blob(cert)).private_key(blob(key)).send().await.unwrap();
    out.certificate_arn().unwrap().to_string()
}

fn row<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} in {doc}"))
}

fn mutating_calls(calls: &[Value]) -> Vec<String> {
    calls.iter().map(|c| c["action"].as_str().unwrap().to_string()).filter(|a| is_mutating(a)).collect()
}

/// Calls AWS refused that a correct order would not have made (throttling aside).
fn refused(calls: &[Value]) -> Vec<&Value> {
    calls
        .iter()
        .filter(|c| c["error"].as_str().is_some_and(|e| !["Throttling", "ThrottlingException"].contains(&e)))
        .filter(|c| c["action"].as_str().is_some_and(is_mutating))
        .filter(|c| !["DependencyViolation", "InvalidIPAddress.InUse"].contains(&c["error"].as_str().unwrap()))
        .collect()
}

/// The stack's two listeners: (HTTP, HTTPS).
async fn listeners(
    sdk: &Sdk,
    lb: &str,
) -> (aws_sdk_elasticloadbalancingv2::types::Listener, Option<aws_sdk_elasticloadbalancingv2::types::Listener>) {
    let out = sdk.elb.describe_listeners().load_balancer_arn(lb).send().await.unwrap();
    let all = out.listeners().to_vec();
    assert!(all.len() <= 2, "{all:?}");
    let http = all.iter().find(|l| l.port() == Some(80)).cloned().expect("an HTTP listener");
    let https = all.iter().find(|l| l.port() == Some(443)).cloned();
    (http, https)
}

/// The ports the load balancer's security group admits.
async fn alb_ports(sdk: &Sdk, group: &str) -> Vec<i32> {
    let out = sdk.ec2.describe_security_groups().group_ids(group).send().await.unwrap();
    let mut ports: Vec<i32> = out.security_groups()[0].ip_permissions().iter().filter_map(|p| p.from_port()).collect();
    ports.sort();
    ports
}

fn id(state: &Value, key: &str) -> String {
    state["resources"][key]["id"].as_str().unwrap_or_else(|| panic!("{key} not recorded")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_gets_a_validated_certificate_https_a_redirect_and_an_alias_and_down_removes_them() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let zone = make_zone(&sdk, "example.com", "zone-1").await;
    // AWS's own validation time (120 s, scaled): the wait is real.
    let options = RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() };
    let realism = Realism::start(&emulator, options);
    let cli = Cli::at(&realism.url());
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"")));

    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in ["certificate", "dns-validation-record", "listener-https", "dns-alias-record"] {
        assert_eq!(row(&plan, "resources", key)["action"], "create", "{key}");
    }
    assert!(realism.calls().iter().all(|c| !is_mutating(c["action"].as_str().unwrap())), "a dry run changes nothing");

    let up = cli.run(&["--output", "json", "up", "--no-wait"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let result = up.json();
    assert_eq!(result["outputs"]["url"], format!("https://{DOMAIN}"));
    // The progress line said what it waits for while ACM validated.
    let waited = up.stdout.lines().any(|l| {
        l.contains("\"resource\":\"certificate-issued\"") && l.contains(&format!("pending validation of {DOMAIN}"))
    });
    assert!(waited, "no validation wait in the progress:\n{}", up.stdout);
    // AWS refused nothing: the listener came after the issue, the alias after the listener.
    let calls = realism.calls();
    assert!(refused(&calls).is_empty(), "AWS would have refused: {:#?}", refused(&calls));
    assert_eq!(mutating_calls(&calls).iter().filter(|a| *a == "RequestCertificate").count(), 1);

    let state = cli.state().unwrap();
    let (lb, tg, cert) = (id(&state, "load-balancer"), id(&state, "target-group"), id(&state, "certificate"));
    let (http, https) = listeners(&sdk, &lb).await;
    let https = https.expect("an HTTPS listener");
    assert_eq!(https.protocol().unwrap().as_str(), "HTTPS");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(cert.as_str()));
    assert_eq!(https.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
    assert_eq!(https.default_actions()[0].target_group_arn(), Some(tg.as_str()));
    let redirect = http.default_actions()[0].redirect_config().expect("port 80 redirects");
    assert_eq!(http.default_actions().len(), 1, "a redirect, no forward");
    assert_eq!(
        (redirect.protocol(), redirect.port(), redirect.host(), redirect.path(), redirect.query()),
        (Some("HTTPS"), Some("443"), Some("#{host}"), Some("/#{path}"), Some("#{query}"))
    );
    assert_eq!(redirect.status_code().unwrap().as_str(), "HTTP_301");
    assert_eq!(alb_ports(&sdk, &id(&state, "security-group-alb")).await, [80, 443]);
    let described = sdk.elb.describe_load_balancers().load_balancer_arns(&lb).send().await.unwrap();
    let alb = &described.load_balancers()[0];
    // The record as ACM (the layer) shows it: moto alone gives every domain the same one.
    let acm = sdk_at(&realism.url(), "us-east-1").await;
    let detail = acm.acm.describe_certificate().certificate_arn(&cert).send().await.unwrap();
    let validation = detail.certificate().unwrap().domain_validation_options()[0].resource_record().unwrap().clone();
    let mut in_zone = records(&sdk, &zone).await;
    in_zone.sort();
    assert_eq!(
        in_zone,
        [
            (validation.name().to_string(), "CNAME".to_string(), validation.value().to_string()),
            (
                format!("{DOMAIN}."),
                "A".to_string(),
                format!("alias {} {}", alb.dns_name().unwrap(), alb.canonical_hosted_zone_id().unwrap())
            ),
        ]
    );
    let tags = sdk.acm.list_tags_for_certificate().certificate_arn(&cert).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == Some(STACK)), "{tags:?}");
    assert_eq!(state["resources"]["dns-validation-record"]["attrs"]["created"], "true");

    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    for key in ["certificate", "dns-validation-record", "listener-https", "dns-alias-record", "listener"] {
        assert_eq!(row(&doc, "resources", key)["status"], "ok", "{key}: {doc}");
    }
    assert_eq!(doc["certificate"]["status"], "ISSUED");
    assert_eq!(doc["certificate"]["source"], "requested");
    assert_eq!(doc["certificate"]["in_use_by_listener"], true);
    assert!(doc["certificate"]["days_left"].as_i64().unwrap() > 300, "{}", doc["certificate"]);
    assert_eq!(doc["outputs"]["url"], format!("https://{DOMAIN}"));

    // A second up: describe calls only.
    let before = realism.calls().len();
    cli.run(&["up", "--no-wait"]).ok();
    let again = mutating_calls(&realism.calls()[before..]);
    assert!(again.is_empty(), "no-op up changed things: {again:?}");

    let before = realism.calls().len();
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}\n{}", down.stdout, down.stderr);
    assert!(records(&sdk, &zone).await.is_empty(), "records left: {:?}", records(&sdk, &zone).await);
    assert!(certificates(&sdk).await.is_empty(), "certificates left");
    assert!(leftovers(&sdk, STACK).await.is_empty());
    assert!(sdk.route53.get_hosted_zone().id(&zone).send().await.is_ok(), "the zone is never touched");
    // The certificate went once the listener had let go of it (AWS: ResourceInUseException before).
    let down_calls = &realism.calls()[before..];
    let deletes: Vec<&Value> = down_calls.iter().filter(|c| c["action"] == "DeleteCertificate").collect();
    assert_eq!(deletes.last().unwrap()["error"], Value::Null, "{deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_given_by_arn_is_served_checked_and_never_deleted() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());

    // A certificate ACM does not have: refused before any change.
    let missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    cli.write_config(&with_https(&[], &format!("certificate_arn = \"{missing}\"")));
    let refused_run = cli.run(&["up", "--no-wait"]);
    assert_eq!(refused_run.code, 1, "{}", refused_run.stderr);
    assert!(refused_run.stderr.contains("ACM has no such certificate"), "{}", refused_run.stderr);
    assert!(refused_run.stderr.contains("nothing was changed"), "{}", refused_run.stderr);
    assert!(mutating_calls(&realism.calls()).is_empty(), "{:?}", mutating_calls(&realism.calls()));

    // One that expires in 10 days, without the redirect.
    let given = import_certificate(&sdk, DOMAIN, 10).await;
    cli.write_config(&with_https(&[], &format!("certificate_arn = \"{given}\"\nredirect_http = false")));
    let up = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    let dns = up["outputs"]["alb_dns_name"].as_str().unwrap();
    assert_eq!(up["outputs"]["url"], format!("https://{dns}"));
    let state = cli.state().unwrap();
    assert!(state["resources"].get("certificate").is_none(), "a given certificate is not the stack's");
    let (http, https) = listeners(&sdk, &id(&state, "load-balancer")).await;
    assert_eq!(https.unwrap().certificates()[0].certificate_arn(), Some(given.as_str()));
    assert_eq!(http.default_actions()[0].target_group_arn(), Some(id(&state, "target-group").as_str()), "forwards");
    assert_eq!(alb_ports(&sdk, &id(&state, "security-group-alb")).await, [80, 443]);

    // A second up: describe calls only.
    let before = realism.calls().len();
    cli.run(&["up", "--no-wait"]).ok();
    assert!(mutating_calls(&realism.calls()[before..]).is_empty());

    // Expiring within 30 days: a warning, not a failure.
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    assert!(status.stdout.contains("(given, api.example.com) issued"), "{}", status.stdout);
    assert!(status.stdout.contains("warning: expires in 9 days"), "{}", status.stdout);
    let doc = cli.run(&["--output", "json", "status"]).json();
    assert_eq!(doc["certificate"]["in_use_by_listener"], true, "{}", doc["certificate"]);

    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(leftovers(&sdk, STACK).await.is_empty());
    let kept = sdk.acm.describe_certificate().certificate_arn(&given).send().await.unwrap();
    assert_eq!(kept.certificate().unwrap().status().unwrap().as_str(), "ISSUED", "down never deletes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_http_a_given_certificate_and_a_domain_is_an_update_in_place() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let zone = make_zone(&sdk, "example.com", "zone-1").await;
    let given = import_certificate(&sdk, DOMAIN, 365).await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    let action = |plan: &Value, key: &str| row(plan, "resources", key)["action"].as_str().unwrap().to_string();
    let changes = |plan: &Value, key: &str| row(plan, "resources", key)["changes"].to_string();

    cli.run(&["up", "--no-wait"]).ok();
    let first = cli.state().unwrap();
    let (lb, listener) = (id(&first, "load-balancer"), id(&first, "listener"));

    // A given certificate beside a domain it does not cover: refused before any change, naming its names.
    cli.write_config(&with_https(&[], &format!("certificate_arn = \"{given}\"\ndomain = \"www.example.com\"")));
    let before = realism.calls().len();
    let uncovered = cli.run(&["up", "--no-wait", "--yes"]);
    assert_eq!(uncovered.code, 1, "{}", uncovered.stderr);
    assert!(
        uncovered.stderr.contains(&format!("does not cover https.domain www.example.com (it is for {DOMAIN})")),
        "{}",
        uncovered.stderr
    );
    assert!(mutating_calls(&realism.calls()[before..]).is_empty());

    // HTTP only -> a domain.
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"")));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(action(&plan, "listener"), "update");
    assert!(changes(&plan, "listener").contains("redirect HTTP_301 to HTTPS://#{host}:443/#{path}?#{query}"));
    assert_eq!(action(&plan, "security-group-alb"), "update");
    for key in ["certificate", "dns-validation-record", "listener-https", "dns-alias-record"] {
        assert_eq!(action(&plan, key), "create", "{key}");
    }
    let before = realism.calls().len();
    let up = cli.run(&["--output", "json", "up", "--no-wait", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert_eq!(up.json()["outputs"]["url"], format!("https://{DOMAIN}"));
    assert!(refused(&realism.calls()[before..]).is_empty(), "{:#?}", refused(&realism.calls()[before..]));
    let state = cli.state().unwrap();
    assert_eq!((id(&state, "load-balancer"), id(&state, "listener")), (lb.clone(), listener.clone()), "in place");
    let requested = id(&state, "certificate");
    let (http, _) = listeners(&sdk, &lb).await;
    assert!(http.default_actions()[0].redirect_config().is_some());

    // Another domain: a certificate's names are fixed, and `up` replaces it itself, new first
    // (a_second_stack_in_the_same_zone_is_left_untouched makes the change): the plan refuses nothing.
    cli.write_config(&with_https(&[], "domain = \"www.example.com\""));
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    let replaced = "replace the certificate (https.domain: api.example.com → www.example.com)";
    assert!(plan.contains(replaced) && !plan.contains("refused"), "{plan}");

    // A domain -> the given certificate beside it, which covers it: what was requested for the domain
    // goes, the alias record stays, pointing at the load balancer.
    cli.write_config(&with_https(&[], &format!("certificate_arn = \"{given}\"\ndomain = \"{DOMAIN}\"")));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    for key in ["certificate", "dns-validation-record"] {
        assert_eq!(action(&plan, key), "delete", "{key}");
    }
    assert_eq!(action(&plan, "dns-alias-record"), "unchanged");
    assert_eq!(action(&plan, "listener-https"), "update");
    assert!(changes(&plan, "listener-https").contains(&given), "{plan}");
    let alias_before = records(&sdk, &zone).await.into_iter().filter(|r| r.1 == "A").collect::<Vec<_>>();
    assert_eq!(alias_before.len(), 1, "{alias_before:?}");
    let before = realism.calls().len();
    let up = cli.run(&["--output", "json", "up", "--no-wait", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    let calls = &realism.calls()[before..];
    assert!(
        refused(calls).iter().all(|c| c["error"] == "ResourceInUseException"),
        "only the certificate's release may be waited for: {:#?}",
        refused(calls)
    );
    let (_, https) = listeners(&sdk, &lb).await;
    assert_eq!(https.unwrap().certificates()[0].certificate_arn(), Some(given.as_str()));
    assert!(!certificates(&sdk).await.contains(&requested), "the requested certificate is deleted");
    assert_eq!(records(&sdk, &zone).await, alias_before, "the alias record alone is left, as it was");
    assert_eq!(up.json()["outputs"]["url"], format!("https://{DOMAIN}"));
    let state = cli.state().unwrap();
    for gone in ["certificate", "dns-validation-record"] {
        assert!(state["resources"].get(gone).is_none(), "{gone} still recorded");
    }
    assert!(state["resources"].get("dns-alias-record").is_some());

    // The domain dropped: its record goes, and the plan says what that does and how to keep it.
    cli.write_config(&with_https(&[], &format!("certificate_arn = \"{given}\"")));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(action(&plan, "dns-alias-record"), "delete");
    assert_eq!(action(&plan, "listener-https"), "unchanged");
    let alias = row(&plan, "resources", "dns-alias-record")["detail"].as_str().unwrap().to_string();
    assert!(alias.contains(&format!("{DOMAIN} stops resolving once it is deleted")), "{alias}");
    assert!(alias.contains(&format!("keep https.domain = \"{DOMAIN}\" (beside https.certificate_arn")), "{alias}");
    let up = cli.run(&["--output", "json", "up", "--no-wait", "--yes"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    assert!(records(&sdk, &zone).await.is_empty(), "{:?}", records(&sdk, &zone).await);
    assert!(cli.state().unwrap()["resources"].get("dns-alias-record").is_none());
    assert_eq!(
        up.json()["outputs"]["url"],
        format!("https://{}", up.json()["outputs"]["alb_dns_name"].as_str().unwrap())
    );

    // A given certificate -> HTTP only.
    cli.write_config(&config_with(&[]));
    let plan = cli.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(action(&plan, "listener-https"), "delete");
    assert_eq!(action(&plan, "listener"), "update");
    assert_eq!(action(&plan, "security-group-alb"), "update");
    cli.run(&["up", "--no-wait", "--yes"]).ok();
    let state = cli.state().unwrap();
    let (http, https) = listeners(&sdk, &lb).await;
    assert!(https.is_none(), "the HTTPS listener is deleted");
    assert_eq!(http.listener_arn(), Some(listener.as_str()));
    assert_eq!(http.default_actions()[0].target_group_arn(), Some(id(&state, "target-group").as_str()));
    assert_eq!(alb_ports(&sdk, &id(&state, "security-group-alb")).await, [80]);
    assert!(certificates(&sdk).await.contains(&given), "a given certificate is never deleted");

    cli.run(&["down", "--yes"]).ok();
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

/// An emulator with the public zone example.com, its SDK, the zone's ID, the realism layer, and a
/// stack configured with `[https] domain` (not yet up).
async fn with_a_domain() -> (Emulator, Sdk, String, Realism, Cli) {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let zone = make_zone(&sdk, "example.com", "zone-1").await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"")));
    (emulator, sdk, zone, realism, cli)
}

/// Start `up`, freeze the realism layer right after AWS carried out `action`, kill the run.
fn kill_after(cli: &Cli, realism: &Realism, action: &str) {
    realism.freeze_at(action);
    let mut child = cli.command(&["up", "--no-wait"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let frozen = realism.wait_frozen(Duration::from_secs(60));
    let _ = child.kill();
    child.wait().unwrap();
    assert_eq!(frozen.as_deref(), Some(action));
    realism.thaw();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_up_resumes_without_a_second_certificate_and_down_still_removes_its_records() {
    let (_emulator, sdk, zone, realism, cli) = with_a_domain().await;
    let recorded = |key: &str| cli.state().is_some_and(|s| s["resources"].get(key).is_some());

    // Each run is killed right after AWS carried out the call, before the state could record what
    // it made; the next run picks it up from there.
    kill_after(&cli, &realism, "RequestCertificate");
    assert!(!recorded("certificate"));
    let made = certificates(&sdk).await;
    assert_eq!(made.len(), 1);
    // The validation record (the first record change of a run).
    kill_after(&cli, &realism, "ChangeResourceRecordSets");
    assert_eq!(certificates(&sdk).await, made, "the same certificate, adopted");
    assert_eq!(records(&sdk, &zone).await.len(), 1, "the validation record was written");
    // The HTTPS listener (created before the HTTP one, which redirects to it).
    kill_after(&cli, &realism, "CreateListener");
    assert!(!recorded("listener-https"));
    // The alias record.
    kill_after(&cli, &realism, "ChangeResourceRecordSets");
    assert_eq!(records(&sdk, &zone).await.len(), 2);
    assert!(!recorded("dns-alias-record"));

    cli.run(&["up", "--no-wait"]).ok();
    let state = cli.state().unwrap();
    assert_eq!(certificates(&sdk).await, made, "one certificate in all");
    assert_eq!(id(&state, "certificate"), made[0]);
    let (_, https) = listeners(&sdk, &id(&state, "load-balancer")).await;
    assert_eq!(https.unwrap().listener_arn(), Some(id(&state, "listener-https").as_str()));
    assert_eq!(records(&sdk, &zone).await.len(), 2);
    assert_eq!(state["resources"]["dns-validation-record"]["attrs"]["created"], "true", "known to be ours");
    let calls = realism.calls();
    assert_eq!(mutating_calls(&calls).iter().filter(|a| *a == "RequestCertificate").count(), 1);
    down_leaves_nothing(&cli, &sdk, &zone).await;
}

/// `down`, then nothing of the stack is left: no record in the zone, no certificate.
async fn down_leaves_nothing(cli: &Cli, sdk: &Sdk, zone: &str) {
    cli.run(&["down", "--yes"]).ok();
    assert!(records(sdk, zone).await.is_empty(), "{:?}", records(sdk, zone).await);
    assert!(certificates(sdk).await.is_empty(), "{:?}", certificates(sdk).await);
    assert!(leftovers(sdk, STACK).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stack_in_the_same_zone_is_left_untouched() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let zone = make_zone(&sdk, "example.com", "zone-1").await;
    let realism = realism(&emulator);
    // Names that are prefixes of each other.
    let (app, app2) = (Cli::at(&realism.url()), Cli::at(&realism.url()));
    app.write_config(&with_https(&[("name", "name = \"app\"")], "domain = \"app.example.com\""));
    app2.write_config(&with_https(&[("name", "name = \"app-2\"")], "domain = \"app-2.example.com\""));
    app.run(&["up", "--no-wait"]).ok();
    app2.run(&["up", "--no-wait"]).ok();
    let before = records(&sdk, &zone).await;
    assert_eq!(before.len(), 4, "a validation record and an alias each: {before:?}");
    assert_eq!(certificates(&sdk).await.len(), 2);

    // A new domain where someone else's record is: refused before any change.
    let with_domain = |domain: &str| with_https(&[("name", "name = \"app\"")], &format!("domain = \"{domain}\""));
    let foreign = ("www.example.com", RrType::A, "192.0.2.10");
    change_record(&sdk, &zone, ChangeAction::Upsert, foreign.clone()).await;
    app.write_config(&with_domain("www.example.com"));
    let calls = realism.calls().len();
    let refused = app.run(&["up", "--no-wait"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("www.example.com"), "{}", refused.stderr);
    assert!(mutating_calls(&realism.calls()[calls..]).is_empty(), "refused before any change");
    change_record(&sdk, &zone, ChangeAction::Delete, foreign).await;

    // A new domain: `up` replaces the certificate and both records itself, new first; HTTPS is
    // served throughout, the old name stops resolving.
    let state_of = |cli: &Cli, name: &str| -> Value {
        let path = cli.dir.path().join(".fargate-stack").join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let state = state_of(&app, "app");
    let (old_certificate, old_validation) = (id(&state, "certificate"), id(&state, "dns-validation-record"));
    app.write_config(&with_domain("web.example.com"));
    let plan = app.run(&["up", "--dry-run"]).ok().stdout;
    for row in [
        "replace the certificate (https.domain: app.example.com → web.example.com)",
        "replace the alias record app.example.com (https.domain: app.example.com. → web.example.com.)",
        "then app.example.com's record is deleted: app.example.com stops resolving",
        "(replaces it: new one first, as above)",
    ] {
        assert!(plan.contains(row), "{row}: {plan}");
    }
    assert!(!plan.contains("refused") && !plan.contains("no downtime"), "{plan}");
    let done = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    let notes = done["notes"].to_string();
    for note in [format!("certificate {old_certificate} deleted"), "DNS record app.example.com. deleted".into()] {
        assert!(notes.contains(&note), "{note}: {done:#}");
    }
    let state = state_of(&app, "app");
    let new_certificate = id(&state, "certificate");
    assert_ne!(new_certificate, old_certificate);
    let (_, https) = listeners(&sdk, &id(&state, "load-balancer")).await;
    let served: Vec<String> =
        https.unwrap().certificates().iter().filter_map(|c| c.certificate_arn()).map(str::to_string).collect();
    assert_eq!(served, [new_certificate.as_str()], "the listener serves the new certificate");
    let mut now = certificates(&sdk).await;
    now.retain(|c| c != &id(&state_of(&app2, "app-2"), "certificate"));
    assert_eq!(now, [new_certificate], "the old certificate is deleted");
    let now = records(&sdk, &zone).await;
    assert_eq!(now.len(), 4, "{now:?}");
    assert!(now.iter().any(|r| r.0 == "web.example.com." && r.2.starts_with("alias ")), "{now:?}");
    assert!(now.iter().all(|r| r.0 != "app.example.com." && r.0 != old_validation), "{now:?}");
    let again = app.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(again["nothing_to_change"], true, "{again:#}");
    assert_eq!(app.run(&["up", "--dry-run", "--detailed-exitcode"]).code, 0, "no changes");
    // And back, for what follows.
    app.write_config(&with_domain("app.example.com"));
    app.run(&["up", "--no-wait"]).ok();
    assert_eq!(records(&sdk, &zone).await.len(), 4);

    // `list` judges each stack by what it carries, from whichever directory it runs in: one with
    // [https] and one without.
    let plain = Cli::at(&realism.url());
    plain.write_config(&config_with(&[("name", "name = \"plain\"")]));
    plain.run(&["up", "--no-wait"]).ok();
    let listed = |cli: &Cli| -> Vec<(String, String, u64, u64)> {
        let doc = cli.run(&["--output", "json", "list"]).ok().json();
        doc["stacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let url = s["url"].as_str().unwrap_or("-").to_string();
                (
                    s["name"].as_str().unwrap().to_string(),
                    url,
                    s["resources"].as_u64().unwrap(),
                    s["expected"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let from_https = listed(&app2);
    let with_https = resources_of(
        &fargate_stack::config::Config::parse("t", &with_https(&[], &format!("domain = \"{DOMAIN}\""))).unwrap(),
    ) as u64;
    for (name, url) in [("app", "https://app.example.com"), ("app-2", "https://app-2.example.com")] {
        assert!(from_https.contains(&(name.into(), url.into(), with_https, with_https)), "{name}: {from_https:?}");
    }
    let row = from_https.iter().find(|s| s.0 == "plain").unwrap();
    assert!(
        row.1.starts_with("http://") && (row.2, row.3) == (default_resources() as u64, default_resources() as u64),
        "{row:?}"
    );
    assert_eq!(listed(&plain), from_https, "the same from a directory without [https]");

    app.run(&["down", "--yes"]).ok();
    let left = records(&sdk, &zone).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|(name, _, _)| name.ends_with("app-2.example.com.")), "{left:?}");
    let state2: Value = serde_json::from_str(
        &std::fs::read_to_string(app2.dir.path().join(".fargate-stack").join("app-2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(certificates(&sdk).await, [id(&state2, "certificate")]);
    let (_, https) = listeners(&sdk, &id(&state2, "load-balancer")).await;
    assert!(https.is_some());
    let status = app2.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);

    app2.run(&["down", "--yes"]).ok();
    plain.run(&["down", "--yes"]).ok();
    assert!(records(&sdk, &zone).await.is_empty());
    assert!(certificates(&sdk).await.is_empty());
    assert!(leftovers(&sdk, "app").await.is_empty(), "app and app-2");
}

/// A domain change killed right after the new certificate's request: the next `up` finishes it with
/// that certificate; one killed once the listener moved: `down` still removes old and new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_domain_change_is_finished_by_up_or_removed_by_down() {
    let (_emulator, sdk, zone, realism, cli) = with_a_domain().await;
    cli.run(&["up", "--no-wait"]).ok();
    let old = id(&cli.state().unwrap(), "certificate");

    cli.write_config(&with_https(&[], "domain = \"web.example.com\""));
    kill_after(&cli, &realism, "RequestCertificate");
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    let unfinished = format!("unfinished: an interrupted `up` began replacing certificate {old} ({DOMAIN})");
    assert!(plan.contains(&unfinished), "{plan}");
    let before = realism.calls().len();
    cli.run(&["up", "--no-wait"]).ok();
    let requested = mutating_calls(&realism.calls()[before..]).iter().filter(|a| *a == "RequestCertificate").count();
    assert_eq!(requested, 1, "the same request, answered with the same certificate");
    let new = id(&cli.state().unwrap(), "certificate");
    assert_eq!(certificates(&sdk).await, [new.as_str()], "the old one deleted, one new one");
    let names: Vec<String> = records(&sdk, &zone).await.into_iter().map(|r| r.0).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"web.example.com.".to_string()), "{names:?}");
    assert!(!cli.run(&["up", "--dry-run"]).ok().stdout.contains("unfinished"));

    // Killed once the HTTPS listener serves the new certificate: both certificates and three
    // records exist; `down` removes them all.
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"")));
    kill_after(&cli, &realism, "ModifyListener");
    assert_eq!(certificates(&sdk).await.len(), 2);
    down_leaves_nothing(&cli, &sdk, &zone).await;
}

/// A new `hosted_zone_id`: `up` writes both records in the new zone, then deletes the old zone's;
/// the certificate stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hosted_zone_gets_the_records_before_the_old_one_loses_them() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let first = make_zone(&sdk, "example.com", "zone-1").await;
    let second = make_zone(&sdk, "example.com", "zone-2").await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    let in_zone = |zone: &str| with_https(&[], &format!("domain = \"{DOMAIN}\"\nhosted_zone_id = \"{zone}\""));
    cli.write_config(&in_zone(&first));
    cli.run(&["up", "--no-wait"]).ok();
    let mut before = records(&sdk, &first).await;
    before.sort();
    assert_eq!(before.len(), 2, "{before:?}");
    let certificate = id(&cli.state().unwrap(), "certificate");

    cli.write_config(&in_zone(&second));
    let plan = cli.run(&["up", "--dry-run"]).ok().stdout;
    let row = format!("replace the alias record {DOMAIN} (https.hosted_zone_id: {first} → {second})");
    assert!(plan.contains(&row) && plan.contains("the old zone's is deleted"), "{plan}");
    assert!(!plan.contains("refused") && !plan.contains("stops resolving"), "{plan}");
    cli.run(&["up", "--no-wait"]).ok();
    let mut after = records(&sdk, &second).await;
    after.sort();
    assert_eq!(after, before, "the same records, in the new zone");
    assert!(records(&sdk, &first).await.is_empty(), "{:?}", records(&sdk, &first).await);
    assert_eq!(certificates(&sdk).await, [certificate], "the certificate is kept");
    let again = cli.run(&["--output", "json", "up", "--no-wait"]).ok().json();
    assert_eq!(again["nothing_to_change"], true, "{again:#}");

    cli.run(&["down", "--yes"]).ok();
    assert!(records(&sdk, &second).await.is_empty());
    assert!(certificates(&sdk).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_is_not_ours_is_refused_before_any_change_and_never_deleted() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let first = make_zone(&sdk, "example.com", "zone-1").await;
    put_record(&sdk, &first, DOMAIN, RrType::A, "192.0.2.10").await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    let refusal = |config: String, needle: &str| {
        cli.write_config(&config);
        let run = cli.run(&["up", "--no-wait"]);
        assert_eq!(run.code, 1, "{needle}: {}", run.stderr);
        assert!(run.stderr.contains(needle) && run.stderr.contains("nothing was changed"), "{needle}: {}", run.stderr);
        assert!(mutating_calls(&realism.calls()).is_empty(), "{needle}: {:?}", mutating_calls(&realism.calls()));
    };

    let domain = with_https(&[], &format!("domain = \"{DOMAIN}\""));
    let plan = {
        cli.write_config(&domain);
        let run = cli.run(&["--output", "json", "up", "--dry-run"]);
        assert_eq!(run.code, 1, "a blocked plan is an error: {}", run.stderr);
        run.json()
    };
    assert_eq!(row(&plan, "resources", "dns-alias-record")["action"], "blocked", "{plan}");
    assert!(plan["blocked"][0].as_str().unwrap().contains("points to 192.0.2.10"), "{plan}");
    refusal(domain.clone(), "route53:record api.example.com. A is not stack simple-ecs-dev's (it points to 192.0.2.10");
    refusal(
        with_https(&[], "domain = \"api.example.org\""),
        "no public hosted zone of this account is named api.example.org.",
    );

    // Two public zones of that name: which one is meant is not guessed.
    let second = make_zone(&sdk, "example.com", "zone-2").await;
    refusal(domain, "2 public hosted zones are named example.com.");

    // Named, the second zone (where nothing is in the way) is used.
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"\nhosted_zone_id = \"{second}\"")));
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(records(&sdk, &second).await.len(), 2);
    assert_eq!(records(&sdk, &first).await, [(format!("{DOMAIN}."), "A".into(), "192.0.2.10".into())]);

    // Someone points our name elsewhere: drift for `status`, and `down` leaves it alone.
    put_record(&sdk, &second, DOMAIN, RrType::A, "192.0.2.20").await;
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 3, "{}", status.stdout);
    assert_eq!(row(&status.json(), "resources", "dns-alias-record")["status"], "drifted");
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(down.stderr.contains("left DNS record api.example.com. alone"), "{}", down.stderr);
    assert_eq!(records(&sdk, &second).await, [(format!("{DOMAIN}."), "A".into(), "192.0.2.20".into())]);
    assert_eq!(records(&sdk, &first).await, [(format!("{DOMAIN}."), "A".into(), "192.0.2.10".into())]);
    assert!(certificates(&sdk).await.is_empty());
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validation_record_another_certificate_relies_on_is_kept() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let zone = make_zone(&sdk, "example.com", "zone-1").await;
    let realism = realism(&emulator);
    let user = sdk_at(&realism.url(), "us-east-1").await;
    let cli = Cli::at(&realism.url());

    // The user's own certificate for the domain, validated already: on AWS every certificate of
    // the account for the domain is validated by the same record.
    let theirs =
        user.acm.request_certificate().domain_name(DOMAIN).validation_method("DNS".into()).send().await.unwrap();
    let theirs = theirs.certificate_arn().unwrap().to_string();
    let record = loop {
        let d = user.acm.describe_certificate().certificate_arn(&theirs).send().await.unwrap();
        if let Some(r) = d.certificate().unwrap().domain_validation_options()[0].resource_record() {
            break r.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    put_record(&sdk, &zone, record.name(), RrType::Cname, record.value()).await;
    cli.write_config(&with_https(&[], &format!("domain = \"{DOMAIN}\"")));
    cli.run(&["up", "--no-wait"]).ok();
    assert!(cli.state().unwrap()["resources"]["dns-validation-record"]["attrs"].get("created").is_none());
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    // Notes are part of the result (stdout).
    assert!(down.stdout.contains("existed before this stack used it"), "{}", down.stdout);
    assert_eq!(records(&sdk, &zone).await.len(), 1, "the shared record stays");
    assert_eq!(certificates(&sdk).await, std::slice::from_ref(&theirs));

    // A record the stack wrote, that a certificate requested since relies on, stays too.
    let www = "www.example.com";
    cli.write_config(&with_https(&[], &format!("domain = \"{www}\"")));
    cli.run(&["up", "--no-wait"]).ok();
    assert_eq!(cli.state().unwrap()["resources"]["dns-validation-record"]["attrs"]["created"], "true");
    let later = user.acm.request_certificate().domain_name(www).validation_method("DNS".into()).send().await.unwrap();
    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(down.stdout.contains(later.certificate_arn().unwrap()), "{}", down.stdout);
    assert_eq!(records(&sdk, &zone).await.len(), 2, "{:?}", records(&sdk, &zone).await);
    assert!(leftovers(&sdk, STACK).await.is_empty());
}

/// The rules on a listener other than its default, each as (ARN, its actions' types, its forward's
/// (target group, weight) sorted by target group); and the default action.
async fn rules_of(
    sdk: &Sdk,
    listener: &str,
) -> (Vec<(String, Vec<String>, Vec<(String, i32)>)>, aws_sdk_elasticloadbalancingv2::types::Action) {
    let out = sdk.elb.describe_rules().listener_arn(listener).send().await.unwrap();
    let default = out.rules().iter().find(|r| r.is_default() == Some(true)).expect("a default rule");
    let rules = out
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .map(|r| {
            let kinds = r.actions().iter().map(|a| a.r#type().map_or("?", |t| t.as_str()).to_string()).collect();
            let groups = r.actions().iter().filter_map(|a| a.forward_config()).flat_map(|c| c.target_groups());
            let mut weights: Vec<(String, i32)> =
                groups.map(|t| (t.target_group_arn().unwrap().to_string(), t.weight().unwrap_or(0))).collect();
            weights.sort();
            (r.rule_arn().unwrap().to_string(), kinds, weights)
        })
        .collect();
    (rules, default.actions()[0].clone())
}

/// Port 80 redirects to HTTPS, with no rule of its own.
async fn port_80_redirects(sdk: &Sdk, http: &aws_sdk_elasticloadbalancingv2::types::Listener) {
    assert_eq!(http.default_actions().len(), 1, "a redirect, no forward: {http:?}");
    let redirect = http.default_actions()[0].redirect_config().expect("port 80 redirects");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));
    let (rules, _) = rules_of(sdk, http.listener_arn().unwrap()).await;
    assert!(rules.is_empty(), "no rule on the HTTP listener: {rules:?}");
}

/// A canary stack with `[https]` and `redirect_http` (issue 20: forward-only rules on the traffic
/// listener): the production rule is on the HTTPS listener, whose default answers 404, and port 80
/// keeps redirecting; a canary deploy moves the HTTPS rule's weights; `status` and the plan see no
/// drift after it; `down` removes it all but the given certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_behind_https_shifts_the_https_listener_and_port_80_keeps_redirecting() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let given = import_certificate(&sdk, DOMAIN, 365).await;
    let realism = realism(&emulator);
    let cli = Cli::at(&realism.url());
    let canary = [("strategy", "strategy = \"canary\""), ("bake_minutes", "bake_minutes = 0")];
    cli.write_config(&with_https(&canary, &format!("certificate_arn = \"{given}\"\nredirect_http = true")));
    let up = cli.run(&["--output", "json", "up"]);
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);

    let state = cli.state().unwrap();
    let (tg, alt) = (id(&state, "target-group"), id(&state, "target-group-alternate"));
    let rule = id(&state, "listener-rule-production");
    let (http, https) = listeners(&sdk, &id(&state, "load-balancer")).await;
    let https = https.expect("an HTTPS listener").listener_arn().unwrap().to_string();
    assert_eq!(https, id(&state, "listener-https"));
    assert_eq!(state["resources"]["listener-rule-production"]["attrs"]["listener"], https.as_str());
    let forward = vec!["forward".to_string()];
    let weighted = |tg_weight: i32| {
        let mut weights = vec![(tg.clone(), tg_weight), (alt.clone(), 100 - tg_weight)];
        weights.sort();
        vec![(rule.clone(), forward.clone(), weights)]
    };
    let (rules, default) = rules_of(&sdk, &https).await;
    assert_eq!(rules, weighted(100), "all on the target group, forward only");
    assert_eq!(default.r#type().unwrap().as_str(), "fixed-response", "{default:?}");
    assert_eq!(default.fixed_response_config().and_then(|f| f.status_code()), Some("404"));
    port_80_redirects(&sdk, &http).await;

    // ECS's canary, run by the realism layer, moves the HTTPS rule's weights: the new tasks serve
    // from the alternate group.
    let deploy = cli.run(&["--output", "json", "deploy", "--image", "nginx:1.28"]);
    assert_eq!(deploy.code, 0, "{}\n{}", deploy.stdout, deploy.stderr);
    // (Not the deploy's `deploy_phase` events: at this time scale the whole canary can finish between
    // two of the watcher's reads, which then sees no phase. The rule's weights are what ECS left.)
    let (rules, default) = rules_of(&sdk, &https).await;
    assert_eq!(rules, weighted(0), "all on the alternate group");
    assert_eq!(default.r#type().unwrap().as_str(), "fixed-response");
    let (http, _) = listeners(&sdk, &id(&state, "load-balancer")).await;
    port_80_redirects(&sdk, &http).await;

    // No drift: the weights are ECS's.
    let status = cli.run(&["--output", "json", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let doc = status.json();
    for r in doc["resources"].as_array().unwrap() {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert_eq!(doc["service"]["healthy_targets"], 2, "{}", doc["service"]);
    let plan = cli.run(&["up", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "no changes: {}", plan.stdout);

    let down = cli.run(&["down", "--yes"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(leftovers(&sdk, STACK).await.is_empty(), "{:?}", leftovers(&sdk, STACK).await);
    assert_eq!(certificates(&sdk).await, [given], "a given certificate is never deleted");
}
