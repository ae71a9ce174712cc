//! One `SdkConfig` and the six service clients built from it. Only this module builds clients.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::{RetryConfig, RetryMode};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where to find AWS: from the global CLI flags.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
        }
    }
}

/// Build the shared SDK config. The region comes from, in order: `--region`, the config file's
/// `region`, the environment/profile chain. Throttling and 5xx are retried by the SDK's standard
/// retry strategy with more attempts than its default, since a stack run makes bursts of calls.
pub async fn sdk_config(target: &AwsTarget, config_region: Option<&str>) -> SdkConfig {
    let explicit = target.region.clone().or_else(|| config_region.map(str::to_string)).map(Region::new);
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    let region = match explicit {
        Some(region) => RegionProviderChain::first_try(region),
        None => RegionProviderChain::default_provider(),
    };
    loader = loader
        .region(region)
        .retry_config(
            RetryConfig::standard()
                .with_retry_mode(RetryMode::Standard)
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
