//! One module per AWS concern, each declaring its resources as [`Managed`] types. [`stack`] is the
//! one list of what the stack is made of: adding a resource means a type in its module and a line
//! here. Modules never call each other; `graph.rs` decides the order from what each declares.

pub mod cluster;
pub mod ec2;
pub mod iam;
pub mod load_balancer;
pub mod logs;
pub mod network;
pub mod security;
pub mod table;

use std::sync::Arc;

use crate::config::Config;
use crate::graph::{Graph, GraphError};
use crate::model::{Driven, Key, Managed, Resource, Waiting, MAX_INDEXED};
use crate::state::State;

fn node<M: Managed>(m: M) -> Arc<dyn Resource> {
    Arc::new(Driven(m))
}

/// Every resource of the stack the config describes, in the order `status` lists them. With
/// `waits`, also the waits `up` ends with (load balancer active, service healthy).
pub fn stack(config: &Config, waits: bool) -> Result<Graph, GraphError> {
    let azs = config.network.az_count;
    let nats = config.network.nat_gateways;
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
        node(cluster::TaskDefinition),
        node(load_balancer::TargetGroup),
        node(load_balancer::LoadBalancer { azs }),
        node(load_balancer::Listener),
        node(cluster::Service { azs, nats }),
    ]);
    if waits {
        nodes.push(Arc::new(Waiting(load_balancer::ActiveWait)));
        nodes.push(Arc::new(Waiting(cluster::HealthyWait)));
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
    covering
}

/// A config whose graph reaches every resource a stack can have, to find them by tag and name
/// when there is no state file.
pub fn discovering(config: &Config) -> Config {
    let mut all = config.clone();
    all.network.az_count = MAX_INDEXED;
    all.network.nat_gateways = MAX_INDEXED;
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
