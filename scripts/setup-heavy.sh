#!/usr/bin/env bash
# Create the heavy CPU environment for the real ms-swift / lmms-eval tests (make test-heavy).
# Idempotent: does nothing when .venv-heavy already matches scripts/requirements-heavy.txt.
#   VENV_HEAVY=.venv-heavy  HEAVY_PYTHON=python3.11  scripts/setup-heavy.sh
# Why this shape: `pip install ms-swift lmms-eval` resolves torch 2.15 + ~3 GB of CUDA wheels. We pin
# the CPU torch wheel first and install the pinned closure with --no-deps, which keeps the env CPU-only
# and skips dependency resolution (about 2 minutes from scratch on our CI machines).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV_HEAVY:-.venv-heavy}"
PYTHON="${HEAVY_PYTHON:-python3.11}"
REQ=scripts/requirements-heavy.txt
TORCH="torch==2.13.0"
STAMP="$VENV/.installed"
want="$(sha256sum "$REQ" | cut -d' ' -f1) $TORCH"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "setup-heavy: $VENV is up to date"
    exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
# The pinned version resolves to the local CPU wheel (pip find-links) on our machines; elsewhere add
# --index-url https://download.pytorch.org/whl/cpu.
"${PIP[@]}" install "$TORCH"
"${PIP[@]}" install --no-deps -r "$REQ"
# gdo-opt itself (editable, no deps): its solvers/ and presets/ folders are mapped into the package.
"${PIP[@]}" install --no-deps -e .
# Smoke check: the tools import and the CPU torch was kept.
"$VENV/bin/python" - <<'PY'
import torch, swift, lmms_eval, transformers  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"setup-heavy: torch {torch.__version__}, transformers {transformers.__version__}")
PY
echo "$want" > "$STAMP"
echo "setup-heavy: created $VENV in $(( $(date +%s) - start ))s"
