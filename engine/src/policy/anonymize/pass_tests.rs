//! The text pass: planted values of every kind never come out, the structure around them does, and a
//! second pass changes nothing.
use super::*;
use crate::policy::anonymize::{Anonymizer, SchemaFile, SourceKind};
use proptest::prelude::*;

fn pass_with(files: &[(&str, &str)]) -> Pass {
    let mut a = Anonymizer::new();
    for (path, text) in files {
        let kind = SourceKind::of(path).unwrap();
        a.add_file(&SchemaFile { path: path.to_string(), kind, text: text.to_string() });
    }
    a.finish_with_pass().1
}

const PEOPLE: &str =
    "id,full_name,city,email\n4711,Erika Mustermann,Köln,erika@bank.example\n4712,Max Brien,Bonn,max@firma.example\n";

#[test]
fn prose_loses_every_value_and_keeps_its_words() {
    let mut p = pass_with(&[("data/people.csv", PEOPLE)]);
    let t = "Remind Erika Mustermann (erika@bank.example, born 12.03.1985, +49 30 9876543) about invoice 4711; \
             IBAN DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111, token ghp_0123456789abcdefABCDEF. Ask MAX BRIEN too.";
    let out = p.scrub(t, TextKind::Prose);
    for canary in [
        "Erika",
        "Mustermann",
        "erika@bank",
        "12.03.1985",
        "9876543",
        "4711",
        "DE89",
        "4111",
        "ghp_",
        "MAX BRIEN",
        "Max Brien",
    ] {
        assert!(!out.contains(canary), "{canary} in {out}");
    }
    for word in ["Remind", "about invoice", "IBAN", "card", "token", "Ask", "too."] {
        assert!(out.contains(word), "{word} missing from {out}");
    }
    let c = p.counts();
    for d in [
        Detector::Email,
        Detector::Date,
        Detector::Phone,
        Detector::Iban,
        Detector::Card,
        Detector::Secret,
        Detector::DataValue,
    ] {
        assert!(c.get(&d).copied().unwrap_or(0) >= 1, "{d:?} counted: {c:?}");
    }
}

#[test]
fn code_keeps_names_and_shape_and_masks_literals() {
    let mut p = pass_with(&[("data/people.csv", PEOPLE)]);
    let code = "PATIENT = {\n    \"name\": \"Hannelore Kramer\",\n    \"email\": \"h.kramer@praxis.example\",\n    \"iban\": \"DE89370400440532013000\",\n    \"password\": \"Sommer2024!\",\n}\n\ndef send_reminder(customer_email: str, city=\"Köln\") -> bool:\n    # call Hannelore first\n    return notify(customer_email, \"Ihr Termin am 2024-05-17\")\n";
    let out = p.scrub(code, TextKind::Code(Some(Lang::Python)));
    for canary in [
        "Hannelore Kramer",
        "Kramer",
        "h.kramer",
        "DE89370400440532013000",
        "Sommer2024",
        "Köln",
        "Termin",
        "2024-05-17",
    ] {
        assert!(!out.contains(canary), "{canary} in {out}");
    }
    for structure in [
        "PATIENT = {",
        "\"name\": \"",
        "\"email\"",
        "\"password\": \"<redacted>\"",
        "def send_reminder(customer_email: str, city=\"",
        "# call",
        "return notify(customer_email, \"",
    ] {
        assert!(out.contains(structure), "{structure} missing from {out}");
    }
    assert_eq!(out.lines().count(), code.lines().count(), "the shape stays: {out}");
    // Prose in a comment is not a literal: a name there that no data file holds cannot be known.
    assert!(out.contains("# call Hannelore first"), "{out}");
}

#[test]
fn near_misses_stay_as_they_are() {
    let mut p = pass_with(&[("data/people.csv", PEOPLE)]);
    let t = "version 1.2.3 of customer_email; IBAN DE88370400440532013000 fails its check; \
             order 1234567812345678 fails Luhn; 42 items, total 17.5; fn send_reminder(); the city of Bonnington";
    assert_eq!(p.scrub(t, TextKind::Prose), t);
    assert!(p.counts().is_empty(), "{:?}", p.counts());
}

#[test]
fn one_value_one_stand_in_across_parts_and_the_schema() {
    let mut a = Anonymizer::new();
    a.add_file(&SchemaFile { path: "people.csv".into(), kind: SourceKind::Csv, text: PEOPLE.into() });
    let (schema, mut p) = a.finish_with_pass();
    let preview = schema.preview();
    let one = p.scrub("Write to erika@bank.example about Erika Mustermann.", TextKind::Prose);
    let two = p.scrub("let to = \"ERIKA@bank.example\"; // Erika Mustermann", TextKind::Code(Some(Lang::Rust)));
    let mail = p.scrub("erika@bank.example", TextKind::Prose);
    assert!(mail.ends_with("@example.invalid") && one.contains(&mail) && two.contains(&mail), "{one} / {two}");
    assert!(preview.contains(&mail), "the schema's stand-in is the same: {preview}");
    let name = p.scrub("Erika Mustermann", TextKind::Prose);
    assert!(one.contains(&name) && two.contains(&name) && preview.contains(&name), "{name}: {one} / {two} / {preview}");
    assert_eq!(p.scrub(&preview, TextKind::Prose), preview, "the schema passes the pass unchanged");
}

#[test]
fn twice_is_once() {
    let files = [("data/people.csv", PEOPLE)];
    let t = "Erika Mustermann, erika@bank.example, +49 30 9876543, 030/1234567, 1985-03-12, 12/03/1985, DE89 3704 0044 0532 0130 00, \
             4111-1111-1111-1111, password: hunter2, eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    let code = format!("const NOTE: &str = \"{t} and 9001 more\";\nfn main() {{ println!(\"{{}} Hallo\", NOTE); }}\n");
    for (text, kind) in [
        (t.to_string(), TextKind::Prose),
        (code, TextKind::Code(Some(Lang::Rust))),
        (format!("x = '{t}'"), TextKind::Code(None)),
    ] {
        let once = pass_with(&files).scrub(&text, kind);
        let twice = pass_with(&files).scrub(&once, kind);
        assert_eq!(twice, once);
        assert_ne!(once, text);
    }
}

fn iban(bban: &str) -> String {
    let check = 98 - {
        let mut rem = 0u32;
        for c in format!("{bban}DE00").chars() {
            let n = c.to_digit(36).unwrap();
            rem = if n >= 10 { (rem * 100 + n) % 97 } else { (rem * 10 + n) % 97 };
        }
        rem
    };
    format!("DE{check:02}{bban}")
}

fn card(body: &str) -> String {
    (0..10).map(|d| format!("{body}{d}")).find(|c| detect::card::luhn(c)).unwrap()
}

fn grouped(s: &str) -> String {
    s.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

prop_compose! {
    fn planted()(
        user in "[a-z]{3,8}\\.[a-z]{3,8}", host in "[a-z]{4,9}", tld in "(de|com|org)",
        bban in "[0-9]{18}", group in any::<bool>(),
        card_body in "4[0-9]{14}",
        intl in any::<bool>(), area in "[1-9][0-9]{1,2}", line in "[1-9][0-9]{5,7}",
        first in "[A-Z][a-z]{4,8}", last in "[A-Z][a-z]{5,10}", customer in "[1-9][0-9]{4,6}",
    ) -> Vec<String> {
        let iban = iban(&bban);
        let phone = if intl { format!("+49 {area} {line}") } else { format!("0{area}/{line}") };
        vec![
            format!("{user}@{host}.{tld}"),
            if group { grouped(&iban) } else { iban },
            grouped(&card(&card_body)),
            phone,
            format!("{first} {last}"),
            customer,
        ]
    }
}

/// Whether `v` stands in `text` as a value of its own (any case), not as digits inside a longer number.
fn appears(text: &str, v: &str) -> bool {
    let (t, v) = (text.to_lowercase(), v.to_lowercase());
    t.match_indices(&v).any(|(i, _)| detect::bounded(&t, &(i..i + v.len())))
}

fn words() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        "(the|invoice|send|reminder|customer_email|total|v1\\.2\\.3|42|fn|let|\\(|\\)|;|,|\\.|:|\n)",
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn planted_values_never_come_out_and_twice_is_once(
        values in planted(), before in words(), after in words(), form in 0usize..4,
    ) {
        let data = format!("id,full_name\n{},{}\n", values[5], values[4]);
        let files = [("people.csv", data.as_str())];
        let around = |v: &str| format!("{} {v} {}", before.join(" "), after.join(" "));
        let body: Vec<String> = values.iter().map(|v| around(v)).collect();
        let (text, kind) = match form {
            0 => (body.join("\n"), TextKind::Prose),
            1 => (body.iter().map(|b| format!("let x = \"{b}\";\n")).collect::<String>(), TextKind::Code(Some(Lang::Rust))),
            2 => (body.iter().map(|b| format!("x = '{}'  # {b}\n", b.replace('\'', ""))).collect::<String>(), TextKind::Code(Some(Lang::Python))),
            _ => (body.iter().map(|b| format!("call(\"{b}\")\n")).collect::<String>(), TextKind::Code(None)),
        };
        let once = pass_with(&files).scrub(&text, kind);
        for v in &values {
            prop_assert!(!appears(&once, v), "{} came out of {}", v, once);
        }
        let twice = pass_with(&files).scrub(&once, kind);
        prop_assert_eq!(twice, once);
    }
}
