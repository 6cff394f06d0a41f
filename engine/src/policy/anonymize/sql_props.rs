//! Property tests (the fuzzing of issue 14, run by `cargo test` and, longer, by scripts/fuzz.sh): the SQL
//! tokenizer never panics, and text inside comments and string literals never comes out as a name (names
//! are the only text that leaves a Tier-2 machine as it is).
use super::*;
use proptest::prelude::*;

const SECRET: &str = "Mustermann";

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "CREATE", "TABLE", "INSERT", "INTO", "VALUES", "ALTER", "ADD", "COLUMN", "(", ")", ",", ";", "::", "int",
            "text", "t", "a.b", "`q`", "\"Q\"", "1.5", "-3", "$1", "\n", " "
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
        "[^'\\\\]{0,12}".prop_map(|s| format!("'{}{SECRET}'", s.replace('\'', "''"))),
        "[^\n]{0,12}".prop_map(|s| format!("-- {s}{SECRET}\n")),
        "[^*]{0,12}".prop_map(|s| format!("/* {s} {SECRET} */")),
        "[^$]{0,12}".prop_map(|s| format!("$${s}{SECRET}$$")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256), ..ProptestConfig::default() })]

    #[test]
    fn any_text_tokenizes_without_panicking(s in "\\PC{0,200}") {
        let _ = tokenize(&s);
        let mut a = Anonymizer::new();
        a.sql_structure("fuzz.sql", &s);
        a.sql_data("fuzz.sql", &s);
    }

    #[test]
    fn comments_and_literals_never_become_names(parts in prop::collection::vec(fragment(), 0..40)) {
        let sql = parts.join(" ");
        // Backslash escapes (MySQL) change where a literal ends; the generator writes none.
        for t in tokenize(&sql) {
            if let Tok::Word(w) | Tok::Ident(w) = &t {
                prop_assert!(!w.contains(SECRET), "{t:?} from {sql:?}");
            }
        }
        let mut a = Anonymizer::new();
        a.sql_structure("fuzz.sql", &sql);
        a.sql_data("fuzz.sql", &sql);
    }
}
