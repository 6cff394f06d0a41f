//! Property tests of the tier file parser (the fuzzing of issue 14): whatever a `.lokal.toml` holds, reading
//! it never panics and fails closed: unless the file says `tier = 1`, `2` or `3`, the folder is Tier 3.
use super::*;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..6).prop_map(|n| format!("tier = {n}")),
        Just("tier = \"1\"".to_string()),
        Just("tier = 1.0".to_string()),
        Just("tier = -1".to_string()),
        Just("tier = 99999999999999999999".to_string()),
        "[a-z0-9.:*\\-]{0,12}".prop_map(|h| format!("allowed_hosts = [\"{h}\"]")),
        Just("[[endpoints]]".to_string()),
        "[a-z:/.0-9]{0,20}".prop_map(|u| format!("url = \"{u}\"")),
        Just("name = \"box\"".to_string()),
        Just("[tier]".to_string()),
        "[a-zA-Z_]{1,8}".prop_map(|k| format!("{k} = 1")),
        "\\PC{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    #[test]
    fn any_tag_file_resolves_and_fails_closed(lines in prop::collection::vec(line(), 0..8)) {
        let text = lines.join("\n");
        let d = std::env::temp_dir().join(format!("lokal-tier-prop-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(TAG_FILE), &text).unwrap();
        let p = resolve_folder(&d, &UserTierSettings { default_tier: Some(1), ..Default::default() });
        let declared = toml::from_str::<toml::Table>(&text).ok().and_then(|t| t.get("tier").and_then(toml::Value::as_integer)).filter(|n| (1..=3).contains(n));
        match declared {
            None => prop_assert_eq!(p.tier, Tier::Local, "{:?} gave {:?}", text, p.tier),
            Some(n) => prop_assert!(i64::from(p.tier.number()) >= n, "{:?} gave {:?}", text, p.tier),
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
