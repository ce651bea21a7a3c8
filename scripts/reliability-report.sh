#!/usr/bin/env bash
# Regenerates RELIABILITY.md from the test suite's own records.
#
#   scripts/reliability-report.sh [FUZZ_SECONDS]
#
# Runs the property tests (src/fuzzing.rs) and the reliability tests
# (tests/reliability/, including the v2 HTTP front-end) with SPALLOC_RELIABILITY_LOG set, so that every test
# appends one JSON line per case it tried; then, if FUZZ_SECONDS (argument or
# environment) is more than 0, runs each cargo-fuzz target in fuzz/ for that
# long; then renders the records as markdown. Nothing in RELIABILITY.md is
# written by hand. A failing test or fuzz target still gets its row (marked
# FAIL), and the script then exits non-zero.
#
# Set SPALLOC_LOAD_SECS for a longer load run (default 12 s).
# Fuzzing needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable
# toolchain it runs with RUSTC_BOOTSTRAP=1.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzz_secs="${1:-${FUZZ_SECONDS:-0}}"
# The raw records stay beside the build, for a closer look.
log="${CARGO_TARGET_DIR:-$PWD/target}/reliability-records.jsonl"
mkdir -p "$(dirname "$log")"
: >"$log"
export SPALLOC_RELIABILITY_LOG="$log"
status=0

# One test per core at a time, as in .ci/run: these load the machine (the
# repository's default of more threads is for tests that mostly wait).
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-$(nproc)}"
cargo test --lib fuzzing || status=1
cargo test --test reliability || status=1

if [ "$fuzz_secs" -gt 0 ]; then
    fuzz_target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
    for target in client_decoder server_requests http_requests proxy_frames; do
        out="$(mktemp)"
        (cd fuzz && mkdir -p "corpus/$target" && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" --target-dir "$fuzz_target_dir" -- \
            -max_total_time="$fuzz_secs" -max_len=4096 -timeout=10 -print_final_stats=1) >"$out" 2>&1
        code=$?
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)"
        rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$out" | tail -n 1)"
        cov="$(grep -o 'cov: [0-9]*' "$out" | tail -n 1 | cut -d' ' -f2)"
        corpus="$(find "fuzz/corpus/$target" -type f | wc -l)"
        crashes="$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)"
        outcome=pass
        if [ "$code" -ne 0 ] || [ "$crashes" -ne 0 ]; then
            outcome=fail
            status=1
            tail -n 40 "$out" >&2
        fi
        printf '{"suite":"fuzz","case":"%s","outcome":"%s","seconds":%s,"runs":%s,"detail":{"coverage (edges)":%s,"corpus files":%s,"crash artifacts":%s,"peak RSS MiB":%s}}\n' \
            "$target" "$outcome" "$fuzz_secs" "${runs:-0}" "${cov:-0}" "$corpus" "$crashes" "${rss:-0}" >>"$log"
        rm -f "$out"
    done
fi

command="scripts/reliability-report.sh${1:+ $1}"
machine="$(uname -srm); $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)); $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(rustc --version)"
python3 - "$log" "$command" "$machine" "${SPALLOC_LOAD_SECS:-12}" "$fuzz_secs" >RELIABILITY.md <<'EOF'
import datetime
import json
import re
import sys

log, command, machine, load_secs, fuzz_secs = sys.argv[1:6]
records = [json.loads(line) for line in open(log) if line.strip()]
by_suite = {}
for r in records:
    by_suite.setdefault(r["suite"], []).append(r)

out = []
w = out.append
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
w("# Reliability\n")
w("What was tried against `spalloc` (library, `spalloc alloc`, virtual server), how")
w("many times, and what happened. **Generated, not written by hand**: every row")
w("below is a record that a test appended while it ran.\n")
w(f"- Regenerate with: `{command}`")
w(f"- Generated: {now}")
w(f"- Machine: {machine}\n")

def ok(r):
    return r.get("outcome") == "pass"

def count_cases(rs):
    return sum(int(r.get("cases", r.get("runs", 1))) for r in rs)

titles = [
    ("matrix-library", "Fault x phase matrix: library `Job`"),
    ("matrix-cli", "Fault x phase matrix: `spalloc alloc`"),
    ("matrix-library-v2", "Fault x phase matrix over v2: library `Job`"),
    ("matrix-cli-v2", "Fault x phase matrix over v2: `spalloc alloc`"),
    ("restart", "Server restart with persistence"),
    ("holders", "Holders: blocked threads, panics, SIGKILL"),
    ("signals", "Signals"),
    ("signals-stalled", "Signals against a stalled server"),
    ("hostile-text", "Hostile text from servers and config files"),
    ("hostile", "Hostile clients against the virtual server"),
    ("http", "The v2 (HTTP) front-end under abuse and load"),
    ("load", "Load"),
    ("streams", "Client reading arbitrary byte streams"),
    ("properties", "Property tests"),
    ("fuzz", "Fuzzing"),
]
w("## Summary\n")
w("| Area | Tests | Inputs or cases tried | Passed | Failed |")
w("|---|---:|---:|---:|---:|")
total_fail = 0
for key, title in titles:
    rs = by_suite.get(key, [])
    if not rs:
        continue
    fails = sum(not ok(r) for r in rs)
    total_fail += fails
    w(f"| {title} | {len(rs)} | {count_cases(rs):,} | {len(rs) - fails} | {fails} |")
w("")
w(f"**{'All passed.' if total_fail == 0 else f'{total_fail} FAILED.'}**\n")

def matrix(key, title, intro):
    rs = by_suite.get(key, [])
    if not rs:
        return
    phases, faults = [], []
    for r in rs:
        if r["phase"] not in phases:
            phases.append(r["phase"])
        if r["fault"] not in faults:
            faults.append(r["fault"])
    cell = {(r["phase"], r["fault"]): r for r in rs}
    w(f"## {title}\n")
    w(intro + "\n")
    w("| phase \\ fault | " + " | ".join(faults) + " |")
    w("|---|" + "---|" * len(faults))
    errors = {}
    for p in phases:
        row = []
        for f in faults:
            r = cell.get((p, f))
            if r is None:
                row.append("")
                continue
            d = r.get("detail", {})
            if not ok(r):
                row.append("**FAIL**")
                continue
            text = "ok" if not d.get("error") else "error"
            if d.get("call") == "none":
                # No call was under fault: the job was only being held.
                row.append("job kept")
                continue
            if "exit" in d and d["exit"] != 0:
                text = f"exit {d['exit']}"
            rel = d.get("released")
            if rel == "by expiry":
                text += ", expired"
            text += f" ({d.get('call_secs', 0):.2f} s)"
            row.append(text)
            if d.get("error"):
                # One entry per message, whatever port the cell's proxy had.
                message = re.sub(r"127\.0\.0\.1:[0-9]+", "127.0.0.1:PORT", d["error"])
                errors.setdefault(message, []).append(f"{p} x {f}")
        w(f"| {p} | " + " | ".join(row) + " |")
    w("")
    fails = [r for r in rs if not ok(r)]
    for r in fails:
        w(f"- FAIL {r['phase']} x {r['fault']}: {r['detail'].get('why')}")
    if errors:
        w("Errors reported to the caller (each a clear error, none a panic):\n")
        for e, where in sorted(errors.items()):
            w(f"- `{e}` ({len(where)}: {', '.join(where)})")
    w("")

matrix("matrix-library", "Fault x phase matrix: library `Job`",
       "Each cell: its own virtual server and fault proxy; keepalive 2 s, timeout 1 s, "
       "reconnect delay 0.1 s; a fault lasts 0.4 s (delay: 0.15 s per line). `ok`: the call "
       "under fault succeeded; `error`: it failed with the error listed below; `job kept`: no call "
       "was under fault, the job was only being held; `expired`: the "
       "client could not tell the server, which expired the job after its keepalive. The time is "
       "how long the call under fault took. Every cell then checked: the job (if any) was alive "
       "one keepalive after the fault cleared, keepalives reached the server, the job's own "
       "connection answered again, dropping the job destroyed it at once, and the server "
       "(asked directly) held no job at the end.")
matrix("matrix-cli", "Fault x phase matrix: `spalloc alloc`",
       "`spalloc alloc --keepalive 2 --timeout 1 --reconnect-delay 0.1 -c …` through the proxy. "
       "The time is the whole run. Phases that begin with a job held must exit 0 with the "
       "command run; every cell checked that nothing panicked and no job was left behind.")
matrix("matrix-library-v2", "Fault x phase matrix over v2: library `Job`",
       "The same cells and checks as over v1, with the `Job` speaking v2 (form login, "
       "`keepalive-interval` 2 s) through the proxy in front of the virtual server's plain-HTTP "
       "v2 listener. Faults armed on a phase fire on its HTTP request line (`GET "
       "/spalloc/system/login.html`, `POST …/jobs`, `PUT …/keepalive`, `POST "
       "…/machine/power`, `DELETE …/jobs/ID`); a drop, reset or refusal starts as the "
       "reply begins, so the server has acted on the whole request. Garbage and a v1 "
       "notification line are not HTTP: a client waiting for a reply fails on them.")
matrix("matrix-cli-v2", "Fault x phase matrix over v2: `spalloc alloc`",
       "`spalloc alloc --keepalive 2 --timeout 1 --reconnect-delay 0.1 -c …` against the v2 URL "
       "through the proxy, credentials from `SPALLOC_USER`/`SPALLOC_PASSWORD`; the same checks "
       "as over v1.")

def table(key, title, intro=""):
    rs = by_suite.get(key, [])
    if not rs:
        return
    w(f"## {title}\n")
    if intro:
        w(intro + "\n")
    w("| Case | Outcome | Details |")
    w("|---|---|---|")
    for r in rs:
        d = r.get("detail", {})
        if isinstance(d, dict):
            details = "; ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in d.items())
        else:
            details = str(d)
        extra = ""
        if "cases" in r:
            extra = f"{r['cases']:,} cases"
        if "runs" in r:
            extra = f"{r['runs']:,} runs in {r['seconds']} s"
        details = "; ".join(x for x in (extra, details) if x)
        w(f"| {r.get('case', '')} | {'pass' if ok(r) else '**FAIL**'} | {details} |")
    w("")

table("restart", "Server restart with persistence")
table("holders", "Holders: blocked threads, panics, SIGKILL",
      "SIGKILL cannot be caught, so the job outlives its holder until the server expires it, one keepalive interval later.")
table("signals", "Signals",
      "Added to `tests/cli_alloc`, which covers SIGINT, SIGTERM and SIGHUP in the queue, at the prompt and while the command runs.")
table("signals-stalled", "Signals against a stalled server",
      "`spalloc alloc` against a server that answers everything except the calls of one "
      "stage, which it never answers (for connect: a port whose listen queue is full, so "
      "the connection attempt hangs). The signal is sent once the run has reached that "
      "stage, with the default `--timeout` (10 s; 1 s for the final destroy) and with "
      "`--timeout -1` (no limit). The time is from the signal to the end of the process "
      "(for the final destroy with no limit, from a second signal, which abandons it). "
      "Every case checked the exit code, that the CSV was removed, that `destroy_job` "
      "was sent with the signal's reason wherever the server could still be told, and "
      "that a destroy the server never answered was reported in one line. The one stage "
      "that waits on purpose is `create_job`: up to 1 s for the new job's id, so that a "
      "merely slow server's job is destroyed rather than left to expire.")
table("hostile-text", "Hostile text from servers and config files",
      "Every string a server or configuration file supplies carried escape sequences that "
      "retitle the terminal, ring its bell, turn text red, a C1 control and a direction "
      "override. Each case checked that the output held no raw control character and "
      "showed the text in its visible form (`\\e]0;pwned\\x07…`), and, for `--json`, "
      "that the text came through unchanged as JSON escapes.")
table("hostile", "Hostile clients against the virtual server")
table("http", "The v2 (HTTP) front-end under abuse and load",
      "The well-behaved client uses one persistent connection, as a pooling client does. "
      "Request parsing is also covered by property tests (`server: …` below) and the fuzz target `http_requests`; the proxy websocket's frames by property tests (`proxy: …`) and the fuzz target `proxy_frames`.")
table("load", "Load", f"Short form ({load_secs} s); `SPALLOC_LOAD_SECS` sets the length.")
table("streams", "Client reading arbitrary byte streams")
table("properties", "Property tests", "proptest, in `src/fuzzing.rs` (decoders, proxy frames, server requests), `src/server/v2/fuzzing.rs` (HTTP requests to the v2 service) and `tests/reliability/durations.rs` (lengths of time).")
if by_suite.get("fuzz"):
    table("fuzz", "Fuzzing", "cargo-fuzz (libFuzzer) targets in `fuzz/`; a crash would be kept as a regression test.")
else:
    w("## Fuzzing\n")
    w("Not run in this regeneration (`scripts/reliability-report.sh SECONDS` runs each "
      "cargo-fuzz target in `fuzz/` for SECONDS, with cargo-fuzz installed).\n")
print("\n".join(out))
EOF
exit $status
