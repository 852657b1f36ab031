//! The grounding check: does the hindsight goal name only what the run actually saw?
//!
//! Definition 3.1(a) of the paper asks that the hindsight goal be achieved by the unchanged
//! trajectory, so every concrete thing the goal names must be something the run met. This check
//! is deterministic and makes no call. It takes from the goal the tokens a reader can verify
//! without understanding the sentence:
//!
//! - **numbers** (`16`, `1,299.00`, `0.5`, `15%`), compared after dropping thousands
//!   separators, leading zeros and trailing fractional zeros ("1,299.00" is "1299");
//! - **amounts**: a number with a currency sign or code (`$1,299.00`, `€45`, `45 EUR`),
//!   compared by their number alone;
//! - **dates** (`2024-03-15`, `03/15/2024`, `March 15, 2024`, `15 March`), compared as
//!   year-month-day (a date without a year by month and day; `03/04/2024` as either order);
//! - **times** (`14:30`, `3 pm`, `3:30pm`), compared by their written clock (`3 pm` is
//!   `3:00 PM` is `03:00pm`);
//! - **quoted strings** (`"blue widget"`, `“…”`, `'…'`), compared as text;
//! - **proper names**: runs of capitalised or mixed-case words (`Dell XPS`, `iPhone`, `New
//!   York`), except a lone capitalised word that opens a sentence ("Find", "Book"), compared
//!   as whole words.
//!
//! Text comparisons ignore case, runs of white space and the difference between straight and
//! curly quotes. A token counts as grounded when it occurs in the run's **evidence**: every
//! step's action name, observation and argument values, and the final answer (not the
//! original prompt, not the agent's thoughts: neither is something the run observed).
//!
//! What it cannot know, on purpose (each is tested):
//! - **units and currencies**: "5 km" is grounded by "5 miles", "$45" by "45 EUR" (a word
//!   right after a number is taken for its unit and not checked);
//! - **paraphrase**: "three laptops" names no number, "the Big Apple" is not "New York", and a
//!   name the run wrote differently ("Hewlett-Packard" for "HP") is ungrounded;
//! - **clock conventions**: "3 pm" is not matched with "15:00";
//! - **counts the run never wrote**: "the 2 cheapest flights" needs a 2 somewhere in the run;
//! - **decimal commas**: "1.299,00" is read as 1.299 and 0 (the comma as a thousands
//!   separator only when three digits follow);
//! - **a name opening the goal**: "Paris hotels under $200" checks only the amount.

use crate::json::Json;
use crate::model::Trajectory;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// What the pipeline does with an ungrounded goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroundingMode {
    /// Reject the trajectory: the accepted goal is turned down with the tokens as its reason.
    Reject,
    /// Keep the sample and mark it, so the review can look at it.
    #[default]
    Flag,
    /// Do not check.
    Off,
}

impl GroundingMode {
    pub const ALL: [GroundingMode; 3] = [
        GroundingMode::Reject,
        GroundingMode::Flag,
        GroundingMode::Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroundingMode::Reject => "reject",
            GroundingMode::Flag => "flag",
            GroundingMode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The kind of a checked token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Number,
    Amount,
    Date,
    Time,
    Quoted,
    Name,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Number => "number",
            TokenKind::Amount => "amount",
            TokenKind::Date => "date",
            TokenKind::Time => "time",
            TokenKind::Quoted => "quoted string",
            TokenKind::Name => "name",
        }
    }
}

/// A token of the goal, with its byte span in the goal (`goal[start..end] == text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalToken {
    pub kind: TokenKind,
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// A token with the keys it is compared by (one for most tokens; both readings of an
/// ambiguous date).
#[derive(Debug, Clone)]
struct Scanned {
    kind: TokenKind,
    text: String,
    start: usize,
    end: usize,
    keys: Vec<String>,
}

impl Scanned {
    fn public(self) -> GoalToken {
        GoalToken {
            kind: self.kind,
            text: self.text,
            start: self.start,
            end: self.end,
        }
    }
}

/// What the check found for one goal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Grounding {
    /// How many tokens the goal has.
    pub checked: usize,
    /// The tokens the run never saw, in the goal's order.
    pub ungrounded: Vec<GoalToken>,
}

impl Grounding {
    pub fn is_grounded(&self) -> bool {
        self.ungrounded.is_empty()
    }

    /// "ungrounded: the goal names $1,299 (amount) and "Lenovo" (name), which the run never
    /// observed", or `None` when grounded.
    pub fn reason(&self) -> Option<String> {
        if self.is_grounded() {
            return None;
        }
        let names: Vec<String> = self
            .ungrounded
            .iter()
            .map(|t| format!("“{}” ({})", t.text, t.kind.as_str()))
            .collect();
        Some(format!(
            "ungrounded: the goal names {}, which the run never observed",
            join_and(&names)
        ))
    }
}

impl Grounding {
    /// What the check found, in a sentence for the page.
    pub fn describe(&self) -> String {
        if !self.is_grounded() {
            let names: Vec<String> = self
                .ungrounded
                .iter()
                .map(|t| format!("“{}” ({})", t.text, t.kind.as_str()))
                .collect();
            return format!(
                "The goal names {}, which the run never observed.",
                join_and(&names)
            );
        }
        match self.checked {
            0 => "Nothing to check: the goal names no number, date, time, quoted text or name."
                .into(),
            1 => "Grounded: the one number, date, time, quoted text or name in the goal appears in the run.".into(),
            n => format!(
                "Grounded: all {n} numbers, dates, times, quoted texts and names in the goal appear in the run."
            ),
        }
    }
}

/// A piece of a goal as a page shows it: plain text, or a token the run never observed (of
/// the given kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoalPart<'a> {
    pub text: &'a str,
    pub ungrounded: Option<TokenKind>,
}

impl Grounding {
    /// `goal` cut into the parts a page shows, in order: each ungrounded token whose span
    /// still holds its text in `goal`, and the plain text around them. A token whose span
    /// does not (a goal edited since the check, overlapping spans) is left unmarked, so the
    /// parts always join back into `goal`.
    pub fn parts<'a>(&self, goal: &'a str) -> Vec<GoalPart<'a>> {
        let mut tokens: Vec<&GoalToken> = self.ungrounded.iter().collect();
        tokens.sort_by_key(|t| (t.start, t.end));
        let mut parts = Vec::new();
        let mut at = 0;
        for t in tokens {
            if t.start < at || t.start >= t.end || goal.get(t.start..t.end) != Some(&t.text) {
                continue;
            }
            if t.start > at {
                parts.push(GoalPart {
                    text: &goal[at..t.start],
                    ungrounded: None,
                });
            }
            parts.push(GoalPart {
                text: &goal[t.start..t.end],
                ungrounded: Some(t.kind),
            });
            at = t.end;
        }
        if at < goal.len() || parts.is_empty() {
            parts.push(GoalPart {
                text: &goal[at..],
                ungrounded: None,
            });
        }
        parts
    }
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Checks `goal` against what `trajectory` observed, called with and answered.
pub fn check(goal: &str, trajectory: &Trajectory) -> Grounding {
    let evidence = Evidence::of(trajectory);
    check_against(goal, &evidence)
}

/// Checks `goal` against prepared evidence.
pub fn check_against(goal: &str, evidence: &Evidence) -> Grounding {
    let tokens = scan(goal);
    let checked = tokens.len();
    let ungrounded = tokens
        .into_iter()
        .filter(|t| !evidence.grounds(t))
        .map(Scanned::public)
        .collect();
    Grounding {
        checked,
        ungrounded,
    }
}

/// What a run saw, prepared for lookups.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Normalised text: lower case, curly quotes straightened, white space runs as one space,
    /// with a space at both ends so that whole-word lookups need no special case.
    text: String,
    numbers: HashSet<String>,
    dates: HashSet<String>,
    times: HashSet<String>,
}

impl Evidence {
    /// The observations, argument values and final answer of `t`.
    pub fn of(t: &Trajectory) -> Self {
        let mut parts: Vec<String> = Vec::new();
        for step in &t.steps {
            parts.push(step.action_name.clone());
            parts.push(step.observation.clone());
            for (_, value) in step.action_input.iter() {
                json_texts(value, &mut parts);
            }
        }
        parts.push(t.final_answer.clone());
        Self::from_texts(parts.iter().map(String::as_str))
    }

    /// Evidence made of the given texts.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut evidence = Evidence {
            text: " ".to_owned(),
            ..Evidence::default()
        };
        for text in texts {
            evidence.text.push_str(&normalise_text(text));
            evidence.text.push_str(" \u{1} ");
            for token in scan(text) {
                match token.kind {
                    TokenKind::Date => {
                        for key in &token.keys {
                            // A dated day also grounds the same day named without a year.
                            if key.len() == 10 {
                                evidence.dates.insert(key[5..].to_owned());
                            }
                            evidence.dates.insert(key.clone());
                        }
                    }
                    TokenKind::Time => evidence.times.extend(token.keys.iter().cloned()),
                    TokenKind::Number | TokenKind::Amount => {
                        evidence.numbers.extend(token.keys.iter().cloned())
                    }
                    TokenKind::Quoted | TokenKind::Name => {}
                }
                // The parts of a date or a time are numbers the run saw as well.
                if matches!(token.kind, TokenKind::Date | TokenKind::Time) {
                    for part in token.text.split(|c: char| !c.is_ascii_digit()) {
                        if !part.is_empty() {
                            evidence.numbers.insert(number_key(part));
                        }
                    }
                }
            }
        }
        evidence
    }

    fn grounds(&self, token: &Scanned) -> bool {
        let set = match token.kind {
            TokenKind::Number | TokenKind::Amount => &self.numbers,
            TokenKind::Date => &self.dates,
            TokenKind::Time => &self.times,
            TokenKind::Quoted | TokenKind::Name => {
                return token.keys.iter().any(|k| self.has_words(k));
            }
        };
        token.keys.iter().any(|k| set.contains(k)) || self.has_words(&normalise_text(&token.text))
    }

    /// Whether `phrase` (normalised) occurs in the text with no letter or digit touching it.
    fn has_words(&self, phrase: &str) -> bool {
        if phrase.is_empty() {
            return true;
        }
        let mut from = 0;
        while let Some(at) = self.text[from..].find(phrase) {
            let start = from + at;
            let end = start + phrase.len();
            let before = self.text[..start].chars().next_back();
            let after = self.text[end..].chars().next();
            let edge = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
            if edge(before) && edge(after) {
                return true;
            }
            from = start + self.text[start..].chars().next().map_or(1, char::len_utf8);
        }
        false
    }
}

fn json_texts(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Null | Json::Bool(_) => {}
        Json::Number(n) => {
            let mut s = String::new();
            n.write_python(&mut s);
            out.push(s);
        }
        Json::String(s) => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|v| json_texts(v, out)),
        Json::Object(o) => o.iter().for_each(|(_, v)| json_texts(v, out)),
    }
}

/// Lower case, straight quotes and apostrophes, one space for each run of white space.
fn normalise_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        match c {
            '“' | '”' | '„' => out.push('"'),
            '‘' | '’' => out.push('\''),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// A number's comparison key: no thousands separators, no leading zeros, no trailing
/// fractional zeros.
fn number_key(text: &str) -> String {
    let digits: String = text.chars().filter(|c| *c != ',').collect();
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f.trim_end_matches('0')),
        None => (digits.as_str(), ""),
    };
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The month (1-12) a word names: the full name or its first three letters ("Sept" too).
fn month(word: &str) -> Option<u32> {
    let w = word.to_lowercase();
    let w = w.trim_end_matches('.');
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            *m == w || (w.len() == 3 && m.starts_with(w)) || (w == "sept" && *m == "september")
        })
        .map(|i| i as u32 + 1)
}

const CURRENCY_SIGNS: [char; 5] = ['$', '€', '£', '¥', '₹'];
const CURRENCY_WORDS: [&str; 12] = [
    "usd", "eur", "gbp", "jpy", "inr", "cad", "aud", "chf", "dollars", "euros", "pounds", "yen",
];

/// Words that are capitalised without being names.
const NOT_NAMES: [&str; 6] = ["i", "i'm", "i'd", "i've", "i'll", "ok"];

/// A lexical piece of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    /// Digits, with single `,` `.` `:` `/` `-` between digits.
    Numeric,
    /// Letters and digits starting with a letter, with single `'` or `-` between them.
    Word,
    /// A quoted span, quotes included.
    Quote,
    /// Anything else (one character).
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Lexeme {
    piece: Piece,
    start: usize,
    end: usize,
}

fn is_open_quote(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '“' => Some('”'),
        '„' => Some('“'),
        '‘' => Some('’'),
        '\'' => Some('\''),
        _ => None,
    }
}

fn lex(text: &str) -> Vec<Lexeme> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let pos = |i: usize| chars.get(i).map_or(text.len(), |(p, _)| *p);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let start = pos(i);
        if let Some(close) = is_open_quote(c) {
            let prev_ok = i == 0 || !at(i - 1).is_some_and(char::is_alphanumeric);
            let mut j = i + 1;
            while j < chars.len() && chars[j].1 != close && chars[j].1 != '\n' && j - i <= 200 {
                j += 1;
            }
            let closed = at(j) == Some(close) && j > i + 1;
            let next_ok = !at(j + 1).is_some_and(char::is_alphanumeric);
            if prev_ok && closed && next_ok {
                out.push(Lexeme {
                    piece: Piece::Quote,
                    start,
                    end: pos(j + 1),
                });
                i = j + 1;
                continue;
            }
        }
        if c.is_ascii_digit() {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                if d.is_ascii_digit() {
                    j += 1;
                } else if matches!(d, ',' | '.' | ':' | '/' | '-')
                    && at(j + 1).is_some_and(|n| n.is_ascii_digit())
                {
                    j += 2;
                } else {
                    break;
                }
            }
            out.push(Lexeme {
                piece: Piece::Numeric,
                start,
                end: pos(j),
            });
            i = j;
            continue;
        }
        if c.is_alphabetic() {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                if d.is_alphanumeric() {
                    j += 1;
                } else if matches!(d, '\'' | '’' | '-' | '&')
                    && at(j + 1).is_some_and(char::is_alphanumeric)
                {
                    j += 2;
                } else {
                    break;
                }
            }
            out.push(Lexeme {
                piece: Piece::Word,
                start,
                end: pos(j),
            });
            i = j;
            continue;
        }
        out.push(Lexeme {
            piece: Piece::Other,
            start,
            end: pos(i + 1),
        });
        i += 1;
    }
    out
}

/// A name-like word: capitalised, or with a capital or a digit after its first letter.
fn name_like(word: &str) -> bool {
    let mut chars = word.chars();
    let first = chars.next().unwrap_or(' ');
    let rest = chars.as_str();
    if NOT_NAMES.contains(&word.to_lowercase().as_str()) {
        return false;
    }
    first.is_uppercase() || rest.chars().any(|c| c.is_uppercase() || c.is_ascii_digit())
}

/// Capitalised and nothing more ("Find"), as any word opening a sentence is.
fn plain_capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && chars.all(|c| !c.is_uppercase() && !c.is_ascii_digit())
}

fn token(kind: TokenKind, text: &str, start: usize, end: usize, keys: Vec<String>) -> Scanned {
    Scanned {
        kind,
        text: text[start..end].to_owned(),
        start,
        end,
        keys,
    }
}

/// Reads a numeric lexeme as a date: `YYYY-MM-DD`, `YYYY/MM/DD` or `A/B/YYYY` (both orders).
fn numeric_date(s: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    if parts.len() != 3 || s.contains([',', '.', ':']) {
        return None;
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let valid = |y: u32, m: u32, d: u32| (1..=12).contains(&m) && (1..=31).contains(&d) && y > 0;
    let key = |y: u32, m: u32, d: u32| format!("{y:04}-{m:02}-{d:02}");
    let mut keys = Vec::new();
    if parts[0].len() == 4 {
        if valid(n[0], n[1], n[2]) {
            keys.push(key(n[0], n[1], n[2]));
        }
    } else if parts[2].len() == 4 || parts[2].len() == 2 {
        let y = if parts[2].len() == 2 {
            2000 + n[2]
        } else {
            n[2]
        };
        if valid(y, n[0], n[1]) {
            keys.push(key(y, n[0], n[1]));
        }
        if valid(y, n[1], n[0]) && n[0] != n[1] {
            keys.push(key(y, n[1], n[0]));
        }
    }
    (!keys.is_empty()).then_some(keys)
}

/// A clock's key: `h:mm` without leading zero, then `am` / `pm` when written.
fn time_key(clock: &str, meridiem: Option<&str>) -> Option<String> {
    let mut parts = clock.split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m: u32 = match parts.next() {
        Some(m) if m.len() == 2 => m.parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    if let Some(s) = parts.next() {
        if s.len() != 2 || parts.next().is_some() {
            return None;
        }
    }
    let limit = if meridiem.is_some() { 12 } else { 23 };
    if h > limit || m > 59 {
        return None;
    }
    Some(format!("{h}:{m:02}{}", meridiem.unwrap_or("")))
}

/// "am" / "pm" when the text at `from` reads so (`pm`, `p.m.`, ` PM`), with where it ends.
fn meridiem_at(text: &str, from: usize) -> Option<(&'static str, usize)> {
    let rest = &text[from..];
    let trimmed = rest.trim_start_matches(' ');
    let skipped = rest.len() - trimmed.len();
    if skipped > 1 {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    for (form, which) in [("a.m.", "am"), ("p.m.", "pm"), ("am", "am"), ("pm", "pm")] {
        if lower.starts_with(form) {
            let end = from + skipped + form.len();
            if !text[end..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
            {
                return Some((which, end));
            }
        }
    }
    None
}

/// Every token of `text`, in order.
fn scan(text: &str) -> Vec<Scanned> {
    let lexemes = lex(text);
    let slice = |l: &Lexeme| &text[l.start..l.end];
    // The next lexeme after `i` that is not a single space, and whether a space separated them.
    let next_word = |i: usize| -> Option<usize> {
        let mut j = i + 1;
        if lexemes.get(j).is_some_and(|l| slice(l) == " ") {
            j += 1;
        }
        lexemes.get(j).map(|_| j)
    };
    let mut out: Vec<Scanned> = Vec::new();
    let mut sentence_start = true;
    let mut i = 0;
    while i < lexemes.len() {
        let l = lexemes[i];
        let s = slice(&l);
        match l.piece {
            Piece::Quote => {
                let inner_start = l.start + s.chars().next().map_or(0, char::len_utf8);
                let inner_end = l.end - s.chars().next_back().map_or(0, char::len_utf8);
                let key = normalise_text(&text[inner_start..inner_end]);
                out.push(token(TokenKind::Quoted, text, l.start, l.end, vec![key]));
                sentence_start = false;
                i += 1;
            }
            Piece::Numeric => {
                i = numeric_token(text, &lexemes, i, &mut out);
                sentence_start = false;
            }
            Piece::Word => {
                // A month name next to a day: a date.
                if let Some(m) = month(s) {
                    if let Some(j) = next_word(i).filter(|j| lexemes[*j].piece == Piece::Numeric) {
                        let day_text = slice(&lexemes[j]);
                        if let Ok(day) = day_text.parse::<u32>() {
                            if (1..=31).contains(&day) {
                                let mut end_index = j;
                                let mut end = lexemes[j].end;
                                // An ordinal suffix ("15th").
                                if lexemes.get(j + 1).is_some_and(|l| {
                                    l.piece == Piece::Word
                                        && matches!(slice(l), "st" | "nd" | "rd" | "th")
                                }) {
                                    end_index = j + 1;
                                    end = lexemes[j + 1].end;
                                }
                                let year = year_after(text, &lexemes, end_index);
                                let (keys, end, last) = match year {
                                    Some((y, yend, last)) => {
                                        (vec![format!("{y:04}-{m:02}-{day:02}")], yend, last)
                                    }
                                    None => (vec![format!("{m:02}-{day:02}")], end, end_index),
                                };
                                out.push(token(TokenKind::Date, text, l.start, end, keys));
                                sentence_start = false;
                                i = last + 1;
                                continue;
                            }
                        }
                    }
                }
                // A word right after a number is its unit ("16 GB"), not a name.
                let unit = i > 0
                    && (lexemes[i - 1].piece == Piece::Numeric
                        || (i > 1
                            && slice(&lexemes[i - 1]) == " "
                            && lexemes[i - 2].piece == Piece::Numeric));
                if name_like(s) && !unit {
                    let mut words = vec![i];
                    let mut j = i;
                    while let Some(k) = next_word(j) {
                        if lexemes[k].piece == Piece::Word
                            && name_like(slice(&lexemes[k]))
                            && month(slice(&lexemes[k])).is_none()
                        {
                            words.push(k);
                            j = k;
                        } else {
                            break;
                        }
                    }
                    if sentence_start && plain_capitalised(s) {
                        words.remove(0);
                    }
                    if let (Some(first), Some(last)) = (words.first(), words.last()) {
                        let (start, end) = (lexemes[*first].start, lexemes[*last].end);
                        let key = normalise_text(&text[start..end]);
                        out.push(token(TokenKind::Name, text, start, end, vec![key]));
                    }
                    i = j + 1;
                } else {
                    i += 1;
                }
                sentence_start = false;
            }
            Piece::Other => {
                if matches!(
                    s,
                    "." | "!" | "?" | ":" | ";" | "\n" | "(" | "-" | "•" | "*"
                ) {
                    sentence_start = true;
                } else if !s.trim().is_empty() && !matches!(s, "," | "\"" | "'") {
                    sentence_start = false;
                }
                i += 1;
            }
        }
    }
    out
}

/// A year after a month-day date: `, 2024` or ` 2024`, as (year, end byte, last lexeme).
fn year_after(text: &str, lexemes: &[Lexeme], i: usize) -> Option<(u32, usize, usize)> {
    let mut j = i + 1;
    if lexemes.get(j).is_some_and(|l| &text[l.start..l.end] == ",") {
        j += 1;
    }
    if lexemes.get(j).is_some_and(|l| &text[l.start..l.end] == " ") {
        j += 1;
    }
    let l = lexemes.get(j)?;
    let s = &text[l.start..l.end];
    (l.piece == Piece::Numeric && s.len() == 4)
        .then(|| s.parse().ok())
        .flatten()
        .map(|y| (y, l.end, j))
}

/// Reads the numeric lexeme at `i` (with a currency, a meridiem, a month after it) into `out`;
/// returns the index of the next lexeme to read.
fn numeric_token(text: &str, lexemes: &[Lexeme], i: usize, out: &mut Vec<Scanned>) -> usize {
    let l = lexemes[i];
    let s = &text[l.start..l.end];
    if let Some(keys) = numeric_date(s) {
        out.push(token(TokenKind::Date, text, l.start, l.end, keys));
        return i + 1;
    }
    // A time: `14:30`, `3:30 pm`, `3 pm`.
    let meridiem = meridiem_at(text, l.end);
    if s.contains(':') || meridiem.is_some() {
        if let Some(key) = time_key(s, meridiem.map(|m| m.0)) {
            let end = meridiem.map_or(l.end, |m| m.1);
            out.push(token(TokenKind::Time, text, l.start, end, vec![key]));
            let mut j = i + 1;
            while lexemes.get(j).is_some_and(|x| x.start < end) {
                j += 1;
            }
            return j;
        }
    }
    // `15 March (2024)`: a day before a month.
    if let Ok(day) = s.parse::<u32>() {
        let mut j = i + 1;
        if lexemes.get(j).is_some_and(|x| {
            x.piece == Piece::Word && matches!(&text[x.start..x.end], "st" | "nd" | "rd" | "th")
        }) {
            j += 1;
        }
        if lexemes.get(j).is_some_and(|x| &text[x.start..x.end] == " ") {
            j += 1;
        }
        if let Some(m) = lexemes
            .get(j)
            .filter(|x| x.piece == Piece::Word)
            .and_then(|x| month(&text[x.start..x.end]))
        {
            if (1..=31).contains(&day) {
                let (keys, end, last) = match year_after(text, lexemes, j) {
                    Some((y, yend, last)) => (vec![format!("{y:04}-{m:02}-{day:02}")], yend, last),
                    None => (vec![format!("{m:02}-{day:02}")], lexemes[j].end, j),
                };
                out.push(token(TokenKind::Date, text, l.start, end, keys));
                return last + 1;
            }
        }
    }
    let key = if s.contains(':') || s.contains('/') || s.matches('-').count() > 0 {
        // Not a date or a time: compare the parts as written, e.g. a range "10-20".
        None
    } else {
        Some(number_key(s))
    };
    let Some(key) = key else {
        // Each part of a range or a code is a number of its own.
        let mut offset = l.start;
        for part in s.split(['-', '/', ':']) {
            if !part.is_empty() {
                let start = offset;
                let end = start + part.len();
                out.push(token(
                    TokenKind::Number,
                    text,
                    start,
                    end,
                    vec![number_key(part)],
                ));
            }
            offset += part.len() + 1;
        }
        return i + 1;
    };
    // An amount: a currency sign before, or a currency code or word after.
    let mut start = l.start;
    let mut end = l.end;
    let mut kind = TokenKind::Number;
    let before = text[..l.start].trim_end_matches(' ');
    if before.len() + 1 >= l.start {
        if let Some(sign) = before
            .chars()
            .next_back()
            .filter(|c| CURRENCY_SIGNS.contains(c))
        {
            start = before.len() - sign.len_utf8();
            kind = TokenKind::Amount;
        }
    }
    let mut next = i + 1;
    let mut j = i + 1;
    if lexemes.get(j).is_some_and(|x| &text[x.start..x.end] == " ") {
        j += 1;
    }
    if let Some(w) = lexemes.get(j).filter(|w| w.piece == Piece::Word) {
        if CURRENCY_WORDS.contains(&text[w.start..w.end].to_lowercase().as_str()) {
            end = w.end;
            kind = TokenKind::Amount;
            next = j + 1;
        }
    }
    out.push(token(kind, text, start, end, vec![key]));
    next
}

/// The tokens of a goal that the check looks for.
pub fn goal_tokens(goal: &str) -> Vec<GoalToken> {
    scan(goal).into_iter().map(Scanned::public).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(goal: &str) -> Vec<(TokenKind, String)> {
        goal_tokens(goal)
            .into_iter()
            .map(|t| (t.kind, t.text))
            .collect()
    }

    #[test]
    fn tokens_of_a_goal_with_spans() {
        let goal =
            "Find the Dell XPS 13 for $1,299.00 on March 15, 2024 at 3:30 pm named \"blue widget\"";
        let tokens = goal_tokens(goal);
        for t in &tokens {
            assert_eq!(&goal[t.start..t.end], t.text);
        }
        assert_eq!(
            kinds(goal),
            vec![
                (TokenKind::Name, "Dell XPS".into()),
                (TokenKind::Number, "13".into()),
                (TokenKind::Amount, "$1,299.00".into()),
                (TokenKind::Date, "March 15, 2024".into()),
                (TokenKind::Time, "3:30 pm".into()),
                (TokenKind::Quoted, "\"blue widget\"".into()),
            ]
        );
    }

    #[test]
    fn sentence_openers_are_not_names_but_names_after_them_are() {
        assert_eq!(
            kinds("Book a table. Then call Maria"),
            vec![(TokenKind::Name, "Maria".into())]
        );
        assert_eq!(
            kinds("Find iPhone cases"),
            vec![(TokenKind::Name, "iPhone".into())]
        );
        assert_eq!(
            kinds("Compare New York and Boston hotels"),
            vec![
                (TokenKind::Name, "New York".into()),
                (TokenKind::Name, "Boston".into())
            ]
        );
        assert!(kinds("I want a cheap laptop").is_empty());
    }

    #[test]
    fn number_keys() {
        assert_eq!(number_key("1,299.00"), "1299");
        assert_eq!(number_key("0.50"), "0.5");
        assert_eq!(number_key("007"), "7");
        assert_eq!(number_key("0"), "0");
        assert_eq!(number_key("10.0"), "10");
    }
}
