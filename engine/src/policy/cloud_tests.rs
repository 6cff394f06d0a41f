use super::super::audit::tests::temp_log;
use super::super::testing::{FakeServer, Reply};
use super::super::tier::{Tier, TierSource};
use super::*;
use std::path::PathBuf;

fn folder(tier: Tier) -> FolderPolicy {
    FolderPolicy {
        root: PathBuf::from("/work/acme"),
        tier,
        source: TierSource::File,
        endpoints: vec![],
        local_hosts: vec![],
        diagnostics: vec![],
    }
}

fn anthropic(base: &str) -> CloudConfig {
    CloudConfig {
        provider: CloudProvider::Anthropic,
        base_url: base.into(),
        model: "claude-test".into(),
        api_key: Some("sk-test-key".into()),
        key_problem: None,
    }
}

fn openai(base: &str, key: Option<&str>) -> CloudConfig {
    CloudConfig {
        provider: CloudProvider::OpenAiCompatible,
        base_url: base.into(),
        model: "m".into(),
        api_key: key.map(str::to_string),
        key_problem: None,
    }
}

fn rq() -> CloudRequest {
    CloudRequest {
        system: Some("be brief".into()),
        user: "design a table".into(),
        max_tokens: 100,
        counts: Default::default(),
    }
}

const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Use a join table."}],"stop_reason":"end_turn"}"#;

#[test]
fn configuration_and_bodies() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let c = CloudConfig::from_vars(vars(&[("ANTHROPIC_API_KEY", "k1")]));
    assert_eq!(
        (c.provider, c.endpoint().as_str(), c.api_key.as_deref()),
        (CloudProvider::Anthropic, "https://api.anthropic.com/v1/messages", Some("k1"))
    );
    let c =
        CloudConfig::from_vars(vars(&[("LOKAL_CLOUD_BASE_URL", "http://127.0.0.1:9/"), ("LOKAL_CLOUD_MODEL", "x")]));
    assert_eq!((c.endpoint().as_str(), c.model.as_str(), c.api_key), ("http://127.0.0.1:9/v1/messages", "x", None));
    let c = CloudConfig::from_vars(vars(&[
        ("LOKAL_CLOUD_PROVIDER", "openai"),
        ("LOKAL_CLOUD_BASE_URL", "https://llm.corp/v1"),
        ("OPENAI_API_KEY", "k2"),
    ]));
    assert_eq!(
        (c.provider, c.endpoint().as_str()),
        (CloudProvider::OpenAiCompatible, "https://llm.corp/v1/chat/completions")
    );
    assert!(!format!("{c:?}").contains("k2"), "the key stays out of debug output");

    let b = request_body(CloudProvider::Anthropic, "m", &rq(), false);
    assert_eq!(
        b,
        json!({"model": "m", "max_tokens": 100, "system": "be brief", "messages": [{"role": "user", "content": "design a table"}]})
    );
    let b = request_body(CloudProvider::Anthropic, "m", &CloudRequest::new("q"), true);
    assert!(b.get("system").is_none() && b["stream"] == true);
    let b = request_body(CloudProvider::OpenAiCompatible, "m", &rq(), false);
    assert_eq!(b["messages"][0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(b["messages"][1]["role"], "user");
}

#[tokio::test]
async fn anthropic_request_shape_on_tier_1() {
    let server = FakeServer::start(vec![Reply::json(200, ANTHROPIC_ANSWER)]);
    let log = temp_log("cloud-anthropic");
    let client = CloudClient::new(anthropic(&server.url("")), Egress::new(log.clone()));
    let text =
        client.complete(Some(&folder(Tier::Cloud)), "cloud design", false, &rq(), &CancelToken::new()).await.unwrap();
    assert_eq!(text, "Use a join table.");
    let r = server.request(0);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some("sk-test-key"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.json(), request_body(CloudProvider::Anthropic, "claude-test", &rq(), false));
    let recs = log.read();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].outcome.as_str(), recs[0].bytes), ("ok", r.body.len()));
}

#[tokio::test]
async fn tiers_decide_before_any_connection() {
    let server = FakeServer::start(vec![Reply::json(200, ANTHROPIC_ANSWER)]);
    let log = temp_log("cloud-tiers");
    let client = CloudClient::new(anthropic(&server.url("")), Egress::new(log.clone()));
    let e = client
        .complete(Some(&folder(Tier::Local)), "cloud design", true, &rq(), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, CloudError::Denied(_))
            && e.to_string().contains("Tier 3")
            && e.to_string().contains("/work/acme/.lokal.toml"),
        "{e}"
    );
    let e = client.complete(None, "cloud design", true, &rq(), &CancelToken::new()).await.unwrap_err();
    assert!(matches!(e, CloudError::Denied(_)), "{e}");
    assert!(log.read().is_empty(), "Tier-3 refusals leave the log empty");
    let e = client
        .complete(Some(&folder(Tier::Hybrid)), "cloud design", false, &rq(), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, CloudError::Denied(_)), "{e}");
    assert_eq!(server.accepted(), 0);
    assert_eq!(
        client.complete(Some(&folder(Tier::Hybrid)), "cloud design", true, &rq(), &CancelToken::new()).await.unwrap(),
        "Use a join table."
    );
    assert_eq!(server.accepted(), 1);
    let recs = log.read();
    assert_eq!(
        recs.iter().map(|r| (r.outcome.split(':').next().unwrap().to_string(), r.anonymized)).collect::<Vec<_>>(),
        vec![("denied".into(), false), ("ok".into(), true)]
    );
}

#[tokio::test]
async fn a_missing_key_sends_nothing() {
    let server = FakeServer::start(vec![]);
    let log = temp_log("cloud-nokey");
    let mut cfg = anthropic(&server.url(""));
    cfg.api_key = None;
    let e = CloudClient::new(cfg, Egress::new(log.clone()))
        .complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");
    assert_eq!(server.accepted(), 0);
    assert!(log.read().is_empty());
    let e = CloudClient::new(openai("", None), Egress::new(log.clone()))
        .complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, CloudError::Config(_)), "{e}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_file_is_used_only_when_its_owner_alone_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("lokal-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("anthropic.key");
    std::fs::write(&file, "  sk-file-key\n").unwrap();
    let path = file.display().to_string();
    let cfg = |extra: Option<(&str, &str)>| {
        let path = path.clone();
        let extra = extra.map(|(k, v)| (k.to_string(), v.to_string()));
        CloudConfig::from_vars(move |k| match k {
            "LOKAL_CLOUD_API_KEY_FILE" => Some(path.clone()),
            _ => extra.as_ref().filter(|(n, _)| n == k).map(|(_, v)| v.clone()),
        })
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = cfg(None);
    assert_eq!((c.api_key.as_deref(), c.key_problem.as_deref()), (Some("sk-file-key"), None));
    assert!(!format!("{c:?}").contains("sk-file-key"));
    assert_eq!(
        cfg(Some(("ANTHROPIC_API_KEY", "env-key"))).api_key.as_deref(),
        Some("env-key"),
        "the variable wins over the file"
    );
    let o = cfg(Some(("LOKAL_CLOUD_PROVIDER", "openai")));
    assert_eq!(o.api_key.as_deref(), Some("sk-file-key"), "OpenAI-compatible providers read it too");

    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let c = cfg(Some(("ANTHROPIC_API_KEY", "env-key")));
        let problem = c.key_problem.clone().unwrap_or_default();
        assert!(
            problem.contains("readable by others")
                && problem.contains(&format!("{mode:03o}"))
                && problem.contains("chmod 600"),
            "{mode:o}: {problem}"
        );
        assert_eq!(cfg(None).api_key, None, "an exposed key is not used");
        // Refused before any connection, and nothing in the audit log.
        let server = FakeServer::start(vec![Reply::json(200, ANTHROPIC_ANSWER)]);
        let log = temp_log("cloud-keyfile");
        let c = CloudConfig { base_url: server.url(""), ..c };
        let e = CloudClient::new(c, Egress::new(log.clone()))
            .complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, CloudError::Config(_)) && e.to_string().contains("chmod 600"), "{e}");
        assert_eq!(server.accepted(), 0);
        assert!(log.read().is_empty());
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, "two words\n").unwrap();
    assert!(cfg(None).key_problem.unwrap().contains("the key alone"));
    std::fs::remove_file(&file).unwrap();
    assert!(cfg(None).key_problem.unwrap().contains("cannot be read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn openai_compatible_request_shape() {
    let server = FakeServer::start(vec![
        Reply::json(200, r#"{"choices":[{"message":{"role":"assistant","content":"Add an index."}}]}"#),
        Reply::json(200, r#"{"choices":[{"message":{"content":"x"}}]}"#),
    ]);
    let client = CloudClient::new(openai(&server.url("/v1"), Some("tok")), Egress::new(temp_log("cloud-openai")));
    assert_eq!(
        client.complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new()).await.unwrap(),
        "Add an index."
    );
    let r = server.request(0);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer tok"));
    let keyless = CloudClient::new(openai(&server.url(""), None), Egress::new(temp_log("cloud-openai2")));
    keyless.complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new()).await.unwrap();
    assert_eq!(server.request(1).header("authorization"), None);
}

#[tokio::test]
async fn failures_are_not_retried() {
    let server = FakeServer::start(vec![
        Reply::json(500, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        Reply::json(200, ANTHROPIC_ANSWER),
    ]);
    let log = temp_log("cloud-fail");
    let client = CloudClient::new(anthropic(&server.url("")), Egress::new(log.clone()));
    let e = client.complete(Some(&folder(Tier::Cloud)), "d", false, &rq(), &CancelToken::new()).await.unwrap_err();
    assert!(e.to_string().contains("500") && e.to_string().contains("Overloaded"), "{e}");
    assert_eq!(server.accepted(), 1, "one attempt, no retry");
    assert_eq!(log.read().len(), 1);
    // The compatibility wrapper reports the same way.
    let e = ask(Some(&folder(Tier::Local)), &anthropic(&server.url("")), "d", true, &rq(), &CancelToken::new(), &log)
        .await
        .unwrap_err();
    assert!(e.contains("Tier 3"), "{e}");
}

#[tokio::test]
async fn streaming_anthropic_and_openai() {
    let anth = [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}",
        "event: ping\ndata: {\"type\":\"ping\"}",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}",
    ];
    let oai = [
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
        "data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}",
        "data: [DONE]",
    ];
    let err = [
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
    ];
    let server = FakeServer::start(vec![Reply::sse(&anth, 5), Reply::sse(&oai, 5), Reply::sse(&err, 5)]);
    let log = temp_log("cloud-stream");
    let f = folder(Tier::Cloud);
    let client = CloudClient::new(anthropic(&server.url("")), Egress::new(log.clone()));
    let mut pieces = Vec::new();
    let text =
        client.stream(Some(&f), "d", false, &rq(), &CancelToken::new(), |t| pieces.push(t.to_string())).await.unwrap();
    assert_eq!((text.as_str(), pieces), ("Hello", vec!["Hel".to_string(), "lo".to_string()]));
    assert_eq!(server.request(0).json()["stream"], true);
    let client2 = CloudClient::new(openai(&server.url(""), Some("k")), Egress::new(log.clone()));
    assert_eq!(client2.stream(Some(&f), "d", false, &rq(), &CancelToken::new(), |_| {}).await.unwrap(), "Hi there");
    let e = client.stream(Some(&f), "d", false, &rq(), &CancelToken::new(), |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("Overloaded"), "{e}");
    assert_eq!(log.read().len(), 3);
}

#[tokio::test]
async fn cancelling_a_stream_stops_between_chunks() {
    let events: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "data: {{\"type\":\"content_block_delta\",\"delta\":{{\"type\":\"text_delta\",\"text\":\"t{i} \"}}}}"
            )
        })
        .collect();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let server = FakeServer::start(vec![Reply::sse(&refs, 30)]);
    let log = temp_log("cloud-stream-cancel");
    let client = CloudClient::new(anthropic(&server.url("")), Egress::new(log.clone()));
    let cancel = CancelToken::new();
    let mut seen = 0;
    let e = client
        .stream(Some(&folder(Tier::Cloud)), "d", false, &rq(), &cancel, |_| {
            seen += 1;
            if seen == 3 {
                cancel.cancel();
            }
        })
        .await
        .unwrap_err();
    assert!(matches!(e, CloudError::Egress(EgressError::Cancelled)), "{e}");
    // Events that arrive in one chunk are handled together; the flag stops the stream at the next one.
    assert!((3..20).contains(&seen), "{seen}");
    assert_eq!(log.read()[0].outcome, "error: lokal: cancelled");
}

#[test]
fn sse_parser_handles_split_chunks() {
    let mut p = SseParser::default();
    let all = "event: a\ndata: {\"x\":\"é\"}\n\ndata: one\ndata: two\r\n\r\n: comment\n\n";
    let bytes = all.as_bytes();
    let mut events = Vec::new();
    for piece in bytes.chunks(3) {
        events.extend(p.push(piece));
    }
    assert_eq!(
        events,
        vec![
            SseEvent { event: Some("a".into()), data: "{\"x\":\"é\"}".into() },
            SseEvent { event: None, data: "one\ntwo".into() }
        ]
    );
}
