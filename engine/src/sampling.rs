//! Sampling at a temperature, for best-of-N candidates that must differ from each other. Kept apart from
//! the model thread's greedy path (plain argmax, worker.rs) so that completions pay nothing for it.

/// Top-k then softmax at `temperature`, drawn from a seeded generator: the same seed and logits give the
/// same token, so a test or a bug report can replay a candidate.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_k: usize,
    state: u64,
}

impl Sampler {
    pub fn new(temperature: f32, seed: u64) -> Self {
        // Top 40 as llama.cpp's default: the long tail of a 262k vocabulary is noise that breaks code.
        Sampler { temperature, top_k: 40, state: seed ^ 0x9E37_79B9_7F4A_7C15 }
    }

    /// splitmix64: small, seedable, good enough for picking among 40 tokens.
    fn next_f64(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick(&mut self, logits: &[f32]) -> usize {
        let mut top: Vec<(usize, f32)> = Vec::with_capacity(self.top_k + 1);
        for (i, &l) in logits.iter().enumerate() {
            if l.is_nan() || (top.len() == self.top_k && l <= top[top.len() - 1].1) {
                continue;
            }
            let at = top.partition_point(|&(_, v)| v >= l);
            top.insert(at, (i, l));
            top.truncate(self.top_k);
        }
        let Some(&(best, max)) = top.first() else { return 0 };
        let t = self.temperature.max(1e-3) as f64;
        let weights: Vec<f64> = top.iter().map(|&(_, l)| ((l - max) as f64 / t).exp()).collect();
        let mut r = self.next_f64() * weights.iter().sum::<f64>();
        for (w, &(i, _)) in weights.iter().zip(&top) {
            if r < *w {
                return i;
            }
            r -= w;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_temperature_spreads_the_picks() {
        let logits: Vec<f32> = (0..1000).map(|i| if i < 3 { 10.0 - i as f32 * 0.1 } else { -5.0 }).collect();
        let run = |seed| {
            let mut s = Sampler::new(1.0, seed);
            (0..50).map(|_| s.pick(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let picks = run(7);
        assert!(picks.iter().all(|&p| p < 3), "only the likely tokens: {picks:?}");
        assert!((0..3).all(|k| picks.contains(&k)), "all three near-equal tokens drawn: {picks:?}");
        let mut cold = Sampler::new(0.01, 7);
        assert!((0..50).all(|_| cold.pick(&logits) == 0), "a tiny temperature is greedy");
    }
}
