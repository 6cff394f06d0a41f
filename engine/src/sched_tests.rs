use super::*;

fn limits(batch: usize) -> Limits {
    Limits { batch, running: 8, long_per_session: 1, long_yields: false }
}

fn admit_all(s: &mut Sched<&'static str>) -> Vec<&'static str> {
    std::iter::from_fn(|| s.admit(|_| true).map(|(_, _, t)| t)).collect()
}

#[test]
fn session_is_the_daemon_prefix_of_a_key() {
    assert_eq!(session_of("s12:file:///a.rs"), "s12:");
    assert_eq!(session_of("s0:file:///a.rs#action"), "s0:");
    assert_eq!(session_of("file:///a.rs"), "");
    assert_eq!(session_of("s:x"), "");
    assert_eq!(session_of("sx1:y"), "");
    // The team daemon's keys carry the user first: each window is still its own session.
    assert_eq!(session_of("u1000:s3:file:///a.rs"), "u1000:s3:");
    assert_eq!(session_of("u1000:file:///a.rs"), "");
    assert_eq!(session_of("u:s3:x"), "");
    assert_eq!(session_of("s1"), "");
}

#[test]
fn the_most_urgent_job_is_admitted_first_whatever_arrived_first() {
    let mut s = Sched::new(Limits { long_per_session: 4, ..limits(8) });
    s.push(Meta::new(Priority::Background, "s1:warm"), "warm");
    s.push(Meta::new(Priority::DesignDoc, "s1:doc"), "design");
    s.push(Meta::new(Priority::Action, "s1:act"), "action");
    s.push(Meta::new(Priority::Inline, "s1:a.rs"), "key");
    assert_eq!(admit_all(&mut s), ["key", "action", "design", "warm"]);
}

#[test]
fn equal_priorities_take_turns_by_session() {
    let mut s = Sched::new(limits(1));
    // Session 1 typed three keystrokes (three documents) before session 2's one arrived.
    for d in ["s1:a", "s1:b", "s1:c"] {
        s.push(Meta::new(Priority::Inline, d), d);
    }
    s.push(Meta::new(Priority::Inline, "s2:x"), "s2:x");
    let mut order = Vec::new();
    while let Some((id, _, t)) = s.admit(|_| true) {
        order.push(t);
        s.finish(id);
    }
    assert_eq!(order, ["s1:a", "s2:x", "s1:b", "s1:c"]);
}

#[test]
fn a_session_runs_a_limited_number_of_long_jobs_and_others_still_get_theirs() {
    let mut s = Sched::new(Limits { batch: 8, running: 8, long_per_session: 2, long_yields: false });
    for d in ["s1:d1", "s1:d2", "s1:d3", "s1:d4"] {
        s.push(Meta::new(Priority::DesignDoc, d), d);
    }
    s.push(Meta::new(Priority::DesignDoc, "s2:d"), "s2:d");
    s.push(Meta::new(Priority::Inline, "s1:k"), "s1:k");
    let got = admit_all(&mut s);
    assert_eq!(got, ["s1:k", "s2:d", "s1:d1", "s1:d2"], "two long jobs for s1, s2's one, keystrokes unlimited");
    assert_eq!(s.queued(), 2);
    // One of s1's long jobs ends: the next of s1's waits no longer.
    let id = s.running.iter().find(|(_, m)| m.doc == "s1:d1").unwrap().0;
    s.finish(id);
    assert_eq!(admit_all(&mut s), ["s1:d3"]);
}

#[test]
fn two_jobs_on_one_key_never_run_together() {
    let mut s = Sched::new(limits(8));
    s.push(Meta::new(Priority::Inline, "a"), "first");
    s.push(Meta::new(Priority::Inline, "a"), "second");
    s.push(Meta::new(Priority::Inline, "b"), "other");
    assert_eq!(admit_all(&mut s), ["first", "other"]);
    assert!(s.holds("a"));
    let id = s.running.iter().find(|(_, m)| m.doc == "a").unwrap().0;
    s.finish(id);
    assert_eq!(admit_all(&mut s), ["second"]);
}

#[test]
fn a_keystroke_preempts_a_long_job_when_only_one_runs_at_a_time() {
    let mut s = Sched::new(Limits { batch: 1, running: 8, long_per_session: 4, long_yields: false });
    let long = s.push(Meta::new(Priority::DesignDoc, "s1:doc"), "design");
    assert!(s.admit(|_| true).is_some());
    assert_eq!(s.step(), [long]);
    // Another long job waits: admitted, it would only sit suspended.
    s.push(Meta::new(Priority::DesignDoc, "s1:doc2"), "design2");
    assert!(s.admit(|_| true).is_none());
    let key = s.push(Meta::new(Priority::Inline, "s2:a"), "key");
    assert_eq!(s.admit(|_| true).map(|(_, _, t)| t), Some("key"));
    assert_eq!(s.step(), [key], "the long job yields; it keeps its place to resume");
    assert_eq!(s.running(), 2);
    s.finish(key);
    assert_eq!(s.step(), [long], "and resumes when the keystroke is answered");
}

#[test]
fn a_batch_carries_every_running_job_up_to_its_size_most_urgent_first() {
    let mut s = Sched::new(Limits { batch: 2, running: 8, long_per_session: 4, long_yields: false });
    let d = s.push(Meta::new(Priority::DesignDoc, "s1:doc"), "design");
    let a = s.push(Meta::new(Priority::Action, "s1:act"), "action");
    admit_all(&mut s);
    assert_eq!(s.step(), [a, d]);
    let k = s.push(Meta::new(Priority::Inline, "s1:k"), "key");
    admit_all(&mut s);
    assert_eq!(s.step(), [k, a], "the design document skips steps while two more urgent jobs run");
}

#[test]
fn the_callers_condition_and_the_running_limit_hold_jobs_back() {
    let mut s = Sched::new(Limits { batch: 8, running: 2, long_per_session: 4, long_yields: false });
    for d in ["a", "b", "c"] {
        s.push(Meta::new(Priority::Inline, d), d);
    }
    assert!(s.admit(|m| m.doc != "a").map(|(_, _, t)| t) == Some("b"));
    assert_eq!(admit_all(&mut s), ["a"]);
    assert!(s.admit(|_| true).is_none(), "two sequences in use: c waits");
    let cancelled = s.remove_queued(|t| *t == "c");
    assert_eq!(cancelled, ["c"]);
    assert!(!s.is_idle());
}

#[test]
fn long_jobs_of_many_sessions_leave_a_sequence_for_keystrokes() {
    let mut s = Sched::new(Limits { batch: 8, running: 4, long_per_session: 2, long_yields: false });
    for d in ["s1:a", "s1:b", "s2:a", "s2:b", "s3:a"] {
        s.push(Meta::new(Priority::DesignDoc, d), d);
    }
    assert_eq!(admit_all(&mut s).len(), 3, "three of four sequences for long jobs");
    s.push(Meta::new(Priority::Inline, "s4:k"), "s4:k");
    assert_eq!(admit_all(&mut s), ["s4:k"]);
}

#[test]
fn long_jobs_can_sit_out_the_steps_a_keystroke_runs_in() {
    let mut s = Sched::new(Limits { batch: 8, running: 8, long_per_session: 2, long_yields: true });
    let d = s.push(Meta::new(Priority::DesignDoc, "s1:doc"), "design");
    admit_all(&mut s);
    assert_eq!(s.step(), [d]);
    let k1 = s.push(Meta::new(Priority::Inline, "s1:a"), "k1");
    let k2 = s.push(Meta::new(Priority::Inline, "s2:b"), "k2");
    admit_all(&mut s);
    // s2 goes first: s1 was served last (its design document).
    assert_eq!(s.step(), [k2, k1], "keystrokes share the batch; the design document waits");
    s.finish(k1);
    s.finish(k2);
    assert_eq!(s.step(), [d], "and goes on once they are answered");
}
