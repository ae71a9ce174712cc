//! `--prices live`: the bill priced from the AWS Price List API (GetProducts, asked in us-east-1),
//! served by the realism layer from real-shaped products whose prices differ from the repository's
//! table; a key it does not answer is priced from the table and marked, and without a table price
//! the bill names the key.

mod common;

use std::time::Instant;

use common::*;
use serde_json::{json, Value};

fn item<'a>(cost: &'a Value, what: &str) -> &'a Value {
    let all = cost["items"].as_array().unwrap().iter().chain(cost["usage_based"].as_array().unwrap());
    all.into_iter().find(|i| i["what"] == what).unwrap_or_else(|| panic!("no {what} in {cost}"))
}

#[test]
fn a_dry_run_with_live_prices_says_so_and_marks_what_the_api_does_not_price() {
    let started = Instant::now();
    let emulator = Emulator::start();
    let realism =
        Realism::start(&emulator, RealismOptions { config: json!({"iam_propagation_s": 0}), ..Default::default() });
    let app = Cli::at(&realism.url());

    let table = app.run(&["--output", "json", "up", "--dry-run"]).ok().json();
    assert_eq!(table["cost"]["prices"], "table", "{}", table["cost"]);
    assert!(!realism.calls().iter().any(|c| c["action"] == "GetProducts"), "the table needs no call");

    let plan = app.run(&["--output", "json", "--prices", "live", "up", "--dry-run"]).ok().json();
    let cost = &plan["cost"];
    assert_eq!(cost["prices"], "live", "{cost}");
    assert!(cost["prices_source"].as_str().unwrap().contains("AWS Price List API"), "{cost}");
    assert!(cost["prices_as_of"].as_str().unwrap().ends_with('Z'), "the fetch time: {cost}");
    // The realism layer's figures, not the table's (NAT 0.048 against 0.045, Fargate vCPU 0.05 against 0.04048).
    assert_eq!(item(cost, "NAT gateway 1")["unit_price"], 0.048, "{cost}");
    assert_eq!(item(cost, "Fargate vCPU (x86_64)")["unit_price"], 0.05, "{cost}");
    assert!(item(cost, "NAT gateway 1").get("table_price").is_none(), "{cost}");
    // GetProducts pages its answers, a page holding none of a key's products even: the layer's
    // products of these keys sit on pages 2 and 3 of their service's answer (table 0.25, 0.30, 0.20).
    for (what, live) in [
        ("table storage", 0.26),
        ("Container Insights metrics (per metric)", 0.33),
        ("point-in-time recovery (per GB of table size)", 0.21),
    ] {
        assert_eq!(item(cost, what)["unit_price"], live, "{what}: {cost}");
        assert!(item(cost, what).get("table_price").is_none(), "{what}: {cost}");
    }
    assert!(cost["monthly_total"].as_f64() > table["cost"]["monthly_total"].as_f64(), "{cost}");
    // Flow logs' vended ingestion is not in the layer's products: the table's price, marked.
    let flow = cost["usage_based"].as_array().unwrap().iter().find(|u| u["table_price"] == true);
    assert!(flow.is_some_and(|f| f["unit_price"] == 0.5), "{cost}");
    let asked: Vec<Value> = realism.calls().into_iter().filter(|c| c["action"] == "GetProducts").collect();
    assert!(!asked.is_empty() && asked.iter().all(|c| c["status"] == 200), "{asked:?}");

    let text = app.run(&["--prices", "live", "up", "--dry-run"]).ok().stdout;
    assert!(text.contains("prices: live from the AWS Price List API, fetched 20"), "{text}");
    assert!(text.contains("0.048/hour"), "{text}");
    assert!(text.contains("[table price: not in the Price List API]"), "{text}");

    // A region without a price table, whose keys the API does not answer either: the key is named.
    let text = app.run(&["--region", "eu-west-3", "--prices", "live", "up", "--dry-run"]).ok().stdout;
    assert!(text.contains("the AWS Price List API has no price for"), "{text}");
    assert!(text.contains("in eu-west-3, and the price table has none"), "{text}");
    eprintln!("live prices: {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn the_policy_asks_for_get_products_only_with_live_prices() {
    let emulator = Emulator::start();
    let app = Cli::at(&emulator.url());
    let table = app.run(&["policy", "--commands", "up,status", "--account", "123456789012"]).ok().stdout;
    assert!(!table.contains("pricing:GetProducts"), "{table}");
    let live = app.run(&["--prices", "live", "policy", "--commands", "up,status", "--account", "123456789012"]).ok();
    let policy: Value = serde_json::from_str(&live.stdout).unwrap();
    let statement =
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Action"].to_string().contains("pricing:"));
    let statement = statement.unwrap_or_else(|| panic!("{policy}"));
    assert_eq!(statement["Action"], json!(["pricing:GetProducts"]), "{statement}");
    assert_eq!(statement["Resource"], json!(["*"]), "{statement}");
}
