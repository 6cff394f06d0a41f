use super::*;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lokal-doctor-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// No cloud model chosen, no variables, the audit log in `dir`.
fn setup(dir: &Path, vars: &[(&str, &str)]) -> Setup {
    let cloud = CloudConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()));
    let cloud_chosen = vars.iter().any(|(k, _)| k.starts_with("LOKAL_CLOUD_"));
    Setup { tiers: UserTierSettings::default(), audit_log: AuditLog::at(dir.join("audit.jsonl")), cloud, cloud_chosen }
}

fn input<'a>(model: PathBuf, hw: &'a Hardware, workspaces: Vec<PathBuf>, setup: Setup) -> DoctorInput<'a> {
    DoctorInput {
        model,
        hardware: hw,
        gpu_offload_supported: false,
        ctx_per_sequence: 2048,
        sequences: 8,
        workspaces,
        setup,
    }
}

fn find<'a>(out: &'a [Finding], check: &str) -> &'a Finding {
    out.iter().find(|f| f.check == check).unwrap_or_else(|| panic!("no {check} finding in {out:?}"))
}

fn tier_of<'a>(out: &'a [Finding], d: &Path) -> &'a Finding {
    find(out, &format!("tier file of {}", d.display()))
}

#[test]
fn missing_model_and_broken_tier_files() {
    let dir = tmp("a");
    let (bad, garbled, none, good) = (dir.join("bad"), dir.join("garbled"), dir.join("none"), dir.join("good"));
    for d in [&bad, &garbled, &none, &good] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(bad.join(".lokal.toml"), "tier = 9\n").unwrap();
    std::fs::write(garbled.join(".lokal.toml"), "tier = = 2\n").unwrap();
    std::fs::write(good.join(".lokal.toml"), "tier = 2\n[[endpoints]]\nurl = \"http://gpu-box.internal:8080\"\n")
        .unwrap();
    let hw = Hardware::cpu_only(2, 24.0, 24.0);
    let ws = vec![bad.clone(), garbled.clone(), none.clone(), good.clone(), dir.join("missing")];
    let out = run(&input("/nonexistent/model.gguf".into(), &hw, ws, setup(&dir, &[])));
    assert_eq!(out[0].check, "model file");
    assert_eq!(out[0].status, Status::Fail);
    assert!(out[0].fix.as_deref().unwrap().contains("fetch-model"));
    assert!(!out.iter().any(|f| f.check == "memory"), "no memory check without a model");
    // Broken files are Tier 3, as the policy decides, with the policy's own message.
    assert_eq!(tier_of(&out, &bad).status, Status::Fail);
    assert!(
        tier_of(&out, &bad).detail.contains("Tier 3")
            && tier_of(&out, &bad).detail.contains("tier must be 1, 2 or 3, not 9"),
        "{:?}",
        tier_of(&out, &bad)
    );
    assert_eq!(tier_of(&out, &garbled).status, Status::Fail);
    assert!(
        tier_of(&out, &garbled).detail.contains("Tier 3") && tier_of(&out, &garbled).detail.contains("does not parse")
    );
    assert_eq!(tier_of(&out, &none).status, Status::Ok);
    assert!(tier_of(&out, &none).detail.contains("Tier 3") && tier_of(&out, &none).detail.contains("default tier"));
    assert_eq!(tier_of(&out, &good).status, Status::Ok);
    assert!(tier_of(&out, &good).detail.starts_with("Tier 2"));
    assert_eq!(tier_of(&out, &dir.join("missing")).status, Status::Fail);
    let text = render(&out);
    assert!(
        text.contains("[FAIL] model file") && text.contains("fix:") && text.contains("some checks failed"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// What the old minimal check approved and the policy does not: a bad `allowed_hosts` entry (dropped, so
/// the host the client named is refused), an unknown key (the whole file is Tier 3).
#[test]
fn the_tier_check_reports_what_the_policy_reports() {
    let dir = tmp("policy");
    let (hosts, unknown, strict) = (dir.join("hosts"), dir.join("unknown"), dir.join("strict"));
    for d in [&hosts, &unknown, &strict] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(hosts.join(".lokal.toml"), "tier = 2\nallowed_hosts = [\"gpu-box.internal\", \"*.corp.example\"]\n")
        .unwrap();
    std::fs::write(unknown.join(".lokal.toml"), "tier = 1\nallowed_host = [\"gpu-box.internal\"]\n").unwrap();
    std::fs::write(strict.join(".lokal.toml"), "tier = 1\n").unwrap();
    let mut s = setup(&dir, &[]);
    s.tiers.overrides.insert(strict.display().to_string(), 3);
    let hw = Hardware::cpu_only(2, 24.0, 24.0);
    let out = run(&input(
        "/nonexistent/model.gguf".into(),
        &hw,
        vec![hosts.clone(), unknown.clone(), strict.clone()],
        s.clone(),
    ));
    let h = tier_of(&out, &hosts);
    assert_eq!(h.status, Status::Fail, "{h:?}");
    assert!(h.detail.starts_with("Tier 2"), "the tier stands: {}", h.detail);
    assert!(
        h.detail.contains("allowed_hosts") && h.detail.contains("*.corp.example") && h.detail.contains(":2:"),
        "{}",
        h.detail
    );
    let u = tier_of(&out, &unknown);
    assert_eq!(u.status, Status::Fail);
    assert!(u.detail.starts_with("Tier 3") && u.detail.contains("allowed_host"), "{}", u.detail);
    // User settings apply as in the server: the override makes the Tier-1 folder Tier 3.
    let st = tier_of(&out, &strict);
    assert_eq!(st.status, Status::Ok);
    assert!(st.detail.starts_with("Tier 3") && st.detail.contains("your lokal settings"), "{}", st.detail);
    // Each agrees with the policy itself.
    for d in [&hosts, &unknown, &strict] {
        let want = resolve_folder(d, &s.tiers).tier.describe();
        assert!(tier_of(&out, d).detail.starts_with(want));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unwritable_audit_log_fails() {
    let dir = tmp("audit");
    let hw = Hardware::cpu_only(2, 24.0, 24.0);
    let mut s = setup(&dir, &[]);
    s.audit_log = AuditLog::at("/proc/nope/x".into());
    let out = run(&input("/nonexistent/model.gguf".into(), &hw, vec![], s));
    let a = find(&out, "audit log");
    assert_eq!(a.status, Status::Fail, "{a:?}");
    assert!(a.detail.contains("/proc/nope/x") && a.detail.contains("refused"), "{}", a.detail);
    assert!(a.fix.as_deref().unwrap().contains("LOKAL_AUDIT_LOG"));

    // A new log in a folder that does not exist yet is fine: the first request creates both, owner-only.
    let fresh = dir.join("new/dir/audit.jsonl");
    assert_eq!(audit_log(&AuditLog::at(fresh.clone())).status, Status::Ok);
    assert!(fresh.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = audit_log(&AuditLog::at(fresh.clone()));
        assert_eq!(open.status, Status::Warn, "{open:?}");
        assert!(open.detail.contains("644"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cloud_settings_are_checked_where_a_cloud_model_can_be_used() {
    let dir = tmp("cloud");
    let cloudy = dir.join("cloudy");
    std::fs::create_dir_all(&cloudy).unwrap();
    std::fs::write(cloudy.join(".lokal.toml"), "tier = 1\n").unwrap();
    let hw = Hardware::cpu_only(2, 24.0, 24.0);
    let check = |ws: Vec<PathBuf>, vars: &[(&str, &str)]| -> Finding {
        find(&run(&input("/nonexistent/model.gguf".into(), &hw, ws, setup(&dir, vars))), "cloud model").clone()
    };

    // Nothing chosen, no folder allows the cloud: nothing to check.
    assert_eq!(check(vec![], &[]).status, Status::Ok);
    // A Tier-1 folder offers cloud design; without a key it would be refused.
    let f = check(vec![cloudy.clone()], &[]);
    assert_eq!(f.status, Status::Warn, "{f:?}");
    assert!(f.detail.contains("ANTHROPIC_API_KEY") && f.detail.contains(&cloudy.display().to_string()), "{}", f.detail);
    // A model the user chose must work.
    let f = check(vec![], &[("LOKAL_CLOUD_MODEL", "claude-x")]);
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(f.detail.contains("ANTHROPIC_API_KEY is not set"));
    let f = check(vec![], &[("LOKAL_CLOUD_PROVIDER", "openai"), ("OPENAI_API_KEY", "sk-secret")]);
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(f.detail.contains("LOKAL_CLOUD_BASE_URL"));
    let f = check(vec![], &[("LOKAL_CLOUD_PROVIDER", "openai"), ("LOKAL_CLOUD_BASE_URL", "https://llm.corp/v1")]);
    assert_eq!(f.status, Status::Fail);
    assert!(f.detail.contains("OPENAI_API_KEY"), "{}", f.detail);
    let f = check(
        vec![cloudy.clone()],
        &[
            ("LOKAL_CLOUD_PROVIDER", "openai"),
            ("LOKAL_CLOUD_BASE_URL", "https://llm.corp/v1"),
            ("OPENAI_API_KEY", "sk-secret"),
        ],
    );
    assert_eq!(f.status, Status::Ok, "{f:?}");
    assert!(
        f.detail.contains("https://llm.corp/v1/chat/completions") && !f.detail.contains("sk-secret"),
        "the key is never shown: {}",
        f.detail
    );
    let f = check(vec![], &[("LOKAL_CLOUD_BASE_URL", "http://llm.corp"), ("ANTHROPIC_API_KEY", "k")]);
    assert_eq!(f.status, Status::Warn, "{f:?}");
    assert!(f.detail.contains("not https"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_model_file_and_a_gpu_without_offload() {
    let dir = tmp("b");
    let m = dir.join("broken.gguf");
    std::fs::write(&m, b"GGUF\x03\x00\x00\x00").unwrap();
    let hw = Hardware::cpu_only(16, 64.0, 80.0).with_gpu("NVIDIA GeForce RTX 4090", 24.0);
    let out = run(&input(m, &hw, vec![], setup(&dir, &[])));
    assert_eq!(out[0].status, Status::Fail);
    assert!(out[0].detail.contains("ends early"), "{}", out[0].detail);
    let gpu = find(&out, "GPU");
    assert_eq!(gpu.status, Status::Warn);
    assert!(gpu.fix.as_deref().unwrap().contains("--features lokal-engine/cuda"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_embedded_model_on_a_small_box() {
    let p = crate::config::default_model_dir().join(crate::config::DEFAULT_MODEL_FILE);
    if !p.exists() {
        eprintln!("SKIPPED doctor real-model test: no model at {}", p.display());
        return;
    }
    let dir = tmp("c");
    let hw = Hardware::cpu_only(2, 24.0, 24.0);
    let out = run(&input(p, &hw, vec![], setup(&dir, &[])));
    print!("{}", render(&out));
    assert!(out.iter().all(|f| f.status == Status::Ok || f.check == "model choice"), "{out:?}");
    let hint = find(&out, "model choice");
    assert!(hint.fix.as_deref().unwrap().contains("lokal models pull "), "{hint:?}");
    let mem = find(&out, "memory");
    assert!(mem.detail.contains("great fit") && mem.detail.contains("in RAM"), "{}", mem.detail);
    let _ = std::fs::remove_dir_all(dir);
}
