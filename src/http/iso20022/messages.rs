//! The ISO 20022 credit transfers the engine takes in — pacs.008 (FI to FI customer
//! credit transfer) and pain.001 (customer credit transfer initiation) — read from
//! their XML into one shape per transaction, and the engine's answer, pacs.002 (FI to
//! FI payment status report), written back.

use chrono::{DateTime, SecondsFormat, Utc};

use super::xml::{self, Element, XmlError};

/// The namespace every ISO 20022 message document names, before its message id.
const NAMESPACE_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";

/// A credit transfer message the engine takes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    Pacs008,
    Pain001,
}

impl MessageKind {
    /// The message definition, without its version (`pacs.008`).
    pub fn family(self) -> &'static str {
        match self {
            MessageKind::Pacs008 => "pacs.008",
            MessageKind::Pain001 => "pain.001",
        }
    }

    /// The versions read, as message ids: their paths to the fields the engine uses
    /// are the same in each.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            MessageKind::Pacs008 => &[
                "pacs.008.001.08",
                "pacs.008.001.09",
                "pacs.008.001.10",
                "pacs.008.001.11",
                "pacs.008.001.12",
                "pacs.008.001.13",
            ],
            MessageKind::Pain001 => &["pain.001.001.09", "pain.001.001.10", "pain.001.001.11"],
        }
    }

    fn body(self) -> &'static str {
        match self {
            MessageKind::Pacs008 => "FIToFICstmrCdtTrf",
            MessageKind::Pain001 => "CstmrCdtTrfInitn",
        }
    }
}

/// An amount as the message states it: its exact text and its `Ccy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatedAmount {
    pub text: String,
    pub currency: String,
}

/// A debtor or creditor: its name and country (postal address, else residence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Party {
    pub name: Option<String>,
    pub country: Option<String>,
}

/// One credit transfer of a message, as read (nothing checked beyond its presence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditTransfer {
    /// Its place in the message, from 0.
    pub index: usize,
    pub instruction_id: Option<String>,
    pub end_to_end_id: Option<String>,
    pub transaction_id: Option<String>,
    pub uetr: Option<String>,
    /// pacs.008's interbank settlement amount.
    pub settlement: Option<StatedAmount>,
    /// The instructed amount (pain.001's only amount).
    pub instructed: Option<StatedAmount>,
    pub debtor_agent: Option<String>,
    pub creditor_agent: Option<String>,
    pub debtor: Party,
    pub creditor: Party,
    pub debtor_account: Option<String>,
    pub creditor_account: Option<String>,
    /// The first unstructured remittance line.
    pub remittance: Option<String>,
}

/// A message read: its id and version and its transactions in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message id of its version, as `pacs.008.001.08`.
    pub definition: String,
    pub message_id: String,
    pub transactions: Vec<CreditTransfer>,
}

/// Why a message as a whole is refused (nothing of it was done).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the document is not an ISO 20022 message (its root is not a Document in an urn:iso:std:iso:20022:tech:xsd namespace)")]
    NotIso20022,
    #[error("this route takes {expected} messages; the document is a {found}")]
    WrongMessage {
        expected: &'static str,
        found: String,
    },
    #[error("{found} is not a version this engine reads; it reads {supported}")]
    VersionUnsupported { found: String, supported: String },
    #[error("the message has no {0}")]
    FieldMissing(&'static str),
    #[error("the message has no credit transfer")]
    NoTransactions,
    #[error(
        "the message carries {found} credit transfers; at most {max} are taken in one message"
    )]
    TooManyTransactions { found: usize, max: usize },
    #[error("the group header says NbOfTxs {declared}, the message carries {found}")]
    CountMismatch { declared: String, found: usize },
}

impl MessageError {
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::Xml(XmlError::DoctypeForbidden) => "xml_doctype_forbidden",
            MessageError::Xml(XmlError::EntityUnknown(_)) => "xml_entity_unknown",
            MessageError::Xml(XmlError::TooDeep) => "xml_too_deep",
            MessageError::Xml(XmlError::TooManyElements) => "xml_too_many_elements",
            MessageError::Xml(_) => "xml_malformed",
            MessageError::NotIso20022 => "iso_message_unknown",
            MessageError::WrongMessage { .. } => "iso_message_wrong_route",
            MessageError::VersionUnsupported { .. } => "iso_version_unsupported",
            MessageError::FieldMissing(_) => "iso_field_missing",
            MessageError::NoTransactions => "iso_no_transactions",
            MessageError::TooManyTransactions { .. } => "iso_too_many_transactions",
            MessageError::CountMismatch { .. } => "iso_transaction_count_mismatch",
        }
    }
}

/// The message id of `root`'s version (`pacs.008.001.08`), if it is a `Document` of
/// `family` in one of `versions`.
fn definition<'a>(
    root: &'a Element,
    family: &'static str,
    versions: &[&str],
) -> Result<&'a str, MessageError> {
    let definition = root
        .attribute("xmlns")
        .and_then(|ns| ns.strip_prefix(NAMESPACE_PREFIX))
        .filter(|_| root.name == "Document")
        .ok_or(MessageError::NotIso20022)?;
    if !definition.starts_with(family) {
        return Err(MessageError::WrongMessage {
            expected: family,
            found: definition.to_string(),
        });
    }
    if !versions.contains(&definition) {
        return Err(MessageError::VersionUnsupported {
            found: definition.to_string(),
            supported: versions.join(", "),
        });
    }
    Ok(definition)
}

/// `root`'s message (the element `name` below the Document) and its `GrpHdr/MsgId`.
fn body_and_id<'a>(
    root: &'a Element,
    name: &'static str,
) -> Result<(&'a Element, String), MessageError> {
    let body = root.child(name).ok_or(MessageError::FieldMissing(name))?;
    let message_id = body
        .text_at("GrpHdr/MsgId")
        .ok_or(MessageError::FieldMissing("GrpHdr/MsgId"))?;
    Ok((body, message_id.to_string()))
}

/// Refuses a message carrying more than `max` transactions (or entries).
fn at_most(found: usize, max: usize) -> Result<(), MessageError> {
    if found > max {
        return Err(MessageError::TooManyTransactions { found, max });
    }
    Ok(())
}

/// The status report versions read back (their `TxInfAndSts` paths are the same).
const STATUS_REPORTS: &[&str] = &["pacs.002.001.10", "pacs.002.001.11", "pacs.002.001.12"];

/// One line of a status report read back: what it names (`OrgnlEndToEndId`, else
/// `OrgnlTxId`) and its `TxSts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub original_id: Option<String>,
    pub status: Option<String>,
}

/// A pacs.002 read back: its id and lines in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    pub message_id: String,
    pub lines: Vec<StatusLine>,
}

/// Reads a pacs.002 (FIToFIPmtStsRpt) with at most `lines_max` lines.
pub fn read_status_report(bytes: &[u8], lines_max: usize) -> Result<StatusReport, MessageError> {
    let root = xml::parse(bytes)?;
    definition(&root, "pacs.002", STATUS_REPORTS)?;
    let (body, message_id) = body_and_id(&root, "FIToFIPmtStsRpt")?;
    at_most(body.children_named("TxInfAndSts").count(), lines_max)?;
    let lines: Vec<StatusLine> = body
        .children_named("TxInfAndSts")
        .map(|line| StatusLine {
            original_id: text(line, "OrgnlEndToEndId").or_else(|| text(line, "OrgnlTxId")),
            status: text(line, "TxSts"),
        })
        .collect();
    if lines.is_empty() {
        return Err(MessageError::NoTransactions);
    }
    Ok(StatusReport { message_id, lines })
}

/// Reads a message of `kind` with at most `transactions_max` transactions.
pub fn read(
    kind: MessageKind,
    bytes: &[u8],
    transactions_max: usize,
) -> Result<Message, MessageError> {
    let root = xml::parse(bytes)?;
    let definition = definition(&root, kind.family(), kind.versions())?;
    let (body, message_id) = body_and_id(&root, kind.body())?;
    let declared = body
        .text_at("GrpHdr/NbOfTxs")
        .ok_or(MessageError::FieldMissing("GrpHdr/NbOfTxs"))?;
    let transactions = match kind {
        MessageKind::Pacs008 => pacs008_transactions(body, transactions_max)?,
        MessageKind::Pain001 => pain001_transactions(body, transactions_max)?,
    };
    if transactions.is_empty() {
        return Err(MessageError::NoTransactions);
    }
    if declared.parse::<usize>().ok() != Some(transactions.len()) {
        return Err(MessageError::CountMismatch {
            declared: declared.to_string(),
            found: transactions.len(),
        });
    }
    Ok(Message {
        definition: definition.to_string(),
        message_id,
        transactions,
    })
}

fn pacs008_transactions(body: &Element, max: usize) -> Result<Vec<CreditTransfer>, MessageError> {
    at_most(body.children_named("CdtTrfTxInf").count(), max)?;
    Ok(body
        .children_named("CdtTrfTxInf")
        .enumerate()
        .map(|(index, tx)| CreditTransfer {
            index,
            instruction_id: text(tx, "PmtId/InstrId"),
            end_to_end_id: text(tx, "PmtId/EndToEndId"),
            transaction_id: text(tx, "PmtId/TxId"),
            uetr: text(tx, "PmtId/UETR"),
            settlement: amount(tx, "IntrBkSttlmAmt"),
            instructed: amount(tx, "InstdAmt"),
            debtor_agent: text(tx, "DbtrAgt/FinInstnId/BICFI"),
            creditor_agent: text(tx, "CdtrAgt/FinInstnId/BICFI"),
            debtor: party(tx.child("Dbtr")),
            creditor: party(tx.child("Cdtr")),
            debtor_account: account(tx.child("DbtrAcct")),
            creditor_account: account(tx.child("CdtrAcct")),
            remittance: text(tx, "RmtInf/Ustrd"),
        })
        .collect())
}

fn pain001_transactions(body: &Element, max: usize) -> Result<Vec<CreditTransfer>, MessageError> {
    let found: usize = body
        .children_named("PmtInf")
        .map(|p| p.children_named("CdtTrfTxInf").count())
        .sum();
    at_most(found, max)?;
    let mut transactions = Vec::with_capacity(found);
    for payment in body.children_named("PmtInf") {
        // The debtor side is stated once per payment information block.
        let debtor_agent = text(payment, "DbtrAgt/FinInstnId/BICFI");
        let debtor = party(payment.child("Dbtr"));
        let debtor_account = account(payment.child("DbtrAcct"));
        for tx in payment.children_named("CdtTrfTxInf") {
            transactions.push(CreditTransfer {
                index: transactions.len(),
                instruction_id: text(tx, "PmtId/InstrId"),
                end_to_end_id: text(tx, "PmtId/EndToEndId"),
                transaction_id: None,
                uetr: text(tx, "PmtId/UETR"),
                settlement: None,
                instructed: amount(tx, "Amt/InstdAmt"),
                debtor_agent: debtor_agent.clone(),
                creditor_agent: text(tx, "CdtrAgt/FinInstnId/BICFI"),
                debtor: debtor.clone(),
                creditor: party(tx.child("Cdtr")),
                debtor_account: debtor_account.clone(),
                creditor_account: account(tx.child("CdtrAcct")),
                remittance: text(tx, "RmtInf/Ustrd"),
            });
        }
    }
    Ok(transactions)
}

fn text(e: &Element, path: &str) -> Option<String> {
    e.text_at(path).map(str::to_string)
}

fn amount(e: &Element, path: &str) -> Option<StatedAmount> {
    let element = e.at(path)?;
    Some(StatedAmount {
        text: element.text.trim().to_string(),
        currency: element.attribute("Ccy").unwrap_or("").to_string(),
    })
}

fn party(e: Option<&Element>) -> Party {
    let Some(e) = e else {
        return Party::default();
    };
    Party {
        name: text(e, "Nm"),
        country: text(e, "PstlAdr/Ctry").or_else(|| text(e, "CtryOfRes")),
    }
}

fn account(e: Option<&Element>) -> Option<String> {
    let e = e?;
    text(e, "Id/IBAN").or_else(|| text(e, "Id/Othr/Id"))
}

/// The notification versions read: the paths below are those of camt.054.001.08.
pub const NOTIFICATION_VERSIONS: &[&str] = &["camt.054.001.08"];

/// One entry of a bank-to-customer debit/credit notification, as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationEntry {
    pub index: usize,
    /// `NtryRef`, else `AcctSvcrRef`: what books the entry once.
    pub entry_ref: Option<String>,
    pub amount: Option<StatedAmount>,
    /// `CRDT` or `DBIT`.
    pub direction: Option<String>,
    /// `BOOK`, `PDNG`, `INFO`, … (`Sts/Cd`).
    pub status: Option<String>,
    /// The funding bank: its first transaction's debtor agent.
    pub debtor_agent: Option<String>,
    pub end_to_end_id: Option<String>,
    pub remittance: Option<String>,
}

/// A camt.054 read: its id and version and every entry of every notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub definition: String,
    pub message_id: String,
    pub entries: Vec<NotificationEntry>,
}

/// Reads a camt.054 (BkToCstmrDbtCdtNtfctn) with at most `entries_max` entries.
pub fn read_notification(bytes: &[u8], entries_max: usize) -> Result<Notification, MessageError> {
    let root = xml::parse(bytes)?;
    let definition = definition(&root, "camt.054", NOTIFICATION_VERSIONS)?;
    let (body, message_id) = body_and_id(&root, "BkToCstmrDbtCdtNtfctn")?;
    let found: usize = body
        .children_named("Ntfctn")
        .map(|n| n.children_named("Ntry").count())
        .sum();
    at_most(found, entries_max)?;
    let mut entries = Vec::with_capacity(found);
    for notification in body.children_named("Ntfctn") {
        for entry in notification.children_named("Ntry") {
            let details = entry.at("NtryDtls/TxDtls");
            entries.push(NotificationEntry {
                index: entries.len(),
                entry_ref: text(entry, "NtryRef").or_else(|| text(entry, "AcctSvcrRef")),
                amount: amount(entry, "Amt"),
                direction: text(entry, "CdtDbtInd"),
                status: text(entry, "Sts/Cd"),
                debtor_agent: details.and_then(|d| text(d, "RltdAgts/DbtrAgt/FinInstnId/BICFI")),
                end_to_end_id: details.and_then(|d| text(d, "Refs/EndToEndId")),
                remittance: details.and_then(|d| text(d, "RmtInf/Ustrd")),
            });
        }
    }
    if entries.is_empty() {
        return Err(MessageError::NoTransactions);
    }
    Ok(Notification {
        definition: definition.to_string(),
        message_id,
        entries,
    })
}

/// The status report's version: the one whose schema the tests validate against.
pub const STATUS_REPORT: &str = "pacs.002.001.12";

/// One transaction's line in a status report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionStatus {
    pub end_to_end_id: Option<String>,
    pub transaction_id: Option<String>,
    /// `ACCP`, `ACSC`, `PDNG` or `RJCT`.
    pub status: &'static str,
    /// An ISO external status reason code (`AM04`, `RC01`, …), for a rejection.
    pub reason: Option<&'static str>,
    /// Free text, at most 105 characters once written: the engine's own code and
    /// detail, or the id of the transfer it made.
    pub information: Option<String>,
}

/// The group status: the one status every transaction has, else `PART`.
fn group_status(lines: &[TransactionStatus]) -> &'static str {
    match lines.first() {
        Some(first) if lines.iter().all(|l| l.status == first.status) => first.status,
        _ => "PART",
    }
}

/// A pacs.002 answering `original` line by line, as `report_id` made at `at`.
pub fn status_report(
    original: &Message,
    lines: &[TransactionStatus],
    report_id: &str,
    at: DateTime<Utc>,
) -> String {
    use std::fmt::Write;
    let esc = |t: &str| xml::escape(t).into_owned();
    let mut out = String::with_capacity(512 + lines.len() * 256);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<Document xmlns=\"{NAMESPACE_PREFIX}{STATUS_REPORT}\"><FIToFIPmtStsRpt>\
         <GrpHdr><MsgId>{}</MsgId><CreDtTm>{}</CreDtTm></GrpHdr>\
         <OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId><OrgnlMsgNmId>{}</OrgnlMsgNmId>\
         <GrpSts>{}</GrpSts></OrgnlGrpInfAndSts>",
        esc(report_id),
        at.to_rfc3339_opts(SecondsFormat::Millis, true),
        esc(&max_text(&original.message_id, 35)),
        esc(&original.definition),
        group_status(lines),
    );
    for line in lines {
        out.push_str("<TxInfAndSts>");
        if let Some(id) = &line.end_to_end_id {
            let _ = write!(
                out,
                "<OrgnlEndToEndId>{}</OrgnlEndToEndId>",
                esc(&max_text(id, 35))
            );
        }
        if let Some(id) = &line.transaction_id {
            let _ = write!(out, "<OrgnlTxId>{}</OrgnlTxId>", esc(&max_text(id, 35)));
        }
        let _ = write!(out, "<TxSts>{}</TxSts>", line.status);
        if line.reason.is_some() || line.information.is_some() {
            out.push_str("<StsRsnInf>");
            if let Some(code) = line.reason {
                let _ = write!(out, "<Rsn><Cd>{code}</Cd></Rsn>");
            }
            if let Some(info) = &line.information {
                let _ = write!(out, "<AddtlInf>{}</AddtlInf>", esc(&max_text(info, 105)));
            }
            out.push_str("</StsRsnInf>");
        }
        out.push_str("</TxInfAndSts>");
    }
    out.push_str("</FIToFIPmtStsRpt></Document>\n");
    out
}

/// `text` cut to at most `max` characters (ISO `MaxNNText`), never empty.
fn max_text(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.is_empty() {
        "NOTPROVIDED".to_string()
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacs008(version: &str, transactions: &str, count: usize) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{version}"><FIToFICstmrCdtTrf>
<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-12-04T10:00:00</CreDtTm><NbOfTxs>{count}</NbOfTxs>
<SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>{transactions}</FIToFICstmrCdtTrf></Document>"#
        )
    }

    const ONE: &str = r#"<CdtTrfTxInf><PmtId><InstrId>I1</InstrId><EndToEndId>E1</EndToEndId><TxId>T1</TxId>
<UETR>7c2a8f0e-3b1d-4a56-9e21-5d8c0f4b7a11</UETR></PmtId>
<IntrBkSttlmAmt Ccy="AED">440.50</IntrBkSttlmAmt><InstdAmt Ccy="INR">10000.00</InstdAmt>
<ChrgBr>SHAR</ChrgBr><Dbtr><Nm>Asha Traders</Nm><PstlAdr><Ctry>IN</Ctry></PstlAdr></Dbtr>
<DbtrAcct><Id><Othr><Id>ICICI-1</Id></Othr></Id></DbtrAcct>
<DbtrAgt><FinInstnId><BICFI>ICICINBBXXX</BICFI></FinInstnId></DbtrAgt>
<CdtrAgt><FinInstnId><BICFI>EBILAEAD</BICFI></FinInstnId></CdtrAgt>
<Cdtr><Nm>Gulf Spice</Nm><CtryOfRes>AE</CtryOfRes></Cdtr>
<CdtrAcct><Id><IBAN>AE070331234567890123456</IBAN></Id></CdtrAcct>
<RmtInf><Ustrd>invoice 1001</Ustrd></RmtInf></CdtTrfTxInf>"#;

    #[test]
    fn a_pacs008_transaction_reads_into_its_fields() {
        let message = read(
            MessageKind::Pacs008,
            pacs008("pacs.008.001.08", ONE, 1).as_bytes(),
            10,
        )
        .unwrap();
        assert_eq!(
            (message.definition.as_str(), message.message_id.as_str()),
            ("pacs.008.001.08", "MSG-1")
        );
        let tx = &message.transactions[0];
        assert_eq!(tx.end_to_end_id.as_deref(), Some("E1"));
        assert_eq!(
            tx.uetr.as_deref(),
            Some("7c2a8f0e-3b1d-4a56-9e21-5d8c0f4b7a11")
        );
        assert_eq!(
            tx.settlement,
            Some(StatedAmount {
                text: "440.50".into(),
                currency: "AED".into()
            })
        );
        assert_eq!(
            tx.instructed.as_ref().map(|a| a.currency.as_str()),
            Some("INR")
        );
        assert_eq!(tx.debtor_agent.as_deref(), Some("ICICINBBXXX"));
        assert_eq!(tx.creditor.country.as_deref(), Some("AE"));
        assert_eq!(tx.debtor.name.as_deref(), Some("Asha Traders"));
        assert_eq!(
            tx.creditor_account.as_deref(),
            Some("AE070331234567890123456")
        );
        assert_eq!(tx.remittance.as_deref(), Some("invoice 1001"));
    }

    #[test]
    fn a_message_of_the_wrong_kind_version_or_count_is_refused_whole() {
        let read8 = |xml: String| read(MessageKind::Pacs008, xml.as_bytes(), 2);
        assert!(matches!(
            read8(pacs008("pacs.008.001.02", ONE, 1)),
            Err(MessageError::VersionUnsupported { .. })
        ));
        assert!(matches!(
            read8(pacs008("pain.001.001.09", ONE, 1)),
            Err(MessageError::WrongMessage { .. })
        ));
        assert!(matches!(
            read8(pacs008("pacs.008.001.08", ONE, 2)),
            Err(MessageError::CountMismatch { .. })
        ));
        assert_eq!(
            read8(pacs008("pacs.008.001.08", "", 0)),
            Err(MessageError::NoTransactions)
        );
        assert_eq!(
            read8(pacs008("pacs.008.001.08", &ONE.repeat(3), 3)),
            Err(MessageError::TooManyTransactions { found: 3, max: 2 })
        );
        assert_eq!(read8("<Document/>".into()), Err(MessageError::NotIso20022));
        assert_eq!(
            read8(r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"/>"#.into()),
            Err(MessageError::FieldMissing("FIToFICstmrCdtTrf"))
        );
    }

    #[test]
    fn a_status_report_answers_each_transaction_and_escapes_what_it_repeats() {
        let message = Message {
            definition: "pacs.008.001.08".into(),
            message_id: "M<1>".into(),
            transactions: Vec::new(),
        };
        let lines = [
            TransactionStatus {
                end_to_end_id: Some("E1".into()),
                transaction_id: Some("T1".into()),
                status: "ACCP",
                reason: None,
                information: Some("transaction_id 0192".into()),
            },
            TransactionStatus {
                end_to_end_id: Some("E&2".into()),
                transaction_id: None,
                status: "RJCT",
                reason: Some("AM04"),
                information: Some("x".repeat(200)),
            },
        ];
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let report = status_report(&message, &lines, "R1", at);
        assert!(
            report.contains("<OrgnlMsgId>M&lt;1&gt;</OrgnlMsgId>"),
            "{report}"
        );
        assert!(report.contains("<GrpSts>PART</GrpSts>"));
        assert!(report.contains("<OrgnlEndToEndId>E&amp;2</OrgnlEndToEndId>"));
        assert!(report.contains("<Rsn><Cd>AM04</Cd></Rsn>"));
        assert!(report.contains(&format!("<AddtlInf>{}</AddtlInf>", "x".repeat(105))));
        assert!(report.contains("<CreDtTm>2026-12-04T10:00:00.000Z</CreDtTm>"));
        assert!(xml::parse(report.as_bytes()).is_ok());
    }
}
