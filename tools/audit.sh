#!/usr/bin/env bash
# Dependency audit (`make audit`): known vulnerabilities in the Python packages of .venv
# (installed from requirements.txt + requirements-dev.txt, transitive ones included) and
# in the npm packages of package-lock.json (the pinned CDK CLI).
#
#   pip-audit asks the PyPI JSON API (per-release "vulnerabilities"), then OSV if PyPI
#   could not answer for every package; answers are cached in .cache/pip-audit, so a
#   second run works offline. npm audit asks the npm registry's bulk advisory endpoint.
#   Known findings that do not apply are listed in audit-allowlist.txt, one id a line
#   with its reason ("GHSA-xxxx-xxxx-xxxx  why it does not apply here").
#
# Exit status: 0 clean; 1 a vulnerability that is not allow-listed (the fix version is
# printed); 2 the audit is incomplete (no service answered for some packages) unless
# AUDIT_ALLOW_INCOMPLETE=1, which turns that into a warning.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${ROOT}/.venv/bin"
ALLOW="${ROOT}/audit-allowlist.txt"
CACHE="${ROOT}/.cache/pip-audit"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
mkdir -p "${CACHE}"

allowed=()
while read -r id _; do
  [[ -z "${id}" || "${id}" == \#* ]] && continue
  allowed+=("${id}")
done <"${ALLOW}"
ignore=()
for id in "${allowed[@]}"; do ignore+=(--ignore-vuln "${id}"); done

status=0
incomplete=0

# --- Python ------------------------------------------------------------------------
python_done=0
for service in ${AUDIT_SERVICES:-pypi osv}; do
  echo "== pip-audit (${service}) over ${BIN%/bin} =="
  "${BIN}/pip-audit" -s "${service}" --skip-editable --progress-spinner off \
    --cache-dir "${CACHE}" --timeout 30 -f json -o "${WORK}/${service}.json" \
    "${ignore[@]}" 2>"${WORK}/${service}.err"
  if [[ ! -s "${WORK}/${service}.json" ]]; then
    echo "   ${service} did not answer: $(tail -n 1 "${WORK}/${service}.err")"
    continue
  fi
  "${BIN}/python" - "${WORK}/${service}.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
deps = report["dependencies"]
vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
skipped = [d for d in deps if "skip_reason" in d]
for d, v in vulns:
    fix = ", ".join(v.get("fix_versions") or []) or "no fixed release yet"
    print(f"   VULNERABLE {d['name']}=={d['version']} {v['id']} -> fix: {fix}")
print(f"   {len(deps) - len(skipped)} packages audited, {len(vulns)} vulnerabilities, "
      f"{len(skipped)} not auditable by this service")
open(sys.argv[1] + ".verdict", "w").write(f"{len(vulns)} {len(skipped)}")
PY
  read -r found skipped <"${WORK}/${service}.json.verdict"
  if ((found > 0)); then status=1; fi
  if ((skipped == 0)); then python_done=1; break; fi
done
if ((python_done == 0)); then
  echo "   INCOMPLETE: no vulnerability service answered for every Python package"
  incomplete=1
fi

# --- npm ---------------------------------------------------------------------------
if [[ -f "${ROOT}/package-lock.json" ]] && command -v npm >/dev/null; then
  echo "== npm audit (package-lock.json) =="
  (cd "${ROOT}" && npm audit --package-lock-only --json >"${WORK}/npm.json" 2>"${WORK}/npm.err")
  "${BIN}/python" - "${WORK}/npm.json" "${allowed[@]}" <<'PY'
import json, sys
path, allowed = sys.argv[1], set(sys.argv[2:])
try:
    report = json.load(open(path))
except ValueError:
    report = {}
if "vulnerabilities" not in report:
    print(f"   npm audit did not answer: {report.get('message', 'no report')[:160]}")
    open(path + ".verdict", "w").write("0 1")
    sys.exit()
found = 0
for name, item in report["vulnerabilities"].items():
    for via in item.get("via", []):
        if isinstance(via, dict):
            ghsa = via.get("url", "").rsplit("/", 1)[-1]
            if ghsa in allowed:
                continue
            found += 1
            fix = item.get("fixAvailable")
            print(f"   VULNERABLE {name} {ghsa} {via.get('severity')} -> fix: {fix}")
print(f"   {found} npm vulnerabilities not allow-listed")
open(path + ".verdict", "w").write(f"{found} 0")
PY
  read -r found skipped <"${WORK}/npm.json.verdict"
  if ((found > 0)); then status=1; fi
  if ((skipped > 0)); then incomplete=1; echo "   INCOMPLETE: npm advisories not checked"; fi
fi

if ((status == 0 && incomplete == 1)); then
  if [[ "${AUDIT_ALLOW_INCOMPLETE:-0}" == "1" ]]; then
    echo "audit: no known vulnerabilities among what could be checked (INCOMPLETE, allowed)"
  else
    echo "audit: INCOMPLETE (see above); AUDIT_ALLOW_INCOMPLETE=1 accepts that" >&2
    status=2
  fi
elif ((status == 0)); then
  echo "audit: no known vulnerabilities"
else
  echo "audit: vulnerabilities found (upgrade the pin, or allow-list with a reason)" >&2
fi
exit "${status}"
