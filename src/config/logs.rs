//! `[logs]`: the log group's retention.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// Retention values CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
}

/// `[logs]` absent: as an empty one.
impl Default for LogsConfig {
    fn default() -> LogsConfig {
        LogsConfig { retention_days: defaults::retention_days() }
    }
}

mod defaults {
    pub fn retention_days() -> u32 {
        14
    }
}

impl Config {
    /// `[logs]`: a retention CloudWatch accepts.
    pub(super) fn validate_logs(&self, invalid: &Invalid) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
