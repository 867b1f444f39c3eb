//! The OpenAPI 3.1 contract, generated from the code: each handler carries its
//! `#[utoipa::path]` (parameters, body, answers and the problem codes it can give),
//! every schema is derived from the structs `views` renders and the handlers parse,
//! and what is the same for many routes (the key, rate limits, an unavailable
//! database, a body's bounds, the problem body of every error answer) is added here
//! once. The compatibility aliases are
//! copied from their canonical operation using the route list `routes` builds, so
//! the document and the served routes come from one place; a test checks that every
//! served route is documented. Served at `GET /api-docs/openapi.json`.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::Problem;
use crate::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DelTran",
        description = "Multilateral payment netting for cross-border corridors. Banks \
submit transfers; each is checked against its sender's net debit cap, gets its \
corridor's FX rate, is stored durably and joins the open clearing window. When a window \
closes the engine nets it per bank and currency and issues the settlement instructions \
that replace the gross payments.\n\n\
Money: amounts are exact decimals. They are accepted as JSON numbers or strings (never \
read through a float) and answered as strings with the currency's decimals.\n\n\
Errors are `application/problem+json` (RFC 9457) with a stable `code`; each operation \
lists the codes it can answer. Every answer carries `X-Request-Id`.\n\n\
Authentication: every `/api/v1` route and `/ws` need an API key, \
`Authorization: Bearer dtk_<id>_<secret>`. An operator key may do everything; an \
auditor key reads everything; a bank key sends as its own bank and sees only what \
concerns it (another bank's transfer, positions or instruction answer 404).\n\n\
Live feeds are a WebSocket at `GET /ws`, described on that operation.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::health::health,
        super::health::ready,
        super::health::metrics,
        document,
        super::ws::connect,
        super::transfers::submit,
        super::batch::submit_batch,
        super::transfers::list,
        super::transfers::get,
        super::transfers::cancel,
        super::transfers::return_transfer,
        super::transfers::release_held,
        super::reports::compliance,
        super::transfers::reject_held,
        super::iso20022::pacs008,
        super::iso20022::pain001,
        super::iso20022::funding::camt054,
        super::iso20022::statement::camt053,
        super::iso20022::settlement::pacs002,
        super::registry::list_banks,
        super::registry::create_bank,
        super::registry::get_bank,
        super::registry::update_bank,
        super::registry::positions,
        super::balances::balances,
        super::balances::funds_in,
        super::balances::funds_out,
        super::balances::mint,
        super::balances::burn,
        super::balances::token_balances,
        super::registry::list_corridors,
        super::registry::create_corridor,
        super::registry::get_corridor,
        super::registry::update_corridor,
        super::windows::list,
        super::windows::current,
        super::windows::close_current,
        super::windows::get,
        super::windows::list_settlements,
        super::windows::settlement_status,
        super::windows::confirm,
        super::windows::fail,
        super::keys::create,
        super::keys::list,
        super::keys::revoke,
        super::audit_log::list,
        super::screening::list,
        super::screening::add,
        super::screening::remove,
        super::screening::import,
        super::reports::statement,
        super::reports::summary,
        super::cluster::status,
        super::cluster::window,
        super::cluster::window_credits,
        super::faults::panic,
    ),
    components(schemas(Problem, views::Money, views::Timestamp)),
    modifiers(&SharedAnswers, &Aliases, &Dashboard),
    tags(
        (name = "transfers", description = "Submit transfers and read them back"),
        (name = "iso20022", description = "ISO 20022 messages: pacs.008 and pain.001 in, pacs.002 out"),
        (name = "registry", description = "Banks, their caps and positions; corridors and rates"),
        (name = "balances", description = "Prefunded settlement accounts: funds-in, funds-out (operator) and balances"),
        (name = "windows", description = "Clearing windows and their netting"),
        (name = "settlements", description = "Settlement instructions and their confirmation"),
        (name = "keys", description = "API keys (operator)"),
        (name = "audit", description = "Who changed what (operator, auditor)"),
        (name = "screening", description = "The sanctions and PEP screening list: add, remove, import in CSV (operator); list (operator, auditor)"),
        (name = "reports", description = "A bank's statement of a window (JSON or CSV); a summary over a time range"),
        (name = "feeds", description = "Live WebSocket feeds"),
        (name = "cluster", description = "Cluster mode: this node's view of the cluster, and windows' results across every partition (operator, auditor)"),
        (name = "engine", description = "Liveness, readiness, metrics, this document"),
        (name = "dashboard", description = "The live dashboard's static files"),
    ),
)]
struct ApiDoc;

/// The security scheme's name in the document.
const BEARER: &str = "api_key";

/// Answers many routes share, added to every operation they apply to: (status,
/// which operations, description with its problem codes).
struct SharedAnswers;

/// Which operations a shared answer applies to.
enum Applies {
    /// Every operation that needs a key.
    Keyed,
    /// Operations that take a JSON body.
    WithBody,
    /// Operations with a query string.
    WithQuery,
}

const SHARED: &[(&str, Applies, &str)] = &[
    (
        "401",
        Applies::Keyed,
        "No key, or not one this engine issued, or revoked (`WWW-Authenticate: Bearer`). \
         Problem codes: `unauthenticated`, `key_invalid`, `key_revoked`.",
    ),
    (
        "429",
        Applies::Keyed,
        "Over this key's or this address's rate, or too many failed authentications from \
         this address; `Retry-After` says when to try again. Problem code: `rate_limited`.",
    ),
    (
        "503",
        Applies::Keyed,
        "The engine cannot answer now (its database is unreachable, or the part that \
         answers is restarting); `Retry-After` says when to try again. Problem code: \
         `unavailable`.",
    ),
    (
        "400",
        Applies::WithBody,
        "The body is not JSON, nests deeper than 32 levels, lacks a field or has one of \
         the wrong type. Problem codes: `malformed_json`, `json_too_deep`, \
         `field_missing`, `field_invalid`.",
    ),
    (
        "413",
        Applies::WithBody,
        "The body is larger than the engine's body limit. Problem code: `body_too_large`.",
    ),
    (
        "414",
        Applies::WithQuery,
        "The query string is longer than 2 KiB. Problem code: `query_too_long`.",
    ),
];

fn problem_answer(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut Document) {
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key, `dtk_<32 hex id>_<64 hex secret>`, made at first start (the \
                 operator's and one per reference bank, in `<data dir>/api-keys`), by \
                 `deltran keys create` or by `POST /api/v1/keys`. The WebSocket also takes \
                 it as `?token=`.",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
        let keyed = SecurityRequirement::new(BEARER, Vec::<String>::new());
        for (path, item) in doc.paths.paths.iter_mut() {
            let needs_key = path.starts_with("/api/v1") || path == "/ws";
            let local_or_key = path == "/ready" || path == "/metrics";
            for (method, operation) in operations(item) {
                if needs_key {
                    operation.security = Some(vec![keyed.clone()]);
                } else if local_or_key {
                    // Open from loopback; from elsewhere an operator or auditor key.
                    operation.security = Some(vec![SecurityRequirement::default(), keyed.clone()]);
                }
                // Every error answer is a problem: the handlers' annotations give the
                // status and its codes, the body is said here once.
                for (status, answer) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(answer) = answer {
                        if (status.starts_with('4') || status.starts_with('5'))
                            && answer.content.is_empty()
                        {
                            *answer = problem_answer(&answer.description);
                        }
                    }
                }
                let with_body = operation.request_body.is_some();
                let with_query =
                    operation.parameters.iter().flatten().any(|p| {
                        matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)
                    });
                for (status, applies, description) in SHARED {
                    let applies = match applies {
                        Applies::Keyed => needs_key || local_or_key,
                        Applies::WithBody => with_body,
                        Applies::WithQuery => with_query || method == HttpMethod::Get,
                    };
                    if !applies {
                        continue;
                    }
                    let answers = &mut operation.responses.responses;
                    match answers.get_mut(*status) {
                        // The route has its own answer with this status: add the
                        // shared codes to its description.
                        Some(utoipa::openapi::RefOr::T(own)) => {
                            own.description = format!("{} Also: {description}", own.description);
                        }
                        Some(utoipa::openapi::RefOr::Ref(_)) => {}
                        None => {
                            answers.insert(status.to_string(), problem_answer(description).into());
                        }
                    }
                }
            }
        }
    }
}

/// The operations of a path item, by method.
fn operations(item: &mut PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, &mut item.get),
        (HttpMethod::Post, &mut item.post),
        (HttpMethod::Patch, &mut item.patch),
        (HttpMethod::Put, &mut item.put),
        (HttpMethod::Delete, &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
    .collect()
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        _ => return None,
    })
}

/// Documents each compatibility alias the router serves as a deprecated copy of its
/// canonical operation.
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, doc: &mut Document) {
        for route in super::served_routes(true) {
            let (Some(canonical), Some(method)) = (&route.alias_of, http_method(&route.method))
            else {
                continue;
            };
            let answers = doc
                .paths
                .get_path_operation(canonical, method.clone())
                .map(|o| o.responses.clone());
            // An alias with a request of its own (the token routes) has its own
            // annotation for its request: it gets the canonical route's answers and
            // is marked deprecated.
            let own = doc
                .paths
                .paths
                .get_mut(&route.path)
                .and_then(|item| operations(item).into_iter().find(|(m, _)| *m == method));
            if let Some((_, operation)) = own {
                operation.deprecated = Some(utoipa::openapi::Deprecated::True);
                if let Some(answers) = answers {
                    operation.responses = answers;
                }
                continue;
            }
            let Some(mut operation) = doc
                .paths
                .get_path_operation(canonical, method.clone())
                .cloned()
            else {
                continue;
            };
            operation.deprecated = Some(utoipa::openapi::Deprecated::True);
            operation.operation_id = operation
                .operation_id
                .map(|id| format!("{id}_alias_{}", route.path.trim_start_matches("/api/v1/")))
                .map(|id| id.replace(['/', '{', '}'], "_"));
            operation.summary = Some(format!(
                "{} (compatibility alias of {canonical})",
                operation.summary.unwrap_or_default()
            ));
            doc.paths
                .add_path_operation(&route.path, vec![method], operation);
        }
    }
}

/// Documents the dashboard's static files (served by `dashboard`, no key).
struct Dashboard;

impl Modify for Dashboard {
    fn modify(&self, doc: &mut Document) {
        use utoipa::openapi::path::OperationBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        for (path, content_type) in super::dashboard::assets() {
            let file = path.trim_start_matches("/dashboard").trim_matches('/');
            let file = if file.is_empty() { "page" } else { file };
            let summary = match file {
                "page" => {
                    "The live dashboard (sign in with a key; it keeps it in the tab's session)"
                        .to_string()
                }
                _ => format!("The dashboard's {file}"),
            };
            let body = Content::new(Some(ObjectBuilder::new().schema_type(Type::String)));
            let operation = OperationBuilder::new()
                .tag("dashboard")
                .summary(Some(summary))
                .operation_id(Some(format!(
                    "dashboard_{}{}",
                    file.replace(['.', '/'], "_"),
                    if path.ends_with('/') { "_slash" } else { "" }
                )))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("The file, embedded in the binary (`ETag`, `Cache-Control: no-cache`, a strict Content-Security-Policy)")
                        .content(content_type, body)
                        .build(),
                )
                .response(
                    "304",
                    ResponseBuilder::new()
                        .description("The client's copy (`If-None-Match`) is current")
                        .build(),
                )
                .build();
            doc.paths
                .add_path_operation(path, vec![HttpMethod::Get], operation);
        }
    }
}

/// The document, built once.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document renders")
    })
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api-docs/openapi.json",
    tag = "engine",
    operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

/// The schema of a decimal input: a JSON string or number, read exactly.
pub fn decimal_input() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
                .examples(["250000.00"]),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .description(Some(
            "An exact decimal, as a JSON string or number (read from its text, never \
             through a float)",
        ))
        .build();
    Schema::OneOf(one_of).into()
}

/// The schema of decimals per currency code (`{"INR": "5000000"}`).
pub fn decimal_map() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(decimal_input())))
        .description(Some(
            "Net debit cap per currency code: zero or more, with at most the currency's \
             decimals",
        ))
        .build()
}
