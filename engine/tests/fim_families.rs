//! Template choice per code-model family, on tiny GGUF files the tests write (tests/support): each file
//! is a complete one-block model of the family's architecture, with its tokenizer and FIM tokens, since no
//! real FIM model can be downloaded here.
//!
//! `lokal_engine::inspect` reads them the way the model catalog does (llama.cpp, vocabulary only); the
//! engine tests further down load them fully and run completions through the whole pipeline.
mod support;

use lokal_engine::fim::{FimFamily, Order, PromptFormat};
use lokal_engine::model_info::{ModelInfo, SpecialToken};
use lokal_engine::{Completion, CompletionRequest, Engine, EngineConfig};
use std::path::Path;
use support::families::{self, Keys, Model};
use support::gguf::{Gguf, TempFile};
use support::model::{N_CTX_TRAIN, N_LAYER};

fn inspect(g: &Gguf, name: &str) -> (ModelInfo, PromptFormat) {
    let f = g.write_temp(&format!("{name}.gguf"));
    lokal_engine::inspect(f.path())
        .unwrap_or_else(|e| panic!("{name}: llama.cpp could not read the generated file: {e}"))
}

fn token(id: u32, text: &str) -> SpecialToken {
    SpecialToken { id: id as i32, text: text.to_string() }
}

/// Everything the template choice depends on, for one generated file.
fn check_family(m: &Model, want: FimFamily) {
    let what = format!("{} ({:?} keys)", m.name, m.keys);
    let (info, format) = inspect(&m.random(), m.name);
    assert_eq!(info.architecture, m.arch.name(), "{what}");
    assert_eq!(info.n_vocab as usize, m.vocab.n_tokens(), "{what}");
    assert_eq!((info.bos, info.add_bos), (Some(m.bos as i32), m.add_bos), "{what}: BOS");

    // llama.cpp reports the tokens that were written, with their exact texts.
    let [(pre, pre_text), (suf, suf_text), (mid, mid_text)] = m.fim.expect("a FIM family");
    assert_eq!(info.fim.pre, Some(token(pre, pre_text)), "{what}: prefix token");
    assert_eq!(info.fim.suf, Some(token(suf, suf_text)), "{what}: suffix token");
    assert_eq!(info.fim.mid, Some(token(mid, mid_text)), "{what}: middle token");

    let PromptFormat::Fim(t) = &format else { panic!("{what}: expected a FIM template, got {format:?}") };
    let order = match want {
        FimFamily::Codestral | FimFamily::CodeLlama => Order::SuffixPrefixMiddle,
        _ => Order::PrefixSuffixMiddle,
    };
    assert_eq!((t.family, t.order), (want, order), "{what}");

    // The family's tokens land where its layout puts them. Prompt text ids are out of the vocabulary's
    // range so they cannot be mistaken for a special token.
    let (p, s): (Vec<i32>, Vec<i32>) = (vec![9001, 9002, 9003], vec![9101, 9102]);
    let bos: Vec<i32> = info.add_bos.then(|| info.bos.unwrap()).into_iter().collect();
    let (pre, suf, mid) = (pre as i32, suf as i32, mid as i32);
    let layout = match want {
        FimFamily::Codestral => [&bos[..], &[suf], &s, &[pre], &p].concat(),
        FimFamily::CodeLlama => [&bos[..], &[pre, suf], &s, &[mid], &p].concat(),
        _ => [&bos[..], &[pre], &p, &[suf], &s, &[mid]].concat(),
    };
    assert_eq!(format.assemble(bos.first().copied(), &p, &s), layout, "{what}: prompt layout");
    // The /infill layout (setting fimLayout) puts the cursor's line after the middle token, for PSM families.
    let line: Vec<i32> = vec![9201, 9202];
    let infill =
        (order == Order::PrefixSuffixMiddle).then(|| [&bos[..], &[pre], &p, &[suf], &s, &[mid], &line].concat());
    assert_eq!(format.assemble_infill(bos.first().copied(), &p, &s, &line), infill, "{what}: infill layout");
    if order == Order::SuffixPrefixMiddle {
        // The typed text ends the prompt, so a keystroke keeps everything before it.
        let longer = format.assemble(bos.first().copied(), &[&p[..], &[9004]].concat(), &s);
        assert!(longer.starts_with(&layout), "{what}: typing must only append");
    }
    for id in [pre, suf, mid] {
        assert!(format.stop_ids().contains(&id), "{what}: FIM token {id} must end a completion");
    }
    // The family's end-of-fill token ends a completion whether or not llama.cpp marks it end-of-generation.
    let end = m.id(m.end) as i32;
    assert!(
        format.stop_ids().contains(&end),
        "{what}: {:?} ({end}) must end a completion, stop ids {:?}",
        m.end,
        format.stop_ids()
    );
}

#[test]
fn qwen_coder_by_token_text_and_by_id_keys() {
    for keys in [Keys::None, Keys::Fim] {
        check_family(&families::qwen_coder(keys), FimFamily::QwenCoder);
    }
}

#[test]
fn codegemma_shares_qwens_token_texts_and_is_told_apart_by_arch() {
    for keys in [Keys::Legacy, Keys::None] {
        check_family(&families::codegemma(keys), FimFamily::CodeGemma);
    }
}

#[test]
fn starcoder2() {
    for keys in [Keys::Fim, Keys::None] {
        check_family(&families::starcoder2(keys), FimFamily::StarCoder);
    }
}

#[test]
fn deepseek_coder() {
    for keys in [Keys::None, Keys::Fim] {
        check_family(&families::deepseek_coder(keys), FimFamily::DeepSeekCoder);
    }
}

#[test]
fn codellama_is_suffix_prefix_middle() {
    for keys in [Keys::Legacy, Keys::None] {
        check_family(&families::codellama(keys), FimFamily::CodeLlama);
    }
}

#[test]
fn codestral_is_suffix_prefix_middle() {
    for keys in [Keys::Fim, Keys::Legacy] {
        check_family(&families::codestral(keys), FimFamily::Codestral);
    }
}

#[test]
fn a_model_without_fim_tokens_continues_the_prefix() {
    let m = families::base_llama();
    let (info, format) = inspect(&m.random(), m.name);
    assert_eq!(info.fim, Default::default());
    assert_eq!(format, PromptFormat::Continuation);
    assert_eq!(format.assemble(Some(1), &[10, 11], &[20]), vec![1, 10, 11]);
    assert!(format.stop_ids().is_empty());
}

// ---- broken files -------------------------------------------------------------------------------------

#[test]
fn a_file_cut_inside_its_metadata_is_reported_as_truncated() {
    let g = families::qwen_coder(Keys::Fim).random();
    let bytes = g.to_bytes();
    for cut in [8, 24, g.data_offset() / 2, g.data_offset() - 1] {
        let f = TempFile::with_bytes("cut.gguf", &bytes[..cut]);
        let err = lokal_engine::inspect(f.path()).expect_err("a truncated file must not load");
        assert!(err.contains("corrupt or truncated"), "cut at {cut}: {err}");
    }
}

/// The metadata is whole, the weights are not: llama.cpp's loader checks every tensor against the file's
/// length even for a vocabulary-only load, so both `inspect` and a full load fail cleanly.
#[test]
fn a_file_cut_inside_its_tensor_data_is_an_error() {
    let g = families::qwen_coder(Keys::Fim).random();
    let bytes = g.to_bytes();
    let cut = g.data_offset() + (bytes.len() - g.data_offset()) / 2;
    let f = TempFile::with_bytes("cut-data.gguf", &bytes[..cut]);
    assert!(lokal_engine::inspect(f.path()).is_err());
    assert!(start_engine(f.path()).is_err());
}

/// …and the message says so, with the sizes: llama.cpp alone would give llama-cpp-2's "null result from
/// llama cpp" (its log says "tensor … data is not within the file bounds", and that goes to tracing only).
/// The least whole length is the data section's start plus the end of the last tensor; its padding may
/// be missing.
#[test]
fn a_file_cut_inside_its_tensor_data_is_reported_as_truncated() {
    let g = families::qwen_coder(Keys::Fim).random();
    let bytes = g.to_bytes();
    let last = g.tensors().last().unwrap();
    let padding = (last.data.len() * 4).next_multiple_of(support::gguf::ALIGNMENT) - last.data.len() * 4;
    let need = bytes.len() - padding;
    let middle = g.data_offset() + (bytes.len() - g.data_offset()) / 2;
    for cut in [g.data_offset(), middle, need - 1] {
        let f = TempFile::with_bytes("cut-data.gguf", &bytes[..cut]);
        let want = format!("model file is truncated: {cut} bytes, expected at least {need}");
        let err = lokal_engine::inspect(f.path()).expect_err("a truncated file must not load");
        assert!(err.contains(&want), "cut at {cut}: {err}");
        if cut == middle {
            let err = start_engine(f.path()).err().expect("a truncated file must not load");
            assert!(err.contains(&want), "full load, cut at {cut}: {err}");
        }
    }
    // Without the last tensor's padding the file is still whole.
    let f = TempFile::with_bytes("unpadded.gguf", &bytes[..need]);
    lokal_engine::inspect(f.path()).expect("only padding is missing");
}

#[test]
fn a_file_that_is_not_gguf_is_an_error() {
    for (name, bytes) in [("text.gguf", &b"hello, world"[..]), ("short.gguf", b"GG"), ("empty.gguf", b"")] {
        let f = TempFile::with_bytes(name, bytes);
        let err = lokal_engine::inspect(f.path()).expect_err("not a GGUF file");
        assert!(err.contains("GGUF"), "{name}: {err}");
    }
}

#[test]
fn a_missing_file_is_an_error() {
    let f = TempFile::new("missing.gguf");
    let err = lokal_engine::inspect(f.path()).expect_err("no such file");
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

// ---- the writer itself --------------------------------------------------------------------------------

#[test]
fn ggml_reads_back_what_the_writer_wrote() {
    use llama_cpp_2::gguf::GgufContext;
    let m = families::starcoder2(Keys::Fim);
    let g = m.random();
    let f = g.write_temp("roundtrip.gguf");
    let ctx = GgufContext::from_file(f.path()).expect("ggml parses the file");
    assert_eq!(ctx.n_tensors() as usize, g.tensors().len());
    let key = |k: &str| {
        let i = ctx.find_key(k);
        assert!(i >= 0, "{k} missing");
        i
    };
    assert_eq!(ctx.val_str(key("general.architecture")), Some("starcoder2"));
    assert_eq!(ctx.val_u32(key("starcoder2.block_count")), N_LAYER);
    assert_eq!(ctx.val_u32(key("starcoder2.context_length")), N_CTX_TRAIN);
    assert_eq!(ctx.val_u32(key("tokenizer.ggml.fim_pre_token_id")), m.id("<fim_prefix>"));
    // The data section starts where the writer says, every tensor sits at its padded place in it, and the
    // file ends with the last tensor's padding.
    let path = std::ffi::CString::new(f.path().to_str().unwrap()).unwrap();
    let params = llama_cpp_sys_2::gguf_init_params { no_alloc: true, ctx: std::ptr::null_mut() };
    // SAFETY: a valid C path; the context is freed below and not used after.
    let raw = unsafe { llama_cpp_sys_2::gguf_init_from_file(path.as_ptr(), params) };
    assert!(!raw.is_null());
    let bytes = std::fs::read(f.path()).unwrap();
    let data_offset = unsafe { llama_cpp_sys_2::gguf_get_data_offset(raw) };
    assert_eq!((data_offset, data_offset % 32), (g.data_offset(), 0));
    let mut end = data_offset;
    for (i, t) in g.tensors().iter().enumerate() {
        let (offset, size) = unsafe {
            (
                llama_cpp_sys_2::gguf_get_tensor_offset(raw, i as i64),
                llama_cpp_sys_2::gguf_get_tensor_size(raw, i as i64),
            )
        };
        assert_eq!(size, t.data.len() * 4, "{}", t.name);
        let at = data_offset + offset;
        let last = t.data.len() - 1;
        let read = |k: usize| f32::from_le_bytes(bytes[at + 4 * k..at + 4 * k + 4].try_into().unwrap());
        assert_eq!((read(0), read(last)), (t.data[0], t.data[last]), "{}", t.name);
        end = at + size.next_multiple_of(32);
    }
    unsafe { llama_cpp_sys_2::gguf_free(raw) };
    assert_eq!(end, bytes.len());
}

// ---- full loads through the engine --------------------------------------------------------------------

const MAX_TOKENS: usize = 8;

fn start_engine(path: &Path) -> std::result::Result<(Engine, Box<ModelInfo>), String> {
    support::engine::start(EngineConfig {
        max_tokens: MAX_TOKENS,
        max_lines: 4,
        host_cache_mb: 1,
        ..support::engine::tiny(path)
    })
}

fn complete(engine: &Engine) -> Completion {
    let req = CompletionRequest {
        doc: "file:///tmp/main.rs".into(),
        before: "fn main() {\n    let x = ".into(),
        first_line: 0,
        after: "\n    print(x)\n}\n".into(),
        max_tokens: None,
        max_lines: None,
        context: None,
    };
    engine.complete_blocking(req).expect("completion")
}

fn all_families() -> Vec<Model> {
    vec![
        families::qwen_coder(Keys::None),
        families::codegemma(Keys::Legacy),
        families::starcoder2(Keys::Fim),
        families::deepseek_coder(Keys::None),
        families::codellama(Keys::Legacy),
        families::codestral(Keys::Fim),
        families::base_llama(),
    ]
}

/// The files are real models: every architecture loads fully (weights, context) and decodes.
#[test]
fn every_family_loads_fully_and_completes_with_random_weights() {
    for m in all_families() {
        let f = m.random().write_temp(&format!("{}-full.gguf", m.name));
        let (engine, info) = start_engine(f.path()).unwrap_or_else(|e| panic!("{}: full load failed: {e}", m.name));
        assert_eq!(
            (info.architecture.as_str(), info.n_layer, info.n_ctx_train),
            (m.arch.name(), N_LAYER, N_CTX_TRAIN),
            "{}",
            m.name
        );
        let c = complete(&engine);
        assert!(c.timings.prompt_tokens > 0 && c.timings.generated_tokens <= MAX_TOKENS, "{}: {:?}", m.name, c.timings);
        engine.shutdown();
    }
}

/// A model that always writes "x" fills the middle with x's in every family's layout: the prompt was
/// built, decoded and sampled from end to end.
#[test]
fn every_family_fills_the_middle_end_to_end() {
    for m in all_families() {
        let f = m.emitting("x").write_temp(&format!("{}-x.gguf", m.name));
        let (engine, _) = start_engine(f.path()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        let c = complete(&engine);
        assert_eq!(c.text.as_deref(), Some("x".repeat(MAX_TOKENS).as_str()), "{}: {:?}", m.name, c.timings);
        engine.shutdown();
    }
}

/// Runs a model that always writes `text` and says whether the completion ended at once, empty.
fn stops_at(m: &Model, text: &str) -> std::result::Result<(), String> {
    let f = m.emitting(text).write_temp(&format!("{}-stop.gguf", m.name));
    let (engine, _) = start_engine(f.path()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    let c = complete(&engine);
    engine.shutdown();
    if c.text.is_none() && c.timings.generated_tokens == 0 {
        Ok(())
    } else {
        Err(format!(
            "{} ({:?} keys) went on after {text:?}: {} tokens generated, text {:?}",
            m.name, m.keys, c.timings.generated_tokens, c.text
        ))
    }
}

/// When the model writes its family's end-of-fill token, the completion ends there, empty.
#[test]
fn every_family_stops_at_its_end_of_fill_token() {
    let wrong: Vec<String> = all_families()
        .iter()
        .filter(|m| m.name != "codegemma") // below
        .filter_map(|m| stops_at(m, m.end).err())
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// CodeGemma ends a fill with `<|file_separator|>`, which llama.cpp does not count as end of generation
/// (the converter's `fsep` id has no GGUF key; llama.cpp only knows Qwen's `<|file_sep|>`), and the token is
/// user-defined, so its text would land in the suggestion: the engine stops at it by its text.
#[test]
fn codegemma_stops_at_its_file_separator() {
    stops_at(&families::codegemma(Keys::Legacy), "<|file_separator|>").unwrap();
}

/// CodeLlama files converted before the converter wrote `eot_token_id` (or by other tools) leave
/// llama.cpp to find `▁<EOT>` by text, and its list has "_<EOT>" with an ASCII underscore, not "▁": the
/// engine finds it by its own text.
#[test]
fn codellama_without_id_keys_stops_at_eot() {
    stops_at(&families::codellama(Keys::None), "▁<EOT>").unwrap();
}

/// A model that starts a new FIM frame is done with this one.
#[test]
fn a_fim_token_in_the_output_ends_the_fill() {
    for m in [families::qwen_coder(Keys::None), families::codestral(Keys::Fim)] {
        let [(_, pre), ..] = m.fim.unwrap();
        let f = m.emitting(pre).write_temp(&format!("{}-pre.gguf", m.name));
        let (engine, _) = start_engine(f.path()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
        let c = complete(&engine);
        assert_eq!((c.text.as_deref(), c.timings.generated_tokens), (None, 0), "{}", m.name);
        engine.shutdown();
    }
}

/// Codestral's tokens are not among the texts llama.cpp recognises, so a file without FIM id keys (what
/// convert_hf_to_gguf.py writes for it) reaches the engine with no FIM tokens from llama.cpp: the engine
/// looks the known families' texts up in the vocabulary, and the file gets Codestral's SPM layout.
#[test]
fn codestral_without_id_keys() {
    let m = families::codestral(Keys::None);
    check_family(&m, FimFamily::Codestral);
    // And through a full load: the middle is filled, and a new frame ends it.
    let f = m.emitting("x").write_temp("codestral-nokeys-x.gguf");
    let (engine, info) = start_engine(f.path()).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    assert_eq!(info.fim.pre.map(|t| t.text).as_deref(), Some("[PREFIX]"));
    let c = complete(&engine);
    engine.shutdown();
    assert_eq!(c.text.as_deref(), Some("x".repeat(MAX_TOKENS).as_str()), "{:?}", c.timings);
    stops_at(&m, "[PREFIX]").unwrap();
}

/// With the /infill layout a keystroke on the cursor's line keeps every token of the previous prompt and
/// decodes only what was typed; the native PSM layout changes the prompt before the suffix, so the cache has
/// to cut there and splice the suffix's cells back (a KV shift and a second pass).
#[test]
fn the_infill_layout_keeps_the_whole_previous_prompt_on_a_keystroke() {
    use lokal_engine::fim::FimLayout;
    let f = families::qwen_coder(Keys::None).emitting("x").write_temp("qwen-infill.gguf");
    let keystroke = |layout: FimLayout| {
        let cfg = EngineConfig { max_tokens: MAX_TOKENS, fim_layout: layout, ..support::engine::tiny(f.path()) };
        let (engine, _) = support::engine::start(cfg).expect("model loads");
        // "1" is not what the model suggested ("x…"), so the engine must ask the model again.
        let req = |before: &str| CompletionRequest {
            doc: "file:///tmp/main.rs".into(),
            before: before.into(),
            first_line: 0,
            after: "\n    print(x)\n    return x * 2\n}\n".into(),
            max_tokens: None,
            max_lines: None,
            context: None,
        };
        let first = engine.complete_blocking(req("fn main() {\n    let x = ")).expect("completion");
        let second = engine.complete_blocking(req("fn main() {\n    let x = 1")).expect("completion");
        // Enter, then the next line: the middle keeps its start, so this appends too.
        let third = engine.complete_blocking(req("fn main() {\n    let x = 1;\n    let y")).expect("completion");
        engine.shutdown();
        (first.timings, second.timings, third.timings)
    };
    let (n1, n2, n3) = keystroke(FimLayout::Native);
    let (i1, i2, i3) = keystroke(FimLayout::Infill);
    assert!(i2.reused_tokens >= i1.prompt_tokens, "infill keeps the previous prompt: {i1:?} then {i2:?}");
    assert_eq!(i2.reused_tokens + i2.redecoded_tokens, i2.prompt_tokens, "{i2:?}");
    assert!(n2.reused_tokens < n1.prompt_tokens, "native PSM cuts the cache before the suffix: {n2:?}");
    assert!(i2.redecoded_tokens < n2.redecoded_tokens, "infill {i2:?} against native {n2:?}");
    // the "1" may merge with what follows it; everything before it stays
    assert!(i3.reused_tokens + 1 >= i2.prompt_tokens, "a new line appends: {i2:?} then {i3:?}");
    assert!(i3.redecoded_tokens < n3.redecoded_tokens, "infill {i3:?} against native {n3:?}");
}
