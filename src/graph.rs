//! The stack as a dependency graph of resource steps, and a bounded-concurrency executor that
//! runs it forwards (`up`) or backwards (`down`). Only this module knows the order.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::config::{Config, MAX_AZS};
use crate::context::{keys, Ctx, Outcome};
use crate::error::StackError;
use crate::progress::{Line, Progress};
use crate::resources::cluster;
use crate::resources::iam::{self, Role};
use crate::resources::network::{self, Tier};
use crate::resources::table::TablePlan;
use crate::resources::{load_balancer, logs, security, table, Inspection};
use crate::state::State;
use crate::wait::{self, budget, Poll};

pub type StepFn = Arc<dyn Fn(Arc<Ctx>, Line) -> BoxFuture<'static, Result<Outcome, StackError>> + Send + Sync>;
pub type InspectFn = Arc<dyn Fn(Arc<Ctx>) -> BoxFuture<'static, Result<Inspection, StackError>> + Send + Sync>;

fn step<F, Fut>(f: F) -> StepFn
where
    F: Fn(Arc<Ctx>, Line) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, StackError>> + Send + 'static,
{
    Arc::new(move |ctx, line| Box::pin(f(ctx, line)))
}

fn inspect<F, Fut>(f: F) -> InspectFn
where
    F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Inspection, StackError>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// One resource of the stack.
pub struct Node {
    pub key: String,
    /// `service:type`, shown by `status`.
    pub kind: &'static str,
    /// Keys that must be up before this one (and, for `down`, are deleted after it).
    pub deps: Vec<String>,
    pub up: StepFn,
    /// None for pure waits, which have nothing to delete.
    pub down: Option<StepFn>,
    pub inspect: Option<InspectFn>,
}

/// The stack's resource graph for a config. `table_plan` is what `down` does with the table.
pub fn stack(config: &Config, table_plan: TablePlan, wait_for_service: bool) -> Vec<Node> {
    let azs = config.network.az_count as usize;
    let nats = config.network.nat_gateways as usize;
    let mut nodes = Vec::new();
    let mut add = |key: &str,
                   kind: &'static str,
                   deps: Vec<String>,
                   up: StepFn,
                   down: Option<StepFn>,
                   insp: Option<InspectFn>| {
        nodes.push(Node { key: key.to_string(), kind, deps, up, down, inspect: insp });
    };
    let s = |k: &str| k.to_string();
    let public: Vec<String> = (0..azs).map(keys::public_subnet).collect();
    let private: Vec<String> = (0..azs).map(keys::private_subnet).collect();

    add(
        keys::VPC,
        "ec2:vpc",
        vec![],
        step(|c, l| async move { network::ensure_vpc(&c, &l).await }),
        Some(step(|c, l| async move { network::delete_vpc(&c, &l).await })),
        Some(inspect(|c| async move { network::inspect_vpc(&c).await })),
    );
    add(
        keys::DEFAULT_SG,
        "ec2:security-group",
        vec![s(keys::VPC)],
        step(|c, l| async move { security::empty_default_group(&c, &l).await }),
        Some(step(|c, _| async move { security::forget_default_group(&c).await })),
        Some(inspect(|c| async move { security::inspect_default_group(&c).await })),
    );
    add(
        keys::IGW,
        "ec2:internet-gateway",
        vec![s(keys::VPC)],
        step(|c, l| async move { network::ensure_internet_gateway(&c, &l).await }),
        Some(step(|c, l| async move { network::delete_internet_gateway(&c, &l).await })),
        Some(inspect(|c| async move { network::inspect_internet_gateway(&c).await })),
    );
    for tier in [Tier::Public, Tier::Private] {
        for i in 0..azs {
            let key = tier.key(i);
            let k = key.clone();
            let k2 = key.clone();
            add(
                &key,
                "ec2:subnet",
                vec![s(keys::VPC)],
                step(move |c, l| async move { network::ensure_subnet(&c, &l, tier, i).await }),
                Some(step(move |c, l| {
                    let k = k.clone();
                    async move { network::delete_subnet(&c, &l, &k).await }
                })),
                Some(inspect(move |c| {
                    let k = k2.clone();
                    async move { network::inspect_subnet(&c, &k).await }
                })),
            );
        }
    }
    let mut public_rt_deps = vec![s(keys::IGW)];
    public_rt_deps.extend(public.iter().cloned());
    add(
        keys::PUBLIC_RT,
        "ec2:route-table",
        public_rt_deps,
        step(|c, l| async move {
            let spec = network::public_route_table(&c)?;
            network::ensure_route_table(&c, &l, spec).await
        }),
        Some(step(|c, l| async move { network::delete_route_table(&c, &l, keys::PUBLIC_RT).await })),
        Some(inspect(|c| async move {
            network::inspect_route_table(&c, network::public_route_table(&c), keys::PUBLIC_RT).await
        })),
    );
    for i in 0..nats {
        add(
            &keys::elastic_ip(i),
            "ec2:elastic-ip",
            vec![],
            step(move |c, l| async move { network::ensure_elastic_ip(&c, &l, i).await }),
            Some(step(move |c, l| async move { network::delete_elastic_ip(&c, &l, i).await })),
            Some(inspect(move |c| async move { network::inspect_elastic_ip(&c, i).await })),
        );
        add(
            &keys::nat_gateway(i),
            "ec2:nat-gateway",
            vec![keys::elastic_ip(i), keys::public_subnet(i), s(keys::IGW)],
            step(move |c, l| async move { network::ensure_nat_gateway(&c, &l, i).await }),
            Some(step(move |c, l| async move { network::delete_nat_gateway(&c, &l, i).await })),
            Some(inspect(move |c| async move { network::inspect_nat_gateway(&c, i).await })),
        );
    }
    for j in 0..nats {
        let mut deps = vec![keys::nat_gateway(j)];
        deps.extend((0..azs).filter(|i| i % nats == j).map(keys::private_subnet));
        add(
            &keys::private_rt(j),
            "ec2:route-table",
            deps,
            step(move |c, l| async move {
                let spec = network::private_route_table(&c, j)?;
                network::ensure_route_table(&c, &l, spec).await
            }),
            Some(step(move |c, l| async move { network::delete_route_table(&c, &l, &keys::private_rt(j)).await })),
            Some(inspect(move |c| async move {
                network::inspect_route_table(&c, network::private_route_table(&c, j), &keys::private_rt(j)).await
            })),
        );
    }
    add(
        keys::ALB_SG,
        "ec2:security-group",
        vec![s(keys::VPC)],
        step(|c, l| async move { security::ensure_alb_group(&c, &l).await }),
        Some(step(|c, l| async move { security::delete_group(&c, &l, keys::ALB_SG).await })),
        Some(inspect(|c| async move { security::inspect_group(&c, keys::ALB_SG).await })),
    );
    add(
        keys::TASK_SG,
        "ec2:security-group",
        vec![s(keys::ALB_SG)],
        step(|c, l| async move { security::ensure_task_group(&c, &l).await }),
        Some(step(|c, l| async move { security::delete_group(&c, &l, keys::TASK_SG).await })),
        Some(inspect(|c| async move { security::inspect_group(&c, keys::TASK_SG).await })),
    );
    let plan = Arc::new(table_plan);
    add(
        keys::TABLE,
        "dynamodb:table",
        vec![],
        step(|c, l| async move { table::ensure_table(&c, &l).await }),
        Some(step(move |c, l| {
            let plan = plan.clone();
            async move { table::delete_table(&c, &l, &plan).await }
        })),
        Some(inspect(|c| async move { table::inspect_table(&c).await })),
    );
    add(
        keys::LOG_GROUP,
        "logs:log-group",
        vec![],
        step(|c, l| async move { logs::ensure_log_group(&c, &l).await }),
        Some(step(|c, l| async move { logs::delete_log_group(&c, &l).await })),
        Some(inspect(|c| async move { logs::inspect_log_group(&c).await })),
    );
    for (role, dep) in [(Role::Execution, keys::LOG_GROUP), (Role::Task, keys::TABLE)] {
        add(
            role.key(),
            "iam:role",
            vec![s(dep)],
            step(move |c, l| async move { iam::ensure_role(&c, &l, role).await }),
            Some(step(move |c, l| async move { iam::delete_role(&c, &l, role).await })),
            Some(inspect(move |c| async move { iam::inspect_role(&c, role).await })),
        );
    }
    add(
        keys::CLUSTER,
        "ecs:cluster",
        vec![],
        step(|c, l| async move { cluster::ensure_cluster(&c, &l).await }),
        Some(step(|c, l| async move { cluster::delete_cluster(&c, &l).await })),
        Some(inspect(|c| async move { cluster::inspect_cluster(&c).await })),
    );
    add(
        keys::TASK_DEFINITION,
        "ecs:task-definition",
        vec![s(keys::EXECUTION_ROLE), s(keys::TASK_ROLE), s(keys::LOG_GROUP), s(keys::TABLE)],
        step(|c, l| async move { cluster::ensure_task_definition(&c, &l).await }),
        Some(step(|c, l| async move { cluster::delete_task_definitions(&c, &l).await })),
        Some(inspect(|c| async move { cluster::inspect_task_definition(&c).await })),
    );
    add(
        keys::TARGET_GROUP,
        "elbv2:target-group",
        vec![s(keys::VPC)],
        step(|c, l| async move { load_balancer::ensure_target_group(&c, &l).await }),
        Some(step(|c, l| async move { load_balancer::delete_target_group(&c, &l).await })),
        Some(inspect(|c| async move { load_balancer::inspect_target_group(&c).await })),
    );
    let mut lb_deps = vec![s(keys::ALB_SG), s(keys::IGW)];
    lb_deps.extend(public.iter().cloned());
    add(
        keys::LOAD_BALANCER,
        "elbv2:load-balancer",
        lb_deps,
        step(|c, l| async move { load_balancer::ensure_load_balancer(&c, &l).await }),
        Some(step(|c, l| async move { load_balancer::delete_load_balancer(&c, &l).await })),
        Some(inspect(|c| async move { load_balancer::inspect_load_balancer(&c).await })),
    );
    add(
        keys::LISTENER,
        "elbv2:listener",
        vec![s(keys::LOAD_BALANCER), s(keys::TARGET_GROUP)],
        step(|c, l| async move { load_balancer::ensure_listener(&c, &l).await }),
        Some(step(|c, l| async move { load_balancer::delete_listener(&c, &l).await })),
        Some(inspect(|c| async move { load_balancer::inspect_listener(&c).await })),
    );
    let mut service_deps = vec![s(keys::CLUSTER), s(keys::TASK_DEFINITION), s(keys::TASK_SG), s(keys::LISTENER)];
    service_deps.extend(private.iter().cloned());
    service_deps.extend((0..nats).map(keys::private_rt));
    add(
        keys::SERVICE,
        "ecs:service",
        service_deps,
        step(|c, l| async move { cluster::ensure_service(&c, &l).await }),
        Some(step(|c, l| async move { cluster::delete_service(&c, &l).await })),
        Some(inspect(|c| async move { cluster::inspect_service(&c).await })),
    );
    if wait_for_service {
        add(
            LOAD_BALANCER_ACTIVE,
            "wait",
            vec![s(keys::LOAD_BALANCER)],
            step(|c, l| async move { load_balancer::wait_load_balancer_active(&c, &l).await }),
            None,
            None,
        );
        add(
            SERVICE_STABLE,
            "wait",
            vec![s(keys::SERVICE), s(LOAD_BALANCER_ACTIVE)],
            step(|c, l| async move { wait_service_stable(&c, &l).await }),
            None,
            None,
        );
    }
    nodes
}

/// A config whose graph covers every resource the state records: the config may have fewer AZs or
/// NAT gateways than when `up` ran, and `down` must still delete them all.
pub fn covering(config: &Config, state: &State) -> Config {
    let highest = |prefix: &str| {
        state.resources.keys().filter_map(|k| k.strip_prefix(prefix)?.parse::<u8>().ok()).max().unwrap_or(0)
    };
    let mut covering = config.clone();
    let network = &mut covering.network;
    network.az_count = network.az_count.max(highest("subnet-public-")).max(highest("subnet-private-"));
    network.nat_gateways = network
        .nat_gateways
        .max(highest("nat-gateway-"))
        .max(highest("elastic-ip-"))
        .max(highest("route-table-private-"));
    covering
}

/// A config whose graph reaches every resource a stack can have, to find them by tag and name
/// when there is no state file.
pub fn discovering(config: &Config) -> Config {
    let mut all = config.clone();
    all.network.az_count = MAX_AZS;
    all.network.nat_gateways = MAX_AZS;
    all
}

pub const LOAD_BALANCER_ACTIVE: &str = "load-balancer-active";
pub const SERVICE_STABLE: &str = "service-healthy";

/// Wait until the primary deployment completed, every task runs and every target is healthy.
/// A deployment the circuit breaker rolled back is a failure, even though the service is stable.
async fn wait_service_stable(ctx: &Ctx, line: &Line) -> Result<Outcome, StackError> {
    line.start("checking");
    let name = cluster::service_name(ctx);
    let wanted_definition = ctx.need(keys::TASK_DEFINITION, SERVICE_STABLE)?;
    wait::until(line, &name, "run every task with healthy targets", budget::SERVICE, || async {
        let Some(view) = cluster::service_view(ctx).await? else {
            return Err(StackError::Failed { resource: name.clone(), message: "disappeared".into() });
        };
        if view.rollout.as_deref() == Some("FAILED") || view.primary_task_definition != wanted_definition {
            return Err(StackError::Failed {
                resource: name.clone(),
                message: format!(
                    "deployment failed and was rolled back by the circuit breaker: {}",
                    view.rollout_reason.as_deref().unwrap_or("no reason given")
                ),
            });
        }
        let (healthy, _) = load_balancer::target_health(ctx).await?;
        let desired = view.desired.max(0) as u32;
        let completed = view.rollout.as_deref().is_none_or(|r| r == "COMPLETED") && view.deployments <= 1;
        if completed && view.running >= view.desired && healthy >= desired {
            return Ok(Poll::Ready(()));
        }
        Ok(Poll::Pending(format!(
            "running {}/{}, healthy {}/{}, rollout {}",
            view.running,
            view.desired,
            healthy,
            desired,
            view.rollout.as_deref().unwrap_or("unknown").to_lowercase()
        )))
    })
    .await?;
    Ok(Outcome::Waited)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// What happened to one node.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub key: String,
    pub result: StepResult,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub enum StepResult {
    Done(Outcome),
    Failed(String),
    /// Not run because something it waits for failed.
    Blocked(String),
}

/// Run the graph. Independent steps run concurrently (at most `max_concurrency` at once); a failed
/// step blocks only what waits on it, and everything else still runs.
pub async fn execute(
    nodes: &[Node],
    direction: Direction,
    ctx: Arc<Ctx>,
    progress: &Progress,
    max_concurrency: usize,
) -> Vec<StepReport> {
    let active: Vec<&Node> = nodes.iter().filter(|n| direction == Direction::Up || n.down.is_some()).collect();
    let index: HashMap<&str, usize> = active.iter().enumerate().map(|(i, n)| (n.key.as_str(), i)).collect();
    // waits_for[i]: the nodes that must finish before node i starts.
    let mut waits_for: Vec<Vec<usize>> = vec![vec![]; active.len()];
    for (i, node) in active.iter().enumerate() {
        for dep in &node.deps {
            let Some(&d) = index.get(dep.as_str()) else { continue };
            match direction {
                Direction::Up => waits_for[i].push(d),
                Direction::Down => waits_for[d].push(i),
            }
        }
    }
    let lines: Vec<Line> = active.iter().map(|n| progress.line(&n.key)).collect();
    let mut results: Vec<Option<StepReport>> = vec![None; active.len()];
    let mut started = vec![false; active.len()];
    let mut running = FuturesUnordered::new();
    let limit = max_concurrency.max(1);
    loop {
        // Block what waits on a failure; start what is ready.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..active.len() {
                if started[i] {
                    continue;
                }
                let blocker = waits_for[i].iter().find(|&&d| {
                    matches!(
                        results[d].as_ref().map(|r| &r.result),
                        Some(StepResult::Failed(_) | StepResult::Blocked(_))
                    )
                });
                if let Some(&d) = blocker {
                    let why = format!("waits for {}", active[d].key);
                    lines[i].skipped(&why);
                    results[i] = Some(StepReport {
                        key: active[i].key.clone(),
                        result: StepResult::Blocked(why),
                        elapsed: Duration::ZERO,
                    });
                    started[i] = true;
                    changed = true;
                }
            }
        }
        for i in 0..active.len() {
            if running.len() >= limit {
                break;
            }
            if started[i] || !waits_for[i].iter().all(|&d| results[d].is_some()) {
                continue;
            }
            started[i] = true;
            let node = active[i];
            let f = match direction {
                Direction::Up => node.up.clone(),
                Direction::Down => node.down.clone().expect("filtered to nodes with a down step"),
            };
            let (ctx, line) = (ctx.clone(), lines[i].clone());
            running.push(async move {
                let begun = Instant::now();
                let result = tokio::spawn(f(ctx, line)).await;
                let result = match result {
                    Ok(r) => r,
                    Err(join) => Err(StackError::Failed {
                        resource: node.key.clone(),
                        message: format!("step panicked: {join}"),
                    }),
                };
                (i, result, begun.elapsed())
            });
        }
        let Some((i, result, elapsed)) = running.next().await else { break };
        let report = match result {
            Ok(outcome) => {
                lines[i].done(outcome.word(), "");
                StepResult::Done(outcome)
            }
            Err(e) => {
                lines[i].failed(&e.to_string());
                if let Some(detail) = e.detail() {
                    tracing::debug!("{}: {detail}", active[i].key);
                }
                StepResult::Failed(e.to_string())
            }
        };
        results[i] = Some(StepReport { key: active[i].key.clone(), result: report, elapsed });
    }
    results.into_iter().flatten().collect()
}

/// Check every resource live, at most `max_concurrency` at once, results in graph order.
pub async fn inspect_all(
    nodes: &[Node],
    ctx: Arc<Ctx>,
    max_concurrency: usize,
) -> Vec<(String, &'static str, Result<Inspection, StackError>)> {
    let futures = nodes.iter().filter_map(|n| {
        let f = n.inspect.clone()?;
        let ctx = ctx.clone();
        let key = n.key.clone();
        let kind = n.kind;
        Some(async move { (key, kind, f(ctx).await) })
    });
    futures::stream::iter(futures).buffered(max_concurrency.max(1)).collect().await
}

/// Validate the graph's shape (every dependency exists, no cycles).
#[cfg(test)]
pub fn check_acyclic(nodes: &[Node]) -> Result<Vec<String>, String> {
    use std::collections::BTreeMap;
    let keys: BTreeMap<&str, &Node> = nodes.iter().map(|n| (n.key.as_str(), n)).collect();
    let mut order = vec![];
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        k: &'a str,
        keys: &BTreeMap<&'a str, &'a Node>,
        state: &mut BTreeMap<&'a str, u8>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        match state.get(k) {
            Some(2) => return Ok(()),
            Some(1) => return Err(format!("cycle through {k}")),
            _ => {}
        }
        state.insert(k, 1);
        let node = keys.get(k).ok_or_else(|| format!("unknown dependency {k}"))?;
        for d in &node.deps {
            visit(d.as_str(), keys, state, order)?;
        }
        state.insert(k, 2);
        order.push(k.to_string());
        Ok(())
    }
    for k in keys.keys() {
        visit(k, &keys, &mut state, &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TOML;

    fn default_nodes() -> Vec<Node> {
        stack(&Config::parse("t", DEFAULT_TOML).unwrap(), TablePlan::Absent, true)
    }

    fn deps_of<'a>(nodes: &'a [Node], key: &str) -> &'a [String] {
        &nodes.iter().find(|n| n.key == key).unwrap().deps
    }

    #[test]
    fn graph_is_acyclic_and_complete() {
        let nodes = default_nodes();
        let order = check_acyclic(&nodes).unwrap();
        assert_eq!(order.len(), nodes.len());
        // 1 vpc, default sg, igw, 4 subnets, public rt, eip, nat, private rt, 2 sgs, table, logs,
        // 2 roles, cluster, task def, tg, alb, listener, service, 2 waits.
        assert_eq!(nodes.len(), 25);
    }

    #[test]
    fn orders_what_aws_requires() {
        let nodes = default_nodes();
        assert!(deps_of(&nodes, "nat-gateway-1").contains(&keys::IGW.to_string()), "NAT fails without an attached IGW");
        assert!(deps_of(&nodes, keys::SERVICE).contains(&keys::LISTENER.to_string()), "service needs the listener");
        assert!(
            deps_of(&nodes, keys::SERVICE).contains(&"route-table-private-1".to_string()),
            "tasks need the NAT route"
        );
        assert!(deps_of(&nodes, keys::ALB_SG).len() == 1);
        // Independent of the network: they start at once.
        for k in [keys::TABLE, keys::LOG_GROUP, keys::CLUSTER, "elastic-ip-1"] {
            assert!(deps_of(&nodes, k).is_empty(), "{k}");
        }
    }

    #[test]
    fn down_covers_what_the_state_records_even_if_the_config_shrank() {
        let config = Config::parse("t", DEFAULT_TOML).unwrap();
        let mut state = State::new("simple-ecs-dev", "us-east-1");
        for key in ["subnet-public-3", "subnet-private-3", "nat-gateway-2", "elastic-ip-2", "route-table-private-2"] {
            state.resources.insert(
                key.into(),
                crate::state::Recorded { kind: "x".into(), id: "i".into(), attrs: Default::default() },
            );
        }
        let nodes = stack(&covering(&config, &state), TablePlan::Absent, false);
        for key in ["subnet-public-3", "subnet-private-3", "nat-gateway-2", "elastic-ip-2", "route-table-private-2"] {
            assert!(nodes.iter().any(|n| n.key == key), "{key}");
        }
        check_acyclic(&nodes).unwrap();
        let all = stack(&discovering(&config), TablePlan::Absent, false);
        assert!(all.iter().any(|n| n.key == "nat-gateway-6"));
        check_acyclic(&all).unwrap();
    }

    #[test]
    fn nat_per_az_when_asked() {
        let text = DEFAULT_TOML.replace("nat_gateways = 1", "nat_gateways = 2");
        let nodes = stack(&Config::parse("t", &text).unwrap(), TablePlan::Absent, false);
        assert!(nodes.iter().any(|n| n.key == "nat-gateway-2"));
        assert_eq!(deps_of(&nodes, "route-table-private-2"), ["nat-gateway-2", "subnet-private-2"]);
        assert!(!nodes.iter().any(|n| n.key == SERVICE_STABLE));
    }
}
