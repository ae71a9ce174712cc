//! The stack's outputs, from the state and the config, each read through the module that owns it.

use serde::Serialize;

use crate::context::Ctx;
use crate::report;
use crate::resources::{cluster, dns, listener_https, load_balancer, service, table};

/// The stack's outputs, from the state and the config.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outputs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb_dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

impl Outputs {
    pub fn of(ctx: &Ctx) -> Outputs {
        let view = ctx.scope();
        let dns = view.attr(load_balancer::DNS_NAME);
        let https = view.id(listener_https::LISTENER_HTTPS).is_some();
        let alias = view.id(dns::ALIAS_RECORD);
        let port = ctx.config.load_balancer.listener_port;
        Outputs {
            url: load_balancer::url(dns.as_deref(), port, https, alias.as_deref()),
            alb_dns_name: dns,
            table_name: view.id(table::TABLE),
            cluster_name: view.id(cluster::CLUSTER),
            service_name: view.attr(service::SERVICE_NAME),
        }
    }

    pub fn render(&self, text: &mut report::Text) {
        let rows: Vec<Vec<String>> = [
            ("url", &self.url),
            ("alb_dns_name", &self.alb_dns_name),
            ("table_name", &self.table_name),
            ("cluster_name", &self.cluster_name),
            ("service_name", &self.service_name),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| vec![format!("  {name}"), v.clone()]))
        .collect();
        text.table(&rows);
    }
}
