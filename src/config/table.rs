//! `[table]`: the DynamoDB table's key attributes and point-in-time recovery.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub partition_key: KeyAttribute,
    #[serde(default)]
    pub sort_key: Option<KeyAttribute>,
    /// Continuous backups restorable to any second of the last 35 days (Security Hub DynamoDB.2).
    #[serde(default = "point_in_time_recovery")]
    pub point_in_time_recovery: bool,
    /// A customer-managed KMS key of the user's to encrypt the table with (its ARN); absent: the
    /// AWS owned key, at no charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

fn point_in_time_recovery() -> bool {
    true
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

impl Config {
    /// `[table]`: the key attributes.
    pub(super) fn validate_table(&self, invalid: &Invalid) -> Result<(), ConfigError> {
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
        if let Some(key) = &self.table.kms_key_arn {
            parse_key_arn(key).map_err(|reason| invalid("table.kms_key_arn", format!("{key:?}"), reason))?;
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
}

/// The parts of a key's ARN: `arn:<partition>:kms:<region>:<account>:key/<id>`.
pub fn parse_key_arn(arn: &str) -> Result<(String, String), String> {
    const FORM: &str = "a KMS key's ARN, arn:aws:kms:REGION:ACCOUNT:key/ID (not an alias: the table and the log \
                        group report the key's ARN, which the plan compares)";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else { return Err(FORM.into()) };
    let id = resource.strip_prefix("key/").unwrap_or_default();
    let id_ok = (id.len() == 36 || id.starts_with("mrk-"))
        && id.len() <= 40
        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-' || b"mrk".contains(&b));
    let ok = prefix == "arn"
        && ["aws", "aws-cn", "aws-us-gov"].contains(&partition)
        && service == "kms"
        && !region.is_empty()
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && id_ok;
    if ok {
        Ok((region.to_string(), id.to_string()))
    } else {
        Err(FORM.into())
    }
}
