//! The operator's screening list routes: list the entries (operator, auditor), add
//! one, remove one, import a list in CSV (operator). The CSV reader is here, at the
//! edge, like the ISO 20022 one: a file ends in the same `NewScreeningEntry`s a JSON
//! body does, through the same input ladder (`NewScreeningEntry::parse`).

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::ApiError;
use super::{page_limit, paginate, read_body, read_json, AppState};
use crate::domain::screening::{NewScreeningEntry, RawScreeningEntry, ScreeningList};
use crate::domain::InputError;
use crate::views::{self, ScreeningEntryPage, ScreeningEntryView, ScreeningImportView};

/// The header line a list in CSV starts with: its columns, in this order.
pub const CSV_HEADER: [&str; 5] = ["list", "name", "aliases", "countries", "reference"];
/// Most entries one import may hold.
pub const CSV_ROWS_MAX: usize = 100_000;
/// What separates the items of the `aliases` and `countries` columns.
const ITEM_SEPARATOR: char = ';';

fn input(field: &'static str) -> impl Fn(InputError) -> ApiError {
    move |error| ApiError::Input { field, error }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreeningQuery {
    /// One list: `sanctions` or `pep`.
    #[param(pattern = "^(sanctions|pep)$")]
    list: Option<String>,
    /// 1 to the page size maximum (default 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// List the screening list's entries (operator, auditor).
///
/// In id order (the order they were added), paged like the other lists.
#[utoipa::path(get, path = "/api/v1/screening/entries", operation_id = "list_screening_entries", tag = "screening",
    params(ScreeningQuery),
    responses(
        (status = 200, description = "A page of entries, in id order", body = ScreeningEntryPage),
        (status = 400, description = "Problem code: `query_invalid` (limit or cursor)"),
        (status = 403, description = "Problem code: `operator_or_auditor_only`"),
        (status = 422, description = "Problem code: `screening_list_invalid`"),
    ))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader_of_everything()?;
    let query = web::Query::<ScreeningQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
    let limit = page_limit(query.limit.as_deref(), &state)?;
    let list = query
        .list
        .as_deref()
        .map(|l| ScreeningList::parse(l).ok_or(InputError::ScreeningListInvalid))
        .transpose()
        .map_err(input("list"))?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| ApiError::QueryInvalid(format!("{c} is not a screening cursor")))
        })
        .transpose()?;
    let entries = state
        .store
        .screening_entries_page(list, after, limit + 1)
        .await?;
    let (page, next) = paginate(entries, limit, |e| e.id.to_string());
    Ok(HttpResponse::Ok().json(ScreeningEntryPage {
        entries: page.iter().map(views::screening_entry).collect(),
        next_cursor: next,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NewScreeningEntry)]
pub struct NewScreeningEntryBody {
    /// `sanctions` or `pep`.
    #[schema(example = "sanctions", pattern = "^(sanctions|pep)$")]
    list: String,
    /// 1 to 200 characters, no control characters.
    #[schema(example = "Ahmed Al-Rashid", min_length = 1, max_length = 200)]
    name: String,
    /// At most 20, each 1 to 200 characters, no control characters.
    #[schema(max_items = 20)]
    aliases: Option<Vec<String>>,
    /// At most 20 ISO 3166 alpha-2 codes (two upper-case letters).
    #[schema(max_items = 20)]
    countries: Option<Vec<String>>,
    /// The list provider's reference: 1 to 100 characters, unique within the list.
    #[schema(example = "OFAC-12345", min_length = 1, max_length = 100)]
    reference: Option<String>,
}

/// The texts of an optional list of them (none when absent).
fn strs(items: &Option<Vec<String>>) -> Vec<&str> {
    items.iter().flatten().map(String::as_str).collect()
}

/// A body through the entry's input ladder; the first refused field is named.
fn parse_body(body: &NewScreeningEntryBody) -> Result<NewScreeningEntry, ApiError> {
    NewScreeningEntry::parse(RawScreeningEntry {
        list: &body.list,
        name: &body.name,
        aliases: strs(&body.aliases),
        countries: strs(&body.countries),
        reference: body.reference.as_deref(),
    })
    .map_err(|(field, error)| ApiError::Input { field, error })
}

/// Add an entry to the screening list (operator).
///
/// Stored with its audit entry (`screening_entry_added`) in one transaction; the
/// engine screens against it from the answer on.
#[utoipa::path(post, path = "/api/v1/screening/entries", operation_id = "add_screening_entry", tag = "screening",
    request_body = NewScreeningEntryBody,
    responses(
        (status = 201, description = "The entry as stored; audited", body = ScreeningEntryView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 409, description = "Problem code: `already_exists` (an entry of the list with this reference)"),
        (status = 422, description = "Problem codes: `screening_list_invalid`, `text_too_long` (also an empty name, alias or reference), `text_invalid`, `too_many_items` (aliases, countries), `country_invalid`"),
    ))]
pub async fn add(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let body: NewScreeningEntryBody = read_json(payload, &state).await?;
    let entry = parse_body(&body)?;
    let stored = state
        .engine
        .add_screening_entry(&caller.origin(), entry)
        .await?;
    Ok(HttpResponse::Created().json(views::screening_entry(&stored)))
}

/// Remove an entry from the screening list (operator).
///
/// Deleted with its audit entry (`screening_entry_removed`, the entry as `before`)
/// in one transaction; answers the entry as it was.
#[utoipa::path(delete, path = "/api/v1/screening/entries/{id}", operation_id = "remove_screening_entry", tag = "screening",
    params(("id" = i64, Path, description = "The entry's id", minimum = 1)),
    responses(
        (status = 200, description = "The entry removed; audited", body = ScreeningEntryView),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 404, description = "Problem code: `not_found`"),
        (status = 422, description = "Problem code: `screening_entry_id_invalid`"),
    ))]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let id = path
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(InputError::ScreeningEntryIdInvalid)
        .map_err(input("id"))?;
    let removed = state
        .engine
        .remove_screening_entry(&caller.origin(), id)
        .await?;
    Ok(HttpResponse::Ok().json(views::screening_entry(&removed)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true`: the file replaces the whole list; `false` (the default): its entries
    /// are added to it.
    #[param(value_type = Option<bool>)]
    replace: Option<String>,
}

/// Import entries into the screening list from CSV (operator).
///
/// The body is CSV (RFC 4180, UTF-8), at most the ISO message size limit
/// (`--iso-message-size-max-bytes`) and 100,000 entries: the header line
/// `list,name,aliases,countries,reference`, then one entry a line. `aliases` and
/// `countries` hold their items separated by `;` (empty: none); an empty
/// `reference` is none. A field may be double-quoted (a `,` or `;` inside it, or a
/// quote written `""`). Every line is checked as `POST /api/v1/screening/entries`
/// checks a body; one bad line refuses the whole file (`csv_invalid`, naming the
/// line and what is wrong with it). The file is stored in one transaction, after
/// deleting the whole list with `replace=true`, with one audit entry
/// (`screening_list_imported`, subject `import`).
#[utoipa::path(post, path = "/api/v1/screening/entries/import", operation_id = "import_screening_entries", tag = "screening",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "`list,name,aliases,countries,reference`, then one entry a line",
        example = "list,name,aliases,countries,reference\nsanctions,Ahmed Al-Rashid,\"Ahmad Rashid;Ahmed \"\"the Trader\"\" Rashid\",AE;IN,OFAC-12345\npep,Jane Doe,,GB,\n"),
    responses(
        (status = 200, description = "The counts of entries added and removed; audited", body = ScreeningImportView),
        (status = 400, description = "Problem code: `query_invalid` (replace)"),
        (status = 403, description = "Problem code: `operator_only`"),
        (status = 409, description = "Problem code: `already_exists` (an entry of the file has the list and reference of one kept)"),
        (status = 413, description = "Problem code: `body_too_large` (the ISO message size limit, `--iso-message-size-max-bytes`, bounds the file)"),
        (status = 422, description = "Problem code: `csv_invalid` (the line and the problem: not UTF-8, the header, the number of fields, quoting, a field as `POST /api/v1/screening/entries` checks it, more than 100,000 entries, a reference twice in its list); nothing is stored"),
    ))]
pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_operator()?;
    let query = web::Query::<ImportQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::QueryInvalid(e.to_string()))?;
    let replace = match query.replace.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::QueryInvalid(format!(
                "replace is true or false, not {other}"
            )))
        }
    };
    let body = read_body(payload, state.limits.iso_message_size_max_bytes).await?;
    let text = std::str::from_utf8(&body).map_err(|e| CsvError {
        line: 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        field: None,
        problem: "the file is not UTF-8 text".into(),
    })?;
    let entries = read_csv(text, CSV_ROWS_MAX)?;
    let summary = state
        .engine
        .import_screening_entries(&caller.origin(), &entries, replace)
        .await?;
    Ok(HttpResponse::Ok().json(views::screening_import(&summary)))
}

/// Why a CSV list was refused: the line (from 1) and what is wrong there.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct CsvError {
    pub line: usize,
    /// The column at fault, when it is one.
    pub field: Option<&'static str>,
    pub problem: String,
}

fn at(line: usize, problem: impl Into<String>) -> CsvError {
    CsvError {
        line,
        field: None,
        problem: problem.into(),
    }
}

/// Reads a screening list in CSV: the header, then every line into an entry through
/// the input ladder, at most `rows_max` of them, each reference once per list.
pub fn read_csv(text: &str, rows_max: usize) -> Result<Vec<NewScreeningEntry>, CsvError> {
    let mut reader = Records::new(text);
    let header = CSV_HEADER.join(",");
    match reader.next_record()? {
        Some((_, fields)) if fields == CSV_HEADER => {}
        Some((line, _)) => return Err(at(line, format!("the header line must be {header}"))),
        None => return Err(at(1, format!("the file is empty: it starts with {header}"))),
    }
    let mut entries = Vec::new();
    let mut references: HashMap<(ScreeningList, String), usize> = HashMap::new();
    while let Some((line, fields)) = reader.next_record()? {
        if entries.len() == rows_max {
            return Err(at(
                line,
                format!("more than {rows_max} entries in one file"),
            ));
        }
        let [list, name, aliases, countries, reference] = &fields[..] else {
            return Err(at(
                line,
                format!(
                    "{} fields where a line has {}: {header}",
                    fields.len(),
                    CSV_HEADER.len()
                ),
            ));
        };
        let entry = NewScreeningEntry::parse(RawScreeningEntry {
            list,
            name,
            aliases: field_items(aliases),
            countries: field_items(countries),
            reference: Some(reference.as_str()).filter(|r| !r.is_empty()),
        })
        .map_err(|(field, error)| CsvError {
            line,
            field: Some(field),
            problem: format!("{field}: {error} ({})", error.code()),
        })?;
        if let Some(reference) = &entry.reference {
            let key = (entry.list, reference.clone());
            if let Some(first) = references.insert(key, line) {
                return Err(CsvError {
                    line,
                    field: Some("reference"),
                    problem: format!(
                        "reference {reference} of the {} list is on line {first} too",
                        entry.list
                    ),
                });
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The items of an `aliases` or `countries` field: none when it is empty.
fn field_items(field: &str) -> Vec<&str> {
    match field.is_empty() {
        true => Vec::new(),
        false => field.split(ITEM_SEPARATOR).collect(),
    }
}

/// CSV records (RFC 4180) of a text, each with the line it starts on. Lines end in
/// CRLF or LF; an empty line is no record; a field that starts with `"` is quoted
/// (`""` inside it is one `"`, and it may hold commas and line breaks); a leading
/// byte order mark is skipped.
struct Records<'a> {
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Records {
            text: text.strip_prefix('\u{feff}').unwrap_or(text),
            at: 0,
            line: 1,
        }
    }

    /// The length of the line break at the reading position, if one is there.
    fn line_break(&self) -> Option<usize> {
        match &self.text.as_bytes()[self.at..] {
            [b'\n', ..] => Some(1),
            [b'\r', b'\n', ..] => Some(2),
            _ => None,
        }
    }

    fn next_record(&mut self) -> Result<Option<(usize, Vec<String>)>, CsvError> {
        while let Some(n) = self.line_break() {
            self.at += n;
            self.line += 1;
        }
        if self.at == self.text.len() {
            return Ok(None);
        }
        let start = self.line;
        let mut fields = Vec::new();
        loop {
            fields.push(self.field()?);
            if self.at == self.text.len() {
                break;
            }
            if self.text.as_bytes()[self.at] == b',' {
                self.at += 1;
                continue;
            }
            // A field ends only at a comma, a line break or the end.
            let n = self
                .line_break()
                .expect("a field ends at a line break here");
            self.at += n;
            self.line += 1;
            break;
        }
        Ok(Some((start, fields)))
    }

    fn field(&mut self) -> Result<String, CsvError> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            let rest = &bytes[self.at..];
            let len = (0..rest.len())
                .find(|&i| match rest[i] {
                    b',' | b'\n' => true,
                    b'\r' => rest.get(i + 1) == Some(&b'\n'),
                    _ => false,
                })
                .unwrap_or(rest.len());
            let field = &self.text[self.at..self.at + len];
            if field.contains('"') {
                return Err(at(
                    self.line,
                    "a quote inside a field that does not start with one (quote the whole \
                     field and write each quote in it as \"\")",
                ));
            }
            self.at += len;
            return Ok(field.to_string());
        }
        let opened = self.line;
        self.at += 1;
        let mut field = String::new();
        loop {
            let Some(quote) = self.text[self.at..].find('"') else {
                return Err(at(opened, "a quoted field is never closed"));
            };
            let chunk = &self.text[self.at..self.at + quote];
            self.line += chunk.matches('\n').count();
            field.push_str(chunk);
            self.at += quote + 1;
            if bytes.get(self.at) == Some(&b'"') {
                field.push('"');
                self.at += 1;
                continue;
            }
            let ends =
                self.at == self.text.len() || bytes[self.at] == b',' || self.line_break().is_some();
            if !ends {
                return Err(at(
                    self.line,
                    "a quoted field goes on after its closing quote (write a quote inside \
                     it as \"\")",
                ));
            }
            return Ok(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "list,name,aliases,countries,reference\n";

    fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
        let mut reader = Records::new(text);
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    fn fields(record: &[&str]) -> Vec<String> {
        record.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn records_follow_rfc_4180_quoting_and_count_their_lines() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\r\n\n,,\r\n\"two\nlines\",x\n\"\",\"\"\"\"";
        assert_eq!(
            records(text).unwrap(),
            [
                (1, fields(&["a", "b,c", "say \"hi\""])),
                (3, fields(&["", "", ""])),
                (4, fields(&["two\nlines", "x"])),
                (6, fields(&["", "\""])),
            ]
        );
        // A byte order mark is skipped; a carriage return alone is a character.
        assert_eq!(
            records("\u{feff}a\rb,c").unwrap(),
            [(1, fields(&["a\rb", "c"]))]
        );
        assert_eq!(records("").unwrap(), []);
        assert_eq!(records("\n\r\n").unwrap(), []);
        assert_eq!(records("x,").unwrap(), [(1, fields(&["x", ""]))]);
    }

    /// A field as RFC 4180 writes it: quoted when it holds a comma, a quote or a
    /// line break (or, by choice, always), its quotes doubled.
    fn written(field: &str, always_quote: bool) -> String {
        match always_quote || field.contains([',', '"', '\n', '\r']) {
            true => format!("\"{}\"", field.replace('"', "\"\"")),
            false => field.to_string(),
        }
    }

    proptest! {
        /// Any records written with RFC 4180 quoting read back as written, each on
        /// the line it starts on, whatever their fields hold.
        #[test]
        fn written_records_read_back(
            rows in prop::collection::vec(
                prop::collection::vec(("[a-z,;\"\n é]{0,8}", any::<bool>()), 1..5),
                1..6,
            ),
            crlf in any::<bool>(),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            let mut expected = Vec::new();
            let mut line = 1;
            for row in &rows {
                let fields: Vec<String> = row.iter().map(|(f, _)| f.clone()).collect();
                // A record of one empty field is an empty line, which is no record.
                let one_empty = fields.len() == 1 && fields[0].is_empty();
                let cells: Vec<String> = row
                    .iter()
                    .map(|(f, quote)| written(f, *quote || one_empty))
                    .collect();
                let record = cells.join(",");
                expected.push((line, fields));
                line += 1 + record.matches('\n').count();
                text.push_str(&record);
                text.push_str(end);
            }
            prop_assert_eq!(records(&text).unwrap(), expected);
        }
    }

    #[test]
    fn bad_quoting_is_refused_on_its_line() {
        let problem = |text: &str| records(text).unwrap_err();
        assert_eq!(problem("a\nb\"c\n").line, 2);
        assert!(problem("a\nb\"c\n").problem.contains("does not start with"));
        let open = problem("a\n\"never\nclosed\n");
        assert_eq!(open.line, 2);
        assert!(open.problem.contains("never closed"), "{open:?}");
        let after = problem("x\n\"two\nlines\"x,y\n");
        assert_eq!(after.line, 3);
        assert!(
            after.problem.contains("after its closing quote"),
            "{after:?}"
        );
    }

    #[test]
    fn a_list_reads_into_entries_with_its_lists_of_items() {
        let text = format!(
            "{HEADER}sanctions,Ahmed Al-Rashid,\"Ahmad Rashid;Ahmed \"\"the Trader\"\" Rashid\",AE;IN,OFAC-1\r\n\
             pep,\"Doe, Jane\",,GB,\n\
             pep,John Roe,J. Roe,,OFAC-1\n"
        );
        let entries = read_csv(&text, CSV_ROWS_MAX).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].list, ScreeningList::Sanctions);
        assert_eq!(
            entries[0].aliases,
            ["Ahmad Rashid", "Ahmed \"the Trader\" Rashid"]
        );
        assert_eq!(entries[0].countries, ["AE", "IN"]);
        assert_eq!(entries[0].reference.as_deref(), Some("OFAC-1"));
        assert_eq!(entries[1].name, "Doe, Jane");
        assert!(entries[1].aliases.is_empty());
        assert_eq!(entries[1].reference, None);
        // The same reference on another list is another entry's.
        assert_eq!(entries[2].reference.as_deref(), Some("OFAC-1"));
        assert!(entries[2].countries.is_empty());
        assert_eq!(read_csv(HEADER, CSV_ROWS_MAX).unwrap(), []);
        assert_eq!(
            read_csv("list,name,aliases,countries,reference", 1).unwrap(),
            []
        );
    }

    #[test]
    fn a_bad_line_refuses_the_file_naming_the_line_and_the_problem() {
        let refused = |body: &str| read_csv(&format!("{HEADER}{body}"), CSV_ROWS_MAX).unwrap_err();
        let e = refused("sanctions,A,,,\nwatch,B,,,\n");
        assert_eq!((e.line, e.field), (3, Some("list")));
        assert!(e.problem.contains("screening_list_invalid"), "{e:?}");
        let e = refused("sanctions,A,,ae,\n");
        assert_eq!((e.line, e.field), (2, Some("countries")));
        assert!(e.problem.contains("country_invalid"), "{e:?}");
        let e = refused("sanctions,A,,AE;,\n");
        assert_eq!(e.field, Some("countries"));
        let e = refused("sanctions,,,,\n");
        assert_eq!((e.line, e.field), (2, Some("name")));
        let e = refused("pep,A,x;;y,,\n");
        assert_eq!(e.field, Some("aliases"));
        assert!(e.problem.contains("text_too_long"), "{e:?}");
        let e = refused("pep,\"Tab\there\",,,\n");
        assert!(e.problem.contains("text_invalid"), "{e:?}");
        let e = refused("pep,A,,\n");
        assert_eq!((e.line, e.field), (2, None));
        assert!(e.problem.starts_with("4 fields"), "{e:?}");
        let e = refused("pep,A,,,,\n");
        assert!(e.problem.starts_with("6 fields"), "{e:?}");
        let e = refused("pep,A,,,R1\nsanctions,B,,,R1\n\npep,C,,,R1\n");
        assert_eq!((e.line, e.field), (5, Some("reference")));
        assert!(e.problem.contains("line 2"), "{e:?}");
        let e = refused(&format!("pep,{},,,\n", "n".repeat(201)));
        assert!(e.problem.contains("text_too_long"), "{e:?}");

        let e = read_csv("name,list,aliases,countries,reference\n", 10).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.problem.contains("header"), "{e:?}");
        let e = read_csv("\n\nlist,name\n", 10).unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(read_csv("", 10).unwrap_err().line, 1);
        assert_eq!(e.to_string(), format!("line 3: {}", e.problem));
    }

    #[test]
    fn a_file_holds_at_most_the_entries_allowed() {
        let two = format!("{HEADER}pep,A,,,\npep,B,,,\n");
        assert_eq!(read_csv(&two, 2).unwrap().len(), 2);
        let e = read_csv(&format!("{two}pep,C,,,\n"), 2).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.problem.contains("more than 2 entries"), "{e:?}");
    }
}
