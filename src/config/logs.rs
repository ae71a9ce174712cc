//! `[logs]`: the log group's retention and how the containers hand their output to it.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

/// Retention values CloudWatch Logs accepts (PutRetentionPolicy).
pub const LOG_RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// The retention Security Hub's CloudWatch.16 (and Prowler) expect at least.
pub const AUDIT_RETENTION_DAYS: u32 = 365;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u32,
    /// How the awslogs driver delivers: `non-blocking` buffers and drops output when CloudWatch is
    /// slow, `blocking` stops the container's writes (and so the app) until it catches up.
    #[serde(default)]
    pub mode: LogMode,
    /// The buffer of the non-blocking mode (Docker's size: digits and k, m or g).
    #[serde(default = "defaults::max_buffer_size")]
    pub max_buffer_size: String,
    /// A customer-managed KMS key of the user's to encrypt the containers' log group with (its
    /// ARN; its key policy must let CloudWatch Logs use it); absent: CloudWatch's own encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogMode {
    #[default]
    NonBlocking,
    Blocking,
}

impl LogMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LogMode::NonBlocking => "non-blocking",
            LogMode::Blocking => "blocking",
        }
    }
}

/// `[logs]` absent: as an empty one.
impl Default for LogsConfig {
    fn default() -> LogsConfig {
        LogsConfig {
            retention_days: defaults::retention_days(),
            mode: LogMode::default(),
            max_buffer_size: defaults::max_buffer_size(),
            kms_key_arn: None,
        }
    }
}

mod defaults {
    pub fn retention_days() -> u32 {
        super::AUDIT_RETENTION_DAYS
    }

    pub fn max_buffer_size() -> String {
        "25m".into()
    }
}

/// Bytes in a Docker size (`25m`), if it is one.
fn buffer_bytes(size: &str) -> Option<u64> {
    let (digits, unit) = size.split_at(size.len().checked_sub(1)?);
    let scale: u64 = match unit {
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    digits.parse::<u64>().ok().map(|n| n * scale)
}

/// A retention CloudWatch accepts (PutRetentionPolicy), for the log group configured at `key`.
pub(super) fn check_retention(key: &'static str, days: u32, invalid: &Invalid) -> Result<(), ConfigError> {
    if LOG_RETENTION_DAYS.contains(&days) {
        return Ok(());
    }
    let accepted = LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    Err(invalid(key, days.to_string(), format!("CloudWatch accepts {accepted}")))
}

impl Config {
    /// `[logs]`: a retention CloudWatch accepts, a buffer size Docker reads.
    pub(super) fn validate_logs(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        check_retention("logs.retention_days", self.logs.retention_days, invalid)?;
        if let Some(key) = &self.logs.kms_key_arn {
            super::parse_key_arn(key).map_err(|reason| invalid("logs.kms_key_arn", format!("{key:?}"), reason))?;
        }
        // The buffer lives in the task's memory: 4 KiB ..= 1 GiB, and never above the task's memory.
        let bytes = buffer_bytes(&self.logs.max_buffer_size);
        let task_memory = u64::from(self.service.memory) << 20;
        if !bytes.is_some_and(|b| (4 << 10..=(1 << 30).min(task_memory)).contains(&b)) {
            return Err(invalid(
                "logs.max_buffer_size",
                format!("{:?}", self.logs.max_buffer_size),
                "a size such as \"25m\" (digits, then k, m or g), 4k ..= 1g and at most service.memory".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::buffer_bytes;

    #[test]
    fn buffer_sizes_are_dockers() {
        assert_eq!(buffer_bytes("25m"), Some(25 << 20));
        assert_eq!(buffer_bytes("4k"), Some(4 << 10));
        for bad in ["", "m", "25", "25M", "2.5m", "-1m", "25mb", "9999999m"] {
            assert_eq!(buffer_bytes(bad), None, "{bad}");
        }
    }
}
