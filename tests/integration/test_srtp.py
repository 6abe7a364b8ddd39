"""SRTP playback (?srtp=1, ?srtsp=1): RTP/SAVP with SDES keys in the SDP.

ffmpeg plays an SRTP URL over UDP and TCP and decodes it; the SDP offers
RTP/SAVP with a fresh a=crypto key per DESCRIBE; what goes over the wire
(UDP datagrams, interleaved frames) holds none of the file's H.264 slice
bytes, while the same capture of a plain session does (so the check can
fail). Without <srtp_over_plain_rtsp>1 plain RTSP gets 403 and the log
says why.
"""

import base64
import os
import re
import subprocess
import tempfile

import pytest

from conftest import ctl_status, load_manifest, media_dir, require_tool, run
from rtspclient import RtspClient

MANIFEST = load_manifest()
PATH = "sample.mp4"
VIDEO = [s for s in MANIFEST["files"][PATH] if s["type"] == "video"][0]
CRYPTO_RE = re.compile(r"^1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/]{40})$")
CHUNK = 16
SECONDS = 5.0


@pytest.fixture(scope="module")
def srv(server_factory):
    return server_factory(srtp_over_plain_rtsp=1)


@pytest.fixture(scope="module")
def nal_chunks():
    """16-byte pieces (at 16-byte steps) of the file's H.264 slice NAL units,
    as an RTP packetizer carries them (Annex B without start codes)."""
    require_tool("ffmpeg")
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(media_dir(), PATH), "-map", "0:v:0",
                        "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    chunks = set()
    for nal in re.split(b"\x00\x00\x01", p.stdout):
        nal = nal.rstrip(b"\x00")
        if len(nal) < 200 or (nal[0] & 0x1F) not in (1, 5):
            continue
        # Skip the slice header; keep pieces that are not trivially repetitive.
        for off in range(32, len(nal) - CHUNK, CHUNK):
            piece = nal[off:off + CHUNK]
            if len(set(piece)) >= 8:
                chunks.add(piece)
    assert len(chunks) > 1000, "only %d slice pieces in %s" % (len(chunks), PATH)
    return chunks


def plaintext_hits(packets, chunks):
    """How many captured RTP payloads hold a piece of the file's slices."""
    hits = 0
    for data in packets:
        payload = data[12:]
        if any(payload[i:i + CHUNK] in chunks for i in range(0, len(payload) - CHUNK + 1)):
            hits += 1
    return hits


def capture(srv, path, transport, seconds=2.0, setup_transport=None):
    """DESCRIBE/SETUP/PLAY with the raw client; returns (client, [raw RTP
    packets as received: UDP datagrams or interleaved frame bodies])."""
    c = RtspClient(port=srv.port)
    resp, sdp = c.describe(c.url(path))
    assert resp.status == 200, resp
    for i in range(len(sdp.media)):
        r = c.setup(c.track_url(i), setup_transport or transport, index=i)
        assert r.status == 200, r
    got = []
    for t in c.tracks:
        orig = t.on_rtp

        def on_rtp(data, now, orig=orig):
            got.append(bytes(data))
            orig(data, now)
        t.on_rtp = on_rtp
    assert c.play().status == 200
    c.receive(seconds)
    return c, got


def keys_of(sdp):
    out = []
    for m in sdp.media:
        assert m.proto == "RTP/SAVP", "m=%s %s: not RTP/SAVP" % (m.type, m.proto)
        crypto = [v for n, v in m.attrs if n == "crypto"]
        assert len(crypto) == 1, "%s: a=crypto lines %s" % (m.type, crypto)
        mm = CRYPTO_RE.match(crypto[0])
        assert mm, "a=crypto:%s is not 'AES_CM_128_HMAC_SHA1_80 inline:<40 base64>'" % crypto[0]
        key = base64.b64decode(mm.group(1), validate=True)
        assert len(key) == 30
        out.append(key)
    return out


# ---------------------------------------------------------------- SDP

@pytest.mark.parametrize("param", ["srtp=1", "srtsp=1"])
def test_sdp_offers_savp_with_fresh_keys(srv, param):
    keys = []
    for _ in range(2):
        with RtspClient(port=srv.port) as c:
            resp, sdp = c.describe(c.url("%s?%s" % (PATH, param)))
            assert resp.status == 200, resp
            assert len(sdp.media) == 2
            keys.append(keys_of(sdp))
    assert keys[0][0] != keys[0][1], "both tracks got the same key"
    assert not set(keys[0]) & set(keys[1]), "two DESCRIBEs gave the same key"
    # a plain URL on the same server stays plain
    with RtspClient(port=srv.port) as c:
        resp, sdp = c.describe(c.url(PATH))
        assert resp.status == 200
        assert all(m.proto == "RTP/AVP" and m.attr("crypto") is None for m in sdp.media)


# ---------------------------------------------------------------- ffmpeg

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ffmpeg_decodes(srv, transport):
    require_tool("ffmpeg")
    w, h = VIDEO["width"], VIDEO["height"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "video.gray")
        crc = os.path.join(tmp, "audio.crc")
        rc, _, err, _ = run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
                             "-rtsp_transport", transport, "-i", srv.url(PATH + "?srtp=1"),
                             "-map", "0:v:0", "-t", str(SECONDS), "-f", "rawvideo", "-pix_fmt", "gray", raw,
                             "-map", "0:a:0", "-t", str(SECONDS), "-f", "framecrc", crc], SECONDS + 40)
        assert rc == 0, "ffmpeg over %s/SRTP: rc=%s %s" % (transport, rc, err[-2000:])
        size = os.path.getsize(raw)
        audio = [l for l in open(crc).read().splitlines() if l.startswith("0,")]
    assert size % (w * h) == 0, "%d bytes of %dx%d gray frames" % (size, w, h)
    frames = size // (w * h)
    assert frames >= int(SECONDS * VIDEO["fps"]) - 3, "only %d frames decoded over %s/SRTP" % (frames, transport)
    assert len(audio) >= 150, "only %d audio frames decoded over %s/SRTP" % (len(audio), transport)
    # ffmpeg decrypts and authenticates every packet: a failure shows here
    assert "srtp" not in err.lower() and "hmac" not in err.lower(), err[-2000:]


def test_ffmpeg_through_websocket(srv):
    """Interleaved SRTP in WebSocket frames: each frame header is written
    for the protected length."""
    require_tool("ffmpeg")
    from test_websocket import Bridge
    bridge = Bridge(srv.port, 1)
    try:
        rc, out, err, _ = run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i",
                               "rtsp://127.0.0.1:%d/%s?srtp=1" % (bridge.port, PATH), "-t", "3",
                               "-f", "framemd5", "-"], 60)
    finally:
        bridge.close()
    assert rc == 0, "ffmpeg through WebSocket with SRTP: rc=%s %s %s" % (rc, err[-2000:], bridge.errors)
    assert not bridge.errors, bridge.errors
    video = [l for l in out.splitlines() if l.startswith("0,")]
    assert len(video) >= 70, "only %d video frames in 3 s through WebSocket" % len(video)


# ---------------------------------------------------------------- not plaintext

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_wire_is_not_plaintext(srv, nal_chunks, transport):
    c, packets = capture(srv, PATH + "?srtp=1", transport)
    try:
        video = c.track("video")
        assert video.packets > 50, c.tracks
        assert video.transport["proto"] == ("RTP/AVP/TCP" if transport == "tcp" else "RTP/AVP"), \
            "the SETUP answer must echo the profile asked (ffmpeg asks RTP/AVP)"
        if transport == "tcp":
            st = ctl_status(srv)
            rows = [s for s in st["sessions"] if s["id"] == c.session]
            assert rows and rows[0]["transport"] == "TCP/SRTP", st["sessions"]
    finally:
        c.teardown()
        c.close()
    hits = plaintext_hits(packets, nal_chunks)
    assert hits == 0, "%d of %d SRTP packets over %s carry the file's slice bytes" % (
        hits, len(packets), transport)
    # every packet carries the 10-byte tag: no payload is a bare fragment
    assert all(len(p) > 12 + 10 for p in packets)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_plain_session_control(srv, nal_chunks, transport):
    """The same capture of a plain session finds the slice bytes."""
    c, packets = capture(srv, PATH, transport)
    c.teardown()
    c.close()
    hits = plaintext_hits(packets, nal_chunks)
    assert hits > len(packets) // 4, "the plaintext check finds only %d of %d plain packets" % (
        hits, len(packets))


def test_savp_transport_echoed(srv, nal_chunks):
    """A client that asks RTP/SAVP/TCP gets it back, and encrypted media."""
    with RtspClient(port=srv.port) as c:
        resp, _ = c.describe(c.url(PATH + "?srtp=1"))
        assert resp.status == 200
        r = c.setup(c.track_url(0), "RTP/SAVP/TCP;unicast;interleaved=0-1", index=0)
        assert r.status == 200, r
        track = c.tracks[0]
        assert track.transport["proto"] == "RTP/SAVP/TCP"
        packets = []
        track.on_rtp = lambda data, now: packets.append(bytes(data))
        c.channels[0] = (track, False)
        c.channels[1] = (track, True)
        assert c.play().status == 200
        c.receive(1.0)
        c.teardown()
    assert len(packets) > 10 and plaintext_hits(packets, nal_chunks) == 0


def test_setup_without_describe(srv):
    """The keys come from this connection's DESCRIBE: without one, 455."""
    with RtspClient(port=srv.port) as c:
        r = c.request("SETUP", c.url(PATH + "?srtp=1/trackID=0"),
                      {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        assert r.status == 455, r
        # after a DESCRIBE on this connection the same SETUP works
        resp, _ = c.describe(c.url(PATH + "?srtp=1"))
        assert resp.status == 200
        r = c.setup(c.track_url(0), "tcp", index=0)
        assert r.status == 200, r
        c.teardown()


# ---------------------------------------------------------------- keys only over TLS

def test_plain_rtsp_refused_by_default(server_factory):
    plain = server_factory()
    with RtspClient(port=plain.port) as c:
        for param in ("srtp=1", "srtsp=1"):
            resp, _ = c.describe(c.url("%s?%s" % (PATH, param)))
            assert resp.status == 403, resp
        r = c.request("SETUP", c.url(PATH + "?srtp=1/trackID=0"),
                      {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        assert r.status == 403, r
        resp, sdp = c.describe(c.url(PATH))
        assert resp.status == 200 and all(m.proto == "RTP/AVP" for m in sdp.media)
    log = plain.log_text()
    assert "403 Forbidden: SRTP refused over plain RTSP" in log and "srtp_over_plain_rtsp" in log, log[-3000:]


# ---------------------------------------------------------------- over TLS

from test_tls import certs, tls  # noqa: E402,F401  (module fixtures: one RTSPS server)


def test_ffmpeg_decodes_over_rtsps_without_opt_in(tls):
    """The default: keys only over a secure channel. Over RTSPS (ffmpeg
    carries the media interleaved in the TLS connection) ?srtp=1 plays and
    decodes; the same server refuses it over plain RTSP with 403."""
    require_tool("ffmpeg")
    w, h = VIDEO["width"], VIDEO["height"]
    url = "rtsps://127.0.0.1:%d/%s?srtp=1" % (tls.rtsps_port, PATH)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "video.gray")
        rc, _, err, _ = run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", url,
                             "-map", "0:v:0", "-t", str(SECONDS), "-f", "rawvideo", "-pix_fmt", "gray", raw],
                            SECONDS + 40)
        assert rc == 0, "ffmpeg over RTSPS/SRTP: rc=%s %s" % (rc, err[-2000:])
        size = os.path.getsize(raw)
    assert size % (w * h) == 0 and size // (w * h) >= int(SECONDS * VIDEO["fps"]) - 3, \
        "only %d bytes of %dx%d frames over RTSPS/SRTP" % (size, w, h)
    # the session is gone by now; the log tells what it was
    assert "with SRTP" in tls.log_text()
    with RtspClient(port=tls.port) as c:
        resp, _ = c.describe(c.url(PATH + "?srtp=1"))
        assert resp.status == 403, resp
