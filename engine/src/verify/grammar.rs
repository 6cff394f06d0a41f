//! Ending a generated body at its closing brace. A llama.cpp grammar (GBNF, `LlamaSampler::grammar` in
//! llama-cpp-2 0.1.160) can make the model unable to emit anything but a balanced body followed by the
//! brace that closes it, so generation stops there instead of running on into the next item; that needs
//! the model thread (which samples greedily off the logits today) to filter its picks through
//! [`brace_body_grammar`]. [`body_end`] is the same rule applied after the fact, usable with any engine.
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

/// GBNF for the text after a function's opening `{`: balanced braces (strings and line comments may hold
/// any brace) and then the closing `}`. For brace languages: Rust, TypeScript/JavaScript, Go.
pub const BRACE_BODY: &str = r#"root ::= item* "}"
item ::= [^{}"/] | "/" [^/{}"] | "//" [^\n]* "\n" | "{" item* "}" | str
str ::= "\"" ( [^"\\\n] | "\\" [^\n] )* "\""
"#;

/// llama.cpp's sampler for [`BRACE_BODY`]: in a chain before the picking sampler it leaves only tokens
/// that keep a balanced body possible, and once the closing brace is out, only end-of-generation.
/// Measured on Gemma 3 (262k-token vocabulary, 2 busy cores): as the first sampler of a greedy chain it
/// cost about 23 s per token, because it checks every token of the vocabulary each step; a model-thread
/// integration must first ask it about the unconstrained best token alone and scan only on refusal, as
/// llama.cpp's own common sampler does.
pub fn brace_body_grammar(model: &LlamaModel) -> Result<LlamaSampler, String> {
    LlamaSampler::grammar(model, BRACE_BODY, "root").map_err(|e| format!("llama.cpp refused the body grammar: {e}"))
}

/// Where a body that follows an opening `{` ends: the byte index just past the `}` that closes it, or
/// `None` while it is still open. Braces in string literals and `//` comments do not count, as in
/// [`BRACE_BODY`].
pub fn body_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i + 1),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_ends_at_the_brace_that_closes_it() {
        let gen = "    if x { return \"}\"; } // }\n    y\n}\n\nfn next() {}\n";
        let end = body_end(gen).unwrap();
        assert_eq!(&gen[..end], "    if x { return \"}\"; } // }\n    y\n}");
        assert_eq!(body_end("    let v = vec![1];\n    match v {"), None);
    }
}
