use super::*;

fn one(key: &str, v: &str) -> String {
    Synth::default().value(key, v)
}

#[test]
fn shapes_are_kept() {
    let s = one("amount", "1234.56");
    assert!(Regex::new(r"^[1-9][0-9]{3}\.[0-9]{2}$").unwrap().is_match(&s) && s != "1234.56", "{s}");
    assert!(Regex::new(r"^-[1-9][0-9]{2}$").unwrap().is_match(&one("delta", "-250")), "negative ints stay negative");
    let s = one("id", "4711");
    assert!(s.len() == 4 && s.parse::<u32>().unwrap() >= 1000 && s != "4711", "{s}");
    let s = one("zip", "01067");
    assert!(s.len() == 5 && s.chars().all(|c| c.is_ascii_digit()) && s != "01067", "{s}");
    assert_eq!(one("mail", "erika.mustermann@bank.de"), "user1@example.invalid");
    let s = one("iban", "DE89370400440532013000");
    assert!(s.starts_with("XX") && s.len() == 22 && s != "DE89370400440532013000", "{s}");
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    assert_eq!(
        iban_check_digits("XX", &compact[4..]),
        compact[2..4].parse::<u32>().unwrap(),
        "valid check digits: {s}"
    );
    let s = one("iban", "DE89 3704 0044 0532 0130 00");
    assert_eq!(s.match_indices(' ').map(|(i, _)| i).collect::<Vec<_>>(), vec![4, 9, 14, 19, 24], "{s}");
    let s = one("booked", "2024-03-15");
    assert!(DATE_ISO.is_match(&s) && s != "2024-03-15", "{s}");
    let s = one("at", "2024-03-15T10:22:33.123+01:00");
    assert!(Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+01:00$").unwrap().is_match(&s), "{s}");
    assert!(Regex::new(r"^\d{2}\.\d{2}\.\d{4}$").unwrap().is_match(&one("datum", "15.03.2024")));
    let s = one("phone", "+49 30 1234567");
    assert!(Regex::new(r"^\+\d{2} \d{2} \d{7}$").unwrap().is_match(&s) && s != "+49 30 1234567", "{s}");
    let s = one("name", "Erika Mustermann");
    assert!(Regex::new(r"^[A-Z][a-z]{4} [A-Z][a-z]{9}$").unwrap().is_match(&s), "{s}");
    assert!(!s.contains("Erika") && !s.contains("Mustermann"));
    let s = one("street", "Heidestraße 17");
    assert!(Regex::new(r"^[A-Z][a-z]{10} [1-9][0-9]$").unwrap().is_match(&s), "{s}");
    assert!(UUID.is_match(&one("id", "123e4567-e89b-12d3-a456-426614174000")));
    let ip = one("host", "10.20.30.40");
    assert!(["192.0.2.", "198.51.100.", "203.0.113."].iter().any(|n| ip.starts_with(n)), "{ip}");
    let url = one("site", "https://intranet.acme.de/x");
    assert!(url.starts_with("https://host1.example.invalid/") && !url.contains("acme"), "{url}");
    assert_eq!(one("x", ""), "");
}

#[test]
fn the_same_value_gets_the_same_stand_in_and_distinct_values_distinct_ones() {
    let mut s = Synth::default();
    let a = s.value("customer_id", "4711");
    let b = s.value("id", "4711");
    let c = s.value("id", "4712");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(s.value("a", "Erika@Bank.de"), s.value("b", "erika@bank.de"), "e-mails compare case-insensitively");
    let many: HashSet<String> = (0..500).map(|i| s.value("n", &format!("{}", 1000 + i))).collect();
    assert_eq!(many.len(), 500, "four-digit ids stay distinct");
    // Stand-ins depend on order, not content: a value cannot be recovered by trying candidates.
    let mut t = Synth::default();
    assert_eq!(t.value("id", "9999"), Synth::default().value("id", "1111"));
}

#[test]
fn secrets_are_redacted_by_key_or_by_look() {
    for key in [
        "password",
        "DB_PASSWORD",
        "apiKey",
        "api_key",
        "X-Api-Key",
        "secret",
        "clientSecret",
        "token",
        "access_token",
        "dsn",
        "DATABASE_URL",
        "redisUrl",
        "key",
        "private_key",
        "connection_string",
        "session_id",
        "auth",
    ] {
        assert!(is_secret_key(key), "{key}");
        assert_eq!(one(key, "plain"), REDACTED, "{key}");
    }
    for key in ["author", "monkey", "passenger", "keyboard_layout", "name", "email", "customer_id"] {
        assert!(!is_secret_key(key), "{key}");
    }
    for v in [
        "postgres://admin:hunter2@db.internal/prod",
        "sk-live-abcdefghijklmnop",
        "ghp_0123456789abcdefABCDEF",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        "Server=db;User Id=sa;Password=hunter2;",
        "AKIAIOSFODNN7EXAMPLE",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "-----BEGIN PRIVATE KEY-----",
    ] {
        assert_eq!(one("note", v), REDACTED, "{v}");
    }
}

#[test]
fn names_pass_only_when_they_look_like_names() {
    for ok in ["customers", "customer_id", "Kunde", "public.orders", "firstName", "col2"] {
        assert!(safe_name(ok), "{ok}");
    }
    for bad in [
        "Erika Mustermann",
        "erika@bank.de",
        "4711",
        "2024-03-15",
        "DE89370400440532013000",
        "a'b",
        "",
        "+49301234567",
        "x\ny",
    ] {
        assert!(!safe_name(bad), "{bad}");
    }
    let mut s = Synth::default();
    assert_eq!(s.name("key", "erika@bank.de"), "key1");
    assert_eq!(s.name("key", "erika@bank.de"), "key1");
    assert_eq!(s.name("key", "4711"), "key2");
    assert_eq!(s.name("key", "status"), "status");
}

#[test]
fn booleans_are_drawn_per_occurrence() {
    let mut s = Synth::default();
    let draws: Vec<bool> = (0..64).map(|_| s.boolean(true)).collect();
    assert!(draws.iter().any(|b| *b) && draws.iter().any(|b| !*b));
}
