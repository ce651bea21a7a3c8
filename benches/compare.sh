#!/usr/bin/env bash
# Measures the spalloc tools and library against the published Python client
# (spalloc 1!7.4.1), both talking to the same virtual server in the same run,
# and against the floor this machine allows; writes PERFORMANCE.md.
#
#   benches/compare.sh [--quick] [--out FILE]
#
# One `spalloc serve` is started on a free loopback port with a 20 x 20
# triad machine (1200 boards), power delay 0 and seconds_before_free 0, and
# filled with 1000 live single-board jobs that never expire. Then, taking
# turns so that a burst of load from elsewhere lands on both clients:
#   1. `spalloc ps` vs `spalloc-ps` (wall time);
#   2. `spalloc machine big` vs `spalloc-machine big` (wall time);
#   3. `version` calls per second on one connection: ProtocolClient against
#      the floor (a bare loopback client and echo server exchanging the same
#      bytes), one call at a time and pipelined (`call_pipelined`); and,
#      for context, ProtocolClient vs the Python ProtocolClient against the
#      real server;
#   4. a job's life, create -> ready -> destroy: Job vs the Python Job;
#   5. peak memory while holding a job: `spalloc alloc -c sleep N` vs the
#      Python `spalloc -c sleep N`, summed over each client's processes
#      (the Python keepalive process included, the `sleep` left out);
#   6. the virtual server's own time for list_jobs and for creating and
#      destroying a job, over loopback with bare sockets;
#   7. a whole `spalloc alloc 1 -c true` (create, wait until ready, run the
#      command, destroy) against `spalloc ps` and against the Python
#      `spalloc 1 -c true`, on a second `spalloc serve` with no other jobs
#      (power delay 0), so that `ps` is as fast as it gets.
# Medians are reported. --quick takes fewer samples (for trying the script,
# not for the record). Needs cargo, python3 (with venv) and access to PyPI
# the first time; the Python client goes into a private virtualenv under the
# target directory. No configuration file of the user's is read: HOME and
# the working directory point into a temporary directory.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/PERFORMANCE.md"
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --out) OUT="$(realpath -m "$2")"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
COMMAND="benches/compare.sh"
if [ "$QUICK" = 1 ]; then COMMAND="benches/compare.sh --quick"; fi

if [ "$QUICK" = 1 ]; then
    WALL_RUNS=5; RPC_ROUNDS=2; RPC_SECONDS=0.5; LIFE_ROUNDS=2; RSS_ROUNDS=1; SERVER_COUNT=20
    ALLOC_RUNS=5
else
    WALL_RUNS=21; RPC_ROUNDS=5; RPC_SECONDS=1; LIFE_ROUNDS=5; RSS_ROUNDS=3; SERVER_COUNT=200
    ALLOC_RUNS=31
fi
RUST_LIVES=20    # lives per bench_lifecycle run
PY_LIVES=5       # lives per lifecycle.py run (each takes tens of milliseconds)
HOLD_SECONDS=3   # how long each client holds its job for the memory test

say() { printf '%s\n' "$*" >&2; }

# ---- build -------------------------------------------------------------------
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
say "building release binaries..."
cargo build --release --quiet --bin spalloc \
    --example bench_fill --example bench_wall --example bench_rss \
    --example bench_rpc --example bench_rpc_floor --example bench_lifecycle \
    --example bench_server
SPALLOC="$TARGET/release/spalloc"
EX="$TARGET/release/examples"
# Asked now: rustup finds its toolchains through HOME, which changes below.
RUSTC="$(rustc --version)"

# ---- the Python client, in a private virtualenv --------------------------------
PY_PACKAGE='spalloc==1!7.4.1'
VENV="$TARGET/compare-pyspalloc"
if [ ! -x "$VENV/bin/spalloc-ps" ]; then
    say "installing $PY_PACKAGE into $VENV..."
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PY_PACKAGE"
fi
PY="$VENV/bin/python"
PY_VERSION="$("$PY" -c 'import importlib.metadata as m; print(m.version("spalloc"))')"

# ---- a sandbox and the server ------------------------------------------------------
WORK="$(mktemp -d)"
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/home/.config"
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config"
unset SPALLOC_PYTHON_CLIENT RUST_LOG
cd "$WORK"

cat > server.toml <<'EOF'
[server]
ip = "127.0.0.1"
timeout_check_interval = 5.0
seconds_before_free = 0.0
power_delay = 0.0

[[machine]]
name = "big"
tags = ["default"]
width = 20
height = 20
EOF
# The second server, for row 7: the same settings, one small machine and
# no jobs but those being measured.
sed -e 's/^name = "big"/name = "small"/' -e 's/^width = 20/width = 2/' \
    -e 's/^height = 20/height = 2/' server.toml > small.toml

# `start_server CONFIG NAME`: starts `spalloc serve` in the background and
# prints its port. (Called with a redirection rather than in `$(...)`, so
# that the server is a child of this shell, for `cleanup`.)
start_server() {
    "$SPALLOC" serve --config "$1" --port 0 > "$2.out" 2> "$2.err" &
    SERVER_PIDS+=($!)
    local port=""
    for _ in $(seq 100); do
        port="$(sed -n 's/^spalloc virtual server listening on .*:\([0-9]*\)$/\1/p' "$2.out")"
        [ -n "$port" ] && break
        # Polls: a file filling up gives a shell script no event to wait on.
        sleep 0.05
    done
    if [ -z "$port" ]; then
        say "the server did not start:"; cat "$2.err" >&2; exit 1
    fi
    echo "$port"
}
start_server server.toml serve > port.txt; PORT="$(cat port.txt)"
start_server small.toml small > port.txt; SMALL_PORT="$(cat port.txt)"
HOST=127.0.0.1
say "server on $HOST:$PORT; filling it with 1000 jobs..."
"$EX/bench_fill" "$HOST" "$PORT" 1000 filler@example.org >&2

# ---- helpers ---------------------------------------------------------------------
# `field NAME TEXT`: the value of NAME=... in TEXT.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
# `median X...`
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# `calc EXPR`: floating-point arithmetic.
calc() { awk "BEGIN {print $*}"; }
# `fmt DIGITS X`
fmt() { awk -v d="$1" -v x="$2" 'BEGIN {printf "%.*f", d, x}'; }
# `yes_no CONDITION`
yes_no() { if awk "BEGIN {exit !($*)}"; then echo "**yes**"; else echo "no"; fi; }

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1, 2: ps and machine ----------------------------------------------------------
say "1. spalloc ps vs spalloc-ps ($WALL_RUNS runs each)..."
out="$("$EX/bench_wall" "$WALL_RUNS" \
    rust -- "$SPALLOC" ps -H "$HOST" -P "$PORT" :: \
    python -- "$VENV/bin/spalloc-ps" --hostname "$HOST" --port "$PORT")"
PS_RUST="$(field median_ms "$(grep '^rust ' <<<"$out")")"
PS_PY="$(field median_ms "$(grep '^python ' <<<"$out")")"

say "2. spalloc machine big vs spalloc-machine big ($WALL_RUNS runs each)..."
out="$("$EX/bench_wall" "$WALL_RUNS" \
    rust -- "$SPALLOC" machine -H "$HOST" -P "$PORT" big :: \
    python -- "$VENV/bin/spalloc-machine" --hostname "$HOST" --port "$PORT" big)"
MACHINE_RUST="$(field median_ms "$(grep '^rust ' <<<"$out")")"
MACHINE_PY="$(field median_ms "$(grep '^python ' <<<"$out")")"

# The two process-start floors, for context: an empty Rust binary's worth
# (`spalloc --version`) and the interpreter's (`python -c pass`).
out="$("$EX/bench_wall" "$WALL_RUNS" \
    rust -- "$SPALLOC" --version :: python -- "$PY" -c pass)"
START_RUST="$(field median_ms "$(grep '^rust ' <<<"$out")")"
START_PY="$(field median_ms "$(grep '^python ' <<<"$out")")"

# ---- 3: RPC rate ---------------------------------------------------------------------
say "3. version calls per second ($RPC_ROUNDS rounds of ${RPC_SECONDS}s each)..."
rpc_rust=(); rpc_py=(); rpc_floor=(); rpc_bare=(); rpc_client=(); rpc_pipe=(); rpc_pipe_echo=()
rpc_client_real=()
for _ in $(seq "$RPC_ROUNDS"); do
    rpc_rust+=("$(field calls_per_s "$("$EX/bench_rpc" "$HOST" "$PORT" "$RPC_SECONDS")")")
    rpc_py+=("$(field calls_per_s "$("$PY" "$ROOT/benches/python/rpc_rate.py" "$HOST" "$PORT" "$RPC_SECONDS")")")
    out="$("$EX/bench_rpc_floor" "$HOST" "$PORT" "$RPC_SECONDS")"
    rpc_floor+=("$(field calls_per_s "$out")")
    rpc_client+=("$(field client_calls_per_s "$out")")
    rpc_bare+=("$(field server_calls_per_s "$out")")
    rpc_client_real+=("$(field client_server_calls_per_s "$out")")
    rpc_pipe+=("$(field pipelined_calls_per_s "$out")")
    rpc_pipe_echo+=("$(field pipelined_echo_calls_per_s "$out")")
    PIPE_DEPTH="$(field pipeline_depth "$out")"
done
RPC_RUST="$(median "${rpc_rust[@]}")"
RPC_PY="$(median "${rpc_py[@]}")"
RPC_FLOOR="$(median "${rpc_floor[@]}")"
RPC_CLIENT="$(median "${rpc_client[@]}")"
RPC_BARE="$(median "${rpc_bare[@]}")"
RPC_CLIENT_REAL="$(median "${rpc_client_real[@]}")"
RPC_PIPE="$(median "${rpc_pipe[@]}")"
RPC_PIPE_ECHO="$(median "${rpc_pipe_echo[@]}")"

# ---- 4: job lifecycle ---------------------------------------------------------------
say "4. job lifecycle ($LIFE_ROUNDS rounds)..."
life_rust=(); life_py=()
for _ in $(seq "$LIFE_ROUNDS"); do
    life_rust+=("$(field median_ms "$("$EX/bench_lifecycle" "$HOST" "$PORT" "$RUST_LIVES")")")
    life_py+=("$(field median_ms "$("$PY" "$ROOT/benches/python/lifecycle.py" "$HOST" "$PORT" "$PY_LIVES")")")
done
LIFE_RUST="$(median "${life_rust[@]}")"
LIFE_PY="$(median "${life_py[@]}")"

# ---- 5: memory while holding a job ----------------------------------------------------
say "5. peak memory holding a job ($RSS_ROUNDS rounds of ${HOLD_SECONDS}s)..."
rss_rust=(); rss_py=(); hwm_rust=(); hwm_py=(); procs_rust=""; procs_py=""
for _ in $(seq "$RSS_ROUNDS"); do
    out="$("$EX/bench_rss" --exclude sh,sleep -- "$SPALLOC" alloc -H "$HOST" -P "$PORT" \
        --owner perf@example.org -q -c sleep "$HOLD_SECONDS")"
    rss_rust+=("$(field peak_rss_kb "$out")"); hwm_rust+=("$(field sum_hwm_kb "$out")")
    procs_rust="$(field processes "$out")"
    out="$("$EX/bench_rss" --exclude sh,sleep -- "$VENV/bin/spalloc" --hostname "$HOST" --port "$PORT" \
        --owner perf@example.org -q -c sleep "$HOLD_SECONDS")"
    rss_py+=("$(field peak_rss_kb "$out")"); hwm_py+=("$(field sum_hwm_kb "$out")")
    procs_py="$(field processes "$out")"
done
RSS_RUST="$(median "${rss_rust[@]}")"; RSS_PY="$(median "${rss_py[@]}")"
HWM_RUST="$(median "${hwm_rust[@]}")"; HWM_PY="$(median "${hwm_py[@]}")"

# ---- 6: the server's own speed -------------------------------------------------------
say "6. virtual server operations ($SERVER_COUNT of each)..."
out="$("$EX/bench_server" "$HOST" "$PORT" "$SERVER_COUNT")"
SRV_VERSION="$(field version_us "$out")"
SRV_LIST="$(field list_jobs_us "$out")"
SRV_STATE="$(field get_job_state_us "$out")"
SRV_CREATE="$(field create_destroy_us "$out")"

# ---- 7: a whole alloc -c against ps --------------------------------------------------
say "7. spalloc alloc 1 -c true vs spalloc ps vs spalloc 1 -c true ($ALLOC_RUNS runs each)..."
out="$("$EX/bench_wall" "$ALLOC_RUNS" \
    alloc -- "$SPALLOC" alloc -H "$HOST" -P "$SMALL_PORT" --owner perf@example.org -q 1 -c true :: \
    ps -- "$SPALLOC" ps -H "$HOST" -P "$SMALL_PORT" :: \
    python -- "$VENV/bin/spalloc" --hostname "$HOST" --port "$SMALL_PORT" \
        --owner perf@example.org -q 1 -c true)"
ALLOC_RUST="$(field median_ms "$(grep '^alloc ' <<<"$out")")"
ALLOC_PS="$(field median_ms "$(grep '^ps ' <<<"$out")")"
ALLOC_PY="$(field median_ms "$(grep '^python ' <<<"$out")")"
# What running the command costs by itself: `sh -c true`, as `-c` runs it.
out="$("$EX/bench_wall" "$ALLOC_RUNS" sh -- sh -c true)"
ALLOC_SH="$(field median_ms "$(grep '^sh ' <<<"$out")")"

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the report ------------------------------------------------------------------------
PS_RATIO="$(calc "$PS_PY / $PS_RUST")"
MACHINE_RATIO="$(calc "$MACHINE_PY / $MACHINE_RUST")"
RPC_RATIO="$(calc "$RPC_RUST / $RPC_PY")"
RPC_OF_FLOOR="$(calc "$RPC_FLOOR / $RPC_CLIENT")"
RPC_PY_OF_FLOOR="$(calc "$RPC_FLOOR / $RPC_PY")"
RPC_REAL_OF_FLOOR="$(calc "$RPC_FLOOR / $RPC_CLIENT_REAL")"
RPC_BARE_OF_FLOOR="$(calc "$RPC_FLOOR / $RPC_BARE")"
PIPE_OVER_FLOOR="$(calc "$RPC_PIPE / $RPC_FLOOR")"
PIPE_OVER_CLIENT="$(calc "$RPC_PIPE / $RPC_CLIENT_REAL")"
ALLOC_OF_PS="$(calc "$ALLOC_RUST / $ALLOC_PS")"
ALLOC_RATIO="$(calc "$ALLOC_PY / $ALLOC_RUST")"
LIFE_RATIO="$(calc "$LIFE_PY / $LIFE_RUST")"
RSS_RATIO="$(calc "$RSS_PY / $RSS_RUST")"
HWM_RATIO="$(calc "$HWM_PY / $HWM_RUST")"

CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
CORES="$(nproc)"
MEM="$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
KERNEL="$(uname -sr)"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
# This report and its notes do not change what is measured.
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- . \
        ':!PERFORMANCE.md' ':!benches/PERFORMANCE.notes.md' 2>/dev/null)" ]; then
    COMMIT="$COMMIT (with uncommitted changes)"
fi
PYTHON="$("$PY" --version 2>&1)"
DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"

NOTES="$ROOT/benches/PERFORMANCE.notes.md"
{
cat <<EOF
# Performance

Produced by \`$COMMAND\` on $DATE, at commit $COMMIT. Rerun that command to
reproduce it (it builds what it needs, installs the Python client into a
private virtualenv, and rewrites this file).

| Machine | |
|---|---|
| CPU | $CPU, $CORES cores |
| Memory | $MEM |
| Kernel | $KERNEL |
| Toolchains | $RUSTC; $PYTHON with spalloc $PY_VERSION |
| Load average (1, 5, 15 min) | $LOAD_BEFORE before, $LOAD_AFTER after |

Both clients talk to one \`spalloc serve\` on loopback: a 20 x 20 triad
machine (1200 boards), power delay 0, seconds_before_free 0, holding 1000
live single-board jobs. The two sides take turns, and each figure is a
median. Wall times include starting the process.

## Results

| # | What | spalloc (Rust) | Python client | Ratio | Target | Met |
|---|---|---:|---:|---:|---|:-:|
| 1 | \`spalloc ps\` vs \`spalloc-ps\`, 1000 live jobs: wall time | $(fmt 1 "$PS_RUST") ms | $(fmt 1 "$PS_PY") ms | $(fmt 1 "$PS_RATIO")x faster | >= 20x | $(yes_no "$PS_RATIO >= 20") |
| 2 | \`spalloc machine big\` vs \`spalloc-machine big\`, 1200 boards: wall time | $(fmt 1 "$MACHINE_RUST") ms | $(fmt 1 "$MACHINE_PY") ms | $(fmt 1 "$MACHINE_RATIO")x faster | >= 20x | $(yes_no "$MACHINE_RATIO >= 20") |
| 3a | \`version\` calls per second, one at a time on one connection: \`ProtocolClient\` against the floor (a bare client, $(fmt 0 "$RPC_FLOOR")/s), both talking to a bare loopback echo server | $(fmt 0 "$RPC_CLIENT")/s | | $(fmt 2 "$RPC_OF_FLOOR")x below the floor | within 1.1x | $(yes_no "$RPC_OF_FLOOR <= 1.1") |
| 3b | Pipelined \`version\` calls per second (\`call_pipelined\`, $PIPE_DEPTH at a time), against \`spalloc serve\`, vs the one-at-a-time floor of 3a | $(fmt 0 "$RPC_PIPE")/s | | $(fmt 2 "$PIPE_OVER_FLOOR")x the floor | above the floor | $(yes_no "$PIPE_OVER_FLOOR > 1") |
| 3c | \`version\` calls per second, one at a time, against \`spalloc serve\` (\`ProtocolClient\` vs Python \`ProtocolClient\`), for context | $(fmt 0 "$RPC_RUST")/s | $(fmt 0 "$RPC_PY")/s | $(fmt 2 "$RPC_RATIO")x faster | none (see 3a) | |
| 4 | Job life, create -> ready -> destroy (\`Job\` vs Python \`Job\`) | $(fmt 2 "$LIFE_RUST") ms | $(fmt 1 "$LIFE_PY") ms | $(fmt 0 "$LIFE_RATIO")x faster | >= 10x | $(yes_no "$LIFE_RATIO >= 10") |
| 5 | Peak memory holding a job (\`spalloc alloc -c sleep $HOLD_SECONDS\` vs \`spalloc -c sleep $HOLD_SECONDS\`), client processes summed | $(fmt 1 "$(calc "$RSS_RUST / 1024")") MiB | $(fmt 1 "$(calc "$RSS_PY / 1024")") MiB | $(fmt 1 "$RSS_RATIO")x less | <= 1/5 | $(yes_no "$RSS_RATIO >= 5") |
| 6a | Virtual server: \`list_jobs\` with 1000 jobs (one round trip) | $(fmt 0 "$SRV_LIST") us | | | < 1 ms | $(yes_no "$SRV_LIST < 1000") |
| 6b | Virtual server: create and destroy a one-board job (two round trips) | $(fmt 0 "$SRV_CREATE") us | | | < 1 ms | $(yes_no "$SRV_CREATE < 1000") |
| 7a | \`spalloc alloc 1 -c true\` vs \`spalloc ps\` ($(fmt 1 "$ALLOC_PS") ms), no other jobs, power delay 0: wall time | $(fmt 1 "$ALLOC_RUST") ms | | $(fmt 2 "$ALLOC_OF_PS")x of \`ps\` | within 2x | $(yes_no "$ALLOC_OF_PS <= 2") |
| 7b | \`spalloc alloc 1 -c true\` vs \`spalloc 1 -c true\`, same server: wall time | $(fmt 1 "$ALLOC_RUST") ms | $(fmt 1 "$ALLOC_PY") ms | $(fmt 1 "$ALLOC_RATIO")x faster | >= 15x | $(yes_no "$ALLOC_RATIO >= 15") |

Context for these figures:

- Starting a process: \`spalloc --version\` takes $(fmt 1 "$START_RUST") ms,
  and \`python -c pass\` $(fmt 1 "$START_PY") ms, of rows 1 and 2.
- Row 3: all of 3a and 3b comes from one \`bench_rpc_floor\` run per
  round, its subjects taking turns in twenty slices (each rate the
  median of its slices, then the median of $RPC_ROUNDS rounds). Against
  \`spalloc serve\` rather than the echo server, a bare client gets
  $(fmt 0 "$RPC_BARE") calls/s ($(fmt 2 "$RPC_BARE_OF_FLOOR")x below the
  floor) and \`ProtocolClient\` $(fmt 0 "$RPC_CLIENT_REAL")/s
  ($(fmt 2 "$RPC_REAL_OF_FLOOR")x below): that gap is the server's work
  and its reader-to-writer thread hand-off, which every client pays
  alike. Pipelined, \`ProtocolClient\` gets $(fmt 0 "$RPC_PIPE_ECHO")/s from
  the echo server and $(fmt 0 "$RPC_PIPE")/s from \`spalloc serve\`,
  $(fmt 1 "$PIPE_OVER_CLIENT")x its one-at-a-time rate there. The floor is
  $(fmt 2 "$RPC_PY_OF_FLOOR")x the Python client's rate (3c) in this run;
  it has been as little as 1.6x on an idle machine, where a loopback round
  trip costs more than the Python client's own work. So the old target,
  5x the Python client, was out of reach for any client there, and 3a,
  which measures the client itself, replaces it.
- Row 7: \`sh -c true\` alone takes $(fmt 1 "$ALLOC_SH") ms here, of the
  $(fmt 1 "$ALLOC_RUST") ms of \`alloc\`; the three commands take turns.
- Row 5 counts what the client costs, not the command it runs: the
  processes of each tree, sampled from \`/proc\` every 5 ms, less the
  \`sh\`/\`sleep\` of the command. Rust: $procs_rust; Python: $procs_py
  (peak \`VmHWM\` in KiB per process). Summing each process's own peak
  (\`VmHWM\`) instead gives $(fmt 1 "$(calc "$HWM_RUST / 1024")") MiB vs
  $(fmt 1 "$(calc "$HWM_PY / 1024")") MiB ($(fmt 1 "$HWM_RATIO")x).
- Row 6 uses bare sockets, so it is the server's time plus one loopback
  round trip per request: \`version\` alone takes $(fmt 0 "$SRV_VERSION") us
  and \`get_job_state\` $(fmt 0 "$SRV_STATE") us.
- The micro-benchmarks (\`cargo bench\`: \`protocol\`, \`render\`, \`server\`)
  break these down further; they are not run by this script.

EOF
if [ -f "$NOTES" ]; then
    cat "$NOTES"
fi
} > "$OUT"
say "wrote $OUT"
