//! `[flow_logs]`: the VPC's flow logs, delivered to a CloudWatch log group of their own.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid, AUDIT_RETENTION_DAYS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowLogsConfig {
    /// Security Hub EC2.6 expects them; off: no flow log, group or role (and `up` removes them).
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// Which traffic is logged.
    #[serde(default)]
    pub traffic_type: TrafficType,
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
}

/// The traffic a flow log records (EC2's `TrafficType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrafficType {
    /// Accepted and rejected: what an incident review needs (Security Hub asks for REJECT at least).
    #[default]
    All,
    Accept,
    Reject,
}

impl TrafficType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::All => "ALL",
            TrafficType::Accept => "ACCEPT",
            TrafficType::Reject => "REJECT",
        }
    }
}

/// `[flow_logs]` absent: on, with the defaults.
impl Default for FlowLogsConfig {
    fn default() -> FlowLogsConfig {
        FlowLogsConfig {
            enabled: defaults::enabled(),
            traffic_type: TrafficType::default(),
            retention_days: defaults::retention_days(),
        }
    }
}

mod defaults {
    pub fn enabled() -> bool {
        true
    }

    pub fn retention_days() -> u32 {
        super::AUDIT_RETENTION_DAYS
    }
}

impl Config {
    /// `[flow_logs]`: a retention CloudWatch accepts (the traffic type is checked by its type).
    pub(super) fn validate_flow_logs(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        super::logs::check_retention("flow_logs.retention_days", self.flow_logs.retention_days, invalid)?;
        Ok(())
    }
}
