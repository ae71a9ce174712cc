//! fargate-stack: stand up, inspect and tear down a containerised web service on AWS through the
//! AWS SDK. The binary (`main.rs`) only parses the command line and maps the outcome to an exit
//! code; everything else is here, so that the tests use the same clients and types.

pub mod access;
pub mod aws;
pub mod bill;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod graph;
pub mod model;
pub mod output;
pub mod policy;
pub mod progress;
pub mod report;
pub mod resources;
pub mod state;
pub mod url_check;
pub mod wait;
