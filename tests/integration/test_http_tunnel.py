"""RTSP over HTTP (the QuickTime GET/POST tunnel): real clients decode
through it, on the RTSP port and on <http_port>; a raw client checks the
joining of the two halves in either order, base64 split at every byte
offset, per-message padding, whitespace, raw '$' frames, and bad input."""

import base64
import re
import socket
import time

import pytest

from conftest import free_tcp_port, require_tool, run

COOKIE_RE = re.compile(rb"\r\n\r\n")


def decode_frames(url, seconds, extra=()):
    """ffmpeg through the tunnel: (video frames, audio frames, stderr)."""
    rc, out, err, _ = run(["ffmpeg", "-v", "error", "-rtsp_transport", "http", *extra, "-i", url,
                           "-t", str(seconds), "-f", "framemd5", "-"], 60)
    assert rc == 0, "ffmpeg over the HTTP tunnel failed: rc=%s %s" % (rc, err[-2000:])
    video = [l for l in out.splitlines() if l.startswith("0,")]
    audio = [l for l in out.splitlines() if l.startswith("1,")]
    return video, audio, err


def test_ffmpeg_decodes_through_the_tunnel(server):
    video, audio, _ = decode_frames(server.url("test"), 5)
    # 5 s of 25 fps video and 44.1/48 kHz AAC, decoded (framemd5 hashes every frame).
    assert len(video) >= 110, "only %d video frames in 5 s" % len(video)
    assert len(audio) >= 150, "only %d audio frames in 5 s" % len(audio)
    # The test pattern moves: frames differ.
    assert len({l.split(",")[-1] for l in video}) > 50
    assert "tunnel" in server.log_text() and "GET (server to client channel) open" in server.log_text()


def test_gstreamer_rtsph_plays(server):
    require_tool("gst-launch-1.0")
    rc, out, err, secs = run(["gst-launch-1.0", "-q", "rtspsrc", "location=rtsph://127.0.0.1:%d/test"
                              % server.port, "!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "!",
                              "videoconvert", "!", "video/x-raw,format=I420", "!", "fakesink",
                              "num-buffers=125", "sync=true"], 60)
    assert rc == 0, "gst-launch rtsph:// failed: rc=%s %s %s" % (rc, out[-1000:], err[-2000:])
    # 125 frames played in real time (sync=true): about 5 s.
    assert secs >= 4.0, "125 frames in %.1f s: not played in real time" % secs
    log = server.log_text()
    assert log.count("POST (client to server channel) open") >= 1


def test_http_port_listener(server_factory):
    http_port = free_tcp_port()
    srv = server_factory(rtsp_over_http=1, http_port=http_port)
    video, _, _ = decode_frames("rtsp://127.0.0.1:%d/test" % http_port, 3)
    assert len(video) >= 60
    # The HTTP port is a tunnel port: plain RTSP there is served too, but
    # what matters is that the connection went through the tunnel.
    assert "GET (server to client channel) open" in srv.log_text()


# ---------------------------------------------------------------- raw client

class Half:
    def __init__(self, port, head):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
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
            if not chunk:
                break
            self.buf += chunk
        return self.buf

    def closed(self, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        self.s.close()


def get_head(path, cookie, minor=0):
    return ("GET /%s HTTP/1.%d\r\nx-sessioncookie: %s\r\nAccept: application/x-rtsp-tunnelled\r\n"
            "Pragma: no-cache\r\nCache-Control: no-cache\r\n\r\n" % (path, minor, cookie)).encode()


def post_head(path, cookie):
    return ("POST /%s HTTP/1.0\r\nx-sessioncookie: %s\r\nContent-Type: application/x-rtsp-tunnelled\r\n"
            "Pragma: no-cache\r\nCache-Control: no-cache\r\nContent-Length: 32767\r\n"
            "Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n" % (path, cookie)).encode()


def rtsp_responses(buf):
    """The RTSP responses in what the GET carried after the HTTP head."""
    head_end = buf.find(b"\r\n\r\n")
    rest = buf[head_end + 4:]
    out = []
    while rest:
        if rest[:1] == b"$":
            if len(rest) < 4:
                break
            n = 4 + (rest[2] << 8 | rest[3])
            rest = rest[n:]
            continue
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            break
        head = rest[:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        body_len = int(m.group(1)) if m else 0
        if len(rest) < end + 4 + body_len:
            break
        status = int(head.split(" ", 2)[1])
        cseq = re.search(r"(?im)^cseq:\s*(\d+)", head)
        out.append((status, int(cseq.group(1)) if cseq else None, rest[end + 4:end + 4 + body_len]))
        rest = rest[end + 4 + body_len:]
    return out


def requests(url):
    return [("OPTIONS %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url).encode(),
            ("DESCRIBE %s RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n" % url).encode()]


def tunnel_exchange(server, cookie, order, pieces):
    """Opens GET and POST (order "get-first" or "post-first"), sends the
    POST body as the given list of byte strings, returns (GET's http head,
    RTSP responses)."""
    path = "test"
    if order == "get-first":
        g = Half(server.port, get_head(path, cookie))
        g.read_until(lambda b: b"\r\n\r\n" in b)
        p = Half(server.port, post_head(path, cookie))
    else:
        p = Half(server.port, post_head(path, cookie))
        p.send(pieces[0])
        pieces = pieces[1:]
        time.sleep(0.05)
        g = Half(server.port, get_head(path, cookie))
    for piece in pieces:
        p.send(piece)
    buf = g.read_until(lambda b: len(rtsp_responses(b)) >= 2 if b"\r\n\r\n" in b else False)
    head = buf[:buf.find(b"\r\n\r\n")].decode("latin-1")
    resps = rtsp_responses(buf)
    g.close()
    p.close()
    return head, resps


def check_responses(head, resps):
    assert head.startswith("HTTP/1.0 200 OK"), head
    assert "application/x-rtsp-tunnelled" in head
    assert [(s, c) for s, c, _ in resps] == [(200, 1), (200, 2)], resps
    assert b"m=video" in resps[1][2] and b"H264" in resps[1][2]


@pytest.mark.parametrize("order", ["get-first", "post-first"])
def test_raw_tunnel_every_split(server, order):
    url = server.url("test")
    body = b"".join(base64.b64encode(r) for r in requests(url))
    # The POST body split in two at every byte offset, on fresh tunnels.
    step = 1 if order == "get-first" else 7
    for k in range(1, len(body), step):
        head, resps = tunnel_exchange(server, "c%s%d" % (order[0], k), order, [body[:k], body[k:]])
        check_responses(head, resps)


def test_raw_tunnel_padding_whitespace_and_raw_frames(server):
    url = server.url("test")
    opt, desc = requests(url)
    # Each message encoded alone (own padding), CRLF and spaces between, a
    # raw '$' frame (an RTCP receiver report) between them, and the whole
    # thing dribbled in 3-byte pieces.
    rr = bytes([0x80, 201, 0, 1, 0, 0, 0, 1])
    body = base64.b64encode(opt) + b"\r\n " + b"$\x01\x00\x08" + rr + base64.b64encode(desc) + b"\n"
    pieces = [body[i:i + 3] for i in range(0, len(body), 3)]
    head, resps = tunnel_exchange(server, "padded", "get-first", pieces)
    check_responses(head, resps)


def test_get_echoes_http_version(server):
    g = Half(server.port, get_head("test", "v11", minor=1))
    buf = g.read_until(lambda b: b"\r\n\r\n" in b)
    g.close()
    assert buf.startswith(b"HTTP/1.1 200 OK\r\n"), buf[:200]


def test_tunnel_plays_and_closing_get_ends_it(server):
    url = server.url("test")
    g = Half(server.port, get_head("test", "play1"))
    p = Half(server.port, post_head("test", "play1"))
    msgs = [("DESCRIBE %s RTSP/1.0\r\nCSeq: 1\r\n\r\n" % url),
            ("SETUP %s/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
             % url)]
    for m in msgs:
        p.send(base64.b64encode(m.encode()))
    buf = g.read_until(lambda b: len(rtsp_responses(b)) >= 2)
    resps = rtsp_responses(buf)
    assert [s for s, _, _ in resps] == [200, 200], resps
    sess = re.search(rb"Session:\s*([0-9A-Fa-f]+)", buf).group(1).decode()
    p.send(base64.b64encode(("PLAY %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n" % (url, sess)).encode()))
    # Interleaved RTP comes down the GET, raw: count packets on channel 0.
    g.buf = b""
    deadline = time.monotonic() + 10
    packets = 0
    while packets < 50 and time.monotonic() < deadline:
        g.read_until(lambda b: len(b) > 4096, timeout=1)
        packets += g.buf.count(b"$\x00")
        g.buf = b""
    assert packets >= 50, "only %d interleaved RTP frames through the tunnel" % packets
    p.close()                   # closing the POST does not end the tunnel...
    time.sleep(0.3)
    g.buf = b""
    g.read_until(lambda b: len(b) > 4096, timeout=3)
    assert len(g.buf) > 4096, "media stopped when the POST closed"
    g.close()                   # ...closing the GET does
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ("session %s ended" % sess) not in server.log_text():
        time.sleep(0.1)
    assert ("session %s ended" % sess) in server.log_text()


# ---------------------------------------------------------------- bad input

def http_status(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    buf = b""
    s.settimeout(timeout)
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    m = re.match(rb"HTTP/1\.\d (\d{3})", buf)
    return int(m.group(1)) if m else None, buf


def test_bad_tunnel_requests(server):
    # No cookie, unknown path, other methods, a WebSocket upgrade of the
    # wrong version, HTTP/2.
    assert http_status(server.port, b"GET /test HTTP/1.0\r\n\r\n")[0] == 400
    assert http_status(server.port, b"POST /test HTTP/1.0\r\nContent-Length: 10\r\n\r\n")[0] == 400
    assert http_status(server.port, b"GET /no-such-file.mp4 HTTP/1.0\r\nx-sessioncookie: a\r\n\r\n")[0] == 404
    assert http_status(server.port, b"PUT /test HTTP/1.0\r\nx-sessioncookie: a\r\n\r\n")[0] == 405
    assert http_status(server.port, b"GET /test HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")[0] == 426
    assert http_status(server.port, b"GET /test HTTP/2.0\r\nx-sessioncookie: a\r\n\r\n")[0] == 505
    # A second GET with a cookie already in use is refused; the first stays.
    g = Half(server.port, get_head("test", "dup"))
    g.read_until(lambda b: b"\r\n\r\n" in b)
    assert http_status(server.port, get_head("test", "dup"))[0] == 409
    g.close()
    # A POST body that is not base64 closes the POST (the GET stays usable).
    g = Half(server.port, get_head("test", "junk"))
    g.read_until(lambda b: b"\r\n\r\n" in b)
    p = Half(server.port, post_head("test", "junk"))
    p.send(b"!!!! not base64 !!!!")
    assert p.closed(), "a POST with a non-base64 body was not closed"
    assert not g.closed(timeout=0.5)
    g.close()
    assert "the POST body is not base64" in server.log_text()
    # The server still serves.
    video, _, _ = decode_frames(server.url("test"), 1)
    assert len(video) >= 15
