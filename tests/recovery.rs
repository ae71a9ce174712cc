//! A run killed at any moment leaves a state file that the next `up` or `down` continues from:
//! nothing is created twice and nothing leaks.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Resources recorded in the state file right now (0 if it is absent or mid-rename).
fn recorded(cli: &Cli) -> usize {
    cli.state().and_then(|s| s["resources"].as_object().map(|r| r.len())).unwrap_or(0)
}

/// Start `args`, SIGKILL it once the number of resources the state records passes `reached`, and
/// return that number if the kill landed: `None` when the run ended on its own first.
fn kill_when(cli: &Cli, args: &[&str], reached: impl Fn(usize) -> bool) -> Option<usize> {
    use std::os::unix::process::ExitStatusExt;
    let mut child =
        cli.command(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    loop {
        let n = recorded(cli);
        if reached(n) {
            child.kill().unwrap();
            // Killed by the signal, not ended on its own a moment before it.
            return child.wait().unwrap().signal().map(|_| n);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_killed_at_any_point_resumes_without_duplicates_or_leaks() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    // Warm moto up so kill points land inside the run, not in its first-request start-up.
    Cli::new(&emulator).run(&["status"]);
    let mut killed_at = vec![];
    for at in [1, 3, 6, 9, 12, 15, 18, 21] {
        emulator.reset();
        let cli = Cli::new(&emulator);
        killed_at.extend(kill_when(&cli, &["up", "--no-wait"], |n| n >= at));
        cli.run(&["up", "--no-wait"]).ok();
        assert_exactly_one_stack(&sdk).await;
        assert_eq!(recorded(&cli), default_resources());
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, STACK).await;
        assert!(left.is_empty(), "killed at {at}: left {left:#?}");
    }
    // The kills landed, at distinct points.
    killed_at.dedup();
    assert!(killed_at.len() >= 5, "kill points {killed_at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_killed_at_any_point_finishes_on_the_next_down() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let mut killed_at = vec![];
    for at in [20, 15, 10, 5, 2] {
        emulator.reset();
        let cli = Cli::new(&emulator);
        cli.run(&["up", "--no-wait"]).ok();
        assert_eq!(recorded(&cli), default_resources(), "up recorded the stack");
        // Killed while it still has work to do: some resources deleted, some left (the state
        // file goes only once the last one has).
        let killed = kill_when(&cli, &["down", "--yes"], |n| n > 0 && n <= at);
        let killed = killed.unwrap_or_else(|| panic!("down ended before the kill at {at} or fewer resources"));
        killed_at.push(killed);
        cli.run(&["down", "--yes"]).ok();
        let left = leftovers(&sdk, STACK).await;
        assert!(left.is_empty(), "killed at {at}: left {left:#?}");
        assert!(cli.state().is_none());
    }
    killed_at.dedup();
    assert!(killed_at.len() >= 4, "kill points {killed_at:?}");
}
