//! `[service.secrets]` looked up: each reference's parameter or secret found (never its value) and
//! its full ARN and encryption key worked out, once per run. The execution role grants reading
//! exactly these ARNs (and decrypting with a customer-managed key), and the task definition hands
//! them to the container as `secrets` (`valueFrom`), which ECS reads when a task starts.
//! The parameters and secrets themselves are the user's: nothing here creates, changes or deletes them.

use std::sync::Arc;

use aws_sdk_ssm::types::ParameterStringFilter;
use serde_json::{json, Value};

use crate::config::SecretSource;
use crate::error::{AwsContext, StackError};
use crate::model::Scope;

/// The key a parameter or secret is encrypted with, when it is not AWS's managed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kms {
    /// A key's ARN.
    Key(String),
    /// `alias/NAME`: granted on the account's keys that carry it (`kms:ResourceAliases`).
    Alias(String),
}

/// A referenced parameter or secret, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The parameter's or secret's ARN: what the execution role may read.
    pub arn: String,
    /// What the task definition names (with a secret's JSON key: `ARN:key::`).
    pub value_from: String,
    pub kms: Option<Kms>,
}

/// One `[service.secrets]` entry and what was found for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The container's variable.
    pub name: String,
    pub source: SecretSource,
    pub found: Option<Found>,
}

impl Reference {
    fn is_parameter(&self) -> bool {
        matches!(self.source, SecretSource::Parameter(_))
    }

    /// As the config wrote it.
    fn written(&self) -> String {
        match &self.source {
            SecretSource::Parameter(name) => format!("ssm:{name}"),
            SecretSource::Secret { id, json_key: None } => format!("secretsmanager:{id}"),
            SecretSource::Secret { id, json_key: Some(key) } => format!("secretsmanager:{id}:{key}"),
        }
    }
}

/// Every reference of the config, looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    pub references: Vec<Reference>,
    /// The partition and region the keys' grants are written for.
    partition: String,
    region: String,
    account: String,
}

#[derive(Default)]
struct Looked(tokio::sync::OnceCell<Arc<Lookup>>);

/// Look up every referenced parameter and secret, once per run (no call without `[service.secrets]`).
/// One that does not exist is recorded as missing (and warned about); `up` refuses it before any
/// change ([`Lookup::refusal`]), `status` and `down` go on.
pub async fn lookup(ctx: &Scope<'_>) -> Result<Arc<Lookup>, StackError> {
    let looked = ctx.run::<Looked>();
    let found = looked.0.get_or_try_init(|| look_up(ctx)).await?;
    Ok(found.clone())
}

/// What [`lookup`] found this run (for the synchronous comparisons that follow it).
pub fn looked_up(ctx: &Scope<'_>, by: &str) -> Result<Arc<Lookup>, StackError> {
    if ctx.config.service.secrets.is_empty() {
        return Ok(Arc::new(Lookup::default()));
    }
    ctx.run::<Looked>()
        .0
        .get()
        .cloned()
        .ok_or_else(|| StackError::MissingDependency { needed: "service.secrets (looked up)".into(), by: by.into() })
}

async fn look_up(ctx: &Scope<'_>) -> Result<Arc<Lookup>, StackError> {
    let sources = ctx.config.secret_sources();
    if sources.is_empty() {
        return Ok(Arc::new(Lookup::default()));
    }
    // The caller's account and partition: a parameter's ARN is built from them when the answer
    // lacks it. GetCallerIdentity needs no permission.
    let me = ctx.aws.sts.get_caller_identity().send().await.ctx("find the account of", "the credentials in use")?;
    let partition = me.arn().and_then(|a| a.split(':').nth(1)).unwrap_or("aws").to_string();
    let mut lookup = Lookup {
        references: vec![],
        partition,
        region: ctx.region.to_string(),
        account: me.account().unwrap_or_default().to_string(),
    };
    let found = futures::future::try_join_all(sources.iter().map(|(_, source)| find(ctx, &lookup, source))).await?;
    for ((name, source), found) in sources.into_iter().zip(found) {
        lookup.references.push(Reference { name, source, found });
    }
    for missing in lookup.missing() {
        ctx.warn(format!("{missing}: tasks cannot start without it"));
    }
    Ok(Arc::new(lookup))
}

/// A parameter's name from `ssm:` NAME or ARN.
fn parameter_name(written: &str) -> String {
    match written.strip_prefix("arn:") {
        Some(_) => {
            let resource = written.splitn(6, ':').nth(5).unwrap_or_default();
            let name = resource.strip_prefix("parameter").unwrap_or(resource);
            // `parameter/app/key` names `/app/key`; `parameter/key` names `key`.
            if name.matches('/').count() > 1 {
                name.to_string()
            } else {
                name.trim_start_matches('/').to_string()
            }
        }
        None => written.to_string(),
    }
}

async fn find(ctx: &Scope<'_>, home: &Lookup, source: &SecretSource) -> Result<Option<Found>, StackError> {
    match source {
        SecretSource::Parameter(written) => {
            let name = parameter_name(written);
            let filter = ParameterStringFilter::builder().key("Name").option("Equals").values(&name).build();
            let filter = filter.map_err(|e| StackError::Failed { resource: name.clone(), message: e.to_string() })?;
            let out = ctx.aws.ssm.describe_parameters().parameter_filters(filter).send().await;
            let out = out.ctx("describe parameter", &name)?;
            let Some(found) = out.parameters().iter().find(|p| p.name() == Some(name.as_str())) else {
                return Ok(None);
            };
            let arn = found.arn().map(str::to_string).unwrap_or_else(|| {
                let path = name.trim_start_matches('/');
                format!("arn:{}:ssm:{}:{}:parameter/{path}", home.partition, home.region, home.account)
            });
            let kms = found.key_id().and_then(|k| customer_key(home, k));
            Ok(Some(Found { value_from: arn.clone(), arn, kms }))
        }
        SecretSource::Secret { id, json_key } => {
            let out = ctx.aws.secretsmanager.describe_secret().secret_id(id).send().await;
            let out = match out.ctx("describe secret", id) {
                Err(e) if e.has_code(&["ResourceNotFoundException"]) => return Ok(None),
                other => other?,
            };
            // A secret scheduled for deletion cannot be read.
            if out.deleted_date().is_some() {
                return Ok(None);
            }
            let arn = out.arn().unwrap_or(id).to_string();
            let value_from = match json_key {
                Some(key) => format!("{arn}:{key}::"),
                None => arn.clone(),
            };
            let kms = out.kms_key_id().and_then(|k| customer_key(home, k));
            Ok(Some(Found { arn, value_from, kms }))
        }
    }
}

/// The key to grant `kms:Decrypt` on: none for AWS's managed keys (`alias/aws/...`, or no key).
fn customer_key(home: &Lookup, key: &str) -> Option<Kms> {
    let key = key.trim();
    if key.is_empty() || key.starts_with("alias/aws/") || key.contains(":alias/aws/") {
        return None;
    }
    if let Some(alias) = key.strip_prefix("alias/") {
        return Some(Kms::Alias(format!("alias/{alias}")));
    }
    if key.starts_with("arn:") {
        return Some(match key.split_once(":alias/") {
            Some((_, alias)) => Kms::Alias(format!("alias/{alias}")),
            None => Kms::Key(key.to_string()),
        });
    }
    Some(Kms::Key(format!("arn:{}:kms:{}:{}:key/{key}", home.partition, home.region, home.account)))
}

impl Lookup {
    /// `service.secrets.NAME: REFERENCE: no such ...` for each reference not found.
    pub fn missing(&self) -> Vec<String> {
        self.references
            .iter()
            .filter(|r| r.found.is_none())
            .map(|r| {
                let what = if r.is_parameter() { "no such SSM parameter" } else { "no such Secrets Manager secret" };
                format!(
                    "service.secrets.{}: {}: {what} in {} (account {})",
                    r.name,
                    r.written(),
                    self.region,
                    self.account
                )
            })
            .collect()
    }

    /// `up` refuses, before any change, a reference to something that does not exist.
    pub fn refusal(&self) -> Option<StackError> {
        let missing = self.missing();
        (!missing.is_empty()).then(|| {
            StackError::Refused(format!(
                "nothing was changed: {}. Create it (fargate-stack never creates or reads secrets) or fix the reference",
                missing.join("; ")
            ))
        })
    }

    /// The container's secrets: variable name and `valueFrom`, for the references found.
    pub fn container_secrets(&self) -> Vec<(String, String)> {
        self.references.iter().filter_map(|r| Some((r.name.clone(), r.found.as_ref()?.value_from.clone()))).collect()
    }

    /// The execution role's statements: read exactly the referenced parameters and secrets, and
    /// decrypt with their customer-managed keys through those services only.
    pub fn grants(&self) -> Vec<Value> {
        let mut statements = vec![];
        for (parameters, sid, action, service) in [
            (true, "ReadParameters", "ssm:GetParameters", "ssm"),
            (false, "ReadSecrets", "secretsmanager:GetSecretValue", "secretsmanager"),
        ] {
            let found: Vec<&Found> = self
                .references
                .iter()
                .filter(|r| r.is_parameter() == parameters)
                .filter_map(|r| r.found.as_ref())
                .collect();
            let mut arns: Vec<&str> = found.iter().map(|f| f.arn.as_str()).collect();
            arns.sort();
            arns.dedup();
            if arns.is_empty() {
                continue;
            }
            statements.push(json!({"Sid": sid, "Effect": "Allow", "Action": [action], "Resource": arns}));
            let via = json!({"kms:ViaService": format!("{service}.{}.amazonaws.com", self.region)});
            let mut keys: Vec<&str> = found
                .iter()
                .filter_map(|f| match &f.kms {
                    Some(Kms::Key(k)) => Some(k.as_str()),
                    _ => None,
                })
                .collect();
            keys.sort();
            keys.dedup();
            let mut aliases: Vec<&str> = found
                .iter()
                .filter_map(|f| match &f.kms {
                    Some(Kms::Alias(a)) => Some(a.as_str()),
                    _ => None,
                })
                .collect();
            aliases.sort();
            aliases.dedup();
            let decrypt = if parameters { "DecryptParameters" } else { "DecryptSecrets" };
            if !keys.is_empty() {
                statements.push(json!({
                    "Sid": decrypt, "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": keys,
                    "Condition": {"StringEquals": via}
                }));
            }
            if !aliases.is_empty() {
                statements.push(json!({
                    "Sid": format!("{decrypt}ByAlias"), "Effect": "Allow", "Action": ["kms:Decrypt"],
                    "Resource": format!("arn:{}:kms:{}:{}:key/*", self.partition, self.region, self.account),
                    "Condition": {"StringEquals": via, "ForAnyValue:StringEquals": {"kms:ResourceAliases": aliases}}
                }));
            }
        }
        statements
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Lookup {
        Lookup {
            references: vec![],
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    #[test]
    fn parameter_names_come_from_names_or_arns() {
        assert_eq!(parameter_name("/app/db"), "/app/db");
        assert_eq!(parameter_name("plain"), "plain");
        assert_eq!(parameter_name("arn:aws:ssm:us-east-1:123456789012:parameter/app/db"), "/app/db");
        assert_eq!(parameter_name("arn:aws:ssm:us-east-1:123456789012:parameter/plain"), "plain");
    }

    #[test]
    fn only_customer_managed_keys_are_granted() {
        let h = home();
        assert_eq!(customer_key(&h, "alias/aws/ssm"), None);
        assert_eq!(customer_key(&h, "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager"), None);
        assert_eq!(customer_key(&h, "alias/app"), Some(Kms::Alias("alias/app".into())));
        assert_eq!(
            customer_key(&h, "arn:aws:kms:us-east-1:123456789012:alias/app"),
            Some(Kms::Alias("alias/app".into()))
        );
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(customer_key(&h, arn), Some(Kms::Key(arn.into())));
        assert_eq!(customer_key(&h, "1234abcd-12ab-34cd-56ef-1234567890ab"), Some(Kms::Key(arn.into())));
    }

    #[test]
    fn grants_name_exactly_the_referenced_arns_and_their_keys() {
        let param = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db";
        let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-AbCdEf";
        let key = "arn:aws:kms:us-east-1:123456789012:key/k1";
        let lookup = Lookup {
            references: vec![
                Reference {
                    name: "DB".into(),
                    source: SecretSource::Parameter("/app/db".into()),
                    found: Some(Found { arn: param.into(), value_from: param.into(), kms: Some(Kms::Key(key.into())) }),
                },
                Reference {
                    name: "API".into(),
                    source: SecretSource::Secret { id: "prod/api".into(), json_key: Some("token".into()) },
                    found: Some(Found { arn: secret.into(), value_from: format!("{secret}:token::"), kms: None }),
                },
                Reference { name: "GONE".into(), source: SecretSource::Parameter("/gone".into()), found: None },
            ],
            ..home()
        };
        let grants = lookup.grants();
        assert_eq!(grants.len(), 3, "{grants:#?}");
        assert_eq!(grants[0]["Resource"], json!([param]));
        assert_eq!(grants[0]["Action"], json!(["ssm:GetParameters"]));
        assert_eq!(grants[1]["Resource"], json!([key]));
        assert_eq!(grants[1]["Condition"]["StringEquals"]["kms:ViaService"], "ssm.us-east-1.amazonaws.com");
        assert_eq!(grants[2]["Resource"], json!([secret]));
        assert_eq!(
            lookup.container_secrets(),
            [("DB".to_string(), param.to_string()), ("API".to_string(), format!("{secret}:token::"))]
        );
        assert_eq!(lookup.missing().len(), 1);
        assert!(lookup.missing()[0].starts_with("service.secrets.GONE: ssm:/gone: no such SSM parameter"));
        assert!(lookup.refusal().is_some());
    }
}
