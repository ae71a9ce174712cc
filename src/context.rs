//! The shared context every resource works on: config, clients, the state, and what the run has
//! to tell the user at the end.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::aws::Clients;
use crate::config::Config;
use crate::error::StackError;
use crate::model::{Key, Record};
use crate::state::{State, StateError, Store};

/// Tag on every resource: which stack owns it.
pub const STACK_TAG: &str = "fargate-stack:stack";
/// Tag on every resource: which logical resource of the stack it is (the state file key).
pub const RESOURCE_TAG: &str = "fargate-stack:resource";

pub struct Ctx {
    pub config: Config,
    pub region: String,
    pub aws: Clients,
    /// False when the config is not the stack's own (`list` looking at other stacks): inspections
    /// then say what exists and what is settling, and judge no drift.
    pub compares_config: bool,
    store: Store,
    notes: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
    /// What modules keep for the run, one value per type (see [`Ctx::run`]).
    run: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Ctx {
    pub fn new(config: Config, region: String, aws: Clients, store: Store) -> Ctx {
        Ctx {
            config,
            region,
            aws,
            compares_config: true,
            store,
            notes: Mutex::new(vec![]),
            warnings: Mutex::new(vec![]),
            run: Mutex::new(HashMap::new()),
        }
    }

    /// This run's value of `T`, a type a module keeps for the run (the hosted zone looked up once,
    /// what `down` decided about the table): the default until someone sets it.
    pub fn run<T: Default + Any + Send + Sync>(&self) -> Arc<T> {
        let mut run = self.run.lock().expect("run lock");
        let value = run.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        value.clone().downcast::<T>().expect("stored under its own type")
    }

    /// Set this run's value of `T` (a command's options a module reads).
    pub fn set_run<T: Any + Send + Sync>(&self, value: T) {
        self.run.lock().expect("run lock").insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub fn stack(&self) -> &str {
        &self.config.name
    }

    /// `<stack>-<suffix>`: the name of a stack resource.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{}", self.config.name, suffix)
    }

    /// The tags every resource gets at creation, as (key, value) pairs: the tool's own, then the
    /// config's `[tags]` (whose keys cannot be the tool's: see `config::check_tag`). Every create
    /// call sends these, so a tag-enforcing SCP or tag policy sees them on the create itself.
    pub fn tags(&self, key: Key, name: &str) -> Vec<(String, String)> {
        let own = [
            (STACK_TAG.to_string(), self.config.name.clone()),
            (RESOURCE_TAG.to_string(), key.to_string()),
            (crate::config::NAME_TAG.to_string(), name.to_string()),
        ];
        own.into_iter().chain(self.config.tags.iter().map(|(k, v)| (k.clone(), v.clone()))).collect()
    }

    /// Is a resource with these tags this stack's resource `key`? Checked on our side whatever
    /// filter AWS applied. `Err` says why not.
    pub fn owns<'a>(&self, key: Key, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
        let tags: Vec<(&str, &str)> = tags.into_iter().collect();
        let value = |name: &str| tags.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        match (value(STACK_TAG), value(RESOURCE_TAG)) {
            (Some(stack), _) if stack != self.stack() => Err(format!("tagged {STACK_TAG}={stack}")),
            (None, _) => Err(format!("no {STACK_TAG} tag")),
            (Some(_), Some(resource)) if resource != key.to_string() => {
                Err(format!("tagged {RESOURCE_TAG}={resource}, not {key}"))
            }
            _ => Ok(()),
        }
    }

    /// The error for a resource that fails the ownership check.
    pub fn not_ours(&self, what: impl Into<String>, why: String) -> StackError {
        StackError::NotOurs { resource: what.into(), stack: self.stack().to_string(), why }
    }

    pub fn snapshot(&self) -> State {
        self.store.snapshot()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn id(&self, key: Key) -> Option<String> {
        self.store.read(|s| s.id(&key.to_string()))
    }

    pub fn attr(&self, key: Key, attr: &str) -> Option<String> {
        self.store.read(|s| s.attr(&key.to_string(), attr))
    }

    /// Record a resource (its attributes merged over what is recorded); persisted before this returns.
    pub async fn record(&self, key: Key, record: &Record) -> Result<(), StateError> {
        let name = key.to_string();
        self.store
            .update(|state| {
                let entry = state.resources.entry(name).or_insert_with(|| crate::state::Recorded {
                    kind: key.kind().label().to_string(),
                    id: String::new(),
                    attrs: Default::default(),
                });
                let before = entry.clone();
                entry.kind = key.kind().label().to_string();
                entry.id = record.id.clone();
                for (attr, value) in &record.attrs {
                    entry.attrs.insert(attr.to_string(), value.clone());
                }
                *entry != before
            })
            .await
    }

    /// Add or change one attribute of a recorded resource.
    pub async fn set_attr(&self, key: Key, attr: &str, value: &str) -> Result<(), StateError> {
        self.store
            .update(|state| match state.resources.get_mut(&key.to_string()) {
                Some(r) if r.attrs.get(attr).map(String::as_str) != Some(value) => {
                    r.attrs.insert(attr.to_string(), value.to_string());
                    true
                }
                _ => false,
            })
            .await
    }

    /// The state's whole record of a resource.
    pub fn recorded(&self, key: Key) -> Option<crate::state::Recorded> {
        self.store.read(|s| s.get(&key.to_string()).cloned())
    }

    /// Set a resource's whole record (id and attributes exactly so) in one persisted change: to
    /// put back one taken with [`Ctx::recorded`], or to change several attributes at once.
    pub async fn put_record(&self, key: Key, recorded: crate::state::Recorded) -> Result<(), StateError> {
        self.store
            .update(|state| {
                let name = key.to_string();
                if state.resources.get(&name) == Some(&recorded) {
                    return false;
                }
                state.resources.insert(name, recorded);
                true
            })
            .await
    }

    /// Set several attributes of a recorded resource in one persisted change (`None` removes one),
    /// so that a run killed in between never leaves half of them.
    pub async fn set_attrs(&self, key: Key, attrs: &[(&str, Option<String>)]) -> Result<(), StateError> {
        self.store
            .update(|state| {
                let Some(r) = state.resources.get_mut(&key.to_string()) else { return false };
                let before = r.attrs.clone();
                for (attr, value) in attrs {
                    match value {
                        Some(v) => r.attrs.insert(attr.to_string(), v.clone()),
                        None => r.attrs.remove(*attr),
                    };
                }
                r.attrs != before
            })
            .await
    }

    /// Forget a resource confirmed gone; persisted before this returns.
    pub async fn forget(&self, key: Key) -> Result<(), StateError> {
        self.store.update(|state| state.resources.remove(&key.to_string()).is_some()).await
    }

    /// Something the user must see in the command's result (e.g. a backup ARN).
    pub fn note(&self, message: String) {
        self.notes.lock().expect("notes lock").push(message);
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes lock").clone()
    }

    /// Something found that is not ours and was left alone.
    pub fn warn(&self, message: String) {
        let mut warnings = self.warnings.lock().expect("warnings lock");
        if !warnings.contains(&message) {
            tracing::debug!("{message}");
            warnings.push(message);
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().expect("warnings lock").clone()
    }
}

/// A context for unit tests: the default config under `name`, clients that are never called, a
/// read-only state.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::config::DEFAULT_TOML;

    pub fn ctx_named(name: &str) -> Ctx {
        let config = Config::parse("t", &DEFAULT_TOML.replace("simple-ecs-dev", name)).unwrap();
        let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let store = Store::read_only("t".into(), State::new(name, "us-east-1"));
        Ctx::new(config, "us-east-1".into(), Clients::new(&sdk), store)
    }

    pub fn ctx() -> Ctx {
        ctx_named("simple-ecs-dev")
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::ctx_named as ctx;
    use super::*;
    use crate::model::{Attr, Indexed, Kind};

    const NAT: Indexed = Indexed::new("nat-gateway-", Kind::new("ec2:nat-gateway"));
    const VPC: Key = Key::new("vpc", Kind::new("ec2:vpc"));

    #[test]
    fn ownership_is_exact_on_the_stack_and_the_resource() {
        let app = ctx("app");
        let tags = |stack: &'static str, key: &'static str| vec![(STACK_TAG, stack), (RESOURCE_TAG, key)];
        assert!(app.owns(NAT.at(0), tags("app", "nat-gateway-1")).is_ok());
        // A stack whose name has ours as a prefix is another stack.
        assert!(app.owns(NAT.at(0), tags("app-2", "nat-gateway-1")).unwrap_err().contains("app-2"));
        assert!(ctx("app-2").owns(NAT.at(0), tags("app", "nat-gateway-1")).is_err());
        assert!(app.owns(NAT.at(0), tags("app", "nat-gateway-2")).is_err());
        assert!(app.owns(VPC, vec![("Name", "app-vpc")]).unwrap_err().contains("no fargate-stack:stack tag"));
    }

    #[test]
    fn every_create_gets_the_own_tags_then_the_configs_and_the_own_keys_are_reserved() {
        let mut app = ctx("app");
        app.config.tags = [("team", "payments"), ("cost", "cc-42")].map(|(k, v)| (k.into(), v.into())).into();
        let tags = app.tags(VPC, "app-vpc");
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [STACK_TAG, RESOURCE_TAG, "Name", "cost", "team"]);
        // The tool's keys are what `[tags]` may not use, and no more than it counts.
        let own = [STACK_TAG, RESOURCE_TAG, crate::config::NAME_TAG, crate::state::location::STATE_TAG];
        assert_eq!(own.len(), crate::config::OWN_TAGS_AT_MOST);
        for key in own {
            assert!(crate::config::check_tag(key, "v").unwrap_err().contains("reserved"), "{key}");
        }
    }

    #[tokio::test]
    async fn record_merges_attributes_and_keeps_the_kind_from_the_key() {
        let c = ctx("app");
        let (cidr, azs) = (Attr::new(VPC, "cidr"), Attr::new(VPC, "az_count"));
        c.record(VPC, &Record::id("vpc-1").with(cidr, "10.0.0.0/16").with(azs, "2")).await.unwrap();
        c.record(VPC, &Record::id("vpc-1").with(cidr, "10.0.0.0/16")).await.unwrap();
        assert_eq!(c.attr(VPC, "az_count").as_deref(), Some("2"));
        assert_eq!(c.snapshot().resources["vpc"].kind, "ec2:vpc");
        c.forget(VPC).await.unwrap();
        assert_eq!(c.id(VPC), None);
    }

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicUsize);

    #[test]
    fn a_module_keeps_one_value_per_type_for_the_run() {
        let c = ctx("app");
        c.run::<Counter>().0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(c.run::<Counter>().0.load(std::sync::atomic::Ordering::SeqCst), 1);
        c.set_run(Counter::default());
        assert_eq!(c.run::<Counter>().0.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
