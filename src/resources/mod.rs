//! One module per AWS concern, each declaring its resources as [`Managed`] types. [`stack`] is the
//! one list of what the stack is made of: adding a resource means a type in its module and a line
//! here. Modules never call each other; `graph.rs` decides the order from what each declares.

pub mod acm;
pub mod autoscaling;
pub mod certificate;
pub mod cluster;
pub mod dns;
pub mod ec2;
pub mod iam;
pub mod image;
pub mod load_balancer;
pub mod logs;
pub mod network;
pub mod security;
pub mod service;
pub mod table;
pub mod task_definition;

use std::sync::Arc;

use crate::config::{AutoscalingConfig, Config};
use crate::graph::{Graph, GraphError};
use crate::model::{Driven, Key, Managed, Resource, Waiting, MAX_INDEXED};
use crate::state::State;

fn node<M: Managed>(m: M) -> Arc<dyn Resource> {
    Arc::new(Driven(m))
}

/// Which HTTPS resources a config's graph holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HttpsNodes {
    /// The HTTPS listener.
    listener: bool,
    /// The certificate requested for `https.domain`, its validation record, the wait for its
    /// issue and the alias record.
    requested: bool,
    /// The HTTP listener redirects to HTTPS.
    redirect: bool,
}

impl HttpsNodes {
    fn of(config: &Config) -> HttpsNodes {
        let https = config.https.as_ref();
        let leftover = &config.leftover_https;
        HttpsNodes {
            listener: https.is_some() || leftover.listener,
            requested: https.is_some_and(|h| h.domain.is_some()) || leftover.requested,
            redirect: https.is_some_and(|h| h.redirect_http),
        }
    }
}

/// Every resource of the stack the config describes, in the order `status` lists them. With
/// `waits`, also the waits `up` ends with (load balancer active, service healthy). The wait for
/// the certificate is there whenever a certificate is requested: the HTTPS listener needs it.
pub fn stack(config: &Config, waits: bool) -> Result<Graph, GraphError> {
    let azs = config.network.az_count;
    let nats = config.network.nat_gateways;
    let https = HttpsNodes::of(config);
    let scaling = config.autoscaling.as_ref();
    let mut nodes: Vec<Arc<dyn Resource>> =
        vec![node(network::Vpc { azs, nats }), node(security::DefaultGroup), node(network::InternetGateway { nats })];
    for i in 0..azs {
        nodes.push(node(network::Subnet { public: true, index: i, nats }));
    }
    for i in 0..azs {
        nodes.push(node(network::Subnet { public: false, index: i, nats }));
    }
    nodes.push(node(network::RouteTable::public(azs)));
    for i in 0..nats {
        nodes.push(node(network::ElasticIp { index: i }));
        nodes.push(node(network::NatGateway { index: i }));
    }
    for j in 0..nats {
        nodes.push(node(network::RouteTable::private(j, azs, nats)));
    }
    nodes.extend([
        node(security::AlbGroup),
        node(security::TaskGroup),
        node(table::Table),
        node(logs::LogGroup),
        node(iam::Role::Execution),
        node(iam::Role::Task),
        node(cluster::Cluster),
        node(task_definition::TaskDefinition),
        node(load_balancer::TargetGroup { https: https.listener }),
        node(load_balancer::LoadBalancer { azs, alias: https.requested }),
        node(load_balancer::Listener { redirect: https.redirect }),
        node(service::Service { azs, nats, autoscaled: scaling.is_some() }),
    ]);
    if https.requested {
        nodes.push(node(certificate::Certificate));
        nodes.push(node(dns::ValidationRecord));
        nodes.push(Arc::new(Waiting(certificate::IssuedWait)));
    }
    if https.listener {
        nodes.push(node(load_balancer::ListenerHttps { requested: https.requested }));
    }
    if https.requested {
        nodes.push(node(dns::AliasRecord));
    }
    if let Some(scaling) = scaling {
        let mut policies = vec![autoscaling::Policy::Cpu];
        if scaling.requests_per_target.is_some() {
            policies.push(autoscaling::Policy::Requests);
        }
        let keys = policies.iter().map(Managed::key).collect();
        nodes.push(node(autoscaling::ScalableTarget { policies: keys }));
        nodes.extend(policies.into_iter().map(node));
    }
    if waits {
        nodes.push(Arc::new(Waiting(load_balancer::ActiveWait)));
        nodes.push(Arc::new(Waiting(service::HealthyWait)));
    }
    Graph::new(nodes)
}

/// A config whose graph covers every resource the state records: the config may have fewer AZs or
/// NAT gateways than when `up` ran, and `down` must still delete them all.
pub fn covering(config: &Config, state: &State) -> Config {
    let highest = |matches: fn(Key) -> bool| {
        state
            .resources
            .keys()
            .filter_map(|k| k.parse::<Key>().ok())
            .filter(|k| matches(*k))
            .filter_map(|k| k.index())
            .map(|i| i as u8 + 1)
            .max()
            .unwrap_or(0)
    };
    let mut covering = config.clone();
    let network = &mut covering.network;
    network.az_count = network.az_count.max(highest(|k| matches!(k, Key::PublicSubnet(_) | Key::PrivateSubnet(_))));
    network.nat_gateways = network
        .nat_gateways
        .max(highest(|k| matches!(k, Key::NatGateway(_) | Key::ElasticIp(_) | Key::PrivateRouteTable(_))));
    network.az_count = network.az_count.max(network.nat_gateways);
    // HTTPS resources recorded by a run whose config had [https], or another mode of it.
    let recorded = |key: Key| state.get(&key.to_string()).is_some();
    covering.leftover_https.listener |= recorded(Key::ListenerHttps);
    covering.leftover_https.requested |=
        [Key::Certificate, Key::ValidationRecord, Key::AliasRecord].into_iter().any(recorded);
    if [Key::ScalableTarget, Key::CpuScalingPolicy, Key::RequestsScalingPolicy].into_iter().any(recorded) {
        with_autoscaling(&mut covering, recorded(Key::RequestsScalingPolicy));
    }
    covering
}

/// Give `config` the autoscaling resources (and the requests policy if `requests`), keeping what
/// it configures. Only for graphs: a covering or discovering config gives the graph its shape, the
/// resources compare against the user's config.
pub fn with_autoscaling(config: &mut Config, requests: bool) {
    let scaling = config.autoscaling.get_or_insert(AutoscalingConfig {
        min_count: 1,
        max_count: 1,
        cpu_target_percent: 60,
        requests_per_target: None,
        scale_in_cooldown_seconds: 0,
        scale_out_cooldown_seconds: 0,
    });
    if requests && scaling.requests_per_target.is_none() {
        scaling.requests_per_target = Some(1);
    }
}

/// A config whose graph reaches every resource a stack can have, to find them by tag and name
/// when there is no state file.
pub fn discovering(config: &Config) -> Config {
    let mut all = config.clone();
    all.network.az_count = MAX_INDEXED;
    all.network.nat_gateways = MAX_INDEXED;
    // A listener on 443 is found on the load balancer; a certificate and its records only for the
    // domain the config names (listing every certificate of the account would be costly).
    all.leftover_https.listener = true;
    with_autoscaling(&mut all, true);
    all
}

/// Tag types of the SDKs, built from a key and a value.
pub trait SdkTag {
    fn tag(key: String, value: String) -> Self;
}

impl SdkTag for aws_sdk_ec2::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_ecs::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_elasticloadbalancingv2::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_dynamodb::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key and value are set")
    }
}

impl SdkTag for aws_sdk_acm::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key is set")
    }
}

impl SdkTag for aws_sdk_iam::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key and value are set")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;
    use crate::state::Recorded;

    fn config(edit: &[(&str, &str)]) -> Config {
        let mut text = DEFAULT_TOML.to_string();
        for (from, to) in edit {
            text = text.replace(from, to);
        }
        Config::parse("t", &text).unwrap()
    }

    fn needs(graph: &Graph, key: Key) -> Vec<Key> {
        graph.get(key).unwrap().needs()
    }

    fn after(graph: &Graph, key: Key) -> Vec<Key> {
        graph.get(key).unwrap().teardown_after().iter().map(|e| e.key).collect()
    }

    #[test]
    fn the_graph_builds_for_every_network_shape() {
        for azs in 2..=6u8 {
            for nats in 1..=azs {
                let c = config(&[
                    ("az_count = 2", &format!("az_count = {azs}")),
                    ("nat_gateways = 1", &format!("nat_gateways = {nats}")),
                    ("10.0.0.0/16", "10.0.0.0/16"),
                ]);
                let graph = stack(&c, true).unwrap_or_else(|e| panic!("{azs} AZs, {nats} NATs: {e}"));
                assert_eq!(graph.nodes().len(), 18 + 2 * azs as usize + 3 * nats as usize, "{azs}/{nats}");
            }
        }
        let all = stack(&discovering(&config(&[])), false).unwrap();
        assert!(all.get(Key::NatGateway(5)).is_some());
    }

    #[test]
    fn up_orders_what_aws_requires() {
        let graph = stack(&config(&[]), true).unwrap();
        assert_eq!(graph.nodes().len(), 25);
        assert!(
            needs(&graph, Key::NatGateway(0)).contains(&Key::InternetGateway),
            "a NAT fails without an attached IGW"
        );
        assert!(
            needs(&graph, Key::Service).contains(&Key::Listener),
            "the service needs a listener on its target group"
        );
        assert!(needs(&graph, Key::Service).contains(&Key::PrivateRouteTable(0)), "tasks pull through the NAT route");
        assert_eq!(needs(&graph, Key::ServiceHealthy), [Key::Service, Key::LoadBalancerActive]);
        for independent in [Key::Table, Key::LogGroup, Key::Cluster, Key::ElasticIp(0)] {
            assert!(needs(&graph, independent).is_empty(), "{independent}");
        }
    }

    #[test]
    fn down_waits_only_for_hard_constraints() {
        let graph = stack(&config(&[]), false).unwrap();
        // The slow deletes start at once, in parallel with the service's drain.
        for first in [Key::Service, Key::LoadBalancer, Key::NatGateway(0), Key::Listener, Key::TaskDefinition] {
            assert!(after(&graph, first).is_empty(), "{first} waits for {:?}", after(&graph, first));
        }
        assert_eq!(after(&graph, Key::ElasticIp(0)), [Key::NatGateway(0)], "an EIP is released once its NAT is gone");
        let igw = after(&graph, Key::InternetGateway);
        assert!(igw.contains(&Key::NatGateway(0)) && igw.contains(&Key::LoadBalancer), "{igw:?}");
        assert!(after(&graph, Key::PrivateSubnet(0)).contains(&Key::Service), "task ENIs");
        let public = after(&graph, Key::PublicSubnet(0));
        assert!(public.contains(&Key::LoadBalancer) && public.contains(&Key::NatGateway(0)), "{public:?}");
        assert!(!after(&graph, Key::PublicSubnet(1)).contains(&Key::NatGateway(0)), "no NAT in the second AZ");
        let alb = after(&graph, Key::AlbSecurityGroup);
        assert!(alb.contains(&Key::LoadBalancer) && alb.contains(&Key::TaskSecurityGroup), "{alb:?}");
        assert!(after(&graph, Key::TaskSecurityGroup).contains(&Key::Service));
        assert!(after(&graph, Key::Cluster).contains(&Key::Service), "ClusterContainsServicesException");
        assert!(after(&graph, Key::TargetGroup).contains(&Key::Listener), "ResourceInUse while a listener forwards");
        let vpc = after(&graph, Key::Vpc);
        for inside in [Key::PublicSubnet(1), Key::PrivateSubnet(1), Key::InternetGateway, Key::AlbSecurityGroup] {
            assert!(vpc.contains(&inside), "{inside}");
        }
        // Every edge says why.
        for node in graph.nodes() {
            for edge in node.teardown_after() {
                assert!(edge.why.len() > 10, "{} after {}: {:?}", node.key(), edge.key, edge.why);
            }
        }
    }

    fn https(section: &str) -> Config {
        Config::parse("t", &format!("{DEFAULT_TOML}\n[https]\n{section}\n")).unwrap()
    }

    const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
    const HTTPS_KEYS: [Key; 5] =
        [Key::Certificate, Key::ValidationRecord, Key::CertificateIssued, Key::ListenerHttps, Key::AliasRecord];

    #[test]
    fn https_on_a_domain_orders_certificate_validation_listener_and_alias() {
        // Without waits too: the HTTPS listener cannot be created before the certificate is issued.
        for waits in [true, false] {
            let graph = stack(&https("domain = \"api.example.com\""), waits).unwrap();
            for key in HTTPS_KEYS {
                assert!(graph.get(key).is_some(), "{key}");
            }
            assert!(needs(&graph, Key::Certificate).is_empty(), "requested at once, beside the network");
            assert_eq!(needs(&graph, Key::ValidationRecord), [Key::Certificate]);
            assert_eq!(needs(&graph, Key::CertificateIssued), [Key::ValidationRecord]);
            let listener = needs(&graph, Key::ListenerHttps);
            for need in [Key::LoadBalancer, Key::TargetGroup, Key::CertificateIssued] {
                assert!(listener.contains(&need), "{need}");
            }
            assert!(needs(&graph, Key::AliasRecord).contains(&Key::ListenerHttps));
            // The HTTP listener redirects only once HTTPS answers; the service follows it.
            assert!(needs(&graph, Key::Listener).contains(&Key::ListenerHttps));
        }
        let graph = stack(&https("domain = \"api.example.com\""), false).unwrap();
        assert!(after(&graph, Key::AliasRecord).is_empty(), "the alias goes first");
        assert_eq!(after(&graph, Key::Certificate), [Key::ListenerHttps], "ResourceInUseException");
        assert_eq!(after(&graph, Key::ValidationRecord), [Key::Certificate]);
        assert!(after(&graph, Key::LoadBalancer).contains(&Key::AliasRecord));
        assert!(after(&graph, Key::TargetGroup).contains(&Key::ListenerHttps));
    }

    #[test]
    fn https_with_a_given_certificate_has_no_certificate_or_dns_nodes() {
        let graph = stack(&https(&format!("certificate_arn = \"{ARN}\"\nredirect_http = false")), true).unwrap();
        assert!(graph.get(Key::ListenerHttps).is_some());
        for key in [Key::Certificate, Key::ValidationRecord, Key::CertificateIssued, Key::AliasRecord] {
            assert!(graph.get(key).is_none(), "{key}");
        }
        assert!(!needs(&graph, Key::ListenerHttps).contains(&Key::CertificateIssued));
        assert!(!needs(&graph, Key::Listener).contains(&Key::ListenerHttps), "no redirect: HTTP forwards at once");
        assert!(after(&graph, Key::LoadBalancer).is_empty());
        let plain = stack(&config(&[]), true).unwrap();
        for key in HTTPS_KEYS {
            assert!(plain.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn covering_brings_back_recorded_https_resources_the_config_dropped() {
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for key in ["certificate", "dns-validation-record", "listener-https", "dns-alias-record"] {
            state
                .resources
                .insert(key.into(), Recorded { kind: "x".into(), id: "i".into(), attrs: Default::default() });
        }
        for config in [config(&[]), https(&format!("certificate_arn = \"{ARN}\""))] {
            let graph = stack(&covering(&config, &state), false).unwrap();
            for key in [Key::Certificate, Key::ValidationRecord, Key::ListenerHttps, Key::AliasRecord] {
                assert!(graph.get(key).is_some(), "{key}");
            }
        }
        // What the config asks of the listeners is unchanged by what is only being deleted.
        assert!(!needs(&stack(&covering(&config(&[]), &state), false).unwrap(), Key::Listener)
            .contains(&Key::ListenerHttps));
        let found = stack(&discovering(&config(&[])), false).unwrap();
        assert!(found.get(Key::ListenerHttps).is_some() && found.get(Key::Certificate).is_none());
    }

    fn scaled(requests: bool) -> Config {
        let requests = if requests { "requests_per_target = 500\n" } else { "" };
        let text = format!("{DEFAULT_TOML}\n[autoscaling]\nmin_count = 2\nmax_count = 6\n{requests}");
        Config::parse("t", &text).unwrap()
    }

    #[test]
    fn autoscaling_follows_the_service_up_and_goes_before_it_down() {
        assert!(stack(&config(&[]), false).unwrap().get(Key::ScalableTarget).is_none(), "off unless configured");
        assert!(after(&stack(&config(&[]), false).unwrap(), Key::Service).is_empty());
        let graph = stack(&scaled(true), true).unwrap();
        assert_eq!(graph.nodes().len(), 25 + 3);
        assert_eq!(needs(&graph, Key::ScalableTarget), [Key::Service]);
        assert_eq!(needs(&graph, Key::CpuScalingPolicy), [Key::ScalableTarget]);
        let requests = needs(&graph, Key::RequestsScalingPolicy);
        for key in [Key::ScalableTarget, Key::LoadBalancer, Key::TargetGroup, Key::Listener] {
            assert!(requests.contains(&key), "{key}: its ResourceLabel names the load balancer's target group");
        }
        assert_eq!(after(&graph, Key::Service), [Key::ScalableTarget], "deregistered before the service goes");
        assert_eq!(after(&graph, Key::ScalableTarget), [Key::CpuScalingPolicy, Key::RequestsScalingPolicy]);
        let cpu_only = stack(&scaled(false), false).unwrap();
        assert!(cpu_only.get(Key::RequestsScalingPolicy).is_none());
        assert_eq!(after(&cpu_only, Key::ScalableTarget), [Key::CpuScalingPolicy]);
    }

    #[test]
    fn a_removed_autoscaling_section_is_still_covered_while_the_state_records_it() {
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        let unscaled = config(&[]);
        assert!(covering(&unscaled, &state).autoscaling.is_none());
        for key in ["scalable-target", "scaling-policy-cpu"] {
            state
                .resources
                .insert(key.into(), Recorded { kind: "x".into(), id: "i".into(), attrs: Default::default() });
        }
        let graph = stack(&covering(&unscaled, &state), false).unwrap();
        assert!(graph.get(Key::ScalableTarget).is_some() && graph.get(Key::CpuScalingPolicy).is_some());
        assert!(graph.get(Key::RequestsScalingPolicy).is_none());
        state.resources.insert(
            "scaling-policy-requests".into(),
            Recorded { kind: "x".into(), id: "i".into(), attrs: Default::default() },
        );
        // requests_per_target removed, the rest kept: the config's own values stay.
        let covered = covering(&scaled(false), &state);
        assert_eq!(covered.autoscaling.as_ref().map(|a| (a.min_count, a.max_count)), Some((2, 6)));
        assert!(stack(&covered, false).unwrap().get(Key::RequestsScalingPolicy).is_some());
        let all = stack(&discovering(&unscaled), false).unwrap();
        assert!(all.get(Key::RequestsScalingPolicy).is_some(), "down --name finds them too");
    }

    #[test]
    fn down_covers_what_the_state_records_even_if_the_config_shrank() {
        let c = config(&[]);
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for key in ["subnet-public-3", "subnet-private-3", "nat-gateway-2", "elastic-ip-2", "route-table-private-2"] {
            state
                .resources
                .insert(key.into(), Recorded { kind: "x".into(), id: "i".into(), attrs: Default::default() });
        }
        let graph = stack(&covering(&c, &state), false).unwrap();
        for key in ["subnet-public-3", "subnet-private-3", "nat-gateway-2", "elastic-ip-2", "route-table-private-2"] {
            assert!(graph.get(key.parse().unwrap()).is_some(), "{key}");
        }
    }
}
