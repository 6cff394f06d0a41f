//! Synthetic stand-ins for real values. A stand-in keeps the value's type and shape (digits stay digits of
//! the same count, decimals keep their scale, dates stay valid dates, e-mails become `userN@example.invalid`)
//! and nothing else: it is drawn from a generator seeded by the order in which distinct values were first
//! seen, never from the value itself, so a stand-in cannot be turned back into the value by guessing. The
//! same real value gets the same stand-in everywhere in one payload, so joins still line up, and the same
//! input gives the same payload, so a preview shows exactly what would be sent.
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

pub const REDACTED: &str = "<redacted>";

/// splitmix64: small, fast, and good enough to make stand-ins look varied.
struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(crate::rng::SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6C6F_6B61_6C21))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn digit(&mut self, nonzero: bool) -> char {
        let d = if nonzero { 1 + self.below(9) } else { self.below(10) };
        char::from(b'0' + d as u8)
    }
}

pub(crate) const LOREM: &[&str] = &[
    "a",
    "ad",
    "at",
    "do",
    "et",
    "id",
    "in",
    "ut",
    "est",
    "hic",
    "non",
    "sed",
    "sit",
    "amet",
    "anim",
    "ciam",
    "dolor",
    "culpa",
    "irure",
    "lorem",
    "ipsum",
    "magna",
    "minim",
    "nulla",
    "velit",
    "aliqua",
    "cillum",
    "dolore",
    "fugiat",
    "labore",
    "laboris",
    "commodo",
    "egestas",
    "eiusmod",
    "officia",
    "pariatur",
    "proident",
    "sinterim",
    "tempora",
    "voluptas",
    "consequat",
    "excepteur",
    "exercitat",
    "incididunt",
    "adipiscing",
    "consectetur",
    "reprehenderit",
    "exercitationem",
];

fn lorem_word(len: usize, rng: &mut Rng) -> String {
    let exact: Vec<&str> = LOREM.iter().copied().filter(|w| w.chars().count() == len).collect();
    if !exact.is_empty() {
        return exact[rng.below(exact.len() as u64) as usize].to_string();
    }
    let mut s = String::new();
    while s.chars().count() < len {
        s.push_str(LOREM[rng.below(LOREM.len() as u64) as usize]);
    }
    s.chars().take(len).collect()
}

/// Letters become placeholder words of the same length and case pattern, digits become other digits,
/// everything else (spaces, punctuation) stays: the shape of a name, an address, a phone number or a
/// reference code without any of its content.
fn masked(v: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = v.chars().collect();
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i + 1;
        if c.is_alphabetic() {
            while j < chars.len() && chars[j].is_alphabetic() {
                j += 1;
            }
            let run = &chars[i..j];
            let word = lorem_word(run.len(), rng);
            let upper = run.len() > 1 && run.iter().all(|c| !c.is_lowercase());
            if upper {
                out.push_str(&word.to_uppercase());
            } else if run[0].is_uppercase() {
                let mut w = word.chars();
                out.extend(w.next().map(|f| f.to_ascii_uppercase()));
                out.extend(w);
            } else {
                out.push_str(&word);
            }
        } else if c.is_numeric() {
            while j < chars.len() && chars[j].is_numeric() {
                j += 1;
            }
            for (k, d) in chars[i..j].iter().enumerate() {
                out.push(rng.digit(k == 0 && *d != '0' && j - i > 1));
            }
        } else {
            out.push(c);
        }
        i = j;
    }
    out
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s]+\.[^@\s]+$").unwrap());
static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([A-Za-z][A-Za-z0-9+.-]*)://\S+$").unwrap());
static URL_WITH_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]*@").unwrap());
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$").unwrap()
});
static IBAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}$").unwrap());
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([+-]?)([0-9]+)(?:\.([0-9]+))?([eE][+-]?[0-9]+)?$").unwrap());
static IPV4: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}$").unwrap());
static DATE_ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:([T ])([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$").unwrap()
});
static DATE_DMY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{1,2})([./])([0-9]{1,2})[./]([0-9]{4})$").unwrap());
static TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?$").unwrap());
static JWT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$").unwrap());
static INLINE_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[=:]").unwrap());
static OPAQUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9+/=_.~-]{24,}$").unwrap());

const SECRET_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "npm_",
    "Bearer ",
    "Basic ",
    "-----BEGIN",
];

/// Words of a key: `apiKey`, `API_KEY` and `api-key` all give `api`, `key`.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Whether a key (column, JSON/YAML key, variable) names a credential: its value is redacted, not merely
/// replaced, because even the shape of a secret is nobody's business.
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "apikey",
        "key",
        "keys",
        "dsn",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "session",
        "sessionid",
        "salt",
        "signature",
        "otp",
        "pin",
        "private",
        "privatekey",
        "cert",
        "certificate",
        "conn",
        "connection",
        "connectionstring",
        "connstr",
        "jwt",
        "hash",
        "iv",
        "nonce",
        "totp",
        "mfa",
        "passwort",
        "kennwort",
        "geheim",
        "geheimnis",
        "zugangsdaten",
        "schluessel",
        "schlüssel",
    ];
    const JOINED: &[&str] =
        &["password", "passwd", "secret", "apikey", "accesskey", "privatekey", "connectionstring", "token"];
    const STORES: &[&str] = &[
        "database",
        "db",
        "redis",
        "mongo",
        "mongodb",
        "amqp",
        "rabbitmq",
        "postgres",
        "postgresql",
        "mysql",
        "broker",
        "sentry",
        "smtp",
        "jdbc",
    ];
    let words = key_words(key);
    let joined = words.concat();
    words.iter().any(|w| WORDS.contains(&w.as_str()))
        || JOINED.iter().any(|j| joined.contains(j))
        || (words.iter().any(|w| w == "url" || w == "uri") && words.iter().any(|w| STORES.contains(&w.as_str())))
}

/// Whether a value looks like a credential wherever it appears.
pub fn looks_like_secret(v: &str) -> bool {
    if URL_WITH_PASSWORD.is_match(v) || JWT.is_match(v) || INLINE_SECRET.is_match(v) {
        return true;
    }
    if SECRET_PREFIXES.iter().any(|p| v.starts_with(p)) && v.len() >= 12 {
        return true;
    }
    // A long opaque string of mixed letters and digits: a key, a hash, a session id.
    if OPAQUE.is_match(v) && !UUID.is_match(v) {
        let digits = v.chars().filter(char::is_ascii_digit).count();
        let letters = v.chars().filter(char::is_ascii_alphabetic).count();
        let distinct = v.chars().collect::<HashSet<_>>().len();
        return digits >= 2 && letters >= 2 && distinct >= 10;
    }
    false
}

/// Whether a text is data rather than a name: an e-mail, a number, a date, an IBAN, a URL, a phone-like
/// run of digits, a secret. Names that look like this are replaced like values.
pub fn looks_like_value(s: &str) -> bool {
    let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
    EMAIL.is_match(s)
        || URL.is_match(s)
        || NUMBER.is_match(s)
        || IBAN.is_match(s)
        || UUID.is_match(s)
        || DATE_ISO.is_match(s)
        || DATE_DMY.is_match(s)
        || IPV4.is_match(s)
        || digits >= 6
        || looks_like_secret(s)
}

/// Whether a table, column or key name may pass as structure. Fail closed: anything with spaces, quotes,
/// `@`, many digits or the look of a value is replaced by a synthetic name.
pub fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 64
        && s.chars().any(char::is_alphabetic)
        && s.chars().all(|c| c.is_alphanumeric() || "_-.$#".contains(c))
        && !looks_like_value(s)
}

fn bool_word(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn iban_check_digits(country: &str, bban: &str) -> u32 {
    let rearranged = format!("{bban}{country}00");
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let n =
            if c.is_ascii_digit() { c as u32 - '0' as u32 } else { c.to_ascii_uppercase() as u32 - 'A' as u32 + 10 };
        for d in n.to_string().chars() {
            rem = (rem * 10 + (d as u32 - '0' as u32)) % 97;
        }
    }
    98 - rem
}

/// The real→synthetic table of one payload.
#[derive(Default)]
pub struct Synth {
    map: HashMap<String, String>,
    used: HashSet<String>,
    names: HashMap<String, String>,
    seen: u64,
    emails: u64,
    occurrences: u64,
    /// Every raw value seen (lowercased): the folder's known personal data, and what no stand-in may equal.
    raw: HashSet<String>,
    raw_order: Vec<String>,
    /// Every name that passed as structure (tables, columns, keys), lowercased: never replaced as a value.
    structure: HashSet<String>,
    phones: u64,
    dates: u64,
    cards: u64,
}

impl Synth {
    /// The stand-in for `raw`, a value found under `key` (a column, key or variable name).
    pub fn value(&mut self, key: &str, raw: &str) -> String {
        let v = raw.trim();
        if v.is_empty() {
            return String::new();
        }
        self.remember(v);
        if is_secret_key(key) || looks_like_secret(v) {
            return REDACTED.into();
        }
        if let Some(b) = bool_word(v) {
            let s = self.boolean(b).to_string();
            return if v.chars().next().is_some_and(char::is_uppercase) { s.to_uppercase() } else { s };
        }
        let norm = if EMAIL.is_match(v) { v.to_lowercase() } else { v.to_string() };
        if let Some(s) = self.map.get(&norm) {
            return s.clone();
        }
        self.seen += 1;
        let mut rng = Rng::new(self.seen);
        let mut out = self.shape(v, &mut rng);
        // Distinct values keep distinct stand-ins where the shape leaves room, so joins do not merge.
        for _ in 0..16 {
            if out != v && !self.used.contains(&out) && !self.raw.contains(&out.to_lowercase()) {
                break;
            }
            out = self.shape(v, &mut rng);
        }
        self.used.insert(out.clone());
        self.map.insert(norm, out.clone());
        out
    }

    /// Record a raw value from a data file without asking for its stand-in (`.env` values, redacted whole).
    pub fn remember(&mut self, raw: &str) {
        let v = raw.trim();
        if !v.is_empty() && self.raw.insert(v.to_lowercase()) {
            self.raw_order.push(v.to_string());
        }
    }

    /// The raw values seen, in the order first seen.
    pub fn raw_values(&self) -> &[String] {
        &self.raw_order
    }

    /// Whether `v` is a raw value some source holds (case-insensitive).
    pub fn is_raw(&self, v: &str) -> bool {
        self.raw.contains(&v.to_lowercase())
    }

    /// Names that passed as structure, lowercased.
    pub fn structure_names(&self) -> &HashSet<String> {
        &self.structure
    }

    /// The stand-ins issued so far.
    pub fn issued(&self) -> impl Iterator<Item = &String> {
        self.map.values()
    }

    /// A boolean is not a join key, and a consistent mapping of two values is trivially inverted, so each
    /// occurrence gets its own draw: a flag such as a health condition does not survive.
    pub fn boolean(&mut self, _real: bool) -> bool {
        self.occurrences += 1;
        Rng::new(self.occurrences ^ 0xB001).next() & 1 == 1
    }

    /// A name for something whose real name may not pass ([`safe_name`] said no), consistent per payload.
    pub fn name(&mut self, kind: &str, raw: &str) -> String {
        if safe_name(raw) {
            self.structure.insert(raw.to_lowercase());
            return raw.to_string();
        }
        let n = self.names.len() + 1;
        self.names.entry(format!("{kind}\u{0}{raw}")).or_insert_with(|| format!("{kind}{n}")).clone()
    }

    fn shape(&mut self, v: &str, rng: &mut Rng) -> String {
        if EMAIL.is_match(v) {
            self.emails += 1;
            return format!("user{}@example.invalid", self.emails);
        }
        if let Some(c) = URL.captures(v) {
            let scheme = c[1].to_ascii_lowercase();
            return format!("{scheme}://host{}.example.invalid/{}", self.seen, lorem_word(6, rng));
        }
        if UUID.is_match(v) {
            return v
                .chars()
                .map(|c| if c == '-' { c } else { char::from_digit(rng.below(16) as u32, 16).unwrap() })
                .collect();
        }
        if IBAN.is_match(v) {
            let compact: String = v.chars().filter(|c| *c != ' ').collect();
            let bban: String = (4..compact.len()).map(|_| rng.digit(false)).collect();
            let check = iban_check_digits("XX", &bban);
            let synthetic = format!("XX{check:02}{bban}");
            // Put the spaces back where they were.
            let mut out = String::new();
            let mut it = synthetic.chars();
            for c in v.chars() {
                if c == ' ' {
                    out.push(' ');
                } else {
                    out.extend(it.next());
                }
            }
            return out;
        }
        if super::detect::card::is_card(v) {
            self.cards += 1;
            return super::detect::card::standin(v, &mut self.cards);
        }
        if super::detect::phone::is_phone(v) {
            self.phones += 1;
            return super::detect::phone::standin(v, self.phones);
        }
        if let Some(c) = DATE_ISO.captures(v) {
            // Stand-in dates lie in 0001-0099: well-formed, never a real person's date, known to a later pass.
            self.dates += 1;
            let (y, m, d) = super::detect::date::nth_day(self.dates);
            let mut out = format!("{y:04}-{m:02}-{d:02}");
            if let Some(sep) = c.get(4) {
                out.push_str(&format!("{}{:02}:{:02}", sep.as_str(), rng.below(24), rng.below(60)));
                if c.get(7).is_some() {
                    out.push_str(&format!(":{:02}", rng.below(60)));
                }
                if let Some(frac) = c.get(8) {
                    out.push('.');
                    out.extend((1..frac.as_str().len()).map(|_| rng.digit(false)));
                }
                if let Some(tz) = c.get(9) {
                    out.push_str(tz.as_str());
                }
            }
            return out;
        }
        if let Some(c) = DATE_DMY.captures(v) {
            self.dates += 1;
            let (y, m, d) = super::detect::date::nth_day(self.dates);
            let pad = |n: u64, like: &str| if like.len() == 2 { format!("{n:02}") } else { n.to_string() };
            let sep = &c[2];
            // `/` dates are usually month first, `.` dates day first; either way the result is a valid date.
            return format!(
                "{}{sep}{}{sep}{y:04}",
                pad(if sep == "/" { m } else { d }, &c[1]),
                pad(if sep == "/" { d } else { m }, &c[3])
            );
        }
        if let Some(c) = TIME.captures(v) {
            let mut out = format!("{:02}:{:02}", rng.below(24), rng.below(60));
            if c.get(3).is_some() {
                out.push_str(&format!(":{:02}", rng.below(60)));
            }
            if let Some(frac) = c.get(4) {
                out.push('.');
                out.extend((1..frac.as_str().len()).map(|_| rng.digit(false)));
            }
            return out;
        }
        if IPV4.is_match(v) {
            // Documentation ranges: never someone's real host.
            let nets = ["192.0.2", "198.51.100", "203.0.113"];
            return format!("{}.{}", nets[rng.below(3) as usize], 1 + rng.below(254));
        }
        if let Some(c) = NUMBER.captures(v) {
            let (sign, int) = (&c[1], &c[2]);
            let mut out = sign.to_string();
            if int.len() > 1 && int.starts_with('0') {
                out.extend(int.chars().map(|_| rng.digit(false))); // a code with leading zeros stays one
            } else if int == "0" {
                out.push(if c.get(3).is_some() { '0' } else { rng.digit(false) });
            } else {
                out.extend((0..int.len()).map(|i| rng.digit(i == 0)));
            }
            if let Some(frac) = c.get(3) {
                out.push('.');
                out.extend(frac.as_str().chars().map(|_| rng.digit(false)));
            }
            if let Some(exp) = c.get(4) {
                out.push_str(exp.as_str());
            }
            return out;
        }
        masked(v, rng)
    }
}

#[cfg(test)]
#[path = "synth_tests.rs"]
mod tests;
