"""RTSP over WebSocket (subprotocol rtsp.onvif.org): ffmpeg decodes through a
small TCP <-> WebSocket bridge written here; a raw client checks the
handshake, several requests in one frame, a request fragmented or split over
frames, text frames, ping/pong, close, unmasked frames, bad handshakes, and a
SETUP + PLAY whose interleaved RTP comes back in WebSocket frames."""

import base64
import hashlib
import os
import random
import re
import socket
import struct
import threading
import time

from conftest import free_tcp_port, run, wait_for
from rtspclient import CIDict, Sdp, join_control

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOL = "rtsp.onvif.org"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/websocket", key=None, version=13, protocol=PROTOCOL, host="127.0.0.1"):
    """The client's opening handshake; key=None leaves Sec-WebSocket-Key out."""
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Version: %d" % version]
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: %s" % protocol)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(opcode, payload=b"", fin=True, mask=True):
    """One client frame (RFC 6455 5.2), masked with a random key unless told."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack(">BB", b0, m | n)
    elif n < 65536:
        head = struct.pack(">BBH", b0, m | 126, n)
    else:
        head = struct.pack(">BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(c ^ key[i & 3] for i, c in enumerate(payload))
    return head + key + masked


def parse_http_head(head):
    """'HTTP/1.1 101 ...' head -> (status, CIDict of headers)."""
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.\d (\d{3})", lines[0])
    headers = CIDict()
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip()] = v.strip()
    return (int(m.group(1)) if m else None), headers


def take_items(buf):
    """Whole items at the start of an RTSP byte stream -> (items, rest).
    Items: ("rtp", channel, data) for a '$' frame, ("rtsp", status, CIDict,
    body) for a response."""
    items = []
    while buf:
        if buf[:1] == b"$":
            if len(buf) < 4:
                break
            ch, n = struct.unpack(">BH", buf[1:4])
            if len(buf) < 4 + n:
                break
            items.append(("rtp", ch, buf[4:4 + n]))
            buf = buf[4 + n:]
            continue
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = buf[:end].decode("latin-1").split("\r\n")
        headers = CIDict()
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if sep:
                headers[k.strip()] = v.strip()
        body_len = int(headers.get("Content-Length", "0") or 0)
        if len(buf) < end + 4 + body_len:
            break
        first = lines[0].split(" ", 2)
        assert first[0] == "RTSP/1.0" and len(first) > 1 and first[1].isdigit(), \
            "not an RTSP response in the WebSocket stream: %r" % lines[0]
        items.append(("rtsp", int(first[1]), headers, buf[end + 4:end + 4 + body_len]))
        buf = buf[end + 4 + body_len:]
    return items, buf


class WsConn:
    """A raw WebSocket client connection to rtspd."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.raw = b""           # bytes from the server not parsed into frames yet
        self.stream = b""        # data-frame payloads not parsed into items yet
        self.items = []          # parsed items not consumed yet
        self.controls = []       # (opcode, payload) of control frames, in order
        self.frames = []         # (fin, opcode, length) of every server frame
        self.eof = False
        self.send_lock = threading.Lock()

    # -- handshake ---------------------------------------------------------
    def handshake(self, request):
        """Sends an opening handshake, reads the HTTP head -> (status, headers, head)."""
        self.s.sendall(request)
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                break
        end = self.raw.find(b"\r\n\r\n")
        assert end >= 0, "no HTTP response head to the upgrade: %r" % self.raw[:500]
        head, self.raw = self.raw[:end], self.raw[end + 4:]
        status, headers = parse_http_head(head)
        return status, headers, head

    def open(self, path="/websocket"):
        key = new_key()
        status, headers, head = self.handshake(upgrade_request(path, key))
        assert status == 101, "upgrade refused: %r" % head
        assert headers.get("Sec-WebSocket-Accept") == ws_accept(key), head
        return self

    # -- I/O ---------------------------------------------------------------
    def send(self, data):
        with self.send_lock:
            self.s.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, mask=True):
        self.send(frame(opcode, payload, fin, mask))

    def _recv(self, deadline):
        """One recv into self.raw; False on EOF. socket.timeout past deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.s.settimeout(remaining)
        try:
            chunk = self.s.recv(262144)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        return True

    def _parse_frame(self):
        b = self.raw
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, pos = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, pos = struct.unpack(">Q", b[2:10])[0], 10
        assert not b1 & 0x80, "the server sent a masked frame (first bytes %r)" % b[:16]
        assert not b0 & 0x70, "the server set RSV bits (first bytes %r)" % b[:16]
        if len(b) < pos + n:
            return None
        self.raw = b[pos + n:]
        return bool(b0 & 0x80), b0 & 0x0F, b[pos:pos + n]

    def read_frame(self, timeout=None):
        """Next server frame (fin, opcode, payload), None at EOF; data
        payloads also go to self.stream, control frames to self.controls."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f = self._parse_frame()
            if f is not None:
                fin, op, payload = f
                self.frames.append((fin, op, len(payload)))
                if op in (OP_CONT, OP_TEXT, OP_BINARY):
                    self.stream += payload
                else:
                    assert op in (OP_CLOSE, OP_PING, OP_PONG), "unknown opcode %d from the server" % op
                    assert fin and len(payload) <= 125, "bad control frame from the server: %r" % (f,)
                    self.controls.append((op, payload))
                return f
            if self.eof or not self._recv(deadline):
                assert not self.raw, "EOF inside a frame: %r" % self.raw[:64]
                return None

    def read_items(self, pred, timeout=None):
        """Reads frames until pred(list of parsed items) or EOF/timeout; returns the items."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            new, self.stream = take_items(self.stream)
            self.items += new
            if pred(self.items) or self.eof:
                return self.items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.items
            try:
                self.read_frame(remaining)
            except socket.timeout:
                return self.items

    def responses(self, n, timeout=None):
        """The first n RTSP responses (fewer on EOF/timeout), consumed."""
        self.read_items(lambda it: sum(1 for i in it if i[0] == "rtsp") >= n, timeout)
        out = [i for i in self.items if i[0] == "rtsp"][:n]
        for r in out:
            self.items.remove(r)
        return out

    def wait_control(self, opcode, timeout=None):
        """Reads until a control frame with opcode arrives -> its payload (None if not)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, (op, payload) in enumerate(self.controls):
                if op == opcode:
                    del self.controls[i]
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                if self.read_frame(remaining) is None:
                    return None
            except socket.timeout:
                return None

    def wait_eof(self, timeout=5):
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                self.read_frame(remaining)
            except socket.timeout:
                return False
        return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def options(url, cseq):
    return ("OPTIONS %s RTSP/1.0\r\nCSeq: %d\r\n\r\n" % (url, cseq)).encode()


def describe(url, cseq):
    return ("DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\n\r\n" % (url, cseq)).encode()


def status_cseq(resps):
    return [(r[1], int(r[2].get("CSeq", "-1"))) for r in resps]


def assert_sdp(resp):
    assert resp[1] == 200, resp
    assert "application/sdp" in resp[2].get("Content-Type", ""), resp
    assert b"m=video" in resp[3] and b"H264" in resp[3], resp[3][:500]


def close_code(payload):
    assert payload is not None, "no close frame from the server"
    assert len(payload) != 1, "a close frame with a 1-byte payload: %r" % payload
    return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None


# ---------------------------------------------------------------- ffmpeg through a bridge

class Bridge:
    """Listens on a local TCP port; each accepted connection is carried over
    its own WebSocket to rtspd. TCP -> masked frames of varied sizes (some
    messages fragmented with continuation frames); data-frame payloads from
    the server -> TCP."""

    SIZES = [1, 3, 17, 64, 125, 126, 200, 1000, 65536]

    def __init__(self, ws_port, seed):
        self.ws_port = ws_port
        self.rng = random.Random(seed)
        self.errors = []
        self.stats = {"connections": 0, "up_frames": 0, "fragmented": 0, "up_bytes": 0,
                      "down_frames": 0, "down_bytes": 0}
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while True:
            try:
                tcp, _ = self.lsock.accept()
            except OSError:
                return
            self.stats["connections"] += 1
            t = threading.Thread(target=self._serve, args=(tcp, self.rng.randrange(1 << 30)), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, tcp, seed):
        try:
            ws = WsConn(self.ws_port, timeout=30)
            key = new_key()
            status, headers, head = ws.handshake(upgrade_request("/websocket", key))
            if status != 101 or headers.get("Sec-WebSocket-Accept") != ws_accept(key) \
                    or headers.get("Sec-WebSocket-Protocol") != PROTOCOL:
                self.errors.append("handshake: %r" % head)
                tcp.close()
                ws.close()
                return
        except Exception as e:   # noqa: BLE001 - reported by the test
            self.errors.append("connect: %r" % e)
            tcp.close()
            return
        up = threading.Thread(target=self._up, args=(tcp, ws, random.Random(seed)), daemon=True)
        up.start()
        try:
            while True:
                f = ws.read_frame(timeout=30)
                if f is None:
                    break
                fin, op, payload = f
                if op in (OP_CONT, OP_TEXT, OP_BINARY):
                    self.stats["down_frames"] += 1
                    self.stats["down_bytes"] += len(payload)
                    ws.stream = b""
                    tcp.sendall(payload)
                elif op == OP_PING:
                    ws.send_frame(OP_PONG, payload)
                elif op == OP_CLOSE:
                    break
        except (OSError, socket.timeout):
            pass
        except AssertionError as e:
            self.errors.append("from the server: %s" % e)
        finally:
            try:
                tcp.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tcp.close()
            up.join(10)
            ws.close()

    def _up(self, tcp, ws, rng):
        try:
            while True:
                data = tcp.recv(rng.choice([1, 50, 4096, 65536]))
                if not data:
                    break
                self.stats["up_bytes"] += len(data)
                while data:
                    n = rng.choice(self.SIZES)
                    piece, data = data[:n], data[n:]
                    if len(piece) >= 3 and rng.random() < 0.3:
                        # one message in three fragments
                        a, b = sorted(rng.sample(range(1, len(piece)), 2))
                        ws.send(frame(OP_BINARY, piece[:a], fin=False) + frame(OP_CONT, piece[a:b], fin=False)
                                + frame(OP_CONT, piece[b:], fin=True))
                        self.stats["fragmented"] += 1
                        self.stats["up_frames"] += 3
                    else:
                        ws.send_frame(OP_BINARY, piece)
                        self.stats["up_frames"] += 1
            ws.send_frame(OP_CLOSE, struct.pack(">H", 1000))
        except OSError:
            pass

    def close(self):
        self.lsock.close()
        for t in self.threads:
            t.join(10)


def test_ffmpeg_decodes_through_a_websocket_bridge(server):
    seed = random.randrange(1 << 30)
    bridge = Bridge(server.port, seed)
    try:
        rc, out, err, _ = run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i",
                               "rtsp://127.0.0.1:%d/test" % bridge.port, "-t", "5", "-f", "framemd5", "-"], 60)
    finally:
        bridge.close()
    info = "seed=%d bridge=%s errors=%s" % (seed, bridge.stats, bridge.errors)
    assert rc == 0, "ffmpeg through the WebSocket bridge failed: rc=%s %s\n%s" % (rc, err[-2000:], info)
    assert not bridge.errors, info
    video = [l for l in out.splitlines() if l.startswith("0,")]
    audio = [l for l in out.splitlines() if l.startswith("1,")]
    assert len(video) >= 110, "only %d video frames in 5 s; %s" % (len(video), info)
    assert len(audio) >= 150, "only %d audio frames in 5 s; %s" % (len(audio), info)
    assert len({l.split(",")[-1] for l in video}) > 50, "the video frames do not change; %s" % info
    # Everything really went through WebSocket frames.
    assert bridge.stats["connections"] >= 1 and bridge.stats["down_bytes"] > 100000, info
    assert bridge.stats["up_frames"] > 4, info


# ---------------------------------------------------------------- raw client

def test_handshake_response(server):
    # RFC 6455 1.3's example, to check the helper itself.
    assert ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    ws = WsConn(server.port)
    key = new_key()
    status, headers, head = ws.handshake(upgrade_request("/websocket", key))
    try:
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert status == 101, head
        assert headers.get("Upgrade", "").lower() == "websocket", head
        assert "upgrade" in [t.strip().lower() for t in headers.get("Connection", "").split(",")], head
        assert headers.get("Sec-WebSocket-Accept") == ws_accept(key), head
        assert headers.get("Sec-WebSocket-Protocol") == PROTOCOL, head
        # Nothing but frames after the head, and the connection works.
        ws.send_frame(OP_BINARY, options(server.url("test"), 1))
        assert status_cseq(ws.responses(1)) == [(200, 1)]
    finally:
        ws.close()
    # Any path: the stream is named by the RTSP requests inside.
    ws = WsConn(server.port)
    try:
        key = new_key()
        status, headers, head = ws.handshake(upgrade_request("/some/other/path?x=1", key))
        assert status == 101 and headers.get("Sec-WebSocket-Accept") == ws_accept(key), head
        ws.send_frame(OP_BINARY, describe(server.url("test"), 1))
        r = ws.responses(1)
        assert len(r) == 1, ws.frames
        assert_sdp(r[0])
    finally:
        ws.close()


def test_two_requests_in_one_frame(server):
    url = server.url("test")
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(url, 1) + describe(url, 2))
        resps = ws.responses(2)
        assert status_cseq(resps) == [(200, 1), (200, 2)], (resps, ws.frames)
        assert "DESCRIBE" in resps[0][2].get("Public", ""), resps[0]
        assert_sdp(resps[1])
    finally:
        ws.close()


def test_fragmented_and_split_requests(server):
    url = server.url("test")
    ws = WsConn(server.port).open()
    try:
        # One message in three fragments: binary FIN=0, continuation FIN=0,
        # continuation FIN=1.
        req = describe(url, 1)
        a, b = 10, len(req) - 7
        ws.send_frame(OP_BINARY, req[:a], fin=False)
        time.sleep(0.05)
        ws.send_frame(OP_CONT, req[a:b], fin=False)
        time.sleep(0.05)
        ws.send_frame(OP_CONT, req[b:], fin=True)
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 1)], (resps, ws.frames)
        assert_sdp(resps[0])
        # One request over two complete binary frames (cut inside a header line).
        req = describe(url, 2)
        cut = req.index(b"CSeq") + 2
        ws.send_frame(OP_BINARY, req[:cut])
        time.sleep(0.1)
        assert not ws.responses(1, timeout=0.3), "answered half a request"
        ws.send_frame(OP_BINARY, req[cut:])
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 2)], (resps, ws.frames)
        assert_sdp(resps[0])
        # The tail of one request and the head of the next in one frame, the
        # rest in a fragmented message; then a request in a text frame.
        r3, r4 = options(url, 3), describe(url, 4)
        ws.send_frame(OP_BINARY, r3[:20])
        ws.send_frame(OP_BINARY, r3[20:] + r4[:30])
        ws.send(frame(OP_BINARY, r4[30:40], fin=False) + frame(OP_CONT, r4[40:], fin=True))
        ws.send_frame(OP_TEXT, options(url, 5))
        resps = ws.responses(3)
        assert status_cseq(resps) == [(200, 3), (200, 4), (200, 5)], (resps, ws.frames)
        assert_sdp(resps[1])
    finally:
        ws.close()


def test_ping_pong(server):
    url = server.url("test")
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_PING, b"hello")
        assert ws.wait_control(OP_PONG) == b"hello", (ws.controls, ws.frames)
        # Nothing else was sent: no session plays.
        assert not ws.stream and not ws.items, ws.stream[:200]
        # An empty ping; then a ping between the fragments of a request
        # (control frames may come inside a fragmented message, RFC 6455 5.4).
        ws.send_frame(OP_PING, b"")
        assert ws.wait_control(OP_PONG) == b""
        req = options(url, 1)
        ws.send(frame(OP_BINARY, req[:15], fin=False) + frame(OP_PING, b"in-between")
                + frame(OP_CONT, req[15:], fin=True))
        assert ws.wait_control(OP_PONG) == b"in-between", (ws.controls, ws.frames)
        assert status_cseq(ws.responses(1)) == [(200, 1)], ws.frames
    finally:
        ws.close()


def test_close_handshake(server):
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(server.url("test"), 1))
        assert status_cseq(ws.responses(1)) == [(200, 1)]
        ws.send_frame(OP_CLOSE, struct.pack(">H", 1000) + b"bye")
        payload = ws.wait_control(OP_CLOSE)
        assert payload is not None, "no close frame in answer to a close: %r" % ws.frames
        code = close_code(payload)
        assert code in (None, 1000), "close code %s in answer to a normal close" % code
        assert ws.wait_eof(5), "the server did not close the TCP connection after the close handshake"
    finally:
        ws.close()


def test_unmasked_frame_is_a_protocol_error(server):
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(server.url("test"), 1), mask=False)
        payload = ws.wait_control(OP_CLOSE)
        assert payload is not None, "no close frame after an unmasked frame: %r" % ws.frames
        assert close_code(payload) == 1002, "close payload %r, not 1002" % payload
        assert ws.wait_eof(5), "the server did not close the connection after an unmasked frame"
        # The unmasked frame's content was not acted upon.
        assert b"RTSP/1.0" not in ws.stream and not ws.items, ws.stream[:200]
    finally:
        ws.close()
    # The server still serves.
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(server.url("test"), 1))
        assert status_cseq(ws.responses(1)) == [(200, 1)]
    finally:
        ws.close()


def handshake_status(port, request):
    ws = WsConn(port)
    try:
        status, headers, head = ws.handshake(request)
    finally:
        ws.close()
    return status, headers, head


def test_bad_handshakes(server):
    status, _, head = handshake_status(server.port, upgrade_request("/websocket", key=None))
    assert status == 400, "missing Sec-WebSocket-Key: %r" % head
    status, headers, head = handshake_status(server.port, upgrade_request("/websocket", new_key(), version=8))
    assert status in (400, 426), "Sec-WebSocket-Version: 8: %r" % head
    if status == 426:
        assert headers.get("Sec-WebSocket-Version") == "13", head
    # The server still upgrades a good one.
    ws = WsConn(server.port).open()
    ws.close()


def test_upgrade_on_the_http_port(server_factory):
    http_port = free_tcp_port()
    srv = server_factory(rtsp_over_http=1, http_port=http_port)
    ws = WsConn(http_port).open()
    try:
        ws.send_frame(OP_BINARY, options(srv.url("test"), 1) + describe(srv.url("test"), 2))
        resps = ws.responses(2)
        assert status_cseq(resps) == [(200, 1), (200, 2)], (resps, ws.frames)
        assert_sdp(resps[1])
    finally:
        ws.close()


def test_setup_play_over_websocket(server):
    url = server.url("test")
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, describe(url, 1))
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 1)], resps
        sdp = Sdp(resps[0][3].decode("utf-8", "replace"))
        base = resps[0][2].get("Content-Base") or url
        vi = [i for i, m in enumerate(sdp.media) if m.type == "video"]
        assert vi, sdp.text
        video = sdp.media[vi[0]]
        track = join_control(base, video.control)
        ws.send_frame(OP_BINARY, ("SETUP %s RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
                                  % track).encode())
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 2)], resps
        assert "interleaved=0-1" in resps[0][2].get("Transport", ""), resps[0]
        session = resps[0][2].get("Session", "").split(";")[0].strip()
        assert session, resps[0]
        # PLAY, cut over two frames.
        play = ("PLAY %s RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n" % (base, session)).encode()
        ws.send_frame(OP_BINARY, play[:7])
        ws.send_frame(OP_BINARY, play[7:])
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 3)], resps

        def rtp(items):
            return [i for i in items if i[0] == "rtp" and i[1] == 0]
        items = ws.read_items(lambda it: len(rtp(it)) >= 50, timeout=10)
        pkts = rtp(items)
        assert len(pkts) >= 50, "only %d RTP packets on channel 0 in 10 s (frames: %d)" % (
            len(pkts), len(ws.frames))
        assert all(i[1] in (0, 1) for i in items if i[0] == "rtp"), \
            "interleaved data on a channel not set up: %s" % sorted({i[1] for i in items if i[0] == "rtp"})
        seqs = []
        for _, _, data in pkts:
            assert len(data) >= 12 and data[0] >> 6 == 2, "not RTP: %r" % data[:16]
            assert data[1] & 0x7F == video.pt, "payload type %d, SDP says %s" % (data[1] & 0x7F, video.pt)
            seqs.append(struct.unpack(">H", data[2:4])[0])
        gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != (a + 1) & 0xFFFF]
        assert not gaps, "RTP sequence not contiguous: %s (of %d)" % (gaps[:10], len(seqs))
        # A ping while media flows: the pong comes among the data frames.
        ws.send_frame(OP_PING, b"while playing")
        assert ws.wait_control(OP_PONG) == b"while playing", ws.controls
        # The stream carries on; no partial '$' frame broken by the pong.
        before = len(rtp(ws.items))
        items = ws.read_items(lambda it: len(rtp(it)) >= before + 20, timeout=10)
        more = [struct.unpack(">H", d[2:4])[0] for _, _, d in rtp(items)]
        gaps = [(a, b) for a, b in zip(more, more[1:]) if b != (a + 1) & 0xFFFF]
        assert len(more) >= before + 20 and not gaps, (len(more), before, gaps[:10])
    finally:
        ws.close()
    # The client closed the socket: the session ends.
    assert wait_for(lambda: ("session %s ended" % session) in server.log_text(), 10), \
        "session %s did not end within 10 s of the client closing:\n%s" % (session, server.log_text()[-3000:])


def test_fragment_rules_across_the_hand_off(server):
    """The first request completes inside a fragmented message (the master
    routes on it and hands the connection over mid-message): the
    continuation is taken by the worker. Then RFC 6455 §5.4 is enforced: a
    new data frame inside an open fragmented message is a protocol error."""
    url = server.url("test")
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(url, 1), fin=False)
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 1)], (resps, ws.frames)
        ws.send_frame(OP_CONT, describe(url, 2), fin=True)
        resps = ws.responses(1)
        assert status_cseq(resps) == [(200, 2)], (resps, ws.frames)
        # Outside a fragmented message now: a stray continuation is refused.
        ws.send_frame(OP_CONT, options(url, 3), fin=True)
        payload = ws.wait_control(OP_CLOSE)
        assert payload is not None and close_code(payload) == 1002, ws.frames
        assert ws.wait_eof()
    finally:
        ws.close()
    assert "continuation frame outside a fragmented message" in server.log_text()


def test_fragment_rules_before_the_hand_off(server):
    """The same rules hold while the master still reads the first request:
    a continuation with no message open, or a new message inside an open
    one, is a protocol error (close 1002), and nothing is answered."""
    url = server.url("test")
    for frames in ([frame(OP_CONT, options(url, 1))],
                   [frame(OP_BINARY, b"OPT", fin=False), frame(OP_BINARY, options(url, 1))]):
        ws = WsConn(server.port).open()
        try:
            ws.send(b"".join(frames))
            payload = ws.wait_control(OP_CLOSE)
            assert payload is not None and close_code(payload) == 1002, ws.frames
            assert ws.wait_eof()
            assert not ws.responses(1, timeout=0.2), "answered a request from a broken frame sequence"
        finally:
            ws.close()
    assert "frame breaks the fragmentation rules" in server.log_text()


def test_text_messages_must_be_utf8(server):
    """RFC 6455 §8.1: a text message that is not UTF-8 closes the connection
    with 1007, whether the master (first request) or the worker (after the
    hand-off) reads it, and also when the bad sequence spans two frames. A
    valid multi-byte character split across frames is fine."""
    url = server.url("test")
    # Before the hand-off: an overlong encoding of '/' in the first request.
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_TEXT, options(url, 1).replace(b"OPTIONS", b"OPTIONS\xc0\xaf"))
        payload = ws.wait_control(OP_CLOSE)
        assert payload is not None and close_code(payload) == 1007, ws.frames
        assert ws.wait_eof()
        assert not ws.responses(1, timeout=0.2)
    finally:
        ws.close()
    # After the hand-off: a text message whose last frame ends mid-character
    # (the lead byte of a 3-byte sequence in the first frame, one
    # continuation byte in the final one).
    ws = WsConn(server.port).open()
    try:
        ws.send_frame(OP_BINARY, options(url, 1))
        assert status_cseq(ws.responses(1)) == [(200, 1)]
        ws.send_frame(OP_TEXT, b"GET_PARAMETER " + url.encode() + b" RTSP/1.0\r\nX: \xe2", fin=False)
        ws.send_frame(OP_CONT, b"\x82", fin=True)
        payload = ws.wait_control(OP_CLOSE)
        assert payload is not None and close_code(payload) == 1007, ws.frames
        assert ws.wait_eof()
    finally:
        ws.close()
    assert "text message that is not UTF-8" in server.log_text()
    # Valid UTF-8 split across frames (U+20AC in the middle of a header
    # value): answered.
    ws = WsConn(server.port).open()
    try:
        msg = options(url, 1).replace(b"\r\n\r\n", b"\r\nUser-Agent: \xe2\x82\xac\r\n\r\n")
        cut = msg.index(b"\xe2") + 1
        ws.send_frame(OP_TEXT, msg[:cut], fin=False)
        ws.send_frame(OP_CONT, msg[cut:], fin=True)
        assert status_cseq(ws.responses(1)) == [(200, 1)], ws.frames
    finally:
        ws.close()
