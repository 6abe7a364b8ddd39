#!/bin/bash
# tests/bench/run.sh: the fan-out benchmark, rtspd against gst-rtsp-server
# (`make bench`). Makes the bench file, then runs tests/bench/bench.py, which
# starts the servers and the load client, measures, prints a table and
# writes docs/PERFORMANCE.md. Every setting is an environment variable; see
# the top of bench.py. BENCH_SMOKE=1 is the short run `make check` uses.
#
#   RTSPD_BIN      default build/rtspd (the optimized build)
#   RTSPBENCH_BIN  default build/rtspbench
#   BENCH_MEDIA_DIR where the bench file is made and kept (default build/bench-media)
#   BENCH_UDP_NET  lo (default) | veth | "veth lo": the UDP rows over loopback,
#                  or with the load client in a network namespace behind a
#                  veth pair (server and client pinned to different CPUs, RPS
#                  steering the client's receive work to the client's CPU),
#                  or both (about 8 more minutes). veth needs root and two
#                  CPUs; where a namespace cannot be made those rows run over
#                  loopback and the reason is printed. BENCH_TCP_NET: the same
#                  for TCP (default lo). Smoke runs take UDP through veth.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }

RTSPD_BIN=$(abs "${RTSPD_BIN:-$repo/build/rtspd}")
RTSPBENCH_BIN=$(abs "${RTSPBENCH_BIN:-$repo/build/rtspbench}")
export RTSPD_BIN RTSPBENCH_BIN

for tool in "$RTSPD_BIN" "$RTSPBENCH_BIN"; do
	if [ ! -x "$tool" ]; then
		echo "run.sh: $tool is missing (make -C $repo build/rtspd build/rtspbench)" >&2
		exit 2
	fi
done
for cmd in ffmpeg ffprobe /usr/bin/python3; do
	command -v "$cmd" >/dev/null || { echo "run.sh: $cmd is not installed" >&2; exit 2; }
done

media_dir=$(abs "${BENCH_MEDIA_DIR:-$repo/build/bench-media}")
# Smoke runs play a 2 s file for 3 s, so both servers loop within the run.
if [ "${BENCH_SMOKE:-0}" = 1 ]; then secs=2; else secs=30; fi
media=$(sh "$here/make-bench-media.sh" "$media_dir" "$secs")
export BENCH_MEDIA=$media

# bench.py stops every process it started on SIGINT/SIGTERM/SIGHUP and on
# any error; it replaces this shell so signals reach it directly.
exec /usr/bin/python3 "$here/bench.py"
