#!/usr/bin/env bash
# System packages the build needs on a fresh Debian/Ubuntu machine: llama-cpp-sys-2 builds llama.cpp with
# CMake and generates its bindings with bindgen (libclang). Idempotent: installs only what is missing.
set -euo pipefail

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || need+=(libclang-dev)
command -v python3 >/dev/null || need+=(python3 python3-pip)
# The editor tests: the VS Code extension builds with Node's npm; unshare (util-linux) runs the no-network test.
command -v npm >/dev/null || need+=(nodejs npm)
command -v unshare >/dev/null || need+=(util-linux)
# Real editors in scripts/test-editors.sh: Neovim 0.12 from Debian testing is unpacked with dpkg-deb and
# patched with patchelf; VS Code (code-server from npm) builds its native modules (g++, make, Kerberos
# headers), takes Debian's ripgrep in place of a download, and is driven in Debian's Chromium.
command -v patchelf >/dev/null || need+=(patchelf)
command -v chromium >/dev/null || need+=(chromium)
command -v rg >/dev/null || need+=(ripgrep)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v curl >/dev/null || need+=(curl)
command -v tmux >/dev/null || need+=(tmux) # Helix is driven in tmux
[[ -e /usr/include/gssapi/gssapi.h ]] || need+=(libkrb5-dev)

if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi

if ! command -v cargo >/dev/null; then
  echo "setup: a Rust toolchain (cargo) is needed: see https://rustup.rs" >&2
  exit 1
fi
