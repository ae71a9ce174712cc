//! The proof that a rollout serves: once `up`, `deploy` or `rollback` saw it complete, one HTTP GET
//! of the stack's URL (the HTTPS one when there is one) through the load balancer must answer with
//! a status below 500 within a budget.
//!
//! What an attempt ends with decides what follows ([`verdict`]): an answer under 500 (a 3xx or 4xx
//! included: the service answers) passes; a 5xx, a refused connection to an address the name
//! resolved to, or a TLS failure fail at once; a name that does not resolve yet (a new load
//! balancer's takes a minute or two to reach DNS), no answer within the attempt's timeout, or a
//! broken connection are tried again until the budget is spent.
//!
//! HTTP is hyper's, through the same hyper-util connector and rustls (aws-lc-rs, the system's
//! roots) the AWS SDK already uses: no second TLS stack. `--resolve HOST:PORT:ADDR` (as curl's)
//! makes the connector's resolver answer ADDR for that name and port, so an emulator's stand-in or
//! private DNS can be checked; the request still names the host (Host header, TLS SNI and
//! certificate check).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin as Pinned;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::{HttpConnector, HttpInfo};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::output::printable;

/// The whole check's default budget: a new load balancer's name takes a minute or two to resolve.
pub const DEFAULT_BUDGET: &str = "5m";
/// The longest budget `--verify-timeout` takes.
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);
/// One attempt: connect, TLS, the answer's head and the first part of its body.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between attempts that may pass later.
const PAUSE: Duration = Duration::from_secs(5);
/// How much of an answer's body is read, and how much of it a failure shows.
const BODY_READ: usize = 4096;
const BODY_SHOWN: usize = 300;

/// `--resolve HOST:PORT:ADDR`: connect to ADDR for HOST (`*`: any name) on PORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub host: String,
    pub port: u16,
    pub addr: IpAddr,
}

impl Pin {
    /// curl's form: `HOST:PORT:ADDR`, ADDR an IPv4 or IPv6 address (in brackets or not).
    pub fn parse(value: &str) -> Result<Pin, String> {
        const EXPECTED: &str =
            "expected HOST:PORT:ADDR as curl's --resolve, e.g. app.example.com:443:10.0.1.5 or *:80:127.0.0.1";
        let mut parts = value.splitn(3, ':');
        let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EXPECTED.into());
        };
        let host_ok = host == "*"
            || (!host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        let port = port.parse::<u16>().ok().filter(|p| *p > 0);
        let addr = addr.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        match (host_ok, port, addr) {
            (true, Some(port), Some(addr)) => {
                Ok(Pin { host: host.trim_end_matches('.').to_ascii_lowercase(), port, addr })
            }
            _ => Err(EXPECTED.into()),
        }
    }

    /// The pin for this URL's host and port: one naming it, else a `*` one.
    fn for_url<'a>(pins: &'a [Pin], host: &str, port: u16) -> Option<&'a Pin> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let at_port = || pins.iter().filter(|p| p.port == port);
        at_port().find(|p| p.host == host).or_else(|| at_port().find(|p| p.host == "*"))
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V6(a) => write!(f, "{}:{}:[{a}]", self.host, self.port),
            IpAddr::V4(a) => write!(f, "{}:{}:{a}", self.host, self.port),
        }
    }
}

/// What the command line asks of the check.
#[derive(Debug, Clone)]
pub struct Asked {
    pub skip: bool,
    pub pins: Vec<Pin>,
    pub budget: Duration,
    /// The AWS endpoint override (an emulator), if any: the names it returns are not real.
    pub endpoint: Option<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answered(Answer),
    /// The name does not resolve (yet).
    NotResolved(String),
    /// The name resolved and the address refused the connection.
    Refused(String),
    /// No answer within the attempt's timeout.
    TimedOut,
    /// The TLS handshake failed: a certificate that does not match the name or is not trusted.
    Tls(String),
    /// Anything else on the way (a reset, an unreachable network): it may pass later.
    Broken(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The status's reason phrase (`OK`, `Service Unavailable`).
    pub reason: String,
    pub latency: Duration,
    /// Where the answer came from.
    pub address: Option<SocketAddr>,
    /// A redirect's target.
    pub location: Option<String>,
    /// The first part of the body (lossy UTF-8).
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Retry,
}

/// What an attempt's outcome means: only a definite bad answer fails.
pub fn verdict(attempt: &Attempt) -> Verdict {
    match attempt {
        Attempt::Answered(a) if a.status >= 500 => Verdict::Fail,
        Attempt::Answered(_) => Verdict::Pass,
        Attempt::Refused(_) | Attempt::Tls(_) => Verdict::Fail,
        Attempt::NotResolved(_) | Attempt::TimedOut | Attempt::Broken(_) => Verdict::Retry,
    }
}

/// The check's result, in the reports of `up`, `deploy` and `rollback`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct UrlCheck {
    pub url: String,
    /// Passed, or skipped.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time to the answer's head, of the attempt that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The address that answered (or was refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `--resolve`'s pin that chose the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// On a failure: the first part of the answer's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    pub elapsed_ms: u64,
}

impl UrlCheck {
    pub fn skipped(url: &str, why: &str) -> UrlCheck {
        UrlCheck { url: url.to_string(), ok: true, skipped: Some(why.to_string()), ..Default::default() }
    }

    fn failed(url: &str, error: String) -> UrlCheck {
        UrlCheck { url: url.to_string(), error: Some(error), ..Default::default() }
    }

    /// A failed check (not a skipped one).
    pub fn failure(&self) -> Option<&str> {
        self.error.as_deref().filter(|_| !self.ok)
    }

    /// `GET URL answered 200 OK in 12 ms (127.0.0.1:8080, pinned by --resolve)`, for a check made.
    pub fn summary(&self) -> Option<String> {
        let status = self.status?;
        let mut line = format!(
            "GET {} answered {status} {} in {} ms",
            self.url,
            self.reason.as_deref().unwrap_or_default(),
            self.latency_ms.unwrap_or_default()
        );
        if let Some(location) = &self.location {
            line.push_str(&format!(" (redirect to {})", printable(location)));
        }
        match (&self.address, &self.resolve) {
            (Some(a), Some(pin)) => line.push_str(&format!(" from {a} (--resolve {pin})")),
            (Some(a), None) => line.push_str(&format!(" from {a}")),
            _ => {}
        }
        Some(line)
    }

    fn of_answer(&mut self, answer: &Answer) {
        self.status = Some(answer.status);
        self.reason = Some(answer.reason.clone());
        self.latency_ms = Some(answer.latency.as_millis() as u64);
        self.address = answer.address.map(|a| a.to_string());
        self.location = answer.location.clone();
    }
}

/// GET `url` until an attempt passes or fails, or the budget is spent.
pub async fn check(url: &str, pins: &[Pin], budget: Duration, waiting: &dyn Fn(&str)) -> UrlCheck {
    let target = match Target::new(url, pins) {
        Ok(target) => target,
        Err(e) => return UrlCheck::failed(url, e),
    };
    let start = UrlCheck { url: url.to_string(), resolve: target.pin.clone(), ..Default::default() };
    attempts(start, budget, |timeout| target.attempt(timeout), &|a| target.says(a), waiting).await
}

/// Attempts (each within [`ATTEMPT_TIMEOUT`] and what is left) until one passes or fails, or the
/// budget is spent; [`PAUSE`] between them. `says` words an attempt that did not pass.
async fn attempts<F, Fut>(
    mut result: UrlCheck,
    budget: Duration,
    mut attempt: F,
    says: &dyn Fn(&Attempt) -> String,
    waiting: &dyn Fn(&str),
) -> UrlCheck
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt>,
{
    // Tokio's clock: the same as the system's, and one a test can advance.
    let started = tokio::time::Instant::now();
    loop {
        let left = budget.saturating_sub(started.elapsed());
        let outcome = attempt(ATTEMPT_TIMEOUT.min(left).max(Duration::from_millis(100))).await;
        result.attempts += 1;
        result.elapsed_ms = started.elapsed().as_millis() as u64;
        if let Attempt::Answered(answer) = &outcome {
            result.of_answer(answer);
        }
        let left = budget.saturating_sub(started.elapsed());
        match verdict(&outcome) {
            Verdict::Pass => {
                result.ok = true;
                return result;
            }
            Verdict::Fail => {
                if let Attempt::Answered(answer) = &outcome {
                    result.body = Some(excerpt(&answer.body));
                }
                result.error = Some(says(&outcome));
                return result;
            }
            Verdict::Retry if left.is_zero() => {
                result.error = Some(format!(
                    "no answer from {} within --verify-timeout {}s ({} attempts); the last: {}",
                    result.url,
                    budget.as_secs(),
                    result.attempts,
                    says(&outcome)
                ));
                return result;
            }
            Verdict::Retry => {
                waiting(&format!("{}; again in {}s", says(&outcome), PAUSE.min(left).as_secs()));
                tokio::time::sleep(PAUSE.min(left)).await;
            }
        }
    }
}

/// A body's first part as one printable line.
fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(BODY_SHOWN).collect();
    let more = if cut.len() < one_line.len() { "..." } else { "" };
    format!("{}{more}", printable(&cut))
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;

/// The URL, parsed, with its client.
struct Target {
    url: String,
    uri: Uri,
    client: Client<Connector, Empty<Bytes>>,
    /// `--resolve`'s pin that applies, as given.
    pin: Option<String>,
}

impl Target {
    fn new(url: &str, pins: &[Pin]) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("the stack's URL {url} is not a URL: {e}"))?;
        let host = uri.host().unwrap_or_default().to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let pin = Pin::for_url(pins, &host, port);
        if pin.is_none() && !pins.is_empty() {
            let given: Vec<String> = pins.iter().map(Pin::to_string).collect();
            return Err(format!(
                "--resolve {} does not name the URL's host and port ({host}:{port}): nothing was requested; pin \
                 {host}:{port}:ADDR (or *:{port}:ADDR)",
                given.join(", --resolve ")
            ));
        }
        let client = client(pin.map(|p| p.addr), https)?;
        Ok(Target { url: url.to_string(), uri, client, pin: pin.map(Pin::to_string) })
    }

    /// One GET, within `timeout`.
    async fn attempt(&self, timeout: Duration) -> Attempt {
        let request = Request::get(self.uri.clone())
            .header(hyper::header::USER_AGENT, concat!("fargate-stack/", env!("CARGO_PKG_VERSION"), " url-check"))
            .header(hyper::header::ACCEPT, "*/*")
            .body(Empty::new());
        let Ok(request) = request else { return Attempt::Broken("the request could not be made".into()) };
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| classify(&e))?;
            let latency = started.elapsed();
            let status = response.status();
            let address = response.extensions().get::<HttpInfo>().map(HttpInfo::remote_addr);
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            let body = first_part(response.into_body()).await;
            Ok::<Attempt, Attempt>(Attempt::Answered(Answer {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or_default().to_string(),
                latency,
                address,
                location,
                body,
            }))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(failed)) => failed,
            Err(_) => Attempt::TimedOut,
        }
    }

    /// What an attempt that did not pass says.
    fn says(&self, attempt: &Attempt) -> String {
        let url = &self.url;
        let pinned = self.pin.as_ref().map(|p| format!(" (--resolve {p})")).unwrap_or_default();
        match attempt {
            Attempt::Answered(a) => {
                let from = a.address.map(|a| format!(" from {a}")).unwrap_or_default();
                format!(
                    "GET {url} answered {} {} in {} ms{from}{pinned}: body: {}",
                    a.status,
                    a.reason,
                    a.latency.as_millis(),
                    match excerpt(&a.body) {
                        b if b.is_empty() => "(empty)".to_string(),
                        b => format!("\"{b}\""),
                    }
                )
            }
            Attempt::NotResolved(e) => format!("{url}: the name does not resolve yet ({e})"),
            Attempt::Refused(e) => format!("GET {url}{pinned}: connection refused ({e})"),
            Attempt::TimedOut => format!("GET {url}{pinned}: no answer within {}s", ATTEMPT_TIMEOUT.as_secs()),
            Attempt::Tls(e) => format!("GET {url}{pinned}: TLS failed ({e})"),
            Attempt::Broken(e) => format!("GET {url}{pinned}: {e}"),
        }
    }
}

/// The first [`BODY_READ`] bytes of a body (what a failure shows), as text.
async fn first_part(mut body: hyper::body::Incoming) -> String {
    let mut read: Vec<u8> = vec![];
    while read.len() < BODY_READ {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    read.truncate(BODY_READ);
    String::from_utf8_lossy(&read).into_owned()
}

/// A client over rustls with the system's roots (as the SDK's); HTTP only needs none.
fn client(pin: Option<IpAddr>, https: bool) -> Result<Client<Connector, Empty<Bytes>>, String> {
    let mut http = HttpConnector::new_with_resolver(Resolver { pin, system: GaiResolver::new() });
    http.enforce_http(false);
    http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider) {
        Ok(builder) => builder,
        Err(e) if https => return Err(format!("no trusted root certificates on this machine to check TLS with: {e}")),
        Err(_) => {
            let provider = rustls::crypto::aws_lc_rs::default_provider();
            let config = rustls::ClientConfig::builder_with_provider(provider.into())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let connector = tls.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The system's resolver, or the pinned address: its own error type, so that a name that does
/// not resolve (yet) is told apart from a connection that fails.
#[derive(Clone)]
struct Resolver {
    pin: Option<IpAddr>,
    system: GaiResolver,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotResolved(String);

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolver {
    type Response = Addrs;
    type Error = NotResolved;
    type Future = Pinned<Box<dyn Future<Output = Result<Addrs, NotResolved>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), NotResolved>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        // Port 0: the connector puts the URL's port on it.
        if let Some(addr) = self.pin {
            return Box::pin(std::future::ready(Ok(vec![SocketAddr::new(addr, 0)].into_iter())));
        }
        let mut system = self.system.clone();
        Box::pin(async move {
            let found = tower_service::Service::call(&mut system, name).await;
            found.map(|addrs| addrs.collect::<Vec<_>>().into_iter()).map_err(|e| NotResolved(e.to_string()))
        })
    }
}

/// An attempt that ended without an answer, from the error's chain of causes.
pub fn classify(error: &(dyn std::error::Error + 'static)) -> Attempt {
    let mut said: Vec<String> = vec![];
    let mut cause = Some(error);
    let mut kind = None;
    while let Some(e) = cause {
        let text = e.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
        if let Some(e) = e.downcast_ref::<NotResolved>() {
            return Attempt::NotResolved(e.to_string());
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            kind = kind.or(Some(Kind::Tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
                kind = kind.or(Some(Kind::Tls));
                said.push(io.get_ref().map(ToString::to_string).unwrap_or_default());
            }
            kind = kind.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(Kind::Refused),
                std::io::ErrorKind::TimedOut => Some(Kind::TimedOut),
                _ => None,
            });
        }
        cause = e.source();
    }
    let said = said.join(": ");
    match kind {
        Some(Kind::Tls) => Attempt::Tls(said),
        Some(Kind::Refused) => Attempt::Refused(said),
        Some(Kind::TimedOut) => Attempt::TimedOut,
        None => Attempt::Broken(said),
    }
}

enum Kind {
    Tls,
    Refused,
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Attempt {
        Attempt::Answered(Answer {
            status,
            reason: String::new(),
            latency: Duration::from_millis(3),
            address: None,
            location: None,
            body: String::new(),
        })
    }

    #[test]
    fn only_a_definite_bad_answer_fails() {
        for ok in [200, 204, 301, 302, 401, 403, 404, 499] {
            assert_eq!(verdict(&answer(ok)), Verdict::Pass, "{ok}: the service answers");
        }
        for bad in [500, 502, 503, 504] {
            assert_eq!(verdict(&answer(bad)), Verdict::Fail, "{bad}");
        }
        assert_eq!(verdict(&Attempt::Refused("x".into())), Verdict::Fail, "refused after resolving");
        assert_eq!(verdict(&Attempt::Tls("bad certificate".into())), Verdict::Fail);
        assert_eq!(verdict(&Attempt::NotResolved("no such host".into())), Verdict::Retry, "a new name: later");
        assert_eq!(verdict(&Attempt::TimedOut), Verdict::Retry);
        assert_eq!(verdict(&Attempt::Broken("connection reset".into())), Verdict::Retry);
    }

    /// An error as hyper-util's connector wraps a cause.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapped(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn failures_are_told_apart_by_their_causes() {
        let dns = Wrapped(Box::new(NotResolved("failed to lookup address information".into())));
        assert!(matches!(classify(&dns), Attempt::NotResolved(_)));
        let refused = Wrapped(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        let Attempt::Refused(said) = classify(&refused) else { panic!("refused") };
        assert!(said.starts_with("client error (Connect): "), "{said}");
        let timed_out = Wrapped(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        assert_eq!(classify(&timed_out), Attempt::TimedOut);
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(matches!(classify(&Wrapped(Box::new(tls))), Attempt::Tls(_)));
        let reset = Wrapped(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert!(matches!(classify(&reset), Attempt::Broken(_)));
    }

    #[test]
    fn pins_read_as_curls_resolve() {
        let pin = Pin::parse("App.Example.com.:443:10.0.1.5").unwrap();
        assert_eq!((pin.host.as_str(), pin.port, pin.addr.to_string().as_str()), ("app.example.com", 443, "10.0.1.5"));
        assert_eq!(Pin::parse("*:80:[::1]").unwrap().addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(Pin::parse("h:80:::1").unwrap().to_string(), "h:80:[::1]");
        for bad in
            ["", "h", "h:80", "h:80:", "h:0:1.2.3.4", "h:x:1.2.3.4", "h:80:host", "h h:80:1.2.3.4", ":80:1.2.3.4"]
        {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
        let pins = [Pin::parse("*:80:127.0.0.2").unwrap(), Pin::parse("a.example:80:127.0.0.3").unwrap()];
        assert_eq!(Pin::for_url(&pins, "A.example", 80).unwrap().addr.to_string(), "127.0.0.3", "the name first");
        assert_eq!(Pin::for_url(&pins, "b.example", 80).unwrap().addr.to_string(), "127.0.0.2");
        assert!(Pin::for_url(&pins, "a.example", 443).is_none(), "another port");
    }

    #[tokio::test]
    async fn a_pin_for_another_name_requests_nothing() {
        let pins = [Pin::parse("other.example:80:127.0.0.1").unwrap()];
        let checked = check("http://lb.example", &pins, Duration::from_secs(1), &|_| {}).await;
        let error = checked.failure().unwrap();
        assert!(error.contains("does not name the URL's host and port (lb.example:80)"), "{error}");
        assert_eq!(checked.attempts, 0);
    }

    /// The loop over attempts whose outcomes are given in turn.
    async fn run(outcomes: Vec<Attempt>, budget: Duration) -> (UrlCheck, Vec<String>) {
        let outcomes = std::sync::Mutex::new(outcomes.into_iter());
        let waits = std::sync::Mutex::new(vec![]);
        let start = UrlCheck { url: "http://lb.example".into(), ..Default::default() };
        let next = |_| std::future::ready(outcomes.lock().unwrap().next().expect("no more attempts expected"));
        let says = |a: &Attempt| format!("{a:?}");
        let checked = attempts(start, budget, next, &says, &|w| waits.lock().unwrap().push(w.to_string())).await;
        (checked, waits.into_inner().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_name_not_resolving_yet_is_tried_again_within_the_budget() {
        let not_yet = || Attempt::NotResolved("no such host".into());
        let (checked, waits) = run(vec![not_yet(), not_yet(), answer(200)], Duration::from_secs(60)).await;
        assert!(checked.ok && checked.failure().is_none(), "{checked:?}");
        assert_eq!((checked.attempts, checked.status), (3, Some(200)));
        assert_eq!(waits.len(), 2);
        assert!(waits[0].contains("NotResolved") && waits[0].ends_with("again in 5s"), "{waits:?}");
        assert_eq!(checked.elapsed_ms, 10_000, "two pauses of 5 s");

        // Never resolving: the budget decides (13 attempts in 60 s, 5 s apart), and says what the last was.
        let (checked, _) = run(vec![not_yet(); 13], Duration::from_secs(60)).await;
        let error = checked.failure().unwrap();
        assert!(error.starts_with("no answer from http://lb.example within --verify-timeout 60s (13 attempts)"));
        assert!(error.contains("NotResolved"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_definite_bad_answer_fails_at_once() {
        let (checked, waits) = run(vec![Attempt::Refused("connection refused".into())], Duration::from_secs(60)).await;
        assert_eq!((checked.ok, checked.attempts, waits.len()), (false, 1, 0));
        let mut unavailable = answer(503);
        if let Attempt::Answered(a) = &mut unavailable {
            a.body = "<h1>503 Service\nTemporarily Unavailable</h1>".into();
        }
        let (checked, _) = run(vec![Attempt::TimedOut, unavailable], Duration::from_secs(60)).await;
        assert_eq!((checked.ok, checked.attempts, checked.status), (false, 2, Some(503)));
        assert_eq!(checked.body.as_deref(), Some("<h1>503 Service Temporarily Unavailable</h1>"));
        assert!(checked.failure().is_some());
    }

    #[test]
    fn a_failure_shows_the_first_part_of_the_body_on_one_line() {
        assert_eq!(excerpt("<html>\n  <h1>503</h1>\r\n</html>"), "<html> <h1>503</h1> </html>");
        let long = "x".repeat(BODY_SHOWN + 50);
        assert_eq!(excerpt(&long), format!("{}...", "x".repeat(BODY_SHOWN)));
        assert_eq!(excerpt("a\u{1b}[31mb"), printable("a\u{1b}[31mb"));
    }
}
