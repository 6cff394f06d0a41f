use crate::speculate::argmax;

#[test]
fn argmax_takes_the_first_maximum_and_skips_nan() {
    let mut v: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 10.0).collect();
    let want = v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b });
    assert_eq!(argmax(&v), want);
    // A tie later in the array loses to the first; the tail past the last full chunk counts too.
    v[want + 17] = v[want];
    assert_eq!(argmax(&v), want);
    v[999] = 1e9;
    assert_eq!(argmax(&v), 999);
    v[3] = f32::NAN;
    assert_eq!(argmax(&v), 999);
    assert_eq!(argmax(&[f32::NAN, -1.0, -0.5, -0.5]), 2);
}

#[test]
fn argmax_over_a_whole_vocabulary_is_the_first_maximum() {
    let n = 262_147;
    let mut v: Vec<f32> = (0..n).map(|i| ((i as u64 * 2_654_435_761) % 100_000) as f32 / 1000.0).collect();
    let first = |v: &[f32]| v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b });
    assert_eq!(argmax(&v), first(&v));
    // Ties in later blocks and the tail lose to the earliest maximum, wherever it sits.
    for at in [0, 511, 512, 100_000, n - 2] {
        v[at] = 500.0;
        v[n - 1] = 500.0;
        assert_eq!(argmax(&v), at, "maximum at {at}");
        v[at] = 0.0;
    }
    assert_eq!(argmax(&v), n - 1);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NAN, f32::NEG_INFINITY]), 0);
    assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
    assert_eq!(argmax(&[]), 0);
}

#[test]
fn rejoin_waits_after_an_answer_only_with_room_and_stops_after_a_miss() {
    use super::{Job, Rejoin, REJOIN_MAX, REJOIN_SKIP};
    use crate::sched::{Limits, Meta, Priority, Sched};
    use std::time::Duration;
    let limits = |batch| Limits { batch, running: 8, long_per_session: 2, long_yields: true };
    let close = || Job::Close { doc: "d".into() };
    let mut sched: Sched<Job> = Sched::new(limits(4));
    sched.push(Meta::new(Priority::Inline, "s0:a"), close());
    assert!(sched.admit(|_| true).is_some());
    let mut r = Rejoin { answered: false, decode: Duration::from_millis(2), skip: 0 };
    assert_eq!(r.wait(&sched), None, "no job answered in the last step");
    r.answered = true;
    assert_eq!(r.wait(&sched), Some(Duration::from_millis(1)), "half a decode");
    assert_eq!(r.wait(&sched), None, "once per answering step");
    r.answered = true;
    r.decode = Duration::from_secs(1);
    assert_eq!(r.wait(&sched), Some(REJOIN_MAX));
    // A wait that saw nothing lets the next answers pass.
    r.came(false);
    for _ in 0..REJOIN_SKIP {
        r.answered = true;
        assert_eq!(r.wait(&sched), None);
    }
    r.answered = true;
    assert!(r.wait(&sched).is_some());
    // Work already queued, or no room in the batch: go on at once.
    sched.push(Meta::new(Priority::Inline, "s1:b"), close());
    r.answered = true;
    assert_eq!(r.wait(&sched), None, "a job is queued");
    let mut full: Sched<Job> = Sched::new(limits(1));
    full.push(Meta::new(Priority::Inline, "s0:a"), close());
    assert!(full.admit(|_| true).is_some());
    r.answered = true;
    assert_eq!(full.running(), 1);
    assert_eq!(r.wait(&full), None, "batching off: the batch is full");
}
