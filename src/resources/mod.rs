//! One module per AWS concern. Each offers the same small verbs over [`Ctx`]:
//! `ensure_*` (create what is missing, adopt what exists), `delete_*` (tolerates "already gone")
//! and `inspect_*` (live status). Modules never call each other; `graph.rs` decides the order.

pub mod cluster;
pub mod iam;
pub mod load_balancer;
pub mod logs;
pub mod network;
pub mod security;
pub mod table;

use serde::Serialize;

/// Live status of one resource, as `status` reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inspection {
    pub status: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Missing,
    Drifted,
    Pending,
}

impl Inspection {
    pub fn ok(id: impl Into<String>) -> Inspection {
        Inspection { status: Health::Ok, id: Some(id.into()), detail: String::new() }
    }
    pub fn missing(id: Option<String>, detail: impl Into<String>) -> Inspection {
        Inspection { status: Health::Missing, id, detail: detail.into() }
    }
    pub fn pending(id: impl Into<String>, detail: impl Into<String>) -> Inspection {
        Inspection { status: Health::Pending, id: Some(id.into()), detail: detail.into() }
    }
    pub fn drifted(id: impl Into<String>, detail: impl Into<String>) -> Inspection {
        Inspection { status: Health::Drifted, id: Some(id.into()), detail: detail.into() }
    }
    pub fn not_recorded() -> Inspection {
        Inspection::missing(None, "not in the state file")
    }
}
