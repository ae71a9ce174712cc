//! Errors of the AWS layer: each names the action, the resource and the AWS error code.

use std::time::Duration;

pub mod aws;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// An AWS call failed.
    #[error("{action} {resource}: {code}: {message}")]
    Aws { action: String, resource: String, code: String, message: String, detail: String },
    /// A wait or retry ran out of time.
    #[error("gave up after {}s waiting for {resource} to {goal}; last seen: {last}", waited.as_secs())]
    Timeout { resource: String, goal: String, waited: Duration, last: String },
    /// AWS reached a terminal state we cannot continue from (e.g. a failed NAT gateway).
    #[error("{resource} {message}")]
    Failed { resource: String, message: String },
    /// The tool refuses to continue to protect data or because the user said no.
    #[error("{0}")]
    Refused(String),
    /// A step needs a resource that an earlier step should have created.
    #[error("{needed} is not in the state file; it is needed by {by}")]
    MissingDependency { needed: String, by: String },
    /// A resource that is not this stack's: it lacks the stack's tag or sits in another VPC.
    #[error("{resource} is not stack {stack}'s ({why}); left alone")]
    NotOurs { resource: String, stack: String, why: String },
    /// `up` cannot go on without changing or overwriting what is not the stack's, or AWS would
    /// refuse: found while checking, before any change.
    #[error("{resource}: {reason}")]
    Blocked { resource: String, reason: String },
    #[error(transparent)]
    State(#[from] StateError),
    /// A resource touched what it does not declare (a bug in its declaration, caught by tests).
    #[error("internal error: {by} {what}, which it does not declare (needs, reads or writes)")]
    Undeclared { by: String, what: String },
}

impl StackError {
    /// The AWS error code, if this came from AWS.
    pub fn code(&self) -> Option<&str> {
        match self {
            StackError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            StackError::Aws { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn has_code(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }

    /// Every AWS "does not exist" code this tool meets; a delete that gets one has succeeded.
    pub fn is_not_found(&self) -> bool {
        self.code().is_some_and(|c| {
            c.ends_with(".NotFound")
                || c.ends_with("NotFound")
                || c.ends_with("NotFoundException")
                || matches!(c, "NoSuchEntity" | "ResourceNotFoundException" | "InvalidAllocationID.NotFound")
        })
    }

    /// Verbose details for `-v`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            StackError::Aws { detail, .. } => Some(detail),
            _ => None,
        }
    }
}

/// Attach the action and resource to an SDK error.
pub trait AwsContext<T> {
    fn ctx(self, action: &str, resource: &str) -> Result<T, StackError>;
}

impl<T, E, R> AwsContext<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    fn ctx(self, action: &str, resource: &str) -> Result<T, StackError> {
        self.map_err(|err| aws::AwsError::of(err, action, resource).into())
    }
}

impl From<aws::AwsError> for StackError {
    fn from(e: aws::AwsError) -> StackError {
        let aws::AwsError { action, resource, code, message, detail } = e;
        StackError::Aws { action, resource, code, message, detail }
    }
}

/// What a create (or register) call answered with, or the error for an answer without it.
pub fn returned<T>(value: Option<T>, resource: impl Into<String>, message: &str) -> Result<T, StackError> {
    value.ok_or_else(|| StackError::Failed { resource: resource.into(), message: message.to_string() })
}

/// Treat "not found" as success: for deletes.
pub fn ignore_not_found(result: Result<(), StackError>) -> Result<(), StackError> {
    found(result).map(drop)
}

/// A describe or delete whose "does not exist" answer means `None`.
pub fn found<T>(result: Result<T, StackError>) -> Result<Option<T>, StackError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str) -> StackError {
        StackError::Aws {
            action: "a".into(),
            resource: "r".into(),
            code: code.into(),
            message: "m".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn not_found_codes() {
        for code in [
            "InvalidVpcID.NotFound",
            "InvalidGroup.NotFound",
            "NatGatewayNotFound",
            "LoadBalancerNotFound",
            "TargetGroupNotFound",
            "ListenerNotFound",
            "NoSuchEntity",
            "ResourceNotFoundException",
            "ClusterNotFoundException",
            "ServiceNotFoundException",
        ] {
            assert!(aws(code).is_not_found(), "{code}");
        }
        for code in ["DependencyViolation", "Throttling", "InvalidParameterException"] {
            assert!(!aws(code).is_not_found(), "{code}");
        }
        assert!(ignore_not_found(Err(aws("InvalidSubnetID.NotFound"))).is_ok());
        assert!(ignore_not_found(Err(aws("DependencyViolation"))).is_err());
    }

    #[test]
    fn display_names_action_resource_and_code() {
        assert_eq!(aws("DependencyViolation").to_string(), "a r: DependencyViolation: m");
    }
}
