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
        R: std::fmt::Debug,
    {
        let detail = DisplayErrorContext(&err).to_string();
        let (code, message) = match &err {
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
        _ => (code, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
