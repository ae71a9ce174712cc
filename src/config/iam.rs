//! `[iam]`: what every role the stack creates carries beyond its own policies.

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, Invalid};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    /// A managed policy set as the permissions boundary of every role the stack creates (the most
    /// the roles may ever do, whatever their own policies say); absent: none.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
}

impl Config {
    /// `[iam]`: a boundary that is an IAM managed policy's ARN.
    pub(super) fn validate_iam(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        if let Some(arn) = &self.iam.permissions_boundary {
            check_policy_arn(arn).map_err(|reason| invalid("iam.permissions_boundary", format!("{arn:?}"), reason))?;
        }
        Ok(())
    }
}

/// `arn:<partition>:iam::<account or "aws">:policy/[<path>/]<name>`, with IAM's characters for
/// paths and names.
fn check_policy_arn(arn: &str) -> Result<(), String> {
    const HINT: &str = "expected an IAM managed policy ARN such as \"arn:aws:iam::123456789012:policy/Boundary\" \
                        (a permissions boundary is a managed policy)";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else { return Err(HINT.into()) };
    let account_ok = account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
    let name_char = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b);
    let path_ok = resource.strip_prefix("policy/").is_some_and(|path| {
        let segments: Vec<&str> = path.split('/').collect();
        path.len() <= 640 && segments.iter().all(|s| !s.is_empty() && s.bytes().all(name_char))
    });
    let name_ok = resource.rsplit('/').next().is_some_and(|n| n.len() <= 128);
    let ok = prefix == "arn"
        && matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "iam"
        && region.is_empty()
        && account_ok
        && path_ok
        && name_ok;
    if ok {
        Ok(())
    } else {
        Err(HINT.into())
    }
}
