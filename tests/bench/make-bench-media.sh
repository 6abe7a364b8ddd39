#!/bin/sh
# make-bench-media.sh OUTDIR [SECONDS]
#
# Writes the benchmark's media file: 1280x720 at 25 fps, H.264 at about
# 2 Mbit/s (libx264, -b:v 2000k -maxrate 2000k -bufsize 1000k, a key frame
# every second, no B-frames, yuv420p) and AAC-LC 44100 Hz stereo 128 kbit/s,
# from lavfi testsrc2 and a sine tone.
#
#   SECONDS 30 (default) -> OUTDIR/bench.mp4
#   other SECONDS        -> OUTDIR/bench-<SECONDS>s.mp4 (short files test looping)
#
# Idempotent: an existing file is kept. The file is written under a temporary
# name and renamed, so an interrupted run leaves nothing half-written.
# Prints the path of the file on stdout.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUTDIR [SECONDS]" >&2
	exit 2
fi
outdir=$1
secs=${2:-30}
case $secs in
	''|*[!0-9]*|0) echo "$0: SECONDS must be a positive integer" >&2; exit 2 ;;
esac
if [ "$secs" = 30 ]; then name=bench.mp4; else name=bench-${secs}s.mp4; fi
out=$outdir/$name

mkdir -p "$outdir"
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi

tmp=$outdir/.tmp-$$-$name
trap 'rm -f "$tmp"' EXIT INT TERM HUP

ffmpeg -nostdin -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc2=size=1280x720:rate=25:duration=$secs" \
	-f lavfi -i "sine=frequency=1000:sample_rate=44100:duration=$secs" \
	-map 0:v -map 1:a \
	-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
	-b:v 2000k -maxrate 2000k -bufsize 1000k -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 \
	-x264-params nal-hrd=cbr \
	-c:a aac -profile:a aac_low -ar 44100 -ac 2 -b:a 128k \
	-t "$secs" -movflags +faststart -f mp4 "$tmp"

mv -f "$tmp" "$out"
trap - EXIT INT TERM HUP
echo "$out"
