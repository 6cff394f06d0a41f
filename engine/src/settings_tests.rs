use super::*;
use serde_json::json;

fn problem<'a>(s: &'a Settings, key: &str) -> &'a Problem {
    s.problems.iter().find(|p| p.key == key).unwrap_or_else(|| panic!("no problem for {key}: {:?}", s.problems))
}

#[test]
fn a_bad_value_keeps_its_default_and_every_other_setting_applies() {
    let s = parse(
        &json!({"maxTokens": "lots", "modelPath": "/models/coder.gguf", "maxLines": 3, "sequences": 4}),
        &EngineConfig::default(),
    );
    assert_eq!(s.engine.max_tokens, EngineConfig::default().max_tokens);
    assert_eq!(s.engine.model_path, Some(PathBuf::from("/models/coder.gguf")));
    assert_eq!((s.engine.max_lines, s.engine.sequences), (3, 4));
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    let p = problem(&s, "maxTokens");
    assert_eq!(p.value, "\"lots\"");
    assert!(
        p.message.contains("maxTokens")
            && p.message.contains("\"lots\"")
            && p.message.contains("whole number")
            && p.message.contains("using 64"),
        "{}",
        p.message
    );
    assert!(s.given);
}

#[test]
fn out_of_range_fractional_and_wrongly_typed_values_are_each_reported() {
    let s = parse(
        &json!({"sequences": 0, "maxLines": 2.5, "cacheEnabled": "yes", "threads": -1, "prefixTokens": 512, "hostCacheMb": 8.0}),
        &EngineConfig::default(),
    );
    let d = EngineConfig::default();
    assert_eq!(
        (s.engine.sequences, s.engine.max_lines, s.engine.cache_enabled, s.engine.threads),
        (d.sequences, d.max_lines, d.cache_enabled, None)
    );
    assert_eq!((s.engine.prefix_tokens, s.engine.host_cache_mb), (512, 8), "the good ones apply, 8.0 is eight");
    for k in ["sequences", "maxLines", "cacheEnabled", "threads"] {
        problem(&s, k);
    }
    assert!(problem(&s, "sequences").message.contains("from 1 to 64"));
    assert!(problem(&s, "threads").message.contains("every core"), "{}", problem(&s, "threads").message);
    assert_eq!(s.problems.len(), 4);
}

#[test]
fn a_bad_value_keeps_the_value_in_force_not_the_default() {
    let base = EngineConfig { max_tokens: 16, ..Default::default() };
    let s = parse(&json!({"maxTokens": {}}), &base);
    assert_eq!(s.engine.max_tokens, 16);
    assert!(problem(&s, "maxTokens").message.contains("using 16"));
}

#[test]
fn unknown_keys_are_reported_with_the_nearest_known_name() {
    let s = parse(
        &json!({"modelpath": "/m.gguf", "maxTokes": 8, "zzzzqqqq": 1, "path": "/usr/bin/lokal", "trace": {"server": "off"}}),
        &EngineConfig::default(),
    );
    assert_eq!(s.engine.model_path, None, "a mistyped key sets nothing");
    assert!(problem(&s, "modelpath").message.contains("did you mean \"modelPath\""), "{:?}", s.problems);
    assert!(problem(&s, "maxTokes").message.contains("did you mean \"maxTokens\""));
    let far = problem(&s, "zzzzqqqq");
    assert!(!far.message.contains("did you mean") && far.message.contains("minimumTier"), "{}", far.message);
    assert_eq!(s.problems.len(), 3, "the editor's own keys (path, trace) are not problems: {:?}", s.problems);
}

#[test]
fn a_minimum_tier_given_as_text_fails_closed_and_says_so() {
    let s = parse(&json!({"minimumTier": "2", "defaultTier": 1, "maxTokens": 12}), &EngineConfig::default());
    assert_eq!(s.tiers.minimum_tier, Some(3), "refused: every folder Tier 3");
    assert_eq!(s.tiers.default_tier, Some(1), "the other tier setting still applies");
    assert_eq!(s.engine.max_tokens, 12);
    let p = problem(&s, "minimumTier");
    assert!(p.message.contains("not text") && p.message.contains("Tier 3"), "{}", p.message);
    let ok = parse(&json!({"minimumTier": 2}), &EngineConfig::default());
    assert_eq!((ok.tiers.minimum_tier, ok.problems.len()), (Some(2), 0));
    let out = parse(&json!({"minimumTier": 7, "defaultTier": "1"}), &EngineConfig::default());
    assert_eq!(
        (out.tiers.minimum_tier, out.tiers.default_tier),
        (Some(3), None),
        "out of range: Tier 3; a bad default: unset (Tier 3)"
    );
    assert_eq!(out.problems.len(), 2);
}

#[test]
fn overrides_and_remote_are_checked_entry_by_entry() {
    let s = parse(
        &json!({"overrides": {"/a": 2, "/b": "x"}, "remote": {"url": "http://gpu:8080"}}),
        &EngineConfig::default(),
    );
    assert_eq!(s.tiers.overrides.get("/a"), Some(&2));
    assert_eq!(s.tiers.overrides.get("/b"), Some(&3), "an unreadable override fails closed");
    assert_eq!(s.remote, None, "a remote without kind is refused: the local model serves");
    problem(&s, "overrides[\"/b\"]");
    assert!(problem(&s, "remote").message.contains("local model serves"));
    let all = parse(&json!({"overrides": [1]}), &EngineConfig::default());
    assert_eq!(all.tiers.minimum_tier, Some(3));
}

#[test]
fn settings_under_lokal_and_at_the_top_level_read_the_same() {
    let nested = parse(&json!({"lokal": {"maxTokens": 9, "bogus": 1}}), &EngineConfig::default());
    let top = parse(&json!({"maxTokens": 9, "bogus": 1}), &EngineConfig::default());
    assert_eq!(nested, top);
    assert_eq!(nested.engine.max_tokens, 9);
    assert_eq!(nested.problems.len(), 1);
    let none = parse(&Value::Null, &EngineConfig::default());
    assert!(!none.given && none.problems.is_empty());
    let not_object = parse(&json!({"lokal": "fast"}), &EngineConfig::default());
    assert_eq!((not_object.tiers.minimum_tier, not_object.problems.len()), (Some(3), 1));
}

#[test]
fn an_empty_model_path_means_the_default_and_null_keeps_the_value() {
    let base = EngineConfig { model_path: Some("/x.gguf".into()), max_tokens: 5, ..Default::default() };
    let s = parse(&json!({"modelPath": "", "maxTokens": null}), &base);
    assert_eq!((s.engine.model_path, s.engine.max_tokens), (None, 5));
    assert!(s.problems.is_empty());
}

#[test]
fn window_sizes_that_do_not_fit_together_keep_their_values_and_name_the_keys() {
    let s = parse(&json!({"ctxPerSequence": 256, "prefixTokens": 1024, "maxLines": 2}), &EngineConfig::default());
    let d = EngineConfig::default();
    assert_eq!((s.engine.ctx_per_sequence, s.engine.prefix_tokens), (d.ctx_per_sequence, d.prefix_tokens));
    assert_eq!(s.engine.max_lines, 2);
    assert!(s.engine.validate().is_ok());
    let p = &s.problems[0];
    assert!(p.key.contains("ctxPerSequence") && p.key.contains("prefixTokens"), "{p:?}");
}

#[test]
fn every_engine_setting_is_a_known_key() {
    let Value::Object(all) = serde_json::to_value(EngineConfig {
        threads: Some(2),
        gpu_layers: Some(1),
        model_path: Some("/m".into()),
        ..Default::default()
    })
    .unwrap() else {
        panic!()
    };
    let s = parse(&Value::Object(all), &EngineConfig::default());
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!((s.engine.threads, s.engine.gpu_layers), (Some(2), Some(1)));
}

#[test]
fn fim_layout_takes_its_two_names_and_a_bad_one_keeps_the_current() {
    use crate::fim::FimLayout;
    let s = parse(&json!({"fimLayout": "infill"}), &EngineConfig::default());
    assert_eq!((s.engine.fim_layout, s.problems.len()), (FimLayout::Infill, 0));
    let s2 = parse(&json!({"fimLayout": "spliced", "maxLines": 2}), &s.engine);
    assert_eq!((s2.engine.fim_layout, s2.engine.max_lines), (FimLayout::Infill, 2));
    assert!(problem(&s2, "fimLayout").message.contains("\"native\" or \"infill\"; using \"infill\""));
    assert_eq!(parse(&json!({"fimLayout": "native"}), &s.engine).engine.fim_layout, FimLayout::Native);
}

#[test]
fn speculative_and_draft_max_are_read_key_by_key() {
    use crate::speculate::Speculative;
    let d = EngineConfig::default();
    assert_eq!((d.speculative, d.draft_max), (Speculative::Off, 8));
    let s = parse(&json!({"speculative": "auto", "draftMax": 4}), &d);
    assert_eq!((s.engine.speculative, s.engine.draft_max, s.problems.len()), (Speculative::Auto, 4, 0));
    let s2 = parse(&json!({"speculative": "medusa", "draftMax": 0, "maxLines": 3}), &s.engine);
    assert_eq!((s2.engine.speculative, s2.engine.draft_max, s2.engine.max_lines), (Speculative::Auto, 4, 3));
    assert!(problem(&s2, "speculative").message.contains("\"off\", \"auto\" or \"lookup\"; using \"auto\""));
    assert!(problem(&s2, "draftMax").message.contains("from 1 to 64"), "{:?}", s2.problems);
    assert_eq!(s2.problems.len(), 2);
    assert_eq!(parse(&json!({"speculative": "lookup"}), &s.engine).engine.speculative, Speculative::Lookup);
}

#[test]
fn cloud_confirm_is_read_and_a_bad_value_keeps_asking() {
    let base = EngineConfig::default();
    assert_eq!(parse(&json!({}), &base).cloud_confirm, None);
    assert_eq!(parse(&json!({"cloudConfirm": false}), &base).cloud_confirm, Some(false));
    assert_eq!(parse(&json!({"lokal": {"cloudConfirm": true}}), &base).cloud_confirm, Some(true));
    let s = parse(&json!({"cloudConfirm": "no"}), &base);
    assert_eq!(s.cloud_confirm, None, "text is not a switch: lokal keeps asking");
    assert!(problem(&s, "cloudConfirm").message.contains("asks before every cloud request"));
    let s = parse(&json!({"cloudConfirn": false}), &base);
    assert_eq!(s.cloud_confirm, None);
    assert!(problem(&s, "cloudConfirn").message.contains("cloudConfirm"), "the typo names the key it meant");
}

#[test]
fn action_settings_are_checked_key_by_key() {
    let s = parse(
        &json!({"actionCandidates": 5, "actionTemperature": 0.3, "actionBudgetSeconds": 20, "actionMaxTokens": 96}),
        &EngineConfig::default(),
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.actions.candidates, 5);
    assert!((s.actions.temperature - 0.3).abs() < 1e-6);
    assert_eq!(s.actions.budget, std::time::Duration::from_secs(20));
    assert_eq!(s.actions.max_tokens, 96);
    let d = crate::actions::ActionSettings::default();
    let s = parse(
        &json!({"actionCandidates": 0, "actionTemperature": "hot", "actionBudgetSeconds": 2.5, "actionMaxTokens": 4, "maxLines": 3}),
        &EngineConfig::default(),
    );
    assert_eq!(s.actions, d, "each bad value keeps its default");
    assert_eq!(s.engine.max_lines, 3);
    assert!(problem(&s, "actionCandidates").message.contains("from 1 to 16"));
    assert!(problem(&s, "actionTemperature").message.contains("from 0 to 2"));
    assert!(problem(&s, "actionBudgetSeconds").message.contains("from 1 to 600"));
    let s = parse(&json!({"actionCandidate": 2}), &EngineConfig::default());
    assert!(problem(&s, "actionCandidate").message.contains("actionCandidates"), "{:?}", s.problems);
}

#[test]
fn prefetch_is_on_by_default_and_a_flag() {
    assert!(EngineConfig::default().prefetch);
    let s = parse(&json!({"prefetch": false}), &EngineConfig::default());
    assert!(!s.engine.prefetch);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let s = parse(&json!({"prefetch": "no"}), &EngineConfig { prefetch: false, ..Default::default() });
    assert!(!s.engine.prefetch, "a bad value keeps the value in force");
    problem(&s, "prefetch");
}

#[test]
fn context_hold_ms_is_read_and_checked() {
    let d = EngineConfig::default();
    assert_eq!(d.context_hold_ms, 1000);
    let s = parse(&json!({"contextHoldMs": 0}), &d);
    assert_eq!((s.engine.context_hold_ms, s.problems.len()), (0, 0));
    let s2 = parse(&json!({"contextHoldMs": 600_000, "maxLines": 3}), &s.engine);
    assert_eq!((s2.engine.context_hold_ms, s2.engine.max_lines), (0, 3));
    assert!(problem(&s2, "contextHoldMs").message.contains("from 0 to 60000"), "{:?}", s2.problems);
}
