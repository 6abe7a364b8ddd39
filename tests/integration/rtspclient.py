"""A small raw RTSP client for the integration tests (pure Python, no deps).

It speaks just enough RTSP/1.0 to DESCRIBE a stream, SETUP its tracks over
TCP-interleaved or UDP, PLAY/PAUSE/TEARDOWN, and count what arrives per
track: RTP packets, bytes, sequence gaps, first sequence number and RTP
timestamp, whether the first video packet starts a key frame, and RTCP
sender reports and BYEs. It can also stall (stop reading) to act as a slow
consumer.

    c = RtspClient("127.0.0.1", port)
    resp, sdp = c.describe(url)
    for i, _ in enumerate(sdp.media):
        c.setup(c.track_url(i), transport="tcp")
    c.play()
    c.receive(5.0)
    assert all(t.gaps == 0 for t in c.tracks)
    c.teardown(); c.close()
"""

import random
import re
import selectors
import socket
import struct
import time
from urllib.parse import urlsplit

USER_AGENT = "rtspd-tests/1.0"


class CIDict(dict):
    """Header dict with case-insensitive keys (last value wins)."""

    def __setitem__(self, key, value):
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return super().__contains__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def cseq(self):
        v = self.headers.get("CSeq")
        return int(v) if v is not None and v.strip().isdigit() else None

    def __repr__(self):
        return "<Response %s %d %s %r>" % (self.version, self.status, self.reason,
                                           dict(self.headers))


class ConnectionClosed(Exception):
    pass


# ---------------------------------------------------------------- SDP

class Media:
    def __init__(self, line):
        parts = line.split()
        self.type = parts[0]                 # video / audio / application
        self.port = int(parts[1].split("/")[0]) if len(parts) > 1 else 0
        self.proto = parts[2] if len(parts) > 2 else ""
        self.fmts = parts[3:]
        self.attrs = []                      # (name, value or None), in order
        self.rtpmap = {}                     # pt -> (encoding, clock, channels)
        self.fmtp = {}                       # pt -> {key: value} (keys lower case)
        self.fmtp_raw = {}                   # pt -> string
        self.control = None

    def attr(self, name):
        for n, v in self.attrs:
            if n == name:
                return v
        return None

    @property
    def pt(self):
        return int(self.fmts[0]) if self.fmts and self.fmts[0].isdigit() else None

    @property
    def encoding(self):
        """Encoding name of the first payload type, upper case ("H264", "MPEG4-GENERIC")."""
        pt = self.pt
        if pt in self.rtpmap:
            return self.rtpmap[pt][0].upper()
        return STATIC_PT.get(pt, ("", 0, 1))[0]

    @property
    def clock_rate(self):
        pt = self.pt
        if pt in self.rtpmap:
            return self.rtpmap[pt][1]
        return STATIC_PT.get(pt, ("", 90000, 1))[1]


# static payload types (RFC 3551) we may meet
STATIC_PT = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1),
             14: ("MPA", 90000, 1), 26: ("JPEG", 90000, 1), 32: ("MPV", 90000, 1)}


class Sdp:
    def __init__(self, text):
        self.text = text
        self.session_attrs = []
        self.media = []
        self.control = None
        for raw in text.splitlines():
            line = raw.strip()
            if len(line) < 2 or line[1] != "=":
                continue
            kind, value = line[0], line[2:]
            if kind == "m":
                self.media.append(Media(value))
            elif kind == "a":
                name, _, val = value.partition(":")
                val = val if _ else None
                target = self.media[-1] if self.media else None
                if target is None:
                    self.session_attrs.append((name, val))
                    if name == "control":
                        self.control = val
                    continue
                target.attrs.append((name, val))
                if name == "control":
                    target.control = val
                elif name == "rtpmap" and val:
                    pt, _, enc = val.partition(" ")
                    bits = enc.strip().split("/")
                    clock = int(bits[1]) if len(bits) > 1 and bits[1].isdigit() else 0
                    chans = int(bits[2]) if len(bits) > 2 and bits[2].isdigit() else 1
                    if pt.isdigit():
                        target.rtpmap[int(pt)] = (bits[0], clock, chans)
                elif name == "fmtp" and val:
                    pt, _, params = val.partition(" ")
                    if pt.isdigit():
                        target.fmtp_raw[int(pt)] = params.strip()
                        d = {}
                        for kv in params.split(";"):
                            k, eq, v = kv.strip().partition("=")
                            if k:
                                d[k.lower()] = v.strip() if eq else ""
                        target.fmtp[int(pt)] = d


def join_control(base, control):
    """Track URL the way libavformat builds it: an absolute control URL is
    taken as it is, a relative one is appended to the base (Content-Base, else
    the request URL) with a '/' in between when the base lacks one."""
    if control is None or control == "*":
        return base
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", control):
        return control
    if not base.endswith("/"):
        base += "/"
    return base + control


def parse_rtp_info(value):
    """'url=...;seq=1;rtptime=2,url=...' -> [{'url':..., 'seq': 1, 'rtptime': 2}, ...]"""
    out = []
    for item in re.split(r",\s*(?=url=)", value.strip()):
        d = {}
        for part in item.split(";"):
            k, _, v = part.strip().partition("=")
            k = k.lower()
            if k in ("seq", "rtptime") and v.strip().isdigit():
                d[k] = int(v)
            elif k:
                d[k] = v.strip()
        out.append(d)
    return out


def parse_range(value):
    """'npt=5.000-10.000' -> (5.0, 10.0); 'npt=now-' -> (None, None); open end -> None."""
    m = re.match(r"\s*npt\s*=\s*([0-9.]+|now)?\s*-\s*([0-9.]+)?", value or "")
    if not m:
        return None
    start = m.group(1)
    start = None if start in (None, "now") else float(start)
    end = float(m.group(2)) if m.group(2) else None
    return start, end


def parse_transport(value):
    """'RTP/AVP/TCP;unicast;interleaved=0-1' -> {'proto': ..., 'interleaved': (0, 1), ...}"""
    d = {}
    parts = [p.strip() for p in value.split(";")]
    d["proto"] = parts[0]
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        k = k.lower()
        if k in ("interleaved", "client_port", "server_port", "port"):
            nums = [int(x) for x in v.split("-") if x.strip().isdigit()]
            d[k] = tuple(nums)
        else:
            d[k] = v if eq else True
    return d


# ---------------------------------------------------------------- key frames

H264_KEY = (5, 7, 8)
H265_KEY = set(range(16, 22)) | {32, 33, 34}


def is_keyframe_start(encoding, payload):
    """True if this RTP payload carries (the start of) a key frame NAL unit or
    a parameter set, False if not, None if the codec is not inspected."""
    if not payload:
        return False
    if encoding == "H264":
        t = payload[0] & 0x1F
        if t in H264_KEY:
            return True
        if t == 24:                          # STAP-A: look at every NAL
            i = 1
            while i + 2 < len(payload):
                n = struct.unpack(">H", payload[i:i + 2])[0]
                if n and (payload[i + 2] & 0x1F) in H264_KEY:
                    return True
                i += 2 + n
            return False
        if t == 28 and len(payload) > 1:     # FU-A: start bit + IDR
            return bool(payload[1] & 0x80) and (payload[1] & 0x1F) in H264_KEY
        return False
    if encoding in ("H265", "HEVC"):
        if len(payload) < 3:
            return False
        t = (payload[0] >> 1) & 0x3F
        if t in H265_KEY:
            return True
        if t == 48:                          # aggregation packet
            i = 2
            while i + 3 < len(payload):
                n = struct.unpack(">H", payload[i:i + 2])[0]
                if n and ((payload[i + 2] >> 1) & 0x3F) in H265_KEY:
                    return True
                i += 2 + n
            return False
        if t == 49:                          # fragmentation unit
            return bool(payload[2] & 0x80) and (payload[2] & 0x3F) in H265_KEY
        return False
    if encoding == "JPEG":
        return struct.unpack(">I", b"\0" + payload[1:4])[0] == 0  # fragment offset 0
    return None


def is_fragment_continuation(encoding, payload):
    """True for the middle or end of a fragmented NAL unit (FU without S bit)."""
    if encoding == "H264" and len(payload) > 1 and payload[0] & 0x1F == 28:
        return not payload[1] & 0x80
    if encoding in ("H265", "HEVC") and len(payload) > 2 and (payload[0] >> 1) & 0x3F == 49:
        return not payload[2] & 0x80
    return False


# ---------------------------------------------------------------- statistics

class TrackStats:
    def __init__(self, index, media, url):
        self.index = index
        self.media = media
        self.url = url
        self.encoding = media.encoding if media is not None else ""
        self.clock_rate = (media.clock_rate if media is not None else 0) or 90000
        self.packets = 0
        self.bytes = 0
        self.gaps = 0            # packets missing (sum of holes in the sequence)
        self.late = 0            # duplicate or reordered packets
        self.first_seq = None
        self.last_seq = None
        self.first_rtptime = None
        self.last_rtptime = None
        self.ssrc = None
        self.ssrc_changes = 0
        self.payload_types = set()
        self.ts_backwards = 0    # RTP timestamp went back (mod 2^32)
        self.max_ts_jump = 0     # largest forward step between packets, in clock ticks
        self.key_checks = []     # video: per (re)start, did it begin at a key frame?
        self._au_ts = None
        self.first_packet_time = None
        self.last_packet_time = None
        self.rtcp_packets = 0
        self.sr_count = 0
        self.sr_times = []       # arrival times (time.monotonic())
        self.sr = []             # (ntp seconds as float, rtptime, packets, octets)
        self.bye = False
        self.bye_time = None
        self.packets_after_bye = 0

    def on_rtp(self, data, now):
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        b0, b1, seq, ts, ssrc = struct.unpack(">BBHII", data[:12])
        cc = b0 & 0x0F
        off = 12 + 4 * cc
        if b0 & 0x10 and len(data) >= off + 4:          # header extension
            off += 4 + 4 * struct.unpack(">H", data[off + 2:off + 4])[0]
        end = len(data)
        if b0 & 0x20 and end > off:                     # padding
            end -= data[-1]
        payload = data[off:end]
        self.packets += 1
        self.bytes += len(data)
        self.payload_types.add(b1 & 0x7F)
        if self.bye:
            self.packets_after_bye += 1
        if self.ssrc is None:
            self.ssrc = ssrc
        elif ssrc != self.ssrc:
            self.ssrc_changes += 1
            self.ssrc = ssrc
        if self.first_seq is None:
            self.first_seq = seq
            self.first_rtptime = ts
            self.first_packet_time = now
            self._key_check(ts, payload, start=True)
        else:
            expected = (self.last_seq + 1) & 0xFFFF
            diff = (seq - expected) & 0xFFFF
            if diff == 0:
                self._key_check(ts, payload)
            elif diff < 0x8000:
                self.gaps += diff
                self._key_check(ts, payload, start=True)
            else:
                self.late += 1
            dts = (ts - self.last_rtptime) & 0xFFFFFFFF
            if dts >= 0x80000000:
                self.ts_backwards += 1
            else:
                self.max_ts_jump = max(self.max_ts_jump, dts)
        if self.last_seq is None or ((seq - self.last_seq) & 0xFFFF) < 0x8000:
            self.last_seq = seq
            self.last_rtptime = ts
        self.last_packet_time = now

    def _key_check(self, ts, payload, start=False):
        """Where video (re)starts (the first packet, the first after a gap),
        the access unit there (packets sharing its timestamp) must hold a key
        frame or parameter sets, and its first packet must start a NAL unit
        (an SEI or AUD may come first). Results go to self.key_checks."""
        if self.media is None or self.media.type != "video":
            return
        if start:
            if self._au_ts is not None:          # a gap inside the open unit
                self.key_checks.append(False)
                self._au_ts = None
            k = is_keyframe_start(self.encoding, payload)
            if k is None or k or is_fragment_continuation(self.encoding, payload):
                self.key_checks.append(k)
            else:
                self._au_ts = ts
        elif self._au_ts is not None:
            if ts != self._au_ts:
                self.key_checks.append(False)
                self._au_ts = None
            elif is_keyframe_start(self.encoding, payload):
                self.key_checks.append(True)
                self._au_ts = None

    @property
    def first_keyframe(self):
        """Video: True if the stream started at a key frame, False if not,
        None if unknown (codec not inspected, or not decided yet)."""
        return self.key_checks[0] if self.key_checks else None

    def on_rtcp(self, data, now):
        self.rtcp_packets += 1
        i = 0
        while i + 4 <= len(data):
            b0, pt, length = struct.unpack(">BBH", data[i:i + 4])
            if b0 >> 6 != 2:
                break
            size = 4 * (length + 1)
            if pt == 200 and i + 28 <= len(data):
                _, msw, lsw, rtptime, pkts, octets = struct.unpack(">IIIIII", data[i + 4:i + 28])
                self.sr_count += 1
                self.sr_times.append(now)
                self.sr.append((msw + lsw / 2**32, rtptime, pkts, octets))
            elif pt == 203:
                if not self.bye:
                    self.bye_time = now
                self.bye = True
            i += size

    def summary(self):
        return ("track %d %s: %d pkts %d bytes gaps=%d late=%d first_seq=%s "
                "key=%s sr=%d bye=%s" % (self.index, self.encoding, self.packets,
                                         self.bytes, self.gaps, self.late, self.first_seq,
                                         self.first_keyframe, self.sr_count, self.bye))

    __repr__ = summary


# ---------------------------------------------------------------- client

class RtspClient:
    def __init__(self, host="127.0.0.1", port=554, timeout=10.0, connect=True, rcvbuf=None):
        self.host = host
        self.rcvbuf = rcvbuf         # SO_RCVBUF before connecting (slow consumers)
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.cseq = 0
        self.session = None          # id only, without ";timeout="
        self.session_header = None   # the full Session header of the SETUP reply
        self.base = None             # Content-Base (or the DESCRIBE URL)
        self.sdp = None
        self.tracks = []             # TrackStats, in SETUP order
        self.channels = {}           # interleaved channel -> (track, is_rtcp)
        self.udp = []                # (rtp socket, rtcp socket, track)
        self.play_time = None
        self.closed = False
        if connect:
            self.connect()

    # -- connection ------------------------------------------------------
    def connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.settimeout(self.timeout)
        s.connect((self.host, self.port))
        self.sock = s
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def close(self):
        for rtp, rtcp, _ in self.udp:
            rtp.close()
            rtcp.close()
        self.udp = []
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def url(self, path):
        return "rtsp://%s:%d/%s" % (self.host, self.port, path.lstrip("/"))

    # -- raw I/O -----------------------------------------------------------
    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(min(remaining, self.timeout))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def _read_item(self, deadline):
        """Read one item off the TCP connection: ('rtp', channel, data) for an
        interleaved frame, ('rtsp', Response) for a message."""
        while True:
            if self.buf[:1] == b"$":
                if len(self.buf) >= 4:
                    ch, n = struct.unpack(">BH", self.buf[1:4])
                    if len(self.buf) >= 4 + n:
                        data = self.buf[4:4 + n]
                        self.buf = self.buf[4 + n:]
                        return ("rtp", ch, data)
            elif self.buf:
                end = self.buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = self.buf[:end].decode("latin-1")
                    lines = head.split("\r\n")
                    headers = CIDict()
                    for line in lines[1:]:
                        k, sep, v = line.partition(":")
                        if sep:
                            headers[k.strip()] = v.strip()
                    length = int(headers.get("Content-Length", "0") or 0)
                    if len(self.buf) >= end + 4 + length:
                        body = self.buf[end + 4:end + 4 + length]
                        self.buf = self.buf[end + 4 + length:]
                        first = lines[0].split(" ", 2)
                        if len(first) < 2 or not first[1].isdigit():
                            raise ValueError("bad status line %r" % lines[0])
                        return ("rtsp", Response(first[0], int(first[1]),
                                                 first[2] if len(first) > 2 else "",
                                                 headers, body))
            self._fill(deadline)

    def _dispatch_interleaved(self, ch, data, now):
        entry = self.channels.get(ch)
        if entry is None:
            return
        track, is_rtcp = entry
        if is_rtcp:
            track.on_rtcp(data, now)
        else:
            track.on_rtp(data, now)

    def read_response(self, timeout=None):
        """Next RTSP response; interleaved RTP/RTCP met on the way is counted."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            item = self._read_item(deadline)
            if item[0] == "rtsp":
                return item[1]
            self._dispatch_interleaved(item[1], item[2], time.monotonic())

    def send_request(self, method, url, headers=None, body=b"", cseq=True):
        """Send one request; returns the CSeq used. Session is added when known."""
        lines = ["%s %s RTSP/1.0" % (method, url)]
        hdrs = {}
        if cseq:
            self.cseq += 1
            hdrs["CSeq"] = str(self.cseq)
        hdrs["User-Agent"] = USER_AGENT
        if self.session and method not in ("OPTIONS", "DESCRIBE"):
            hdrs["Session"] = self.session
        for k, v in (headers or {}).items():
            # explicit headers replace the defaults (None removes one)
            for existing in list(hdrs):
                if existing.lower() == k.lower():
                    del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        if isinstance(body, str):
            body = body.encode()
        if body:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            lines.append("%s: %s" % (k, v))
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self.cseq

    def request(self, method, url, headers=None, body=b"", timeout=None):
        cseq = self.send_request(method, url, headers, body)
        while True:
            resp = self.read_response(timeout)
            if resp.cseq is None or resp.cseq == cseq:
                return resp

    # -- methods -----------------------------------------------------------
    def options(self, url=None, headers=None):
        return self.request("OPTIONS", url or self.url(""), headers)

    def describe(self, url, headers=None):
        h = {"Accept": "application/sdp"}
        h.update(headers or {})
        resp = self.request("DESCRIBE", url, h)
        if resp.status != 200:
            return resp, None
        self.base = resp.headers.get("Content-Base") or url
        self.sdp = Sdp(resp.body.decode("utf-8", "replace"))
        return resp, self.sdp

    def track_url(self, i):
        return join_control(self.base, self.sdp.media[i].control)

    def setup(self, track_url, transport="tcp", headers=None, index=None):
        """SETUP one track. index: the SDP media index (default: the next one)."""
        if index is None:
            index = len(self.tracks)
        media = self.sdp.media[index] if self.sdp and index < len(self.sdp.media) else None
        udp_pair = None
        if transport == "tcp":
            ch = 2 * len(self.tracks)
            tr = "RTP/AVP/TCP;unicast;interleaved=%d-%d" % (ch, ch + 1)
        elif transport == "udp":
            udp_pair = bind_udp_pair()
            tr = "RTP/AVP;unicast;client_port=%d-%d" % (udp_pair[0].getsockname()[1],
                                                         udp_pair[1].getsockname()[1])
        else:
            tr = transport                  # a raw Transport header
        h = {"Transport": tr}
        h.update(headers or {})
        resp = self.request("SETUP", track_url, h)
        if resp.status != 200:
            if udp_pair:
                udp_pair[0].close()
                udp_pair[1].close()
            return resp
        sess = resp.headers.get("Session")
        if sess:
            self.session_header = sess
            self.session = sess.split(";")[0].strip()
        track = TrackStats(len(self.tracks), media, track_url)
        track.transport = parse_transport(resp.headers.get("Transport", ""))
        self.tracks.append(track)
        if transport == "tcp":
            got = track.transport.get("interleaved", ())
            a, b = got if len(got) == 2 else (ch, ch + 1)
            self.channels[a] = (track, False)
            self.channels[b] = (track, True)
        elif udp_pair:
            self.udp.append((udp_pair[0], udp_pair[1], track))
            # punch packets towards the server's ports, as libavformat sends:
            # an empty RTP packet and an empty receiver report
            sp = track.transport.get("server_port")
            if sp and len(sp) == 2:
                pt = media.pt if media is not None and media.pt is not None else 0
                try:
                    udp_pair[0].sendto(struct.pack(">BBHII", 0x80, pt & 0x7F, 0, 0, 0),
                                       (self.host, sp[0]))
                    udp_pair[1].sendto(struct.pack(">BBHI", 0x80, 201, 1, 0), (self.host, sp[1]))
                except OSError:
                    pass
        return resp

    def setup_all(self, transport="tcp"):
        for i in range(len(self.sdp.media)):
            resp = self.setup(self.track_url(i), transport, index=i)
            if resp.status != 200:
                return resp
        return resp

    def play(self, url=None, range_=None, headers=None):
        h = {}
        if range_:
            h["Range"] = range_
        h.update(headers or {})
        resp = self.request("PLAY", url or self.base, h)
        self.play_time = time.monotonic()
        return resp

    def pause(self, url=None):
        return self.request("PAUSE", url or self.base)

    def teardown(self, url=None):
        try:
            return self.request("TEARDOWN", url or self.base, timeout=3)
        except (OSError, ConnectionClosed, ValueError):
            return None

    def get_parameter(self, url=None, body=b""):
        return self.request("GET_PARAMETER", url or self.base, body=body)

    def start(self, path_or_url, transport="tcp", range_=None):
        """DESCRIBE + SETUP every track + PLAY. Returns the PLAY response."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        resp, sdp = self.describe(url)
        if resp.status != 200:
            raise AssertionError("DESCRIBE %s: %d %s" % (url, resp.status, resp.reason))
        resp = self.setup_all(transport)
        if resp.status != 200:
            raise AssertionError("SETUP %s: %d %s" % (url, resp.status, resp.reason))
        resp = self.play(range_=range_)
        if resp.status != 200:
            raise AssertionError("PLAY %s: %d %s" % (url, resp.status, resp.reason))
        return resp

    # -- media -------------------------------------------------------------
    def receive(self, seconds, until=None):
        """Read RTP/RTCP for `seconds` (TCP and UDP alike). Responses that
        arrive meanwhile are kept in self.unsolicited. Stops early when
        until(self) returns true or when the server closes the connection."""
        self.unsolicited = getattr(self, "unsolicited", [])
        deadline = time.monotonic() + seconds
        sel = selectors.DefaultSelector()
        if self.sock is not None and not self.closed:
            sel.register(self.sock, selectors.EVENT_READ, None)
        for rtp, rtcp, track in self.udp:
            sel.register(rtp, selectors.EVENT_READ, (track, False))
            sel.register(rtcp, selectors.EVENT_READ, (track, True))
        try:
            while True:
                # whole items already buffered first
                while self.buf and self._buffered_item_ready():
                    self._handle_item(self._read_item(deadline + 1))
                if until is not None and until(self):
                    return self
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self
                for key, _ in sel.select(min(remaining, 0.2)):
                    if key.data is None:
                        try:
                            chunk = self.sock.recv(262144)
                        except (BlockingIOError, socket.timeout):
                            continue
                        except ConnectionResetError:
                            chunk = b""
                        if not chunk:
                            self.closed = True
                            sel.unregister(self.sock)
                            if not self.udp:
                                return self
                            continue
                        self.buf += chunk
                    else:
                        track, is_rtcp = key.data
                        while True:
                            try:
                                data = key.fileobj.recv(65536, socket.MSG_DONTWAIT)
                            except (BlockingIOError, InterruptedError):
                                break
                            except OSError:
                                break
                            now = time.monotonic()
                            (track.on_rtcp if is_rtcp else track.on_rtp)(data, now)
        finally:
            sel.close()

    def _buffered_item_ready(self):
        b = self.buf
        if b[:1] == b"$":
            return len(b) >= 4 and len(b) >= 4 + struct.unpack(">H", b[2:4])[0]
        end = b.find(b"\r\n\r\n")
        if end < 0:
            return False
        m = re.search(rb"(?im)^content-length:\s*(\d+)", b[:end])
        return len(b) >= end + 4 + (int(m.group(1)) if m else 0)

    def _handle_item(self, item):
        if item[0] == "rtp":
            self._dispatch_interleaved(item[1], item[2], time.monotonic())
        else:
            self.unsolicited.append(item[1])

    def stall(self, seconds):
        """Stop reading for `seconds` (a slow consumer); the kernel buffers
        fill and the server has to cope."""
        time.sleep(seconds)

    def track(self, kind):
        """First track of a media type ("video"/"audio")."""
        for t in self.tracks:
            if t.media is not None and t.media.type == kind:
                return t
        return None


def bind_udp_pair(tries=200):
    """Bind an even/odd pair of local UDP ports (RTP, RTCP) with roomy buffers."""
    for _ in range(tries):
        port = random.randrange(20000, 60000, 2)
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind(("0.0.0.0", port))
            b.bind(("0.0.0.0", port + 1))
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
    raise OSError("no free UDP port pair")


def split_url(url):
    u = urlsplit(url)
    return u.hostname, u.port or 554, u.path + ("?" + u.query if u.query else "")
