//! `--prices live`: the price table's keys asked of the AWS Price List API (GetProducts), one call
//! per key (every page of its answer), each narrowed by TERM_MATCH filters on the product's `regionCode` and `usagetype` (the
//! billing usage type, which names the region with a prefix of its own) under the service's code.
//! A key the API does not answer (no mapping, no product, products that disagree) is priced from
//! the table, and the bill marks its line; without a table price either, the bill names the key.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;

use crate::access::Permission;
use crate::aws::Clients;
pub use crate::aws::PRICING_REGION;
use crate::bill::items;
use crate::error::aws::AwsError;

/// What `--prices live` asks of IAM: GetProducts takes no resource-level permission. Declared
/// only when live prices are asked (`fargate-stack --prices live policy`).
pub fn permissions() -> Vec<Permission> {
    vec![Permission::find("pricing:GetProducts")]
}

/// What GetProducts is asked for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub service_code: &'static str,
    pub usage_type: String,
    /// Table units per Price List unit: the table prices DynamoDB requests per million, the Price
    /// List per request unit.
    pub scale: f64,
}

impl Lookup {
    /// The TERM_MATCH filters: the product's region and its usage type.
    pub fn filters(&self, region: &str) -> Vec<(&'static str, String)> {
        vec![("regionCode", region.to_string()), ("usagetype", self.usage_type.clone())]
    }
}

/// The billing usage type's region prefix. us-east-1's usage types have none, except Fargate's
/// (`USE1-Fargate-vCPU-Hours:perCPU`).
fn usage_prefix(region: &str, service_code: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" if service_code == "AmazonECS" => "USE1-",
        "us-east-1" => "",
        "us-east-2" => "USE2-",
        "us-west-1" => "USW1-",
        "us-west-2" => "USW2-",
        "ca-central-1" => "CAN1-",
        "eu-west-1" => "EU-",
        "eu-west-2" => "EUW2-",
        "eu-west-3" => "EUW3-",
        "eu-central-1" => "EUC1-",
        "eu-north-1" => "EUN1-",
        "ap-northeast-1" => "APN1-",
        "ap-southeast-1" => "APS1-",
        "ap-southeast-2" => "APS2-",
        "ap-south-1" => "APS3-",
        "sa-east-1" => "SAE1-",
        _ => return None,
    })
}

/// The service code, usage type (without its region prefix) and scale of a price key. `None`: the
/// Price List has no fixed on-demand figure for it (Fargate Spot moves with spare capacity; Route
/// 53 queries are global, not regional) or no mapping is known: the table prices it.
fn usage_of(item: &str) -> Option<(&'static str, &'static str, f64)> {
    Some(match item {
        items::NAT_GATEWAY_HOUR => ("AmazonEC2", "NatGateway-Hours", 1.0),
        items::NAT_GATEWAY_DATA => ("AmazonEC2", "NatGateway-Bytes", 1.0),
        items::PUBLIC_IPV4_HOUR => ("AmazonVPC", "PublicIPv4:InUseAddress", 1.0),
        items::ALB_HOUR => ("AWSELB", "LoadBalancerUsage", 1.0),
        items::ALB_LCU => ("AWSELB", "LCUUsage", 1.0),
        items::FARGATE_VCPU_X86 => ("AmazonECS", "Fargate-vCPU-Hours:perCPU", 1.0),
        items::FARGATE_MEMORY_X86 => ("AmazonECS", "Fargate-GB-Hours", 1.0),
        items::FARGATE_VCPU_ARM64 => ("AmazonECS", "Fargate-ARM-vCPU-Hours:perCPU", 1.0),
        items::FARGATE_MEMORY_ARM64 => ("AmazonECS", "Fargate-ARM-GB-Hours", 1.0),
        items::LOGS_INGESTION => ("AmazonCloudWatch", "DataProcessing-Bytes", 1.0),
        items::LOGS_STORAGE => ("AmazonCloudWatch", "TimedStorage-ByteHrs", 1.0),
        items::FLOW_LOGS_INGESTION => ("AmazonCloudWatch", "VendedLog-Bytes", 1.0),
        items::CLOUDWATCH_ALARM => ("AmazonCloudWatch", "CW:AlarmMonitorUsage", 1.0),
        items::CONTAINER_INSIGHTS => ("AmazonCloudWatch", "CW:MetricMonitorUsage", 1.0),
        items::DYNAMODB_WRITES => ("AmazonDynamoDB", "WriteRequestUnits", 1e6),
        items::DYNAMODB_READS => ("AmazonDynamoDB", "ReadRequestUnits", 1e6),
        items::DYNAMODB_STORAGE => ("AmazonDynamoDB", "TimedStorage-ByteHrs", 1.0),
        items::DYNAMODB_BACKUP => ("AmazonDynamoDB", "TimedBackupStorage-ByteHrs", 1.0),
        items::DYNAMODB_RECOVERY => ("AmazonDynamoDB", "TimedPITRStorage-ByteHrs", 1.0),
        items::S3_STORAGE => ("AmazonS3", "TimedStorage-ByteHrs", 1.0),
        _ => return None,
    })
}

/// What GetProducts is asked for `item` in `region`, when the Price List prices it there.
pub fn lookup(item: &str, region: &str) -> Option<Lookup> {
    let (service_code, usage, scale) = usage_of(item)?;
    let prefix = usage_prefix(region, service_code)?;
    Some(Lookup { service_code, usage_type: format!("{prefix}{usage}"), scale })
}

/// The on-demand USD price of one PriceList entry (a JSON document in a string): of its price
/// dimensions, the lowest tier that is not free (a free tier is not what the table prices either);
/// `Some(0.0)` when every tier is free.
pub fn on_demand_usd(entry: &str) -> Option<f64> {
    let doc: Value = serde_json::from_str(entry).ok()?;
    let mut tiers: Vec<(f64, f64)> = vec![];
    for term in doc.pointer("/terms/OnDemand")?.as_object()?.values() {
        for dimension in term.get("priceDimensions")?.as_object()?.values() {
            let usd = dimension.pointer("/pricePerUnit/USD")?.as_str()?.parse::<f64>().ok()?;
            let begin = dimension.get("beginRange").and_then(Value::as_str).and_then(|b| b.parse().ok()).unwrap_or(0.0);
            tiers.push((begin, usd));
        }
    }
    tiers.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first = tiers.first()?.1;
    Some(tiers.iter().map(|t| t.1).find(|p| *p > 0.0).unwrap_or(first))
}

/// One key's price from the entries GetProducts answered: `None` when none parses or they disagree.
pub fn price_of(entries: &[String], scale: f64) -> Option<f64> {
    let prices: BTreeSet<u64> = entries.iter().filter_map(|e| on_demand_usd(e)).map(f64::to_bits).collect();
    match prices.into_iter().collect::<Vec<_>>()[..] {
        [one] => Some(f64::from_bits(one) * scale),
        _ => None,
    }
}

/// The live prices of `keys` in `region`: those the API answered (the others are left to the table).
pub async fn fetch(
    clients: &Clients,
    region: &str,
    keys: &BTreeSet<String>,
) -> Result<BTreeMap<String, f64>, AwsError> {
    let asks =
        keys.iter().filter_map(|key| Some((key.clone(), lookup(key, region)?))).map(|(key, lookup)| async move {
            let mut request = clients
                .pricing
                .get_products()
                .service_code(lookup.service_code)
                .format_version("aws_v1")
                .max_results(10);
            for (field, value) in lookup.filters(region) {
                let filter = Filter::builder().r#type(FilterType::TermMatch).field(field).value(value).build();
                request = request.filters(filter.expect("type, field and value are set"));
            }
            // Every page: GetProducts may answer fewer entries than MaxResults, none even, with a
            // NextToken while more are left, and a key's products can disagree across pages.
            let entries: Vec<String> = request.into_paginator().items().send().try_collect().await.map_err(|e| {
                AwsError::of(e, "get the price (pricing:GetProducts) of", &format!("{key} in {region}"))
            })?;
            Ok::<_, AwsError>(price_of(&entries, lookup.scale).map(|price| (key, price)))
        });
    Ok(futures::future::try_join_all(asks).await?.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GetProducts PriceList entry as AWS answers it (AmazonEC2, NAT gateway hours, us-east-1),
    /// trimmed of attributes nothing reads.
    const NAT_HOURS: &str = r#"{"product":{"productFamily":"NAT Gateway","attributes":{"regionCode":"us-east-1","servicecode":"AmazonEC2","usagetype":"NatGateway-Hours","location":"US East (N. Virginia)","operation":"NatGateway","group":"NGW:NatGateway","groupDescription":"Hourly charge for NAT Gateways","servicename":"Amazon Elastic Compute Cloud"},"sku":"M2YSHUBETB3JX4M4"},"serviceCode":"AmazonEC2","terms":{"OnDemand":{"M2YSHUBETB3JX4M4.JRTCKXETXF":{"priceDimensions":{"M2YSHUBETB3JX4M4.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","endRange":"Inf","description":"$0.045 per NAT Gateway Hour","appliesTo":[],"rateCode":"M2YSHUBETB3JX4M4.JRTCKXETXF.6YS6EN2CT7","beginRange":"0","pricePerUnit":{"USD":"0.0450000000"}}},"sku":"M2YSHUBETB3JX4M4","effectiveDate":"2025-11-01T00:00:00Z","offerTermCode":"JRTCKXETXF","termAttributes":{}}}},"version":"20251120183036","publicationDate":"2025-11-20T18:30:36Z"}"#;

    #[test]
    fn a_price_list_entry_gives_its_on_demand_usd_price() {
        assert_eq!(on_demand_usd(NAT_HOURS), Some(0.045));
        // Tiered (S3 Standard): the first tier; a free first tier (DynamoDB storage's 25 GB) is skipped.
        let tiered = |tiers: &[(&str, &str)]| {
            let dims: serde_json::Map<String, Value> = tiers
                .iter()
                .enumerate()
                .map(|(i, (begin, usd))| {
                    (
                        format!("D{i}"),
                        serde_json::json!({"beginRange": begin, "unit": "GB-Mo", "pricePerUnit": {"USD": usd}}),
                    )
                })
                .collect();
            serde_json::json!({"terms": {"OnDemand": {"T": {"priceDimensions": dims}}}}).to_string()
        };
        assert_eq!(on_demand_usd(&tiered(&[("51200", "0.022"), ("0", "0.023")])), Some(0.023));
        assert_eq!(on_demand_usd(&tiered(&[("0", "0.0000000000"), ("25", "0.25")])), Some(0.25));
        assert_eq!(on_demand_usd(&tiered(&[("0", "0")])), Some(0.0));
        assert_eq!(on_demand_usd(r#"{"terms":{"OnDemand":{}}}"#), None);
        assert_eq!(on_demand_usd("not json"), None);
        // Scaled to the table's unit; several products that disagree are no answer.
        let write = tiered(&[("0", "0.000000625")]);
        assert!((price_of(&[write.clone(), write], 1e6).unwrap() - 0.625).abs() < 1e-12);
        assert_eq!(price_of(&[NAT_HOURS.into(), tiered(&[("0", "0.05")])], 1.0), None);
        assert_eq!(price_of(&[], 1.0), None);
    }

    #[test]
    fn each_key_maps_to_a_service_code_and_a_regional_usage_type() {
        let nat = lookup(items::NAT_GATEWAY_HOUR, "us-east-1").unwrap();
        assert_eq!(nat, Lookup { service_code: "AmazonEC2", usage_type: "NatGateway-Hours".into(), scale: 1.0 });
        assert_eq!(
            nat.filters("us-east-1"),
            [("regionCode", "us-east-1".to_string()), ("usagetype", "NatGateway-Hours".to_string())]
        );
        assert_eq!(lookup(items::NAT_GATEWAY_HOUR, "us-west-2").unwrap().usage_type, "USW2-NatGateway-Hours");
        assert_eq!(lookup(items::FARGATE_VCPU_X86, "us-east-1").unwrap().usage_type, "USE1-Fargate-vCPU-Hours:perCPU");
        assert_eq!(lookup(items::FARGATE_MEMORY_ARM64, "us-east-2").unwrap().usage_type, "USE2-Fargate-ARM-GB-Hours");
        assert_eq!(lookup(items::DYNAMODB_WRITES, "us-east-1").unwrap().scale, 1e6);
        // The table prices what the Price List has no fixed figure for, and regions without a prefix.
        assert_eq!(lookup("fargate:spot-vcpu-hour:x86_64", "us-east-1"), None);
        assert_eq!(lookup(items::ROUTE53_QUERIES, "us-east-1"), None);
        assert_eq!(lookup(items::NAT_GATEWAY_HOUR, "xx-nowhere-1"), None);
    }
}
