//! fargate-stack: parse, run, map the outcome to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use fargate_stack::{cli, commands};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    init_logging(cli.verbose);
    let verbose = cli.verbose > 0;
    match commands::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            if let (true, commands::CommandError::Stack(e)) = (verbose, &err) {
                if let Some(detail) = e.detail() {
                    eprintln!("details: {detail}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// Warnings by default; -v adds our debug lines, -vv the SDK's. RUST_LOG overrides.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,aws_config=error",
        1 => "warn,fargate_stack=debug",
        _ => "debug,hyper=info,h2=info,rustls=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}
