#!/bin/sh
# smoke.sh BUILD_FUZZ_DIR TARGET... — run each libFuzzer target for 10 s
# from a copy of its seed corpus (libFuzzer writes new inputs into the
# corpus directory; the repository's seeds stay as they are), as many at
# once as there are CPUs. A target that fails prints its log's tail and
# makes the whole run fail.
set -u
dir=$1
shift
jobs=$(nproc 2>/dev/null || echo 1)
here=$(cd "$(dirname "$0")" && pwd)
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c '
  f={}; n=$(basename "$f"); short=${n#fuzz_}
  seeds="$1/corpus/$short"; work="$2/corpus-$short"
  rm -rf "$work"; mkdir -p "$work"; [ -d "$seeds" ] && cp -r "$seeds/." "$work/"
  if "$f" -max_total_time=10 -print_final_stats=0 "$work" >"$2/$n.log" 2>&1; then
    echo "== $f (smoke, 10 s): ok"
  else
    echo "== $f (smoke, 10 s): FAILED"; tail -40 "$2/$n.log"; exit 255
  fi' sh "$here" "$dir"
