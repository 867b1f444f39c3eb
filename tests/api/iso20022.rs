//! ISO 20022 intake: pacs.008 and pain.001 in, each transaction decided like any
//! transfer, a pacs.002 status report out — validated against its schema — and
//! hostile or broken messages refused with a 4xx, never a 5xx.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use deltran::http::iso20022::xml::{self, Element};
use serde_json::json;

use crate::helpers::{test_settings, Reply, TestApp};

/// The XSDs (fetched once per test run by tests/iso20022/fetch-schemas.sh, which
/// also makes sure xmllint is there), in the target directory.
fn schemas() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target").join("iso20022-xsd");
        let status = Command::new(root.join("tests/iso20022/fetch-schemas.sh"))
            .arg(&dir)
            .status()
            .expect("tests/iso20022/fetch-schemas.sh runs");
        assert!(status.success(), "fetching the ISO 20022 schemas failed");
        dir
    })
}

/// Asserts `document` is valid against the schema of `message` (`pacs.002.001.12`).
pub fn assert_valid(message: &str, document: &str) {
    let schema = schemas().join(format!("{message}.xsd"));
    let mut child = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not a valid {message}: {}\n{document}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/iso20022")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

async fn post_xml(app: &TestApp, key: &str, route: &str, body: &str) -> Reply {
    app.send_as(
        Some(key),
        "POST",
        &format!("/api/v1/iso20022/{route}"),
        body.as_bytes().to_vec(),
        &[("content-type", "application/xml")],
    )
    .await
}

/// The report's lines: (TxSts, reason code, AddtlInf) per transaction.
fn lines(report: &Element) -> Vec<(String, Option<String>, Option<String>)> {
    report
        .at("FIToFIPmtStsRpt")
        .unwrap()
        .children_named("TxInfAndSts")
        .map(|l| {
            (
                l.text_at("TxSts").unwrap().to_string(),
                l.text_at("StsRsnInf/Rsn/Cd").map(str::to_string),
                l.text_at("StsRsnInf/AddtlInf").map(str::to_string),
            )
        })
        .collect()
}

/// The report of a `200` answer, checked against the pacs.002 schema.
fn report_of(reply: &Reply) -> Element {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.content_type.starts_with("application/xml"),
        "{}",
        reply.content_type
    );
    assert_valid("pacs.002.001.12", &reply.text);
    xml::parse(reply.text.as_bytes()).unwrap()
}

fn transaction_id(info: &Option<String>) -> String {
    info.as_deref()
        .and_then(|i| i.split("transaction_id ").nth(1))
        .expect("the line names its transfer")
        .to_string()
}

/// One credit transfer of a pacs.008.001.08 from `debtor` to `creditor` (BICs).
fn credit_transfer(e2e: &str, debtor: &str, creditor: &str, amount: &str, ccy: &str) -> String {
    format!(
        r#"<CdtTrfTxInf><PmtId><EndToEndId>{e2e}</EndToEndId><TxId>{e2e}</TxId></PmtId>
<IntrBkSttlmAmt Ccy="{ccy}">{amount}</IntrBkSttlmAmt><ChrgBr>SHAR</ChrgBr>
<Dbtr><Nm>Debtor {e2e}</Nm></Dbtr><DbtrAgt><FinInstnId><BICFI>{debtor}</BICFI></FinInstnId></DbtrAgt>
<CdtrAgt><FinInstnId><BICFI>{creditor}</BICFI></FinInstnId></CdtrAgt><Cdtr><Nm>Creditor {e2e}</Nm></Cdtr>
</CdtTrfTxInf>"#
    )
}

fn pacs008(message_id: &str, transactions: &[String]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><FIToFICstmrCdtTrf>
<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2026-12-04T10:00:00Z</CreDtTm><NbOfTxs>{}</NbOfTxs>
<SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>{}</FIToFICstmrCdtTrf></Document>"#,
        transactions.len(),
        transactions.concat()
    )
}

#[actix_web::test]
async fn a_pacs008_round_trip_maps_each_transaction_and_answers_a_valid_pacs002() {
    let app = TestApp::spawn().await;
    let message = fixture("pacs.008.001.08-two.xml");
    assert_valid("pacs.008.001.08", &message);
    let icici = app.keys.bank("ICICI").to_string();

    let reply = post_xml(&app, &icici, "pacs.008", &message).await;
    let report = report_of(&reply);
    assert_eq!(
        report.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgId"),
        Some("DT-PACS008-0001")
    );
    assert_eq!(
        report.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgNmId"),
        Some("pacs.008.001.08")
    );
    assert_eq!(
        report.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/GrpSts"),
        Some("ACCP")
    );
    let answered = lines(&report);
    assert_eq!(answered.len(), 2);
    assert!(answered
        .iter()
        .all(|(status, reason, _)| status == "ACCP" && reason.is_none()));
    let first = report
        .at("FIToFIPmtStsRpt")
        .unwrap()
        .children_named("TxInfAndSts")
        .next()
        .unwrap();
    assert_eq!(
        (first.text_at("OrgnlEndToEndId"), first.text_at("OrgnlTxId")),
        (Some("E2E-INV-1001"), Some("TX-1001"))
    );

    // (a) INR instructed, AED settled: the transfer is the instructed amount, at the
    // corridor's rate, with the message's identifiers; keyed by its UETR.
    let a = app.transfer(&transaction_id(&answered[0].2)).await.body;
    assert_eq!(
        (
            &a["sender_bank"],
            &a["receiver_bank"],
            &a["amount"],
            &a["from_currency"]
        ),
        (
            &json!("ICICI"),
            &json!("ENBD"),
            &json!("10000.00"),
            &json!("INR")
        )
    );
    assert_eq!(
        (&a["to_currency"], &a["converted_amount"]),
        (&json!("AED"), &json!("440.50"))
    );
    assert_eq!(a["end_to_end_id"], "E2E-INV-1001");
    assert_eq!(a["uetr"], "7c2a8f0e-3b1d-4a56-9e21-5d8c0f4b7a11");
    assert_eq!(
        a["idempotency_key"],
        "uetr:7c2a8f0e-3b1d-4a56-9e21-5d8c0f4b7a11"
    );
    assert_eq!(
        (&a["sender_account"], &a["receiver_account"]),
        (&json!("ICICI-000123456"), &json!("ENBD-987654321"))
    );
    assert_eq!(a["reference"], "invoice 1001");
    // (b) one currency only (INR): the creditor agent's home currency is the other
    // side; the UETR it lacked is made for it, a version 4 UUID.
    let b = app.transfer(&transaction_id(&answered[1].2)).await.body;
    assert_eq!(
        (
            &b["receiver_bank"],
            &b["amount"],
            &b["from_currency"],
            &b["to_currency"]
        ),
        (
            &json!("ADCB"),
            &json!("2500.00"),
            &json!("INR"),
            &json!("AED")
        )
    );
    let made = uuid::Uuid::parse_str(b["uetr"].as_str().unwrap()).unwrap();
    assert_eq!(made.get_version_num(), 4);

    // The same message again: the same transfers answer, nothing new is stored.
    let again = lines(&report_of(
        &post_xml(&app, &icici, "pacs.008", &message).await,
    ));
    assert_eq!(
        again
            .iter()
            .map(|l| transaction_id(&l.2))
            .collect::<Vec<_>>(),
        answered
            .iter()
            .map(|l| transaction_id(&l.2))
            .collect::<Vec<_>>()
    );
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "2");

    // Netted and settled, a replay says so.
    app.close_and_settle_window().await;
    let settled = lines(&report_of(
        &post_xml(&app, &icici, "pacs.008", &message).await,
    ));
    assert!(settled.iter().all(|l| l.0 == "ACSC"), "{settled:?}");
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn one_bad_transaction_does_not_reject_its_siblings() {
    let app = TestApp::spawn().await;
    app.set_cap("ICICI", "INR", "5000").await;
    let message = pacs008(
        "DT-MIXED-1",
        &[
            credit_transfer("GOOD-1", "ICICINBB", "EBILAEAD", "1000.00", "INR"),
            credit_transfer("UNKNOWN-AGENT", "ICICINBB", "ZZZZAEAA", "10.00", "INR"),
            credit_transfer("OVER-CAP", "ICICINBB", "EBILAEAD", "9000.00", "INR"),
            credit_transfer("BAD-AMOUNT", "ICICINBB", "EBILAEAD", "10.001", "INR"),
            credit_transfer("NOT-MINE", "HDFCINBB", "EBILAEAD", "10.00", "INR"),
            credit_transfer("ZERO", "ICICINBB", "EBILAEAD", "0", "INR"),
            credit_transfer("NO-CORRIDOR", "ICICINBB", "EBILAEAD", "10.00", "USD"),
            credit_transfer("SAME-BANK", "ICICINBB", "ICICINBBXXX", "10.00", "INR"),
            credit_transfer("TRAILING-ZEROS", "ICICINBB", "ADCBAEAA", "20.50000", "INR"),
        ],
    );
    assert_valid("pacs.008.001.08", &message);
    let report = report_of(&post_xml(&app, app.keys.bank("ICICI"), "pacs.008", &message).await);
    assert_eq!(
        report.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/GrpSts"),
        Some("PART")
    );
    let got: Vec<(String, Option<String>)> =
        lines(&report).into_iter().map(|(s, r, _)| (s, r)).collect();
    let rjct = |code: &str| ("RJCT".to_string(), Some(code.to_string()));
    assert_eq!(
        got,
        vec![
            ("ACCP".to_string(), None),
            rjct("RC01"),
            rjct("AM04"),
            rjct("AM12"),
            rjct("AG01"),
            rjct("AM01"),
            rjct("AM03"),
            rjct("AG01"),
            ("ACCP".to_string(), None),
        ]
    );
    // The limit rejection is stored (with its UETR key); input refusals are not.
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "3");
    assert_eq!(
        app.scalar(
            "SELECT (amount = 20.50)::text FROM transfers WHERE end_to_end_id = 'TRAILING-ZEROS'"
        )
        .await,
        "true"
    );
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_pain001_initiation_is_taken_in_like_a_pacs008() {
    let app = TestApp::spawn().await;
    let message = fixture("pain.001.001.09-one.xml");
    assert_valid("pain.001.001.09", &message);
    let report = report_of(&post_xml(&app, app.keys.bank("ICICI"), "pain.001", &message).await);
    assert_eq!(
        report.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgNmId"),
        Some("pain.001.001.09")
    );
    let answered = lines(&report);
    assert_eq!(answered[0].0, "ACCP", "{answered:?}");
    let t = app.transfer(&transaction_id(&answered[0].2)).await.body;
    assert_eq!(
        (
            &t["sender_bank"],
            &t["receiver_bank"],
            &t["amount"],
            &t["to_currency"],
            &t["end_to_end_id"]
        ),
        (
            &json!("ICICI"),
            &json!("ENBD"),
            &json!("5000.00"),
            &json!("AED"),
            &json!("E2E-PAIN-1")
        )
    );
}

#[actix_web::test]
async fn only_the_debtor_agent_sends_and_an_auditor_sends_nothing() {
    let app = TestApp::spawn().await;
    let message = fixture("pacs.008.001.08-two.xml");
    let as_hdfc = report_of(&post_xml(&app, app.keys.bank("HDFC"), "pacs.008", &message).await);
    assert_eq!(
        as_hdfc.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/GrpSts"),
        Some("RJCT")
    );
    assert!(lines(&as_hdfc)
        .iter()
        .all(|l| l.1.as_deref() == Some("AG01")));
    let auditor = post_xml(&app, &app.keys.auditor, "pacs.008", &message).await;
    assert_eq!(
        (auditor.status.as_u16(), auditor.code()),
        (403, "auditor_read_only")
    );
    let nobody = app
        .send_as(
            None,
            "POST",
            "/api/v1/iso20022/pacs.008",
            message.clone().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(nobody.status, 401);
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "0");
    // The operator sends for any bank.
    let as_operator = report_of(&post_xml(&app, &app.keys.operator, "pacs.008", &message).await);
    assert_eq!(
        as_operator.text_at("FIToFIPmtStsRpt/OrgnlGrpInfAndSts/GrpSts"),
        Some("ACCP")
    );
}

#[actix_web::test]
async fn broken_hostile_and_foreign_messages_are_refused_whole_with_a_clear_4xx() {
    let mut settings = test_settings();
    settings.iso_transactions_max = 2;
    settings.iso_message_size_max_bytes = 64 * 1024;
    let app = TestApp::spawn_with_settings(settings).await;
    let key = app.keys.bank("ICICI").to_string();
    let good = fixture("pacs.008.001.08-two.xml");
    let three = pacs008(
        "DT-THREE",
        &["A", "B", "C"].map(|e| credit_transfer(e, "ICICINBB", "EBILAEAD", "1.00", "INR")),
    );
    let cases: Vec<(String, u16, &str)> = vec![
        (
            r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Document>&b;</Document>"#.into(),
            400,
            "xml_doctype_forbidden",
        ),
        (r#"<!DOCTYPE d SYSTEM "file:///etc/passwd"><Document/>"#.into(), 400, "xml_doctype_forbidden"),
        (good.replace("Asha Traders", "Asha &bogus; Traders"), 400, "xml_entity_unknown"),
        (good.replace("</GrpHdr>", ""), 400, "xml_malformed"),
        (good[..good.len() / 2].to_string(), 400, "xml_malformed"),
        ("not xml at all".into(), 400, "xml_malformed"),
        (format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)), 400, "xml_too_deep"),
        (good.replace("pacs.008.001.08", "pacs.008.001.02"), 422, "iso_version_unsupported"),
        (fixture("pain.001.001.09-one.xml"), 422, "iso_message_wrong_route"),
        ("<Document><x/></Document>".into(), 422, "iso_message_unknown"),
        (good.replace("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>"), 422, "iso_transaction_count_mismatch"),
        (good.replace("<MsgId>DT-PACS008-0001</MsgId>", ""), 422, "iso_field_missing"),
        (three, 413, "iso_too_many_transactions"),
        (format!("{good}<!--{}-->", "x".repeat(70 * 1024)), 413, "body_too_large"),
    ];
    for (body, status, code) in cases {
        let reply = post_xml(&app, &key, "pacs.008", &body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{}",
            &body[..body.len().min(200)]
        );
        assert_eq!(reply.content_type, "application/problem+json");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM transfers").await, "0");
    // Still serving: the good message goes through.
    report_of(&post_xml(&app, &key, "pacs.008", &good).await);
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One mutation of `doc`: a byte changed, a cut, a slice repeated or dropped, a
    /// hostile fragment inserted, or an element's text swapped for junk.
    fn mutate(&mut self, doc: &[u8]) -> Vec<u8> {
        let mut out = doc.to_vec();
        const FRAGMENTS: &[&str] = &[
            "<!DOCTYPE x [<!ENTITY e \"e\">]>",
            "&e;",
            "&#0;",
            "&#xD800;",
            "<![CDATA[",
            "]]>",
            "<!--",
            "-->",
            "<?pi x?>",
            "</Document>",
            "<Document>",
            "<CdtTrfTxInf>",
            "\u{0}",
            "\u{feff}",
            "Ccy=\"\"",
            " xmlns=\"urn:x\"",
            "<NbOfTxs>99999999999999999999</NbOfTxs>",
            "<IntrBkSttlmAmt Ccy=\"INR\">-1</IntrBkSttlmAmt>",
            "<UETR>not-a-uuid</UETR>",
            "<BICFI>ICICINBB</BICFI>",
            "99999999999999999999.99",
        ];
        for _ in 0..1 + self.below(3) {
            let at = self.below(out.len());
            match self.below(6) {
                0 => out[at] = self.next() as u8,
                1 => out.truncate(at),
                2 => {
                    let end = (at + self.below(200)).min(out.len());
                    let slice = out[at..end].to_vec();
                    out.splice(at..at, slice);
                }
                3 => {
                    let end = (at + self.below(200)).min(out.len());
                    out.drain(at..end);
                }
                4 => {
                    let fragment = FRAGMENTS[self.below(FRAGMENTS.len())].as_bytes().to_vec();
                    out.splice(at..at, fragment);
                }
                _ => {
                    let text = String::from_utf8_lossy(&out).into_owned();
                    let swapped = text.replacen(">ICICINBBXXX<", ">ICICINBB<", 1).replacen(
                        ">440.50<",
                        &format!(">{}<", self.next() % 100_000),
                        1,
                    );
                    out = swapped.into_bytes();
                }
            }
            if out.is_empty() {
                break;
            }
        }
        out
    }
}

#[actix_web::test]
async fn mutated_messages_never_get_a_server_error() {
    let app = TestApp::spawn().await;
    let key = app.keys.bank("ICICI").to_string();
    let seeds = [
        fixture("pacs.008.001.08-two.xml"),
        pacs008(
            "DT-FUZZ",
            &[
                credit_transfer("F1", "ICICINBB", "EBILAEAD", "10.00", "INR"),
                credit_transfer("F2", "ICICINBB", "ADCBAEAA", "20.00", "INR"),
            ],
        ),
    ];
    let mut mutator = Mutator(0x9E37_79B9_7F4A_7C15);
    let mut by_status = std::collections::BTreeMap::new();
    for round in 0..400 {
        let seed = &seeds[round % seeds.len()];
        let body = mutator.mutate(seed.as_bytes());
        let route = if round % 5 == 0 {
            "pain.001"
        } else {
            "pacs.008"
        };
        let reply = app
            .send_as(
                Some(&key),
                "POST",
                &format!("/api/v1/iso20022/{route}"),
                body.clone(),
                &[("content-type", "application/xml")],
            )
            .await;
        assert!(
            reply.status.as_u16() < 500,
            "round {round}: {} for {}",
            reply.status,
            String::from_utf8_lossy(&body)
        );
        if reply.status == 200 {
            assert_valid("pacs.002.001.12", &reply.text);
        }
        *by_status.entry(reply.status.as_u16()).or_insert(0) += 1;
    }
    eprintln!("mutated messages, answers by status: {by_status:?}");
    // Both refusals and reports were exercised.
    assert!(by_status.keys().any(|s| *s == 200), "{by_status:?}");
    assert!(by_status.keys().any(|s| *s == 400), "{by_status:?}");
    app.assert_audit_clean().await;
}

#[actix_web::test]
async fn a_camt054_books_each_credit_once_into_the_prefunded_balance() {
    let app = TestApp::spawn().await;
    let message = fixture("camt.054.001.08-funding.xml");
    assert_valid("camt.054.001.08", &message);
    let by_bank = post_xml(&app, app.keys.bank("ICICI"), "camt.054", &message).await;
    assert_eq!(
        (by_bank.status.as_u16(), by_bank.code()),
        (403, "operator_only")
    );

    let reply = post_xml(&app, &app.keys.operator, "camt.054", &message).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let outcomes: Vec<(&str, &str)> = reply.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entry_ref"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("ENTRY-0001", "booked"),
            ("ENTRY-0002", "ignored"),
            ("ENTRY-0003", "ignored")
        ]
    );
    assert_eq!(reply.body["booked"], 1);
    let movement = &reply.body["entries"][0]["movement"];
    assert_eq!(
        (
            &movement["bank"],
            &movement["direction"],
            &movement["amount"],
            &movement["balance"]
        ),
        (
            &json!("ICICI"),
            &json!("in"),
            &json!("1000000.00"),
            &json!("1000000.00")
        )
    );
    assert_eq!(app.balance("ICICI", "INR").await["balance"], "1000000.00");

    // The same notification again books nothing.
    let again = post_xml(&app, &app.keys.operator, "camt.054", &message).await;
    assert_eq!(again.body["booked"], 0, "{}", again.text);
    assert_eq!(again.body["entries"][0]["outcome"], "duplicate");
    assert_eq!(app.balance("ICICI", "INR").await["balance"], "1000000.00");
    // An entry naming an unknown bank is refused, and books nothing.
    let other = message
        .replace("ENTRY-0001", "ENTRY-0101")
        .replace("ENTRY-0002", "ENTRY-0102")
        .replacen("ICICINBB", "ZZZZINBB", 1);
    let mixed = post_xml(&app, &app.keys.operator, "camt.054", &other).await;
    assert_eq!(
        mixed.body["entries"][0]["code"], "bank_unknown",
        "{}",
        mixed.text
    );
    assert_eq!(app.balance("ICICI", "INR").await["balance"], "1000000.00");
    app.assert_audit_clean().await;
}

/// Every entry of every `Stmt`: (currency, signed amount, status).
fn statement_entries(doc: &Element) -> Vec<(String, rust_decimal::Decimal, String)> {
    let mut out = Vec::new();
    for stmt in doc.at("BkToCstmrStmt").unwrap().children_named("Stmt") {
        for entry in stmt.children_named("Ntry") {
            let amount: rust_decimal::Decimal = entry.text_at("Amt").unwrap().parse().unwrap();
            let signed = if entry.text_at("CdtDbtInd") == Some("DBIT") {
                -amount
            } else {
                amount
            };
            out.push((
                entry
                    .at("Amt")
                    .unwrap()
                    .attribute("Ccy")
                    .unwrap()
                    .to_string(),
                signed,
                entry.text_at("Sts/Cd").unwrap().to_string(),
            ));
        }
    }
    out
}

/// The statement's (OPBD, CLBD) of `currency`, signed.
fn balances(doc: &Element, currency: &str) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
    let stmt = doc
        .at("BkToCstmrStmt")
        .unwrap()
        .children_named("Stmt")
        .find(|s| s.text_at("Acct/Ccy") == Some(currency))
        .unwrap();
    let of = |code: &str| {
        let bal = stmt
            .children_named("Bal")
            .find(|b| b.text_at("Tp/CdOrPrtry/Cd") == Some(code))
            .unwrap();
        let amount: rust_decimal::Decimal = bal.text_at("Amt").unwrap().parse().unwrap();
        if bal.text_at("CdtDbtInd") == Some("DBIT") {
            -amount
        } else {
            amount
        }
    };
    (of("OPBD"), of("CLBD"))
}

#[actix_web::test]
async fn a_camt053_states_a_window_entry_by_entry_and_closes_at_its_settled_balance() {
    let app = TestApp::spawn().await;
    for amount in ["1000.00", "2000.00"] {
        app.submit_accepted(&crate::helpers::inr_to_aed(json!(amount)))
            .await;
    }
    app.submit_accepted(&json!({"sender_bank": "ENBD", "receiver_bank": "ICICI", "amount": "10.00",
                                 "from_currency": "AED", "to_currency": "INR", "reference": "back <&>"}))
        .await;
    let icici = app.keys.bank("ICICI").to_string();
    let get = |key: String, query: String| {
        let app = &app;
        async move {
            app.send_as(
                Some(&key),
                "GET",
                &format!("/api/v1/banks/ICICI/statements/camt.053?{query}"),
                Vec::new(),
                &[],
            )
            .await
        }
    };
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    // Netted: it closes at its position (credit 226.98 less debits of 3,000).
    let netted = get(icici.clone(), format!("window_id={window}")).await;
    assert_eq!(netted.status, 200, "{}", netted.text);
    assert_valid("camt.053.001.08", &netted.text);
    let doc = xml::parse(netted.text.as_bytes()).unwrap();
    assert_eq!(
        balances(&doc, "INR"),
        ("0".parse().unwrap(), "-2773.02".parse().unwrap())
    );

    // Its instructions confirmed, it is settled.
    let listed = app.settlements(window).await;
    for i in listed.body["settlements"].as_array().unwrap() {
        app.confirm_instruction(i["id"].as_str().unwrap()).await;
    }
    app.wait_for_window_state(window, &["settled"]).await;
    let settled = get(icici.clone(), format!("window_id={window}")).await;
    assert_valid("camt.053.001.08", &settled.text);
    let doc = xml::parse(settled.text.as_bytes()).unwrap();
    let entries = statement_entries(&doc);
    // Three transfers and ICICI's pay-in, all booked, summing to the closing balance.
    assert_eq!(entries.len(), 4, "{}", settled.text);
    assert!(entries.iter().all(|(c, _, s)| c == "INR" && s == "BOOK"));
    let (open, close) = balances(&doc, "INR");
    assert_eq!((open, close), ("0".parse().unwrap(), "0".parse().unwrap()));
    assert_eq!(
        entries.iter().map(|e| e.1).sum::<rust_decimal::Decimal>(),
        close - open
    );
    assert!(settled.text.contains("<Ustrd>back &lt;&amp;&gt;</Ustrd>"));
    assert_eq!(
        doc.text_at("BkToCstmrStmt/GrpHdr/MsgPgntn/LastPgInd"),
        Some("true")
    );

    // Paged two transfers at a time: page 1 is not the last, page 2 is; together
    // they hold the three transfers once each.
    let first = get(icici.clone(), format!("window_id={window}&limit=2")).await;
    assert_valid("camt.053.001.08", &first.text);
    let first_doc = xml::parse(first.text.as_bytes()).unwrap();
    assert_eq!(
        first_doc.text_at("BkToCstmrStmt/GrpHdr/MsgPgntn/LastPgInd"),
        Some("false")
    );
    let cursor = first
        .headers
        .get("x-next-cursor")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let second = get(
        icici.clone(),
        format!("window_id={window}&limit=2&cursor={cursor}"),
    )
    .await;
    assert_valid("camt.053.001.08", &second.text);
    let second_doc = xml::parse(second.text.as_bytes()).unwrap();
    assert_eq!(
        second_doc.text_at("BkToCstmrStmt/GrpHdr/MsgPgntn/PgNb"),
        Some("2")
    );
    assert_eq!(
        second_doc.text_at("BkToCstmrStmt/GrpHdr/MsgPgntn/LastPgInd"),
        Some("true")
    );
    let transfers = |d: &Element| statement_entries(d).len() - 1;
    assert_eq!(transfers(&first_doc) + transfers(&second_doc), 3);

    // A date range states every window closed in it, each whole.
    let hour = chrono::Duration::hours(1);
    let now = chrono::Utc::now();
    let range = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        format!(
            "from={}&to={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let ranged = get(icici.clone(), range(now - hour, now + hour)).await;
    assert_eq!(ranged.status, 200, "{}", ranged.text);
    assert_valid("camt.053.001.08", &ranged.text);
    let ranged_doc = xml::parse(ranged.text.as_bytes()).unwrap();
    let ids: Vec<&str> = ranged_doc
        .at("BkToCstmrStmt")
        .unwrap()
        .children_named("Stmt")
        .filter_map(|s| s.text_at("Id"))
        .collect();
    assert!(
        ids.contains(&format!("W{window}-ICICI-INR").as_str()),
        "{ids:?}"
    );
    assert_eq!(statement_entries(&ranged_doc).len(), 4);
    let backwards = get(icici.clone(), range(now, now - hour)).await;
    assert_eq!(backwards.code(), "query_invalid");
    let too_long = get(icici.clone(), range(now - chrono::Duration::days(40), now)).await;
    assert_eq!(too_long.code(), "range_too_large");
    // Only the bank itself (and the operator, an auditor) reads it.
    assert_eq!(
        get(
            app.keys.bank("HDFC").to_string(),
            format!("window_id={window}")
        )
        .await
        .status,
        404
    );
    assert_eq!(
        get(app.keys.auditor.clone(), format!("window_id={window}"))
            .await
            .status,
        200
    );
    let missing = get(icici.clone(), String::new()).await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (400, "query_invalid")
    );
    let bad_cursor = get(icici, format!("window_id={window}&cursor=nonsense")).await;
    assert_eq!(bad_cursor.status, 400);
}

/// A pacs.002.001.12 from the settlement bank: `(end to end id, TxSts)` per line.
fn settlement_report(lines: &[(String, &str)]) -> String {
    let body: String = lines
        .iter()
        .map(|(id, status)| {
            format!("<TxInfAndSts><OrgnlEndToEndId>{id}</OrgnlEndToEndId><TxSts>{status}</TxSts></TxInfAndSts>")
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.002.001.12"><FIToFIPmtStsRpt>
<GrpHdr><MsgId>SB-REPORT-1</MsgId><CreDtTm>2026-12-04T12:00:00Z</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>W-SETTLEMENT</OrgnlMsgId><OrgnlMsgNmId>pacs.009.001.10</OrgnlMsgNmId></OrgnlGrpInfAndSts>
{body}</FIToFIPmtStsRpt></Document>"#
    )
}

#[actix_web::test]
async fn instructions_go_out_as_pacs009_and_the_settlement_banks_pacs002_settles_them() {
    let app = TestApp::spawn().await;
    app.submit_accepted(&crate::helpers::inr_to_aed(json!("1000.00")))
        .await;
    let window = app.close_window().await;
    app.wait_for_window_state(window, &["netted"]).await;
    let path = format!("/api/v1/settlements?window_id={window}&format=pacs.009");
    let reply = app.get(&path).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_valid("pacs.009.001.10", &reply.text);
    let doc = xml::parse(reply.text.as_bytes()).unwrap();
    let transfers: Vec<&Element> = doc
        .at("FICdtTrf")
        .unwrap()
        .children_named("CdtTrfTxInf")
        .collect();
    assert_eq!(transfers.len(), 2);
    let paid_in = transfers
        .iter()
        .find(|t| t.text_at("DbtrAgt/FinInstnId/BICFI") == Some("ICICINBB"))
        .unwrap();
    assert_eq!(paid_in.text_at("IntrBkSttlmAmt"), Some("1000.00"));
    let paid_out = transfers
        .iter()
        .find(|t| t.text_at("CdtrAgt/FinInstnId/BICFI") == Some("EBILAEAD"))
        .unwrap();
    assert_eq!(
        paid_out.at("IntrBkSttlmAmt").unwrap().attribute("Ccy"),
        Some("AED")
    );
    // A bank sees its own instruction only; it may not report settlement.
    let as_icici = app.get_as(Some(app.keys.bank("ICICI")), &path).await;
    assert_eq!(
        xml::parse(as_icici.text.as_bytes())
            .unwrap()
            .at("FICdtTrf")
            .unwrap()
            .children_named("CdtTrfTxInf")
            .count(),
        1
    );

    let ids: Vec<String> = transfers
        .iter()
        .map(|t| t.text_at("PmtId/EndToEndId").unwrap().to_string())
        .collect();
    let report = settlement_report(
        &ids.iter()
            .map(|id| (id.clone(), "ACSC"))
            .collect::<Vec<_>>(),
    );
    assert_valid("pacs.002.001.12", &report);
    let refused = post_xml(&app, app.keys.bank("ICICI"), "pacs.002", &report).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "operator_only")
    );
    let done = post_xml(&app, &app.keys.operator, "pacs.002", &report).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let outcomes: Vec<(&str, bool)> = done.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["outcome"].as_str().unwrap(),
                l["changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, vec![("confirmed", true), ("confirmed", true)]);
    app.wait_for_window_state(window, &["settled"]).await;
    // Nothing is pending any more; the same report again changes nothing.
    let empty = app.get(&path).await;
    assert_eq!((empty.status.as_u16(), empty.code()), (404, "not_found"));
    let again = post_xml(&app, &app.keys.operator, "pacs.002", &report).await;
    assert!(again.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["changed"] == false));

    // Next window: the bank rejects one, and names something that is no instruction.
    app.submit_accepted(&crate::helpers::inr_to_aed(json!("5.00")))
        .await;
    let second = app.close_window().await;
    app.wait_for_window_state(second, &["netted"]).await;
    let doc = xml::parse(
        app.get(&format!(
            "/api/v1/settlements?window_id={second}&format=pacs.009"
        ))
        .await
        .text
        .as_bytes(),
    )
    .unwrap();
    let first_id = doc
        .at("FICdtTrf/CdtTrfTxInf/PmtId/EndToEndId")
        .unwrap()
        .text
        .clone();
    let report = settlement_report(&[
        (first_id, "RJCT"),
        ("NOT-AN-ID".into(), "ACSC"),
        (uuid::Uuid::nil().simple().to_string(), "PDNG"),
    ]);
    let failed = post_xml(&app, &app.keys.operator, "pacs.002", &report).await;
    let outcomes: Vec<&str> = failed.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["failed", "refused", "ignored"],
        "{}",
        failed.text
    );
    app.wait_for_window_state(second, &["settlement_failed"])
        .await;
    app.assert_audit_clean().await;
}
