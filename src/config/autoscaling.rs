//! `[autoscaling]`: target tracking of the service's desired count.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid, ScheduleEntry};

/// Most tasks `[autoscaling]` may scale the service to: fargate-stack's own cap, so that a runaway
/// metric cannot outgrow the account's Fargate vCPU quota or the bill (see the README).
pub const MAX_SCALED_TASKS: u32 = 100;

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
    /// `[[autoscaling.schedule]]`: scheduled changes of the range (see `schedule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ScheduleEntry>,
}

impl AutoscalingConfig {
    /// The nearest count inside `[min_count, max_count]`, widened by the scheduled ranges (the
    /// desired count is whatever the autoscaler chose in the range the last entry set).
    pub fn clamp(&self, count: u32) -> u32 {
        let (lo, hi) = self.bounds();
        count.clamp(lo, hi)
    }

    pub fn contains(&self, count: u32) -> bool {
        (self.min_count..=self.max_count).contains(&count)
    }
}

mod defaults {
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
    pub(super) fn validate(&self, desired_count: u32) -> Result<(), (&'static str, String, String)> {
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

impl Config {
    /// `[autoscaling]`, and `service.desired_count` against its range.
    pub(super) fn validate_autoscaling(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        match &self.autoscaling {
            Some(scaling) => {
                scaling
                    .validate(self.service.desired_count)
                    .map_err(|(key, value, reason)| invalid(key, value, reason))?;
                scaling.validate_schedule().map_err(|(key, value, reason)| invalid(&key, value, reason))
            }
            None => Ok(()),
        }
    }
}
