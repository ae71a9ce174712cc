//! One `SdkConfig` and the service clients built from it. Only this module builds clients.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::{RetryConfig, RetryMode};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Where to find AWS: from the global CLI flags.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: what a region name looks like.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// The Price List API has endpoints in us-east-1, eu-central-1 and ap-south-1 only: its client is
/// built for the first, whatever the stack's region.
pub const PRICING_REGION: &str = "us-east-1";

/// Attempts per call: throttling, 5xx and connection errors are retried by the SDK.
pub const MAX_ATTEMPTS: u32 = 10;

#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// CloudWatch alarms (Smithy RPC v2 CBOR on the wire).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub wafv2: aws_sdk_wafv2::Client,
    pub kms: aws_sdk_kms::Client,
    /// The Price List API (`--prices live`), in the region it has an endpoint in whatever the
    /// stack's region (an endpoint override still applies).
    pub pricing: aws_sdk_pricing::Client,
}

macro_rules! client {
    ($krate:ident, $config:expr) => {
        $krate::Client::from_conf($krate::config::Builder::from($config).interceptor(RetryNotice).build())
    };
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Clients {
        Clients {
            ec2: client!(aws_sdk_ec2, config),
            ecs: client!(aws_sdk_ecs, config),
            elb: client!(aws_sdk_elasticloadbalancingv2, config),
            dynamodb: client!(aws_sdk_dynamodb, config),
            iam: client!(aws_sdk_iam, config),
            logs: client!(aws_sdk_cloudwatchlogs, config),
            cloudwatch: client!(aws_sdk_cloudwatch, config),
            autoscaling: client!(aws_sdk_applicationautoscaling, config),
            acm: client!(aws_sdk_acm, config),
            route53: client!(aws_sdk_route53, config),
            // An endpoint override is an IP or a host without bucket subdomains: path-style.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(config.endpoint_url().is_some())
                    .interceptor(RetryNotice)
                    .build(),
            ),
            sts: client!(aws_sdk_sts, config),
            ssm: client!(aws_sdk_ssm, config),
            secretsmanager: client!(aws_sdk_secretsmanager, config),
            wafv2: client!(aws_sdk_wafv2, config),
            kms: client!(aws_sdk_kms, config),
            pricing: aws_sdk_pricing::Client::from_conf(
                aws_sdk_pricing::config::Builder::from(config)
                    .region(Region::new(PRICING_REGION))
                    .interceptor(RetryNotice)
                    .build(),
            ),
        }
    }
}

/// Build the shared SDK config. The region comes from, in order: `--region`, the config file's
/// `region`, the environment/profile chain. Throttling, 5xx and connection errors are retried by
/// the SDK's standard strategy, with more attempts than its default since a run makes bursts of calls.
pub async fn sdk_config(target: &AwsTarget, config_region: Option<&str>) -> SdkConfig {
    let explicit = target.region.clone().or_else(|| config_region.map(str::to_string)).map(Region::new);
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    // `--profile` names the profile whose `region` applies (after the environment's, as the AWS
    // CLI does); the default chain would read the default profile's.
    let region = match (explicit, &target.profile) {
        (Some(region), _) => RegionProviderChain::first_try(region),
        (None, Some(profile)) => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::builder().profile_name(profile).build()),
        (None, None) => RegionProviderChain::default_provider(),
    };
    loader = loader
        .region(region)
        .retry_config(
            RetryConfig::standard()
                .with_retry_mode(RetryMode::Standard)
                .with_max_attempts(MAX_ATTEMPTS)
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

/// Does the named profile exist in the shared config or credentials files?
pub async fn profile_exists(name: &str) -> bool {
    use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    match aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &ProfileFiles::default(),
        Some(Cow::Owned(name.to_string())),
    )
    .await
    {
        Ok(profiles) => profiles.get_profile(name).is_some(),
        Err(_) => false,
    }
}

/// Fail fast when an explicit endpoint refuses connections, instead of after the SDK's retries.
pub fn check_endpoint(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let address = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let resolved: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .map_err(|e| format!("cannot resolve the AWS endpoint {url}: {e}"))?
        .collect();
    let mut last = None;
    for addr in resolved {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "cannot connect to the AWS endpoint {url}: {} (check --endpoint-url, or that the emulator is running)",
        last.map_or("no address".to_string(), |e| e.to_string())
    ))
}

/// Where retry notices go (the command's progress); stderr until a command sets it.
type Notify = Arc<dyn Fn(String) + Send + Sync>;
static NOTIFY: RwLock<Option<Notify>> = RwLock::new(None);

pub fn on_retry(notify: impl Fn(String) + Send + Sync + 'static) {
    *NOTIFY.write().expect("notify lock") = Some(Arc::new(notify));
}

fn notify(message: String) {
    let f = NOTIFY.read().expect("notify lock").clone();
    match f {
        Some(f) => f(message),
        None => eprintln!("note: {message}"),
    }
}

/// The connection error of the last attempt, kept in the request's config bag.
#[derive(Debug, Clone)]
struct Unreachable(String);

impl Storable for Unreachable {
    type Storer = StoreReplace<Self>;
}

/// Says so when a call is retried because AWS could not be reached (throttling and 5xx retries
/// are routine and stay quiet), so a dead network is not 30 silent seconds.
#[derive(Debug)]
struct RetryNotice;

impl Intercept for RetryNotice {
    fn name(&self) -> &'static str {
        "RetryNotice"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(err)) = context.output_or_error() {
            if err.is_connector_error() || err.is_timeout_error() {
                let why = match err.as_connector_error() {
                    Some(e) if e.is_timeout() => "timed out".to_string(),
                    Some(e) => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
                    None => "timed out".to_string(),
                };
                cfg.interceptor_state().store_put(Unreachable(why));
            }
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            if let Some(Unreachable(why)) = cfg.load::<Unreachable>() {
                notify(format!("cannot reach AWS ({why}); retrying, attempt {attempt} of {MAX_ATTEMPTS}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_reported_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(check_endpoint(&format!("http://127.0.0.1:{port}")).is_ok());
        drop(listener);
        let started = std::time::Instant::now();
        let err = check_endpoint(&format!("http://127.0.0.1:{port}/")).unwrap_err();
        assert!(err.contains("cannot connect to the AWS endpoint") && err.contains("refused"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
