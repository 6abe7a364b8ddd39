"""Every sample file (and /test, and live mode) played by real clients,
ffprobe, ffmpeg and GStreamer, over TCP and UDP; then the RTSP methods'
basics with the raw client.

The client runs are independent, so they all start at once in a thread pool
when the first test asks for a result; each test then checks its own.
"""

import base64
import concurrent.futures
import importlib.util
import json
import os
import re
import sys
import tempfile
import threading
import time

import pytest

from conftest import load_manifest, require_tool, run, ffprobe
from rtspclient import RtspClient, parse_range, parse_rtp_info
import tones

MANIFEST = load_manifest()
SECONDS = 5.0
TEST_PATTERN = [{"type": "video", "codec_name": "h264"},
                {"type": "audio", "codec_name": "aac"}]
LIVE = "sample.mp4?mode=live"
SOURCES = sorted(MANIFEST["files"]) + ["test", LIVE]
TRANSPORTS = ["tcp", "udp"]
GSTPLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gstplay.py")


def expected(path):
    if path == "test":
        return TEST_PATTERN
    return MANIFEST["files"][path.split("?")[0]]


# ---------------------------------------------------------------- client runs

def job_ffprobe(server, path, transport):
    return ffprobe(server.url(path), transport)


def job_ffmpeg(server, path, transport):
    """Decode SECONDS of the stream: per-stream frame counts and durations
    (framecrc), the first audio track as 16 kHz mono PCM, and stderr."""
    exp = expected(path)
    with tempfile.TemporaryDirectory() as tmp:
        crc = os.path.join(tmp, "frames.crc")
        pcm = os.path.join(tmp, "audio.raw")
        cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
               "-rtsp_transport", transport, "-i", server.url(path),
               "-map", "0", "-t", str(SECONDS), "-fps_mode", "passthrough",
               "-f", "framecrc", crc]
        if any(e["type"] == "audio" for e in exp):
            cmd += ["-map", "0:a:0", "-t", str(SECONDS), "-ac", "1", "-ar", "16000",
                    "-af", "asetpts=N/SR/TB", "-f", "s16le", pcm]
        rc, out, err, secs = run(cmd, SECONDS + 30)
        frames = parse_framecrc(open(crc).read()) if os.path.exists(crc) else {}
        audio = open(pcm, "rb").read() if os.path.exists(pcm) else b""
    return {"rc": rc, "stderr": err, "streams": frames, "pcm": audio, "wall": secs}


def job_gst(server, path, transport):
    rc, out, err, secs = run([sys.executable, GSTPLAY, server.url(path), transport,
                              str(SECONDS)], SECONDS + 30)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        res = {"ok": False, "error": "gstplay rc=%s, no result: %s %s" % (rc, out[-500:], err[-1500:])}
    res["rc"] = rc
    return res


JOBS = {"ffprobe": job_ffprobe, "ffmpeg": job_ffmpeg, "gst": job_gst}


TEST_TOOL = {"test_ffprobe": "ffprobe", "test_ffmpeg_decodes": "ffmpeg",
             "test_gstreamer_decodes": "gst"}


class Runs:
    """Client runs in a thread pool, started together for the selected tests
    (the slow ones first), or on demand."""

    def __init__(self, server, wanted):
        self.server = server
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.futures = {}
        self.lock = threading.Lock()
        order = {"gst": 0, "ffmpeg": 1, "ffprobe": 2}
        for key in sorted(wanted, key=lambda k: order[k[0]]):
            self._submit(key)

    def _submit(self, key):
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(JOBS[key[0]], self.server, key[1], key[2])
            return self.futures[key]

    def get(self, tool, path, transport):
        return self._submit((tool, path, transport)).result()


@pytest.fixture(scope="module")
def runs(server, request):
    require_tool("ffprobe")
    require_tool("ffmpeg")
    wanted = set()
    for item in request.session.items:
        tool = TEST_TOOL.get(getattr(item, "originalname", None))
        if tool and item.module is request.module:
            path, tr = item.callspec.params["path"], item.callspec.params["transport"]
            wanted.add((tool, path, tr))
            if path == "test" and tool != "ffprobe":
                wanted.add(("ffprobe", path, tr))       # for its frame rate
    r = Runs(server, wanted)
    yield r
    r.pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- helpers

def parse_framecrc(text):
    """framecrc -> {index: {"type", "tb", "frames", "duration" (s), "pts": [...]}}"""
    streams = {}
    for line in text.splitlines():
        m = re.match(r"#(tb|media_type) (\d+): (\S+)", line)
        if m:
            s = streams.setdefault(int(m.group(2)), {"frames": 0, "duration": 0.0, "pts": []})
            if m.group(1) == "tb":
                num, den = m.group(3).split("/")
                s["tb"] = int(num) / int(den)
            else:
                s["type"] = m.group(3)
            continue
        if line.startswith("#"):
            continue
        f = [x.strip() for x in line.split(",")]
        if len(f) >= 4 and f[0].isdigit() and int(f[0]) in streams:
            s = streams[int(f[0])]
            s["frames"] += 1
            s["pts"].append(int(f[2]))
            s["duration"] += int(f[3]) * s.get("tb", 0)
    return streams


def tone_ratio(pcm, rate, freq):
    """Share of the signal's energy at `freq`, 0..1 (tones.tone_share);
    the first 0.5 s is skipped (codec start-up)."""
    x = tones.samples(pcm)[rate // 2:]
    if len(x) < rate // 2:
        return 0.0
    return tones.tone_share(x, freq, rate)


def approx_frames(count, fps, what):
    want = SECONDS * fps
    assert abs(count - want) <= 0.1 * want, \
        "%s: %d frames decoded in %.0f s, expected %.0f +-10%%" % (what, count, SECONDS, want)


def video_fps(runs, path, transport):
    """Frame rate a test expects: the manifest's, or for /test what ffprobe saw."""
    for e in expected(path):
        if e["type"] == "video" and e.get("fps"):
            return e["fps"]
    streams, _ = runs.get("ffprobe", path, transport)
    for s in streams or []:
        if s.get("codec_type") == "video":
            num, den = s.get("r_frame_rate", "0/1").split("/")
            fps = int(num) / int(den) if int(den) else 0
            assert 5 <= fps <= 60, "/%s: implausible frame rate %s" % (path, s.get("r_frame_rate"))
            return fps
    return None


# ---------------------------------------------------------------- the files

def test_manifest_matches_files(manifest):
    """samples.json describes the files make-samples.sh wrote."""
    media = os.environ.get("RTSPD_MEDIA")
    if not media:
        pytest.skip("RTSPD_MEDIA is not set")
    require_tool("ffprobe")
    for name, exp in manifest["files"].items():
        rc, out, err, _ = run(["ffprobe", "-v", "error", "-show_streams", "-of", "json",
                               os.path.join(media, name)], 30)
        assert rc == 0, "%s: %s" % (name, err)
        streams = json.loads(out)["streams"]
        assert [s["codec_type"] for s in streams] == [e["type"] for e in exp], name
        for s, e in zip(streams, exp):
            if e["type"] == "video":
                assert (s["width"], s["height"]) == (e["width"], e["height"]), name
                assert s["r_frame_rate"] == "%d/1" % e["fps"], name
            else:
                assert (int(s["sample_rate"]), s["channels"]) == (e["sample_rate"], e["channels"]), name


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("path", SOURCES)
def test_ffprobe(runs, path, transport):
    streams, err = runs.get("ffprobe", path, transport)
    assert streams is not None, "/%s over %s: %s" % (path, transport, err)
    got = [s for s in streams if s.get("codec_type") in ("video", "audio")]
    exp = expected(path)
    assert sorted(s["codec_type"] for s in got) == sorted(e["type"] for e in exp), \
        "/%s: streams %s" % (path, [(s["codec_type"], s.get("codec_name")) for s in got])
    for e in exp:
        s = [x for x in got if x["codec_type"] == e["type"]][0]
        names = [e["codec_name"]] + e.get("also", [])
        assert s.get("codec_name") in names, "/%s %s: codec %s, expected %s" % (
            path, e["type"], s.get("codec_name"), names)
        if e["type"] == "video":
            if "width" in e:
                assert (s.get("width"), s.get("height")) == (e["width"], e["height"]), \
                    "/%s: size %sx%s" % (path, s.get("width"), s.get("height"))
            else:
                assert s.get("width", 0) > 0 and s.get("height", 0) > 0
        else:
            if "sample_rate" in e:
                assert int(s.get("sample_rate", 0)) == e["sample_rate"], \
                    "/%s: sample rate %s" % (path, s.get("sample_rate"))
                assert s.get("channels") == e["channels"], \
                    "/%s: %s channels" % (path, s.get("channels"))
            else:
                assert int(s.get("sample_rate", 0)) > 0 and s.get("channels", 0) > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("path", SOURCES)
def test_ffmpeg_decodes(runs, path, transport):
    r = runs.get("ffmpeg", path, transport)
    what = "ffmpeg /%s over %s" % (path, transport)
    assert r["rc"] == 0, "%s: exit %s: %s" % (what, r["rc"], r["stderr"][-2000:])
    errors = [l for l in r["stderr"].splitlines() if l.strip()]
    assert not errors, "%s printed errors:\n%s" % (what, "\n".join(errors[:20]))
    exp = expected(path)
    by_type = {}
    for s in r["streams"].values():
        by_type.setdefault(s.get("type"), s)
    for e in exp:
        s = by_type.get(e["type"])
        assert s is not None and s["frames"] > 0, "%s: no %s decoded" % (what, e["type"])
        if e["type"] == "video":
            approx_frames(s["frames"], video_fps(runs, path, transport), what)
            assert s["pts"] == sorted(s["pts"]), "%s: video timestamps go back" % what
        else:
            assert abs(s["duration"] - SECONDS) <= 0.1 * SECONDS, \
                "%s: %.2f s of audio decoded" % (what, s["duration"])
            if e.get("tone_hz"):
                ratio = tone_ratio(r["pcm"], 16000, e["tone_hz"])
                assert ratio > 0.5, "%s: decoded audio is not the %d Hz tone (%.2f)" % (
                    what, e["tone_hz"], ratio)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("path", SOURCES)
def test_gstreamer_decodes(runs, path, transport):
    if importlib.util.find_spec("gi") is None:
        print("SKIP: %s has no GObject introspection (python3-gi)" % sys.executable)
        pytest.skip("python3-gi is missing for %s" % sys.executable)
    r = runs.get("gst", path, transport)
    what = "GStreamer /%s over %s" % (path, transport)
    assert r.get("ok"), "%s: %s" % (what, r.get("error") or r)
    exp = expected(path)
    streams = r["streams"]
    assert sorted(k.rstrip("0123456789") for k in streams) == sorted(e["type"] for e in exp), \
        "%s: decoded %s" % (what, list(streams))
    for e in exp:
        s = streams[e["type"]]
        assert s["span"] >= SECONDS - 0.01, "%s: only %.2f s decoded" % (what, s["span"])
        if e["type"] == "video":
            approx_frames(s["buffers"], video_fps(runs, path, transport), what)
            if "width" in e:
                assert (s.get("width"), s.get("height")) == (e["width"], e["height"]), what
        elif "sample_rate" in e:
            assert s.get("rate") == e["sample_rate"], "%s: rate %s" % (what, s.get("rate"))
            assert s.get("channels") == e["channels"], what


# ---------------------------------------------------------------- live mode

def viewer_thread(server, path, transport, seconds, out, key):
    def body():
        c = RtspClient("127.0.0.1", server.port)
        try:
            out[key + "_play"] = c.start(path, transport)
            c.receive(seconds)
            out[key] = c
            c.teardown()
        except Exception as e:          # reported by the test
            out[key + "_error"] = repr(e)
        finally:
            c.close()
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def test_live_viewers_join_at_key_frame(server):
    out = {}
    t1 = viewer_thread(server, LIVE, "tcp", 5.0, out, "a")
    time.sleep(2.0)
    t2 = viewer_thread(server, LIVE, "tcp", 3.0, out, "b")
    t1.join(20)
    t2.join(20)
    assert "a_error" not in out and "b_error" not in out, out
    a, b = out["a"], out["b"]
    for c in (a, b):
        assert len(c.tracks) == 2
        for t in c.tracks:
            assert t.packets > 0, t
            assert t.gaps == 0, t
        v = c.track("video")
        assert v.first_keyframe is True, "a live viewer did not start at a key frame: %r" % v
    # one broadcast: the same RTP stream, the second viewer joined it later
    for ta, tb in zip(a.tracks, b.tracks):
        assert ta.ssrc == tb.ssrc, "live viewers got different SSRCs"
        assert 0 < (tb.first_seq - ta.first_seq) & 0xFFFF < 0x8000, (ta, tb)
    # RTP-Info / control URLs keep the query: .../sample.mp4?mode=live/trackID=0
    base = out["a_play"].headers.get("RTP-Info", "")
    assert "mode=live" in base, "RTP-Info: %r" % base


# ---------------------------------------------------------------- RTSP basics

def test_options_public(server):
    with RtspClient("127.0.0.1", server.port) as c:
        r = c.options(server.url(""))
        assert r.status == 200, r
        public = [m.strip().upper() for m in r.headers.get("Public", "").split(",")]
        for m in ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER"):
            assert m in public, "Public: %s" % r.headers.get("Public")
        assert r.cseq == c.cseq


def b64(s):
    return base64.b64decode(s + "=" * (-len(s) % 4))


def test_describe_sdp(server):
    url = server.url("sample.mp4")
    with RtspClient("127.0.0.1", server.port) as c:
        r, sdp = c.describe(url)
        assert r.status == 200, r
        assert r.headers.get("Content-Type", "").startswith("application/sdp")
        base = r.headers.get("Content-Base")
        assert base and base.endswith("/"), "Content-Base: %r" % base
        assert base == url + "/", "Content-Base %r for %r" % (base, url)
        assert [m.type for m in sdp.media] == ["video", "audio"]
        v, a = sdp.media
        assert all(m.control for m in sdp.media), "every media needs a=control"
        assert v.rtpmap[v.pt][:2] == ("H264", 90000), v.rtpmap
        f = v.fmtp[v.pt]
        assert f.get("packetization-mode") == "1", f
        sps, pps = [b64(x) for x in f["sprop-parameter-sets"].split(",")[:2]]
        assert sps[0] & 0x1F == 7 and pps[0] & 0x1F == 8, "sprop-parameter-sets: SPS,PPS"
        assert f.get("profile-level-id", "").lower() == sps[1:4].hex(), \
            "profile-level-id %r vs SPS %s" % (f.get("profile-level-id"), sps[1:4].hex())
        enc, clock, chans = a.rtpmap[a.pt]
        assert (enc.upper(), clock, chans) == ("MPEG4-GENERIC", 44100, 2), a.rtpmap
        f = a.fmtp[a.pt]
        assert f.get("mode", "").lower() == "aac-hbr", f
        assert (f.get("sizelength"), f.get("indexlength"), f.get("indexdeltalength")) == \
            ("13", "3", "3"), f
        # AAC-LC (2), 44100 Hz (index 4), 2 channels
        assert f.get("config", "").lower().startswith("1210"), f


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_setup_play_headers_and_sr(server, transport):
    with RtspClient("127.0.0.1", server.port) as c:
        r, sdp = c.describe(server.url("sample.mp4"))
        assert r.status == 200
        for i in range(len(sdp.media)):
            r = c.setup(c.track_url(i), transport, index=i)
            assert r.status == 200, r
            sess = r.headers.get("Session")
            assert re.fullmatch(r"[A-Za-z0-9$_.+-]{8,};timeout=60", sess or ""), \
                "Session header %r" % sess
            assert sess.split(";")[0] == c.session
            tr = c.tracks[-1].transport
            if transport == "tcp":
                assert tr["proto"].upper() == "RTP/AVP/TCP", tr
                assert tr.get("interleaved") == (2 * i, 2 * i + 1), tr
            else:
                assert tr["proto"].upper() in ("RTP/AVP", "RTP/AVP/UDP"), tr
                assert len(tr.get("server_port", ())) == 2, tr
                assert tr.get("client_port") == tuple(
                    s.getsockname()[1] for s in c.udp[-1][:2]), tr
        r = c.play()
        assert r.status == 200, r
        rng = parse_range(r.headers.get("Range"))
        assert rng and rng[0] is not None and abs(rng[0]) < 0.1, "Range %r" % r.headers.get("Range")
        info = parse_rtp_info(r.headers.get("RTP-Info", ""))
        assert [i.get("url") for i in info] == [c.track_url(i) for i in range(len(sdp.media))], \
            "RTP-Info %r" % r.headers.get("RTP-Info")
        assert all("seq" in i and "rtptime" in i for i in info), info
        c.receive(1.5)
        for t, i in zip(c.tracks, info):
            assert t.packets > 0, t
            assert t.first_seq == i["seq"], "first seq %s, RTP-Info seq %s" % (t.first_seq, i["seq"])
            assert t.gaps == 0, t
            assert t.sr_times and t.sr_times[0] - c.play_time <= 1.0, \
                "no RTCP SR within 1 s of PLAY on track %d" % t.index
        v = c.track("video")
        assert v.first_keyframe is True, v
        r = c.teardown()
        assert r is not None and r.status == 200, r


def test_range_seek(server):
    with RtspClient("127.0.0.1", server.port) as c:
        r = c.start("sample.mp4", "tcp", range_="npt=5-")
        rng = parse_range(r.headers.get("Range"))
        assert rng and rng[0] is not None and abs(rng[0] - 5.0) <= 0.6, \
            "Range %r" % r.headers.get("Range")
        info = parse_rtp_info(r.headers.get("RTP-Info", ""))
        assert len(info) == 2, r.headers.get("RTP-Info")
        c.receive(1.5)
        for t, i in zip(c.tracks, info):
            assert t.packets > 0 and t.first_seq == i["seq"], (t, i)
            d = (t.first_rtptime - i["rtptime"]) & 0xFFFFFFFF
            d = d - 2**32 if d >= 2**31 else d
            assert abs(d) <= 0.2 * t.clock_rate, "first rtptime %d vs RTP-Info %d" % (
                t.first_rtptime, i["rtptime"])
        assert c.track("video").first_keyframe is True


def test_pause_resume(server):
    with RtspClient("127.0.0.1", server.port) as c:
        c.start("sample.mp4", "tcp")
        c.receive(2.0)
        before = [t.packets for t in c.tracks]
        r = c.pause()
        assert r.status == 200, r
        c.receive(0.3)                   # what was in flight
        during = [t.packets for t in c.tracks]
        c.receive(1.0)
        assert [t.packets for t in c.tracks] == during, "RTP kept coming while paused"
        r = c.play()
        assert r.status == 200, r
        rng = parse_range(r.headers.get("Range"))
        assert rng and rng[0] is not None and 1.5 <= rng[0] <= 3.0, \
            "resume Range %r after 2 s of play" % r.headers.get("Range")
        c.receive(2.0)
        for t, n in zip(c.tracks, before):
            assert t.packets > n
            assert t.gaps == 0 and t.late == 0, "sequence broken across PAUSE/PLAY: %r" % t


def test_keepalive_teardown(server):
    with RtspClient("127.0.0.1", server.port) as c:
        c.start("sample.wav", "tcp")
        r = c.get_parameter()
        assert r.status == 200, r
        r = c.request("OPTIONS", c.base, {"Session": c.session})
        assert r.status == 200, r
        r = c.teardown()
        assert r is not None and r.status == 200, r
        r = c.play()
        assert r.status == 454, "PLAY after TEARDOWN: %r" % r


def test_pipelined_requests(server):
    url = server.url("sample.mp4")
    with RtspClient("127.0.0.1", server.port) as c:
        c.send_raw("OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n"
                   "DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n"
                   "OPTIONS %s RTSP/1.0\r\nCSeq: 3\r\n\r\n" % (url, url, url))
        got = [c.read_response() for _ in range(3)]
        assert [(r.cseq, r.status) for r in got] == [(1, 200), (2, 200), (3, 200)], got
        assert b"m=video" in got[1].body


def test_loop_is_continuous(server):
    """Across the end of the file (loop_nums -1) sequence numbers and RTP
    timestamps just go on."""
    with RtspClient("127.0.0.1", server.port) as c:
        r = c.start("sample.mp4", "tcp", range_="npt=8-")
        rng = parse_range(r.headers.get("Range"))
        assert rng and rng[0] is not None and abs(rng[0] - 8.0) <= 0.6, r.headers.get("Range")
        c.receive(4.5)
        for t in c.tracks:
            assert t.packets > 0
            assert t.gaps == 0 and t.late == 0, t
            assert t.ssrc_changes == 0, t
            assert t.ts_backwards == 0, "RTP timestamp went back at the loop: %r" % t
            assert t.max_ts_jump < 0.5 * t.clock_rate, "RTP timestamp jumped %d" % t.max_ts_jump
            media_s = ((t.last_rtptime - t.first_rtptime) & 0xFFFFFFFF) / t.clock_rate
            wall_s = t.last_packet_time - t.first_packet_time
            assert abs(media_s - wall_s) < 0.7, \
                "track %d: %.2f s of RTP time in %.2f s" % (t.index, media_s, wall_s)


def test_bye_at_end_of_file(server_factory):
    once = server_factory(loop_nums=1)
    with RtspClient("127.0.0.1", once.port) as c:
        c.start("sample.mp4", "tcp", range_="npt=7-")
        c.receive(14.0, until=lambda cl: all(t.bye for t in cl.tracks))
        for t in c.tracks:
            assert t.packets > 0
            assert t.bye, "no RTCP BYE on track %d at the end of the file" % t.index
            assert t.packets_after_bye == 0, t
