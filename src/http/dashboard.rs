//! `GET /dashboard`: the live dashboard, a static page whose HTML, CSS and JavaScript
//! are compiled into the binary (`dashboard/`). The page needs no key — it holds no
//! data; the key is typed into its sign-in form, kept in the tab's `sessionStorage`
//! and sent by the page's script to `/api/v1` (`Authorization: Bearer`) and `/ws`
//! (`?token=`), where the usual checks apply. Nothing is fetched from elsewhere, and
//! the Content-Security-Policy lets the page load and call only this origin.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// Everything the page may load or call: scripts, styles and images of this origin,
/// `fetch` and the WebSocket to this origin (`'self'` covers `ws:`/`wss:` to the same
/// host), no inline script or style, no plugins, no framing, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: &[u8] = include_bytes!("dashboard/index.html");

/// The page (also at `/dashboard/`) and what it loads, by path.
static ASSETS: [Asset; 5] = [
    Asset {
        path: "/dashboard",
        content_type: "text/html; charset=utf-8",
        body: INDEX,
    },
    Asset {
        path: "/dashboard/",
        content_type: "text/html; charset=utf-8",
        body: INDEX,
    },
    Asset {
        path: "/dashboard/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/app.js"),
    },
    Asset {
        path: "/dashboard/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("dashboard/style.css"),
    },
    Asset {
        path: "/dashboard/icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("dashboard/icon.svg"),
    },
];

/// The assets' entity tags (a digest of their bytes), made once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// The dashboard's routes (GET and HEAD), outside `/api/v1`: no key needed. They pass
/// through the same request observation and address rate limit as every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for (index, asset) in ASSETS.iter().enumerate() {
        cfg.service(
            web::resource(asset.path).route(
                web::route()
                    .guard(guard::Any(guard::Get()).or(guard::Head()))
                    .to(move |req: HttpRequest| async move { serve(&req, asset, index) }),
            ),
        );
    }
}

/// The paths `routes` serves, with their content types.
pub fn assets() -> impl Iterator<Item = (&'static str, &'static str)> {
    ASSETS.iter().map(|asset| (asset.path, asset.content_type))
}

/// The paths `routes` serves.
pub fn paths() -> impl Iterator<Item = &'static str> {
    assets().map(|(path, _)| path)
}

/// The asset, or `304` when the client holds this version. Clients revalidate every
/// time (`no-cache`): a new binary's page is picked up at once, and an unchanged one
/// costs a `304`.
fn serve(req: &HttpRequest, asset: &Asset, index: usize) -> HttpResponse {
    let etag = &etags()[index];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ))
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let page = std::str::from_utf8(INDEX).unwrap();
        for path in [
            "/dashboard/app.js",
            "/dashboard/style.css",
            "/dashboard/icon.svg",
        ] {
            assert!(page.contains(path), "{path} not in the page");
            assert!(ASSETS.iter().any(|a| a.path == path), "{path} not served");
        }
    }

    #[test]
    fn entity_tags_differ_between_files() {
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        // The index is served twice, the other files once each.
        let mut distinct = tags.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), ASSETS.len() - 1);
    }
}
