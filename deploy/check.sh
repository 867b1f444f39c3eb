#!/usr/bin/env bash
# Checks what of deploy/ can be checked without Docker, and exits non-zero on any
# failure:
#   1. prometheus.yml: `promtool check config` (on a copy with a placeholder scrape key
#      where the operator's key will be), which also checks the rule files it loads;
#   2. the alert rules: `promtool check rules`, then their unit tests
#      (`promtool test rules deploy/prometheus/tests/*.yml`);
#   3. the Grafana dashboard: valid JSON, unique panel ids, every PromQL expression
#      parses (`promtool check rules` on a rule file made of them);
#   4. every `deltran_*` metric the dashboard, rules and tests name exists in
#      src/metrics.rs, with the labels they use;
#   5. docker-compose.yml and the Grafana provisioning files parse as YAML; the files
#      the compose file mounts exist; the mounts match the paths the configs read;
#      passwords come from the environment, never from the file.
# Not checked here (no Docker on this machine): that the images build, pull and
# start, that `docker compose config` accepts the file, that Grafana loads the
# dashboard and Prometheus scrapes the engine.
#
# promtool comes from Debian's `prometheus` package. If it is missing, the package
# is downloaded and only promtool is unpacked into a cache directory
# ($DELTRAN_TOOLS_DIR, default ~/.cache/deltran-tools): installing the package would
# also enable a Prometheus server on hosts with systemd.
set -euo pipefail
cd "$(dirname "$0")"
DEPLOY=$PWD
ROOT=$(cd .. && pwd)

failures=0
step() { printf '\n== %s\n' "$*"; }
failed() {
  echo "FAILED: $*" >&2
  failures=$((failures + 1))
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

find_promtool() {
  local tools=${DELTRAN_TOOLS_DIR:-$HOME/.cache/deltran-tools}
  for candidate in "$(command -v promtool || true)" /usr/bin/promtool "$tools/usr/bin/promtool"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      PROMTOOL=$candidate
      return
    fi
  done
  echo "promtool missing: unpacking it from Debian's prometheus package into $tools"
  local download
  download=$(mktemp -d)
  if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
    as_root apt-get update -qq
    (cd "$download" && apt-get download prometheus >/dev/null)
  fi
  mkdir -p "$tools"
  dpkg-deb --fsys-tarfile "$download"/prometheus_*.deb | tar -x -C "$tools" ./usr/bin/promtool
  rm -rf "$download"
  PROMTOOL=$tools/usr/bin/promtool
}

find_python_with_yaml() {
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
      PYTHON=$candidate
      return
    fi
  done
  echo "python3 with the yaml module missing: installing python3-yaml"
  as_root apt-get install -y -qq python3-yaml >/dev/null
  PYTHON=/usr/bin/python3
}

find_promtool
find_python_with_yaml
"$PROMTOOL" --version 2>&1 | head -1

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

step "prometheus.yml (promtool check config)"
# The scrape key is the operator's (deploy/secrets, never committed): a placeholder
# stands where compose mounts it, relative to the config file.
mkdir -p "$scratch/config/secrets"
cp prometheus/prometheus.yml "$scratch/config/"
cp -r prometheus/rules "$scratch/config/"
echo placeholder >"$scratch/config/secrets/metrics-key"
"$PROMTOOL" check config "$scratch/config/prometheus.yml" || failed "promtool check config"

step "alert rules (promtool check rules)"
"$PROMTOOL" check rules prometheus/rules/*.yml || failed "promtool check rules"

step "alert rule tests (promtool test rules)"
"$PROMTOOL" test rules prometheus/tests/*.yml || failed "promtool test rules"

step "dashboard, metric names and labels, compose and provisioning files"
"$PYTHON" - "$DEPLOY" "$ROOT/src/metrics.rs" "$scratch/dashboard-rules.yml" <<'PY' || failed "dashboard, metric or compose check"
import glob, json, os, re, sys
import yaml

deploy, metrics_rs, dashboard_rules = sys.argv[1:4]
errors = []

# The engine's metrics and their labels, as src/metrics.rs declares them: each name
# literal, then the label list (`&["a", "b"]`) before the next name, if any.
source = open(metrics_rs).read().split("#[cfg(test)]")[0]
names = [(m.start(), m.group(1)) for m in re.finditer(r'"(deltran_[a-z0-9_]+)"', source)]
labels_of = {}
for i, (at, name) in enumerate(names):
    end = names[i + 1][0] if i + 1 < len(names) else len(source)
    declared = re.search(r'&\[([^\]]*)\]', source[at:end])
    labels = set(re.findall(r'"([a-z_]+)"', declared.group(1))) if declared else set()
    kind = "histogram" if re.search(r'Histogram', source[max(0, at - 200):at]) else "other"
    labels_of[name] = (labels, kind)
if len(labels_of) < 20:
    errors.append(f"found only {len(labels_of)} metrics in {metrics_rs}")

SCRAPE_LABELS = {"instance", "job"}

def metric_labels(series):
    """The labels of a series as the engine exports it, or None if it does not."""
    if series in labels_of:
        return labels_of[series][0] | SCRAPE_LABELS
    for suffix in ("_bucket", "_sum", "_count"):
        base = series[: -len(suffix)] if series.endswith(suffix) else None
        if base in labels_of and labels_of[base][1] == "histogram":
            return labels_of[base][0] | SCRAPE_LABELS | ({"le"} if suffix == "_bucket" else set())
    return None

def check_expression(where, expr):
    used = set()
    for m in re.finditer(r'\b(deltran_[a-z0-9_]+)\b(\{[^}]*\})?', expr):
        series, selector = m.group(1), m.group(2) or ""
        labels = metric_labels(series)
        if labels is None:
            errors.append(f"{where}: {series} is not a metric of src/metrics.rs")
            continue
        used |= labels
        for label in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)', selector):
            if label not in labels:
                errors.append(f"{where}: {series} has no label {label}")
    if used:
        for group in re.findall(r'\b(?:by|without)\s*\(([^)]*)\)', expr):
            for label in re.findall(r'[a-zA-Z_][a-zA-Z0-9_]*', group):
                if label not in used:
                    errors.append(f"{where}: grouping by {label}, which none of its metrics has")

# The dashboard.
path = os.path.join(deploy, "grafana/dashboards/deltran.json")
try:
    dashboard = json.load(open(path))
except ValueError as e:
    sys.exit(f"{path}: not valid JSON: {e}")
panels = dashboard.get("panels", [])
ids = [p.get("id") for p in panels]
if len(ids) != len(set(ids)):
    errors.append(f"{path}: panel ids are not unique")
rules = []
for panel in panels:
    for target in panel.get("targets", []):
        where = f"dashboard panel {panel['id']} ({panel['title']}) {target['refId']}"
        expr = target["expr"]
        check_expression(where, expr)
        # Grafana's variables, as Grafana would fill them in.
        promql = expr.replace("$__rate_interval", "1m").replace('"$instance"', '".*"')
        if "$" in promql:
            errors.append(f"{where}: unknown variable in {expr}")
        rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": promql})
if len(rules) < 20:
    errors.append(f"{path}: only {len(rules)} queries")
with open(dashboard_rules, "w") as out:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, out)
print(f"dashboard: {len(panels)} panels, {len(rules)} queries")

# The alert rules and their tests.
for path in glob.glob(os.path.join(deploy, "prometheus/rules/*.yml")):
    for group in yaml.safe_load(open(path))["groups"]:
        for rule in group["rules"]:
            check_expression(f"{os.path.basename(path)}: {rule.get('alert') or rule.get('record')}", rule["expr"])
for path in glob.glob(os.path.join(deploy, "prometheus/tests/*.yml")):
    for test in yaml.safe_load(open(path))["tests"]:
        for series in test.get("input_series", []):
            check_expression(os.path.basename(path), series["series"])

# The compose file and what it mounts.
compose = yaml.safe_load(open(os.path.join(deploy, "docker-compose.yml")))
services = compose["services"]
expected = {"engine", "postgres", "prometheus", "grafana"}
if set(services) != expected:
    errors.append(f"compose services are {sorted(services)}, expected {sorted(expected)}")
targets = {}
for name, service in services.items():
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1]
        else:
            source, target = volume.get("source", ""), volume["target"]
        targets.setdefault(name, set()).add(target)
        if source.startswith("."):
            if source.startswith("./secrets/"):
                if isinstance(volume, str):
                    errors.append(f"{name}: mount {source} with the long syntax, or a missing key becomes a directory")
                continue  # the operator's, never committed
            if not os.path.exists(os.path.join(deploy, source)):
                errors.append(f"{name}: mounts {source}, which does not exist")
    environment = service.get("environment", {})
    for key, value in environment.items():
        value = str(value)
        if "PASSWORD" in key and not re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value):
            errors.append(f"{name}: {key} must come from the environment as ${{NAME:?message}}")
        if key == "DATABASE_URL" and not re.search(r"://[^:@/]+:\$\{[A-Z_]+:\?[^}]*\}@", value):
            errors.append(f"{name}: DATABASE_URL must take its password from the environment")
if services.get("engine", {}).get("build", {}).get("dockerfile") != "Dockerfile" or not os.path.exists(
    os.path.join(deploy, services["engine"]["build"]["context"], "Dockerfile")
):
    errors.append("engine: must build the repository's Dockerfile")

# The paths the configs read are where compose mounts things.
prometheus = yaml.safe_load(open(os.path.join(deploy, "prometheus/prometheus.yml")))
for pattern in prometheus.get("rule_files", []):
    if not glob.glob(os.path.join(deploy, "prometheus", pattern)):
        errors.append(f"prometheus.yml: rule_files {pattern} matches no file")
    mounted = os.path.join("/etc/prometheus", os.path.dirname(pattern))
    if mounted not in targets.get("prometheus", set()):
        errors.append(f"prometheus.yml: rule_files {pattern}: {mounted} is not mounted")
for job in prometheus["scrape_configs"]:
    key = job.get("authorization", {}).get("credentials_file")
    if key and os.path.join("/etc/prometheus", key) not in targets.get("prometheus", set()):
        errors.append(f"prometheus job {job['job_name']}: credentials_file {key} is not mounted")
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            if target.split(":")[0] not in services:
                errors.append(f"prometheus job {job['job_name']}: target {target} is no compose service")
for path in glob.glob(os.path.join(deploy, "grafana/provisioning/*/*.yml")):
    provisioning = yaml.safe_load(open(path))
    for provider in provisioning.get("providers", []):
        if provider["options"]["path"] not in targets.get("grafana", set()):
            errors.append(f"{path}: dashboards path {provider['options']['path']} is not mounted")
    for source in provisioning.get("datasources", []):
        host = re.sub(r"^https?://", "", source["url"]).split(":")[0]
        if host not in services:
            errors.append(f"{path}: data source {source['url']} is no compose service")
print(f"compose: {len(services)} services; provisioning files parse")

for error in errors:
    print("  " + error, file=sys.stderr)
sys.exit(1 if errors else 0)
PY

step "dashboard queries (promtool check rules)"
if [ -s "$scratch/dashboard-rules.yml" ]; then
  "$PROMTOOL" check rules "$scratch/dashboard-rules.yml" || failed "a dashboard query does not parse"
else
  failed "no dashboard queries to check"
fi

echo
if [ "$failures" -gt 0 ]; then
  echo "deploy/check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "deploy/check.sh: all checks passed (Docker itself is not exercised here)"
