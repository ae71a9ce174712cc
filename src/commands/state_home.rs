//! Where a stack's state lives, as its VPC's `fargate-stack:state` tag says (see
//! `state::location::STATE_TAG`): read before `up` adopts anything, so that a stack whose state lives
//! elsewhere never gets a second state; moved by `state push` / `pull`.

use crate::access::{self, Permission};
use crate::commands::{CommandError, Setup};
use crate::context::{RESOURCE_TAG, STACK_TAG};
use crate::error::AwsContext;
use crate::resources::network;
use crate::state::location::{tag_value, LOCAL_TAG_VALUE, STATE_TAG};

/// The stack's VPC, found by its tags, and the state location it names.
#[derive(Debug, Clone)]
pub struct Home {
    pub vpc: String,
    /// `None`: a VPC made before the tag existed.
    pub tag: Option<String>,
}

impl Home {
    /// The location the tag names when it is not this run's.
    pub fn elsewhere(&self, setup: &Setup) -> Option<&str> {
        self.tag.as_deref().filter(|tag| *tag != tag_value(&setup.location()))
    }
}

/// The stack's VPC (tagged with its name and as its `vpc`, checked here whatever filter EC2
/// applied), if it exists. With several, the one that names another state wins: it is the reason
/// to stop.
pub async fn find(setup: &Setup) -> Result<Option<Home>, CommandError> {
    let filter = |name: String, value: &str| aws_sdk_ec2::types::Filter::builder().name(name).values(value).build();
    let out = setup
        .clients
        .ec2
        .describe_vpcs()
        .filters(filter(format!("tag:{STACK_TAG}"), &setup.config.name))
        .filters(filter(format!("tag:{RESOURCE_TAG}"), &network::VPC.to_string()))
        .send()
        .await
        .ctx("describe", "the stack's VPC")?;
    let vpc = network::VPC.to_string();
    let homes: Vec<Home> = out
        .vpcs()
        .iter()
        .filter_map(|v| {
            let tag = |key: &str| v.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value());
            let ours = tag(STACK_TAG) == Some(setup.config.name.as_str()) && tag(RESOURCE_TAG) == Some(vpc.as_str());
            ours.then(|| Home {
                vpc: v.vpc_id().unwrap_or_default().to_string(),
                tag: tag(STATE_TAG).map(str::to_string),
            })
        })
        .collect();
    let here = tag_value(&setup.location());
    Ok(homes.iter().find(|h| h.tag.as_deref().is_some_and(|t| t != here)).or(homes.first()).cloned())
}

/// What finding the stack's VPC and tagging it with the state's location call: `up`, `down`,
/// `status` and `deploy` look for it, `up` (once, on a VPC made before the tag) and `state push` /
/// `pull` tag it.
pub fn permissions() -> Vec<Permission> {
    vec![
        Permission::find("ec2:DescribeVpcs"),
        Permission::update("ec2:CreateTags").on(access::arn("ec2", "vpc/*")).tagged(),
    ]
}

/// Tag the VPC with where the state lives now.
pub async fn set(setup: &Setup, vpc: &str, location: &str) -> Result<(), CommandError> {
    let tag = aws_sdk_ec2::types::Tag::builder().key(STATE_TAG).value(tag_value(location)).build();
    setup.clients.ec2.create_tags().resources(vpc).tags(tag).send().await.ctx("tag where the state lives on", vpc)?;
    Ok(())
}

/// Why a run with this state location must not touch the stack, and what to run instead.
pub fn refusal(setup: &Setup, home: &Home, other: &str) -> CommandError {
    let (stack, here, vpc) = (&setup.config.name, setup.location(), &home.vpc);
    let instead = if other == LOCAL_TAG_VALUE {
        "its state is a local file, on the machine and in the directory of the run that made it: run there \
         (`fargate-stack state push` moves it to S3 for a team)"
            .to_string()
    } else if other.starts_with("sha256:") {
        "its state is in S3, at a location too long for the tag (kept as its SHA-256): run with that `--state`"
            .to_string()
    } else {
        format!(
            "run with `--state {other}` (or FARGATE_STACK_STATE={other}, or `state = \"{other}\"` in the config), \
             or `fargate-stack --state {other} state pull` to bring it here"
        )
    };
    CommandError::StateElsewhere(format!(
        "stack {stack} in {}: its VPC {vpc} says its state lives at {other} ({STATE_TAG}), not at {here}: {instead}. \
         Nothing was changed: a second state would record the same stack. If that state is lost for good, remove \
         the tag (aws ec2 delete-tags --resources {vpc} --tags Key={STATE_TAG}) and run again",
        setup.region
    ))
}

/// Refuse when the stack's state lives elsewhere; the VPC, if the stack has one.
pub async fn check(setup: &Setup) -> Result<Option<Home>, CommandError> {
    let home = find(setup).await?;
    if let Some(other) = home.as_ref().and_then(|h| h.elsewhere(setup)) {
        return Err(refusal(setup, home.as_ref().expect("found"), other));
    }
    Ok(home)
}
