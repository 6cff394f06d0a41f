#!/usr/bin/env bash
# Build, lint (ESLint with type-checked rules, then strict tsc), unit-test and package the extension into
# editors/vscode/lokal.vsix.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error
npm run --silent lint
npm run --silent build
npm test
if [[ "${1:-}" != "--no-package" ]]; then
  npx vsce package --no-dependencies --out lokal.vsix --allow-missing-repository
fi
