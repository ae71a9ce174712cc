//! The shared context every resource step works on: config, clients, the state file.

use std::sync::Mutex;

use tokio::sync::OnceCell;

use crate::aws::Clients;
use crate::config::Config;
use crate::error::StackError;
use crate::state::{Recorded, State, StateFile};

/// Tag on every resource: which stack owns it.
pub const STACK_TAG: &str = "fargate-stack:stack";
/// Tag on every resource: which logical resource of the stack it is (the state file key).
pub const RESOURCE_TAG: &str = "fargate-stack:resource";

/// What a step did, for the summary and the `--output json` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Absent,
    Retained,
    Waited,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "exists",
            Outcome::Deleted => "deleted",
            Outcome::Absent => "already gone",
            Outcome::Retained => "retained",
            Outcome::Waited => "ready",
        }
    }
}

/// Options of `down` that resource steps need.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub delete_data: bool,
    pub retain_table: bool,
    pub no_backup: bool,
}

pub struct Ctx {
    pub config: Config,
    pub region: String,
    pub aws: Clients,
    pub down: DownOptions,
    state: Mutex<StateFile>,
    notes: Mutex<Vec<String>>,
    availability_zones: OnceCell<Vec<String>>,
}

impl Ctx {
    pub fn new(config: Config, region: String, aws: Clients, state: StateFile, down: DownOptions) -> Ctx {
        Ctx {
            config,
            region,
            aws,
            down,
            state: Mutex::new(state),
            notes: Mutex::new(vec![]),
            availability_zones: OnceCell::new(),
        }
    }

    pub fn stack(&self) -> &str {
        &self.config.name
    }

    /// `<stack>-<suffix>`: the name of a stack resource.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{}", self.config.name, suffix)
    }

    /// The tags every resource gets, as (key, value) pairs.
    pub fn tags(&self, key: &str, name: &str) -> Vec<(String, String)> {
        vec![
            (STACK_TAG.to_string(), self.config.name.clone()),
            (RESOURCE_TAG.to_string(), key.to_string()),
            ("Name".to_string(), name.to_string()),
        ]
    }

    pub fn snapshot(&self) -> State {
        self.state.lock().expect("state lock").state().clone()
    }

    pub fn id(&self, key: &str) -> Option<String> {
        self.state.lock().expect("state lock").state().id(key)
    }

    pub fn attr(&self, key: &str, attr: &str) -> Option<String> {
        self.state.lock().expect("state lock").state().attr(key, attr)
    }

    /// The ID of a resource another step must have created.
    pub fn need(&self, key: &str, by: &str) -> Result<String, StackError> {
        self.id(key).ok_or_else(|| StackError::MissingDependency { needed: key.into(), by: by.into() })
    }

    pub fn need_attr(&self, key: &str, attr: &str, by: &str) -> Result<String, StackError> {
        self.attr(key, attr)
            .ok_or_else(|| StackError::MissingDependency { needed: format!("{key}.{attr}"), by: by.into() })
    }

    /// Record a resource the moment it exists; persisted before this returns.
    pub fn record(&self, key: &str, kind: &str, id: &str, attrs: &[(&str, String)]) -> Result<(), StackError> {
        let record = Recorded {
            kind: kind.to_string(),
            id: id.to_string(),
            attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        };
        self.state.lock().expect("state lock").put(key, record)?;
        Ok(())
    }

    /// Add or change one attribute of a recorded resource.
    pub fn set_attr(&self, key: &str, attr: &str, value: &str) -> Result<(), StackError> {
        let mut file = self.state.lock().expect("state lock");
        if let Some(mut record) = file.state().get(key).cloned() {
            record.attrs.insert(attr.to_string(), value.to_string());
            file.put(key, record)?;
        }
        Ok(())
    }

    /// Forget a resource confirmed gone; persisted before this returns.
    pub fn forget(&self, key: &str) -> Result<(), StackError> {
        self.state.lock().expect("state lock").remove(key)?;
        Ok(())
    }

    /// Something the user must see in the command's result (e.g. a backup ARN).
    pub fn note(&self, message: String) {
        self.notes.lock().expect("notes lock").push(message);
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("notes lock").clone()
    }

    /// Delete the state file once it records nothing.
    pub fn remove_state_if_empty(&self) -> Result<bool, StackError> {
        Ok(self.state.lock().expect("state lock").remove_if_empty()?)
    }

    /// The first `az_count` available zones of the region, looked up once.
    pub async fn availability_zones(&self) -> Result<&Vec<String>, StackError> {
        self.availability_zones
            .get_or_try_init(|| async {
                use crate::error::AwsContext;
                let out = self
                    .aws
                    .ec2
                    .describe_availability_zones()
                    .filters(aws_sdk_ec2::types::Filter::builder().name("state").values("available").build())
                    .send()
                    .await
                    .ctx("describe availability zones of", &self.region)?;
                let mut zones: Vec<String> = out
                    .availability_zones()
                    .iter()
                    .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
                    .filter_map(|z| z.zone_name().map(str::to_string))
                    .collect();
                zones.sort();
                let wanted = self.config.network.az_count as usize;
                if zones.len() < wanted {
                    return Err(StackError::Refused(format!(
                        "network.az_count = {wanted} but region {} has {} available zones ({})",
                        self.region,
                        zones.len(),
                        zones.join(", ")
                    )));
                }
                zones.truncate(wanted);
                Ok(zones)
            })
            .await
    }
}

/// Logical resource keys: the state file's keys, the progress lines and `status` names.
pub mod keys {
    pub const VPC: &str = "vpc";
    pub const DEFAULT_SG: &str = "default-security-group";
    pub const IGW: &str = "internet-gateway";
    pub const PUBLIC_RT: &str = "route-table-public";
    pub const ALB_SG: &str = "security-group-alb";
    pub const TASK_SG: &str = "security-group-task";
    pub const TABLE: &str = "table";
    pub const LOG_GROUP: &str = "log-group";
    pub const EXECUTION_ROLE: &str = "role-execution";
    pub const TASK_ROLE: &str = "role-task";
    pub const CLUSTER: &str = "cluster";
    pub const TASK_DEFINITION: &str = "task-definition";
    pub const LOAD_BALANCER: &str = "load-balancer";
    pub const TARGET_GROUP: &str = "target-group";
    pub const LISTENER: &str = "listener";
    pub const SERVICE: &str = "service";

    pub fn public_subnet(i: usize) -> String {
        format!("subnet-public-{}", i + 1)
    }
    pub fn private_subnet(i: usize) -> String {
        format!("subnet-private-{}", i + 1)
    }
    pub fn elastic_ip(i: usize) -> String {
        format!("elastic-ip-{}", i + 1)
    }
    pub fn nat_gateway(i: usize) -> String {
        format!("nat-gateway-{}", i + 1)
    }
    pub fn private_rt(i: usize) -> String {
        format!("route-table-private-{}", i + 1)
    }
}
