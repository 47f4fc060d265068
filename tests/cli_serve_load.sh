#!/usr/bin/env bash
# cmcr serve under load (docs/serve.md): wrk keeps 8 connections busy for 10 s on
# /api/search with a text query, then 10 s on /api/embed with a sound, against a server with
# 2 workers. Reports the requests, p50 and p99 latency; asserts no answer other than 2xx, no
# socket error, and a flat resident set: the server's VmRSS, sampled every 0.5 s through each
# run, may not grow in the second half of the run above its maximum of the first half by more
# than 5 % + 4 MiB (the first half takes the one-time growth: each thread's malloc arena,
# OpenMP's and OpenBLAS's buffers; 4 MiB over the second half's ~1,000+ requests is a few KB
# each, so a leak per request shows). Under AddressSanitizer (its quarantine holds freed
# memory) the resident set is reported, not judged: LeakSanitizer checks the server's exit
# instead. The answers themselves are checked by cli_serve.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v wrk >/dev/null || { echo "SKIPPED: needs wrk (Debian's wrk; scripts/install-deps.sh)"; exit 77; }
serve_need
scratch serve-load
cd "$T" || exit 1
serve_media media
serve_index g.safetensors media || finish cli_serve_load
serve_start g.safetensors --workers 2 --threads 4 --quiet || finish cli_serve_load
JUDGE_RSS=1
if ldd "$BIN" 2>/dev/null | grep -q 'lib[at]san'; then
    JUDGE_RSS=0
    echo "a sanitizer build: the resident set is reported, not judged"
fi

# wrk posts WRK_BODY's bytes and prints its numbers in a form easy to read back.
cat >post.lua <<'EOF'
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests %d\nduration_s %.3f\nnon2xx %d\nsocket_errors %d\np50_ms %.2f\np99_ms %.2f\n",
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF

# run NAME BODY PATH: wrk for 10 s with 8 connections, VmRSS sampled meanwhile.
run() {
    local name=$1 body=$2 path=$3 sampler
    (while kill -0 "$SRV" 2>/dev/null; do
        sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SRV/status"
        sleep 0.5
    done) >"rss_$name.txt" &
    sampler=$!
    WRK_BODY=$body wrk -t 2 -c 8 -d 10s --timeout 30s -s post.lua "$URL$path" >"wrk_$name.txt" 2>&1 ||
        fail "$name: wrk failed: $(cat "wrk_$name.txt")"
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    "$PY" - "$name" "wrk_$name.txt" "rss_$name.txt" "$JUDGE_RSS" <<'EOF' || fail "$name: see above"
import sys
name, w, r = sys.argv[1], dict(l.split() for l in open(sys.argv[2]) if len(l.split()) == 2), [int(l) for l in open(sys.argv[3]) if l.strip()]
req, dur = int(w["requests"]), float(w["duration_s"])
half = len(r) // 2
first, second = max(r[:half]), max(r[half:])
print(f"  {name}: {req} requests in {dur:.1f} s ({req / dur:.0f}/s), p50 {float(w['p50_ms']):.1f} ms, "
      f"p99 {float(w['p99_ms']):.1f} ms, non-2xx {w['non2xx']}, socket errors {w['socket_errors']}; "
      f"VmRSS max {first / 1024:.1f} MiB in the first half, {second / 1024:.1f} MiB in the second ({len(r)} samples)")
ok = req > 0 and int(w["non2xx"]) == 0 and int(w["socket_errors"]) == 0 and len(r) >= 8
ok = ok and (second <= first * 1.05 + 4096 or sys.argv[4] == "0")
sys.exit(0 if ok else 1)
EOF
}
printf 'a dog barking in the yard' >q.txt
run search q.txt "/api/search?modality=text&top=10"
run embed media/snd/a_short.wav "/api/embed?modality=audio"
serve_stop
[ "$RC" -eq 0 ] || fail "SIGTERM after the load: exit $RC"
finish cli_serve_load
