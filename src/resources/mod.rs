//! One module per AWS concern, each declaring its resources as [`Managed`] types with their keys.
//! [`stack`] is the one list of what the stack is made of: each line declares the nodes of a
//! family (or of a part of one, so that `status` lists them as it always has) for a [`Shape`].
//! Modules never call each other's verbs; `graph.rs` decides the order from what each declares.
//! A module names only what it uses or sits in (the used never names its users), so the modules
//! import each other one way.

pub mod access_logs;
pub mod acm;
pub mod alarms;
pub mod autoscaling;
pub mod certificate;
pub mod cluster;
pub mod dns;
pub mod ec2;
pub mod flow_logs;
pub mod gateway_endpoints;
pub mod iam;
pub mod kms;
pub mod listener_https;
pub mod load_balancer;
pub mod logs;
pub mod network;
pub mod outputs;
pub mod schedule;
pub mod secrets;
pub mod security;
pub mod service;
pub mod serving;
pub mod table;
pub mod tags;
pub mod task_definition;
pub mod traffic;
pub mod waf;

#[cfg(test)]
mod declarations;

/// How each kind any stack can have is listed: once per kind and declaring type (the flow logs'
/// group and role are listed by their own module, beside the containers' log group and roles).
fn sweeps() -> Vec<(Kind, SweepFn)> {
    let config = Config::parse(BUILT_IN, DEFAULT_TOML).expect("the built-in config is valid");
    let graph = stack(&Shape::everything(&config)).expect("the graph of everything is valid");
    let mut sweeps: Vec<(Kind, &str, SweepFn)> = vec![];
    for node in graph.resources() {
        let (kind, by) = (node.key().kind(), node.declared_by());
        if let (Some(Sweep::Listed(sweep)), false) =
            (node.sweep(), sweeps.iter().any(|(k, b, _)| (*k, *b) == (kind, by)))
        {
            sweeps.push((kind, by, sweep));
        }
    }
    sweeps.into_iter().map(|(kind, _, sweep)| (kind, sweep)).collect()
}

/// What AWS has of `kinds` (all kinds when empty), for every stack, listed concurrently.
pub async fn sightings(clients: &Clients, kinds: &[Kind]) -> Result<Vec<Sighting>, StackError> {
    let wanted = sweeps().into_iter().filter(|(k, _)| kinds.is_empty() || kinds.contains(k));
    let lists = futures::future::try_join_all(wanted.map(|(_, sweep)| sweep(clients))).await?;
    // Two types may share a sweep (the load balancer's and the tasks' security groups): each once.
    let mut seen = std::collections::HashSet::new();
    Ok(lists.into_iter().flatten().filter(|s| seen.insert((s.kind, s.id.clone()))).collect())
}

/// The resources of this config's stack that [`sightings`] lists: after `up`, each is there
/// once; after `down`, none is.
pub fn listed(config: &Config) -> Result<Vec<Key>, GraphError> {
    let graph = stack(&Shape::of(config))?;
    Ok(graph.resources().filter(|n| matches!(n.sweep(), Some(Sweep::Listed(_)))).map(|n| n.key()).collect())
}

use crate::aws::Clients;
use crate::config::{Config, BUILT_IN, DEFAULT_TOML};
use crate::error::StackError;
use crate::graph::{Graph, GraphError};
use crate::model::{Key, Kind, Nodes, Shape, Sighting, Sweep, SweepFn};

/// Declares some of the stack's nodes for a shape.
type Declare = fn(&Shape, &mut Nodes);

/// The stack, in the order `status` lists it. A new resource family adds its line (at the end, or
/// where its rows belong).
const STACK: &[Declare] = &[
    network::vpc,
    security::vpc_default_group,
    network::network,
    gateway_endpoints::declare,
    security::groups,
    table::declare,
    logs::declare,
    iam::declare,
    flow_logs::declare,
    cluster::declare,
    task_definition::declare,
    access_logs::declare,
    load_balancer::declare,
    waf::declare,
    alarms::declare,
    traffic::declare,
    service::declare,
    certificate::declare,
    dns::validation,
    certificate::issued,
    listener_https::declare,
    dns::alias,
    autoscaling::declare,
    schedule::declare,
    load_balancer::active,
    service::healthy,
];

/// Every resource of the stack the shape holds, in the order `status` lists them. With waits
/// (`Shape::with_waits`), also the waits `up` ends with (load balancer active, service healthy).
pub fn stack(shape: &Shape) -> Result<Graph, GraphError> {
    let mut nodes = Nodes::default();
    for declare in STACK {
        declare(shape, &mut nodes);
    }
    Graph::build(nodes)
}

#[cfg(test)]
mod tests {
    use super::autoscaling::{CPU_POLICY, REQUESTS_POLICY, SCALABLE_TARGET};
    use super::certificate::{CERTIFICATE, CERTIFICATE_ISSUED};
    use super::cluster::CLUSTER;
    use super::dns::{ALIAS_RECORD, VALIDATION_RECORD};
    use super::iam::{EXECUTION_ROLE, TASK_ROLE};
    use super::listener_https::LISTENER_HTTPS;
    use super::load_balancer::{LISTENER, LOAD_BALANCER, LOAD_BALANCER_ACTIVE, TARGET_GROUP};
    use super::logs::LOG_GROUP;
    use super::network::*;
    use super::security::{ALB_SECURITY_GROUP, TASK_SECURITY_GROUP};
    use super::service::{SERVICE, SERVICE_HEALTHY};
    use super::table::TABLE;
    use super::task_definition::TASK_DEFINITION;
    use super::*;
    use crate::config::{Config, DEFAULT_TOML};
    use crate::model::{Key, Removal};
    use crate::state::{Recorded, State};

    fn config(edit: &[(&str, &str)]) -> Config {
        let mut text = DEFAULT_TOML.to_string();
        for (from, to) in edit {
            assert!(text.contains(from), "the default config has no {from:?}");
            text = text.replace(from, to);
        }
        Config::parse("t", &text).unwrap()
    }

    fn with_waits(c: &Config) -> Graph {
        stack(&Shape::of(c).with_waits(true)).unwrap()
    }

    fn plain(c: &Config) -> Graph {
        stack(&Shape::of(c)).unwrap()
    }

    fn covering(c: &Config, state: &State) -> Graph {
        stack(&Shape::covering(c, state)).unwrap()
    }

    fn recording(keys: &[Key]) -> State {
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for key in keys {
            let entry = Recorded { kind: key.kind().label().into(), id: "i".into(), attrs: Default::default() };
            state.resources.insert(key.to_string(), entry);
        }
        state
    }

    #[test]
    fn the_graph_builds_for_every_network_shape() {
        for azs in 2..=6u8 {
            for (mode, nats) in [("single", 1), ("per_az", azs)] {
                let c = config(&[
                    ("az_count = 2", &format!("az_count = {azs}")),
                    ("nat = \"single\"", &format!("nat = \"{mode}\"")),
                ]);
                let graph = stack(&Shape::of(&c).with_waits(true)).unwrap_or_else(|e| panic!("{azs}/{mode}: {e}"));
                // Two subnets per AZ, an address, a NAT gateway and a route table per NAT gateway.
                let beyond = 2 * (azs as usize - 2) + 3 * (nats as usize - 1);
                assert_eq!(graph.nodes().len(), with_waits(&config(&[])).nodes().len() + beyond, "{azs}/{mode}");
                let private: Vec<Key> = (0..azs).map(|i| PRIVATE_SUBNET.at(i)).collect();
                assert!(private.iter().all(|k| graph.needs_of(SERVICE).contains(k)), "every private subnet");
            }
        }
        let all = stack(&Shape::discovering(&config(&[]))).unwrap();
        assert!(all.get(NAT_GATEWAY.at(5)).is_some());
    }

    #[test]
    fn without_nat_the_tasks_need_the_public_subnets_and_nothing_private_is_declared() {
        let none = config(&[("nat = \"single\"", "nat = \"none\"")]);
        let graph = with_waits(&none);
        // No NAT gateway, Elastic IP, private route table or private subnet (3 + 2 nodes fewer), and
        // no gateway endpoints, which live on the private route tables (2 more).
        assert_eq!(graph.nodes().len() + 7, with_waits(&config(&[])).nodes().len());
        for absent in [NAT_GATEWAY.at(0), ELASTIC_IP.at(0), PRIVATE_ROUTE_TABLE.at(0), PRIVATE_SUBNET.at(0)] {
            assert!(graph.get(absent).is_none(), "{absent}");
        }
        for absent in
            [crate::resources::gateway_endpoints::S3_ENDPOINT, crate::resources::gateway_endpoints::DYNAMODB_ENDPOINT]
        {
            assert!(graph.get(absent).is_none(), "{absent}");
        }
        let needs = graph.needs_of(SERVICE);
        assert!(needs.contains(&PUBLIC_SUBNET.at(1)) && needs.contains(&PUBLIC_ROUTE_TABLE), "{needs:?}");
        // Switched from single: what the state records stays in the covering graph, for `up` to
        // delete after the service moved, and for `down`.
        let state = recording(&[NAT_GATEWAY.at(0), ELASTIC_IP.at(0), PRIVATE_ROUTE_TABLE.at(0), PRIVATE_SUBNET.at(1)]);
        let covering = covering(&none, &state);
        for kept in [NAT_GATEWAY.at(0), PRIVATE_SUBNET.at(0), PRIVATE_SUBNET.at(1), PRIVATE_ROUTE_TABLE.at(0)] {
            assert!(covering.get(kept).is_some(), "{kept}");
            assert_eq!(covering.get(kept).unwrap().removal(&none), Removal::AfterUp, "{kept}");
        }
        assert!(covering.teardown_after(PRIVATE_SUBNET.at(1)).contains(&SERVICE), "the old tasks' interfaces first");
        // The tasks' public addresses are mapped through the internet gateway until they stop.
        assert!(graph.teardown_after(INTERNET_GATEWAY).contains(&SERVICE));
        assert!(graph.teardown_after(PUBLIC_SUBNET.at(0)).contains(&SERVICE));
    }

    /// Switching to and from `regional` keeps the old NAT path in the covering graph (gone after
    /// the up pass), and the config's private table takes every private subnet with its route to
    /// the new NAT gateway; a table the config no longer has claims none.
    #[test]
    fn switching_nat_modes_routes_every_private_subnet_through_the_configs_tables() {
        let regional = config(&[("nat = \"single\"", "nat = \"regional\"")]);
        let graph = plain(&regional);
        assert!(graph.needs_of(PRIVATE_ROUTE_TABLE.at(0)).contains(&REGIONAL_NAT_GATEWAY));
        let table = graph.needs_of(PRIVATE_ROUTE_TABLE.at(0));
        assert!(table.contains(&PRIVATE_SUBNET.at(0)) && table.contains(&PRIVATE_SUBNET.at(1)), "{table:?}");
        assert!(graph.needs_of(REGIONAL_NAT_GATEWAY).contains(&INTERNET_GATEWAY), "it fails without an attached IGW");
        assert!(graph.needs_of(REGIONAL_NAT_GATEWAY).contains(&REGIONAL_ELASTIC_IP.at(1)));
        assert!(graph.teardown_after(VPC).contains(&REGIONAL_NAT_GATEWAY));
        assert!(graph.teardown_after(INTERNET_GATEWAY).contains(&REGIONAL_NAT_GATEWAY));
        assert_eq!(graph.teardown_after(REGIONAL_ELASTIC_IP.at(0)), [REGIONAL_NAT_GATEWAY]);
        // From per_az: the zonal path stays until after the up pass; table 2 keeps no subnet.
        let zonal =
            [NAT_GATEWAY.at(0), NAT_GATEWAY.at(1), ELASTIC_IP.at(0), ELASTIC_IP.at(1), PRIVATE_ROUTE_TABLE.at(1)];
        let from_per_az = covering(&regional, &recording(&zonal));
        for old in zonal {
            assert_eq!(from_per_az.get(old).unwrap().removal(&regional), Removal::AfterUp, "{old}");
        }
        assert!(from_per_az.needs_of(PRIVATE_ROUTE_TABLE.at(0)).contains(&PRIVATE_SUBNET.at(1)));
        assert!(
            !from_per_az.needs_of(PRIVATE_ROUTE_TABLE.at(1)).contains(&PRIVATE_SUBNET.at(1)),
            "it moves to table 1"
        );
        // Back to single: the regional gateway and its addresses go after the up pass.
        let held =
            [REGIONAL_NAT_GATEWAY, REGIONAL_ELASTIC_IP.at(0), REGIONAL_ELASTIC_IP.at(1), PRIVATE_ROUTE_TABLE.at(0)];
        let single = config(&[]);
        let from_regional = covering(&single, &recording(&held));
        for old in &held[..3] {
            assert_eq!(from_regional.get(*old).unwrap().removal(&single), Removal::AfterUp, "{old}");
        }
        assert!(from_regional.needs_of(PRIVATE_ROUTE_TABLE.at(0)).contains(&NAT_GATEWAY.at(0)));
        // To none from regional: the table routes to the regional gateway until both go.
        let none = config(&[("nat = \"single\"", "nat = \"none\"")]);
        assert!(covering(&none, &recording(&held)).needs_of(PRIVATE_ROUTE_TABLE.at(0)).contains(&REGIONAL_NAT_GATEWAY));
        // From per_az to single (the same path): subnet 2 moves to table 1 before table 2 goes.
        let per_az = covering(&single, &recording(&zonal));
        assert!(per_az.needs_of(PRIVATE_ROUTE_TABLE.at(0)).contains(&PRIVATE_SUBNET.at(1)));
        assert!(!per_az.needs_of(PRIVATE_ROUTE_TABLE.at(1)).contains(&PRIVATE_SUBNET.at(1)));
    }

    #[test]
    fn up_orders_what_aws_requires() {
        let graph = with_waits(&config(&[]));
        assert_eq!(graph.nodes().len(), plain(&config(&[])).nodes().len() + 2, "the two waits");
        assert!(graph.needs_of(NAT_GATEWAY.at(0)).contains(&INTERNET_GATEWAY), "a NAT fails without an attached IGW");
        assert!(graph.needs_of(SERVICE).contains(&LISTENER), "the service needs a listener on its target group");
        let alarms = [super::alarms::ERROR_RATE_ALARM, super::alarms::UNHEALTHY_HOSTS_ALARM];
        assert!(alarms.iter().all(|a| graph.needs_of(SERVICE).contains(a)), "its deployments watch the alarms");
        assert!(graph.teardown_after(SERVICE).is_empty(), "nothing waits for the alarms to go");
        assert!(graph.needs_of(SERVICE).contains(&PRIVATE_ROUTE_TABLE.at(0)), "tasks pull through the NAT route");
        assert_eq!(graph.needs_of(SERVICE_HEALTHY), [SERVICE, LOAD_BALANCER_ACTIVE]);
        for independent in [TABLE, LOG_GROUP, CLUSTER, ELASTIC_IP.at(0)] {
            assert!(graph.needs_of(independent).is_empty(), "{independent}");
        }
    }

    #[test]
    fn down_waits_only_for_hard_constraints() {
        let graph = plain(&config(&[]));
        let after = |key| graph.teardown_after(key);
        // The slow deletes start at once, in parallel with the service's drain.
        for first in [SERVICE, LOAD_BALANCER, NAT_GATEWAY.at(0), LISTENER, TASK_DEFINITION] {
            assert!(after(first).is_empty(), "{first} waits for {:?}", after(first));
        }
        assert_eq!(after(ELASTIC_IP.at(0)), [NAT_GATEWAY.at(0)], "an EIP is released once its NAT is gone");
        let igw = after(INTERNET_GATEWAY);
        assert!(igw.contains(&NAT_GATEWAY.at(0)) && igw.contains(&LOAD_BALANCER), "{igw:?}");
        assert!(after(PRIVATE_SUBNET.at(0)).contains(&SERVICE), "task ENIs");
        let public = after(PUBLIC_SUBNET.at(0));
        assert!(public.contains(&LOAD_BALANCER) && public.contains(&NAT_GATEWAY.at(0)), "{public:?}");
        assert!(!after(PUBLIC_SUBNET.at(1)).contains(&NAT_GATEWAY.at(0)), "no NAT in the second AZ");
        let alb = after(ALB_SECURITY_GROUP);
        assert!(alb.contains(&LOAD_BALANCER) && alb.contains(&TASK_SECURITY_GROUP), "{alb:?}");
        assert!(after(TASK_SECURITY_GROUP).contains(&SERVICE));
        assert!(after(CLUSTER).contains(&SERVICE), "ClusterContainsServicesException");
        assert!(after(TARGET_GROUP).contains(&LISTENER), "ResourceInUse while a listener forwards");
        for used in [EXECUTION_ROLE, TASK_ROLE, TABLE, LOG_GROUP] {
            assert_eq!(after(used), [SERVICE], "{used}: the tasks use it until they stop");
        }
        let vpc = after(VPC);
        for inside in [
            PUBLIC_SUBNET.at(1),
            PRIVATE_SUBNET.at(1),
            INTERNET_GATEWAY,
            ALB_SECURITY_GROUP,
            TASK_SECURITY_GROUP,
            TARGET_GROUP,
        ] {
            assert!(vpc.contains(&inside), "{inside}");
        }
        // Every edge says why.
        for node in graph.nodes() {
            for (key, why) in graph.teardown_edges(node.key()) {
                assert!(why.len() > 10, "{} after {key}: {why:?}", node.key());
            }
        }
    }

    fn https(section: &str) -> Config {
        Config::parse("t", &format!("{DEFAULT_TOML}\n[https]\n{section}\n")).unwrap()
    }

    const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
    const HTTPS_KEYS: [Key; 5] = [CERTIFICATE, VALIDATION_RECORD, CERTIFICATE_ISSUED, LISTENER_HTTPS, ALIAS_RECORD];

    #[test]
    fn https_on_a_domain_orders_certificate_validation_listener_and_alias() {
        // Without waits too: the HTTPS listener cannot be created before the certificate is issued.
        for waits in [true, false] {
            let graph = stack(&Shape::of(&https("domain = \"api.example.com\"")).with_waits(waits)).unwrap();
            for key in HTTPS_KEYS {
                assert!(graph.get(key).is_some(), "{key}");
            }
            assert!(graph.needs_of(CERTIFICATE).is_empty(), "requested at once, beside the network");
            assert_eq!(graph.needs_of(VALIDATION_RECORD), [CERTIFICATE]);
            assert_eq!(graph.needs_of(CERTIFICATE_ISSUED), [VALIDATION_RECORD]);
            let listener = graph.needs_of(LISTENER_HTTPS);
            for need in [LOAD_BALANCER, TARGET_GROUP, CERTIFICATE_ISSUED] {
                assert!(listener.contains(&need), "{need}");
            }
            assert!(graph.needs_of(ALIAS_RECORD).contains(&LISTENER_HTTPS));
            // The HTTP listener redirects only once HTTPS answers; the service follows it.
            assert!(graph.needs_of(LISTENER).contains(&LISTENER_HTTPS));
        }
        let graph = plain(&https("domain = \"api.example.com\""));
        assert!(graph.teardown_after(ALIAS_RECORD).is_empty(), "the alias goes first");
        assert_eq!(graph.teardown_after(CERTIFICATE), [LISTENER_HTTPS], "ResourceInUseException");
        assert_eq!(graph.teardown_after(VALIDATION_RECORD), [CERTIFICATE]);
        assert!(graph.teardown_after(LOAD_BALANCER).contains(&ALIAS_RECORD));
        assert!(graph.teardown_after(TARGET_GROUP).contains(&LISTENER_HTTPS));
    }

    #[test]
    fn https_with_a_given_certificate_has_no_certificate_or_dns_nodes() {
        let graph = with_waits(&https(&format!("certificate_arn = \"{ARN}\"\nredirect_http = false")));
        assert!(graph.get(LISTENER_HTTPS).is_some());
        for key in [CERTIFICATE, VALIDATION_RECORD, CERTIFICATE_ISSUED, ALIAS_RECORD] {
            assert!(graph.get(key).is_none(), "{key}");
        }
        assert!(!graph.needs_of(LISTENER_HTTPS).contains(&CERTIFICATE_ISSUED));
        assert!(!graph.needs_of(LISTENER).contains(&LISTENER_HTTPS), "no redirect: HTTP forwards at once");
        assert!(graph.teardown_after(LOAD_BALANCER).is_empty());
        let plain = with_waits(&config(&[]));
        for key in HTTPS_KEYS {
            assert!(plain.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn covering_brings_back_recorded_https_resources_the_config_dropped() {
        let state = recording(&[CERTIFICATE, VALIDATION_RECORD, LISTENER_HTTPS, ALIAS_RECORD]);
        for config in [config(&[]), https(&format!("certificate_arn = \"{ARN}\""))] {
            let graph = covering(&config, &state);
            for key in [CERTIFICATE, VALIDATION_RECORD, LISTENER_HTTPS, ALIAS_RECORD] {
                assert!(graph.get(key).is_some(), "{key}");
            }
        }
        // What the config asks of the listeners is unchanged by what is only being deleted.
        assert!(!covering(&config(&[]), &state).needs_of(LISTENER).contains(&LISTENER_HTTPS));
        let found = stack(&Shape::discovering(&config(&[]))).unwrap();
        assert!(found.get(LISTENER_HTTPS).is_some() && found.get(CERTIFICATE).is_none());
    }

    fn scaled(requests: bool) -> Config {
        let requests = if requests { "requests_per_target = 500\n" } else { "" };
        let text = format!("{DEFAULT_TOML}\n[autoscaling]\nmin_count = 2\nmax_count = 6\n{requests}");
        Config::parse("t", &text).unwrap()
    }

    #[test]
    fn autoscaling_follows_the_service_up_and_goes_before_it_down() {
        assert!(plain(&config(&[])).get(SCALABLE_TARGET).is_none(), "off unless configured");
        assert!(plain(&config(&[])).teardown_after(SERVICE).is_empty());
        let graph = with_waits(&scaled(true));
        assert_eq!(graph.nodes().len(), with_waits(&config(&[])).nodes().len() + 3);
        assert_eq!(graph.needs_of(SCALABLE_TARGET), [SERVICE]);
        assert_eq!(graph.needs_of(CPU_POLICY), [SCALABLE_TARGET]);
        let requests = graph.needs_of(REQUESTS_POLICY);
        for key in [SCALABLE_TARGET, LOAD_BALANCER, TARGET_GROUP, LISTENER] {
            assert!(requests.contains(&key), "{key}: its ResourceLabel names the load balancer's target group");
        }
        assert_eq!(graph.teardown_after(SERVICE), [SCALABLE_TARGET], "deregistered before the service goes");
        assert_eq!(graph.teardown_after(SCALABLE_TARGET), [CPU_POLICY, REQUESTS_POLICY]);
        let cpu_only = plain(&scaled(false));
        assert!(cpu_only.get(REQUESTS_POLICY).is_none());
        assert_eq!(cpu_only.teardown_after(SCALABLE_TARGET), [CPU_POLICY]);
    }

    #[test]
    fn a_removed_autoscaling_section_is_still_covered_while_the_state_records_it() {
        let unscaled = config(&[]);
        assert!(covering(&unscaled, &recording(&[])).get(SCALABLE_TARGET).is_none());
        let graph = covering(&unscaled, &recording(&[SCALABLE_TARGET, CPU_POLICY]));
        assert!(graph.get(SCALABLE_TARGET).is_some() && graph.get(CPU_POLICY).is_some());
        assert!(graph.get(REQUESTS_POLICY).is_none());
        // requests_per_target removed, the rest kept.
        let covered = covering(&scaled(false), &recording(&[SCALABLE_TARGET, CPU_POLICY, REQUESTS_POLICY]));
        assert!(covered.get(REQUESTS_POLICY).is_some());
        let all = stack(&Shape::discovering(&unscaled)).unwrap();
        assert!(all.get(REQUESTS_POLICY).is_some(), "down --name finds them too");
    }

    #[test]
    fn a_target_no_state_records_is_looked_for_only_beside_a_recorded_service() {
        let unscaled = config(&[]);
        let state = recording(&[SERVICE]);
        let probing = stack(&Shape::covering(&unscaled, &state).probing()).unwrap();
        assert_eq!(probing.probes(), [SCALABLE_TARGET]);
        assert!(probing.get(CPU_POLICY).is_none());
        let found = stack(&Shape::covering(&unscaled, &state).with_found([SCALABLE_TARGET])).unwrap();
        assert!(found.get(SCALABLE_TARGET).is_some() && found.get(CPU_POLICY).is_some(), "found: both go");
        assert!(stack(&Shape::covering(&unscaled, &recording(&[])).probing()).unwrap().probes().is_empty());
        assert!(stack(&Shape::covering(&scaled(false), &state).probing()).unwrap().probes().is_empty());
    }

    #[test]
    fn down_covers_what_the_state_records_even_if_the_config_shrank() {
        let keys =
            [PUBLIC_SUBNET.at(2), PRIVATE_SUBNET.at(2), NAT_GATEWAY.at(1), ELASTIC_IP.at(1), PRIVATE_ROUTE_TABLE.at(1)];
        let graph = covering(&config(&[]), &recording(&keys));
        for key in keys {
            assert!(graph.get(key).is_some(), "{key}");
        }
    }
}
