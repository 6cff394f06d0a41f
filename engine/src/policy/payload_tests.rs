//! The cloud-design request per tier, and the sample payload of the closing note.
use super::*;
use crate::syntax::design_doc;

fn folder(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("lokal-payload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    root
}

pub(crate) const SAMPLE_REQUIREMENT: &str =
    "Patientin Erika Mustermann (erika.mustermann@praxis-nord.de, Tel. +49 30 9876543, geb. 12.03.1985, \
IBAN DE89 3704 0044 0532 0130 00) soll eine Erinnerung an ihren Termin bekommen. Baue eine Funktion send_reminder, \
die Patienten aus der Tabelle patients liest und per E-Mail erinnert.";

pub(crate) const SAMPLE_SELECTION: &str = "SMTP_PASSWORD = \"Sommer2024!\"\n\nTEST_PATIENT = {\n    \"name\": \"Erika Mustermann\",\n    \"email\": \"erika.mustermann@praxis-nord.de\",\n    \"phone\": \"030 9876543\",\n    \"born\": \"1985-03-12\",\n    \"iban\": \"DE89370400440532013000\",\n}\n\ndef send_reminder(patient_id: int) -> bool:\n    ...\n";

const SAMPLE_SQL: &str = "CREATE TABLE patients (id integer PRIMARY KEY, full_name text, email text, phone text, born date);\n\
INSERT INTO patients VALUES (4711, 'Erika Mustermann', 'erika.mustermann@praxis-nord.de', '+49 30 9876543', '1985-03-12');\n";

fn sample(tier: Tier, root: &Path) -> Result<CloudPayload, String> {
    build(&PayloadInput {
        tier,
        root,
        requirement: SAMPLE_REQUIREMENT,
        selection: Some(Snippet { path: "src/reminders.py", language: "python", text: SAMPLE_SELECTION }),
        open_files: vec![],
    })
}

#[test]
fn tier_2_sample_payload_leaks_nothing_and_keeps_the_structure() {
    let root = folder("sample", &[("db/schema.sql", SAMPLE_SQL)]);
    let p = sample(Tier::Hybrid, &root).unwrap();
    println!("BEFORE (requirement):\n{SAMPLE_REQUIREMENT}\n\nBEFORE (selection):\n{SAMPLE_SELECTION}\n\nAFTER (user text):\n{}\n\nCOUNTS: {}", p.user, describe_counts(&p.counts));
    assert!(p.anonymized);
    let all = format!("{}\n{}", p.system, p.user);
    for canary in [
        "Erika",
        "Mustermann",
        "erika.mustermann",
        "praxis-nord",
        "9876543",
        "12.03.1985",
        "1985-03-12",
        "DE89",
        "Sommer2024",
        "4711",
    ] {
        assert!(!all.contains(canary), "{canary} in {all}");
    }
    for structure in [
        "send_reminder",
        "patients",
        "full_name",
        "SMTP_PASSWORD",
        "TEST_PATIENT",
        "\"email\"",
        "patient_id: int",
        "Erinnerung an ihren Termin",
        "src/reminders.py",
    ] {
        assert!(all.contains(structure), "{structure} missing: {all}");
    }
    for detector in ["e-mail", "phone", "date", "IBAN", "secret", "data-file value"] {
        assert!(p.counts.get(detector).copied().unwrap_or(0) >= 1, "{detector}: {:?}", p.counts);
    }
    // The name gets one stand-in in the requirement, the code and the schema.
    let name_line = p.user.lines().find(|l| l.contains("\"name\":")).unwrap();
    let stand_in = name_line.split('"').nth(3).unwrap();
    assert!(p.user.matches(stand_in).count() >= 3, "{stand_in}: {}", p.user);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn tier_1_is_verbatim_and_tier_3_sends_nothing() {
    let root = folder("tiers", &[("db/schema.sql", SAMPLE_SQL)]);
    let p = sample(Tier::Cloud, &root).unwrap();
    assert!(!p.anonymized && p.counts.is_empty());
    assert!(p.user.contains(SAMPLE_REQUIREMENT) && p.user.contains(SAMPLE_SELECTION.trim_end()), "{}", p.user);
    assert!(!p.user.contains("CREATE TABLE"), "Tier 1 sends no schema it was not asked for");
    let e = sample(Tier::Local, &root).unwrap_err();
    assert!(e.contains("Tier 3"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_requested_design_format_is_what_implement_from_design_doc_reads() {
    for tier in [Tier::Cloud, Tier::Hybrid] {
        let s = system_text(tier);
        let example = s
            .split(DESIGN_EXAMPLE_START)
            .nth(1)
            .and_then(|r| r.split(DESIGN_EXAMPLE_END).next())
            .expect("an example in the instructions");
        let plan = design_doc::plan(example, None).expect("the example parses");
        assert_eq!(plan.title, "Design: overdue reminders");
        let paths: Vec<&str> = plan.targets.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(paths, ["src/reminders.rs", "tests/reminders.rs"]);
        assert_eq!(plan.targets[0].code_blocks.len(), 1);
        assert!(s.contains("File: path/to/file.ext"));
    }
    // In Tier 2 the instructions too pass the pass, and come out whole.
    let root = folder("system", &[]);
    let p =
        build(&PayloadInput { tier: Tier::Hybrid, root: &root, requirement: "x", selection: None, open_files: vec![] })
            .unwrap();
    assert_eq!(p.system, system_text(Tier::Hybrid));
}
