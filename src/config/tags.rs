//! `[tags]`: the user's tags, put on every resource the stack creates beside the tool's own, and
//! checked against AWS's tag rules before any AWS call.

use std::collections::BTreeMap;

use super::{Config, ConfigError, Invalid};

/// AWS's limit of tags per resource (EC2, ECS, ELB, IAM, DynamoDB, CloudWatch Logs, S3, ACM).
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// The tool's own tag keys start with this (`fargate-stack:stack`, `fargate-stack:resource`,
/// `fargate-stack:state`): reserved. `context` holds the keys themselves.
pub const OWN_TAG_PREFIX: &str = "fargate-stack:";

/// The tool sets `Name` on every resource (the console's name column): reserved too.
pub const NAME_TAG: &str = "Name";

/// The most tags the tool itself puts on one resource: stack, resource and `Name` everywhere, and
/// where the state lives on the VPC.
pub const OWN_TAGS_AT_MOST: usize = 4;

/// The user's tags: key → value, in key order.
pub type Tags = BTreeMap<String, String>;

/// Letters, digits and spaces (any script), and `+ - = . _ : / @`: the characters every service
/// the stack tags accepts (EC2 accepts more; IAM, ECS, ELB, DynamoDB, Logs, S3 and ACM only these).
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// One tag against AWS's rules and the tool's reserved keys.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if chars == 0 || chars > 128 {
        return Err(format!("the key must be 1 to 128 characters (it has {chars})"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err("keys starting with \"aws:\" are reserved by AWS".into());
    }
    if key.to_ascii_lowercase().starts_with(OWN_TAG_PREFIX) || key == NAME_TAG {
        return Err(format!(
            "reserved: fargate-stack sets {NAME_TAG} and the {OWN_TAG_PREFIX}* tags on every resource itself"
        ));
    }
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!("the key holds {c:?}: use letters, digits, spaces and + - = . _ : / @"));
    }
    let chars = value.chars().count();
    if chars > 256 {
        return Err(format!("the value must be at most 256 characters (it has {chars})"));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(format!("the value holds {c:?}: use letters, digits, spaces and + - = . _ : / @"));
    }
    Ok(())
}

impl Config {
    /// `[tags]`: each tag, and how many fit beside the tool's own.
    pub(super) fn validate_tags(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let room = MAX_TAGS_PER_RESOURCE - OWN_TAGS_AT_MOST;
        if self.tags.len() > room {
            return Err(invalid(
                "tags",
                format!("{} tags", self.tags.len()),
                format!(
                    "at most {room}: AWS allows {MAX_TAGS_PER_RESOURCE} per resource and fargate-stack sets up to \
                     {OWN_TAGS_AT_MOST} itself"
                ),
            ));
        }
        for (key, value) in &self.tags {
            check_tag(key, value).map_err(|reason| invalid("tags", format!("{key:?} = {value:?}"), reason))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_aws_rules() {
        assert!(check_tag("team", "payments").is_ok());
        assert!(check_tag("cost-centre", "").is_ok(), "an empty value is allowed");
        assert!(check_tag("Projekt Größe", "a+b=c.d_e:f/g@h").is_ok(), "letters of any script, spaces");
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        assert!(check_tag(&"k".repeat(129), "v").unwrap_err().contains("1 to 128 characters (it has 129)"));
        assert!(check_tag("", "v").unwrap_err().contains("1 to 128"));
        assert!(check_tag("k", &"v".repeat(257)).unwrap_err().contains("at most 256 characters (it has 257)"));
        assert!(check_tag(&"é".repeat(128), "v").is_ok(), "characters, not bytes");
        for reserved in ["aws:cloudformation:stack-name", "AWS:x", "Aws:y"] {
            assert!(check_tag(reserved, "v").unwrap_err().contains("reserved by AWS"), "{reserved}");
        }
        assert!(check_tag("awsome", "v").is_ok());
        for own in ["fargate-stack:stack", "fargate-stack:resource", "fargate-stack:state", "Fargate-Stack:x", "Name"] {
            assert!(check_tag(own, "v").unwrap_err().contains("reserved: fargate-stack sets"), "{own}");
        }
        assert!(check_tag("name", "v").is_ok(), "tag keys are case-sensitive: only Name is the tool's");
        assert!(check_tag("team!", "v").unwrap_err().contains("the key holds '!'"));
        assert!(check_tag("team", "a;b").unwrap_err().contains("the value holds ';'"));
        assert!(check_tag("team", "a\nb").unwrap_err().contains("the value holds '\\n'"));
    }
}
