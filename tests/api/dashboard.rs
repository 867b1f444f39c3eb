//! `/dashboard`: the page and its files are served from the binary without a key, with
//! their content types, a strict Content-Security-Policy and revalidation, are
//! counted like every route, and load nothing from another origin. What the page
//! shows is checked in a real browser by loadtest/dashboard.sh.

use std::time::Duration;

use awc::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::helpers::{test_settings, TestApp};

/// Each path and the content type it is served with.
const FILES: [(&str, &str); 5] = [
    ("/dashboard", "text/html; charset=utf-8"),
    ("/dashboard/", "text/html; charset=utf-8"),
    ("/dashboard/app.js", "text/javascript; charset=utf-8"),
    ("/dashboard/style.css", "text/css; charset=utf-8"),
    ("/dashboard/icon.svg", "image/svg+xml"),
];

struct Raw {
    status: StatusCode,
    headers: awc::http::header::HeaderMap,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// A request with no credentials at all, its body as text.
async fn fetch(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, format!("{}{path}", app.address));
    for header in headers {
        request = request.insert_header(*header);
    }
    let mut response = request.send().await.expect("request");
    let body = response.body().limit(1 << 20).await.expect("body");
    Raw {
        status: response.status(),
        headers: response.headers().clone(),
        body: String::from_utf8(body.to_vec()).expect("text"),
    }
}

#[actix_web::test]
async fn the_page_and_its_files_are_served_without_a_key_with_their_types_and_policy() {
    let app = TestApp::spawn().await;
    for (path, content_type) in FILES {
        let reply = fetch(&app, "GET", path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.header("content-type"), content_type, "{path}");
        assert!(!reply.body.is_empty(), "{path}");
        let policy = reply.header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.contains(directive),
                "{path}: {directive} not in {policy}"
            );
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(reply.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(reply.header("cache-control"), "no-cache", "{path}");
        assert!(!reply.header("x-request-id").is_empty(), "{path}");

        // Revalidation: the same version is a 304 without a body.
        let etag = reply.header("etag");
        assert!(etag.starts_with('"') && etag.len() > 2, "{path}: {etag:?}");
        let again = fetch(&app, "GET", path, &[("if-none-match", etag.as_str())]).await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty(), "{path}");
        let stale = fetch(&app, "GET", path, &[("if-none-match", "\"old\"")]).await;
        assert_eq!(stale.status, 200, "{path}");

        let head = fetch(&app, "HEAD", path, &[]).await;
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.header("content-type"), content_type, "{path}");
        assert!(head.body.is_empty(), "{path}");
    }
    // The page is public; the data is not.
    let data = fetch(&app, "GET", "/api/v1/windows/current", &[]).await;
    assert_eq!(data.status, 401);
    let other = fetch(&app, "GET", "/dashboard/secrets.js", &[]).await;
    assert_eq!(other.status, 404);
    // Read-only, like every resource here that is not written to.
    let post = fetch(&app, "POST", "/dashboard", &[]).await;
    assert_eq!(post.status, 405);
    app.stop().await;
}

#[actix_web::test]
async fn the_page_loads_and_calls_nothing_but_its_own_origin() {
    let app = TestApp::spawn().await;
    for (path, _) in FILES {
        let body = fetch(&app, "GET", path, &[]).await.body;
        // The SVG namespace is a name, not an address: nothing is fetched from it.
        let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for scheme in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!body.contains(scheme), "{path} names {scheme}");
        }
    }
    let page = fetch(&app, "GET", "/dashboard", &[]).await.body;
    // No inline script or style (the policy would refuse them anyway): every script
    // is a file of this origin.
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=\"/dashboard/").count()
    );
    assert!(!page.contains("<style"));
    assert!(!page.contains(" style="));
    assert!(!page.contains(" onclick="));
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let target = &page[at + attribute.len()..];
            assert!(
                target.starts_with("/dashboard/"),
                "{}",
                &target[..target.find('"').unwrap_or(target.len())]
            );
        }
    }
    // The script calls the API and the feed of the origin it came from, with the key.
    let script = fetch(&app, "GET", "/dashboard/app.js", &[]).await.body;
    for call in ["/api/v1/", "Bearer ", "/ws?token=", "sessionStorage"] {
        assert!(script.contains(call), "{call} not in the script");
    }
    assert!(!script.contains("localStorage"));
    app.stop().await;
}

#[actix_web::test]
async fn dashboard_requests_are_observed_like_every_route() {
    let app = TestApp::spawn().await;
    let counted = |path: &str, status: &str| {
        app.metrics
            .http_requests
            .with_label_values(&["GET", path, status])
            .get()
    };
    let before = counted("/dashboard/app.js", "200");
    fetch(&app, "GET", "/dashboard", &[]).await;
    fetch(&app, "GET", "/dashboard/app.js", &[]).await;
    fetch(&app, "GET", "/dashboard/app.js", &[]).await;
    assert_eq!(counted("/dashboard/app.js", "200"), before + 2);
    assert!(counted("/dashboard", "200") >= 1);
    app.stop().await;
}

#[actix_web::test]
async fn the_open_window_says_when_the_timer_cuts_it_off() {
    let mut settings = test_settings();
    settings.window_duration_ms = 600_000;
    let app = TestApp::spawn_with_settings(settings).await;
    let closes_at = |reply: &crate::helpers::Reply| {
        let text = reply.str("closes_at");
        DateTime::parse_from_rfc3339(&text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    };
    let current = app.get("/api/v1/windows/current").await;
    assert_eq!(current.status, 200, "{}", current.body);
    let first = closes_at(&current);
    let left = first - Utc::now();
    assert!(
        left > chrono::Duration::seconds(590) && left <= chrono::Duration::seconds(600),
        "{left}"
    );
    // A close starts the next window's full duration.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let closed = app.post("/api/v1/windows/current/close", &json!({})).await;
    assert_eq!(closed.status, 202, "{}", closed.body);
    let next = app.get("/api/v1/windows/current").await;
    assert_eq!(next.body["id"], closed.body["next_window_id"]);
    assert!(closes_at(&next) > first);
    // A bank's key sees the same cut-off.
    let as_bank = app
        .get_as(Some(app.keys.bank("ICICI")), "/api/v1/windows/current")
        .await;
    assert_eq!(as_bank.body["closes_at"], next.body["closes_at"]);
    app.stop().await;
}
