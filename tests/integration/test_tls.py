"""RTSP over TLS: RTSPS on its own port, and the HTTPS port carrying the
QuickTime GET/POST tunnel and RTSP over WebSocket (wss).

Real clients decode through each path (ffmpeg over RTSPS; GStreamer over
RTSPS with UDP media and through the HTTPS tunnel; ffmpeg through a local
TCP <-> wss bridge). Raw Python clients check TLS versions, clients that
stall in the handshake or speak plain RTSP to the TLS port, the client
address the server records for a TLS connection, the Happytime spelling of
the configuration, and certificate/key errors at `rtspd -t` and start-up.

A self-signed EC certificate is made once per module with the openssl CLI;
clients do not verify it."""

import array
import asyncio
import base64
import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
import types
import warnings

import pytest

from conftest import (SANITIZER_RE, Server, ctl_status, ffprobe, free_tcp_port, require_server_env,
                      require_tool, rtspd_bin, run, self_signed_cert, stream_entry, wait_for, wait_status)
from rtspclient import RtspClient
from test_http_tunnel import check_responses, get_head, post_head, rtsp_responses
from test_websocket import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, PROTOCOL, WsConn,
                            assert_sdp, describe, frame, new_key, options, parse_http_head, status_cseq,
                            take_items, upgrade_request, ws_accept)

# The built-in test pattern (worker/testsrc.h): 640x360 at 25 fps, a 1 kHz tone.
TEST_W, TEST_H, TEST_FPS, TEST_TONE_HZ = 640, 360, 25, 1000
SECONDS = 5


# ---------------------------------------------------------------- certificates and servers

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed EC certificate + key, and a second key that does not match it."""
    require_tool("openssl")
    d = tmp_path_factory.mktemp("certs")
    cert, key = self_signed_cert(d)
    other = str(d / "other.key")
    rc, _, err, _ = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-out", other], 60)
    assert rc == 0, "openssl genpkey failed: rc=%s %s" % (rc, err[-2000:])
    return types.SimpleNamespace(cert=cert, key=key, other_key=other, dir=str(d))


def free_ports(n, avoid=()):
    out = []
    while len(out) < n:
        p = free_tcp_port()
        if p not in out and p not in avoid:
            out.append(p)
    return out


def wait_tls_port(srv, port, timeout=10):
    """Waits until a TLS handshake on port succeeds."""
    last = {}

    def probe():
        try:
            s = tls_connect(port, timeout=2)
        except (OSError, ssl.SSLError) as e:
            last["e"] = repr(e)
            return False
        s.close()
        return True
    assert wait_for(probe, timeout, step=0.1), "no TLS handshake on port %d within %d s (%s); log:\n%s" % (
        port, timeout, last.get("e"), srv.log_text()[-3000:])


@pytest.fixture(scope="module")
def tls(server_factory, certs):
    """One server with RTSPS and the HTTPS tunnel (wss too) on ports of their own."""
    rtsps_port, https_port = free_ports(2)
    srv = server_factory(rtsps_enable=1, rtsps_port=rtsps_port, rtsps_cert=certs.cert, rtsps_key=certs.key,
                         rtsp_over_https=1, https_port=https_port, https_cert=certs.cert, https_key=certs.key)
    srv.rtsps_port, srv.https_port = rtsps_port, https_port
    wait_tls_port(srv, rtsps_port)
    wait_tls_port(srv, https_port)
    return srv


# ---------------------------------------------------------------- TLS client helpers

def client_context(minimum=None, maximum=None, ciphers=None):
    """A client context that does not verify the (self-signed) server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # TLS 1.0/1.1 on purpose
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if ciphers:
            ctx.set_ciphers(ciphers)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    return ctx


def tls_connect(port, ctx=None, timeout=10, source=None, host="127.0.0.1"):
    """TCP connect (from source, if given) + TLS handshake -> SSLSocket."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source:
            raw.bind((source, 0))
        raw.settimeout(timeout)
        raw.connect((host, port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return (ctx or client_context()).wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def client_hello(ctx):
    """The first flight (the ClientHello record) ctx would send."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert len(hello) > 45 and hello[0] == 0x16 and hello[5] == 0x01, "not a ClientHello: %r" % hello[:16]
    return hello


def read_rtsp(sock, n, timeout=10):
    """Reads RTSP responses (and '$' frames, dropped) until n responses ->
    (responses as (kind, status, headers, body), eof)."""
    buf, items, eof = b"", [], False
    deadline = time.monotonic() + timeout
    while sum(1 for i in items if i[0] == "rtsp") < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            eof = True
            break
        buf += chunk
        new, buf = take_items(buf)
        items += new
    return [i for i in items if i[0] == "rtsp"], eof


def rtsps_round_trip(port, ctx=None, source=None, scheme="rtsps"):
    """TLS connect, OPTIONS + DESCRIBE of /test, both answers read -> (seconds, TLS version)."""
    t0 = time.monotonic()
    s = tls_connect(port, ctx, source=source)
    try:
        url = "%s://127.0.0.1:%d/test" % (scheme, port)
        s.sendall(options(url, 1) + describe(url, 2))
        resps, eof = read_rtsp(s, 2)
        elapsed = time.monotonic() - t0
        version = s.version()
    finally:
        s.close()
    assert status_cseq(resps) == [(200, 1), (200, 2)], "OPTIONS/DESCRIBE over TLS: %r (eof=%s)" % (resps, eof)
    assert_sdp(resps[1])
    return elapsed, version


def read_until_closed(sock, timeout):
    """Reads until the peer closes -> (bytes received, closed?)."""
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return got, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return got, False
        except (ConnectionResetError, BrokenPipeError):
            return got, True
        if not chunk:
            return got, True
        got += chunk


class TlsRtspClient(RtspClient):
    """RtspClient over TLS (rtsps:// URLs), optionally from a given local
    address, with UDP ports bound on that address."""

    def __init__(self, host, port, source=None, **kw):
        self.source = source
        super().__init__(host, port, **kw)

    def connect(self):
        self.sock = tls_connect(self.port, timeout=self.timeout, source=self.source, host=self.host)
        return self

    def url(self, path):
        return "rtsps://%s:%d/%s" % (self.host, self.port, path.lstrip("/"))

    def setup_udp(self, index, ip):
        """SETUP SDP media `index` over UDP with RTP/RTCP ports bound on ip only."""
        rtp, rtcp = bind_udp_pair_on(ip)
        tr = "RTP/AVP;unicast;client_port=%d-%d" % (rtp.getsockname()[1], rtcp.getsockname()[1])
        resp = self.setup(self.track_url(index), tr, index=index)
        if resp.status != 200:
            rtp.close()
            rtcp.close()
            return resp
        track = self.tracks[-1]
        self.udp.append((rtp, rtcp, track))
        sp = track.transport.get("server_port")
        if sp and len(sp) == 2:
            # what libavformat sends to open NAT bindings
            pt = track.media.pt if track.media is not None and track.media.pt is not None else 0
            try:
                rtp.sendto(struct.pack(">BBHII", 0x80, pt & 0x7F, 0, 0, 0), (self.host, sp[0]))
                rtcp.sendto(struct.pack(">BBHI", 0x80, 201, 1, 0), (self.host, sp[1]))
            except OSError:
                pass
        return resp


def bind_udp_pair_on(ip, tries=200):
    for _ in range(tries):
        port = random.randrange(20000, 60000, 2)
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((ip, port))
            b.bind((ip, port + 1))
        except OSError:
            a.close()
            b.close()
            continue
        for s in (a, b):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
        return a, b
    raise OSError("no free UDP port pair on %s" % ip)


def session_of(status, client):
    rows = [s for s in status["sessions"] if s.get("client") == client]
    return rows[0] if rows else None


# ---------------------------------------------------------------- decoding with ffmpeg

def ffmpeg_decode(url, out_dir, seconds=SECONDS, transport="tcp", timeout=60):
    """ffmpeg decodes `seconds` of url: video to 8-bit gray frames, audio to
    8 kHz mono s16 -> (video bytes, audio bytes, wall seconds)."""
    os.makedirs(out_dir, exist_ok=True)
    vid, aud = os.path.join(out_dir, "video.gray"), os.path.join(out_dir, "audio.s16")
    rc, _, err, secs = run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-rtsp_transport", transport, "-i", url,
                            "-map", "0:v:0", "-t", str(seconds), "-f", "rawvideo", "-pix_fmt", "gray", vid,
                            "-map", "0:a:0", "-t", str(seconds), "-f", "s16le", "-ac", "1", "-ar", "8000", aud],
                           timeout)
    assert rc == 0, "ffmpeg %s (-rtsp_transport %s) failed: rc=%s %s" % (url, transport, rc, err[-2000:])
    with open(vid, "rb") as f:
        video = f.read()
    with open(aud, "rb") as f:
        audio = f.read()
    return video, audio, secs


def check_decoded(video, audio, secs, what, seconds=SECONDS):
    """SECONDS of the moving 640x360 pattern and of the 1 kHz tone, decoded."""
    size = TEST_W * TEST_H
    assert video and len(video) % size == 0, "%s: %d bytes of gray video is not whole %dx%d frames" % (
        what, len(video), TEST_W, TEST_H)
    n = len(video) // size
    want = seconds * TEST_FPS
    assert want - 5 <= n <= want + 2, "%s: %d video frames decoded for %d s at %d fps" % (what, n, seconds, TEST_FPS)
    distinct = len({hashlib.md5(video[i * size:(i + 1) * size]).digest() for i in range(n)})
    assert distinct > n // 2, "%s: only %d distinct frames of %d: the pattern did not move" % (what, distinct, n)
    samples = array.array("h")
    samples.frombytes(audio[:len(audio) // 2 * 2])
    dur = len(samples) / 8000.0
    assert seconds - 0.3 <= dur <= seconds + 0.3, "%s: %.2f s of audio decoded, wanted %d s" % (what, dur, seconds)
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    hz = crossings / 2.0 / dur
    assert abs(hz - TEST_TONE_HZ) < 0.1 * TEST_TONE_HZ, "%s: the audio is not the %d Hz tone (%.0f Hz)" % (
        what, TEST_TONE_HZ, hz)
    assert secs >= seconds - 2, "%s: %d s of a live stream decoded in %.1f s" % (what, seconds, secs)


# gstplay.py with rtspsrc told not to validate the (self-signed) certificate.
GSTPLAY_TLS = """
import sys
sys.path.insert(0, %r)
import gstplay
from gi.repository import Gst
make = Gst.ElementFactory.make
def make_unverified(kind, name=None):
    e = make(kind, name)
    if kind == "rtspsrc":
        e.set_property("tls-validation-flags", 0)
    return e
Gst.ElementFactory.make = make_unverified
sys.argv = ["gstplay.py"] + sys.argv[1:]
sys.exit(gstplay.main())
""" % os.path.dirname(os.path.abspath(__file__))


def gst_play(url, proto, seconds=SECONDS):
    """GStreamer (rtspsrc ! decodebin) plays url: gstplay.py's JSON result,
    checked: SECONDS of the 640x360 video and of the audio decoded."""
    require_tool("gst-launch-1.0")
    rc, out, err, _ = run([sys.executable, "-c", "import gi; gi.require_version('Gst', '1.0')"], 30)
    if rc != 0:
        reason = "GStreamer's Python bindings (gi) are not installed"
        print("SKIP: " + reason)
        pytest.skip(reason)
    rc, out, err, _ = run([sys.executable, "-c", GSTPLAY_TLS, url, proto, str(seconds)], seconds + 45)
    lines = out.strip().splitlines()
    assert rc == 0 and lines, "gstplay %s %s: rc=%s %s %s" % (url, proto, rc, out[-1000:], err[-2000:])
    res = json.loads(lines[-1])
    assert res["ok"], "GStreamer %s (%s): %s\n%s" % (url, proto, res, err[-2000:])
    v, a = res["streams"].get("video"), res["streams"].get("audio")
    assert v and (v.get("width"), v.get("height")) == (TEST_W, TEST_H), res
    assert v["buffers"] >= seconds * TEST_FPS - 5, "only %d video frames in %d s: %s" % (v["buffers"], seconds, res)
    assert a and a["buffers"] >= seconds * 40, "only %d audio buffers in %d s: %s" % (a["buffers"], seconds, res)
    assert res["wall"] >= seconds - 1.5, "%d s played in %.1f s: not live" % (seconds, res["wall"])
    return res


# ---------------------------------------------------------------- 1, 2: RTSPS with real clients

def test_ffmpeg_decodes_over_rtsps_tcp(tls, tmp_path):
    url = "rtsps://127.0.0.1:%d/test" % tls.rtsps_port
    video, audio, secs = ffmpeg_decode(url, str(tmp_path), transport="tcp")
    check_decoded(video, audio, secs, "ffmpeg rtsps:// tcp")


def test_rtsps_with_udp_media(tls, tmp_path):
    """Media over UDP for a TLS-carried RTSP session go to the client's real
    address: the client connects from 127.0.0.2 and binds its RTP/RTCP ports
    on 127.0.0.2 only, so nothing sent anywhere else can arrive. ffmpeg with
    -rtsp_transport udp decodes meanwhile (libavformat interleaves media in
    the TLS connection for rtsps:// whatever -rtsp_transport says)."""
    url = "rtsps://127.0.0.1:%d/test" % tls.rtsps_port
    ff = {}

    def ffmpeg():
        try:
            ff["result"] = ffmpeg_decode(url, str(tmp_path / "ffmpeg"), transport="udp")
        except AssertionError as e:
            ff["error"] = str(e)
    t = threading.Thread(target=ffmpeg, daemon=True)
    t.start()

    c = TlsRtspClient("127.0.0.1", tls.rtsps_port, source="127.0.0.2", timeout=15)
    try:
        resp, sdp = c.describe(c.url("test"))
        assert resp.status == 200 and sdp is not None, "DESCRIBE over RTSPS: %r" % resp
        for i in range(len(sdp.media)):
            resp = c.setup_udp(i, "127.0.0.2")
            assert resp.status == 200, "SETUP over UDP: %d %s" % (resp.status, resp.reason)
            tr = c.tracks[-1].transport
            assert tr.get("server_port"), "no server_port in %s" % resp.headers.get("Transport")
            dest = tr.get("destination")
            assert dest in (None, "127.0.0.2"), "media would go to %s, the client is 127.0.0.2: %s" % (
                dest, resp.headers.get("Transport"))
        resp = c.play()
        assert resp.status == 200, "PLAY: %d %s" % (resp.status, resp.reason)
        local = "%s:%d" % c.sock.getsockname()[:2]
        st = wait_status(tls, lambda s: (session_of(s, local) or {}).get("state") == "playing",
                         what="playing session from %s" % local)
        sess = session_of(st, local)
        assert sess["transport"] == "UDP", sess
        assert sess["stream"].split("?")[0] == "test", sess
        c.receive(SECONDS)
    finally:
        c.teardown()
        c.close()
    video, audio = c.track("video"), c.track("audio")
    assert video is not None and audio is not None, c.tracks
    span = ((video.last_rtptime or 0) - (video.first_rtptime or 0)) / 90000.0
    assert video.packets >= 100 and span >= SECONDS - 1, \
        "video over UDP to 127.0.0.2: %s (%.1f s of RTP time)" % (video.summary(), span)
    assert video.gaps == 0 and video.ssrc_changes == 0, video.summary()
    assert video.first_keyframe is True, "video did not start at a key frame: %s" % video.summary()
    assert audio.packets >= 150 and audio.gaps == 0, audio.summary()

    t.join(60)
    assert not t.is_alive(), "ffmpeg did not end"
    assert "error" not in ff, ff.get("error")
    check_decoded(*ff["result"], what="ffmpeg rtsps:// -rtsp_transport udp")


def test_gstreamer_rtsps_udp(tls):
    """GStreamer plays rtsps:// with UDP media (protocols=udp): 5 s of decoded
    video and audio in real time, and the server lists a UDP session."""
    result = {}

    def play():
        try:
            result["r"] = gst_play("rtsps://127.0.0.1:%d/test" % tls.rtsps_port, "udp")
        except BaseException as e:      # noqa: BLE001 - re-raised below
            result["e"] = e
    t = threading.Thread(target=play, daemon=True)
    t.start()
    try:
        seen = wait_for(lambda: "e" in result or any(
            x["transport"] == "UDP" and x["state"] == "playing" and x["stream"].split("?")[0] == "test"
            for x in ctl_status(tls)["sessions"]), 15, step=0.3)
    finally:
        t.join(70)
    if "e" in result:
        raise result["e"]
    assert seen, "no playing UDP session while GStreamer played rtsps:// with protocols=udp"
    assert "r" in result, "gstplay did not end"


# ---------------------------------------------------------------- 3: the Happytime spelling

def test_happytime_spelling(certs, tmp_path):
    """<rtsp_enable> then a second <rtsp_port> (the RTSPS port), <rtsp_cert>,
    <rtsp_key>: the first <rtsp_port> stays the plain RTSP port."""
    require_server_env()
    srv = Server(tmp_path / "happytime")
    (rtsps_port,) = free_ports(1, avoid=(srv.port,))
    with open(srv.config_path) as f:
        text = f.read()
    assert text.count("<rtsp_port>") == 1, text
    text = text.replace("</config>", "  <rtsp_enable>1</rtsp_enable>\n  <rtsp_port>%d</rtsp_port>\n"
                        "  <rtsp_cert>%s</rtsp_cert>\n  <rtsp_key>%s</rtsp_key>\n</config>"
                        % (rtsps_port, certs.cert, certs.key))
    with open(srv.config_path, "w") as f:
        f.write(text)
    rc, out = rtspd_check(srv.config_path)
    assert rc == 0, "rtspd -t on the Happytime spelling: exit %s\n%s\n%s" % (rc, out, text)
    srv.start()
    try:
        wait_tls_port(srv, rtsps_port)
        streams, err = ffprobe("rtsps://127.0.0.1:%d/test" % rtsps_port)
        assert streams is not None, err
        v = [s for s in streams if s.get("codec_type") == "video"]
        a = [s for s in streams if s.get("codec_type") == "audio"]
        assert v and v[0].get("codec_name") == "h264" and (v[0].get("width"), v[0].get("height")) == (TEST_W, TEST_H), \
            streams
        assert a and a[0].get("codec_name") == "aac", streams
        # The plain port is still the first <rtsp_port>, and plain.
        streams, err = ffprobe(srv.url("test"))
        assert streams is not None, "plain RTSP on the first <rtsp_port>: %s" % err
        assert ctl_status(srv)["server"]["rtsp_port"] == srv.port
    finally:
        srv.stop()


# ---------------------------------------------------------------- 4, 5, 6: handshakes

def best_round_trip(port, n=3):
    return min(rtsps_round_trip(port)[0] for _ in range(n))


def test_stalled_handshakes_do_not_delay_others(tls):
    port = tls.rtsps_port
    rtsps_round_trip(port)                       # warm-up: the stream's worker runs
    before = best_round_trip(port)
    half_hello = client_hello(client_context())
    half_hello = half_hello[:len(half_hello) // 2]
    stallers = []
    opened = time.monotonic()
    for data in (b"",                                           # nothing at all
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03",   # record header + 5 bytes of a ClientHello
                 half_hello):                                  # half of a real ClientHello
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if data:
            s.sendall(data)
        stallers.append(s)
    try:
        time.sleep(0.3)                          # the server has them and waits for more
        after = best_round_trip(port)
        assert after - before < 0.1, ("with 3 clients stalled in the TLS handshake a full RTSPS connect + "
                                      "OPTIONS/DESCRIBE takes %.0f ms, %.0f ms without" % (after * 1e3, before * 1e3))
        # The server gives up on each staller after its handshake timeout (10 s).
        closed = [None] * len(stallers)
        deadline = opened + 15
        while None in closed and time.monotonic() < deadline:
            live = [s for i, s in enumerate(stallers) if closed[i] is None]
            ready, _, _ = select.select(live, [], [], max(0.0, min(0.5, deadline - time.monotonic())))
            for s in ready:
                i = stallers.index(s)
                try:
                    chunk = s.recv(4096)             # a TLS alert may come first
                except OSError:
                    chunk = b""
                if not chunk:
                    closed[i] = time.monotonic() - opened
        assert None not in closed, "stalled TLS handshakes not closed by the server within 15 s: %s" % closed
        assert all(8.0 <= c <= 14.0 for c in closed), \
            "stalled handshakes closed after %s s, expected the 10 s handshake timeout" % [round(c, 1) for c in closed]
    finally:
        for s in stallers:
            s.close()
    rtsps_round_trip(port)


def test_plain_rtsp_on_the_rtsps_port(tls):
    port = tls.rtsps_port
    mark = len(tls.log_text())
    other = tls_connect(port)                    # a TLS client already connected
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            t0 = time.monotonic()
            s.sendall(("OPTIONS rtsp://127.0.0.1:%d/test RTSP/1.0\r\nCSeq: 1\r\n\r\n" % port).encode())
            got, closed = read_until_closed(s, 5)
            took = time.monotonic() - t0
        finally:
            s.close()
        assert closed, "plain RTSP on the RTSPS port: connection not closed within 5 s (got %r)" % got[:200]
        assert b"RTSP/1.0" not in got, "plain RTSP on the RTSPS port got an RTSP answer: %r" % got[:300]
        assert got[:1] in (b"", b"\x15"), "expected nothing or a TLS alert, got %r" % got[:64]
        assert took < 3, "the failed handshake took %.1f s to close" % took
        # The TLS client connected before is unaffected; new ones work.
        url = "rtsps://127.0.0.1:%d/test" % port
        other.sendall(options(url, 1))
        resps, eof = read_rtsp(other, 1)
        assert status_cseq(resps) == [(200, 1)], (resps, eof)
    finally:
        other.close()
    rtsps_round_trip(port)
    assert wait_for(lambda: "TLS handshake" in tls.log_text()[mark:], 5), \
        "no 'TLS handshake' line in the log after plain RTSP on the RTSPS port:\n" + tls.log_text()[mark:][-3000:]


@pytest.mark.parametrize("which", ["rtsps", "https"])
def test_tls_versions(tls, which):
    port = tls.rtsps_port if which == "rtsps" else tls.https_port

    def exchange(ctx):
        s = tls_connect(port, ctx, timeout=5)
        try:
            version = s.version()
            if which == "rtsps":
                url = "rtsps://127.0.0.1:%d/test" % port
                s.sendall(options(url, 1))
                resps, eof = read_rtsp(s, 1)
                assert status_cseq(resps) == [(200, 1)], (resps, eof)
            else:
                key = new_key()
                s.sendall(upgrade_request("/anything", key))
                head, _ = read_until_head(s)
                assert head.startswith(b"HTTP/1.1 101"), head
        finally:
            s.close()
        return version

    assert exchange(client_context(maximum=ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert exchange(client_context()) in ("TLSv1.2", "TLSv1.3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = client_context(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1,
                             ciphers="DEFAULT:@SECLEVEL=0")
    hello = client_hello(old)
    assert hello[9:11] == b"\x03\x02", "the test client does not offer TLS 1.1: %r" % hello[:16]
    try:
        s = tls_connect(port, old, timeout=5)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        err = e
    else:
        version = s.version()
        s.close()
        raise AssertionError("a TLS 1.1 client completed the handshake (%s)" % version)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(err), err
    assert exchange(client_context()) in ("TLSv1.2", "TLSv1.3")


# ---------------------------------------------------------------- 7: the HTTPS tunnel

def read_until_head(sock, timeout=10):
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    end = buf.find(b"\r\n\r\n")
    return (buf[:end], buf[end + 4:]) if end >= 0 else (buf, b"")


def test_gstreamer_rtspsh_plays(tls):
    mark = len(tls.log_text())
    gst_play("rtspsh://127.0.0.1:%d/test" % tls.https_port, "tcp")
    log = tls.log_text()[mark:]
    assert "GET (server to client channel) open" in log and "POST (client to server channel) open" in log, \
        "GStreamer's rtspsh:// did not go through the tunnel:\n" + log[-3000:]


class TlsHalf:
    """One half (GET or POST) of the tunnel, inside TLS."""

    def __init__(self, port, head):
        self.s = tls_connect(port)
        self.s.sendall(head)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read_until(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while not pred(self.buf) and time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                break
            self.buf += chunk
        return self.buf

    def close(self):
        self.s.close()


def test_raw_https_tunnel(tls):
    port = tls.https_port
    cookie = "tls%08x" % random.randrange(1 << 32)
    url = "rtsp://127.0.0.1:%d/test" % port
    g = TlsHalf(port, get_head("test", cookie))
    p = None
    try:
        g.read_until(lambda b: b"\r\n\r\n" in b)
        assert g.buf.startswith(b"HTTP/1.0 200 OK"), g.buf[:300]
        p = TlsHalf(port, post_head("test", cookie))
        body = base64.b64encode(("OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url).encode()) + \
            base64.b64encode(("DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n" % url).encode())
        cut = len(body) // 2 + 1                 # inside a base64 quantum, in two TLS records
        p.send(body[:cut])
        time.sleep(0.05)
        p.send(body[cut:])
        buf = g.read_until(lambda b: len(rtsp_responses(b)) >= 2)
        head = buf[:buf.find(b"\r\n\r\n")].decode("latin-1")
        check_responses(head, rtsp_responses(buf))
        # Answers come down the GET only.
        p.read_until(lambda b: False, timeout=0.3)
        assert p.buf == b"", "the POST got data: %r" % p.buf[:200]
    finally:
        g.close()
        if p is not None:
            p.close()


# ---------------------------------------------------------------- 8: wss

class WssConn(WsConn):
    """WsConn inside TLS (same state, a TLS socket)."""

    def __init__(self, port, timeout=10):           # noqa: super().__init__ would open plain TCP
        self.s = tls_connect(port, timeout=timeout)
        self.timeout = timeout
        self.raw = b""
        self.stream = b""
        self.items = []
        self.controls = []
        self.frames = []
        self.eof = False
        self.send_lock = threading.Lock()


class WssBridge:
    """Listens on a local TCP port; each accepted connection is carried over
    its own WebSocket inside TLS to rtspd's HTTPS port. TCP -> masked binary
    frames of varied sizes (some messages fragmented); data-frame payloads
    from the server -> TCP. asyncio keeps each TLS connection on one thread."""

    SIZES = [1, 3, 17, 64, 125, 126, 200, 1000, 65536]

    def __init__(self, wss_port, seed):
        self.wss_port = wss_port
        self.rng = random.Random(seed)
        self.errors = []
        self.stats = {"connections": 0, "up_frames": 0, "fragmented": 0, "up_bytes": 0,
                      "down_frames": 0, "down_bytes": 0}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, tcp_r, tcp_w):
        self.stats["connections"] += 1
        rng = random.Random(self.rng.randrange(1 << 30))
        ws_w = None
        try:
            try:
                ws_r, ws_w = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", self.wss_port, ssl=client_context(), server_hostname="localhost"), 10)
                key = new_key()
                ws_w.write(upgrade_request("/websocket", key))
                head = await asyncio.wait_for(ws_r.readuntil(b"\r\n\r\n"), 10)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                self.errors.append("wss connect/upgrade: %r" % e)
                return
            status, headers = parse_http_head(head[:-4])
            if status != 101 or headers.get("Sec-WebSocket-Accept") != ws_accept(key) \
                    or headers.get("Sec-WebSocket-Protocol") != PROTOCOL:
                self.errors.append("handshake: %r" % head)
                return
            up = asyncio.ensure_future(self._up(tcp_r, ws_w, rng))
            try:
                await self._down(ws_r, ws_w, tcp_w)
            except (OSError, asyncio.IncompleteReadError):
                pass                    # either side went away while media flowed
            finally:
                tcp_w.close()
                try:
                    await asyncio.wait_for(up, 5)
                except (asyncio.TimeoutError, OSError):
                    up.cancel()
        finally:
            tcp_w.close()
            if ws_w is not None:
                ws_w.close()

    async def _down(self, ws_r, ws_w, tcp_w):
        while True:
            try:
                head = await ws_r.readexactly(2)
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    self.errors.append("EOF inside a frame header")
                return
            except (ConnectionError, ssl.SSLError):
                return
            b0, b1 = head
            if b1 & 0x80 or b0 & 0x70:
                self.errors.append("bad frame header from the server: %r" % head)
                return
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await ws_r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await ws_r.readexactly(8))[0]
            payload = await ws_r.readexactly(n)
            op = b0 & 0x0F
            if op in (OP_CONT, OP_BINARY):
                self.stats["down_frames"] += 1
                self.stats["down_bytes"] += n
                tcp_w.write(payload)
                await tcp_w.drain()
            elif op == OP_TEXT:
                self.errors.append("a text frame from the server (binary only)")
                return
            elif op == OP_PING:
                ws_w.write(frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                return
            elif op != OP_PONG:
                self.errors.append("unknown opcode %d from the server" % op)
                return

    async def _up(self, tcp_r, ws_w, rng):
        try:
            while True:
                data = await tcp_r.read(rng.choice([1, 50, 4096, 65536]))
                if not data:
                    break
                self.stats["up_bytes"] += len(data)
                while data:
                    n = rng.choice(self.SIZES)
                    piece, data = data[:n], data[n:]
                    if len(piece) >= 3 and rng.random() < 0.3:
                        a, b = sorted(rng.sample(range(1, len(piece)), 2))
                        ws_w.write(frame(OP_BINARY, piece[:a], fin=False) + frame(OP_CONT, piece[a:b], fin=False)
                                   + frame(OP_CONT, piece[b:], fin=True))
                        self.stats["fragmented"] += 1
                        self.stats["up_frames"] += 3
                    else:
                        ws_w.write(frame(OP_BINARY, piece))
                        self.stats["up_frames"] += 1
                await ws_w.drain()
            ws_w.write(frame(OP_CLOSE, struct.pack(">H", 1000)))
            await ws_w.drain()
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        async def shutdown():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


def test_ffmpeg_decodes_through_a_wss_bridge(tls, tmp_path):
    seed = random.randrange(1 << 30)
    bridge = WssBridge(tls.https_port, seed)
    try:
        video, audio, secs = ffmpeg_decode("rtsp://127.0.0.1:%d/test" % bridge.port, str(tmp_path), transport="tcp")
    finally:
        bridge.close()
    info = "seed=%d bridge=%s errors=%s" % (seed, bridge.stats, bridge.errors)
    assert not bridge.errors, info
    assert bridge.stats["connections"] >= 1 and bridge.stats["down_bytes"] > 100000, info
    check_decoded(video, audio, secs, "ffmpeg through wss (%s)" % info)


def test_raw_wss(tls):
    port = tls.https_port
    url = "rtsp://127.0.0.1:%d/test" % port
    ws = WssConn(port)
    try:
        key = new_key()
        status, headers, head = ws.handshake(upgrade_request("/anything", key))
        assert status == 101, "wss upgrade refused: %r" % head
        assert headers.get("Sec-WebSocket-Accept") == ws_accept(key), head
        assert headers.get("Sec-WebSocket-Protocol") == PROTOCOL, head
        ws.send_frame(OP_BINARY, options(url, 1))
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 1)], (resps, ws.frames)
        data_ops = [op for _, op, _ in ws.frames if op in (OP_CONT, OP_TEXT, OP_BINARY)]
        assert data_ops and data_ops[0] == OP_BINARY and OP_TEXT not in data_ops, ws.frames
        ws.send_frame(OP_BINARY, describe(url, 2))
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 2)], (resps, ws.frames)
        assert_sdp(resps[0])
        ws.send_frame(OP_PING, b"tls")
        assert ws.wait_control(OP_PONG) == b"tls", ws.controls
    finally:
        ws.close()


# ---------------------------------------------------------------- 9: the client address

def test_status_shows_the_rtsps_viewers_address(tls):
    c = TlsRtspClient("127.0.0.1", tls.rtsps_port, timeout=15)
    stop = threading.Event()
    errors = []

    def pump():
        try:
            while not stop.is_set() and not c.closed:
                c.receive(0.2)
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(repr(e))
    reader = None
    try:
        resp = c.start("test", "tcp")
        assert resp.status == 200
        local = "%s:%d" % c.sock.getsockname()[:2]
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        st = wait_status(tls, lambda s: (session_of(s, local) or {}).get("state") == "playing"
                         and (session_of(s, local) or {}).get("bytes", 0) > 0,
                         what="playing session with client %s" % local)
        sess = session_of(st, local)
        assert sess["transport"] == "TCP" and sess["stream"].split("?")[0] == "test", sess
        assert sess["id"] == c.session, (sess, c.session)
        entry = stream_entry(st, "test")
        assert entry is not None and entry["viewers"] >= 1, st["streams"]
        for s in st["sessions"]:
            assert re.match(r"^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$", s.get("client", "")), \
                "a session's client is not an address:port: %s" % s
    finally:
        stop.set()
        if reader is not None:
            reader.join(5)
        c.teardown()
        c.close()
    assert not errors, errors
    v = c.track("video")
    assert v is not None and v.packets > 0 and v.gaps == 0, c.tracks


# ---------------------------------------------------------------- 10: certificate errors

def rtspd_check(cfg, check=True, timeout=20):
    """rtspd -t -c cfg (check) or rtspd -c cfg -> (exit status, stdout + stderr);
    it must end in time and print no sanitizer report."""
    require_server_env()
    args = (["-t"] if check else []) + ["-c", cfg]
    rc, out, err, _ = run([rtspd_bin()] + args, timeout)
    text = out + err
    m = SANITIZER_RE.search(text)
    assert m is None, "sanitizer report:\n" + text[m.start():m.start() + 3000]
    assert rc is not None, "rtspd %s did not exit within %d s:\n%s" % (" ".join(args), timeout, text[-3000:])
    return rc, text


def test_certificate_errors(certs, tmp_path):
    require_server_env()
    missing = str(tmp_path / "no-such-dir" / "missing.crt")
    garbage = str(tmp_path / "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not a PEM file\n")

    def cfg(name, **nodes):
        return Server(tmp_path / name, **nodes).config_path

    def rtsps(cert, key):
        return dict(rtsps_enable=1, rtsps_port=free_tcp_port(), rtsps_cert=cert, rtsps_key=key)

    def https(cert, key):
        return dict(rtsp_over_https=1, https_port=free_tcp_port(), https_cert=cert, https_key=key)

    # The good files check fine, for both listeners.
    good = cfg("good", **rtsps(certs.cert, certs.key), **https(certs.cert, certs.key))
    rc, out = rtspd_check(good)
    assert rc == 0, "rtspd -t with a good certificate and key: exit %s\n%s" % (rc, out)

    for name, nodes, path in [
            ("rtsps-no-cert", rtsps(missing, certs.key), missing),
            ("rtsps-bad-cert", rtsps(garbage, certs.key), garbage),
            ("https-no-key", https(certs.cert, missing), missing),
            ("https-bad-key", https(certs.cert, garbage), garbage)]:
        rc, out = rtspd_check(cfg(name, **nodes))
        assert rc == 1, "%s: rtspd -t exit %s, expected 1\n%s" % (name, rc, out)
        assert path in out, "%s: the message does not name %s:\n%s" % (name, path, out)

    for name, nodes in [("rtsps-key-mismatch", rtsps(certs.cert, certs.other_key)),
                        ("https-key-mismatch", https(certs.cert, certs.other_key))]:
        rc, out = rtspd_check(cfg(name, **nodes))
        assert rc == 1, "%s: rtspd -t exit %s, expected 1\n%s" % (name, rc, out)
        assert certs.other_key in out or re.search(r"(?i)match", out), \
            "%s: the message names neither the key nor a mismatch:\n%s" % (name, out)

    # Start-up fails the same way (and quickly).
    rc, out = rtspd_check(cfg("start-no-cert", **rtsps(missing, certs.key)), check=False)
    assert rc == 1, "rtspd -c with a missing certificate: exit %s, expected 1\n%s" % (rc, out)
    assert missing in out, "start-up: the message does not name %s:\n%s" % (missing, out)
    rc, out = rtspd_check(cfg("start-mismatch", **https(certs.cert, certs.other_key)), check=False)
    assert rc == 1, "rtspd -c with a key that does not match: exit %s, expected 1\n%s" % (rc, out)
