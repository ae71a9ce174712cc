//! The monthly bill: the resources' declared charges priced from the repository's price table
//! (config/prices.toml), with the usage-based items named and priced per unit but not guessed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Charge, Quantity, Unit};

const PRICE_TABLE: &str = include_str!("../../config/prices.toml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("no price table for {0} (config/prices.toml has {1}): the bill is not estimated")]
    NoRegion(String, String),
    #[error("the price table for {region} has no price for {item}")]
    NoItem { region: String, item: String },
    #[error("the AWS Price List API has no price for {item} in {region}, and the price table has none: the bill is not estimated")]
    NoLiveItem { region: String, item: String },
    /// The Price List API refused or failed (`--prices live`).
    #[error("live prices: {0}")]
    Live(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    as_of: String,
    source: String,
    hours_per_month: f64,
    regions: BTreeMap<String, RegionFile>,
}

#[derive(Debug, Deserialize)]
struct RegionFile {
    #[serde(default)]
    same_as: Option<String>,
    #[serde(flatten)]
    prices: BTreeMap<String, f64>,
}

/// One region's prices, and where they come from.
#[derive(Debug, Clone)]
pub struct Prices {
    pub region: String,
    /// `table` or `live`.
    pub kind: &'static str,
    /// The table's date, or when the live prices were fetched.
    pub as_of: String,
    pub source: String,
    hours_per_month: f64,
    by_item: BTreeMap<String, f64>,
    /// Live prices: the keys the Price List API did not answer, priced from the table.
    from_table: BTreeSet<String>,
}

impl Prices {
    /// The regions the repository's table prices.
    pub fn table_regions() -> Vec<String> {
        let file: TableFile = toml::from_str(PRICE_TABLE).expect("config/prices.toml is valid (unit-tested)");
        file.regions.into_keys().collect()
    }

    /// The repository's table for `region`.
    pub fn for_region(region: &str) -> Result<Prices, PriceError> {
        let file: TableFile = toml::from_str(PRICE_TABLE).expect("config/prices.toml is valid (unit-tested)");
        let known = file.regions.keys().cloned().collect::<Vec<_>>().join(", ");
        let entry = file.regions.get(region).ok_or_else(|| PriceError::NoRegion(region.into(), known.clone()))?;
        let entry = match &entry.same_as {
            Some(other) => file.regions.get(other).ok_or_else(|| PriceError::NoRegion(other.clone(), known))?,
            None => entry,
        };
        Ok(Prices {
            region: region.into(),
            kind: "table",
            as_of: file.as_of,
            source: file.source,
            hours_per_month: file.hours_per_month,
            by_item: entry.prices.clone(),
            from_table: BTreeSet::new(),
        })
    }

    /// `keys` priced from what the Price List API answered (`live`, fetched at `fetched_at`); a key
    /// it did not answer from the table, marked, or, without a table price, an error naming it.
    pub fn live(
        region: &str,
        keys: &BTreeSet<String>,
        live: &BTreeMap<String, f64>,
        fetched_at: String,
    ) -> Result<Prices, PriceError> {
        let file: TableFile = toml::from_str(PRICE_TABLE).expect("config/prices.toml is valid (unit-tested)");
        let table = Prices::for_region(region).ok();
        let mut prices = Prices {
            region: region.into(),
            kind: "live",
            as_of: fetched_at,
            source: format!("AWS Price List API (GetProducts, {})", super::live::PRICING_REGION),
            hours_per_month: file.hours_per_month,
            by_item: BTreeMap::new(),
            from_table: BTreeSet::new(),
        };
        for key in keys {
            let price = match live.get(key) {
                Some(price) => *price,
                None => {
                    let fallback = table.as_ref().and_then(|t| t.price(key).ok());
                    let fallback =
                        fallback.ok_or_else(|| PriceError::NoLiveItem { region: region.into(), item: key.clone() })?;
                    prices.from_table.insert(key.clone());
                    fallback
                }
            };
            prices.by_item.insert(key.clone(), price);
        }
        Ok(prices)
    }

    /// Live prices: `item` was priced from the table (the Price List API did not answer it).
    pub fn from_table(&self, item: &str) -> bool {
        self.from_table.contains(item)
    }

    pub(crate) fn price(&self, item: &str) -> Result<f64, PriceError> {
        self.by_item
            .get(item)
            .copied()
            .ok_or_else(|| PriceError::NoItem { region: self.region.clone(), item: item.into() })
    }

    /// What one unit a month comes to: hourly units bill every hour of the month.
    fn monthly_factor(&self, unit: Unit) -> f64 {
        match unit {
            Unit::Hour | Unit::VcpuHour | Unit::GbHour => self.hours_per_month,
            _ => 1.0,
        }
    }
}

/// A resource's charge as the state records it for the next plan's old → new (owned, so it reads
/// back from JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BilledLine {
    pub resource: String,
    pub item: String,
    pub unit: Unit,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
}

impl BilledLine {
    pub fn of(resource: impl ToString, charge: &Charge) -> BilledLine {
        BilledLine {
            resource: resource.to_string(),
            item: charge.item.into(),
            unit: charge.unit,
            what: charge.what.clone(),
            quantity: charge.quantity,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostItem {
    pub resource: String,
    pub what: String,
    pub unit: Unit,
    pub unit_price: f64,
    /// Units billed every hour (or month): at the lowest running count.
    pub quantity: f64,
    /// With autoscaling, at the highest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity_max: Option<f64>,
    pub monthly: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_max: Option<f64>,
    /// Live prices: this line's unit price is the table's (the Price List API did not answer it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub table_price: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageItem {
    pub resource: String,
    pub what: String,
    pub unit: Unit,
    pub unit_price: f64,
    /// As [`CostItem::table_price`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub table_price: bool,
}

/// A line whose monthly figure differs between what was applied and what the plan makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovedItem {
    pub resource: String,
    pub what: String,
    pub before: f64,
    pub after: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Before {
    pub monthly_total: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_total_max: Option<f64>,
    pub moved: Vec<MovedItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cost {
    pub currency: &'static str,
    pub region: String,
    pub prices: &'static str,
    pub prices_as_of: String,
    pub prices_source: String,
    /// At the lowest running count.
    pub monthly_total: f64,
    /// With autoscaling: at the highest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_total_max: Option<f64>,
    pub items: Vec<CostItem>,
    pub usage_based: Vec<UsageItem>,
    /// The bill of what was applied last, when the plan changes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `Some(max)` when it differs from `min`.
fn ranged(min: f64, max: f64) -> Option<f64> {
    ((max - min).abs() > 1e-9).then_some(max)
}

struct Totals {
    min: f64,
    max: f64,
    by_line: BTreeMap<(String, String), (String, f64)>,
}

fn totals(lines: &[BilledLine], prices: &Prices) -> Result<Totals, PriceError> {
    let mut totals = Totals { min: 0.0, max: 0.0, by_line: BTreeMap::new() };
    for line in lines {
        let Some(q) = line.quantity else { continue };
        let month = prices.price(&line.item)? * prices.monthly_factor(line.unit);
        totals.min += q.min * month;
        totals.max += q.max * month;
        let entry =
            totals.by_line.entry((line.resource.clone(), line.item.clone())).or_insert((line.what.clone(), 0.0));
        entry.1 += q.min * month;
    }
    Ok(totals)
}

impl Cost {
    /// The bill of `lines` at `prices`; with `before` (what was applied last), old → new and the
    /// lines that move, when the total moves.
    pub fn of(lines: &[BilledLine], prices: &Prices, before: Option<&[BilledLine]>) -> Result<Cost, PriceError> {
        let mut items = vec![];
        let mut usage_based = vec![];
        for line in lines {
            let unit_price = prices.price(&line.item)?;
            match line.quantity {
                Some(q) => {
                    let month = unit_price * prices.monthly_factor(line.unit);
                    items.push(CostItem {
                        resource: line.resource.clone(),
                        what: line.what.clone(),
                        unit: line.unit,
                        unit_price,
                        quantity: q.min,
                        quantity_max: ranged(q.min, q.max),
                        monthly: cents(q.min * month),
                        monthly_max: ranged(q.min, q.max).map(|max| cents(max * month)),
                        table_price: prices.from_table(&line.item),
                    })
                }
                None => usage_based.push(UsageItem {
                    resource: line.resource.clone(),
                    what: line.what.clone(),
                    unit: line.unit,
                    unit_price,
                    table_price: prices.from_table(&line.item),
                }),
            }
        }
        let now = totals(lines, prices)?;
        let before = match before {
            Some(old) => Some(Cost::before(&totals(old, prices)?, &now)).filter(|b| !b.moved.is_empty()),
            None => None,
        };
        Ok(Cost {
            currency: "USD",
            region: prices.region.clone(),
            prices: prices.kind,
            prices_as_of: prices.as_of.clone(),
            prices_source: prices.source.clone(),
            monthly_total: cents(now.min),
            monthly_total_max: ranged(now.min, now.max).map(cents),
            items,
            usage_based,
            before,
        })
    }

    fn before(old: &Totals, now: &Totals) -> Before {
        let mut keys: Vec<&(String, String)> = old.by_line.keys().chain(now.by_line.keys()).collect();
        keys.sort();
        keys.dedup();
        let moved = keys
            .into_iter()
            .filter_map(|key| {
                let was = old.by_line.get(key);
                let is = now.by_line.get(key);
                let (before, after) = (cents(was.map_or(0.0, |w| w.1)), cents(is.map_or(0.0, |i| i.1)));
                let what = is.or(was).map(|l| l.0.clone()).unwrap_or_default();
                (before != after).then(|| MovedItem { resource: key.0.clone(), what, before, after })
            })
            .collect();
        Before { monthly_total: cents(old.min), monthly_total_max: ranged(old.min, old.max).map(cents), moved }
    }
}

impl Unit {
    pub fn word(self) -> &'static str {
        match self {
            Unit::Hour => "hour",
            Unit::VcpuHour => "vCPU-hour",
            Unit::GbHour => "GB-hour",
            Unit::Gb => "GB",
            Unit::GbMonth => "GB-month",
            Unit::LcuHour => "LCU-hour",
            Unit::MillionRequests => "million requests",
            Unit::Month => "month",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(resource: &str, item: &'static str, unit: Unit, quantity: Option<Quantity>) -> BilledLine {
        BilledLine { resource: resource.into(), item: item.into(), unit, what: item.into(), quantity }
    }

    #[test]
    fn the_table_says_when_and_where_its_prices_come_from() {
        let file: TableFile = toml::from_str(PRICE_TABLE).unwrap();
        assert!(!file.as_of.is_empty() && !file.source.is_empty());
        assert!(file.regions.contains_key("us-east-1"));
        let missing = Prices::for_region("eu-west-3").unwrap_err().to_string();
        assert!(missing.starts_with("no price table for eu-west-3"), "{missing}");
    }

    #[test]
    fn live_prices_fall_back_to_the_table_marked_or_name_the_key() {
        use crate::bill::items;
        let keys: BTreeSet<String> = [items::NAT_GATEWAY_HOUR, items::FLOW_LOGS_INGESTION].map(String::from).into();
        let answered = BTreeMap::from([(items::NAT_GATEWAY_HOUR.to_string(), 0.048)]);
        let prices = Prices::live("us-east-1", &keys, &answered, "2026-12-03T14:00:00Z".into()).unwrap();
        assert_eq!((prices.kind, prices.as_of.as_str()), ("live", "2026-12-03T14:00:00Z"));
        assert_eq!(prices.price(items::NAT_GATEWAY_HOUR), Ok(0.048));
        assert!(!prices.from_table(items::NAT_GATEWAY_HOUR));
        assert_eq!(prices.price(items::FLOW_LOGS_INGESTION), Ok(0.50), "the table's");
        assert!(prices.from_table(items::FLOW_LOGS_INGESTION));
        let usage = line("flow-logs", items::FLOW_LOGS_INGESTION, Unit::Gb, None);
        let cost = Cost::of(&[usage], &prices, None).unwrap();
        assert!(cost.usage_based[0].table_price && cost.prices == "live");
        // No table for the region: the unanswered key is named.
        let missing = Prices::live("eu-west-3", &keys, &answered, String::new()).unwrap_err().to_string();
        assert!(missing.starts_with("the AWS Price List API has no price for logs:vended-ingestion in eu-west-3"));
    }

    #[test]
    fn a_bill_is_hours_times_quantity_and_shows_what_moves() {
        use crate::bill::items;
        let prices = Prices::for_region("us-east-1").unwrap();
        let nat = line("nat-gateway-1", items::NAT_GATEWAY_HOUR, Unit::Hour, Some(Quantity::fixed(1.0)));
        let tasks = |max| line("service", items::FARGATE_VCPU_X86, Unit::VcpuHour, Some(Quantity { min: 0.5, max }));
        let data = line("nat-gateway-1", items::NAT_GATEWAY_DATA, Unit::Gb, None);
        let cost = Cost::of(&[nat.clone(), tasks(1.5), data.clone()], &prices, None).unwrap();
        assert_eq!(cost.monthly_total, 32.85 + 14.78);
        assert_eq!(cost.monthly_total_max, Some(cents(32.85 + 1.5 * 0.04048 * 730.0)));
        assert_eq!(cost.usage_based[0].unit_price, 0.045, "named with its unit price, not guessed");
        assert_eq!(cost.before, None);
        // Against what was applied: the tasks' line moves, the NAT's does not.
        let cost = Cost::of(&[nat.clone(), tasks(0.5)], &prices, Some(&[nat.clone(), data])).unwrap();
        let before = cost.before.unwrap();
        assert_eq!(before.monthly_total, 32.85);
        assert_eq!(
            before.moved,
            [MovedItem { resource: "service".into(), what: items::FARGATE_VCPU_X86.into(), before: 0.0, after: 14.78 }]
        );
        // The same bill: nothing to say.
        assert_eq!(
            Cost::of(std::slice::from_ref(&nat), &prices, Some(std::slice::from_ref(&nat))).unwrap().before,
            None
        );
    }
}
