//! A small, bounded XML reader for ISO 20022 messages: it builds a tree of elements
//! (local names, attributes, text) from UTF-8 input and refuses what no ISO 20022
//! message needs and an attacker would use: a document type declaration (and with it
//! every entity definition, so no entity expansion), references to undefined
//! entities, nesting deeper than `DEPTH_MAX`, more than `ELEMENTS_MAX` elements, and
//! anything that is not well formed. The caller bounds the input's size.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// ISO 20022 messages nest about 12 levels; this leaves room and stops a nesting bomb.
pub const DEPTH_MAX: usize = 40;
/// More elements than any message the engine takes (the transaction limit bounds
/// real messages far below this); stops a flood of tiny elements.
pub const ELEMENTS_MAX: usize = 500_000;

/// One element: its local name (prefix dropped), attributes (local names), the text
/// directly inside it and its child elements in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` (child names separated by `/`) below this one.
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, name| e.child(name))
    }

    /// The trimmed text at `path`, if the element is there and the text is not empty.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path)
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a body is not an XML document the engine will read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the XML declares an encoding other than UTF-8 ({0})")]
    EncodingNotUtf8(String),
    #[error("the XML has a document type declaration; ISO 20022 messages have none, and none is accepted (no DTDs, no entity definitions)")]
    DoctypeForbidden,
    #[error(
        "the XML refers to the entity &{0}; which is not one of XML's five predefined entities"
    )]
    EntityUnknown(String),
    #[error("the XML nests elements deeper than {DEPTH_MAX} levels")]
    TooDeep,
    #[error("the XML has more than {ELEMENTS_MAX} elements")]
    TooManyElements,
    #[error("the XML has no root element")]
    Empty,
    #[error("the XML is not well formed: {0}")]
    Malformed(String),
}

/// Reads `bytes` into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| malformed(&e))?;
                    let name = String::from_utf8_lossy(&encoding).to_string();
                    if !name.eq_ignore_ascii_case("utf-8") {
                        return Err(XmlError::EncodingNotUtf8(name));
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::DoctypeForbidden),
            Event::Start(start) => {
                elements += 1;
                if elements > ELEMENTS_MAX {
                    return Err(XmlError::TooManyElements);
                }
                if root.is_some() {
                    return Err(XmlError::Malformed("content after the root element".into()));
                }
                if stack.len() >= DEPTH_MAX {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > ELEMENTS_MAX {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= DEPTH_MAX {
                    return Err(XmlError::TooDeep);
                }
                let done = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None if root.is_none() => root = Some(done),
                    None => {
                        return Err(XmlError::Malformed("content after the root element".into()))
                    }
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("an end tag without its start".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                let content = text.xml_content().map_err(|e| malformed(&e))?;
                push_text(&mut stack, &content)?;
            }
            Event::CData(data) => {
                let content = data.xml_content().map_err(|e| malformed(&e))?;
                push_text(&mut stack, &content)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| malformed(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| malformed(&e))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| XmlError::EntityUnknown(name.to_string()))?
                            .to_string()
                    }
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(format!(
            "the element <{}> is not closed",
            stack.last().map(|e| e.name.as_str()).unwrap_or("")
        )));
    }
    root.ok_or(XmlError::Empty)
}

/// Text goes to the open element; outside the root only whitespace may stand.
fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::Malformed("text outside the root element".into())),
    }
}

fn element(start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    let name = String::from_utf8_lossy(start.local_name().as_ref()).to_string();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(&e))?;
        let key = attribute.key;
        // `xmlns` itself is kept under its own name (the message's namespace).
        let local = if key.as_ref() == b"xmlns" {
            "xmlns".to_string()
        } else {
            String::from_utf8_lossy(key.local_name().as_ref()).to_string()
        };
        let value = attribute.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            )) => XmlError::EntityUnknown(name),
            other => malformed(&other),
        })?;
        attributes.push((local, value.to_string()));
    }
    Ok(Element {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Escapes text for an element's content or an attribute value.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_as_a_tree_of_local_names() {
        let root = parse(
            br#"<?xml version="1.0" encoding="UTF-8"?>
            <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">
              <FIToFICstmrCdtTrf><GrpHdr><MsgId>M&amp;1</MsgId></GrpHdr>
                <CdtTrfTxInf><IntrBkSttlmAmt Ccy="AED">440.50</IntrBkSttlmAmt></CdtTrfTxInf>
                <CdtTrfTxInf/>
              </FIToFICstmrCdtTrf></Document>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Document");
        assert_eq!(
            root.attribute("xmlns"),
            Some("urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08")
        );
        let body = root.child("FIToFICstmrCdtTrf").unwrap();
        assert_eq!(body.text_at("GrpHdr/MsgId"), Some("M&1"));
        assert_eq!(body.children_named("CdtTrfTxInf").count(), 2);
        let amount = body.at("CdtTrfTxInf/IntrBkSttlmAmt").unwrap();
        assert_eq!(
            (amount.text.as_str(), amount.attribute("Ccy")),
            ("440.50", Some("AED"))
        );
    }

    #[test]
    fn prefixes_are_dropped() {
        let root = parse(br#"<p:Document xmlns:p="urn:x"><p:A>1</p:A></p:Document>"#).unwrap();
        assert_eq!(
            (root.name.as_str(), root.text_at("A")),
            ("Document", Some("1"))
        );
    }

    #[test]
    fn hostile_and_broken_input_is_refused_with_its_reason() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Document>&lol2;</Document>"#;
        assert_eq!(parse(bomb), Err(XmlError::DoctypeForbidden));
        let external = br#"<!DOCTYPE d SYSTEM "file:///etc/passwd"><Document/>"#;
        assert_eq!(parse(external), Err(XmlError::DoctypeForbidden));
        assert_eq!(
            parse(b"<Document>&lol;</Document>"),
            Err(XmlError::EntityUnknown("lol".into()))
        );
        assert_eq!(
            parse(br#"<Document a="&x;"/>"#),
            Err(XmlError::EntityUnknown("x".into()))
        );
        let deep = format!(
            "{}{}",
            "<a>".repeat(DEPTH_MAX + 1),
            "</a>".repeat(DEPTH_MAX + 1)
        );
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        let wide = format!("<a>{}</a>", "<b/>".repeat(ELEMENTS_MAX));
        assert_eq!(parse(wide.as_bytes()), Err(XmlError::TooManyElements));
        assert_eq!(parse(b""), Err(XmlError::Empty));
        assert_eq!(parse(b"\xff\xfe<a/>"), Err(XmlError::NotUtf8));
        assert!(matches!(
            parse(br#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#),
            Err(XmlError::EncodingNotUtf8(_))
        ));
        for broken in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"<a></a><b/>",
            b"text",
            b"<a x=1/>",
            b"</a>",
        ] {
            assert!(
                matches!(parse(broken), Err(XmlError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    #[test]
    fn character_references_and_cdata_are_text() {
        let root = parse(b"<a>&#65;&#x42;<![CDATA[<c>]]></a>").unwrap();
        assert_eq!(root.text, "AB<c>");
    }
}
