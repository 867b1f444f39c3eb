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
fn is_noise(token: &str) -> bool {
    // A match on the text (by length, then bytes) rather than a scan of a list:
    // every token of every party passes here.
    matches!(
        token,
        "AL" | "EL"
            | "BIN"
            | "IBN"
            | "BINT"
            | "ABU"
            | "THE"
            | "OF"
            | "AND"
            | "DE"
            | "VAN"
            | "VON"
            | "LTD"
            | "LIMITED"
            | "LLC"
            | "PVT"
            | "PRIVATE"
            | "INC"
            | "CO"
            | "CORP"
            | "CORPORATION"
            | "COMPANY"
            | "PLC"
            | "SA"
            | "AG"
            | "GMBH"
            | "FZE"
            | "FZCO"
            | "FZ"
            | "LLP"
            | "MR"
            | "MRS"
            | "MS"
            | "DR"
            | "TRADING"
            | "GENERAL"
            | "GROUP"
            | "HOLDING"
            | "HOLDINGS"
            | "INTERNATIONAL"
            | "ENTERPRISES"
            | "INDUSTRIES"
            | "SERVICES"
            | "GLOBAL"
    )
}

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

/// The longest skeleton kept, in bytes: a longer one is cut (at a character) to this,
/// so that the index holds every skeleton inline. Two tokens alike in their first
/// fifteen bytes of skeleton share one, and are both scored.
const SKELETON_BYTES_MAX: usize = 15;

/// The list, indexed for screening.
///
/// A name or alias of an entry (a variant) is scored against a party when the two
/// share enough skeletons: half of the variant's (rounded up) with one of them rare,
/// or all of them. Indexes find exactly those variants without visiting the others:
/// each rare skeleton lists its variants; a variant of one skeleton is listed under
/// it, and one of more under the pair of its two rarest, which a party having all of
/// its skeletons must have too.
///
/// Screening runs between other work, with the index out of the cache, so the
/// layout is chosen for the cache lines a party touches: one slot of an
/// open-addressing table per token (the skeleton inline, with its count and where
/// its lists are), then each list read front to back, with its variants' skeletons
/// inline. A token not on the list costs one cache line.
#[derive(Debug, Default)]
pub struct Screener {
    variants: Vec<Variant>,
    entries: Vec<ScreeningEntry>,
    /// Every skeleton on the list; a power of two long, at most half full.
    slots: Vec<Slot>,
    /// Per skeleton (by number): how many variants have it.
    key_variants: Vec<u32>,
    /// Every variant's distinct skeletons, sorted, one after another: variant `i`'s
    /// are `variant_keys[spans[i].0..spans[i].1]`.
    variant_keys: Vec<u32>,
    spans: Vec<(u32, u32)>,
    /// The lists of variants the slots and partners point into: records
    /// `[variant, n, key₁ … keyₙ]`.
    postings: Vec<u32>,
    /// Per skeleton, the pairs in which it is the rarer: `(other skeleton, list)`,
    /// sorted by the other.
    partners: Vec<(u32, Range)>,
}

/// A range of `postings` or `partners`.
type Range = (u32, u32);

/// One skeleton of the list, in `Screener::slots`.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The skeleton's bytes, zeros after them, and its length in the last byte: 0
    /// marks an empty slot (a skeleton has at least one character).
    packed: [u8; 16],
    key: u32,
    /// How many variants have it.
    variants: u32,
    /// Its variants to check: every one that has it when it is rare, those of it
    /// alone otherwise.
    list: Range,
    /// Its pairs as the rarer skeleton, in `partners`.
    partners: Range,
}

fn pack(skeleton: &str) -> [u8; 16] {
    let mut packed = [0u8; 16];
    packed[..skeleton.len()].copy_from_slice(skeleton.as_bytes());
    packed[15] = skeleton.len() as u8;
    packed
}

/// Where a packed skeleton's probe starts in a table of `mask + 1` slots.
fn home(packed: &[u8; 16], mask: usize) -> usize {
    let (low, high) = packed.split_at(8);
    let low = u64::from_le_bytes(low.try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(high.try_into().expect("8 bytes"));
    let mixed = (low ^ high.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 32) as usize & mask
}

/// The records of a list: each variant with its skeletons.
fn records(postings: &[u32], (from, to): Range) -> impl Iterator<Item = (u32, &[u32])> {
    let mut rest = &postings[from as usize..to as usize];
    std::iter::from_fn(move || {
        let (&at, tail) = rest.split_first()?;
        let (&n, tail) = tail.split_first()?;
        let (keys, tail) = tail.split_at(n as usize);
        rest = tail;
        Some((at, keys))
    })
}

/// A party's skeletons that count, sorted and distinct, with their slots.
#[derive(Debug, Default)]
struct PartyKeys {
    keys: Vec<u32>,
    slots: Vec<u32>,
}

#[derive(Debug)]
struct Variant {
    entry: usize,
    /// Its tokens as characters (compared without allocating).
    tokens: Vec<Vec<char>>,
    sorted: String,
    text: String,
}

impl Screener {
    pub fn new(entries: Vec<ScreeningEntry>) -> Self {
        let mut screener = Screener {
            entries,
            ..Default::default()
        };
        let mut key_ids: HashMap<String, u32> = HashMap::new();
        let mut skeleton = String::new();
        for (index, entry) in screener.entries.iter().enumerate() {
            for text in std::iter::once(&entry.name).chain(&entry.aliases) {
                let tokens = tokens(text);
                if tokens.is_empty() {
                    continue;
                }
                let from = screener.variant_keys.len();
                for token in &tokens {
                    if skeleton_into(token, &mut skeleton) {
                        let next = key_ids.len() as u32;
                        let id = *key_ids.entry(skeleton.clone()).or_insert(next);
                        screener.variant_keys.push(id);
                    }
                }
                let keys = &mut screener.variant_keys[from..];
                keys.sort_unstable();
                let distinct = dedup_sorted(keys);
                screener.variant_keys.truncate(from + distinct);
                screener.variants.push(Variant {
                    entry: index,
                    sorted: sorted_join(&tokens),
                    tokens: tokens.iter().map(|t| t.chars().collect()).collect(),
                    text: text.clone(),
                });
                screener.spans.push((from as u32, (from + distinct) as u32));
            }
        }
        let key_count = key_ids.len();
        screener.key_variants = vec![0; key_count];
        for &key in &screener.variant_keys {
            screener.key_variants[key as usize] += 1;
        }
        let count = |key: u32| screener.key_variants[key as usize] as usize;
        let mut lists = vec![Vec::new(); key_count];
        let mut pairs: std::collections::BTreeMap<(u32, u32), Vec<u32>> = Default::default();
        for at in 0..screener.variants.len() as u32 {
            let keys = screener.keys_of(at);
            for &key in keys {
                if count(key) <= KEY_ENTRIES_COMMON {
                    lists[key as usize].push(at);
                }
            }
            if !keys.iter().all(|&k| count(k) <= KEY_ENTRIES_MAX) {
                continue;
            }
            match keys {
                [] => {}
                // Listed above already when rare.
                [key] if count(*key) > KEY_ENTRIES_COMMON => lists[*key as usize].push(at),
                [_] => {}
                _ => {
                    let mut by_rarity = keys.to_vec();
                    by_rarity.sort_by_key(|&k| (count(k), k));
                    pairs
                        .entry((by_rarity[0], by_rarity[1]))
                        .or_default()
                        .push(at);
                }
            }
        }
        let mut postings = Vec::new();
        let mut write = |list: &[u32]| {
            let from = postings.len() as u32;
            for &at in list {
                let keys = screener.keys_of(at);
                postings.push(at);
                postings.push(keys.len() as u32);
                postings.extend_from_slice(keys);
            }
            (from, postings.len() as u32)
        };
        let lists: Vec<Range> = lists.iter().map(|list| write(list)).collect();
        let mut partners: Vec<(u32, Range)> = Vec::with_capacity(pairs.len());
        let mut led = vec![(0, 0); key_count];
        for ((rarer, other), list) in &pairs {
            let at = partners.len() as u32;
            if led[*rarer as usize] == (0, 0) {
                led[*rarer as usize] = (at, at);
            }
            partners.push((*other, write(list)));
            led[*rarer as usize].1 = at + 1;
        }
        let mut slots = vec![Slot::default(); (key_count * 2).next_power_of_two()];
        let mask = slots.len() - 1;
        for (text, &key) in &key_ids {
            let packed = pack(text);
            let mut at = home(&packed, mask);
            while slots[at].packed[15] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = Slot {
                packed,
                key,
                variants: screener.key_variants[key as usize],
                list: lists[key as usize],
                partners: led[key as usize],
            };
        }
        (screener.slots, screener.postings, screener.partners) = (slots, postings, partners);
        screener
    }

    /// A variant's skeletons.
    fn keys_of(&self, at: u32) -> &[u32] {
        let (from, to) = self.spans[at as usize];
        &self.variant_keys[from as usize..to as usize]
    }

    /// The slot of a skeleton on the list.
    fn find(&self, skeleton: &str) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let packed = pack(skeleton);
        let mut at = home(&packed, mask);
        loop {
            let slot = &self.slots[at];
            if slot.packed == packed {
                return Some(at);
            }
            if slot.packed[15] == 0 {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The skeletons of a party's tokens that count (on the list, and not too
    /// common to).
    fn party_keys(&self, tokens: &[String]) -> PartyKeys {
        let mut skeleton = String::new();
        let mut found: Vec<(u32, u32)> = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !skeleton_into(token, &mut skeleton) {
                continue;
            }
            if let Some(at) = self.find(&skeleton) {
                let slot = &self.slots[at];
                if slot.variants as usize <= KEY_ENTRIES_MAX {
                    found.push((slot.key, at as u32));
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        PartyKeys {
            keys: found.iter().map(|f| f.0).collect(),
            slots: found.iter().map(|f| f.1).collect(),
        }
    }

    /// The variants sharing enough skeletons with a party's to be scored, in order
    /// and once each.
    fn candidates(&self, party: &PartyKeys) -> Vec<u32> {
        let mut found = Vec::new();
        for (&key, &slot) in party.keys.iter().zip(&party.slots) {
            let slot = &self.slots[slot as usize];
            // A rare skeleton's list: half of a variant's skeletons. The list of
            // a common one holds variants of it alone, which that half is.
            for (at, keys) in records(&self.postings, slot.list) {
                if shared(keys, &party.keys) >= keys.len().div_ceil(2) {
                    found.push(at);
                }
            }
            let partners = &self.partners[slot.partners.0 as usize..slot.partners.1 as usize];
            if partners.is_empty() {
                continue;
            }
            for &other in party.keys.iter().filter(|&&other| other != key) {
                let Ok(i) = partners.binary_search_by_key(&other, |p| p.0) else {
                    continue;
                };
                for (at, keys) in records(&self.postings, partners[i].1) {
                    if shared(keys, &party.keys) == keys.len() {
                        found.push(at);
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
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
            let candidates = self.candidates(&self.party_keys(&tokens));
            if candidates.is_empty() {
                continue;
            }
            let sorted = sorted_join(&tokens);
            let chars: Vec<Vec<char>> = tokens.iter().map(|t| t.chars().collect()).collect();
            for at in candidates {
                let variant = &self.variants[at as usize];
                let entry = &self.entries[variant.entry];
                let score = adjust_for_country(
                    name_score(&chars, &sorted, &variant.tokens, &variant.sorted),
                    party.country.as_deref(),
                    &entry.countries,
                );
                if score >= floor && best.as_ref().is_none_or(|b| score > b.1) {
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
        .filter(|t| !is_noise(t))
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
/// repeats collapsed, cut to `SKELETON_BYTES_MAX` bytes; `None` for a token too
/// short to pick candidates by.
pub fn skeleton(token: &str) -> Option<String> {
    let mut out = String::new();
    skeleton_into(token, &mut out).then_some(out)
}

/// `skeleton` written into `out` (emptied first); false for a token too short.
fn skeleton_into(token: &str, out: &mut String) -> bool {
    out.clear();
    if token.chars().nth(1).is_none() {
        return false;
    }
    let class = |c: char| match c {
        'C' | 'G' | 'K' | 'Q' => 'K',
        'S' | 'Z' | 'X' => 'S',
        'D' | 'T' => 'T',
        'B' | 'P' => 'P',
        'F' | 'V' | 'W' => 'F',
        other => other,
    };
    for (i, c) in token.chars().enumerate() {
        let vowel = matches!(c, 'A' | 'E' | 'I' | 'O' | 'U' | 'Y' | 'H');
        if i > 0 && vowel {
            continue;
        }
        let c = if vowel { 'A' } else { class(c) };
        if out.ends_with(c) {
            continue;
        }
        if out.len() + c.len_utf8() > SKELETON_BYTES_MAX {
            break;
        }
        out.push(c);
    }
    true
}

/// How many of `a` are also in `b` (both sorted and distinct).
fn shared(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                count += 1;
                i += 1;
                j += 1;
            }
        }
    }
    count
}

/// Moves the distinct values of a sorted slice to its front; how many there are.
fn dedup_sorted(values: &mut [u32]) -> usize {
    let mut distinct = 0;
    for i in 0..values.len() {
        if distinct == 0 || values[i] != values[distinct - 1] {
            values[distinct] = values[i];
            distinct += 1;
        }
    }
    distinct
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

    /// The variants the rule picks, by looking at every one: those sharing half of
    /// their skeletons (rounded up) with one of the shared ones rare, or all of them,
    /// counting only skeletons not too common to count.
    fn candidates_by_scan(screener: &Screener, party_keys: &[u32]) -> Vec<u32> {
        (0..screener.variants.len() as u32)
            .filter(|&at| {
                let keys = screener.keys_of(at);
                let common = keys.iter().filter(|k| party_keys.contains(k));
                let shared = common.clone().count();
                let rare = common
                    .into_iter()
                    .any(|&k| screener.key_variants[k as usize] as usize <= KEY_ENTRIES_COMMON);
                shared > 0 && ((rare && shared >= keys.len().div_ceil(2)) || shared >= keys.len())
            })
            .collect()
    }

    /// A list whose skeletons are rare, common and too common to count: words drawn
    /// with very uneven odds.
    fn uneven_list(seed: u64, size: usize) -> Vec<ScreeningEntry> {
        const WORDS: &[&str] = &[
            "Mohammed", "Hassan", "Ali", "Karim", "Rashid", "Omar", "Zafar", "Tariq", "Bilal",
            "Nadia", "Farid", "Samira", "Yousef", "Khalil", "Jamal", "Imran", "Latif", "Wasim",
            "Qadir", "Nasir", "Suhail", "Vikram", "Rohan", "Dev", "Arjun", "Pavel", "Boris",
        ];
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..size)
            .map(|i| {
                let mut word = || {
                    let r = next();
                    // Half the draws from the first two words, the rest spread.
                    let at = if r % 2 == 0 {
                        (r / 2 % 2) as usize
                    } else {
                        (r / 2) as usize % WORDS.len()
                    };
                    format!(
                        "{}{}",
                        WORDS[at],
                        if r % 5 == 0 {
                            format!(" X{}", r % 97)
                        } else {
                            String::new()
                        }
                    )
                };
                let name = format!("{} {}", word(), word());
                let aliases = if i % 4 == 0 { vec![word()] } else { Vec::new() };
                entry(
                    i as i64,
                    &name,
                    &aliases.iter().map(String::as_str).collect::<Vec<_>>(),
                    &[],
                )
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn the_indexes_pick_exactly_what_a_scan_picks(
            seed in proptest::prelude::any::<u64>(),
            size in 1usize..9000,
            party in proptest::collection::vec(0usize..40, 1..6),
        ) {
            let screener = Screener::new(uneven_list(seed, size));
            // Party keys drawn from the list's own skeletons, and some not on it.
            let mut keys: Vec<u32> = party
                .iter()
                .filter_map(|&k| (k < screener.key_variants.len()).then_some(k as u32))
                .filter(|&k| screener.key_variants[k as usize] as usize <= KEY_ENTRIES_MAX)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            // Their slots, found by looking at every one.
            let slots = keys
                .iter()
                .map(|&k| screener.slots.iter().position(|s| s.packed[15] != 0 && s.key == k))
                .collect::<Option<Vec<usize>>>()
                .expect("every skeleton has a slot");
            let party = PartyKeys { keys: keys.clone(), slots: slots.iter().map(|&s| s as u32).collect() };
            proptest::prop_assert_eq!(screener.candidates(&party), candidates_by_scan(&screener, &keys));
        }
    }

    #[test]
    fn a_name_of_very_common_tokens_is_scored_through_its_rare_ones() {
        // 5,000 entries share "Mohammed": too common a skeleton to count, so an entry
        // is found through its other tokens, rare ones, when they are half of its
        // skeletons or more.
        let mut entries: Vec<ScreeningEntry> = (0..5_000)
            .map(|i| entry(i, &format!("Mohammed Q{i}x"), &[], &[]))
            .collect();
        entries.push(entry(9_000, "Mohammed Zarqawi", &[], &[]));
        let screener = Screener::new(entries);
        let p = party("Mohamed Zarkawi", None);
        match screener.screen(&[(PartyRole::Debtor, &p)], THRESHOLDS) {
            Verdict::Reject(m) | Verdict::Hold(m) => assert_eq!(m.entry_id, 9_000),
            Verdict::Clear => panic!("missed"),
        }
    }

    #[test]
    fn every_skeleton_is_found_in_its_slot_and_long_ones_are_cut() {
        let long = "Abcdfghjklmnpqrstvwxz Bcdfghjklmnprstvwxzbcdfg Muhammad";
        let screener = Screener::new(vec![entry(1, long, &["Qaddafi Gaddafi"], &[])]);
        for token in tokens(long).iter().chain(&tokens("Qaddafi Gaddafi")) {
            let skeleton = skeleton(token).expect("long enough");
            assert!(skeleton.len() <= SKELETON_BYTES_MAX, "{skeleton}");
            let at = screener.find(&skeleton).expect("on the list");
            assert_eq!(screener.slots[at].packed, pack(&skeleton));
        }
        // Both spellings have one skeleton; something else has none.
        assert_eq!(skeleton("QADDAFI"), skeleton("GADDAFI"));
        assert_eq!(screener.find("ZZZ"), None);
        assert_eq!(Screener::new(Vec::new()).find("KTF"), None);
        // Cut at a character: a skeleton of two-byte letters stays whole letters.
        let cyrillic = skeleton("БВГДЖЗКЛМНПРСТФХЦЧШ").expect("long enough");
        assert!(cyrillic.len() <= SKELETON_BYTES_MAX && cyrillic.chars().count() == 7);
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
