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
