use super::*;

#[test]
fn drafts_follow_the_longest_latest_match() {
    // "1 2 3 9" then "7 2 3 8": the 2-gram [2, 3] occurs twice, the latest is followed by 8.
    let history = [1, 2, 3, 9, 7, 2, 3, 8, 5, 2, 3];
    assert_eq!(draft(&history, &[], 4), vec![8, 5, 2, 3]);
    // The 3-gram [7, 2, 3] wins over the later 2-gram.
    let history = [7, 2, 3, 6, 6, 1, 2, 3, 4, 7, 2, 3];
    assert_eq!(draft(&history, &[], 2), vec![6, 6]);
    // Only a 1-gram is found.
    assert_eq!(draft(&[5, 6, 9, 6], &[], 3), vec![9, 6]);
    // Nothing earlier, nothing after, or no room.
    assert!(draft(&[1, 2, 3], &[], 4).is_empty());
    assert!(draft(&[4, 5, 4], &[], 0).is_empty());
    assert!(draft(&[], &[], 4).is_empty());
}

#[test]
fn the_previous_suggestion_is_looked_up_first() {
    let history = [1, 2, 3, 4, 1, 2];
    assert_eq!(draft(&history, &[], 3), vec![3, 4, 1]);
    assert_eq!(draft(&history, &[9, 1, 2, 7, 7], 3), vec![7, 7]);
    // A longer match in the history beats a shorter one in the previous suggestion.
    assert_eq!(draft(&[0, 1, 2, 5, 0, 1, 2], &[2, 8], 1), vec![5]);
}

#[test]
fn acceptance_is_the_matching_prefix() {
    assert_eq!(accepted(&[4, 5, 6], &[4, 5, 7, 1]), 2);
    assert_eq!(accepted(&[4, 5, 6], &[3, 5, 6, 1]), 0);
    assert_eq!(accepted(&[4, 5], &[4, 5, 9]), 2);
    assert_eq!(accepted(&[], &[9]), 0);
    // Walking the verified rows: the picks run on while drafts match, and a stop keeps nothing after it.
    let picks = [4, 5, 7, 1];
    let mut seen = Vec::new();
    assert_eq!(walk(&[4, 5, 6], |i| Some(picks[i]).inspect(|&t| seen.push(t))), 2);
    assert_eq!(seen, vec![4, 5, 7]);
    assert_eq!(walk(&[4, 5, 6], |i| (i < 1).then_some(picks[i])), 1);
    assert_eq!(walk(&[4, 5, 6], |_| None), 0);
    assert_eq!(walk(&[], |_| Some(9)), 0);
}

/// A deterministic model over a small vocabulary: the next token is a function of the last two, with a
/// period so code-like repetition happens. `cells` is its KV sequence, checked to stay contiguous.
struct Toy {
    cells: Vec<Token>,
    decodes: usize,
    vocab: Token,
}

impl Toy {
    fn next(&self, seq: &[Token]) -> Token {
        let a = seq.last().copied().unwrap_or(0);
        let b = if seq.len() >= 2 { seq[seq.len() - 2] } else { 0 };
        (a * 7 + b * 3 + 1) % self.vocab
    }
}

impl Toy {
    /// Decode `tokens` at the end of the sequence; the greedy pick after each.
    fn decode(&mut self, tokens: &[Token]) -> Vec<Token> {
        self.decodes += 1;
        let mut out = Vec::new();
        for &t in tokens {
            self.cells.push(t);
            out.push(self.next(&self.cells));
        }
        out
    }
}

/// The generation's step (gen.rs) in miniature: its token plus drafts in one decode, the picks walked
/// through the stop rules (stop token or budget), rejected cells removed.
fn generate(
    prompt: &[Token],
    stop: Token,
    max: usize,
    draft_max: usize,
    prev: &[Token],
) -> (Vec<Token>, Toy, Speculator) {
    generate_with(prompt, stop, max, draft_max, prev, Tuning { adaptive: false, ..Default::default() })
}

fn generate_with(
    prompt: &[Token],
    stop: Token,
    max: usize,
    draft_max: usize,
    previous: &[Token],
    mut tuning: Tuning,
) -> (Vec<Token>, Toy, Speculator) {
    let mut toy = Toy { cells: Vec::new(), decodes: 0, vocab: 13 };
    let mut picks = toy.decode(prompt);
    let mut want = prompt.to_vec();
    let mut spec = Speculator::new(previous.to_vec(), draft_max);
    let mut out = Vec::new();
    let mut drafts: Vec<Token> = Vec::new();
    loop {
        let mut finished = false;
        let kept = walk(&drafts, |i| {
            let tok = picks[i];
            finished = tok == stop || {
                out.push(tok);
                out.len() >= max
            };
            if !finished {
                want.push(tok);
            }
            (!finished).then_some(tok)
        });
        if !drafts.is_empty() || toy.decodes > 1 {
            spec.settle(drafts.len(), kept, &mut tuning);
        }
        let held = toy.cells.len() - (drafts.len() - kept);
        toy.cells.truncate(held);
        assert_eq!(toy.cells, want[..held], "the cells are exactly the tokens the generation holds");
        if finished {
            assert_eq!(held, want.len());
            break;
        }
        assert_eq!(held + 1, want.len(), "one token to decode next");
        drafts = spec.propose(&want, max - out.len() - 1, true, &mut tuning);
        let mut batch = vec![want[held]];
        batch.extend_from_slice(&drafts);
        picks = toy.decode(&batch);
    }
    (out, toy, spec)
}

#[test]
fn speculation_gives_the_same_tokens_in_fewer_decodes() {
    let prompt = [1, 2, 3, 4, 5, 6, 7, 8];
    for stop in [99, 0, 5, 11] {
        for max in [1, 2, 7, 40] {
            let (plain, _, s0) = generate(&prompt, stop, max, 0, &[]);
            for k in [1, 3, 8] {
                let (fast, _, s) = generate(&prompt, stop, max, k, &[]);
                assert_eq!(fast, plain, "stop {stop} max {max} draftMax {k}");
                assert!(s.accepted <= s.drafted);
                assert!(s.decodes <= s0.decodes);
            }
        }
    }
    // The toy model cycles, so long generations repeat what came before and the drafts are accepted.
    let (out, toy, s) = generate(&prompt, 99, 40, 8, &[]);
    assert_eq!(out.len(), 40);
    assert!(s.accepted > 0 && toy.decodes < 1 + 39, "{s:?}");
}

#[test]
fn a_wrong_previous_suggestion_costs_nothing_but_drafts() {
    let prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    let (plain, _, _) = generate(&prompt, 99, 30, 0, &[]);
    let bad: Vec<Token> = (0..40).map(|i| (i * 5 + 2) % 13).collect();
    let (fast, _, s) = generate(&prompt, 99, 30, 6, &bad);
    assert_eq!(fast, plain);
    assert!(s.drafted > 0);
    // The plain output itself as the previous suggestion: drafts line up from the start.
    let (again, toy, s) = generate(&prompt, 99, 30, 6, &plain);
    assert_eq!(again, plain);
    assert!(s.accepted >= 20 && toy.decodes <= 1 + 10, "{s:?}, {} decodes", toy.decodes);
}

#[test]
fn a_sampler_gets_no_drafts() {
    let mut t = Tuning::default();
    let mut s = Speculator::new(vec![1, 2, 3], 8);
    assert_eq!(s.propose(&[1, 2], 8, true, &mut t), vec![3], "greedy: the previous suggestion's next token");
    assert!(s.propose(&[1, 2], 8, false, &mut t).is_empty());
    s.settle(0, 0, &mut t);
    assert_eq!((s.drafted, s.accepted, s.decodes), (0, 0, 1));
}

#[test]
fn adaptive_drafting_gives_the_same_tokens() {
    let prompt = [1, 2, 3, 4, 5, 6, 7, 8];
    for cost in [0.0, 0.3, 0.9] {
        let (plain, _, _) = generate(&prompt, 99, 40, 0, &[]);
        let (fast, toy, s) = generate_with(&prompt, 99, 40, 8, &[], Tuning::with_cost(cost));
        assert_eq!(fast, plain, "cost {cost}");
        assert!(toy.decodes <= 40, "{s:?}");
    }
}

#[test]
fn drafts_are_verified_only_while_they_pay() {
    // A free position: every draft of a match is worth verifying.
    assert_eq!(Tuning::with_cost(0.0).worth(0, 8), 8);
    // Half a decode a position and a 2/3 chance a draft holds: the first pays (0.67), the second not (0.44).
    let mut t = Tuning::with_cost(0.5);
    assert_eq!(t.worth(4, 8), 1);
    // A kind of match that keeps being accepted earns longer drafts; one that keeps failing, none.
    for _ in 0..20 {
        t.observe(4, 8, 8);
        t.observe(5, 2, 0);
    }
    assert!(t.worth(4, 8) >= 6, "{t:?}");
    assert_eq!(t.worth(5, 8), 0);
    // Too dear for anything: a full draft every 64 matches all the same, so the estimates can recover.
    let mut t = Tuning::with_cost(0.95);
    let tried: Vec<usize> = (0..128).map(|_| t.worth(0, 8)).filter(|&k| k > 0).collect();
    assert_eq!(tried, [8, 8]);
    // Without adaptation every match drafts up to the maximum.
    assert_eq!(Tuning { adaptive: false, ..Tuning::with_cost(0.95) }.worth(2, 5), 5);
}

#[test]
fn the_time_of_a_batch_is_learnt_per_size() {
    let mut t = Tuning::default();
    assert!((t.time(5) - 2.2).abs() < 1e-9, "a guess before anything is measured: {}", t.time(5));
    t.observe_time(1, 10.0);
    t.observe_time(5, 30.0);
    // between measured sizes: on the line; past the last: at the slope of the last span
    assert_eq!((t.time(1), t.time(3), t.time(5), t.time(7)), (10.0, 20.0, 30.0, 40.0));
    // A GPU: the second row costs what llama.cpp's graph replay saves, the others next to nothing. A match
    // that holds 2 times in 3 drafts nothing; one that always holds drafts all it has, since the ninth row
    // costs little more than the second.
    let mut gpu = Tuning::default();
    gpu.observe_time(1, 1.0);
    gpu.observe_time(2, 3.0);
    assert_eq!(gpu.worth(0, 8), 0, "{gpu:?}");
    gpu.observe_time(9, 3.2);
    assert_eq!(gpu.worth(0, 8), 0, "{gpu:?}");
    for _ in 0..30 {
        gpu.observe(0, 8, 8);
    }
    assert_eq!(gpu.worth(0, 8), 8, "{gpu:?}");
    // Where every row costs a whole decode, even that match drafts nothing.
    let mut cpu = Tuning::with_cost(1.0);
    for _ in 0..30 {
        cpu.observe(0, 8, 8);
    }
    assert_eq!(cpu.worth(0, 8), 0, "{cpu:?}");
}
