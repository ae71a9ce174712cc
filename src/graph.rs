//! The stack as a validated dependency graph, and a bounded-concurrency executor that runs it
//! forwards (`up`: a resource after what it needs) or along the teardown constraints (`down`: a
//! resource after what must be gone first). Only this module knows the order.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::bill::BilledLine;
use crate::config::Config;
use crate::context::Ctx;
use crate::error::StackError;
use crate::model::{Dep, Inspection, Key, Kind, Nodes, Outcome, Resource};
use crate::progress::{Line, Progress};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("resource {0} is declared twice")]
    Duplicate(Key),
    #[error("{node} depends on {dep}, which is not in the graph")]
    Unknown { node: Key, dep: Key },
    #[error("dependency cycle: {}", .0.iter().map(Key::to_string).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<Key>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// The stack's resources and the order between them, checked when built.
pub struct Graph {
    nodes: Vec<Arc<dyn Resource>>,
    index: HashMap<Key, usize>,
    /// For each node, the nodes that must be done before it: up along `needs`, down along the
    /// teardown edges (its own `teardown_after`, and the `gone_before` of others), with the reason.
    up: Vec<Vec<usize>>,
    down: Vec<Vec<(usize, &'static str)>>,
    /// Nodes present only to be looked for (see `Nodes::probe`).
    probes: Vec<Key>,
}

impl Graph {
    /// Validate: every key once, every dependency (both directions) declared, no cycle.
    pub fn new(nodes: Vec<Arc<dyn Resource>>) -> Result<Graph, GraphError> {
        Graph::build(Nodes { list: nodes, probes: vec![] })
    }

    /// The graph of a shape's nodes (see `resources::stack`).
    pub fn build(nodes: Nodes) -> Result<Graph, GraphError> {
        let Nodes { list: nodes, probes } = nodes;
        let mut index = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if index.insert(node.key(), i).is_some() {
                return Err(GraphError::Duplicate(node.key()));
            }
        }
        let mut graph = Graph { nodes, index, up: vec![], down: vec![], probes };
        graph.up = (0..graph.nodes.len())
            .map(|i| {
                let node = &graph.nodes[i];
                let resolved =
                    node.needs().into_iter().map(|d| graph.resolve(node.key(), d)).collect::<Result<Vec<_>, _>>()?;
                Ok(dedup(resolved.into_iter().flatten().collect()))
            })
            .collect::<Result<_, GraphError>>()?;
        for (j, node) in graph.nodes.iter().enumerate() {
            for dep in node.needed_by() {
                for i in graph.resolve(node.key(), dep)? {
                    if !graph.up[i].contains(&j) {
                        graph.up[i].push(j);
                    }
                }
            }
        }
        graph.down = graph.teardown()?;
        let keys: Vec<Key> = graph.nodes.iter().map(|n| n.key()).collect();
        for direction in [Direction::Up, Direction::Down] {
            check_acyclic(&keys, &graph.edges(direction, &|_| true))?;
        }
        Ok(graph)
    }

    /// Nodes run one after the other in the order given, each after all the ones before it (a
    /// command's declared sequence): a failure blocks the rest, which name the first failure.
    pub fn sequence(nodes: Vec<Arc<dyn Resource>>) -> Result<Graph, GraphError> {
        let mut graph = Graph::new(vec![])?;
        for (i, node) in nodes.into_iter().enumerate() {
            if graph.index.insert(node.key(), i).is_some() {
                return Err(GraphError::Duplicate(node.key()));
            }
            graph.nodes.push(node);
            graph.up.push((0..i).collect());
            graph.down.push(vec![]);
        }
        Ok(graph)
    }

    /// The positions `dep` of `node` names; an unknown key is an error unless it may be absent.
    fn resolve(&self, node: Key, dep: Dep) -> Result<Vec<usize>, GraphError> {
        Ok(match dep {
            Dep::One(key) => vec![*self.index.get(&key).ok_or(GraphError::Unknown { node, dep: key })?],
            Dep::IfPresent(key) => self.index.get(&key).copied().into_iter().collect(),
            Dep::Every(family) => (0..self.nodes.len()).filter(|&i| family.contains(self.nodes[i].key())).collect(),
        })
    }

    /// Each node's teardown edges: its own `teardown_after`, then the `gone_before` of the others
    /// that name it.
    fn teardown(&self) -> Result<Vec<Vec<(usize, &'static str)>>, GraphError> {
        let mut down: Vec<Vec<(usize, &'static str)>> = vec![vec![]; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for edge in node.teardown_after() {
                down[i].extend(self.resolve(node.key(), edge.dep)?.into_iter().map(|d| (d, edge.why)));
            }
        }
        for (j, node) in self.nodes.iter().enumerate() {
            for edge in node.gone_before() {
                for i in self.resolve(node.key(), edge.dep)? {
                    down[i].push((j, edge.why));
                }
            }
        }
        for edges in &mut down {
            let mut unique: Vec<(usize, &'static str)> = vec![];
            for edge in edges.drain(..) {
                if !unique.iter().any(|(d, _)| *d == edge.0) {
                    unique.push(edge);
                }
            }
            *edges = unique;
        }
        Ok(down)
    }

    pub fn nodes(&self) -> &[Arc<dyn Resource>] {
        &self.nodes
    }

    pub fn get(&self, key: Key) -> Option<&Arc<dyn Resource>> {
        self.index.get(&key).map(|&i| &self.nodes[i])
    }

    pub fn keys(&self) -> Vec<Key> {
        self.nodes.iter().map(|n| n.key()).collect()
    }

    /// The resources in it (its waits left out).
    pub fn resources(&self) -> impl Iterator<Item = &Arc<dyn Resource>> {
        self.nodes.iter().filter(|n| !n.is_wait())
    }

    /// What its resources bill under `config` (its probes, which only look, bill nothing).
    /// Replacements an interrupted `up` began and did not finish, as the state records them: what
    /// each is, and what the next `up` does to finish it.
    pub fn unfinished(&self, ctx: &Ctx) -> Vec<String> {
        self.nodes.iter().filter_map(|n| n.unfinished(ctx)).collect()
    }

    pub fn bill(&self, config: &Config) -> Vec<BilledLine> {
        self.resources()
            .filter(|n| !self.probes.contains(&n.key()))
            .flat_map(|n| n.billing(config).into_iter().map(move |charge| BilledLine::of(n.key(), &charge)))
            .collect()
    }

    /// What `key` waits for on `up`.
    pub fn needs_of(&self, key: Key) -> Vec<Key> {
        self.index.get(&key).map(|&i| self.up[i].iter().map(|&d| self.nodes[d].key()).collect()).unwrap_or_default()
    }

    /// What must be gone before `key` is deleted, with the reasons.
    pub fn teardown_edges(&self, key: Key) -> Vec<(Key, &'static str)> {
        self.index
            .get(&key)
            .map(|&i| self.down[i].iter().map(|&(d, why)| (self.nodes[d].key(), why)).collect())
            .unwrap_or_default()
    }

    /// What must be gone before `key` is deleted.
    pub fn teardown_after(&self, key: Key) -> Vec<Key> {
        self.teardown_edges(key).into_iter().map(|(k, _)| k).collect()
    }

    /// Nodes present only to be looked for: each is kept only if found.
    pub fn probes(&self) -> &[Key] {
        &self.probes
    }

    /// `waits_for[i]`: positions (among the included nodes) that must finish before node `i`.
    fn edges(&self, direction: Direction, include: &dyn Fn(&dyn Resource) -> bool) -> Vec<Vec<usize>> {
        let included: Vec<usize> = (0..self.nodes.len()).filter(|&i| include(self.nodes[i].as_ref())).collect();
        let position: HashMap<usize, usize> = included.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        included
            .iter()
            .map(|&i| {
                let deps: Vec<usize> = match direction {
                    Direction::Up => self.up[i].clone(),
                    Direction::Down => self.down[i].iter().map(|(d, _)| *d).collect(),
                };
                // A dependency on a node left out of this run (a wait, in `down`) is met.
                deps.iter().filter_map(|d| position.get(d).copied()).collect()
            })
            .collect()
    }

    /// Run `ensure` (up) or `delete` (down) on every included node, each once what it waits for
    /// is done. Every included node gets a report, in graph order.
    pub async fn execute(
        &self,
        direction: Direction,
        ctx: Arc<Ctx>,
        progress: &Progress,
        max_concurrency: usize,
        include: &dyn Fn(&dyn Resource) -> bool,
    ) -> Vec<StepReport> {
        let nodes: Vec<Arc<dyn Resource>> = self.nodes.iter().filter(|n| include(n.as_ref())).cloned().collect();
        let waits_for = self.edges(direction, include);
        let keys: Vec<Key> = nodes.iter().map(|n| n.key()).collect();
        run_steps(&keys, &waits_for, progress, max_concurrency, |i, line| {
            let (node, ctx) = (nodes[i].clone(), ctx.clone());
            async move {
                match direction {
                    Direction::Up => node.ensure(&ctx, &line).await,
                    Direction::Down => node.delete(&ctx, &line).await,
                }
            }
        })
        .await
    }

    /// Check every resource live (waits excluded), results in graph order. With everything
    /// recorded it is one round of concurrent calls; otherwise a resource is looked for only
    /// after what it needs, so that it can be found by tag and checked to be in our VPC.
    pub async fn inspect_all(
        &self,
        ctx: Arc<Ctx>,
        max_concurrency: usize,
    ) -> Vec<(Key, Kind, Result<Inspection, StackError>)> {
        let nodes: Vec<Arc<dyn Resource>> = self.nodes.iter().filter(|n| !n.is_wait()).cloned().collect();
        let all_recorded = nodes.iter().all(|n| ctx.id(n.key()).is_some());
        let results: Vec<Result<Inspection, StackError>> = if all_recorded {
            let checks = nodes.iter().map(|n| {
                let (n, ctx) = (n.clone(), ctx.clone());
                async move { n.inspect(&ctx).await }
            });
            futures::stream::iter(checks).buffered(max_concurrency.max(1)).collect().await
        } else {
            let found: Found = Arc::new(Mutex::new((0..nodes.len()).map(|_| None).collect()));
            let include = |n: &dyn Resource| !n.is_wait();
            let waits_for = self.edges(Direction::Up, &include);
            let keys: Vec<Key> = nodes.iter().map(|n| n.key()).collect();
            let reports = run_steps(&keys, &waits_for, &Progress::hidden(), max_concurrency, |i, _| {
                let (node, ctx, found) = (nodes[i].clone(), ctx.clone(), found.clone());
                async move {
                    let result = node.inspect(&ctx).await;
                    // Keep going past a failed check: the error is reported in its row.
                    found.lock().expect("inspections").get_mut(i).expect("index").replace(result);
                    Ok(Outcome::Unchanged)
                }
            })
            .await;
            debug_assert!(reports.iter().all(|r| matches!(r.result, StepResult::Done { .. })));
            let found = std::mem::take(&mut *found.lock().expect("inspections"));
            found.into_iter().map(|r| r.expect("every node was inspected")).collect()
        };
        nodes.iter().zip(results).map(|(n, r)| (n.key(), n.key().kind(), r)).collect()
    }
}

/// `positions` without repeats, in their order.
fn dedup(positions: Vec<usize>) -> Vec<usize> {
    let mut out = vec![];
    for p in positions {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Inspections collected by concurrent steps, by node position.
type Found = Arc<Mutex<Vec<Option<Result<Inspection, StackError>>>>>;

/// Depth-first search for a cycle in `waits_for`.
fn check_acyclic(keys: &[Key], waits_for: &[Vec<usize>]) -> Result<(), GraphError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(i: usize, waits_for: &[Vec<usize>], marks: &mut [Mark], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        match marks[i] {
            Mark::Done => return None,
            Mark::Open => {
                let start = path.iter().position(|&p| p == i).expect("open nodes are on the path");
                let mut cycle = path[start..].to_vec();
                cycle.push(i);
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        path.push(i);
        for &d in &waits_for[i] {
            if let Some(cycle) = visit(d, waits_for, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; keys.len()];
    for i in 0..keys.len() {
        if let Some(cycle) = visit(i, waits_for, &mut marks, &mut vec![]) {
            return Err(GraphError::Cycle(cycle.into_iter().map(|i| keys[i]).collect()));
        }
    }
    Ok(())
}

/// What happened to one node.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    #[serde(rename = "name")]
    pub key: Key,
    #[serde(flatten)]
    pub result: StepResult,
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
    pub elapsed: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    #[serde(rename = "ok")]
    Done {
        outcome: Outcome,
    },
    Failed {
        error: String,
    },
    /// Not run because something it waits for failed (or was itself blocked).
    Blocked {
        waits_for: Key,
    },
}

impl StepResult {
    pub fn word(&self) -> &'static str {
        match self {
            StepResult::Done { outcome } => outcome.word(),
            StepResult::Failed { .. } => "failed",
            StepResult::Blocked { .. } => "blocked",
        }
    }
}

/// Mark blocked (to a fixed point) every unstarted node that waits on a failed or blocked one.
fn block_waiting(
    keys: &[Key],
    waits_for: &[Vec<usize>],
    lines: &[Line],
    results: &mut [Option<StepResult>],
    started: &mut [bool],
) {
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..keys.len() {
            if started[i] {
                continue;
            }
            let blocker = waits_for[i]
                .iter()
                .find(|&&d| matches!(results[d], Some(StepResult::Failed { .. } | StepResult::Blocked { .. })));
            if let Some(&d) = blocker {
                lines[i].skipped(&format!("waits for {}", keys[d]));
                results[i] = Some(StepResult::Blocked { waits_for: keys[d] });
                started[i] = true;
                changed = true;
            }
        }
    }
}

/// Run `run(i, line)` for every node `i`, each once the nodes in `waits_for[i]` are done, at most
/// `max_concurrency` at once. A failure blocks only what waits on it (transitively); everything
/// else still runs. Every node gets a report, in the order given.
pub async fn run_steps<F, Fut>(
    keys: &[Key],
    waits_for: &[Vec<usize>],
    progress: &Progress,
    max_concurrency: usize,
    run: F,
) -> Vec<StepReport>
where
    F: Fn(usize, Line) -> Fut,
    Fut: Future<Output = Result<Outcome, StackError>> + Send + 'static,
{
    let lines: Vec<Line> = keys.iter().map(|k| progress.line(&k.to_string())).collect();
    let mut results: Vec<Option<StepResult>> = vec![None; keys.len()];
    let mut elapsed = vec![Duration::ZERO; keys.len()];
    let mut started = vec![false; keys.len()];
    let mut running = FuturesUnordered::new();
    let limit = max_concurrency.max(1);
    loop {
        // Block what waits on a failure; start what is ready.
        block_waiting(keys, waits_for, &lines, &mut results, &mut started);
        for i in 0..keys.len() {
            if running.len() >= limit {
                break;
            }
            if started[i] || !waits_for[i].iter().all(|&d| results[d].is_some()) {
                continue;
            }
            started[i] = true;
            let step = tokio::spawn(run(i, lines[i].clone()));
            let key = keys[i];
            running.push(async move {
                let begun = Instant::now();
                let result = step.await.unwrap_or_else(|join| {
                    Err(StackError::Failed { resource: key.to_string(), message: format!("step panicked: {join}") })
                });
                (i, result, begun.elapsed())
            });
        }
        let Some((i, result, took)) = running.next().await else { break };
        elapsed[i] = took;
        results[i] = Some(match result {
            Ok(outcome) => {
                lines[i].done(outcome.word(), "");
                StepResult::Done { outcome }
            }
            Err(e) => {
                lines[i].failed(&e.to_string());
                if let Some(detail) = e.detail() {
                    tracing::debug!("{}: {detail}", keys[i]);
                }
                StepResult::Failed { error: e.to_string() }
            }
        });
    }
    keys.iter()
        .zip(results)
        .zip(elapsed)
        .map(|((&key, result), elapsed)| StepReport {
            key,
            // Only a cycle, which `Graph::new` refuses, leaves a node unstarted.
            result: result.unwrap_or(StepResult::Failed { error: "never started: dependency cycle".into() }),
            elapsed,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::model::{Declared, Edge, Indexed};

    const TEST: Kind = Kind::new("test:node");
    const A: Key = Key::new("a", TEST);
    const B: Key = Key::new("b", TEST);
    const C: Key = Key::new("c", TEST);
    const D: Key = Key::new("d", TEST);
    const E: Key = Key::new("e", TEST);
    const NUMBERED: Indexed = Indexed::new("n-", TEST);

    fn failed(code: &str) -> StackError {
        StackError::Failed { resource: "x".into(), message: code.into() }
    }

    /// Run with a log of (key, start) and (key, end) events; `fail` keys fail.
    async fn run(
        keys: &[Key],
        waits_for: &[Vec<usize>],
        limit: usize,
        fail: &[Key],
    ) -> (Vec<StepReport>, Vec<(Key, bool)>, usize) {
        let log = Arc::new(Mutex::new(vec![]));
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let fail = fail.to_vec();
        let reports = run_steps(keys, waits_for, &Progress::hidden(), limit, |i, _| {
            let (key, log, live, peak, fails) =
                (keys[i], log.clone(), live.clone(), peak.clone(), fail.contains(&keys[i]));
            async move {
                log.lock().unwrap().push((key, true));
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                live.fetch_sub(1, Ordering::SeqCst);
                log.lock().unwrap().push((key, false));
                if fails {
                    Err(failed("boom"))
                } else {
                    Ok(Outcome::Created)
                }
            }
        })
        .await;
        let log = log.lock().unwrap().clone();
        (reports, log, peak.load(Ordering::SeqCst))
    }

    fn position(log: &[(Key, bool)], key: Key, start: bool) -> usize {
        log.iter().position(|&(k, s)| k == key && s == start).unwrap_or_else(|| panic!("{key} {start}"))
    }

    #[tokio::test]
    async fn a_node_starts_only_after_what_it_waits_for_has_ended() {
        // C waits for A and B; A and B are independent.
        let keys = [A, B, C];
        let (reports, log, peak) = run(&keys, &[vec![], vec![], vec![0, 1]], 8, &[]).await;
        assert!(position(&log, C, true) > position(&log, A, false));
        assert!(position(&log, C, true) > position(&log, B, false));
        assert_eq!(peak, 2, "A and B ran together");
        assert!(reports.iter().all(|r| r.result == StepResult::Done { outcome: Outcome::Created }));
        assert_eq!(reports.iter().map(|r| r.key).collect::<Vec<_>>(), keys, "reported in the order given");
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let keys = [A, B, C, D, E];
        let none = vec![vec![]; 5];
        assert_eq!(run(&keys, &none, 2, &[]).await.2, 2);
        assert_eq!(run(&keys, &none, 1, &[]).await.2, 1);
        assert_eq!(run(&keys, &none, 64, &[]).await.2, 5);
    }

    #[tokio::test]
    async fn a_failure_blocks_its_dependents_transitively_but_not_independent_nodes() {
        // B waits for A, C waits for B; D is independent; E waits for D.
        let keys = [A, B, C, D, E];
        let (reports, log, _) = run(&keys, &[vec![], vec![0], vec![1], vec![], vec![3]], 8, &[A]).await;
        let result = |k: Key| reports.iter().find(|r| r.key == k).unwrap().result.clone();
        assert!(matches!(result(A), StepResult::Failed { .. }));
        assert_eq!(result(B), StepResult::Blocked { waits_for: A });
        assert_eq!(result(C), StepResult::Blocked { waits_for: B });
        assert_eq!(result(D), StepResult::Done { outcome: Outcome::Created });
        assert_eq!(result(E), StepResult::Done { outcome: Outcome::Created });
        assert!(!log.iter().any(|&(k, _)| k == B || k == C), "blocked nodes never ran");
    }

    /// A fake resource with declared edges, for graph validation and direction.
    struct Fake {
        key: Key,
        needs: Vec<Dep>,
        after: Vec<Dep>,
        before: Vec<Dep>,
        log: Arc<Mutex<Vec<(Key, Direction)>>>,
    }

    #[async_trait::async_trait]
    impl Resource for Fake {
        fn key(&self) -> Key {
            self.key
        }
        fn declared(&self) -> Declared {
            Declared { needs: self.needs.clone(), ..Declared::default() }
        }
        fn permissions(&self) -> Vec<crate::access::Permission> {
            vec![]
        }
        fn declared_by(&self) -> &'static str {
            "a fake"
        }
        fn teardown_after(&self) -> Vec<Edge> {
            self.after.iter().map(|&d| crate::model::after(d, "test")).collect()
        }
        fn gone_before(&self) -> Vec<Edge> {
            self.before.iter().map(|&d| crate::model::before(d, "test")).collect()
        }
        async fn inspect(&self, _: &Ctx) -> Result<Inspection, StackError> {
            unreachable!()
        }
        async fn ensure(&self, _: &Ctx, _: &Line) -> Result<Outcome, StackError> {
            self.log.lock().unwrap().push((self.key, Direction::Up));
            Ok(Outcome::Created)
        }
        async fn delete(&self, _: &Ctx, _: &Line) -> Result<Outcome, StackError> {
            self.log.lock().unwrap().push((self.key, Direction::Down));
            Ok(Outcome::Deleted)
        }
    }

    type Log = Arc<Mutex<Vec<(Key, Direction)>>>;

    fn fake(key: Key, needs: &[Key], after: &[Key], log: &Log) -> Arc<dyn Resource> {
        let deps = |keys: &[Key]| keys.iter().map(|&k| Dep::One(k)).collect();
        Arc::new(Fake { key, needs: deps(needs), after: deps(after), before: vec![], log: log.clone() })
    }

    fn fake_deps(key: Key, needs: Vec<Dep>, before: Vec<Dep>, log: &Log) -> Arc<dyn Resource> {
        Arc::new(Fake { key, needs, after: vec![], before, log: log.clone() })
    }

    #[test]
    fn a_family_dependency_names_every_member_present_and_gone_before_adds_teardown_edges() {
        let log = Arc::new(Mutex::new(vec![]));
        let graph = Graph::new(vec![
            fake(NUMBERED.at(0), &[], &[], &log),
            fake(NUMBERED.at(2), &[], &[], &log),
            fake_deps(A, vec![Dep::Every(NUMBERED), Dep::IfPresent(E)], vec![Dep::Every(NUMBERED)], &log),
            fake_deps(B, vec![], vec![Dep::One(A)], &log),
        ])
        .unwrap();
        assert_eq!(graph.needs_of(A), [NUMBERED.at(0), NUMBERED.at(2)], "E is absent: no edge");
        assert_eq!(graph.teardown_after(NUMBERED.at(2)), [A]);
        assert_eq!(graph.teardown_after(A), [B]);
        let unknown = Graph::new(vec![fake_deps(A, vec![], vec![Dep::One(C)], &log)]).err();
        assert_eq!(unknown, Some(GraphError::Unknown { node: A, dep: C }));
    }

    #[tokio::test]
    async fn a_sequence_runs_in_order_and_a_failure_blocks_the_rest_naming_it() {
        let log = Arc::new(Mutex::new(vec![]));
        let graph =
            Graph::sequence(vec![fake(C, &[], &[], &log), fake(A, &[], &[], &log), fake(B, &[], &[], &log)]).unwrap();
        let ctx = Arc::new(crate::context::tests_support::ctx());
        graph.execute(Direction::Up, ctx, &Progress::hidden(), 8, &|_| true).await;
        let order: Vec<Key> = log.lock().unwrap().iter().map(|(k, _)| *k).collect();
        assert_eq!(order, [C, A, B]);
        assert_eq!(graph.needs_of(B), [C, A]);
    }

    #[test]
    fn building_refuses_unknown_dependencies_duplicates_and_cycles() {
        let log = Arc::new(Mutex::new(vec![]));
        let unknown = Graph::new(vec![fake(A, &[], &[], &log), fake(B, &[D], &[], &log)]).err();
        assert_eq!(unknown, Some(GraphError::Unknown { node: B, dep: D }));
        let unknown_down = Graph::new(vec![fake(A, &[], &[E], &log)]).err();
        assert_eq!(unknown_down, Some(GraphError::Unknown { node: A, dep: E }));
        let twice = Graph::new(vec![fake(A, &[], &[], &log), fake(A, &[], &[], &log)]).err();
        assert_eq!(twice, Some(GraphError::Duplicate(A)));
        let cycle = Graph::new(vec![fake(A, &[C], &[], &log), fake(B, &[A], &[], &log), fake(C, &[B], &[], &log)]);
        let err = cycle.err().unwrap();
        assert!(matches!(err, GraphError::Cycle(ref keys) if keys.len() == 4), "{err}");
        assert!(err.to_string().starts_with("dependency cycle: "), "{err}");
        let down_cycle = Graph::new(vec![fake(A, &[], &[B], &log), fake(B, &[], &[A], &log)]);
        assert!(matches!(down_cycle, Err(GraphError::Cycle(_))));
    }

    #[tokio::test]
    async fn down_follows_the_teardown_edges_not_the_reverse_of_up() {
        let log = Arc::new(Mutex::new(vec![]));
        // Up: B needs A, C needs B. Down: A after C only; B has no teardown constraint.
        let graph =
            Graph::new(vec![fake(A, &[], &[C], &log), fake(B, &[A], &[], &log), fake(C, &[B], &[], &log)]).unwrap();
        let ctx = Arc::new(crate::context::tests_support::ctx());
        graph.execute(Direction::Up, ctx.clone(), &Progress::hidden(), 1, &|_| true).await;
        let up: Vec<Key> = log.lock().unwrap().drain(..).map(|(k, _)| k).collect();
        assert_eq!(up, [A, B, C]);
        graph.execute(Direction::Down, ctx, &Progress::hidden(), 1, &|_| true).await;
        let down: Vec<Key> = log.lock().unwrap().iter().map(|(k, _)| *k).collect();
        // B first: nothing has to go before it; A last: it waits for C.
        assert_eq!(down, [B, C, A]);
    }
}
