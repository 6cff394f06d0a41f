"""The peer at its best (../shared/NOTES.md): patch llama-server's `format_prompt_infill` (FILE: its
tools/server/server-common.cpp) so that /infill's `prompt` goes after the middle marker, as llama.cpp documents
it (upstream PR #22761), instead of before the suffix. Used by fetch-peer.sh --fixed and gpu-bench.sh."""
import sys

p = sys.argv[1]
s = open(p).read()
drop = "    tokens_prefix.insert(tokens_prefix.end(),   tokens_prompt.begin(), tokens_prompt.end());\n"
mid = "    embd_inp.push_back(llama_vocab_fim_mid(vocab));\n"
assert s.count(drop) == 1 and s.count(mid) == 1, "format_prompt_infill changed: patch it by hand"
s = s.replace(drop, "").replace(mid, mid + "    embd_inp.insert(embd_inp.end(), tokens_prompt.begin(), tokens_prompt.end());\n")
open(p, "w").write(s)
