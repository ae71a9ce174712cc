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

/// How long to sleep before the next poll or retry: a tenth of the time already waited, between
/// 100 ms and 3 s, with a little jitter downwards so concurrent pollers don't align. Waiting in
/// proportion keeps short waits cheap and quick (a 1-second IAM hiccup is seen within ~0.1 s);
/// the 3 s cap bounds how late the last poll of a long wait sees AWS ready (a load balancer
/// after 2-3 minutes), at about 100 calls for a 3-minute wait.
#[derive(Debug, Clone)]
pub struct Cadence {
    min: Duration,
    max: Duration,
    fraction: f64,
}

impl Cadence {
    pub fn standard() -> Cadence {
        Cadence { min: Duration::from_millis(100), max: Duration::from_secs(3), fraction: 0.1 }
    }

    pub fn next_delay(&self, waited: Duration) -> Duration {
        let base = waited.mul_f64(self.fraction).clamp(self.min, self.max);
        base.mul_f64(0.9 + fastrand::f64() * 0.1)
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
    let cadence = Cadence::standard();
    loop {
        match check().await? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(state) => {
                line.waiting(&state);
                let delay = cadence.next_delay(started.elapsed());
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
    let cadence = Cadence::standard();
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if transient(&err) => {
                let delay = cadence.next_delay(started.elapsed());
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
    fn cadence_is_a_tenth_of_the_wait_between_bounds() {
        let c = Cadence::standard();
        let ms = |waited: u64| c.next_delay(Duration::from_millis(waited)).as_millis();
        for (waited, lo, hi) in
            [(0, 90, 100), (500, 90, 100), (5_000, 450, 500), (20_000, 1_800, 2_000), (600_000, 2_700, 3_000)]
        {
            let d = ms(waited);
            assert!(d >= lo && d <= hi, "after {waited} ms: {d} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polling_sees_readiness_within_a_tenth_or_three_seconds() {
        // Ready after 2 s (IAM), 20 s (health checks), 150 s (an ALB), 10 min (a slow NAT): the poll
        // that sees it comes at most 10% (short waits) or 3 s (long ones) later.
        for (ready_secs, max_calls) in [(2, 25), (20, 45), (150, 100), (600, 260)] {
            let line = Line::hidden();
            let started = Instant::now();
            let ready_at = Duration::from_secs(ready_secs);
            let mut calls = 0;
            until(&line, "x", "become ready", Duration::from_secs(1800), || {
                calls += 1;
                let ready = started.elapsed() >= ready_at;
                async move { Ok::<_, StackError>(if ready { Poll::Ready(()) } else { Poll::Pending("waiting".into()) }) }
            })
            .await
            .unwrap();
            let late = started.elapsed() - ready_at;
            assert!(
                late <= ready_at.mul_f64(0.11).min(Duration::from_secs(3)),
                "ready at {ready_secs} s, seen {late:?} late"
            );
            assert!(calls <= max_calls, "ready at {ready_secs} s: {calls} polls");
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
