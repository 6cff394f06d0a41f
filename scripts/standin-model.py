#!/usr/bin/env python3
"""Random-weight stand-in models for timing runs where real weights cannot travel (the lent GPU machine
takes 64 MiB of files; real coder models are gigabytes and no model hub is reachable).

Latency does not depend on weight values, only on the architecture, the shapes and the quantization types,
so a file with a real model's metadata, tokenizer and tensor layout and random weights times like the real
one. Its general.name ends in "(random-weight stand-in)" so that `lokal bench` caps generation by length
instead of relying on EOS. Never use one for anything but timing.

  standin-model.py skeleton SRC.gguf SKEL.gguf
      metadata, tokenizer and tensor list of a real file, no tensor data (a few MB; travels)
  standin-model.py fill SKEL.gguf OUT.gguf
      a loadable file with random weights from a skeleton
  standin-model.py qwen --size {0.5b,1.5b,3b,7b,14b,32b} --quant {q8_0,q4_k_m} --vocab VOCAB.gguf OUT.gguf
      Qwen2.5-Coder of that size (its published layer shapes), with llama.cpp's Qwen2 vocabulary
      (models/ggml-vocab-qwen2.gguf of the llama.cpp tree) plus Qwen2.5's FIM tokens

Needs the `gguf` and `numpy` Python packages.
"""
import argparse
import json
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

SUFFIX = " (random-weight stand-in)"
LIST_KEY = "lokal.standin.tensors"

# Qwen2.5-Coder shapes (config.json of each published model): embedding, layers, feed-forward, heads,
# kv heads, tied output embedding.
QWEN = {
    "0.5b": (896, 24, 4864, 14, 2, True),
    "1.5b": (1536, 28, 8960, 12, 2, True),
    "3b": (2048, 36, 11008, 16, 2, True),
    "7b": (3584, 28, 18944, 28, 4, False),
    "14b": (5120, 48, 13824, 40, 8, False),
    "32b": (5120, 64, 27648, 40, 8, False),
}
FIM = ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
FIM_FIRST = 151659


def field_value(field):
    """A reader field as the Python value and the GGUF value type(s) a writer needs."""
    t = field.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        return field.contents(), t, field.types[-1]
    return field.contents(), t, None


def copy_kv(reader, writer, skip=()):
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in skip or name == "general.architecture":
            continue
        value, vtype, sub = field_value(field)
        if name == "general.name":
            value = value if value.endswith(SUFFIX) else value + SUFFIX
        writer.add_key_value(name, value, vtype, sub_type=sub)


def skeleton(src, out):
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(out, arch)
    copy_kv(r, w)
    tensors = [[t.name, int(t.tensor_type), [int(x) for x in t.shape]] for t in r.tensors]
    w.add_string(LIST_KEY, json.dumps(tensors))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


def block_template(qtype, nbytes):
    """Valid random blocks: random quants, small finite scales (never NaN/Inf)."""
    bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
    nblocks = max(1, nbytes // tsize)
    rng = np.random.default_rng(int(qtype) + 7)
    b = rng.integers(0, 256, size=(nblocks, tsize), dtype=np.uint8)
    small = np.frombuffer(np.float16(0.002).tobytes(), dtype=np.uint8)
    if qtype == Q.Q8_0:
        b[:, 0:2] = small
    elif qtype in (Q.Q4_K, Q.Q5_K):
        b[:, 0:2] = small
        b[:, 2:4] = small
    elif qtype == Q.Q6_K:
        b[:, tsize - 2:tsize] = small
    elif qtype in (Q.Q4_0, Q.Q5_0):
        b[:, 0:2] = small
    else:
        raise SystemExit(f"stand-in: no block template for {qtype.name}")
    return b.reshape(-1)


def write_model(out, arch, kv_source, tensors):
    """tensors: [(name, qtype, ne)] with ne in GGUF order (ne[0] = row length)."""
    w = gguf.GGUFWriter(out, arch)
    kv_source(w)
    templates = {}
    for name, qtype, ne in tensors:
        qtype = Q(qtype)
        rows = list(reversed(ne))
        if qtype == Q.F32:
            w.add_tensor_info(name, rows, np.dtype(np.float32), int(np.prod(ne)) * 4)
        elif qtype == Q.F16:
            w.add_tensor_info(name, rows, np.dtype(np.float16), int(np.prod(ne)) * 2)
        else:
            bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
            row_bytes = ne[0] // bsize * tsize
            byte_shape = rows[:-1] + [row_bytes]
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(1)
    for name, qtype, ne in tensors:
        qtype = Q(qtype)
        n = int(np.prod(ne))
        if qtype in (Q.F32, Q.F16):
            dt = np.float32 if qtype == Q.F32 else np.float16
            if "norm" in name:
                a = np.ones(n, dtype=dt)  # norms at 1 keep activations in range
            else:
                a = (rng.standard_normal(n) * 0.02).astype(dt)
        else:
            bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
            nbytes = n // bsize * tsize
            if qtype not in templates:
                templates[qtype] = block_template(qtype, 1 << 20)
            a = np.resize(templates[qtype], nbytes)
        w.write_tensor_data(a)
    w.close()


def fill(skel, out):
    r = gguf.GGUFReader(skel)
    arch = r.fields["general.architecture"].contents()
    tensors = [(n, t, s) for n, t, s in json.loads(r.fields[LIST_KEY].contents())]
    write_model(out, arch, lambda w: copy_kv(r, w, skip=(LIST_KEY,)), tensors)


def qwen(size, quant, vocab, out):
    e, layers, ff, heads, kv, tied = QWEN[size]
    hd = e // heads
    v = gguf.GGUFReader(vocab)
    tokens = list(v.fields["tokenizer.ggml.tokens"].contents())
    types = list(v.fields["tokenizer.ggml.token_type"].contents())
    merges = list(v.fields["tokenizer.ggml.merges"].contents())
    n_vocab = 151936
    while len(tokens) < n_vocab:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(int(gguf.TokenType.USER_DEFINED))
    for i, t in enumerate(FIM):
        tokens[FIM_FIRST + i] = t
        types[FIM_FIRST + i] = int(gguf.TokenType.CONTROL)
    wq = Q.Q8_0 if quant == "q8_0" else Q.Q4_K

    def mat(name, ne, heavy=False):
        t = wq
        if quant == "q4_k_m" and heavy:
            t = Q.Q6_K  # Q4_K_M keeps attn_v, ffn_down and the output at Q6_K
        if t in (Q.Q4_K, Q.Q6_K) and ne[0] % 256:
            t = Q.Q8_0
        return (name, int(t), ne)

    ts = [mat("token_embd.weight", [e, n_vocab]), ("output_norm.weight", int(Q.F32), [e])]
    if not tied:
        ts.append(mat("output.weight", [e, n_vocab], heavy=True))
    for i in range(layers):
        p = f"blk.{i}."
        ts += [
            (p + "attn_norm.weight", int(Q.F32), [e]),
            mat(p + "attn_q.weight", [e, e]), (p + "attn_q.bias", int(Q.F32), [e]),
            mat(p + "attn_k.weight", [e, kv * hd]), (p + "attn_k.bias", int(Q.F32), [kv * hd]),
            mat(p + "attn_v.weight", [e, kv * hd], heavy=True), (p + "attn_v.bias", int(Q.F32), [kv * hd]),
            mat(p + "attn_output.weight", [e, e]),
            (p + "ffn_norm.weight", int(Q.F32), [e]),
            mat(p + "ffn_gate.weight", [e, ff]), mat(p + "ffn_up.weight", [e, ff]),
            mat(p + "ffn_down.weight", [ff, e], heavy=True),
        ]

    def kv_source(w):
        w.add_name(f"Qwen2.5-Coder-{size.upper()} {quant.upper()}{SUFFIX}")
        w.add_context_length(32768)
        w.add_embedding_length(e)
        w.add_block_count(layers)
        w.add_feed_forward_length(ff)
        w.add_head_count(heads)
        w.add_head_count_kv(kv)
        w.add_rope_freq_base(1000000.0)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0" else gguf.LlamaFileType.MOSTLY_Q4_K_M))
        w.add_quantization_version(2)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_eos_token_id(151643)
        w.add_bos_token_id(151643)
        w.add_pad_token_id(151643)
        w.add_add_bos_token(False)
        for key, tid in [("fim_pre", 0), ("fim_mid", 1), ("fim_suf", 2), ("fim_pad", 3), ("fim_rep", 4), ("fim_sep", 5)]:
            w.add_uint32(f"tokenizer.ggml.{key}_token_id", FIM_FIRST + tid)

    write_model(out, "qwen2", kv_source, ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("skeleton"); s.add_argument("src"); s.add_argument("out")
    f = sub.add_parser("fill"); f.add_argument("skel"); f.add_argument("out")
    q = sub.add_parser("qwen")
    q.add_argument("--size", choices=sorted(QWEN), required=True)
    q.add_argument("--quant", choices=["q8_0", "q4_k_m"], required=True)
    q.add_argument("--vocab", required=True)
    q.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "skeleton":
        skeleton(a.src, a.out)
    elif a.cmd == "fill":
        fill(a.skel, a.out)
    else:
        qwen(a.size, a.quant, a.vocab, a.out)


if __name__ == "__main__":
    sys.exit(main())
