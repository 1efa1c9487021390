#!/usr/bin/env bash
# Regenerate the hashed lock files from the requirement files. The locks, not
# the requirement files, are what `make test`, `make run` and the Lambda image install, with
# `pip install --require-hashes`; tests/test_lock.py fails when the two disagree.
#
#   requirements.lock        <- requirements.txt: runtime, the venv (Python 3.11) and the
#                               Lambda image (Python 3.12); universal, so markers pick per Python.
#   requirements-dev.lock    <- requirements-dev.txt (which includes requirements.txt and
#                               tools/requirements-train.txt), constrained to requirements.lock,
#                               so installing it after the runtime lock changes no runtime package.
#   requirements-build.lock  <- pyproject.toml [build-system] requires (the editable install
#                               runs without build isolation, from these hashed pins).
#
# Existing pins are kept (uv prefers what the lock already says); bump a pin in the
# requirement file and rerun, or UPGRADE=1 tools/lock.sh to move every transitive pin.
# torch==2.13.0+cpu is not on PyPI: its wheel is found in TORCH_FIND_LINKS (default
# /opt/wheels, where these machines keep it; elsewhere a folder holding
# torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl from PyTorch's CPU index). Its hash
# is that file's sha256.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
UV="${UV:-${ROOT}/.venv/bin/uv}"
[[ -x "${UV}" ]] || { echo "uv not found at ${UV}: run 'make .venv/.dev' first (uv is a dev pin)" >&2; exit 1; }

common=(--universal --python-version 3.11 --generate-hashes --quiet
  --custom-compile-command "tools/lock.sh")
[[ "${UPGRADE:-0}" == "1" ]] && common+=(--upgrade)

"${UV}" pip compile requirements.txt "${common[@]}" -o requirements.lock
"${UV}" pip compile requirements-dev.txt -c requirements.lock \
  --find-links "${TORCH_FIND_LINKS:-/opt/wheels}" "${common[@]}" -o requirements-dev.lock
"${ROOT}/.venv/bin/python" -c '
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))
' | "${UV}" pip compile - -c requirements-dev.lock "${common[@]}" -o requirements-build.lock
echo "locks written: requirements.lock requirements-dev.lock requirements-build.lock"
