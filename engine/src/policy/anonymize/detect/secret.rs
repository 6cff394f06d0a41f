//! Secrets: PEM private key blocks, JWTs, tokens with a known vendor prefix, long high-entropy strings,
//! passwords in URLs, and the values of secret-like keys (`password = "…"`, `token: …`, `"api_key":
//! "…"`, `DB_PASSWORD=…`). What is found is redacted whole: not even its shape leaves.
use regex::Regex;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*)",
    )
    .unwrap()
});
static JWT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*").unwrap());
static PREFIXED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|glpat-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{8,}",
        r"|sk-[A-Za-z0-9_-]{8,}|[sr]k_(?:live|test)_[A-Za-z0-9]{8,}|xox[bapr]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}",
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}|npm_[A-Za-z0-9]{30,})"
    ))
    .unwrap()
});
static URL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@").unwrap());
static OPAQUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_-]{20,}={0,2}").unwrap());
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)([A-Za-z0-9_.-]*(?:password|passwd|pwd|passwort|kennwort|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|credentials?)[A-Za-z0-9_]*)",
        r#"["']?[ \t]*(?::=|=|:)[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s,;'"(){}\[\]<>=][^\s,;'"(){}\[\]<>]*))"#
    ))
    .unwrap()
});

/// Words that follow `token:` or `password =` in code as a type or a keyword, not as a value.
const NOT_VALUES: &[&str] = &[
    "string",
    "str",
    "number",
    "int",
    "bool",
    "boolean",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "option",
    "self",
    "this",
    "new",
    "any",
    "bytes",
    "secretstr",
    "redacted",
];

/// Bits per character: what tells a key from a word.
fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    counts.values().map(|&k| k as f64 / n).map(|p| -p * p.log2()).sum()
}

fn high_entropy(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let letters = s.chars().filter(char::is_ascii_alphabetic).count();
    let distinct = s.chars().collect::<HashSet<_>>().len();
    // An identifier made of words and numbers (`customer_email_2024_v2`) is not a key.
    let wordy = s.split(['_', '-', '/']).all(|seg| {
        seg.len() <= 3 || seg.chars().all(|c| c.is_ascii_alphabetic()) || seg.chars().all(|c| c.is_ascii_digit())
    });
    let hex = s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit());
    hex || (!wordy && digits >= 2 && letters >= 4 && distinct >= 12 && entropy(s) >= 3.5)
}

/// `max_tokens: 64`, `token_count = 12`: a "token" key that counts (language-model tokens, a budget) with
/// a plain small number is configuration, not a credential. Long digit runs still count as secrets.
fn counts_tokens(key: &str, value: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let counting = ["max", "min", "num", "n_"].iter().any(|p| k.starts_with(p))
        || ["count", "limit", "len", "length", "size", "budget"].iter().any(|e| k.ends_with(e));
    let small_number = !value.is_empty() && value.len() <= 6 && value.chars().all(|c| c.is_ascii_digit());
    small_number
        && (counting || !k.contains("pass") && !k.contains("pin") && !k.contains("secret") && k.contains("token"))
}

/// Ranges to redact, in no particular order (they may overlap; the pass keeps the first of each).
pub fn find(text: &str) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    out.extend(PEM.find_iter(text).map(|m| m.range()));
    out.extend(JWT.find_iter(text).map(|m| m.range()));
    out.extend(PREFIXED.find_iter(text).map(|m| m.range()));
    out.extend(URL_PASSWORD.captures_iter(text).map(|c| c.get(1).unwrap().range()));
    for c in KEY_VALUE.captures_iter(text) {
        if !super::super::synth::is_secret_key(&c[1]) {
            continue;
        }
        let Some(v) = c.get(2).or(c.get(3)).or(c.get(4)) else { continue };
        let s = v.as_str();
        if s.is_empty() || s == super::super::synth::REDACTED || counts_tokens(&c[1], s) {
            continue;
        }
        if c.get(4).is_some() {
            let next = text[v.end()..].chars().next();
            let reference = s.contains('.') && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.');
            if NOT_VALUES.contains(&s.to_lowercase().as_str()) || next == Some('(') || next == Some('[') || reference {
                continue;
            }
        }
        out.push(v.range());
    }
    out.extend(
        OPAQUE
            .find_iter(text)
            .filter(|m| high_entropy(m.as_str()) && super::bounded(text, &m.range()))
            .map(|m| m.range()),
    );
    out.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        let mut v: Vec<&str> = find(t).into_iter().map(|r| &t[r]).collect();
        v.dedup();
        v
    }

    #[test]
    fn secrets_of_every_kind() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("key:\n{pem}\nafter")), [pem]);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert!(found(&format!("Authorization: Bearer {jwt}")).contains(&jwt));
        for tok in [
            "ghp_0123456789abcdefABCDEF",
            "github_pat_11ABCDEFG0123456789_abc",
            "glpat-abcdefghij0123456789",
            "sk-ant-api03-abcdEFGH",
            "sk-live-CANARY",
            "xoxb-1234-5678-abcdefgh",
            "AKIAIOSFODNN7EXAMPLE",
        ] {
            assert_eq!(found(&format!("use {tok} here")), [tok], "{tok}");
        }
        assert_eq!(found("postgres://admin:hunter2@db.internal/prod"), ["hunter2"]);
        assert_eq!(found("x = 'a8Fk29dLq0Zp4VbN7cXs1MwE'"), ["a8Fk29dLq0Zp4VbN7cXs1MwE"]);
        for (t, v) in [
            (r#"PASSWORD = "Sommer2024!""#, "Sommer2024!"),
            ("password: hunter", "hunter"),
            (r#"{"api_key": "abc123"}"#, "abc123"),
            ("DB_PASSWORD=geheim", "geheim"),
            ("let client_secret = 'xyz';", "xyz"),
            ("apiKey := \"k-1\"", "k-1"),
        ] {
            assert_eq!(found(t), [v], "{t}");
        }
    }

    #[test]
    fn near_misses_stay() {
        for t in [
            "token: string;",
            "def check(password: str) -> bool:",
            "password = os.environ['PW']",
            "tokenizer = Tokenizer()",
            "if token == other:",
            "customer_email_address_2024_v2",
            "src/policy/anonymize/detect/secret.rs",
            "the password must be long",
            "version 1.2.3",
            "sk-learn",
            "task-force",
            "max_tokens: 64",
            r#"{"max_tokens": 4096}"#,
            "maxTokens = 128",
            "token_count = 12",
            "TOKEN_LIMIT=500",
            "context_tokens: 2048",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
        // A number is still a secret where the key is one, or where it is too long to be a count.
        for (t, v) in
            [("password = 123456", "123456"), ("api_token: 12345678901", "12345678901"), ("pin_token=4711", "4711")]
        {
            assert_eq!(found(t), [v], "{t}");
        }
    }
}
