//! The OpenAPI document: served without a key, OpenAPI 3.1, and in step with the
//! routes the engine serves (every served route documented, nothing documented
//! that is not served), with the key and the problem shape on every API route.

use std::collections::BTreeSet;

use deltran::http::{openapi, served_routes};
use serde_json::Value;

use crate::helpers::TestApp;

fn document() -> Value {
    serde_json::from_str(openapi::json()).expect("the document is JSON")
}

/// (method, path) of every documented operation.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn every_served_route_is_documented_and_every_documented_one_is_served() {
    let doc = document();
    let documented = documented(&doc);
    let served: BTreeSet<(String, String)> = served_routes(true)
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    // The fault route is served only with --fault-injection, and documented as such.
    let without_faults: BTreeSet<_> = served_routes(false).into_iter().map(|r| r.path).collect();
    assert!(!without_faults.contains("/api/v1/faults/panic"));
    assert!(doc["paths"]["/api/v1/faults/panic"]["post"]["description"]
        .as_str()
        .unwrap()
        .contains("--fault-injection"));
}

#[test]
fn every_api_operation_names_the_key_and_its_problems() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let answers = operation["responses"].as_object().unwrap();
            if path.starts_with("/api/v1") || path == "/ws" {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"api_key": []}]),
                    "{name}"
                );
                for status in ["401", "429", "503"] {
                    assert!(answers.contains_key(status), "{name} lacks {status}");
                }
            }
            assert!(
                operation["operationId"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty()),
                "{name}"
            );
            for (status, answer) in answers {
                if status.starts_with('4') || status.starts_with('5') {
                    let description = answer["description"].as_str().unwrap();
                    assert!(
                        description.contains("Problem code"),
                        "{name} {status} names no problem code: {description}"
                    );
                    assert_eq!(
                        answer["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{name} {status}"
                    );
                }
            }
        }
    }
    // Amounts are decimal strings in every answer.
    let money = &doc["components"]["schemas"]["Money"];
    assert_eq!(money["type"], "string", "{money}");
    assert_eq!(
        doc["components"]["schemas"]["TransferView"]["properties"]["amount"]["$ref"],
        "#/components/schemas/Money"
    );
}

#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut seen = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap().to_string();
            assert!(seen.insert(id.clone()), "operationId {id} twice");
        }
    }
}

#[actix_web::test]
async fn the_document_is_served_without_a_key() {
    let app = TestApp::spawn().await;
    let reply = app.get_as(None, "/api-docs/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert!(reply.content_type.starts_with("application/json"));
    assert_eq!(reply.body, document());
    app.stop().await;
}

#[test]
fn a_statement_is_documented_in_json_and_csv_and_the_summary_with_its_range() {
    let doc = document();
    let statement =
        &doc["paths"]["/api/v1/reports/windows/{window_id}/banks/{code}/statement"]["get"];
    assert_eq!(statement["operationId"], "bank_statement");
    assert_eq!(statement["tags"], serde_json::json!(["reports"]));
    let content = &statement["responses"]["200"]["content"];
    assert_eq!(
        content["application/json"]["schema"]["$ref"],
        "#/components/schemas/StatementView"
    );
    assert_eq!(content["text/csv"]["schema"]["type"], "string");
    let summary = &doc["paths"]["/api/v1/reports/summary"]["get"];
    assert_eq!(summary["operationId"], "report_summary");
    let required: BTreeSet<&str> = summary["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["required"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["from", "to"]));
    assert!(summary["responses"]["422"]["description"]
        .as_str()
        .unwrap()
        .contains("`range_too_large`"));
    assert!(doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "reports"));
}
