//! Compliance screening: the sanctions and PEP list, and the fuzzy matching of a
//! transfer's debtor and creditor against it before the transfer is accepted.
//!
//! Names are normalised (upper case, Latin accents folded, punctuation dropped, legal
//! forms and name particles left out) into tokens and compared token-set-wise with
//! Jaro–Winkler similarity, so that a swapped name order scores as the same name and
//! a transliteration (`Muhammad` / `Mohammed`) scores close. Each entry's name and
//! aliases are indexed by a phonetic skeleton of their tokens (first letter and
//! consonants, with the letters transliteration confuses merged), and only entries
//! sharing a skeleton with a party's name are scored: the cost of screening grows
//! with the matches, not with the list.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::errors::InputError;
use super::rules::text_field;

text_enum! {
    /// Which list an entry is on.
    ScreeningList {
        Sanctions => "sanctions",
        Pep => "pep",
    }
}

/// One entry of the screening list, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreeningEntry {
    pub id: i64,
    pub list: ScreeningList,
    pub name: String,
    pub aliases: Vec<String>,
    /// ISO 3166 alpha-2 codes the entry is tied to (nationality, residence, seat).
    pub countries: Vec<String>,
    /// The list provider's own reference for the entry.
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An entry to add to the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewScreeningEntry {
    pub list: ScreeningList,
    pub name: String,
    pub aliases: Vec<String>,
    pub countries: Vec<String>,
    pub reference: Option<String>,
}

/// Longest name or alias of an entry, in characters (the table's CHECK on `name`).
pub const NAME_LEN_MAX: usize = 200;
/// Most aliases one entry may have.
pub const ALIASES_MAX: usize = 20;
/// Most countries one entry may be tied to.
pub const COUNTRIES_MAX: usize = 20;
/// Longest list provider's reference, in characters (the table's CHECK).
pub const REFERENCE_LEN_MAX: usize = 100;

/// An entry as the operator gives it (a JSON body or a CSV line), before any check.
#[derive(Clone, Debug, Default)]
pub struct RawScreeningEntry<'a> {
    pub list: &'a str,
    pub name: &'a str,
    pub aliases: Vec<&'a str>,
    pub countries: Vec<&'a str>,
    pub reference: Option<&'a str>,
}

/// A name, alias or reference: 1 to `len_max` characters, none of them a control
/// character. An empty one is refused with the length's code, as a bank's name is.
fn bounded(text: &str, len_max: usize) -> Result<String, InputError> {
    if text.is_empty() {
        return Err(InputError::TextTooLong);
    }
    text_field(text, len_max)?;
    Ok(text.to_string())
}

/// An ISO 3166 alpha-2 code as the list keeps it: two upper-case ASCII letters.
fn country(code: &str) -> Result<String, InputError> {
    match code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        true => Ok(code.to_string()),
        false => Err(InputError::CountryInvalid),
    }
}

impl NewScreeningEntry {
    /// The input ladder of an entry, in field order; the first failing check names
    /// the field it refused.
    pub fn parse(raw: RawScreeningEntry<'_>) -> Result<Self, (&'static str, InputError)> {
        let list =
            ScreeningList::parse(raw.list).ok_or(("list", InputError::ScreeningListInvalid))?;
        let name = bounded(raw.name, NAME_LEN_MAX).map_err(|e| ("name", e))?;
        if raw.aliases.len() > ALIASES_MAX {
            return Err(("aliases", InputError::TooManyItems));
        }
        let aliases = raw
            .aliases
            .iter()
            .map(|a| bounded(a, NAME_LEN_MAX))
            .collect::<Result<_, _>>()
            .map_err(|e| ("aliases", e))?;
        if raw.countries.len() > COUNTRIES_MAX {
            return Err(("countries", InputError::TooManyItems));
        }
        let countries = raw
            .countries
            .iter()
            .map(|c| country(c))
            .collect::<Result<_, _>>()
            .map_err(|e| ("countries", e))?;
        let reference = raw
            .reference
            .map(|r| bounded(r, REFERENCE_LEN_MAX))
            .transpose()
            .map_err(|e| ("reference", e))?;
        Ok(NewScreeningEntry {
            list,
            name,
            aliases,
            countries,
            reference,
        })
    }
}

/// What an import did to the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Entries the import stored.
    pub added: u64,
    /// Entries it deleted first (all of them, with `replace`; otherwise none).
    pub removed: u64,
}

/// A debtor or creditor as a transfer names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartyName {
    pub name: String,
    /// ISO 3166 alpha-2, when known.
    pub country: Option<String>,
}

/// The longest party name stored (ISO 20022's `Max140Text`).
pub const PARTY_NAME_LEN_MAX: usize = 140;

impl PartyName {
    /// A party as a sender names it: a name of 1 to 140 characters without control
    /// characters (trimmed), and an optional ISO 3166 alpha-2 country.
    pub fn parse(name: &str, country: Option<&str>) -> Result<Self, (&'static str, InputError)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > PARTY_NAME_LEN_MAX {
            return Err(("name", InputError::PartyNameInvalid));
        }
        text_field(name, PARTY_NAME_LEN_MAX).map_err(|e| ("name", e))?;
        let country = match country {
            Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(c.to_string())
            }
            Some(_) => return Err(("country", InputError::CountryInvalid)),
            None => None,
        };
        Ok(PartyName {
            name: name.to_string(),
            country,
        })
    }
}

text_enum! {
    /// Which side of the transfer a party is.
    PartyRole {
        Debtor => "debtor",
        Creditor => "creditor",
    }
}

/// The scores that decide: at or above `reject`, the transfer is rejected; at or
/// above `hold`, it is held for the operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub reject: f64,
    pub hold: f64,
}

/// The best match of a transfer's parties against the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreeningMatch {
    pub entry_id: i64,
    pub list: ScreeningList,
    pub role: PartyRole,
    /// The entry's name or alias that matched (not stored: the entry is).
    pub matched: String,
    /// 0 to 1, with three decimals.
    pub score: Decimal,
}

/// What screening says of a transfer.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Clear,
    Hold(ScreeningMatch),
    Reject(ScreeningMatch),
}

/// Tokens dropped before matching: legal forms and name particles say nothing of who
/// a party is, and would otherwise make every company look alike.
const NOISE: &[&str] = &[
    "AL",
    "EL",
    "BIN",
    "IBN",
    "BINT",
    "ABU",
    "THE",
    "OF",
    "AND",
    "DE",
    "VAN",
    "VON",
    "LTD",
    "LIMITED",
    "LLC",
    "PVT",
    "PRIVATE",
    "INC",
    "CO",
    "CORP",
    "CORPORATION",
    "COMPANY",
    "PLC",
    "SA",
    "AG",
    "GMBH",
    "FZE",
    "FZCO",
    "FZ",
    "LLP",
    "MR",
    "MRS",
    "MS",
    "DR",
    "TRADING",
    "GENERAL",
    "GROUP",
    "HOLDING",
    "HOLDINGS",
    "INTERNATIONAL",
    "ENTERPRISES",
    "INDUSTRIES",
    "SERVICES",
    "GLOBAL",
];

/// An entry token whose best match in the party's name is below this is not in the
/// name: the score stays below any threshold worth acting on.
const TOKEN_FLOOR: f64 = 0.75;
/// The most a name scores with a token missing.
const MISSING_TOKEN_SCORE_MAX: f64 = 0.8;

/// A skeleton shared by more entry names than this is common: a name reached only
/// through common skeletons is scored only if it shares all of its skeletons.
const KEY_ENTRIES_COMMON: usize = 64;
/// A skeleton shared by more entry names than this picks no candidates at all (they
/// are still scored when other skeletons pick them).
const KEY_ENTRIES_MAX: usize = 4096;

/// The list, indexed for screening.
#[derive(Debug, Default)]
pub struct Screener {
    /// Every name and alias of every entry: (entry index, normalised tokens, text).
    variants: Vec<Variant>,
    entries: Vec<ScreeningEntry>,
    by_key: HashMap<String, Vec<u32>>,
}

#[derive(Debug)]
struct Variant {
    entry: usize,
    /// Its tokens as characters (compared without allocating).
    tokens: Vec<Vec<char>>,
    sorted: String,
    text: String,
    /// How many distinct skeletons its tokens have: a party must share half of them
    /// (rounded up, one of them not common), or all of them, for the variant to be
    /// scored.
    keys: usize,
}

impl Screener {
    pub fn new(entries: Vec<ScreeningEntry>) -> Self {
        let mut screener = Screener {
            entries,
            ..Default::default()
        };
        for (index, entry) in screener.entries.iter().enumerate() {
            for text in std::iter::once(&entry.name).chain(&entry.aliases) {
                let tokens = tokens(text);
                if tokens.is_empty() {
                    continue;
                }
                let at = screener.variants.len() as u32;
                let mut keys = 0;
                for key in tokens.iter().filter_map(|t| skeleton(t)) {
                    let list = screener.by_key.entry(key).or_default();
                    if list.last() != Some(&at) {
                        list.push(at);
                        keys += 1;
                    }
                }
                screener.variants.push(Variant {
                    entry: index,
                    sorted: sorted_join(&tokens),
                    tokens: tokens.iter().map(|t| t.chars().collect()).collect(),
                    text: text.clone(),
                    keys,
                });
            }
        }
        screener
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best match of `parties` (each with its role) at or above `floor`.
    pub fn best_match(
        &self,
        parties: &[(PartyRole, &PartyName)],
        floor: f64,
    ) -> Option<ScreeningMatch> {
        let mut best: Option<(ScreeningMatch, f64)> = None;
        for (role, party) in parties {
            let tokens = tokens(&party.name);
            if tokens.is_empty() {
                continue;
            }
            let sorted = sorted_join(&tokens);
            let chars: Vec<Vec<char>> = tokens.iter().map(|t| t.chars().collect()).collect();
            let mut keys: Vec<String> = tokens.iter().filter_map(|t| skeleton(t)).collect();
            keys.sort_unstable();
            keys.dedup();
            // Every variant sharing a skeleton, once per skeleton shared, marked when
            // the skeleton is not a common one.
            let mut hits: Vec<(u32, bool)> = Vec::new();
            for key in &keys {
                match self.by_key.get(key) {
                    Some(candidates) if candidates.len() <= KEY_ENTRIES_MAX => {
                        let rare = candidates.len() <= KEY_ENTRIES_COMMON;
                        hits.extend(candidates.iter().map(|&at| (at, rare)));
                    }
                    _ => {}
                }
            }
            hits.sort_unstable_by_key(|h| h.0);
            for run in hits.chunk_by(|a, b| a.0 == b.0) {
                let variant = &self.variants[run[0].0 as usize];
                let rare = run.iter().any(|h| h.1);
                let enough =
                    (rare && run.len() >= variant.keys.div_ceil(2)) || run.len() >= variant.keys;
                if !enough {
                    continue;
                }
                {
                    let entry = &self.entries[variant.entry];
                    let score = adjust_for_country(
                        name_score(&chars, &sorted, &variant.tokens, &variant.sorted),
                        party.country.as_deref(),
                        &entry.countries,
                    );
                    if score >= floor && best.as_ref().map_or(true, |b| score > b.1) {
                        let m = ScreeningMatch {
                            entry_id: entry.id,
                            list: entry.list,
                            role: *role,
                            matched: variant.text.clone(),
                            score: thousandths(score),
                        };
                        best = Some((m, score));
                    }
                }
            }
        }
        best.map(|(m, _)| m)
    }

    /// Screens a transfer's parties: rejected, held or clear by the best match.
    pub fn screen(&self, parties: &[(PartyRole, &PartyName)], thresholds: Thresholds) -> Verdict {
        match self.best_match(parties, thresholds.hold) {
            Some(m) if m.score >= thousandths(thresholds.reject) => Verdict::Reject(m),
            Some(m) => Verdict::Hold(m),
            None => Verdict::Clear,
        }
    }
}

/// A score as a decimal with three places (what is stored and shown).
fn thousandths(score: f64) -> Decimal {
    Decimal::new((score * 1000.0).round() as i64, 3)
}

/// How alike a party's name is to an entry's: each entry token aligned with its best
/// party token, weighted by length, so that the order of the names does not matter
/// and the entry's name inside a longer party name still scores whole. An entry
/// token with no likeness in the name keeps the score at `MISSING_TOKEN_SCORE_MAX`;
/// the same tokens in any order score 1.
fn name_score(
    party: &[Vec<char>],
    party_sorted: &str,
    entry: &[Vec<char>],
    entry_sorted: &str,
) -> f64 {
    if party_sorted == entry_sorted {
        return 1.0;
    }
    let total: usize = entry.iter().map(Vec::len).sum();
    let mut missing = false;
    let aligned: f64 = entry
        .iter()
        .map(|e| {
            let best = party
                .iter()
                .map(|p| jaro_winkler_chars(p, e))
                .fold(0.0_f64, f64::max);
            missing |= best < TOKEN_FLOOR;
            best * e.len() as f64
        })
        .sum::<f64>()
        / total.max(1) as f64;
    if missing {
        aligned.min(MISSING_TOKEN_SCORE_MAX)
    } else {
        aligned
    }
}

/// A party in one of the entry's countries scores a little higher, one known to be
/// elsewhere a little lower; an entry without countries, or a party without one,
/// scores on the name alone.
fn adjust_for_country(score: f64, party: Option<&str>, countries: &[String]) -> f64 {
    match party {
        Some(country) if !countries.is_empty() => {
            if countries.iter().any(|c| c == country) {
                (score + 0.03).min(1.0)
            } else {
                score - 0.05
            }
        }
        _ => score,
    }
}

/// The normalised tokens of a name.
pub fn tokens(name: &str) -> Vec<String> {
    let mut folded = String::with_capacity(name.len());
    for c in name.chars() {
        match fold(c) {
            Some(s) => folded.push_str(s),
            None if c.is_alphanumeric() => folded.extend(c.to_uppercase()),
            None => folded.push(' '),
        }
    }
    folded
        .split_whitespace()
        .filter(|t| !NOISE.contains(t))
        .map(str::to_string)
        .collect()
}

/// Latin letters with accents (and a few ligatures) as plain upper-case ASCII.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' => return None,
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' => {
            "A"
        }
        'ç' | 'Ç' | 'č' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'È' | 'É' | 'Ê' | 'Ë' | 'Ē' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' => "I",
        'ñ' | 'Ñ' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' => {
            "O"
        }
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' => "U",
        'ý' | 'ÿ' | 'Ý' => "Y",
        'š' | 'Š' | 'ş' | 'Ş' => "S",
        'ž' | 'Ž' => "Z",
        'ß' => "SS",
        'æ' | 'Æ' => "AE",
        'œ' | 'Œ' => "OE",
        '\'' | '’' | '`' => "",
        _ => return None,
    })
}

fn sorted_join(tokens: &[String]) -> String {
    let mut sorted: Vec<&str> = tokens.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.join(" ")
}

/// A token's phonetic skeleton: its first letter and its consonants, with the
/// letters transliteration swaps merged (C, G, K, Q; S, Z; D, T; B, P; F, V) and
/// repeats collapsed; `None` for a token too short to pick candidates by.
pub fn skeleton(token: &str) -> Option<String> {
    if token.chars().count() < 2 {
        return None;
    }
    let class = |c: char| match c {
        'C' | 'G' | 'K' | 'Q' => 'K',
        'S' | 'Z' | 'X' => 'S',
        'D' | 'T' => 'T',
        'B' | 'P' => 'P',
        'F' | 'V' | 'W' => 'F',
        other => other,
    };
    let mut out = String::new();
    for (i, c) in token.chars().enumerate() {
        let vowel = matches!(c, 'A' | 'E' | 'I' | 'O' | 'U' | 'Y' | 'H');
        if i > 0 && vowel {
            continue;
        }
        let c = if vowel { 'A' } else { class(c) };
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    Some(out)
}

/// Jaro–Winkler similarity of two strings, 0 to 1 (prefix scale 0.1, up to four
/// characters of common prefix).
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    jaro_winkler_chars(&a, &b)
}

/// `jaro_winkler` of two strings given as characters; without allocating when both
/// are at most 64 characters long (every name token).
fn jaro_winkler_chars(a: &[char], b: &[char]) -> f64 {
    const SHORT: usize = 64;
    if a.len() <= SHORT && b.len() <= SHORT {
        let (mut a_matched, mut b_matched) = ([false; SHORT], [false; SHORT]);
        jaro_winkler_with(a, b, &mut a_matched[..a.len()], &mut b_matched[..b.len()])
    } else {
        jaro_winkler_with(a, b, &mut vec![false; a.len()], &mut vec![false; b.len()])
    }
}

fn jaro_winkler_with(
    a: &[char],
    b: &[char],
    a_matched: &mut [bool],
    b_matched: &mut [bool],
) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut matches = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let from = i.saturating_sub(window);
        let to = (i + window + 1).min(b.len());
        for j in from..to {
            if !b_matched[j] && b[j] == *ca {
                a_matched[i] = true;
                b_matched[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, ca) in a.iter().enumerate() {
        if !a_matched[i] {
            continue;
        }
        while !b_matched[j] {
            j += 1;
        }
        if *ca != b[j] {
            transpositions += 1;
        }
        j += 1;
    }
    let m = matches as f64;
    let jaro =
        (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64 / 2.0) / m) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, name: &str, aliases: &[&str], countries: &[&str]) -> ScreeningEntry {
        ScreeningEntry {
            id,
            list: ScreeningList::Sanctions,
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            reference: None,
            created_at: Utc::now(),
        }
    }

    fn party(name: &str, country: Option<&str>) -> PartyName {
        PartyName {
            name: name.into(),
            country: country.map(str::to_string),
        }
    }

    const THRESHOLDS: Thresholds = Thresholds {
        reject: 0.92,
        hold: 0.85,
    };

    fn screener() -> Screener {
        Screener::new(vec![
            entry(1, "Mohammed Al-Rashid", &["Abu Karim"], &["AE"]),
            entry(2, "Gulf Shadow Trading LLC", &[], &[]),
            entry(3, "Muammar Gaddafi", &["Qadhafi, Muammar"], &["LY"]),
            entry(4, "José Müller", &[], &[]),
        ])
    }

    fn verdict(name: &str, country: Option<&str>) -> Verdict {
        let p = party(name, country);
        screener().screen(&[(PartyRole::Debtor, &p)], THRESHOLDS)
    }

    #[test]
    fn jaro_winkler_matches_the_published_examples() {
        let close = |a: &str, b: &str, want: f64| {
            let got = jaro_winkler(a, b);
            assert!((got - want).abs() < 0.001, "{a} {b}: {got}");
        };
        close("MARTHA", "MARHTA", 0.961);
        close("DWAYNE", "DUANE", 0.840);
        close("DIXON", "DICKSONX", 0.813);
        close("SAME", "SAME", 1.0);
        assert_eq!(jaro_winkler("ABC", "XYZ"), 0.0);
    }

    #[test]
    fn names_normalise_to_the_tokens_that_identify_them() {
        assert_eq!(tokens("Mohammed Al-Rashid"), ["MOHAMMED", "RASHID"]);
        assert_eq!(tokens("  josé  MÜLLER, Ltd. "), ["JOSE", "MULLER"]);
        assert_eq!(tokens("O'Brien & Co"), ["OBRIEN"]);
        assert_eq!(skeleton("MOHAMMED"), skeleton("MUHAMMAD"));
        assert_eq!(skeleton("GADDAFI"), skeleton("QADHAFI"));
        assert_eq!(skeleton("YUSUF"), skeleton("YOUSEF"));
        assert_eq!(skeleton("A"), None);
    }

    #[test]
    fn an_exact_or_reordered_name_is_rejected() {
        assert!(
            matches!(verdict("Mohammed Al Rashid", None), Verdict::Reject(m) if m.entry_id == 1)
        );
        assert!(matches!(verdict("Rashid, Mohammed", None), Verdict::Reject(m) if m.entry_id == 1));
        assert!(
            matches!(verdict("GULF SHADOW TRADING", None), Verdict::Reject(m) if m.entry_id == 2)
        );
        assert!(matches!(verdict("Jose Muller", None), Verdict::Reject(m) if m.entry_id == 4));
        // An alias matches as the name does.
        assert!(
            matches!(verdict("Qadhafi Muammar", Some("LY")), Verdict::Reject(m) if m.entry_id == 3)
        );
    }

    #[test]
    fn a_transliteration_is_held_for_review() {
        match verdict("Muhammad Al-Rasheed", None) {
            Verdict::Hold(m) => {
                assert_eq!(m.entry_id, 1);
                assert!(
                    m.score >= Decimal::new(85, 2) && m.score < Decimal::new(92, 2),
                    "{m:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(verdict("Moammar Kadafi", None), Verdict::Hold(m) | Verdict::Reject(m) if m.entry_id == 3)
        );
    }

    #[test]
    fn other_names_are_clear_and_a_country_moves_the_score() {
        for name in [
            "Asha Traders Pvt Ltd",
            "Gulf Spice Trading LLC",
            "Mohan Rao",
            "Desert Rose",
        ] {
            assert_eq!(verdict(name, None), Verdict::Clear, "{name}");
        }
        let home = screener()
            .best_match(
                &[(
                    PartyRole::Creditor,
                    &party("Muhammad Al-Rasheed", Some("AE")),
                )],
                0.0,
            )
            .unwrap();
        let away = screener()
            .best_match(
                &[(
                    PartyRole::Creditor,
                    &party("Muhammad Al-Rasheed", Some("IN")),
                )],
                0.0,
            )
            .unwrap();
        assert!(home.score > away.score, "{home:?} {away:?}");
        assert_eq!(home.role, PartyRole::Creditor);
    }

    fn raw<'a>(name: &'a str) -> RawScreeningEntry<'a> {
        RawScreeningEntry {
            list: "sanctions",
            name,
            ..RawScreeningEntry::default()
        }
    }

    #[test]
    fn an_entry_is_parsed_with_each_field_bounded() {
        let parsed = NewScreeningEntry::parse(RawScreeningEntry {
            list: "pep",
            name: "Ahmed Al-Rashid",
            aliases: vec!["Ahmad Rashid", "أحمد الراشد"],
            countries: vec!["AE", "IN"],
            reference: Some("PEP-17"),
        })
        .unwrap();
        assert_eq!(parsed.list, ScreeningList::Pep);
        assert_eq!(parsed.aliases, ["Ahmad Rashid", "أحمد الراشد"]);
        assert_eq!(parsed.countries, ["AE", "IN"]);
        assert_eq!(parsed.reference.as_deref(), Some("PEP-17"));
        let longest = "é".repeat(NAME_LEN_MAX);
        assert!(NewScreeningEntry::parse(raw(&longest)).is_ok());

        let refused = |raw: RawScreeningEntry<'_>| NewScreeningEntry::parse(raw).unwrap_err();
        let too_long = "x".repeat(NAME_LEN_MAX + 1);
        let too_many = vec!["AE"; COUNTRIES_MAX + 1];
        let reference = "r".repeat(REFERENCE_LEN_MAX + 1);
        for (case, expected) in [
            (
                RawScreeningEntry {
                    list: "watch",
                    ..raw("A")
                },
                ("list", InputError::ScreeningListInvalid),
            ),
            (
                RawScreeningEntry {
                    list: "Sanctions",
                    ..raw("A")
                },
                ("list", InputError::ScreeningListInvalid),
            ),
            (raw(""), ("name", InputError::TextTooLong)),
            (raw(&too_long), ("name", InputError::TextTooLong)),
            (raw("Tab\tName"), ("name", InputError::TextInvalid)),
            (
                RawScreeningEntry {
                    aliases: vec!["ok", ""],
                    ..raw("A")
                },
                ("aliases", InputError::TextTooLong),
            ),
            (
                RawScreeningEntry {
                    aliases: vec!["a\u{85}b"],
                    ..raw("A")
                },
                ("aliases", InputError::TextInvalid),
            ),
            (
                RawScreeningEntry {
                    aliases: vec!["a"; ALIASES_MAX + 1],
                    ..raw("A")
                },
                ("aliases", InputError::TooManyItems),
            ),
            (
                RawScreeningEntry {
                    countries: too_many,
                    ..raw("A")
                },
                ("countries", InputError::TooManyItems),
            ),
            (
                RawScreeningEntry {
                    countries: vec!["ae"],
                    ..raw("A")
                },
                ("countries", InputError::CountryInvalid),
            ),
            (
                RawScreeningEntry {
                    countries: vec!["ARE"],
                    ..raw("A")
                },
                ("countries", InputError::CountryInvalid),
            ),
            (
                RawScreeningEntry {
                    countries: vec!["É1"],
                    ..raw("A")
                },
                ("countries", InputError::CountryInvalid),
            ),
            (
                RawScreeningEntry {
                    reference: Some(""),
                    ..raw("A")
                },
                ("reference", InputError::TextTooLong),
            ),
            (
                RawScreeningEntry {
                    reference: Some(&reference),
                    ..raw("A")
                },
                ("reference", InputError::TextTooLong),
            ),
        ] {
            let what = format!("{case:?}");
            assert_eq!(refused(case), expected, "{what}");
        }
        // At the bounds themselves, accepted.
        let at_bounds = NewScreeningEntry::parse(RawScreeningEntry {
            aliases: vec!["a"; ALIASES_MAX],
            countries: vec!["AE"; COUNTRIES_MAX],
            reference: Some(&reference[1..]),
            ..raw("A")
        });
        assert!(at_bounds.is_ok(), "{at_bounds:?}");
    }

    #[test]
    fn a_name_of_common_tokens_is_still_found() {
        // 100 entries share "Mohammed" and 100 share "Hassan": both skeletons are
        // common, and the one entry with both is still scored, and matched.
        let mut entries: Vec<ScreeningEntry> = (0..100)
            .map(|i| entry(i, &format!("Mohammed Q{i}x"), &[], &[]))
            .chain((100..200).map(|i| entry(i, &format!("Hassan Z{i}y"), &[], &[])))
            .collect();
        entries.push(entry(500, "Mohammed Hassan", &[], &[]));
        let screener = Screener::new(entries);
        let p = party("Hassan Mohamed", None);
        match screener.screen(&[(PartyRole::Debtor, &p)], THRESHOLDS) {
            Verdict::Reject(m) | Verdict::Hold(m) => assert_eq!(m.entry_id, 500),
            Verdict::Clear => panic!("missed"),
        }
    }

    #[test]
    fn an_empty_list_clears_everything() {
        let empty = Screener::new(Vec::new());
        let p = party("Mohammed Al-Rashid", None);
        assert_eq!(
            empty.screen(&[(PartyRole::Debtor, &p)], THRESHOLDS),
            Verdict::Clear
        );
    }
}
