//! `[service.secrets]`: environment variables the container gets from SSM Parameter Store or
//! Secrets Manager by reference (the task definition's `secrets`, read by ECS when a task starts);
//! the config, the task definition and the state hold the reference, never the value.

use super::service::variable_name_ok;
use super::{Config, ConfigError, Invalid, TABLE_ENV_VAR};

/// Where a secret's value lives, as the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `ssm:/path/param` (or `ssm:name`, or `ssm:` and the parameter's ARN).
    Parameter(String),
    /// `secretsmanager:NAME_OR_ARN[:json-key]`.
    Secret { id: String, json_key: Option<String> },
}

const FORMS: &str = "\"ssm:/path/to/parameter\" or \"secretsmanager:NAME_OR_ARN\" (optionally \":json-key\")";

/// Characters AWS allows in a parameter name (and `/` for its path).
fn parameter_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1011
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !name.to_ascii_lowercase().trim_start_matches('/').starts_with("aws")
        && !name.to_ascii_lowercase().trim_start_matches('/').starts_with("ssm")
}

/// Characters AWS allows in a secret's name.
fn secret_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 512 && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

fn json_key_ok(key: &str) -> bool {
    !key.is_empty() && !key.contains(':') && !key.chars().any(char::is_control)
}

impl SecretSource {
    pub fn parse(text: &str) -> Result<SecretSource, String> {
        if let Some(rest) = text.strip_prefix("ssm:") {
            let name = match rest.strip_prefix("arn:") {
                Some(_) => {
                    let parts: Vec<&str> = rest.splitn(6, ':').collect();
                    match parts.as_slice() {
                        [_, _, "ssm", _, _, resource] => resource.strip_prefix("parameter").unwrap_or_default(),
                        _ => "",
                    }
                }
                None => rest,
            };
            if !parameter_name_ok(name) {
                return Err(format!(
                    "not a parameter name (letters, digits, '_', '.', '-', '/'; not starting with aws or ssm): \
                     expected {FORMS}"
                ));
            }
            return Ok(SecretSource::Parameter(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("secretsmanager:") {
            // An ARN has 7 parts (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX`); a name has no ':'.
            let (id, json_key) = if rest.starts_with("arn:") {
                let parts: Vec<&str> = rest.splitn(8, ':').collect();
                if parts.len() < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" || !secret_name_ok(parts[6])
                {
                    return Err(format!("not a Secrets Manager secret ARN: expected {FORMS}"));
                }
                (parts[..7].join(":"), parts.get(7).map(|k| k.to_string()))
            } else {
                match rest.split_once(':') {
                    Some((name, key)) => (name.to_string(), Some(key.to_string())),
                    None => (rest.to_string(), None),
                }
            };
            if !secret_name_ok(id.rsplit(':').next().unwrap_or_default()) {
                return Err(format!("not a secret name (letters, digits, '/_+=.@-'): expected {FORMS}"));
            }
            if let Some(key) = &json_key {
                if !json_key_ok(key) {
                    return Err(format!("not a JSON key (non-empty, without ':'): expected {FORMS}"));
                }
            }
            return Ok(SecretSource::Secret { id, json_key });
        }
        Err(format!("expected {FORMS}"))
    }
}

/// At most this many secrets (each one a variable of the container and a line of the policy).
pub const MAX_SECRETS: usize = 50;

impl Config {
    /// `[service.secrets]`: variable names as in `[service.environment]`, not set twice, each a
    /// reference of a known form.
    pub(super) fn validate_secrets(&self, invalid: &Invalid) -> Result<(), ConfigError> {
        let secrets = &self.service.secrets;
        if secrets.len() > MAX_SECRETS {
            return Err(invalid(
                "service.secrets",
                format!("{} entries", secrets.len()),
                format!("at most {MAX_SECRETS}"),
            ));
        }
        for (name, reference) in secrets {
            if !variable_name_ok(name) {
                let reason = "names are letters, digits and '_', not starting with a digit";
                return Err(invalid("service.secrets", format!("{name:?}"), reason.into()));
            }
            if name == TABLE_ENV_VAR || self.service.environment.contains_key(name) {
                let reason = if name == TABLE_ENV_VAR {
                    format!("{TABLE_ENV_VAR} is set by fargate-stack to the table name")
                } else {
                    "also set in [service.environment]: a variable comes from one place".into()
                };
                return Err(invalid("service.secrets", format!("{name:?}"), reason));
            }
            SecretSource::parse(reference)
                .map_err(|r| invalid("service.secrets", format!("{name} = {reference:?}"), r))?;
        }
        Ok(())
    }

    /// The container's secrets: variable name and where its value lives, in name order.
    pub fn secret_sources(&self) -> Vec<(String, SecretSource)> {
        let parse = |r: &String| SecretSource::parse(r).expect("checked when the config was loaded");
        self.service.secrets.iter().map(|(name, r)| (name.clone(), parse(r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::SecretSource::{self, Parameter, Secret};

    #[test]
    fn references_are_parameters_or_secrets_with_an_optional_json_key() {
        assert_eq!(SecretSource::parse("ssm:/app/db/password"), Ok(Parameter("/app/db/password".into())));
        assert_eq!(SecretSource::parse("ssm:plain_name"), Ok(Parameter("plain_name".into())));
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/key";
        assert_eq!(SecretSource::parse(&format!("ssm:{arn}")), Ok(Parameter(arn.into())));
        assert_eq!(SecretSource::parse("secretsmanager:prod/db"), Ok(Secret { id: "prod/db".into(), json_key: None }));
        assert_eq!(
            SecretSource::parse("secretsmanager:prod/db:password"),
            Ok(Secret { id: "prod/db".into(), json_key: Some("password".into()) })
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
        assert_eq!(
            SecretSource::parse(&format!("secretsmanager:{arn}")),
            Ok(Secret { id: arn.into(), json_key: None })
        );
        assert_eq!(
            SecretSource::parse(&format!("secretsmanager:{arn}:user")),
            Ok(Secret { id: arn.into(), json_key: Some("user".into()) })
        );
        for bad in [
            "",
            "/app/db",
            "ssm:",
            "ssm:/aws/reserved",
            "ssm:/a b",
            "secretsmanager:",
            "secretsmanager:a:b:c",
            "secretsmanager:prod/db:",
            "secretsmanager:arn:aws:s3:::bucket",
            "vault:x",
        ] {
            assert!(SecretSource::parse(bad).is_err(), "{bad}");
        }
    }
}
