//! The config's checks: each bad value is named with its key and what is allowed.

use ipnet::Ipv4Net;

use super::*;

fn with(edit: &str) -> Result<Config, ConfigError> {
    // Replace one `key = value` line of the default, or append a section.
    let (key, _) = edit.split_once('=').expect("key = value");
    let key = key.trim();
    let mut replaced = false;
    let text: String = DEFAULT_TOML
        .lines()
        .map(|line| {
            if !replaced && line.trim_start().starts_with(&format!("{key} ")) {
                replaced = true;
                edit.to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(replaced, "no line for {key}");
    Config::parse("test", &text)
}

fn err(edit: &str) -> String {
    with(edit).expect_err(edit).to_string()
}

#[test]
fn default_config_is_the_reference_stack() {
    let c = Config::parse("default", DEFAULT_TOML).unwrap();
    assert_eq!(c.name, "simple-ecs-dev");
    assert_eq!(c.network.cidr.to_string(), "10.0.0.0/16");
    assert_eq!((c.network.az_count, c.network.nat(), c.network.nat_gateway_count()), (2, NatMode::Single, 1));
    assert_eq!((c.service.cpu, c.service.memory, c.service.container_port), (256, 512, 80));
    assert_eq!(c.service.desired_count, 2);
    assert_eq!(c.table.partition_key.kind, KeyType::S);
    assert_eq!(c.table.sort_key.as_ref().unwrap().name, "created_at");
    assert_eq!(c.service.environment["APP_ID"], "nginx-ecs-server");
    let plan = c.subnet_plan().unwrap();
    let s = |v: &[Ipv4Net]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(s(&plan.public), ["10.0.0.0/24", "10.0.1.0/24"]);
    assert_eq!(s(&plan.private), ["10.0.2.0/24", "10.0.3.0/24"]);
    let env = c.container_environment("t1");
    assert_eq!(env[TABLE_ENV_VAR], "t1");
}

#[test]
fn unknown_key_is_named() {
    let e = Config::parse("x.toml", &format!("{DEFAULT_TOML}\n[extra]\nfoo = 1\n")).unwrap_err();
    assert!(e.to_string().contains("extra"), "{e}");
    let e = Config::parse("x.toml", &DEFAULT_TOML.replace("az_count = 2", "az_count = 2\nazs = 3")).unwrap_err();
    assert!(e.to_string().contains("unknown field `azs`"), "{e}");
}

/// The line of `key = ` in the default config.
fn line_in_default(key: &str) -> usize {
    DEFAULT_TOML.lines().position(|l| l.trim_start().starts_with(&format!("{key} "))).unwrap() + 1
}

#[test]
fn every_error_is_file_line_key_message() {
    let e = |text: String| Config::parse("x.toml", &text).unwrap_err().to_string();
    let cidr = line_in_default("cidr");
    let cpu = line_in_default("cpu");
    let memory = line_in_default("memory");
    let cases = [
        // Syntax, type and value errors.
        (
            e(DEFAULT_TOML.replace("10.0.0.0/16", "10.0.0.0/33")),
            format!("x.toml:{cidr}: network.cidr: \"10.0.0.0/33\": "),
        ),
        (
            e(DEFAULT_TOML.replace("cpu = 256", "cpu = \"256\"")),
            format!("x.toml:{cpu}: service.cpu: \"256\": invalid type"),
        ),
        (e(DEFAULT_TOML.replace("name = ", "name = = ")), "x.toml:".to_string()),
        // Checks made after parsing: at the line of their key.
        (e(DEFAULT_TOML.replace("memory = 512", "memory = 4096")), format!("x.toml:{memory}: service.memory: 4096: ")),
        (e(DEFAULT_TOML.replace("cpu = 256", "cpu = 300")), format!("x.toml:{cpu}: service.cpu: 300: ")),
        // Unknown keys.
        (
            e(DEFAULT_TOML.replace("az_count = 2", "az_count = 2\nazs = 3")),
            format!("x.toml:{}: network.azs: ", cidr + 2),
        ),
        // A missing section, and a missing key.
        (e(DEFAULT_TOML.replace("[table]", "[tables]")), "x.toml:".to_string()),
        (e(DEFAULT_TOML.replace("image = ", "# image = ")), "x.toml:".to_string()),
    ];
    for (error, start) in &cases {
        assert!(error.starts_with(start.as_str()), "{error} does not start with {start}");
        assert!(!error.contains('\n'), "{error}");
        let (file, rest) = error.split_once(':').unwrap();
        let (line, rest) = rest.split_once(": ").unwrap();
        let (key, message) = rest.split_once(": ").unwrap();
        assert_eq!(file, "x.toml");
        assert!(line.parse::<usize>().is_ok(), "{error}");
        assert!(!key.is_empty() && !key.contains(' ') && !message.is_empty(), "{error}");
    }
    let missing = e(without("[table]"));
    assert!(missing.starts_with("x.toml:1: table: missing: this section is required"), "{missing}");
    let no_image = e(DEFAULT_TOML.replace("image = ", "# image = "));
    assert!(no_image.contains(": service.image: missing: this key is required"), "{no_image}");
}

/// The default config without one section (its header and keys).
fn without(section: &str) -> String {
    let mut skipping = false;
    let text: Vec<&str> = DEFAULT_TOML
        .lines()
        .filter(|l| {
            if l.starts_with('[') {
                skipping = l.trim() == section;
            }
            !skipping
        })
        .collect();
    text.join("\n")
}

#[test]
fn logs_and_load_balancer_default_when_absent() {
    let full = Config::parse("x.toml", DEFAULT_TOML).unwrap();
    assert_eq!(Config::parse("x.toml", &without("[logs]")).unwrap().logs, full.logs);
    assert_eq!(Config::parse("x.toml", &without("[load_balancer]")).unwrap().load_balancer, full.load_balancer);
}

#[test]
fn the_source_names_the_file_and_hashes_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prod.toml");
    std::fs::write(&path, DEFAULT_TOML).unwrap();
    let (_, source) = Config::load(Some(&path)).unwrap();
    assert_eq!(source.path, path.display().to_string());
    assert_eq!(source.sha256.len(), 64);
    assert_eq!(source.sha256, ConfigSource::of(BUILT_IN.into(), DEFAULT_TOML).sha256);
}

#[test]
fn malformed_toml_is_one_line() {
    let e = Config::parse("x.toml", "name = \n").unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.starts_with("x.toml:1: name: "), "{e}");
}

#[test]
fn names() {
    assert!(err("name = \"Bad_Name\"").contains(": name: "));
    assert!(err("name = \"\"").contains(": name: "));
    assert!(err("name = \"this-name-is-far-too-long\"").contains("1-20"));
    assert!(err("name = \"-x\"").contains(": name: "));
    assert!(with("name = \"a-1\"").is_ok());
}

#[test]
fn state_locations_are_checked_with_the_config() {
    let state = |line: &str| DEFAULT_TOML.replace("# region = \"us-east-1\"", line);
    let c = Config::parse("x.toml", &state("state = \"s3://team-state/stacks/\"")).unwrap();
    assert_eq!(c.state.as_deref(), Some("s3://team-state/stacks/"));
    let e = Config::parse("x.toml", &state("state = \"s3://Team_State/x.json\"")).unwrap_err().to_string();
    assert!(e.contains(": state: \"s3://Team_State/x.json\"") && e.contains("a-z, 0-9"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(Config::parse("x.toml", DEFAULT_TOML).unwrap().state.is_none());
}

#[test]
fn cidr() {
    assert!(err("cidr = \"10.0.0.0/25\"").contains("network.cidr"));
    assert!(err("cidr = \"10.0.0.0/23\"").contains("/24 subnets"));
    assert!(with("cidr = \"10.0.0.0/22\"").is_ok());
    assert!(err("cidr = \"10.0.0.0/8\"").contains("network.cidr"));
    assert!(err("cidr = \"10.0.0.1/16\"").contains("host bits"));
    assert!(err("cidr = \"8.8.0.0/16\"").contains("private range"));
    assert!(err("cidr = \"not-a-cidr\"").contains("test:"));
}

/// The default text with `nat` replaced by `lines` (the deprecated key, or both).
fn with_nat(lines: &str) -> Result<Config, ConfigError> {
    let text = DEFAULT_TOML.replace("nat = \"single\"", lines);
    assert_ne!(text, DEFAULT_TOML, "the default sets nat");
    Config::parse("test", &text)
}

#[test]
fn az_count_and_nat_modes() {
    assert!(err("az_count = 1").contains("network.az_count"));
    assert!(err("az_count = 7").contains("network.az_count"));
    let modes = [("single", 1, 1, true), ("per_az", 2, 2, true), ("regional", 0, 1, true), ("none", 0, 0, false)];
    for (mode, nats, tables, private) in modes {
        let c = with(&format!("nat = \"{mode}\"")).unwrap();
        assert_eq!((c.network.nat().as_str(), c.network.nat_gateway_count()), (mode, nats));
        assert_eq!(c.network.private_route_tables(), tables, "{mode}");
        assert_eq!(c.network.private_tasks(), private, "{mode}");
        assert_eq!(c.network.deprecation(), None);
    }
    let unknown = err("nat = \"one\"");
    assert!(unknown.contains("network.nat") && unknown.contains("regional"), "the key and allowed values: {unknown}");
}

#[test]
fn the_deprecated_nat_gateways_maps_to_a_mode_or_is_refused() {
    let single = with_nat("nat_gateways = 1").unwrap();
    assert_eq!(single.network.nat(), NatMode::Single);
    assert!(single.network.deprecation().unwrap().contains("nat = \"single\""));
    let per_az = with_nat("nat_gateways = 3").map(drop).expect_err("3 of 2 AZs").to_string();
    assert!(per_az.contains("network.nat_gateways") && per_az.contains("network.nat = "), "{per_az}");
    let text = DEFAULT_TOML.replace("az_count = 2", "az_count = 3").replace("nat = \"single\"", "nat_gateways = 3");
    let c = Config::parse("test", &text).unwrap();
    assert_eq!((c.network.nat(), c.network.nat_gateway_count()), (NatMode::PerAz, 3));
    assert!(c.network.deprecation().unwrap().contains("nat = \"per_az\""));
    // Between 1 and az_count there is no mode: both keys and what to write are named.
    let between = Config::parse("test", &text.replace("nat_gateways = 3", "nat_gateways = 2")).unwrap_err().to_string();
    assert!(between.contains("network.nat_gateways") && between.contains("\"per_az\""), "{between}");
    let both = with_nat("nat = \"none\"\nnat_gateways = 1").unwrap_err().to_string();
    assert!(both.contains("network.nat") && both.contains("network.nat_gateways = 1"), "{both}");
}

#[test]
fn fargate_sizes() {
    assert!(err("cpu = 300").contains("Fargate accepts cpu 256, 512"));
    assert!(err("memory = 4096").contains("with cpu 256 Fargate accepts memory 512, 1024, 2048"));
    assert!(with("memory = 2048").is_ok());
}

#[test]
fn ports() {
    assert!(err("container_port = 0").contains("service.container_port"));
    assert!(err("container_port = 65536").contains("between 1 and 65535"));
    assert!(err("listener_port = 0").contains("load_balancer.listener_port"));
}

#[test]
fn retention() {
    assert!(err("retention_days = 10").contains("CloudWatch accepts 1, 3, 5, 7, 14"));
    assert!(with("retention_days = 30").is_ok());
}

#[test]
fn images() {
    for good in [
        "nginx",
        "nginx:latest",
        "library/nginx:1.27-alpine",
        "public.ecr.aws/nginx/nginx:1.27",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1.2",
        "localhost:5000/app",
        "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        assert!(validate_image(good).is_ok(), "{good}");
    }
    for bad in ["", "Nginx", "nginx:", "nginx: latest", "ngi nx", "nginx@sha256:abc", "a//b", "-x"] {
        assert!(validate_image(bad).is_err(), "{bad:?}");
    }
    assert!(err("image = \"NGINX\"").contains("service.image"));
}

#[test]
fn secrets_are_references_under_variable_names() {
    let secrets = |body: &str| Config::parse("t.toml", &format!("{DEFAULT_TOML}\n[service.secrets]\n{body}\n"));
    let ok = secrets("DB_PASSWORD = \"ssm:/app/db\"\nAPI = \"secretsmanager:prod/api:token\"").unwrap();
    assert_eq!(
        ok.secret_sources(),
        [
            ("API".to_string(), SecretSource::Secret { id: "prod/api".into(), json_key: Some("token".into()) }),
            ("DB_PASSWORD".to_string(), SecretSource::Parameter("/app/db".into())),
        ]
    );
    for (body, wanted) in [
        ("DB = \"/app/db\"", "service.secrets: DB = \"/app/db\": expected \"ssm:"),
        ("APP_ID = \"ssm:/x\"", "also set in [service.environment]"),
        ("DYNAMODB_MESSAGES_TABLE = \"ssm:/x\"", "set by fargate-stack"),
        ("\"1X\" = \"ssm:/x\"", "names are letters"),
    ] {
        let e = secrets(body).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:") && e.contains("service.secrets: "), "{e}");
        assert!(e.contains(wanted), "{e}");
    }
}

#[test]
fn environment_and_keys() {
    let e = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", "DYNAMODB_MESSAGES_TABLE =")).unwrap_err();
    assert!(e.to_string().contains("set by fargate-stack"), "{e}");
    let e = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", "\"1BAD\" =")).unwrap_err();
    assert!(e.to_string().contains("service.environment"), "{e}");
    for secret in [
        "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key",
        "ECS_ENGINE_AUTH_DATA",
        "DB_PASSWORD",
        "API_TOKEN",
        "CLIENT_SECRET",
        "TLS_PRIVATE_KEY",
    ] {
        let e = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", &format!("{secret} ="))).unwrap_err().to_string();
        assert!(e.contains("service.environment") && e.contains(secret), "{e}");
        assert!(e.contains("Secrets Manager") && e.contains("README"), "{e}");
    }
    for plain in ["APP_ID", "PASS_THROUGH", "AWS_REGION", "KEY_ID"] {
        let ok = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", &format!("{plain} =")));
        assert!(ok.is_ok(), "{plain}: {ok:?}");
    }
    let e = Config::parse("t", &DEFAULT_TOML.replace("type = \"N\"", "type = \"X\"")).unwrap_err();
    assert!(e.to_string().starts_with("t:") && e.to_string().contains("table.sort_key"), "{e}");
    let e = Config::parse("t", &DEFAULT_TOML.replace("\"created_at\"", "\"id\"")).unwrap_err();
    assert!(e.to_string().contains("table.sort_key"), "{e}");
}

#[test]
fn health_checks() {
    assert!(err("health_check_path = \"health\"").contains("service.health_check_path"));
    assert!(err("health_check_interval_seconds = 4").contains("between 5 and 300"));
    assert!(err("health_check_timeout_seconds = 10").contains("less than"));
    assert!(err("healthy_threshold = 1").contains("load_balancer.healthy_threshold"));
}

fn https(section: &str) -> Result<Config, ConfigError> {
    Config::parse("t", &format!("{DEFAULT_TOML}\n[https]\n{section}\n"))
}

#[test]
fn https_takes_certificate_arn_or_domain_or_both() {
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666";
    // Both: the given certificate, and the domain's alias record (no certificate requested).
    let both = https(&format!("certificate_arn = \"{arn}\"\ndomain = \"api.example.com\"")).unwrap();
    let both = both.https.unwrap();
    assert_eq!((both.certificate_arn.as_deref(), both.domain.as_deref()), (Some(arn), Some("api.example.com")));
    let neither = https("redirect_http = false").unwrap_err().to_string();
    assert!(neither.contains("https.certificate_arn") && neither.contains("https.domain"), "{neither}");
    let c = https("domain = \"api.example.com\"").unwrap();
    let h = c.https.unwrap();
    assert_eq!(h.domain.as_deref(), Some("api.example.com"));
    assert!(h.redirect_http, "redirect is the default");
    assert_eq!(h.ssl_policy, "ELBSecurityPolicy-TLS13-1-2-2021-06");
    assert!(https(&format!("certificate_arn = \"{arn}\"\nredirect_http = false")).is_ok());
    assert!(Config::parse("t", DEFAULT_TOML).unwrap().https.is_none(), "absent: HTTP only");
}

#[test]
fn https_values_are_checked() {
    for (section, needle) in [
        ("certificate_arn = \"arn:aws:iam::123456789012:server-certificate/x\"", "https.certificate_arn"),
        ("certificate_arn = \"arn:aws:acm:us-east-1:1234:certificate/x\"", "ACM certificate ARN"),
        ("domain = \"API.example.com\"", "lower case"),
        ("domain = \"*.example.com\"", "wildcard"),
        ("domain = \"example\"", "fully qualified"),
        ("domain = \"api..example.com\"", "fully qualified"),
        ("domain = \"-api.example.com\"", "fully qualified"),
        ("domain = \"api.example.com.\"", "trailing dot"),
        ("domain = \"a.example.com\"\nhosted_zone_id = \"/hostedzone/Z1\"", "https.hosted_zone_id"),
        ("domain = \"a.example.com\"\nssl_policy = \"TLS1.3\"", "https.ssl_policy"),
        ("domain = \"a.example.com\"\nunknown = 1", "unknown field `unknown`"),
    ] {
        let e = https(section).unwrap_err().to_string();
        assert!(e.contains(needle), "{section}: {e}");
    }
    // ELB.17: a policy that allows TLS 1.0 or 1.1 is refused, naming the key and why.
    for outdated in
        ["ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-0-2015-04", "ELBSecurityPolicy-TLS13-1-1-2021-06"]
    {
        let e = https(&format!("domain = \"a.example.com\"\nssl_policy = \"{outdated}\"")).unwrap_err().to_string();
        assert!(e.contains("https.ssl_policy:") && e.contains("TLS 1.0 or 1.1"), "{outdated}: {e}");
    }
    for current in ["ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06"] {
        assert!(https(&format!("domain = \"a.example.com\"\nssl_policy = \"{current}\"")).is_ok(), "{current}");
    }
    let long = format!("{}.example.com", "a".repeat(60));
    assert!(https(&format!("domain = \"{long}\"")).unwrap_err().to_string().contains("64"));
    let zone_without_domain =
        https("certificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc\"\nhosted_zone_id = \"Z1\"");
    assert!(zone_without_domain.unwrap_err().to_string().contains("only with `https.domain`"));
    assert!(https("domain = \"a.example.com\"\nhosted_zone_id = \"Z0123ABC\"").is_ok());
    let port = Config::parse(
        "t",
        &format!(
            "{}\n[https]\ndomain = \"a.example.com\"\n",
            DEFAULT_TOML.replace("listener_port = 80", "listener_port = 443")
        ),
    );
    assert!(port.unwrap_err().to_string().contains("load_balancer.listener_port"));
    let other_region = Config::parse(
        "t",
        &format!(
            "{}\n[https]\ncertificate_arn = \"arn:aws:acm:eu-west-1:123456789012:certificate/abc\"\n",
            DEFAULT_TOML.replace("# region = \"us-east-1\"", "region = \"us-east-1\"")
        ),
    );
    assert!(other_region.unwrap_err().to_string().contains("its own region"));
}

fn scaled(section: &str) -> Result<Config, ConfigError> {
    Config::parse("test", &format!("{DEFAULT_TOML}\n[autoscaling]\n{section}\n"))
}

fn scaling_err(section: &str) -> String {
    scaled(section).expect_err(section).to_string()
}

#[test]
fn autoscaling_is_off_unless_configured_and_has_defaults() {
    assert_eq!(Config::parse("t", DEFAULT_TOML).unwrap().autoscaling, None);
    let a = scaled("min_count = 2\nmax_count = 10").unwrap().autoscaling.unwrap();
    assert_eq!((a.min_count, a.max_count, a.cpu_target_percent), (2, 10, 60));
    assert_eq!((a.scale_in_cooldown_seconds, a.scale_out_cooldown_seconds), (300, 60));
    assert_eq!(a.requests_per_target, None);
    let full = "min_count = 1\nmax_count = 100\ncpu_target_percent = 90\nrequests_per_target = 1\n\
                scale_in_cooldown_seconds = 0\nscale_out_cooldown_seconds = 3600";
    let config = Config::parse(
        "t",
        &format!("{}\n[autoscaling]\n{full}\n", DEFAULT_TOML.replace("desired_count = 2", "desired_count = 1")),
    );
    assert_eq!(config.unwrap().autoscaling.unwrap().requests_per_target, Some(1));
    assert_eq!((a.clamp(1), a.clamp(5), a.clamp(11)), (2, 5, 10));
}

#[test]
fn the_documented_autoscaling_section_is_valid() {
    let section: String = DEFAULT_TOML
        .lines()
        .skip_while(|l| !l.starts_with("# [autoscaling]"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(section.starts_with("[autoscaling]"), "config/default.toml documents [autoscaling] last");
    let scaling = Config::parse("t", &format!("{DEFAULT_TOML}\n{section}\n")).unwrap().autoscaling.unwrap();
    assert_eq!((scaling.min_count, scaling.max_count, scaling.requests_per_target), (2, 10, Some(1000)));
    let names: Vec<&str> = scaling.schedule.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["night", "morning"], "the documented schedule");
}

#[test]
fn autoscaling_values_are_checked_naming_the_key() {
    for (section, needle) in [
        ("min_count = 5\nmax_count = 3", ": autoscaling.min_count: 5: must be between 1 and autoscaling.max_count (3)"),
        ("min_count = 0\nmax_count = 3", ": autoscaling.min_count: 0"),
        ("min_count = 2\nmax_count = 101", ": autoscaling.max_count: 101: must be between 1 and 100"),
        ("min_count = 2\nmax_count = 4\ncpu_target_percent = 9", ": autoscaling.cpu_target_percent: 9"),
        ("min_count = 2\nmax_count = 4\ncpu_target_percent = 91", "between 10 and 90"),
        ("min_count = 2\nmax_count = 4\nrequests_per_target = 0", ": autoscaling.requests_per_target: 0"),
        ("min_count = 2\nmax_count = 4\nscale_in_cooldown_seconds = 3601", ": autoscaling.scale_in_cooldown_seconds: "),
        (
            "min_count = 2\nmax_count = 4\nscale_out_cooldown_seconds = 3601",
            ": autoscaling.scale_out_cooldown_seconds: ",
        ),
        (
            "min_count = 3\nmax_count = 4",
            ": service.desired_count: 2: with [autoscaling] it is the count a new service starts with",
        ),
        ("min_count = 1\nmax_count = 1", ": service.desired_count: 2"),
        ("min_count = 2\nmax_count = 4\ntarget = 5", "unknown field `target`"),
        ("min_count = 2", "autoscaling.max_count: missing: this key is required"),
        ("min_count = 2\nmax_count = -1", ": autoscaling.max_count: -1"),
    ] {
        let e = scaling_err(section);
        assert!(e.contains(needle), "{section:?}: {e}");
    }
}

#[test]
fn region() {
    assert!(Config::parse("t", &DEFAULT_TOML.replace("# region = \"us-east-1\"", "region = \"us-west-2\"")).is_ok());
    let e = Config::parse("t", &DEFAULT_TOML.replace("# region = \"us-east-1\"", "region = \"mars\"")).unwrap_err();
    assert!(e.to_string().contains(":4: region: "), "{e}");
}

#[test]
fn a_permissions_boundary_is_an_iam_policy_arn() {
    let iam = |value: &str| Config::parse("t", &format!("{DEFAULT_TOML}\n[iam]\npermissions_boundary = {value:?}\n"));
    assert_eq!(Config::parse("t", DEFAULT_TOML).unwrap().iam.permissions_boundary, None, "absent: none");
    for ok in [
        "arn:aws:iam::123456789012:policy/Boundary",
        "arn:aws:iam::123456789012:policy/teams/platform/Boundary-v2",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        "arn:aws-us-gov:iam::123456789012:policy/B",
    ] {
        assert_eq!(iam(ok).unwrap().iam.permissions_boundary.as_deref(), Some(ok));
    }
    for bad in [
        "Boundary",
        "arn:aws:iam::123456789012:role/Boundary",
        "arn:aws:iam:us-east-1:123456789012:policy/Boundary",
        "arn:aws:iam::1234:policy/Boundary",
        "arn:aws:iam::123456789012:policy/",
        "arn:aws:iam::123456789012:policy/a//b",
        "arn:aws:iam::123456789012:policy/Bad Name",
        "arn:aws:s3:::bucket",
    ] {
        let e = iam(bad).unwrap_err().to_string();
        assert!(e.contains("iam.permissions_boundary:") && e.contains("managed policy ARN"), "{bad}: {e}");
    }
    let unknown = Config::parse("t", &format!("{DEFAULT_TOML}\n[iam]\nboundary = \"x\"\n")).unwrap_err();
    assert!(unknown.to_string().contains("unknown field `boundary`"), "{unknown}");
}

/// The default config with `lines` added to `[service]` (after its last key line).
fn service_with(lines: &str) -> Result<Config, ConfigError> {
    let anchor = "enable_execute_command = false";
    let mut text = DEFAULT_TOML.replacen(anchor, &format!("{lines}\n{anchor}"), 1);
    if lines.contains("additional_ports") {
        text = text.replacen("additional_ports = []", "", 1);
    }
    Config::parse("t.toml", &text)
}

fn service_err(lines: &str) -> String {
    service_with(lines).expect_err(lines).to_string()
}

#[test]
fn container_options_are_checked_against_ecs_ranges() {
    let ok = service_with("command = [\"nginx\", \"-g\", \"daemon off;\"]\nentrypoint = [\"/docker-entrypoint.sh\"]\nstop_timeout = 120\nadditional_ports = [9090, 8081]").unwrap();
    assert_eq!(ok.service.command.as_deref().unwrap()[2], "daemon off;");
    assert_eq!(ok.service.additional_ports, [9090, 8081]);
    for (lines, key, says) in [
        ("command = []", "service.command", "non-empty"),
        ("entrypoint = [\"\"]", "service.entrypoint", "non-empty"),
        ("stop_timeout = 1", "service.stop_timeout", "2 to 120"),
        ("stop_timeout = 121", "service.stop_timeout", "2 to 120"),
        ("additional_ports = [0]", "service.additional_ports", "between 1 and 65535"),
        ("additional_ports = [80]", "service.additional_ports", "container_port"),
        ("additional_ports = [81, 81]", "service.additional_ports", "listed twice"),
        ("additional_ports = [1,2,3,4,5,6,7,8,9,10,11]", "service.additional_ports", "at most 10"),
    ] {
        let e = service_err(lines);
        assert!(e.contains(&format!("{key}: ")) && e.contains(says), "{lines}: {e}");
    }
    let e = service_err("additional_ports = [70000]");
    assert!(e.contains("service.additional_ports: 70000: must be between 1 and 65535"), "{e}");
}

#[test]
fn container_health_check_is_checked_against_ecs_ranges() {
    let section = |extra: &str| {
        let text = format!(
            "{DEFAULT_TOML}\n[service.health_check]\ncommand = [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]\n{extra}\n"
        );
        Config::parse("t.toml", &text)
    };
    let check = section("").unwrap().service.health_check.unwrap();
    assert_eq!(
        (check.interval_seconds, check.timeout_seconds, check.retries, check.start_period_seconds),
        (30, 5, 3, 0)
    );
    for (extra, key, says) in [
        ("interval_seconds = 4", "service.health_check.interval_seconds", "5 to 300"),
        ("interval_seconds = 301", "service.health_check.interval_seconds", "5 to 300"),
        ("timeout_seconds = 1", "service.health_check.timeout_seconds", "2 to 60"),
        ("timeout_seconds = 61", "service.health_check.timeout_seconds", "2 to 60"),
        ("retries = 0", "service.health_check.retries", "1 to 10"),
        ("retries = 11", "service.health_check.retries", "1 to 10"),
        ("start_period_seconds = 301", "service.health_check.start_period_seconds", "0 to 300"),
    ] {
        let e = section(extra).unwrap_err().to_string();
        assert!(e.contains(&format!("{key}: ")) && e.contains(says), "{extra}: {e}");
    }
    let bad = format!("{DEFAULT_TOML}\n[service.health_check]\ncommand = [\"curl\", \"-f\", \"http://localhost/\"]\n");
    let e = Config::parse("t.toml", &bad).unwrap_err().to_string();
    assert!(e.contains("service.health_check.command: ") && e.contains("CMD-SHELL"), "{e}");
    let e = Config::parse("t.toml", &format!("{DEFAULT_TOML}\n[service.health_check]\nretries = 3\n")).unwrap_err();
    assert!(e.to_string().contains("command"), "{e}");
}

#[test]
fn deployment_bounds_grace_period_and_exec_are_checked() {
    let edit = |from: &str, to: &str| Config::parse("t.toml", &DEFAULT_TOML.replace(from, to));
    let e = |from: &str, to: &str| edit(from, to).unwrap_err().to_string();
    assert!(e("minimum_healthy_percent = 100", "minimum_healthy_percent = 101")
        .contains("service.minimum_healthy_percent: 101: ECS takes 0 to 100"));
    let same = e("maximum_percent = 200", "maximum_percent = 100");
    assert!(
        same.contains("service.maximum_percent: 100: must be above service.minimum_healthy_percent (100)"),
        "{same}"
    );
    // One task, at least 50 % (1) and at most 150 % (1): nothing can move.
    let one = DEFAULT_TOML
        .replace("desired_count = 2", "desired_count = 1")
        .replace("minimum_healthy_percent = 100", "minimum_healthy_percent = 50")
        .replace("maximum_percent = 200", "maximum_percent = 150");
    let stuck = Config::parse("t.toml", &one).unwrap_err().to_string();
    assert!(stuck.contains("service.maximum_percent: 150: with 1 task(s)"), "{stuck}");
    assert!(Config::parse("t.toml", &one.replace("desired_count = 1", "desired_count = 2")).is_ok());
    // With autoscaling, every count of the range must be able to deploy.
    let scaled = format!(
        "{}\n[autoscaling]\nmin_count = 1\nmax_count = 4\n",
        one.replace("desired_count = 1", "desired_count = 2")
    );
    assert!(Config::parse("t.toml", &scaled).unwrap_err().to_string().contains("with 1 task(s)"));
    let rolling = edit("minimum_healthy_percent = 100", "minimum_healthy_percent = 50").unwrap();
    assert_eq!((rolling.service.minimum_healthy_percent, rolling.service.maximum_percent), (50, 200));
    let grace = service_err("health_check_grace_period_seconds = 2147483648");
    assert!(
        grace.contains("service.health_check_grace_period_seconds: 2147483648: ECS takes 0 to 2147483647"),
        "{grace}"
    );
    assert_eq!(
        service_with("health_check_grace_period_seconds = 0").unwrap().service.health_check_grace_period_seconds,
        Some(0)
    );
    // ECS Exec's agent writes to the container: with a read-only root, its paths must be writable.
    let exec = e("enable_execute_command = false", "enable_execute_command = true");
    assert!(
        exec.contains("service.enable_execute_command: true: the ECS Exec agent writes to /managed-agents"),
        "{exec}"
    );
    let writable = DEFAULT_TOML.replace("enable_execute_command = false", "enable_execute_command = true").replace(
        "writable_paths = [\"/var/cache/nginx\", \"/var/run\", \"/tmp\"]",
        "writable_paths = [\"/var/cache/nginx\", \"/var/run\", \"/tmp\", \"/managed-agents\", \"/var/lib/amazon/ssm\", \"/var/log/amazon/ssm\"]",
    );
    assert!(Config::parse("t.toml", &writable).unwrap().service.enable_execute_command);
    let open = DEFAULT_TOML
        .replace("enable_execute_command = false", "enable_execute_command = true")
        .replace("readonly_root_filesystem = true", "readonly_root_filesystem = false");
    assert!(Config::parse("t.toml", &open).is_ok());
}

#[test]
fn idle_timeout_and_matcher_are_what_elb_takes() {
    assert!(
        err("idle_timeout_seconds = 0").contains("load_balancer.idle_timeout_seconds: 0: must be between 1 and 4000")
    );
    assert!(err("idle_timeout_seconds = 4001").contains("between 1 and 4000"));
    assert_eq!(with("idle_timeout_seconds = 4000").unwrap().load_balancer.idle_timeout_seconds, 4000);
    for good in ["200", "200,202", "200-299", "200-499", "204,302,404"] {
        let c = with(&format!("health_check_matcher = \"{good}\"")).unwrap();
        assert_eq!(c.load_balancer.health_check_matcher, good);
    }
    for bad in ["", "199", "500", "600", "200-", "299-200", "200,,300", "2xx", "200-300-400", "200 ", "0200"] {
        let e = err(&format!("health_check_matcher = \"{bad}\""));
        assert!(e.contains(&format!("load_balancer.health_check_matcher: \"{bad}\": HTTP codes of 200 to 499")), "{e}");
    }
}

/// `key = ` at the start of a line, commented out or not.
fn keys_named(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('#').trim_start();
            let (key, _) = l.split_once(" = ")?;
            key.chars().all(|c| c.is_ascii_lowercase() || c == '_').then(|| key.to_string())
        })
        .collect()
}

#[test]
fn the_readme_and_the_default_config_name_the_same_keys() {
    let readme = include_str!("../../README.md");
    let start = readme.find("## Configuration").unwrap();
    let block = &readme[start..];
    let block = &block[block.find("```toml").unwrap()..];
    let block = &block[..block[7..].find("```").unwrap()];
    assert_eq!(keys_named(block), keys_named(DEFAULT_TOML));
    // `init` writes every key too, whatever it is given.
    let starter = super::Starter { name: Some("a"), image: Some("nginx:1"), domain: Some("a.example.com") };
    for written in [super::Starter::default().render().unwrap(), starter.render().unwrap()] {
        assert_eq!(keys_named(&written), keys_named(DEFAULT_TOML));
    }
    for key in ["command", "stop_timeout", "start_period_seconds", "idle_timeout_seconds", "health_check_matcher"] {
        assert!(keys_named(DEFAULT_TOML).contains(key), "{key}");
    }
}

#[test]
fn a_schedule_is_checked_before_any_aws_call() {
    let scaled = |schedule: &str| format!("{DEFAULT_TOML}\n[autoscaling]\nmin_count = 2\nmax_count = 4\n{schedule}");
    let night = "[[autoscaling.schedule]]\nname = \"night\"\ncron = \"0 20 ? * MON-FRI *\"\nmin_count = 0\nmax_count = 0\ntimezone = \"Europe/Berlin\"\n";
    let config = Config::parse("t.toml", &scaled(night)).unwrap();
    let schedule = &config.autoscaling.as_ref().unwrap().schedule;
    assert_eq!((schedule.len(), schedule[0].expression().as_str()), (1, "cron(0 20 ? * MON-FRI *)"));
    let bad = Config::parse("t.toml", &scaled(&night.replace("MON-FRI *", "MON-FRI"))).unwrap_err().to_string();
    assert!(bad.contains("autoscaling.schedule[1].cron: \"0 20 ? * MON-FRI\": has 5 fields"), "{bad}");
    let twice = format!("{night}{}", night.replace("min_count = 0", "min_count = 1"));
    let bad = Config::parse("t.toml", &scaled(&twice)).unwrap_err().to_string();
    assert!(bad.contains("autoscaling.schedule[2].name: \"night\": is the name of an earlier entry"), "{bad}");
    let bad = Config::parse("t.toml", &scaled(&night.replace("Europe/Berlin", "CET+1"))).unwrap_err().to_string();
    assert!(bad.contains("autoscaling.schedule[1].timezone"), "{bad}");
    // Without [autoscaling]'s range there is no target to schedule.
    let alone = format!("{DEFAULT_TOML}\n{night}");
    let bad = Config::parse("t.toml", &alone).unwrap_err().to_string();
    assert!(bad.contains("autoscaling.schedule: needs [autoscaling] with min_count and max_count"), "{bad}");
    let line = DEFAULT_TOML.lines().count() + 2;
    assert!(bad.starts_with(&format!("t.toml:{line}:")), "the entry's header: {bad}");
    // An entry's key is found at its line.
    let bad = Config::parse("t.toml", &scaled(&twice)).unwrap_err().to_string();
    let second = scaled(&twice).lines().position(|l| l == "[[autoscaling.schedule]]").unwrap() + 7;
    assert!(bad.starts_with(&format!("t.toml:{}:", second + 1)), "{bad}");
}

#[test]
fn tags_are_checked_before_any_call_naming_the_tag() {
    let tagged = |body: &str| Config::parse("t.toml", &format!("{DEFAULT_TOML}\n[tags]\n{body}\n"));
    let config = tagged("team = \"payments\"\n\"cost centre\" = \"cc-42\"").unwrap();
    assert_eq!(config.tags.get("team").map(String::as_str), Some("payments"));
    assert_eq!(config.tags.len(), 2);
    let e = tagged("\"aws:owner\" = \"me\"").unwrap_err().to_string();
    assert!(e.contains("t.toml:") && e.contains("tags: \"aws:owner\" = \"me\": keys starting with \"aws:\""), "{e}");
    let e = tagged("\"fargate-stack:stack\" = \"other\"").unwrap_err().to_string();
    assert!(e.contains("tags: \"fargate-stack:stack\" = \"other\": reserved"), "{e}");
    let e = tagged("Name = \"x\"").unwrap_err().to_string();
    assert!(e.contains("reserved"), "{e}");
    let e = tagged(&format!("team = \"{}\"", "v".repeat(257))).unwrap_err().to_string();
    assert!(e.contains("at most 256 characters"), "{e}");
    let many = |n: usize| (0..n).map(|i| format!("k{i} = \"v\"")).collect::<Vec<_>>().join("\n");
    let room = super::MAX_TAGS_PER_RESOURCE - super::OWN_TAGS_AT_MOST;
    assert_eq!(tagged(&many(room)).unwrap().tags.len(), 46);
    let e = tagged(&many(room + 1)).unwrap_err().to_string();
    assert!(e.contains("tags: 47 tags: at most 46: AWS allows 50 per resource and fargate-stack sets up to 4"), "{e}");
    let e = tagged("team = 3").unwrap_err().to_string();
    assert!(e.contains("tags.team"), "{e}");
}
