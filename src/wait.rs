//! Waits and retries with deadlines: polling a state until it settles, retrying a call while AWS
//! answers with a transient code. Throttling and 5xx are retried by the SDK's own retry layer
//! (see `aws.rs`); this module handles what AWS means as "not yet".

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::StackError;
use crate::progress::Line;

/// Default budgets, after terraform-provider-aws.
pub mod budget {
    use std::time::Duration;
    pub const NAT_AVAILABLE: Duration = Duration::from_secs(10 * 60);
    pub const NAT_DELETED: Duration = Duration::from_secs(30 * 60);
    pub const ALB_ACTIVE: Duration = Duration::from_secs(10 * 60);
    pub const ALB_DELETED: Duration = Duration::from_secs(10 * 60);
    pub const TABLE: Duration = Duration::from_secs(10 * 60);
    pub const SERVICE: Duration = Duration::from_secs(20 * 60);
    pub const SECURITY_GROUP: Duration = Duration::from_secs(15 * 60);
    pub const NETWORK: Duration = Duration::from_secs(20 * 60);
    pub const IAM_PROPAGATION: Duration = Duration::from_secs(2 * 60);
    pub const PROPAGATION: Duration = Duration::from_secs(5 * 60);
}

/// Exponential backoff with jitter: first delay `start`, doubling, capped at `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(start: Duration, cap: Duration) -> Backoff {
        Backoff { next: start, cap }
    }

    /// The default for polling and retries: 0.5 s doubling up to 10 s (terraform's cadence).
    pub fn standard() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(10))
    }

    /// The next delay, with up to ±20% jitter so concurrent pollers don't align.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        let jitter = 0.8 + fastrand::f64() * 0.4;
        base.mul_f64(jitter)
    }
}

/// What one poll of a resource found.
pub enum Poll<T> {
    Ready(T),
    /// Not there yet; the string is the AWS state shown to the user (e.g. `pending`).
    Pending(String),
}

/// Poll `check` until it is ready or `budget` runs out; shows each state on `line`.
pub async fn until<T, F, Fut>(
    line: &Line,
    resource: &str,
    goal: &str,
    budget: Duration,
    mut check: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, StackError>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::standard();
    loop {
        match check().await? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(state) => {
                line.waiting(&state);
                let delay = backoff.next_delay();
                if started.elapsed() + delay > budget {
                    return Err(StackError::Timeout {
                        resource: resource.to_string(),
                        goal: goal.to_string(),
                        waited: started.elapsed(),
                        last: state,
                    });
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Run `op`, retrying while `transient` says its error is temporary, for at most `budget`,
/// then once more (AWS may have settled during the last sleep). The last error names the resource.
pub async fn retry_while<T, F, Fut, P>(
    line: &Line,
    resource: &str,
    budget: Duration,
    transient: P,
    mut op: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StackError>>,
    P: Fn(&StackError) -> bool,
{
    let started = Instant::now();
    let mut backoff = Backoff::standard();
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if transient(&err) => {
                let delay = backoff.next_delay();
                if started.elapsed() + delay > budget {
                    return match op().await {
                        Ok(value) => Ok(value),
                        Err(last) if transient(&last) => Err(StackError::Timeout {
                            resource: resource.to_string(),
                            goal: "accept the request".to_string(),
                            waited: started.elapsed(),
                            last: last.to_string(),
                        }),
                        Err(other) => Err(other),
                    };
                }
                line.waiting(err.code().unwrap_or("retrying"));
                tokio::time::sleep(delay).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Retry while the AWS error code is one of `codes`.
pub async fn retry_codes<T, F, Fut>(
    line: &Line,
    resource: &str,
    budget: Duration,
    codes: &[&str],
    op: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StackError>>,
{
    retry_while(line, resource, budget, |e| e.has_code(codes), op).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn aws(code: &str) -> StackError {
        StackError::Aws {
            action: "delete".into(),
            resource: "sg-1".into(),
            code: code.into(),
            message: "m".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_to_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        for (d, base) in delays.iter().zip([100u128, 200, 400, 400, 400]) {
            assert!(*d >= base * 8 / 10 && *d <= base * 12 / 10, "{delays:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_codes_then_succeeds() {
        let calls = AtomicU32::new(0);
        let line = Line::hidden();
        let out = retry_codes(&line, "sg-1", Duration::from_secs(60), &["DependencyViolation"], || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(aws("DependencyViolation"))
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((out, calls.load(Ordering::SeqCst)), (7, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn other_codes_fail_at_once() {
        let calls = AtomicU32::new(0);
        let line = Line::hidden();
        let err = retry_codes(&line, "sg-1", Duration::from_secs(60), &["DependencyViolation"], || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(aws("UnauthorizedOperation"))
        })
        .await
        .unwrap_err();
        assert_eq!(err.code(), Some("UnauthorizedOperation"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_gives_a_timeout_naming_resource_and_last_error() {
        let line = Line::hidden();
        let started = tokio::time::Instant::now();
        let err = retry_codes(&line, "sg-1", Duration::from_secs(30), &["DependencyViolation"], || async {
            Err::<(), _>(aws("DependencyViolation"))
        })
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sg-1") && msg.contains("DependencyViolation"), "{msg}");
        assert!(started.elapsed() <= Duration::from_secs(31), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn poll_reports_last_state_on_timeout() {
        let line = Line::hidden();
        let err = until(&line, "nat-1", "become available", Duration::from_secs(20), || async {
            Ok::<Poll<()>, StackError>(Poll::Pending("pending".into()))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("last seen: pending"), "{err}");
    }
}
