//! `[load_balancer]`: the HTTP listener's port and the target group's health checks.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

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
    /// AWS refuses to delete the load balancer while it is on (Security Hub ELB.6); `down` turns it
    /// off first, for the stack's own load balancer only.
    #[serde(default = "defaults::deletion_protection")]
    pub deletion_protection: bool,
}

/// `[load_balancer]` absent: as an empty one.
impl Default for LoadBalancerConfig {
    fn default() -> LoadBalancerConfig {
        LoadBalancerConfig {
            listener_port: defaults::port(),
            health_check_interval_seconds: defaults::health_check_interval(),
            health_check_timeout_seconds: defaults::health_check_timeout(),
            healthy_threshold: defaults::healthy_threshold(),
            unhealthy_threshold: defaults::unhealthy_threshold(),
            deregistration_delay_seconds: defaults::deregistration_delay(),
            deletion_protection: defaults::deletion_protection(),
        }
    }
}

mod defaults {
    pub fn deletion_protection() -> bool {
        true
    }
    pub fn port() -> u32 {
        80
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
}

impl Config {
    /// `[load_balancer]`: health checks, deregistration delay.
    pub(super) fn validate_load_balancer(&self, invalid: &Invalid) -> Result<(), ConfigError> {
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
}
