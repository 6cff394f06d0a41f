use super::super::audit::tests::temp_log;
use super::super::testing::{FakeServer, Reply};
use super::super::tier::{Endpoint, HostPattern, TierSource};
use super::*;
use serde_json::json;
use std::path::PathBuf;

fn folder(tier: Tier, listed: &[&str]) -> FolderPolicy {
    FolderPolicy {
        root: PathBuf::from("/work/client"),
        tier,
        source: TierSource::File,
        endpoints: listed.iter().map(|u| Endpoint { name: None, url: u.to_string() }).collect(),
        local_hosts: listed.iter().map(|u| HostPattern::parse(u).unwrap()).collect(),
        diagnostics: vec![],
    }
}

const CLOUD: &str = "https://api.example.com/v1/messages";

#[test]
fn decisions_per_tier() {
    let d = Destination::cloud(CLOUD).unwrap();
    let egress = Egress::new(temp_log("decisions"));
    let ok = |t: Tier, anon: bool| egress.check(Some(&folder(t, &[])), &d, "design", anon);
    assert_eq!(ok(Tier::Cloud, false).unwrap().reach(), Reach::Cloud);
    assert!(ok(Tier::Hybrid, false).is_err());
    let p = ok(Tier::Hybrid, true).unwrap();
    assert!(p.anonymized() && p.tier() == Tier::Hybrid);
    let e = ok(Tier::Local, true).unwrap_err();
    assert!(e.message.contains("Tier 3") && e.message.contains("/work/client/.lokal.toml"), "{e}");
    assert_eq!(e.tier, Some(Tier::Local));
    let e = egress.check(None, &d, "design", true).unwrap_err();
    assert!(e.message.contains("Tier 3") && e.message.contains("outside every workspace folder"), "{e}");
    // The free function agrees.
    assert!(check(Some(&folder(Tier::Cloud, &[])), CLOUD, "design", false).is_ok());
    assert!(check(Some(&folder(Tier::Local, &[])), CLOUD, "design", false).is_err());
}

#[test]
fn loopback_is_local_only_in_tier_1_unless_listed() {
    for url in [
        "http://127.0.0.1:8080/infill",
        "http://localhost:8080",
        "http://[::1]:9000/",
        "http://127.9.9.9/",
        "http://[::ffff:127.0.0.1]:1/",
    ] {
        let p =
            check(Some(&folder(Tier::Cloud, &[])), url, "completion", false).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(p.reach(), Reach::Loopback, "{url}");
        assert!(p.is_local());
        // Tiers 2 and 3: a loopback port may be a tunnel or proxy elsewhere; unlisted, it is refused.
        for tier in [Tier::Hybrid, Tier::Local] {
            let e = check(Some(&folder(tier, &[])), url, "completion", false).unwrap_err();
            assert_eq!(e.tier, Some(tier), "{url}");
        }
    }
    let e = check(Some(&folder(Tier::Local, &[])), "http://127.0.0.1:8080/infill", "remote engine", false).unwrap_err();
    assert!(e.message.contains("tunnel or proxy"), "{e}");
    assert!(check(None, "http://localhost:8080", "completion", false).is_err(), "outside every folder is Tier 3");
    // Listed, loopback is an on-premises engine in every tier, on that port only.
    for tier in [Tier::Cloud, Tier::Hybrid, Tier::Local] {
        let f = folder(tier, &["http://127.0.0.1:8080"]);
        assert_eq!(
            check(Some(&f), "http://127.0.0.1:8080/infill", "completion", false).unwrap().reach(),
            Reach::OnPrem
        );
        if tier != Tier::Cloud {
            assert!(
                check(Some(&f), "http://127.0.0.1:8081/infill", "completion", false).is_err(),
                "another loopback port is another endpoint"
            );
        }
    }
    let d = Destination::cloud("http://127.0.0.1:8080/v1/messages").unwrap();
    assert!(Egress::new(temp_log("loop")).check(Some(&folder(Tier::Local, &[])), &d, "design", true).is_err());
    for not_loopback in ["http://0.0.0.0:8080", "http://localhost.example.com", "http://10.0.0.1"] {
        assert!(
            check(Some(&folder(Tier::Cloud, &[])), not_loopback, "completion", false).is_err(),
            "{not_loopback}: plain http to a cloud host"
        );
        assert!(check(Some(&folder(Tier::Local, &[])), not_loopback, "completion", false).is_err(), "{not_loopback}");
    }
}

#[test]
fn listed_on_prem_endpoints_count_as_local_in_every_tier() {
    for tier in [Tier::Cloud, Tier::Hybrid, Tier::Local] {
        let f = folder(tier, &["http://gpu.internal:8080", "vllm.corp"]);
        let p = check(Some(&f), "http://GPU.internal:8080/infill", "completion", false).unwrap();
        assert_eq!(p.reach(), Reach::OnPrem);
        let d = Destination::cloud("http://vllm.corp:8000/v1/chat/completions").unwrap();
        assert_eq!(
            Egress::new(temp_log("onprem")).check(Some(&f), &d, "design", false).unwrap().reach(),
            Reach::OnPrem,
            "listed wins over declared cloud"
        );
    }
    let f = folder(Tier::Local, &["http://gpu.internal:8080"]);
    assert!(
        check(Some(&f), "http://gpu.internal:9090/infill", "completion", false).is_err(),
        "another port is another endpoint"
    );
    assert!(check(Some(&f), "http://gpu.internal.evil.example:8080/", "completion", false).is_err());
}

#[test]
fn unusable_destinations_are_refused() {
    for url in ["not a url", "ftp://example.com/x", "file:///etc/passwd", "http://", "unix:/var/run/x.sock", ""] {
        let e = check(Some(&folder(Tier::Cloud, &[])), url, "design", false).unwrap_err();
        assert_eq!(e.tier, None, "{url}");
    }
    let e = check(Some(&folder(Tier::Cloud, &[])), "http://api.example.com/v1/messages", "design", false).unwrap_err();
    assert!(e.message.contains("https"), "{e}");
}

#[test]
fn refusals_open_no_socket_and_tier_3_logs_nothing() {
    let server = FakeServer::start(vec![]);
    let log = temp_log("refusal");
    let egress = Egress::new(log.clone());
    let d = Destination::cloud(&server.url("/v1/messages")).unwrap();
    assert!(egress.check(Some(&folder(Tier::Local, &[])), &d, "design", true).is_err());
    assert!(egress.check(None, &d, "design", true).is_err());
    assert!(log.read().is_empty(), "a Tier-3 workspace's log stays empty");
    assert!(egress.check(Some(&folder(Tier::Hybrid, &[])), &d, "design", false).is_err());
    let recs = log.read();
    assert_eq!(recs.len(), 1, "a Tier-2 refusal is recorded once");
    assert!(recs[0].outcome.starts_with("denied") && recs[0].tier == 2 && recs[0].bytes == 0, "{recs:?}");
    assert_eq!(server.accepted(), 0, "nothing connected");
}

#[tokio::test]
async fn a_tier_1_request_arrives_and_is_audited_once() {
    let server = FakeServer::start(vec![Reply::json(200, r#"{"answer": 42}"#)]);
    let log = temp_log("tier1");
    let d = Destination::cloud(&server.url("/v1/messages")).unwrap();
    let permit = Egress::new(log.clone()).check(Some(&folder(Tier::Cloud, &[])), &d, "design", false).unwrap();
    let body = json!({"hello": "world"});
    let v = permit.post_json(&[("x-test", "yes".into())], &body, &CancelToken::new()).await.unwrap();
    assert_eq!(v["answer"], 42);
    let rq = server.request(0);
    assert_eq!((rq.method.as_str(), rq.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(rq.header("x-test"), Some("yes"));
    assert_eq!(rq.header("content-type"), Some("application/json"));
    let sent = serde_json::to_vec(&body).unwrap();
    assert_eq!(rq.body, sent);
    let recs = log.read();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!((r.tier, r.action.as_str(), r.outcome.as_str(), r.anonymized), (1, "design", "ok", false));
    assert_eq!((r.bytes, r.sha256.clone()), (sent.len(), audit::sha256_hex(&sent)));
    assert_eq!(r.host, format!("127.0.0.1:{}", server.port()));
    assert_eq!(r.workspace, "/work/client");
}

#[tokio::test]
async fn the_anonymizers_counts_go_into_the_audit_record() {
    let server = FakeServer::start(vec![Reply::json(200, r#"{"answer": 1}"#)]);
    let log = temp_log("counts");
    let d = Destination::cloud(&server.url("/v1/messages")).unwrap();
    let counts: std::collections::BTreeMap<String, usize> = [("email".to_string(), 2), ("iban".to_string(), 1)].into();
    let permit = Egress::new(log.clone())
        .check(Some(&folder(Tier::Hybrid, &[])), &d, "design", true)
        .unwrap()
        .with_counts(counts.clone());
    permit.post_json(&[], &json!({"q": 1}), &CancelToken::new()).await.unwrap();
    let recs = log.read();
    assert_eq!((recs.len(), recs[0].anonymized, &recs[0].counts), (1, true, &counts));
    let line = std::fs::read_to_string(log.path()).unwrap();
    assert!(line.contains(r#""counts":{"email":2,"iban":1}"#), "{line}");
}

#[tokio::test]
async fn failures_are_returned_and_audited_once() {
    let server = FakeServer::start(vec![Reply::json(500, r#"{"error": "overloaded"}"#), Reply::text(200, "not json")]);
    let log = temp_log("failures");
    let egress = Egress::new(log.clone());
    let f = folder(Tier::Cloud, &[]);
    let d = Destination::cloud(&server.url("/")).unwrap();
    let e = egress
        .check(Some(&f), &d, "design", false)
        .unwrap()
        .post_json(&[], &json!({}), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, EgressError::Status { status: 500, .. }), "{e}");
    let e = egress
        .check(Some(&f), &d, "design", false)
        .unwrap()
        .post_json(&[], &json!({}), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    // A closed port: connection refused, no retry elsewhere.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let d2 = Destination::cloud(&format!("http://{closed}/")).unwrap();
    let e = egress
        .check(Some(&f), &d2, "design", false)
        .unwrap()
        .post_json(&[], &json!({}), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, EgressError::Connection { .. }), "{e}");
    let recs = log.read();
    assert_eq!(recs.len(), 3, "{recs:?}");
    assert!(recs.iter().all(|r| r.outcome.starts_with("error: ")), "{recs:?}");
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = FakeServer::start(vec![Reply::json(200, "{}")]);
    let server = FakeServer::start(vec![Reply::redirect(&elsewhere.url("/stolen"))]);
    let log = temp_log("redirect");
    let d = Destination::cloud(&server.url("/")).unwrap();
    let e = Egress::new(log.clone())
        .check(Some(&folder(Tier::Cloud, &[])), &d, "design", false)
        .unwrap()
        .post_json(&[], &json!({}), &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, EgressError::Status { status: 307, .. }), "{e}");
    assert_eq!(elsewhere.accepted(), 0);
    assert_eq!(log.read().len(), 1);
}

#[tokio::test]
async fn an_unwritable_audit_log_stops_the_request() {
    let server = FakeServer::start(vec![Reply::json(200, "{}")]);
    let dir = std::env::temp_dir().join(format!("lokal-audit-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = Destination::cloud(&server.url("/")).unwrap();
    let p = Egress::new(AuditLog::at(dir)).check(Some(&folder(Tier::Cloud, &[])), &d, "design", false).unwrap();
    let e = p.post_json(&[], &json!({}), &CancelToken::new()).await.unwrap_err();
    assert!(matches!(e, EgressError::Audit { .. }), "{e}");
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn cancelling_or_dropping_a_request_still_records_it_once() {
    let server = FakeServer::start(vec![Reply::Hang, Reply::Hang]);
    let log = temp_log("cancel");
    let egress = Egress::new(log.clone());
    let f = folder(Tier::Cloud, &[]);
    let d = Destination::cloud(&server.url("/")).unwrap();
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        c2.cancel();
    });
    let e = egress.check(Some(&f), &d, "design", false).unwrap().post_json(&[], &json!({}), &cancel).await.unwrap_err();
    assert!(matches!(e, EgressError::Cancelled), "{e}");
    let (body, never) = (json!({}), CancelToken::new());
    let fut = egress.check(Some(&f), &d, "design", false).unwrap().post_json(&[], &body, &never);
    assert!(tokio::time::timeout(Duration::from_millis(150), fut).await.is_err(), "dropped by the timeout");
    let recs = log.read();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0].outcome, "error: lokal: cancelled");
    assert!(recs[1].outcome.contains("abandoned"), "{recs:?}");
}

#[tokio::test]
async fn streaming_delivers_chunks_and_stops_on_cancel() {
    let server = FakeServer::start(vec![
        Reply::chunks(&["one ", "two ", "three"], 20),
        Reply::chunks(&["a", "b", "c", "d", "e"], 100),
    ]);
    let log = temp_log("stream");
    let egress = Egress::new(log.clone());
    let f = folder(Tier::Cloud, &[]);
    let d = Destination::cloud(&server.url("/")).unwrap();
    let mut got = Vec::new();
    egress
        .check(Some(&f), &d, "design", false)
        .unwrap()
        .post_json_streaming(&[], &json!({}), &CancelToken::new(), |c| {
            got.extend_from_slice(c);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), "one two three");
    let cancel = CancelToken::new();
    let mut n = 0;
    let e = egress
        .check(Some(&f), &d, "design", false)
        .unwrap()
        .post_json_streaming(&[], &json!({}), &cancel, |_| {
            n += 1;
            cancel.cancel();
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(e, EgressError::Cancelled));
    assert_eq!(n, 1, "the flag is checked before the next chunk");
    assert_eq!(log.read().len(), 2);
}
