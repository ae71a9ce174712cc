//! The stack description: TOML in, a validated [`Config`] out, before any AWS call is made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use crate::aws::is_region_name;

/// The built-in stack, compiled in so the binary works with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// File picked up from the working directory when `--config` is not given.
pub const LOCAL_CONFIG_FILE: &str = "fargate-stack.toml";

/// Fargate task sizes AWS accepts: cpu units -> allowed memory in MiB.
const FARGATE_SIZES: &[(u32, &[u32])] = &[
    (256, &[512, 1024, 2048]),
    (512, &[1024, 2048, 3072, 4096]),
    (1024, &[2048, 3072, 4096, 5120, 6144, 7168, 8192]),
    (2048, &[4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384]),
];

/// Retention values CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Most AZs a stack spans.
pub const MAX_AZS: u8 = 6;

/// Environment variable that always carries the table name into the container.
pub const TABLE_ENV_VAR: &str = "DYNAMODB_MESSAGES_TABLE";

/// Most tasks `[autoscaling]` may scale the service to: fargate-stack's own cap, so that a runaway
/// metric cannot outgrow the account's Fargate vCPU quota or the bill (see the README).
pub const MAX_SCALED_TASKS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid config {origin}, line {line}: `{key}` = {value}: {message}")]
    Syntax { origin: String, line: usize, key: String, value: String, message: String },
    #[error("invalid config {origin}: `{key}` = {value}: {reason}")]
    Invalid { origin: String, key: &'static str, value: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    #[serde(default)]
    pub region: Option<String>,
    /// Where the state lives: a file path (relative to the config file) or `s3://BUCKET/KEY`.
    /// `--state` and `FARGATE_STACK_STATE` take precedence.
    #[serde(default)]
    pub state: Option<String>,
    pub network: NetworkConfig,
    pub service: ServiceConfig,
    pub table: TableConfig,
    pub logs: LogsConfig,
    pub load_balancer: LoadBalancerConfig,
    /// HTTPS on 443; absent: HTTP on `load_balancer.listener_port` only.
    #[serde(default)]
    pub https: Option<HttpsConfig>,
    /// Set only by `resources::covering` and `resources::discovering`: HTTPS resources a state (or a
    /// search) may hold that this config does not ask for, so that they can be found and deleted.
    #[serde(skip)]
    pub leftover_https: LeftoverHttps,
    /// Absent: the service runs a fixed `service.desired_count`.
    #[serde(default)]
    pub autoscaling: Option<AutoscalingConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub cidr: Ipv4Net,
    #[serde(default = "defaults::az_count")]
    pub az_count: u8,
    #[serde(default = "defaults::nat_gateways")]
    pub nat_gateways: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub image: String,
    #[serde(default = "defaults::port")]
    pub container_port: u32,
    #[serde(default = "defaults::desired_count")]
    pub desired_count: u32,
    #[serde(default = "defaults::cpu")]
    pub cpu: u32,
    #[serde(default = "defaults::memory")]
    pub memory: u32,
    #[serde(default = "defaults::health_check_path")]
    pub health_check_path: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub partition_key: KeyAttribute,
    #[serde(default)]
    pub sort_key: Option<KeyAttribute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: KeyType,
}

/// DynamoDB key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    #[serde(default = "defaults::port")]
    pub listener_port: u32,
    #[serde(default = "defaults::health_check_interval")]
    pub health_check_interval_seconds: u32,
    #[serde(default = "defaults::health_check_timeout")]
    pub health_check_timeout_seconds: u32,
    #[serde(default = "defaults::healthy_threshold")]
    pub healthy_threshold: u32,
    #[serde(default = "defaults::unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    #[serde(default = "defaults::deregistration_delay")]
    pub deregistration_delay_seconds: u32,
}

/// The `[https]` section: a certificate given by ARN, or one requested for `domain` and validated
/// through Route 53 (with an alias record to the load balancer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    #[serde(default)]
    pub certificate_arn: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    #[serde(default = "defaults::redirect_http")]
    pub redirect_http: bool,
    #[serde(default = "defaults::ssl_policy")]
    pub ssl_policy: String,
}

/// HTTPS resources to cover beyond what the config asks for (see [`Config::leftover_https`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeftoverHttps {
    /// The HTTPS listener.
    pub listener: bool,
    /// The requested certificate, its validation record, its wait and the alias record.
    pub requested: bool,
}

/// The HTTPS listener's port: fixed, it is what `https://` means.
pub const HTTPS_PORT: u32 = 443;

/// The ELB predefined security policies an HTTPS listener of an ALB accepts.
pub const SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-2015-05",
];

/// Target-tracking autoscaling of the service's desired count (Application Auto Scaling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingConfig {
    pub min_count: u32,
    pub max_count: u32,
    /// ECSServiceAverageCPUUtilization target, percent.
    #[serde(default = "defaults::cpu_target_percent")]
    pub cpu_target_percent: u32,
    /// ALBRequestCountPerTarget target (requests per task per minute); absent: no such policy.
    #[serde(default)]
    pub requests_per_target: Option<u32>,
    #[serde(default = "defaults::scale_in_cooldown")]
    pub scale_in_cooldown_seconds: u32,
    #[serde(default = "defaults::scale_out_cooldown")]
    pub scale_out_cooldown_seconds: u32,
}

impl AutoscalingConfig {
    /// The nearest count inside `[min_count, max_count]`.
    pub fn clamp(&self, count: u32) -> u32 {
        count.clamp(self.min_count, self.max_count)
    }

    pub fn contains(&self, count: u32) -> bool {
        (self.min_count..=self.max_count).contains(&count)
    }
}

mod defaults {
    pub fn az_count() -> u8 {
        2
    }
    pub fn nat_gateways() -> u8 {
        1
    }
    pub fn port() -> u32 {
        80
    }
    pub fn desired_count() -> u32 {
        2
    }
    pub fn cpu() -> u32 {
        256
    }
    pub fn memory() -> u32 {
        512
    }
    pub fn health_check_path() -> String {
        "/".into()
    }
    pub fn retention_days() -> u32 {
        14
    }
    pub fn health_check_interval() -> u32 {
        10
    }
    pub fn health_check_timeout() -> u32 {
        5
    }
    pub fn healthy_threshold() -> u32 {
        2
    }
    pub fn unhealthy_threshold() -> u32 {
        3
    }
    pub fn deregistration_delay() -> u32 {
        30
    }
    pub fn redirect_http() -> bool {
        true
    }
    pub fn ssl_policy() -> String {
        "ELBSecurityPolicy-TLS13-1-2-2021-06".into()
    }
    pub fn cpu_target_percent() -> u32 {
        60
    }
    pub fn scale_in_cooldown() -> u32 {
        300
    }
    pub fn scale_out_cooldown() -> u32 {
        60
    }
}

impl AutoscalingConfig {
    /// The first bad key, its value and why.
    fn validate(&self, desired_count: u32) -> Result<(), (&'static str, String, String)> {
        let bad = |key, value: u32, reason: String| Err((key, value.to_string(), reason));
        if self.max_count < 1 || self.max_count > MAX_SCALED_TASKS {
            return bad(
                "autoscaling.max_count",
                self.max_count,
                format!("must be between 1 and {MAX_SCALED_TASKS} (the most tasks fargate-stack scales a service to)"),
            );
        }
        if self.min_count < 1 || self.min_count > self.max_count {
            return bad(
                "autoscaling.min_count",
                self.min_count,
                format!("must be between 1 and autoscaling.max_count ({})", self.max_count),
            );
        }
        if !(10..=90).contains(&self.cpu_target_percent) {
            return bad("autoscaling.cpu_target_percent", self.cpu_target_percent, "must be between 10 and 90".into());
        }
        if self.requests_per_target == Some(0) {
            return bad(
                "autoscaling.requests_per_target",
                0,
                "must be at least 1 (leave it out for no such policy)".into(),
            );
        }
        for (key, value) in [
            ("autoscaling.scale_in_cooldown_seconds", self.scale_in_cooldown_seconds),
            ("autoscaling.scale_out_cooldown_seconds", self.scale_out_cooldown_seconds),
        ] {
            if value > 3600 {
                return bad(key, value, "must be between 0 and 3600".into());
            }
        }
        if !self.contains(desired_count) {
            return bad(
                "service.desired_count",
                desired_count,
                format!(
                    "with [autoscaling] it is the count a new service starts with, and must lie within \
                     autoscaling.min_count..=max_count ({}..={})",
                    self.min_count, self.max_count
                ),
            );
        }
        Ok(())
    }
}

/// Builds the error for a key: (key, value as written, what is allowed).
type Invalid<'a> = dyn Fn(&'static str, String, String) -> ConfigError + 'a;

/// The subnet layout derived from the VPC CIDR: `az_count` public /24s, then as many private ones.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetPlan {
    pub public: Vec<Ipv4Net>,
    pub private: Vec<Ipv4Net>,
}

/// Which config a run uses: recorded by `up` so that a run with another one is noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// An absolute path, or `(built-in default)`.
    pub path: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
}

pub const BUILT_IN: &str = "(built-in default)";

impl ConfigSource {
    fn of(path: String, text: &str) -> ConfigSource {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(text.as_bytes());
        ConfigSource { path, sha256: digest.iter().map(|b| format!("{b:02x}")).collect() }
    }
}

impl Config {
    /// Resolve which config to use: an explicit file, `./fargate-stack.toml`, or the built-in default.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        let local = Path::new(LOCAL_CONFIG_FILE);
        let file = explicit.or_else(|| local.exists().then_some(local));
        let (origin, absolute, text) = match file {
            Some(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                (path.display().to_string(), absolute.display().to_string(), read(path)?)
            }
            None => (BUILT_IN.to_string(), BUILT_IN.to_string(), DEFAULT_TOML.to_string()),
        };
        let config = Config::parse(&origin, &text)?;
        Ok((config, ConfigSource::of(absolute, &text)))
    }

    pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| syntax_error(origin, text, &e))?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: String, reason: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            value,
            reason,
        };
        self.validate_identity(&invalid)?;
        self.validate_network(&invalid)?;
        self.validate_service(&invalid)?;
        self.validate_table(&invalid)?;
        self.validate_logs_and_load_balancer(&invalid)?;
        if let Some(https) = &self.https {
            self.validate_https(https, &invalid)?;
        }
        self.validate_autoscaling(&invalid)
    }

    /// The stack name, the region and where the state lives.
    fn validate_identity(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        Config::valid_name(&self.name).map_err(|reason| invalid("name", format!("{:?}", self.name), reason))?;
        if let Some(region) = &self.region {
            if !is_region_name(region) {
                return Err(invalid(
                    "region",
                    format!("{region:?}"),
                    "expected an AWS region name such as \"us-east-1\"".into(),
                ));
            }
        }
        if let Some(state) = &self.state {
            crate::state::StateLocation::parse(state, &self.name, None).map_err(|e| match e {
                crate::state::StateError::BadLocation { reason, .. } => invalid("state", format!("{state:?}"), reason),
                other => invalid("state", format!("{state:?}"), other.to_string()),
            })?;
        }
        Ok(())
    }

    /// `[network]`: the CIDR, zones and NAT gateways.
    fn validate_network(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let net = &self.network;
        if net.az_count < 2 || net.az_count > MAX_AZS {
            return Err(invalid(
                "network.az_count",
                net.az_count.to_string(),
                "must be between 2 and 6 (an ALB needs subnets in at least 2 AZs)".into(),
            ));
        }
        if net.nat_gateways < 1 || net.nat_gateways > net.az_count {
            return Err(invalid(
                "network.nat_gateways",
                net.nat_gateways.to_string(),
                format!("must be between 1 and network.az_count ({})", net.az_count),
            ));
        }
        if net.cidr.network() != net.cidr.addr() {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                format!("host bits are set; did you mean \"{}\"?", net.cidr.trunc()),
            ));
        }
        if !is_private(net.cidr) {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                "must lie in a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)".into(),
            ));
        }
        if net.cidr.prefix_len() < 16 || self.subnet_plan().is_none() {
            return Err(invalid(
                "network.cidr",
                format!("\"{}\"", net.cidr),
                format!(
                    "must be between /16 and a block that holds {} /24 subnets (a VPC may be /16 at most)",
                    2 * net.az_count as u32
                ),
            ));
        }
        Ok(())
    }

    /// `[service]` (and the listener port): image, ports, count, Fargate size, health check path, environment.
    fn validate_service(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let svc = &self.service;
        validate_image(&svc.image).map_err(|reason| invalid("service.image", format!("{:?}", svc.image), reason))?;
        check_port("service.container_port", svc.container_port)
            .map_err(|r| invalid("service.container_port", svc.container_port.to_string(), r))?;
        check_port("load_balancer.listener_port", self.load_balancer.listener_port)
            .map_err(|r| invalid("load_balancer.listener_port", self.load_balancer.listener_port.to_string(), r))?;
        if svc.desired_count > 1000 {
            return Err(invalid(
                "service.desired_count",
                svc.desired_count.to_string(),
                "must be between 0 and 1000".into(),
            ));
        }
        match FARGATE_SIZES.iter().find(|(cpu, _)| *cpu == svc.cpu) {
            None => {
                return Err(invalid(
                    "service.cpu",
                    svc.cpu.to_string(),
                    format!(
                        "Fargate accepts cpu {}",
                        FARGATE_SIZES.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Some((_, memories)) if !memories.contains(&svc.memory) => {
                return Err(invalid(
                    "service.memory",
                    svc.memory.to_string(),
                    format!(
                        "with cpu {} Fargate accepts memory {}",
                        svc.cpu,
                        memories.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
        if !svc.health_check_path.starts_with('/') || svc.health_check_path.len() > 1024 {
            return Err(invalid(
                "service.health_check_path",
                format!("{:?}", svc.health_check_path),
                "must start with '/' and be at most 1024 characters".into(),
            ));
        }
        for key in svc.environment.keys() {
            let ok = !key.is_empty()
                && !key.starts_with(|c: char| c.is_ascii_digit())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || key == TABLE_ENV_VAR {
                return Err(invalid(
                    "service.environment",
                    format!("{key:?}"),
                    if key == TABLE_ENV_VAR {
                        format!("{TABLE_ENV_VAR} is set by fargate-stack to the table name")
                    } else {
                        "names are letters, digits and '_', not starting with a digit".into()
                    },
                ));
            }
        }
        Ok(())
    }

    /// `[table]`: the key attributes.
    fn validate_table(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        for (key, attr) in
            [("table.partition_key", Some(&self.table.partition_key)), ("table.sort_key", self.table.sort_key.as_ref())]
        {
            if let Some(attr) = attr {
                let ok = !attr.name.is_empty()
                    && attr.name.len() <= 255
                    && attr.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                if !ok {
                    return Err(invalid(
                        key,
                        format!("{:?}", attr.name),
                        "attribute names are 1-255 of a-z, A-Z, 0-9, '_', '-', '.'".into(),
                    ));
                }
            }
        }
        if let Some(sort) = &self.table.sort_key {
            if sort.name == self.table.partition_key.name {
                return Err(invalid(
                    "table.sort_key",
                    format!("{:?}", sort.name),
                    "must differ from the partition key".into(),
                ));
            }
        }
        Ok(())
    }

    /// `[logs]` and `[load_balancer]`: retention, health checks, deregistration delay.
    fn validate_logs_and_load_balancer(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        if !LOG_RETENTION_DAYS.contains(&self.logs.retention_days) {
            return Err(invalid(
                "logs.retention_days",
                self.logs.retention_days.to_string(),
                format!(
                    "CloudWatch accepts {}",
                    LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let lb = &self.load_balancer;
        let ranges: [(&'static str, u32, u32, u32); 5] = [
            ("load_balancer.health_check_interval_seconds", lb.health_check_interval_seconds, 5, 300),
            ("load_balancer.health_check_timeout_seconds", lb.health_check_timeout_seconds, 2, 120),
            ("load_balancer.healthy_threshold", lb.healthy_threshold, 2, 10),
            ("load_balancer.unhealthy_threshold", lb.unhealthy_threshold, 2, 10),
            ("load_balancer.deregistration_delay_seconds", lb.deregistration_delay_seconds, 0, 3600),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(invalid(key, value.to_string(), format!("must be between {min} and {max}")));
            }
        }
        if lb.health_check_timeout_seconds >= lb.health_check_interval_seconds {
            return Err(invalid(
                "load_balancer.health_check_timeout_seconds",
                lb.health_check_timeout_seconds.to_string(),
                "must be less than load_balancer.health_check_interval_seconds".into(),
            ));
        }
        Ok(())
    }

    /// `[https]`: one certificate source, a domain, a zone, a policy, and a listener port that is not 443.
    fn validate_https(&self, https: &HttpsConfig, invalid: &Invalid) -> Result<(), ConfigError> {
        match (&https.certificate_arn, &https.domain) {
            (Some(arn), Some(domain)) => {
                return Err(invalid(
                    "https.certificate_arn",
                    format!("{arn:?} and `https.domain` = {domain:?}"),
                    "give exactly one: certificate_arn to use an existing certificate, or domain to have one \
                     requested and validated through Route 53"
                        .into(),
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "https",
                    "a section without certificate_arn or domain".into(),
                    "give exactly one of `https.certificate_arn` (an existing ACM certificate) or `https.domain` \
                     (a certificate is requested and validated through Route 53)"
                        .into(),
                ))
            }
            _ => {}
        }
        if let Some(arn) = &https.certificate_arn {
            check_certificate_arn(arn)
                .map_err(|reason| invalid("https.certificate_arn", format!("{arn:?}"), reason))?;
            if let (Some(arn_region), Some(region)) = (arn.split(':').nth(3), &self.region) {
                if arn_region != region {
                    return Err(invalid(
                        "https.certificate_arn",
                        format!("{arn:?}"),
                        format!("the certificate is in {arn_region} but the stack in {region}: a load balancer uses certificates of its own region"),
                    ));
                }
            }
        }
        if let Some(domain) = &https.domain {
            check_domain(domain).map_err(|reason| invalid("https.domain", format!("{domain:?}"), reason))?;
        }
        if let Some(zone) = &https.hosted_zone_id {
            if https.domain.is_none() {
                return Err(invalid(
                    "https.hosted_zone_id",
                    format!("{zone:?}"),
                    "only with `https.domain` (with certificate_arn, fargate-stack makes no DNS records)".into(),
                ));
            }
            let ok = !zone.is_empty()
                && zone.len() <= 32
                && zone.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !ok {
                return Err(invalid(
                    "https.hosted_zone_id",
                    format!("{zone:?}"),
                    "expected a Route 53 hosted zone ID such as \"Z0123456789ABCDEFGHIJ\" (without /hostedzone/)"
                        .into(),
                ));
            }
        }
        if !SSL_POLICIES.contains(&https.ssl_policy.as_str()) {
            return Err(invalid(
                "https.ssl_policy",
                format!("{:?}", https.ssl_policy),
                format!("expected one of the ELB predefined policies: {}", SSL_POLICIES.join(", ")),
            ));
        }
        if self.load_balancer.listener_port == HTTPS_PORT {
            return Err(invalid(
                "load_balancer.listener_port",
                HTTPS_PORT.to_string(),
                "with [https] port 443 is the HTTPS listener's; keep the HTTP listener on another port (80)".into(),
            ));
        }
        Ok(())
    }

    /// `[autoscaling]`, and `service.desired_count` against its range.
    fn validate_autoscaling(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        match &self.autoscaling {
            Some(scaling) => {
                scaling.validate(self.service.desired_count).map_err(|(key, value, reason)| invalid(key, value, reason))
            }
            None => Ok(()),
        }
    }

    /// A stack name: it prefixes every resource name and is the value of the stack tag.
    pub fn valid_name(name: &str) -> Result<(), String> {
        let ok = !name.is_empty()
            && name.len() <= 20
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err("use 1-20 characters of a-z, 0-9 and '-', not starting or ending with '-'".into())
        }
    }

    /// The same stack under another name (validated like the config's `name`).
    pub fn with_name(&self, name: &str) -> Result<Config, ConfigError> {
        let renamed = Config { name: name.to_string(), ..self.clone() };
        renamed.validate("--name")?;
        Ok(renamed)
    }

    /// Public /24s first, then private ones, carved from the start of the VPC CIDR.
    pub fn subnet_plan(&self) -> Option<SubnetPlan> {
        let n = self.network.az_count as usize;
        let blocks: Vec<Ipv4Net> = self.network.cidr.subnets(24).ok()?.take(2 * n).collect();
        if blocks.len() < 2 * n {
            return None;
        }
        Some(SubnetPlan { public: blocks[..n].to_vec(), private: blocks[n..].to_vec() })
    }

    /// The container environment: the user's variables plus the table name.
    pub fn container_environment(&self, table_name: &str) -> BTreeMap<String, String> {
        let mut env = self.service.environment.clone();
        env.insert(TABLE_ENV_VAR.to_string(), table_name.to_string());
        env
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A TOML or type error, located: the line, the dotted key (from the table header above it and
/// the key on the line), and the value as written.
fn syntax_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = one_line(e.message());
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return ConfigError::Parse { origin: origin.to_string(), message };
    };
    let line = text[..span.start].matches('\n').count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let section = text
        .lines()
        .take(line)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[["))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .last()
        .filter(|_| !line_text.trim_start().starts_with('['));
    let Some((key, _)) = line_text.split_once('=') else {
        return ConfigError::Parse { origin: origin.to_string(), message: format!("line {line}: {message}") };
    };
    let key = key.trim().trim_matches('"');
    let key = match section {
        Some(section) if !section.is_empty() => format!("{section}.{key}"),
        _ => key.to_string(),
    };
    let value = text.get(span.clone()).map(|v| one_line(v.trim())).filter(|v| !v.is_empty() && !v.contains('\n'));
    let value = value.unwrap_or_else(|| one_line(line_text.split_once('=').map_or("", |(_, v)| v).trim()));
    ConfigError::Syntax { origin: origin.to_string(), line, key, value, message }
}

/// `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
fn check_certificate_arn(arn: &str) -> Result<(), String> {
    const HINT: &str =
        "expected an ACM certificate ARN such as \"arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-...\"";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && is_region_name(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if ok {
        Ok(())
    } else {
        Err(HINT.into())
    }
}

/// A fully qualified domain name ACM can issue a certificate for and Route 53 can hold an alias for.
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain.starts_with("*.") {
        return Err(
            "a wildcard is not supported: name the host the service answers on, e.g. \"api.example.com\"".into()
        );
    }
    if domain.ends_with('.') {
        return Err("write the name without the trailing dot".into());
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("use lower case: {:?}", domain.to_ascii_lowercase()));
    }
    // ACM puts the first name of a certificate in its subject's CN: at most 64 characters.
    if domain.len() > 64 {
        return Err("at most 64 characters (ACM's limit for a certificate's domain name)".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(
            "expected a fully qualified domain name such as \"api.example.com\" (labels of a-z, 0-9 and '-')".into()
        );
    }
    Ok(())
}

fn check_port(_key: &str, port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err("must be between 1 and 65535".into())
    }
}

fn is_private(net: Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .map(|s| s.parse::<Ipv4Net>().expect("static CIDR"))
        .any(|range| range.contains(&net))
}

/// A Docker image reference: `[registry[:port]/]path[:tag][@sha256:digest]`, lower-case path.
/// An image reference as Docker reads it: `[registry/]path[:tag][@sha256:digest]`.
pub fn validate_image(image: &str) -> Result<(), String> {
    const HINT: &str = "expected an image reference such as \"nginx:latest\" or \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2\"";
    if image.is_empty() || image.len() > 255 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(HINT.into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(format!("invalid digest; {HINT}"));
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!("invalid tag {tag:?}; {HINT}"));
        }
    }
    let mut components: Vec<&str> = path.split('/').collect();
    // The first component is a registry host when it has a '.' or ':' or is localhost.
    if components.len() > 1 && (components[0].contains(['.', ':']) || components[0] == "localhost") {
        let host = components.remove(0);
        let ok = host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
        if !ok {
            return Err(format!("invalid registry {host:?}; {HINT}"));
        }
    }
    for component in components {
        let ok = !component.is_empty()
            && component.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!("invalid repository name {path:?}; {HINT}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        assert_eq!((c.network.az_count, c.network.nat_gateways), (2, 1));
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

    #[test]
    fn type_and_syntax_errors_name_the_key_the_value_and_the_line() {
        let e = Config::parse("x.toml", &DEFAULT_TOML.replace("10.0.0.0/16", "10.0.0.0/33")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("`network.cidr` = \"10.0.0.0/33\""), "{e}");
        assert!(e.contains("invalid"), "{e}");
        let e = Config::parse("x.toml", &DEFAULT_TOML.replace("cpu = 256", "cpu = \"256\"")).unwrap_err().to_string();
        assert!(e.contains("`service.cpu` = \"256\"") && e.contains("expected u32"), "{e}");
        let e = Config::parse("x.toml", &DEFAULT_TOML.replace("type = \"N\"", "type = \"X\"")).unwrap_err().to_string();
        assert!(e.contains("`table.sort_key`") && e.contains("\"X\""), "{e}");
        assert!(!e.contains('\n'), "{e}");
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
        assert!(e.starts_with("invalid config x.toml"), "{e}");
    }

    #[test]
    fn names() {
        assert!(err("name = \"Bad_Name\"").contains("`name`"));
        assert!(err("name = \"\"").contains("`name`"));
        assert!(err("name = \"this-name-is-far-too-long\"").contains("1-20"));
        assert!(err("name = \"-x\"").contains("`name`"));
        assert!(with("name = \"a-1\"").is_ok());
    }

    #[test]
    fn state_locations_are_checked_with_the_config() {
        let state = |line: &str| DEFAULT_TOML.replace("# region = \"us-east-1\"", line);
        let c = Config::parse("x.toml", &state("state = \"s3://team-state/stacks/\"")).unwrap();
        assert_eq!(c.state.as_deref(), Some("s3://team-state/stacks/"));
        let e = Config::parse("x.toml", &state("state = \"s3://Team_State/x.json\"")).unwrap_err().to_string();
        assert!(e.contains("`state` = \"s3://Team_State/x.json\"") && e.contains("a-z, 0-9"), "{e}");
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
        assert!(err("cidr = \"not-a-cidr\"").contains("invalid config"));
    }

    #[test]
    fn az_and_nat_counts() {
        assert!(err("az_count = 1").contains("network.az_count"));
        assert!(err("az_count = 7").contains("network.az_count"));
        assert!(err("nat_gateways = 0").contains("network.nat_gateways"));
        assert!(err("nat_gateways = 3").contains("between 1 and network.az_count (2)"));
        assert!(with("nat_gateways = 2").is_ok());
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
    fn environment_and_keys() {
        let e = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", "DYNAMODB_MESSAGES_TABLE =")).unwrap_err();
        assert!(e.to_string().contains("set by fargate-stack"), "{e}");
        let e = Config::parse("t", &DEFAULT_TOML.replace("APP_ID =", "\"1BAD\" =")).unwrap_err();
        assert!(e.to_string().contains("service.environment"), "{e}");
        let e = Config::parse("t", &DEFAULT_TOML.replace("type = \"N\"", "type = \"X\"")).unwrap_err();
        assert!(e.to_string().contains("invalid config"), "{e}");
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
    fn https_takes_exactly_one_of_certificate_arn_and_domain() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666";
        let both =
            https(&format!("certificate_arn = \"{arn}\"\ndomain = \"api.example.com\"")).unwrap_err().to_string();
        assert!(both.contains("https.certificate_arn") && both.contains("https.domain"), "{both}");
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
    }

    #[test]
    fn autoscaling_values_are_checked_naming_the_key() {
        for (section, needle) in [
            (
                "min_count = 5\nmax_count = 3",
                "`autoscaling.min_count` = 5: must be between 1 and autoscaling.max_count (3)",
            ),
            ("min_count = 0\nmax_count = 3", "`autoscaling.min_count` = 0"),
            ("min_count = 2\nmax_count = 101", "`autoscaling.max_count` = 101: must be between 1 and 100"),
            ("min_count = 2\nmax_count = 4\ncpu_target_percent = 9", "`autoscaling.cpu_target_percent` = 9"),
            ("min_count = 2\nmax_count = 4\ncpu_target_percent = 91", "between 10 and 90"),
            ("min_count = 2\nmax_count = 4\nrequests_per_target = 0", "`autoscaling.requests_per_target` = 0"),
            (
                "min_count = 2\nmax_count = 4\nscale_in_cooldown_seconds = 3601",
                "`autoscaling.scale_in_cooldown_seconds`",
            ),
            (
                "min_count = 2\nmax_count = 4\nscale_out_cooldown_seconds = 3601",
                "`autoscaling.scale_out_cooldown_seconds`",
            ),
            (
                "min_count = 3\nmax_count = 4",
                "`service.desired_count` = 2: with [autoscaling] it is the count a new service starts with",
            ),
            ("min_count = 1\nmax_count = 1", "`service.desired_count` = 2"),
            ("min_count = 2\nmax_count = 4\ntarget = 5", "unknown field `target`"),
            ("min_count = 2", "missing field `max_count`"),
            ("min_count = 2\nmax_count = -1", "`autoscaling.max_count` = -1"),
        ] {
            let e = scaling_err(section);
            assert!(e.contains(needle), "{section:?}: {e}");
        }
    }

    #[test]
    fn region() {
        assert!(Config::parse("t", &DEFAULT_TOML.replace("# region = \"us-east-1\"", "region = \"us-west-2\"")).is_ok());
        let e = Config::parse("t", &DEFAULT_TOML.replace("# region = \"us-east-1\"", "region = \"mars\"")).unwrap_err();
        assert!(e.to_string().contains("`region`"), "{e}");
    }
}
