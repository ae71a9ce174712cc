//! The stack description: TOML in, a validated [`Config`] out, before any AWS call is made. One
//! file per section, each with its types, defaults and checks; `load` reads the file.

mod autoscaling;
mod cluster;
mod container;
mod deploy;
mod flow_logs;
mod https;
mod iam;
mod load;
mod load_balancer;
mod logs;
mod network;
mod schedule;
mod secrets;
mod service;
mod spot;
mod starter;
mod table;
mod tags;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::aws::is_region_name;
pub use autoscaling::{AutoscalingConfig, MAX_SCALED_TASKS};
pub use cluster::{ClusterConfig, ContainerInsights};
pub use container::{ContainerHealthCheck, EXEC_AGENT_PATHS};
pub use deploy::{DeployConfig, Strategy, MAX_BAKE_MINUTES};
pub use flow_logs::{FlowLogsConfig, TrafficType};
pub use https::{check_domain, HttpsConfig, HTTPS_PORT, OUTDATED_SSL_POLICIES, SSL_POLICIES};
pub use iam::IamConfig;
pub use load::{ConfigSource, BUILT_IN};
pub use load_balancer::{check_bucket_name, parse_web_acl_arn, AccessLogs, GivenBucket, LoadBalancerConfig, WebAclArn};
pub use logs::{LogMode, LogsConfig, AUDIT_RETENTION_DAYS, LOG_RETENTION_DAYS};
pub use network::{NatMode, NetworkConfig, SubnetPlan, TaskEgress, MAX_AZS};
pub use schedule::{next_change, ScheduleEntry};
pub use secrets::{SecretSource, MAX_SECRETS};
pub use service::{validate_image, CpuArchitecture, ServiceConfig, TABLE_ENV_VAR};
pub use spot::{describe_strategy, Split, SpotConfig, StrategyItem, ON_DEMAND_PROVIDER, SPOT_PROVIDER};
pub use starter::Starter;
pub use table::{parse_key_arn, KeyAttribute, KeyType, TableConfig};
pub use tags::{check_tag, Tags, MAX_TAGS_PER_RESOURCE, NAME_TAG, OWN_TAGS_AT_MOST, OWN_TAG_PREFIX};

/// The built-in stack, compiled in so the binary works with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// File picked up from the working directory when `--config` is not given.
pub const LOCAL_CONFIG_FILE: &str = "fargate-stack.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Every error about the config's content, in one format: `FILE:LINE: key: message` (the line
    /// of the key, else of its section; none for a value given on the command line).
    #[error("{}: {key}: {message}", load::located(origin, *line))]
    At { origin: String, line: Option<usize>, key: String, message: String },
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
    /// Absent: Container Insights enabled.
    #[serde(default)]
    pub cluster: ClusterConfig,
    pub service: ServiceConfig,
    pub table: TableConfig,
    /// Absent: the defaults.
    #[serde(default)]
    pub logs: LogsConfig,
    /// Absent: the defaults.
    #[serde(default)]
    pub load_balancer: LoadBalancerConfig,
    /// HTTPS on 443; absent: HTTP on `load_balancer.listener_port` only.
    #[serde(default)]
    pub https: Option<HttpsConfig>,
    /// Absent: the service runs a fixed `service.desired_count`.
    #[serde(default)]
    pub autoscaling: Option<AutoscalingConfig>,
    /// Absent: the roles get no permissions boundary.
    #[serde(default)]
    pub iam: IamConfig,
    /// Absent: the VPC's flow logs on, to a log group of their own.
    #[serde(default)]
    pub flow_logs: FlowLogsConfig,
    /// Absent: the deploy alarms on, with their default thresholds.
    #[serde(default)]
    pub deploy: DeployConfig,
    /// Put on every resource the stack creates, beside the tool's own; absent: none.
    #[serde(default)]
    pub tags: Tags,
}

/// Builds the error for a key: (key, value as written, what is allowed).
type Invalid<'a> = dyn Fn(&str, String, String) -> ConfigError + 'a;

impl Config {
    pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigError> {
        schedule::check_range_given(origin, text)?;
        let config: Config = toml::from_str(text).map_err(|e| load::syntax_error(origin, text, &e))?;
        config.validate(origin, Some(text))?;
        Ok(config)
    }

    /// `text`: the config as written, to give each error the line of its key.
    fn validate(&self, origin: &str, text: Option<&str>) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: String, reason: String| ConfigError::At {
            origin: origin.to_string(),
            line: text.map(|t| load::line_of(t, key)),
            key: key.to_string(),
            message: format!("{value}: {reason}"),
        };
        self.validate_identity(&invalid)?;
        self.validate_network(&invalid)?;
        self.validate_service(&invalid)?;
        self.validate_container(&invalid)?;
        self.validate_spot(&invalid)?;
        self.validate_container_options(&invalid)?;
        self.validate_secrets(&invalid)?;
        self.validate_table(&invalid)?;
        self.validate_logs(&invalid)?;
        self.validate_flow_logs(&invalid)?;
        self.validate_deploy(&invalid)?;
        self.validate_load_balancer(&invalid)?;
        if let Some(https) = &self.https {
            self.validate_https(https, &invalid)?;
        }
        self.validate_iam(&invalid)?;
        self.validate_tags(&invalid)?;
        self.validate_autoscaling(&invalid)?;
        // After [autoscaling]: its range is checked first (and capped).
        self.validate_deployment(&invalid)
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
        renamed.validate("--name", None)?;
        Ok(renamed)
    }
}

#[cfg(test)]
mod tests;
