//! An AWS call's failure in words: the action, the resource and AWS's error code, with credential
//! and endpoint problems said as what to do. A leaf: the state backends use it too.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::result::SdkError;

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} {resource}: {code}: {message}")]
pub struct AwsError {
    pub action: String,
    pub resource: String,
    pub code: String,
    pub message: String,
    /// The SDK's whole chain, for `-v`.
    pub detail: String,
}

impl AwsError {
    pub fn of<E, R>(err: SdkError<E, R>, action: &str, resource: &str) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        let (code, message) = match &err {
            // S3 answers a HEAD request it refuses with 403 and no body, so without a code.
            SdkError::ServiceError(service) if service.err().code().is_none() && status(service.raw()) == Some(403) => {
                ("AccessDenied".into(), "403 Forbidden, without a body (S3 does not say why to a HEAD request)".into())
            }
            SdkError::ServiceError(service) => {
                let e = service.err();
                (
                    e.code().unwrap_or("Unknown").to_string(),
                    e.message().map(str::to_string).unwrap_or_else(|| detail.clone()),
                )
            }
            SdkError::TimeoutError(_) => ("RequestTimeout".into(), "the request timed out".into()),
            SdkError::DispatchFailure(failure) => {
                let why = if failure.is_io() {
                    "cannot connect to the AWS endpoint (check --endpoint-url, the network or a proxy)"
                } else if failure.is_timeout() {
                    "the connection to the AWS endpoint timed out"
                } else {
                    "the request could not be sent (check credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID or `aws sso login`)"
                };
                ("DispatchFailure".into(), why.into())
            }
            SdkError::ConstructionFailure(_) => {
                ("RequestConstruction".into(), "the request could not be built (missing credentials or region?)".into())
            }
            SdkError::ResponseError(_) => ("ResponseError".into(), "the response could not be read".into()),
            _ => ("Unknown".into(), detail.clone()),
        };
        let (code, message) = actionable(code, message, &detail);
        AwsError { action: action.to_string(), resource: resource.to_string(), code, message, detail }
    }
}

/// The HTTP status of a raw response, when it is one.
fn status<R: std::fmt::Debug + 'static>(raw: &R) -> Option<u16> {
    let any: &dyn std::any::Any = raw;
    any.downcast_ref::<aws_smithy_runtime_api::http::Response>().map(|r| r.status().as_u16())
}

/// Credential and endpoint problems in words a user can act on (the SDK's chain is in `detail`, shown by `-v`).
fn actionable(code: String, message: String, detail: &str) -> (String, String) {
    const HOW: &str = "set AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`";
    let lower = detail.to_lowercase();
    match code.as_str() {
        "DispatchFailure" | "RequestConstruction" if lower.contains("credential") || lower.contains("identity") => {
            ("NoCredentials".into(), format!("no AWS credentials found: {HOW}"))
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            (code, format!("the AWS credentials have expired: refresh them ({HOW})"))
        }
        "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "AuthFailure"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
            if !message.is_empty() =>
        {
            let hint = "the credentials are not valid here (wrong account, region or key?)";
            (code, format!("{hint}: {message}"))
        }
        c if DENIED.contains(&c) => {
            let message = match denied_action(&message) {
                Some((action, Some(resource))) => {
                    format!("not allowed to perform {action} on {resource}. {POLICY_HINT}")
                }
                Some((action, None)) => format!("not allowed to perform {action}. {POLICY_HINT}"),
                None => format!("{message}. {POLICY_HINT}"),
            };
            (code, message)
        }
        _ => (code, message),
    }
}

/// The codes AWS answers a call the caller's IAM policies do not allow with, per protocol.
pub const DENIED: &[&str] = &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation"];

/// What to do about a denied call, said with every denial.
pub const POLICY_HINT: &str = "`fargate-stack policy` prints the IAM policy these commands need";

/// The action a denial's message (as [`AwsError`] words it) names.
pub fn denied_in(text: &str) -> Option<&str> {
    const MARK: &str = "not allowed to perform ";
    let rest = &text[text.find(MARK)? + MARK.len()..];
    rest.split_whitespace().next().map(|a| a.trim_end_matches('.'))
}

/// The action (and resource) AWS names in a denial: "User: ARN is not authorized to perform: ACTION
/// [on resource: R] because ..." (the EC2 form starts with "You are not authorized ...").
pub fn denied_action(message: &str) -> Option<(String, Option<String>)> {
    const MARK: &str = "not authorized to perform: ";
    let rest = &message[message.find(MARK)? + MARK.len()..];
    let action = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    if !action.contains(':') {
        return None;
    }
    let resource = rest
        .strip_prefix(action)
        .and_then(|r| r.trim_start().strip_prefix("on resource: "))
        .and_then(|r| r.split_whitespace().next())
        .map(|r| r.trim_matches('"').to_string());
    Some((action.to_string(), resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_is_one_line_naming_the_action_and_pointing_to_the_policy() {
        let ec2 = "You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/ci is not \
                   authorized to perform: ec2:CreateVpc because no identity-based policy allows the ec2:CreateVpc \
                   action. Encoded authorization failure message: 3Q0T-x";
        let (code, message) = actionable("UnauthorizedOperation".into(), ec2.into(), "");
        assert_eq!(code, "UnauthorizedOperation");
        assert_eq!(message, format!("not allowed to perform ec2:CreateVpc. {POLICY_HINT}"));
        let ecs = "User: arn:aws:iam::1:user/ci is not authorized to perform: iam:PassRole on resource: \
                   arn:aws:iam::1:role/s-execution-role because no identity-based policy allows the iam:PassRole action";
        let (_, message) = actionable("AccessDeniedException".into(), ecs.into(), "");
        assert_eq!(
            message,
            format!("not allowed to perform iam:PassRole on arn:aws:iam::1:role/s-execution-role. {POLICY_HINT}")
        );
        let s3 = r#"User: arn:aws:iam::1:user/ci is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::b/k" because no"#;
        assert_eq!(denied_action(s3), Some(("s3:PutObject".into(), Some("arn:aws:s3:::b/k".into()))));
        let (_, message) = actionable("AccessDenied".into(), "Access Denied".into(), "");
        assert_eq!(message, format!("Access Denied. {POLICY_HINT}"));
        assert!(!message.contains('\n'));
        assert_eq!(denied_action("something else"), None);
        let line = format!("create VPC: UnauthorizedOperation: not allowed to perform ec2:CreateVpc. {POLICY_HINT}");
        assert_eq!(denied_in(&line), Some("ec2:CreateVpc"));
        assert_eq!(denied_in("DependencyViolation: in use"), None);
    }

    #[test]
    fn credential_problems_read_as_actions() {
        let (code, message) =
            actionable("DispatchFailure".into(), "x".into(), "failed to resolve identity: no credentials");
        assert_eq!(code, "NoCredentials");
        assert!(message.contains("aws sso login"));
        let (_, message) =
            actionable("ExpiredToken".into(), "The security token included in the request is expired".into(), "");
        assert!(message.contains("have expired"), "{message}");
        let (_, message) = actionable("UnrecognizedClientException".into(), "The security token is invalid".into(), "");
        assert!(message.contains("wrong account, region or key"), "{message}");
        let (code, message) = actionable("DependencyViolation".into(), "in use".into(), "");
        assert_eq!((code.as_str(), message.as_str()), ("DependencyViolation", "in use"));
    }
}
