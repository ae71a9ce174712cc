//! `[deploy]`: how a rollout is watched. The stack's CloudWatch alarms (the target group's 5xx
//! rate, its unhealthy hosts, optionally its p99 latency) are attached to the ECS service's
//! deployments, which ECS rolls back when one of them goes into ALARM.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// CloudWatch evaluates an alarm over at most a day: 1-minute datapoints, so at most 1440; a
/// deploy that waits longer than an hour for its alarms is no longer watched by them.
pub const MAX_DATAPOINTS: u32 = 60;
/// The load balancer's idle timeout is at most 4000 s: no response takes longer.
pub const MAX_P99_LATENCY_MS: u32 = 4_000_000;
/// More unhealthy hosts than this never happen (`[autoscaling] max_count` is at most 100).
pub const MAX_UNHEALTHY_HOSTS: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// The alarms made and attached to the service's deployments (rollback on ALARM); off: none
    /// (and `up` detaches and deletes what an earlier run made).
    #[serde(default = "defaults::alarms")]
    pub alarms: bool,
    /// ALARM above this share of the target group's requests answered 5xx by the tasks, in percent.
    #[serde(default = "defaults::error_rate_percent")]
    pub error_rate_percent: f64,
    /// ALARM at this many unhealthy targets or more.
    #[serde(default = "defaults::unhealthy_hosts")]
    pub unhealthy_hosts: u32,
    /// Consecutive 1-minute datapoints past a threshold that put an alarm into ALARM.
    #[serde(default = "defaults::datapoints")]
    pub datapoints: u32,
    /// ALARM above this p99 response time of the targets, in milliseconds; absent: no such alarm.
    #[serde(default)]
    pub p99_latency_ms: Option<u32>,
}

/// `[deploy]` absent: the alarms on, with the defaults.
impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig {
            alarms: defaults::alarms(),
            error_rate_percent: defaults::error_rate_percent(),
            unhealthy_hosts: defaults::unhealthy_hosts(),
            datapoints: defaults::datapoints(),
            p99_latency_ms: None,
        }
    }
}

mod defaults {
    pub fn alarms() -> bool {
        true
    }

    /// Express Mode rolls back at 1 % of 4xx+5xx; the tasks' own 5xx only, at 5 %, leaves room
    /// for a client's retries without letting a broken release through.
    pub fn error_rate_percent() -> f64 {
        5.0
    }

    pub fn unhealthy_hosts() -> u32 {
        1
    }

    /// Two minutes in a row, as Express Mode's "two datapoints".
    pub fn datapoints() -> u32 {
        2
    }
}

impl Config {
    /// `[deploy]`: thresholds CloudWatch accepts and that can be crossed.
    pub(super) fn validate_deploy(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let deploy = &self.deploy;
        let rate = deploy.error_rate_percent;
        if !(rate.is_finite() && rate > 0.0 && rate <= 100.0) {
            return Err(invalid(
                "deploy.error_rate_percent",
                rate.to_string(),
                "expected a percent in (0, 100]".into(),
            ));
        }
        if !(1..=MAX_UNHEALTHY_HOSTS).contains(&deploy.unhealthy_hosts) {
            return Err(invalid(
                "deploy.unhealthy_hosts",
                deploy.unhealthy_hosts.to_string(),
                format!("expected 1 ..= {MAX_UNHEALTHY_HOSTS}"),
            ));
        }
        if !(1..=MAX_DATAPOINTS).contains(&deploy.datapoints) {
            return Err(invalid(
                "deploy.datapoints",
                deploy.datapoints.to_string(),
                format!("expected 1 ..= {MAX_DATAPOINTS} (1-minute datapoints)"),
            ));
        }
        if let Some(ms) = deploy.p99_latency_ms {
            if !(1..=MAX_P99_LATENCY_MS).contains(&ms) {
                return Err(invalid(
                    "deploy.p99_latency_ms",
                    ms.to_string(),
                    format!("expected 1 ..= {MAX_P99_LATENCY_MS} (the load balancer's longest idle timeout)"),
                ));
            }
        }
        Ok(())
    }
}
