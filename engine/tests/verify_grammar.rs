//! The brace-body grammar in llama.cpp, with the real embedded model's vocabulary (LOKAL_MODEL): accepted,
//! and it lets a body close and then only end.
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use lokal_engine::verify::grammar::brace_body_grammar;

/// Which of `tokens` the grammar still allows.
fn allowed(sampler: &mut llama_cpp_2::sampling::LlamaSampler, tokens: &[LlamaToken]) -> Vec<LlamaToken> {
    let mut arr = LlamaTokenDataArray::new(tokens.iter().map(|t| LlamaTokenData::new(*t, 1.0, 0.0)).collect(), false);
    arr.apply_sampler(sampler);
    arr.data.iter().filter(|d| d.logit().is_finite()).map(|d| d.id()).collect()
}

#[test]
fn the_body_grammar_lets_a_body_close_and_then_only_end() {
    let path =
        std::env::var("LOKAL_MODEL").expect("LOKAL_MODEL names the embedded test model (scripts/test.sh sets it)");
    let backend = LlamaBackend::init().unwrap();
    let model =
        LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default().with_vocab_only(true)).unwrap();
    let vocab = model.vocab();
    let one = |s: &str| {
        let t = vocab.tokenize(s.as_bytes(), false, false);
        assert_eq!(t.len(), 1, "{s:?} is one token in this vocabulary");
        t[0]
    };
    let (open, close, x, eos) = (one("{"), one("}"), one("x"), vocab.eos());
    let mut g = brace_body_grammar(&model).unwrap();
    assert_eq!(allowed(&mut g, &[x, open, close, eos]), vec![x, open, close], "an open body may not end");
    for t in [x, open, close] {
        g.accept(t);
    }
    // `x{}` is balanced: the next `}` closes the body.
    assert_eq!(allowed(&mut g, &[x, close, eos]), vec![x, close]);
    g.accept(close);
    assert_eq!(allowed(&mut g, &[x, open, close, eos]), vec![eos], "after the closing brace only the end is left");
}
