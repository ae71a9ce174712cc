//! The monthly bill as plans and `status` show it: priced from the repository's table, or why not.

use serde::Serialize;

use crate::bill::{BilledLine, Cost, PriceError, Prices};
use crate::report::Text;

/// The `cost` of a plan or status: the bill, or why there is none (a region without a table).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Bill {
    Priced(Box<Cost>),
    Unpriced { unpriced: String },
}

impl Bill {
    /// `lines` at `prices` (or why there are none); `before` (what was applied last, empty for
    /// nothing yet) makes the old → new figures.
    pub fn new(prices: Result<Prices, PriceError>, lines: &[BilledLine], before: Option<&[BilledLine]>) -> Bill {
        match prices.and_then(|prices| Cost::of(lines, &prices, before)) {
            Ok(cost) => Bill::Priced(Box::new(cost)),
            Err(e) => Bill::Unpriced { unpriced: e.to_string() },
        }
    }

    pub fn monthly_total(&self) -> Option<f64> {
        match self {
            Bill::Priced(cost) => Some(cost.monthly_total),
            Bill::Unpriced { .. } => None,
        }
    }

    /// One row per billed item, the total (a range with autoscaling; old → new when it moves),
    /// then the usage-based items with their unit prices.
    pub fn render(&self, heading: &str, text: &mut Text) {
        let cost = match self {
            Bill::Priced(cost) => cost,
            Bill::Unpriced { unpriced } => return text.line(format!("{heading}: {unpriced}")),
        };
        let basis = match cost.prices {
            "live" => format!("prices: live from the AWS Price List API, fetched {}", cost.prices_as_of),
            _ => format!("price table of {}", cost.prices_as_of),
        };
        text.line(format!("{heading}: {} per month at {} list prices ({basis})", cost.currency, cost.region));
        // The monthly figure before the varying parts, the description last: no column pads a
        // short row out to a long one's width.
        let rows: Vec<Vec<String>> = cost
            .items
            .iter()
            .map(|i| {
                let hours = if i.unit.word().ends_with("hour") { " x 730 h" } else { "" };
                vec![
                    format!("  {}", i.resource),
                    range(i.monthly, i.monthly_max, 2),
                    format!("{}/{} x {}{hours}", i.unit_price, i.unit.word(), quantity(i.quantity, i.quantity_max)),
                    format!("{}{}", i.what, table_mark(i.table_price)),
                ]
            })
            .collect();
        text.table(&rows);
        let mut total = range(cost.monthly_total, cost.monthly_total_max, 2);
        if let Some(before) = &cost.before {
            total = format!("{} → {total}", range(before.monthly_total, before.monthly_total_max, 2));
        }
        text.line(format!("  total: {total} {} a month", cost.currency));
        // A first bill moves every line from nothing: only an existing stack's moves are news.
        if let Some(before) = cost.before.as_ref().filter(|b| b.monthly_total > 0.0) {
            for moved in &before.moved {
                text.line(format!(
                    "  moves: {} {}: {:.2} → {:.2}",
                    moved.resource, moved.what, moved.before, moved.after
                ));
            }
        }
        let usage: Vec<String> = cost
            .usage_based
            .iter()
            .map(|u| format!("{} {}/{}{}", u.what, u.unit_price, u.unit.word(), table_mark(u.table_price)))
            .collect();
        if !usage.is_empty() {
            text.line(format!("  by use, not estimated: {}", usage.join("; ")));
        }
    }
}

/// A live bill's line priced from the table.
fn table_mark(from_table: bool) -> &'static str {
    if from_table {
        " [table price: not in the Price List API]"
    } else {
        ""
    }
}

/// `2`, `0.5` or `0.5..1.5`: as few decimals as the figure has (up to three).
fn quantity(min: f64, max: Option<f64>) -> String {
    let short = |x: f64| {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match max {
        Some(max) => format!("{}..{}", short(min), short(max)),
        None => short(min),
    }
}

/// `12.34` or `12.34..56.78`.
fn range(min: f64, max: Option<f64>, decimals: usize) -> String {
    match max {
        Some(max) => format!("{min:.decimals$}..{max:.decimals$}"),
        None => format!("{min:.decimals$}"),
    }
}
