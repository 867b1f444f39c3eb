//! Limits on callers and on input, checked before any work is done for a request.
//!
//! **Rates** (GCRA, the `governor` crate), each with a burst of one period's worth:
//! - per client address, on every request, before any key is looked at
//!   (`--rate-per-address-per-second`);
//! - per API key, after the key is authenticated (`--rate-per-key-per-second`);
//! - failed authentications per client address (`--auth-failures-per-minute-max`):
//!   past the budget a further failure gets `429` instead of `401` until the budget
//!   refills; a valid key from the same address still passes.
//!
//! Beyond a rate the answer is `429 rate_limited` with `Retry-After` (whole seconds,
//! rounded up, at least 1).
//!
//! The client address is the TCP peer's: `X-Forwarded-For` is not trusted (there is
//! no setting naming trusted proxies), so behind a proxy every client shares the
//! proxy's address and the address limits apply to the proxy as a whole. An IPv6
//! client counts by its /64 (one host usually owns a whole /64); an IPv4-mapped IPv6
//! address counts as the IPv4 address. A request without a peer address (a test
//! request built in memory) skips the address checks.
//!
//! **Memory.** The limiters keep one small state per key or address seen. Every
//! [`SWEEP_INTERVAL`] they drop the states that are indistinguishable from fresh ones
//! (budget full again: one second after a key's or address's last request at the
//! defaults, a minute after an address's last failed authentication). So the states
//! held are at most the distinct keys and addresses (IPv6: /64s) seen in the last
//! sweep interval plus one refill period, each about 40–80 bytes (its entry in a
//! hash map sized in powers of two): a million distinct addresses in one interval
//! would take under 80 MiB. An address needs a completed TCP handshake to be seen,
//! so it cannot be spoofed into the maps.
//!
//! **Input bounds** checked here: the query string ([`QUERY_LEN_MAX`], `414
//! query_too_long`) and the nesting of JSON bodies ([`JSON_DEPTH_MAX`], `400
//! json_too_deep`, checked in `ApiError::parse_json`, through which every JSON body
//! goes). The request head is bounded by actix-http itself: 96 headers and about
//! 128 KiB (request line and headers together), beyond which it answers `431` and
//! closes the connection; neither is configurable in actix-web 4.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Weak;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};
use governor::clock::{Clock, QuantaInstant};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use super::error::ApiError;
use super::AppState;
use crate::actors::keys::AuthFailure;
use crate::domain::KeyId;

/// Deepest nesting of arrays and objects a JSON body may have. The deepest valid body
/// (a bank with its net debit caps) nests two levels.
pub const JSON_DEPTH_MAX: usize = 32;
/// Longest query string accepted, in bytes. The longest valid one (a transfer list
/// with every filter and a cursor) takes under 400 bytes.
pub const QUERY_LEN_MAX: usize = 2048;
/// How often the rate limiters forget callers whose budget is full again.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Refuses a JSON text whose arrays and objects nest deeper than [`JSON_DEPTH_MAX`].
/// One pass over the bytes, counting brackets outside strings; the text need not be
/// valid JSON (serde says what else is wrong with it).
pub fn check_json_depth(body: &[u8]) -> Result<(), ApiError> {
    // Fast path: nesting cannot exceed the number of opening brackets, and counting
    // them is one vectorised pass (a transfer has one).
    // ('[' is 0x5B, '{' is 0x7B: setting bit 0x20 maps exactly these two to '{'.)
    let opening = body.iter().filter(|&&b| b | 0x20 == b'{').count();
    if opening <= JSON_DEPTH_MAX {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > JSON_DEPTH_MAX {
                    return Err(ApiError::JsonTooDeep(JSON_DEPTH_MAX));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The rates, from the settings (each checked against its range there).
#[derive(Clone, Copy, Debug)]
pub struct RateSettings {
    pub per_key_per_second: u32,
    pub per_address_per_second: u32,
    pub auth_failures_per_minute: u32,
}

/// The rate limiters of one engine, shared by every HTTP worker.
pub struct RateLimits {
    per_key: DefaultKeyedRateLimiter<KeyId>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// A refused check does not consume the budget, so while it is spent every
    /// further failure is refused, until it refills: no separate list of blocked
    /// addresses is needed.
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(settings: RateSettings) -> Self {
        RateLimits {
            per_key: RateLimiter::keyed(Quota::per_second(nonzero(settings.per_key_per_second))),
            per_address: RateLimiter::keyed(Quota::per_second(nonzero(
                settings.per_address_per_second,
            ))),
            auth_failures: RateLimiter::keyed(Quota::per_minute(nonzero(
                settings.auth_failures_per_minute,
            ))),
        }
    }

    /// Every request: the client address's rate.
    pub fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        self.per_address
            .check_key(&address)
            .map_err(|not_until| self.refused(not_until))
    }

    /// A failed authentication from `address`: the 401 it earns, or a 429 while the
    /// address is past its budget.
    pub fn authentication_failed(&self, address: Option<IpAddr>, failure: AuthFailure) -> ApiError {
        let Some(address) = address else {
            return ApiError::Unauthenticated(failure);
        };
        match self.auth_failures.check_key(&address) {
            Ok(()) => ApiError::Unauthenticated(failure),
            Err(not_until) => self.refused(not_until),
        }
    }

    /// After authentication: the key's rate.
    pub fn check_key(&self, key: KeyId) -> Result<(), ApiError> {
        self.per_key
            .check_key(&key)
            .map_err(|not_until| self.refused(not_until))
    }

    fn refused(&self, not_until: NotUntil<QuantaInstant>) -> ApiError {
        ApiError::RateLimited {
            retry_after_seconds: seconds_rounded_up(
                not_until.wait_time_from(self.per_key.clock().now()),
            ),
        }
    }

    /// Forgets the callers whose budget is full again.
    pub fn retain_recent(&self) {
        self.per_key.retain_recent();
        self.per_address.retain_recent();
        self.auth_failures.retain_recent();
    }

    /// States held: keys, addresses, addresses with failures.
    pub fn tracked(&self) -> [usize; 3] {
        [
            self.per_key.len(),
            self.per_address.len(),
            self.auth_failures.len(),
        ]
    }

    /// Sweeps the limiters every `every` while they are in use (the task ends once
    /// the engine that holds them is gone). Call from within the actix runtime.
    pub fn sweep_every(limits: Weak<RateLimits>, every: Duration) {
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limits) = limits.upgrade() else {
                    break;
                };
                limits.retain_recent();
                let [keys, addresses, failing] = limits.tracked();
                tracing::debug!(keys, addresses, failing, "rate limiter states");
            }
        });
    }
}

/// Whole seconds, rounded up, at least 1: what `Retry-After` says.
fn seconds_rounded_up(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// The address a request counts against: the TCP peer (never `X-Forwarded-For`),
/// an IPv6 peer by its /64.
pub fn client_address(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|peer| match peer.ip().to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    })
}

/// Every request passes here first (inside `observe`, so refusals carry the request
/// id and are counted): the client address's rate, then the query string's length.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        if let Some(address) = client_address(req.request()) {
            if let Err(error) = state.rates.check_address(address) {
                return Ok(refuse(req, error));
            }
        }
    }
    if req.query_string().len() > QUERY_LEN_MAX {
        return Ok(refuse(req, ApiError::QueryTooLong(QUERY_LEN_MAX)));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Answers `req` with `error` without calling the rest of the chain.
pub fn refuse<B>(req: ServiceRequest, error: ApiError) -> ServiceResponse<EitherBody<B>> {
    let (request, _) = req.into_parts();
    let response = actix_web::ResponseError::error_response(&error);
    ServiceResponse::new(request, response).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_key: u32, per_address: u32, failures: u32) -> RateLimits {
        RateLimits::new(RateSettings {
            per_key_per_second: per_key,
            per_address_per_second: per_address,
            auth_failures_per_minute: failures,
        })
    }

    fn retry_after(error: ApiError) -> u64 {
        match error {
            ApiError::RateLimited {
                retry_after_seconds,
            } => retry_after_seconds,
            other => panic!("not rate limited: {other:?}"),
        }
    }

    #[test]
    fn nesting_up_to_the_maximum_passes_and_deeper_is_refused() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_json_depth(nested(JSON_DEPTH_MAX).as_bytes()).is_ok());
        let error = check_json_depth(nested(JSON_DEPTH_MAX + 1).as_bytes()).unwrap_err();
        assert_eq!(error.code(), "json_too_deep");
        let objects = format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40));
        assert!(check_json_depth(objects.as_bytes()).is_err());
        // Siblings do not add up: depth is nesting, not a count of brackets.
        let wide = format!("[{}]", vec!["[[]]"; 1000].join(","));
        assert!(check_json_depth(wide.as_bytes()).is_ok());
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            r#"{{"reference":"{}","note":"a \" quote then {}"}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(check_json_depth(text.as_bytes()).is_ok());
        // An escaped backslash ends before the quote, which then closes the string.
        let text = format!(r#"["\\",{}]"#, "[".repeat(40));
        assert!(check_json_depth(text.as_bytes()).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(seconds_rounded_up(Duration::ZERO), 1);
        assert_eq!(seconds_rounded_up(Duration::from_micros(20)), 1);
        assert_eq!(seconds_rounded_up(Duration::from_millis(1000)), 1);
        assert_eq!(seconds_rounded_up(Duration::from_millis(1001)), 2);
        assert_eq!(seconds_rounded_up(Duration::from_secs(60)), 60);
    }

    #[test]
    fn a_key_beyond_its_rate_is_refused_and_another_key_is_not() {
        let limits = limits(3, 1000, 20);
        let (a, b) = (
            KeyId::from_uuid(uuid::Uuid::new_v4()),
            KeyId::from_uuid(uuid::Uuid::new_v4()),
        );
        for _ in 0..3 {
            limits.check_key(a).unwrap();
        }
        assert_eq!(retry_after(limits.check_key(a).unwrap_err()), 1);
        limits.check_key(b).unwrap();
    }

    #[test]
    fn failures_past_the_budget_are_refused_until_it_refills() {
        let limits = limits(1000, 1000, 2);
        let here: IpAddr = "192.0.2.7".parse().unwrap();
        let there: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..2 {
            let error = limits.authentication_failed(Some(here), AuthFailure::Invalid);
            assert_eq!(error.code(), "key_invalid");
        }
        let error = limits.authentication_failed(Some(here), AuthFailure::Invalid);
        // Two per minute: the next failure is allowed in 30 s.
        let wait = retry_after(error);
        assert!((29..=30).contains(&wait), "{wait}");
        // Refused checks spend nothing: the next failure is still refused.
        let wait = retry_after(limits.authentication_failed(Some(here), AuthFailure::Invalid));
        assert!((1..=30).contains(&wait), "{wait}");
        let error = limits.authentication_failed(Some(there), AuthFailure::Invalid);
        assert_eq!(error.code(), "key_invalid");
        assert_eq!(limits.tracked()[2], 2);
        // Without an address nothing is counted.
        let error = limits.authentication_failed(None, AuthFailure::Missing);
        assert_eq!(error.code(), "unauthenticated");
    }

    #[test]
    fn the_sweep_forgets_callers_whose_budget_is_full_again() {
        let limits = limits(1_000_000, 1_000_000, 20);
        for n in 0..1000u32 {
            let address = IpAddr::from(n.to_be_bytes());
            limits.check_address(address).unwrap();
        }
        assert_eq!(limits.tracked()[1], 1000);
        // One cell of a million per second refills in a microsecond.
        std::thread::sleep(Duration::from_millis(5));
        limits.retain_recent();
        assert_eq!(limits.tracked()[1], 0);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_itself() {
        let request = |peer: &str| {
            actix_web::test::TestRequest::default()
                .peer_addr(peer.parse().unwrap())
                .to_http_request()
        };
        assert_eq!(
            client_address(&request("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443")),
            Some("2001:db8:1:2::".parse().unwrap())
        );
        assert_eq!(
            client_address(&request("[::ffff:192.0.2.1]:80")),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            client_address(&request("198.51.100.4:5000")),
            Some("198.51.100.4".parse().unwrap())
        );
        assert_eq!(
            client_address(&actix_web::test::TestRequest::default().to_http_request()),
            None
        );
    }

    /// The cost per request of the checks (run with `cargo test --release --lib
    /// per_request_cost -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn per_request_cost() {
        let limits = limits(u32::MAX / 2, u32::MAX / 2, 20);
        let key = KeyId::from_uuid(uuid::Uuid::new_v4());
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        let body = br#"{"sender_bank":"ICICI","receiver_bank":"ENBD","amount":"250000.00","from_currency":"INR","to_currency":"AED","sender_account":"IN12ICIC0000123456789","receiver_account":"AE070331234567890123456","reference":"invoice 1001 for goods shipped in March"}"#;
        let rounds = 2_000_000u32;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            limits.check_address(std::hint::black_box(address)).unwrap();
            limits.check_key(std::hint::black_box(key)).unwrap();
        }
        let rates = started.elapsed() / rounds;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            check_json_depth(std::hint::black_box(body)).unwrap();
        }
        let depth = started.elapsed() / rounds;
        let bank = format!(
            r#"{{"name":"First Abu Dhabi Bank","net_debit_caps":{{{}}}}}"#,
            (0..40)
                .map(|n| format!(r#""C{n:02}":{{"a":[1]}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            check_json_depth(std::hint::black_box(bank.as_bytes())).unwrap();
        }
        let scanned = started.elapsed() / rounds;
        println!(
            "rate checks (address, key): {rates:?} per request; JSON depth \
             check of a {}-byte transfer: {depth:?}; full scan of a {}-byte body with {} \
             brackets: {scanned:?}",
            body.len(),
            bank.len(),
            bank.bytes().filter(|&b| b == b'[' || b == b'{').count()
        );
    }
}
