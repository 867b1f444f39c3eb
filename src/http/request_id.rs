//! A request's id: the client's `X-Request-Id` when it is a sensible token, a new one
//! otherwise. The middleware sets it for the task serving the request, so that the
//! error renderer and every log line of the request can name it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use actix_web::http::header::{HeaderName, HeaderValue};

/// The header that carries a request's id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client; a longer one is replaced by our own.
const REQUEST_ID_LEN_MAX: usize = 128;

tokio::task_local! {
    /// The id of the request the current task serves (set around every handler).
    pub(super) static REQUEST_ID: RequestId;
}

/// A request's id: the client's, or `<process prefix>-<counter>`, unique per process
/// run without a random draw per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's id if it is 1 to 128 visible ASCII characters, else a new one.
    pub(super) fn from_client(value: Option<&HeaderValue>) -> Self {
        let given = value
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= REQUEST_ID_LEN_MAX)
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()));
        match given {
            Some(id) => RequestId(id.into()),
            None => RequestId::generate(),
        }
    }

    pub(super) fn generate() -> Self {
        static PREFIX: OnceLock<String> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].into());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        RequestId(format!("{prefix}-{n}").into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being served, if called while serving one.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensible_client_id_is_kept_and_anything_else_replaced() {
        let kept = RequestId::from_client(Some(&HeaderValue::from_static("abc-123")));
        assert_eq!(kept.as_str(), "abc-123");
        for bad in ["", "has space", &"x".repeat(129)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let replaced = RequestId::from_client(Some(&value));
            assert_ne!(replaced.as_str(), bad);
        }
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a, b);
        assert_eq!(a.as_str().split('-').next(), b.as_str().split('-').next());
    }
}
