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
