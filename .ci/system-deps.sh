#!/usr/bin/env bash
# System packages the test suite needs, installed with apt when missing:
#   - PostgreSQL 15 server binaries (initdb, pg_ctl): the database tests start a real server;
#   - Node.js and npm: aws-cdk-lib (jsii) spawns node; the pinned CDK CLI comes from npm;
#   - Chromium: the web UI's browser tests drive Debian's chromium with Playwright.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { echo "system user 'postgres' is missing (install the postgresql package)"; exit 1; }
