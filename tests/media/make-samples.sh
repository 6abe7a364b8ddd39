#!/bin/sh
# Generate the sample media the integration tests stream.
#
#   sh tests/media/make-samples.sh OUTDIR
#
# Every container and codec the server must pass through, 10 s each, built
# from lavfi sources (testsrc2 animates, so frames differ; each file has its
# own sine frequency, listed in samples.json, so a test can check that the
# audio it decodes is the tone that was encoded). Output is bit-exact and
# single-threaded, so two runs give identical files. Only the ffmpeg CLI is used.
#
# Video: 25 fps, a key frame every 25 frames, no B-frames (RTP timestamps
# stay monotonic). 320x240 except sample.mp4 (640x360).
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT/sub"
FFMPEG=${FFMPEG:-ffmpeg}
DUR=10

# Common options: quiet, overwrite, no metadata or encoder version strings.
ff() {
    "$FFMPEG" -hide_banner -nostdin -loglevel error -y "$@"
}
# lavfi inputs: video SIZE, audio FREQ RATE
vsrc() { echo "testsrc2=size=$1:rate=25:duration=$DUR"; }
asrc() { echo "sine=frequency=$1:sample_rate=$2:duration=$DUR"; }
OUTOPTS="-map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -threads 1"
# x264: 25-frame GOP, no scene-cut key frames, no B-frames
X264="-c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0 -bf 0 -b:v 400k -x264-params threads=1"
X265="-c:v libx265 -preset veryfast -pix_fmt yuv420p -g 25 -x265-params bframes=0:keyint=25:min-keyint=25:scenecut=0:pools=none:frame-threads=1:log-level=error"

# sample.mp4: H.264 640x360 + AAC-LC 44100 stereo, moov first
ff -f lavfi -i "$(vsrc 640x360)" -f lavfi -i "$(asrc 440 44100)" $OUTOPTS \
   $X264 -c:a aac -profile:a aac_low -b:a 96k -ar 44100 -ac 2 \
   -movflags +faststart "$OUT/sample.mp4"

# sample.mov: H.264 + PCM mu-law 8000 mono
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 500 8000)" $OUTOPTS \
   $X264 -c:a pcm_mulaw -ar 8000 -ac 1 "$OUT/sample.mov"

# sample.mkv: H.265 + Opus 48000 stereo
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 600 48000)" $OUTOPTS \
   $X265 -c:a libopus -b:a 64k -ar 48000 -ac 2 "$OUT/sample.mkv"

# sample.webm: VP8 + Opus 48000 stereo
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 700 48000)" $OUTOPTS \
   -c:v libvpx -deadline realtime -cpu-used 8 -b:v 400k -g 25 -keyint_min 25 \
   -c:a libopus -b:a 64k -ar 48000 -ac 2 "$OUT/sample.webm"

# sample.flv: H.264 + AAC 44100 stereo
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 800 44100)" $OUTOPTS \
   $X264 -c:a aac -b:a 96k -ar 44100 -ac 2 "$OUT/sample.flv"

# sample.ts: H.264 + AAC (ADTS) 48000 stereo
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 900 48000)" $OUTOPTS \
   $X264 -c:a aac -b:a 96k -ar 48000 -ac 2 -f mpegts "$OUT/sample.ts"

# sample.avi: MPEG-4 Part 2 + PCM A-law 8000 mono
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 1000 8000)" $OUTOPTS \
   -c:v mpeg4 -q:v 5 -g 25 -bf 0 -c:a pcm_alaw -ar 8000 -ac 1 "$OUT/sample.avi"

# sample_mjpeg.avi: MJPEG 320x240 (full-range 4:2:0) + PCM mu-law 8000 mono.
# RFC 2435 carries neither Huffman tables (the standard ones are assumed) nor a
# lone shared quantisation table: standard Huffman tables, one table per plane.
ff -f lavfi -i "$(vsrc 320x240)" -f lavfi -i "$(asrc 1100 8000)" $OUTOPTS \
   -c:v mjpeg -huffman default -force_duplicated_matrix 1 -pix_fmt yuvj420p -q:v 5 \
   -c:a pcm_mulaw -ar 8000 -ac 1 "$OUT/sample_mjpeg.avi"

# sample.h264 / sample.h265: raw Annex-B elementary streams, video only
ff -f lavfi -i "$(vsrc 320x240)" $OUTOPTS $X264 -f h264 "$OUT/sample.h264"
ff -f lavfi -i "$(vsrc 320x240)" $OUTOPTS $X265 -f hevc "$OUT/sample.h265"

# WAV: G.711 mu-law, G.711 A-law, G.722 (16 kHz audio; WAV format tag
# 0x028F), G.726 32 kbit/s. ffmpeg's g726 encoder packs code words MSB first
# (the AAL2 order, codec adpcm_g726); RTP "G726-32" (RFC 3551) wants them LSB
# first (adpcm_g726le), so the server repacks: for 4-bit words, a nibble swap.
ff -f lavfi -i "$(asrc 1200 8000)" $OUTOPTS -c:a pcm_mulaw -ar 8000 -ac 1 "$OUT/sample.wav"
ff -f lavfi -i "$(asrc 1300 8000)" $OUTOPTS -c:a pcm_alaw -ar 8000 -ac 1 "$OUT/sample_alaw.wav"
ff -f lavfi -i "$(asrc 1400 16000)" $OUTOPTS -c:a adpcm_g722 -ar 16000 -ac 1 "$OUT/sample_g722.wav"
ff -f lavfi -i "$(asrc 1500 8000)" $OUTOPTS -c:a g726 -b:a 32k -ar 8000 -ac 1 "$OUT/sample_g726.wav"

# sample.mp3: MP3 44100 stereo
ff -f lavfi -i "$(asrc 1600 44100)" $OUTOPTS -c:a libmp3lame -b:a 128k -ar 44100 -ac 2 "$OUT/sample.mp3"

# sub/nested.mp4: sub-folders must work
cp "$OUT/sample.mp4" "$OUT/sub/nested.mp4"

# every file must read back
FFPROBE=${FFPROBE:-ffprobe}
for f in sample.mp4 sample.mov sample.mkv sample.webm sample.flv sample.ts sample.avi \
         sample_mjpeg.avi sample.h264 sample.h265 sample.wav sample_alaw.wav \
         sample_g722.wav sample_g726.wav sample.mp3 sub/nested.mp4; do
    n=$("$FFPROBE" -v error -show_entries stream=codec_name -of csv=p=0 "$OUT/$f" | grep -c .) || true
    if [ "${n:-0}" -lt 1 ]; then
        echo "$0: $OUT/$f has no readable stream" >&2
        exit 1
    fi
done

echo "samples written to $OUT"
