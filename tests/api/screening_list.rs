//! The operator's screening list over the API: who may list and change it, an entry
//! added, listed and removed, a duplicate reference refused, a list imported from CSV
//! (quoting, `;`-separated aliases and countries) whole or not at all, replacing the
//! list, every change in the audit log, and the engine's screening index following
//! every change.

use serde_json::{json, Value};

use crate::helpers::{test_settings, Reply, TestApp};

const ENTRIES: &str = "/api/v1/screening/entries";
const IMPORT: &str = "/api/v1/screening/entries/import";
const HEADER: &str = "list,name,aliases,countries,reference\n";

/// Adds an entry as the operator, as it is answered.
async fn add(app: &TestApp, body: &Value) -> Reply {
    app.post(ENTRIES, body).await
}

/// Adds an entry, asserting 201; the entry.
async fn added(app: &TestApp, body: &Value) -> Value {
    let reply = add(app, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// Imports `csv` as the operator (`query`: `replace=…`, or empty).
async fn import(app: &TestApp, query: &str, csv: impl Into<Vec<u8>>) -> Reply {
    app.send_raw(
        "POST",
        &format!("{IMPORT}{query}"),
        csv.into(),
        &[("content-type", "text/csv")],
    )
    .await
}

/// Every entry on the list, as the auditor reads it (one page).
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = app
        .get_as(
            Some(&app.keys.auditor),
            &format!("{ENTRIES}?limit=1000{query}"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["next_cursor"], Value::Null);
    reply.body["entries"].as_array().unwrap().clone()
}

/// The audit log's entries of `action`.
async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/api/v1/audit-log?limit=1000&action={action}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["entries"].as_array().unwrap().clone()
}

/// What the engine screens against now: as many entries as the store holds.
async fn assert_index_follows_the_store(app: &TestApp) {
    let stored = app.scalar("SELECT count(*) FROM screening_entries").await;
    assert_eq!(app.engine.screening.current().len().to_string(), stored);
}

fn entry(list: &str, name: &str, reference: Option<&str>) -> Value {
    json!({"list": list, "name": name, "reference": reference})
}

#[actix_web::test]
async fn the_screening_routes_answer_each_kind_of_caller_by_role() {
    let app = TestApp::spawn().await;
    let id = added(
        &app,
        &entry("sanctions", "Role Matrix Person", Some("RM-0")),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let csv = format!("{HEADER}pep,Imported Person,,,RM-{{n}}\n");
    let callers = [
        ("no key", None),
        ("bank", Some(app.keys.bank("ICICI").to_string())),
        ("auditor", Some(app.keys.auditor.clone())),
        ("operator", Some(app.keys.operator.clone())),
    ];
    // (method, path, body, the status and code for: no key, bank, auditor, operator)
    type Expect = [(u16, &'static str); 4];
    let refused_but_operator = |ok: u16| -> Expect {
        [
            (401, "unauthenticated"),
            (403, "operator_only"),
            (403, "operator_only"),
            (ok, ""),
        ]
    };
    // The body each caller sends (numbered, so that the operator's is unique).
    type Body = Box<dyn Fn(usize) -> Vec<u8>>;
    let cases: Vec<(&str, String, Body, Expect)> = vec![
        (
            "GET",
            ENTRIES.to_string(),
            Box::new(|_| Vec::new()),
            [
                (401, "unauthenticated"),
                (403, "operator_or_auditor_only"),
                (200, ""),
                (200, ""),
            ],
        ),
        (
            "POST",
            ENTRIES.to_string(),
            Box::new(|n| {
                entry("pep", "Added Person", Some(&format!("RM-A{n}")))
                    .to_string()
                    .into_bytes()
            }),
            refused_but_operator(201),
        ),
        (
            "POST",
            format!("{IMPORT}?replace=false"),
            Box::new(move |n| csv.replace("{n}", &n.to_string()).into_bytes()),
            refused_but_operator(200),
        ),
        (
            "DELETE",
            format!("{ENTRIES}/{id}"),
            Box::new(|_| Vec::new()),
            refused_but_operator(200),
        ),
    ];
    for (method, path, body, expect) in &cases {
        for (n, ((caller, key), (status, code))) in callers.iter().zip(expect).enumerate() {
            let reply = app
                .send_as(key.as_deref(), method, path, body(n), &[])
                .await;
            let what = format!("{method} {path} as {caller}: {}", reply.body);
            assert_eq!(reply.status.as_u16(), *status, "{what}");
            if !code.is_empty() {
                assert_eq!(reply.code(), *code, "{what}");
                assert_eq!(reply.content_type, "application/problem+json", "{what}");
            }
        }
    }
    // Only the operator's calls changed the list: one added, one imported, one removed.
    let names: Vec<Value> = entries(&app, "")
        .await
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, [json!("Added Person"), json!("Imported Person")]);
    assert_index_follows_the_store(&app).await;
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn an_entry_is_added_listed_and_removed_and_each_change_is_audited() {
    let app = TestApp::spawn().await;
    let body = json!({
        "list": "sanctions",
        "name": "Ahmed Al-Rashid",
        "aliases": ["Ahmad Rashid", "أحمد الراشد"],
        "countries": ["AE", "IN"],
        "reference": "OFAC-12345",
    });
    let first = added(&app, &body).await;
    assert!(first["id"].as_i64().unwrap() > 0, "{first}");
    for field in ["list", "name", "aliases", "countries", "reference"] {
        assert_eq!(first[field], body[field], "{field}");
    }
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    // Without the optional fields: no aliases, no countries, no reference.
    let second = added(&app, &json!({"list": "pep", "name": "Jane Doe"})).await;
    assert_eq!(second["aliases"], json!([]));
    assert_eq!(second["countries"], json!([]));
    assert_eq!(second["reference"], Value::Null);
    assert_index_follows_the_store(&app).await;
    assert_eq!(app.engine.screening.current().len(), 2);

    // Listed in id order, filtered by list, paged by id.
    assert_eq!(entries(&app, "").await, [first.clone(), second.clone()]);
    assert_eq!(
        entries(&app, "&list=pep").await,
        std::slice::from_ref(&second)
    );
    assert_eq!(
        entries(&app, "&list=sanctions").await,
        std::slice::from_ref(&first)
    );
    let page = app.get(&format!("{ENTRIES}?limit=1")).await;
    assert_eq!(page.body["entries"], json!([first]));
    let cursor = page.str("next_cursor");
    let next = app.get(&format!("{ENTRIES}?limit=1&cursor={cursor}")).await;
    assert_eq!(next.body["entries"], json!([second]));
    assert_eq!(next.body["next_cursor"], Value::Null);
    for query in ["list=watch", "list=SANCTIONS"] {
        let reply = app.get(&format!("{ENTRIES}?{query}")).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, "screening_list_invalid")
        );
    }
    for query in ["limit=0", "cursor=abc", "cursor=-1"] {
        let reply = app.get(&format!("{ENTRIES}?{query}")).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "query_invalid")
        );
    }

    // Removed: answered as it was; a second time, or an id never given, 404.
    let id = first["id"].as_i64().unwrap();
    let removed = app
        .send_raw("DELETE", &format!("{ENTRIES}/{id}"), Vec::new(), &[])
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body, first);
    for path in [format!("{ENTRIES}/{id}"), format!("{ENTRIES}/999999")] {
        let again = app.send_raw("DELETE", &path, Vec::new(), &[]).await;
        assert_eq!((again.status.as_u16(), again.code()), (404, "not_found"));
    }
    for bad in ["0", "-3", "abc", "1.5"] {
        let reply = app
            .send_raw("DELETE", &format!("{ENTRIES}/{bad}"), Vec::new(), &[])
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, "screening_entry_id_invalid"),
            "{bad}"
        );
    }
    assert_eq!(entries(&app, "").await, std::slice::from_ref(&second));
    assert_index_follows_the_store(&app).await;
    assert_eq!(app.engine.screening.current().len(), 1);

    // Each change has its one entry: who, what, the entry as the API shows it.
    let adds = audited(&app, "screening_entry_added").await;
    assert_eq!(adds.len(), 2, "{adds:?}");
    assert_eq!(adds[0]["subject"], id.to_string());
    assert_eq!(adds[0]["before"], Value::Null);
    assert_eq!(adds[0]["after"], first);
    assert_eq!(adds[0]["role"], "operator");
    assert_eq!(adds[0]["origin"], "api");
    assert!(adds[0]["request_id"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(adds[1]["after"], second);
    let removes = audited(&app, "screening_entry_removed").await;
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert_eq!(removes[0]["subject"], id.to_string());
    assert_eq!(removes[0]["before"], first);
    assert_eq!(removes[0]["after"], Value::Null);
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_reference_is_unique_within_its_list_and_every_field_is_checked() {
    let app = TestApp::spawn().await;
    let kept = added(&app, &entry("sanctions", "First Person", Some("REF-1"))).await;
    let again = add(&app, &entry("sanctions", "Other Person", Some("REF-1"))).await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "already_exists"),
        "{}",
        again.body
    );
    // The same reference on the other list, and entries without one, are others'.
    added(&app, &entry("pep", "Other Person", Some("REF-1"))).await;
    added(&app, &entry("sanctions", "No Reference", None)).await;
    added(&app, &entry("sanctions", "No Reference", None)).await;

    let long_name = "n".repeat(201);
    let long_reference = "r".repeat(101);
    let many: Vec<String> = (0..21).map(|i| format!("alias {i}")).collect();
    let countries: Vec<&str> = vec!["AE"; 21];
    for (body, field, code) in [
        (
            json!({"list": "watch", "name": "A"}),
            "list",
            "screening_list_invalid",
        ),
        (
            json!({"list": "sanctions", "name": ""}),
            "name",
            "text_too_long",
        ),
        (
            json!({"list": "sanctions", "name": long_name}),
            "name",
            "text_too_long",
        ),
        (
            json!({"list": "sanctions", "name": "A\u{0}B"}),
            "name",
            "text_invalid",
        ),
        (
            json!({"list": "sanctions", "name": "A", "aliases": ["ok", "b\nc"]}),
            "aliases",
            "text_invalid",
        ),
        (
            json!({"list": "sanctions", "name": "A", "aliases": many}),
            "aliases",
            "too_many_items",
        ),
        (
            json!({"list": "sanctions", "name": "A", "countries": ["ae"]}),
            "countries",
            "country_invalid",
        ),
        (
            json!({"list": "sanctions", "name": "A", "countries": ["UAE"]}),
            "countries",
            "country_invalid",
        ),
        (
            json!({"list": "sanctions", "name": "A", "countries": countries}),
            "countries",
            "too_many_items",
        ),
        (
            json!({"list": "sanctions", "name": "A", "reference": ""}),
            "reference",
            "text_too_long",
        ),
        (
            json!({"list": "sanctions", "name": "A", "reference": long_reference}),
            "reference",
            "text_too_long",
        ),
    ] {
        let reply = add(&app, &body).await;
        assert_eq!(
            (
                reply.status.as_u16(),
                reply.code(),
                reply.body["field"].as_str()
            ),
            (422, code, Some(field)),
            "{body}: {}",
            reply.body
        );
    }
    for (body, code) in [
        (json!({"name": "A"}), "field_missing"),
        (
            json!({"list": "pep", "name": "A", "aliases": "one"}),
            "field_invalid",
        ),
    ] {
        let reply = add(&app, &body).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (400, code), "{body}");
    }
    // Nothing refused was stored or audited.
    let stored = entries(&app, "").await;
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[0], kept);
    assert_eq!(audited(&app, "screening_entry_added").await.len(), 4);
    assert_index_follows_the_store(&app).await;
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_csv_list_is_imported_with_its_quoting_and_item_lists() {
    let app = TestApp::spawn().await;
    added(&app, &entry("pep", "Already Listed", Some("P-0"))).await;
    let csv = format!(
        "\u{feff}{HEADER}\
         sanctions,Ahmed Al-Rashid,\"Ahmad Rashid;Ahmed \"\"the Trader\"\" Rashid\",AE;IN,OFAC-1\r\n\
         pep,\"Doe, Jane\",,GB,\n\
         \n\
         sanctions,\"Acme Trading, FZE\",Acme;ACME FZE,AE,\n\
         pep,John Roe,J. Roe,,OFAC-1\n"
    );
    let reply = import(&app, "", csv).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({"added": 4, "removed": 0}));
    let stored = entries(&app, "").await;
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[0]["name"], "Already Listed");
    let imported = &stored[1..];
    assert_eq!(imported[0]["list"], "sanctions");
    assert_eq!(imported[0]["name"], "Ahmed Al-Rashid");
    assert_eq!(
        imported[0]["aliases"],
        json!(["Ahmad Rashid", "Ahmed \"the Trader\" Rashid"])
    );
    assert_eq!(imported[0]["countries"], json!(["AE", "IN"]));
    assert_eq!(imported[0]["reference"], "OFAC-1");
    assert_eq!(imported[1]["name"], "Doe, Jane");
    assert_eq!(imported[1]["aliases"], json!([]));
    assert_eq!(imported[1]["countries"], json!(["GB"]));
    assert_eq!(imported[1]["reference"], Value::Null);
    assert_eq!(imported[2]["name"], "Acme Trading, FZE");
    assert_eq!(imported[2]["aliases"], json!(["Acme", "ACME FZE"]));
    assert_eq!(imported[3]["list"], "pep");
    assert_eq!(imported[3]["reference"], "OFAC-1");
    assert_index_follows_the_store(&app).await;
    assert_eq!(app.engine.screening.current().len(), 5);
    // One audit entry for the import, none per entry.
    let imports = audited(&app, "screening_list_imported").await;
    assert_eq!(imports.len(), 1, "{imports:?}");
    assert_eq!(imports[0]["subject"], "import");
    assert_eq!(imports[0]["role"], "operator");
    assert_eq!(imports[0]["before"], Value::Null);
    assert_eq!(
        imports[0]["after"],
        json!({"added": 4, "removed": 0, "replace": false})
    );
    assert_eq!(audited(&app, "screening_entry_added").await.len(), 1);
    // A header alone imports nothing (and is still audited as an import).
    let reply = import(&app, "?replace=false", HEADER).await;
    assert_eq!(reply.body, json!({"added": 0, "removed": 0}));
    assert_eq!(entries(&app, "").await.len(), 5);
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn a_bad_csv_line_refuses_the_whole_file_and_nothing_is_stored() {
    let mut settings = test_settings();
    settings.iso_message_size_max_bytes = 2 * 1024 * 1024;
    let app = TestApp::spawn_with_settings(settings).await;
    added(&app, &entry("sanctions", "Kept Person", Some("K-1"))).await;
    let good = "sanctions,Good Person,,AE,G-1\n";
    for (csv, line, field, says) in [
        (
            format!("{HEADER}{good}pep,Bad Person,,ae,G-2\n"),
            3,
            Some("countries"),
            "country_invalid",
        ),
        (
            format!("{HEADER}{good}watch,Bad Person,,,\n"),
            3,
            Some("list"),
            "screening_list_invalid",
        ),
        (
            format!("{HEADER}{good}\npep,,,,\n"),
            4,
            Some("name"),
            "text_too_long",
        ),
        (
            format!("{HEADER}{good}pep,Bad Person,,\n"),
            3,
            None,
            "4 fields",
        ),
        (
            format!("{HEADER}{good}pep,Bad \"Person\",,,\n"),
            3,
            None,
            "quote",
        ),
        (
            format!("{HEADER}{good}pep,\"Bad Person,,,\n"),
            3,
            None,
            "never closed",
        ),
        (
            format!("{HEADER}{good}pep,Other,,,G-1\nsanctions,Again,,,G-1\n"),
            4,
            Some("reference"),
            "line 2",
        ),
        (
            "name,list,aliases,countries,reference\n".to_string(),
            1,
            None,
            "header",
        ),
        (String::new(), 1, None, "empty"),
    ] {
        let reply = import(&app, "?replace=true", csv.clone()).await;
        let what = format!("{csv:?}: {}", reply.body);
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, "csv_invalid"),
            "{what}"
        );
        let detail = reply.str("detail");
        assert!(detail.starts_with(&format!("line {line}: ")), "{what}");
        assert!(detail.contains(says), "{what}");
        assert_eq!(reply.body["field"].as_str(), field, "{what}");
    }
    // Not UTF-8: refused on the line of the first bad byte.
    let mut bytes = format!("{HEADER}{good}pep,Bad ").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let reply = import(&app, "", bytes).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (422, "csv_invalid"));
    assert!(
        reply.str("detail").starts_with("line 3: "),
        "{}",
        reply.body
    );
    // More than 100,000 entries: refused at the first one too many.
    let mut big = String::from(HEADER);
    for _ in 0..100_001 {
        big.push_str("pep,A,,,\n");
    }
    let reply = import(&app, "", big).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (422, "csv_invalid"));
    assert!(
        reply
            .str("detail")
            .starts_with("line 100002: more than 100000"),
        "{}",
        reply.body
    );
    // Larger than the ISO message size limit.
    let reply = import(&app, "", vec![b'a'; 2 * 1024 * 1024 + 1]).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (413, "body_too_large")
    );
    // A line that collides with an entry kept: 409, and the lines before it are gone.
    let reply = import(&app, "", format!("{HEADER}{good}sanctions,Clash,,,K-1\n")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (409, "already_exists")
    );
    for query in ["?replace=yes", "?replace=1"] {
        let reply = import(&app, query, format!("{HEADER}{good}")).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "query_invalid"),
            "{query}"
        );
    }
    // Nothing of any of them was stored, replaced or audited.
    let stored = entries(&app, "").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "Kept Person");
    assert!(audited(&app, "screening_list_imported").await.is_empty());
    assert_index_follows_the_store(&app).await;
    app.assert_audit_clean().await;
    app.stop().await;
}

#[actix_web::test]
async fn an_import_with_replace_replaces_the_whole_list() {
    let app = TestApp::spawn().await;
    added(&app, &entry("sanctions", "Old One", Some("R-1"))).await;
    added(&app, &entry("pep", "Old Two", None)).await;
    assert_eq!(app.engine.screening.current().len(), 2);
    // The file may reuse a reference of the list it replaces.
    let csv = format!("{HEADER}sanctions,New One,,,R-1\n");
    let reply = import(&app, "?replace=true", csv).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({"added": 1, "removed": 2}));
    let stored = entries(&app, "").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"], "New One");
    assert_eq!(stored[0]["reference"], "R-1");
    assert_index_follows_the_store(&app).await;
    assert_eq!(app.engine.screening.current().len(), 1);
    // Without replace, the file adds to the list.
    let reply = import(&app, "?replace=false", format!("{HEADER}pep,New Two,,,\n")).await;
    assert_eq!(reply.body, json!({"added": 1, "removed": 0}));
    assert_eq!(entries(&app, "").await.len(), 2);
    let imports = audited(&app, "screening_list_imported").await;
    let afters: Vec<&Value> = imports.iter().map(|e| &e["after"]).collect();
    assert_eq!(
        afters,
        [
            &json!({"added": 1, "removed": 2, "replace": true}),
            &json!({"added": 1, "removed": 0, "replace": false}),
        ]
    );
    // The entries it removed have no removal entries of their own: the import's is
    // the record of their going.
    assert!(audited(&app, "screening_entry_removed").await.is_empty());
    assert_index_follows_the_store(&app).await;
    app.assert_audit_clean().await;
    app.stop().await;
}
