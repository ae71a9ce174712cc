//! Customer-managed KMS keys the config names (`[table] kms_key_arn`, `[logs] kms_key_arn`): the
//! user's, checked before any change, never created, changed or deleted by the stack. Helpers,
//! declared by the resources that call them ([`key_permissions`]).

use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};
use serde_json::{json, Value};

use crate::access::{arn, Permission};
use crate::config::parse_key_arn;
use crate::error::{AwsContext, StackError};
use crate::model::Scope;
use crate::policy::{any_of, glob, statements};

/// What KMS's requests cost ($0.03 per 10,000), billed to whoever calls: the services using the key
/// on the stack's behalf.
pub const KMS_REQUESTS: &str = "kms:requests";

/// What the resources that check a key declare: reading it and its policy.
pub fn key_permissions() -> Vec<Permission> {
    let key = arn("kms", "key/*");
    vec![Permission::find("kms:DescribeKey").on(key.clone()), Permission::find("kms:GetKeyPolicy").on(key)]
}

/// `up`, before any change: the key `arn` (the config's `config_key`) is of this region, exists, is
/// enabled, and encrypts (symmetric, ENCRYPT_DECRYPT: what DynamoDB and CloudWatch Logs take); with
/// `service` (`logs.<region>.amazonaws.com`), its key policy lets that service use it, which AWS
/// checks when the key is set.
pub async fn check_key(ctx: &Scope<'_>, config_key: &str, arn: &str, service: Option<&str>) -> Result<(), StackError> {
    let refuse = |why: String| StackError::Refused(format!("{config_key}: key {arn} {why}; nothing was changed"));
    let (region, _) = parse_key_arn(arn).map_err(|reason| refuse(format!("is not {reason}")))?;
    if region != ctx.region {
        return Err(refuse(format!(
            "is in {region}; the stack's resources take a key of their region ({})",
            ctx.region
        )));
    }
    let described = ctx.aws.kms.describe_key().key_id(arn).send().await.ctx("describe KMS key", arn);
    let meta = match described {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) if e.has_code(&["NotFoundException"]) => return Err(refuse("does not exist".into())),
        Err(e) => return Err(e),
    };
    let Some(meta) = meta else { return Err(refuse("could not be described".into())) };
    if !meta.enabled() || meta.key_state() != Some(&KeyState::Enabled) {
        let state = meta.key_state().map_or("unknown", |s| s.as_str());
        return Err(refuse(format!("is not enabled (state {state})")));
    }
    if meta.key_spec() != Some(&KeySpec::SymmetricDefault) || meta.key_usage() != Some(&KeyUsageType::EncryptDecrypt) {
        let spec = meta.key_spec().map_or("unknown", |s| s.as_str());
        let usage = meta.key_usage().map_or("unknown", |u| u.as_str());
        return Err(refuse(format!("is {spec} for {usage}; it must be SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT")));
    }
    let Some(service) = service else { return Ok(()) };
    let policy = ctx.aws.kms.get_key_policy().key_id(arn).policy_name("default").send().await;
    let policy = policy.ctx("read the key policy of", arn)?.policy().unwrap_or_default().to_string();
    if lets_service_use(&policy, service) {
        return Ok(());
    }
    let statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
    });
    Err(refuse(format!(
        "has a key policy that does not let {service} use it (AWS refuses the key with AccessDeniedException); add \
         this statement to it: {statement}"
    )))
}

/// The actions a service needs of a key to encrypt and decrypt with it.
const SERVICE_USES: &[&str] = &["kms:encrypt", "kms:decrypt", "kms:generatedatakey"];

/// Does `policy` allow `service` (a service principal) the actions it encrypts with, on the key?
/// Conditions (on the encryption context, as AWS's example scopes them to log groups) are taken as
/// met; an unconditioned Deny of them is not.
pub fn lets_service_use(policy: &str, service: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(policy) else { return false };
    let statements = statements(&doc);
    let names_service = |st: &Value| match st.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(p) => any_of(p.get("Service"), |s| s == service) || any_of(p.get("AWS"), |s| s == "*"),
        None => false,
    };
    let effect = |st: &Value, e: &str| st.get("Effect").and_then(Value::as_str) == Some(e);
    let covers = |st: &Value, action: &str| {
        any_of(st.get("Action"), |a| glob(&a.to_ascii_lowercase(), action))
            && any_of(st.get("Resource"), |r| r == "*" || r.contains(":key/"))
    };
    SERVICE_USES.iter().all(|action| {
        let allowed = statements.iter().any(|st| effect(st, "Allow") && names_service(st) && covers(st, action));
        let denied = statements
            .iter()
            .any(|st| effect(st, "Deny") && st.get("Condition").is_none() && names_service(st) && covers(st, action));
        allowed && !denied
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn key_arns_parse_and_aliases_do_not() {
        assert_eq!(parse_key_arn(KEY).unwrap().0, "us-east-1");
        let mrk = "arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        assert_eq!(parse_key_arn(mrk).unwrap().0, "us-west-2");
        for bad in ["arn:aws:kms:us-east-1:123456789012:alias/mine", "1234abcd-12ab-34cd-56ef-1234567890ab", ""] {
            assert!(parse_key_arn(bad).is_err(), "{bad}");
        }
        assert!(parse_key_arn(&KEY.replace("kms", "s3")).is_err());
    }

    #[test]
    fn a_key_policy_must_let_the_logs_service_encrypt() {
        let logs = "logs.us-east-1.amazonaws.com";
        let root_only = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                              "Action": "kms:*", "Resource": "*"}]});
        assert!(!lets_service_use(&root_only.to_string(), logs));
        let documented = json!({"Version": "2012-10-17", "Statement": [
            root_only["Statement"][0].clone(),
            {"Effect": "Allow", "Principal": {"Service": logs},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:*"}}}]});
        assert!(lets_service_use(&documented.to_string(), logs));
        assert!(!lets_service_use(&documented.to_string(), "logs.eu-west-1.amazonaws.com"), "another region's");
        let mut denied = documented.clone();
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Deny", "Principal": {"Service": logs}, "Action": "kms:Decrypt", "Resource": "*"}));
        assert!(!lets_service_use(&denied.to_string(), logs));
        assert!(!lets_service_use("not json", logs));
    }
}
