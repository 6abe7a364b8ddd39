"""Bad input of every kind gets a clear error (or the connection closed), and
the server goes on serving everybody else."""

import os
import re
import shutil
import socket
import threading
import time

import pytest

from rtspclient import RtspClient


# ---------------------------------------------------------------- helpers

def exchange(server, data, timeout=12.0, wait_close=0.0):
    """Send raw bytes on a fresh connection; return (status or None, closed,
    head) where status is that of the first response, closed whether the
    server closed the connection (within the time allowed)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf, closed = b"", False
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed = True
                break
            buf += chunk
        if not closed and wait_close:
            deadline = time.monotonic() + wait_close
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    if not s.recv(65536):
                        closed = True
                        break
                except socket.timeout:
                    break
                except ConnectionResetError:
                    closed = True
                    break
        head = buf.split(b"\r\n\r\n")[0].decode("latin-1")
        m = re.match(r"RTSP/\d\.\d (\d{3})", head)
        return (int(m.group(1)) if m else None), closed, head
    finally:
        s.close()


def still_serving(server):
    t0 = time.monotonic()
    with RtspClient("127.0.0.1", server.port, timeout=5) as c:
        r = c.options(server.url(""))
    assert r.status == 200, "OPTIONS after bad input: %r" % r
    assert server.alive(), "the master died"
    return time.monotonic() - t0


def req(method, url, *headers, version="RTSP/1.0"):
    lines = ["%s %s %s" % (method, url, version)] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------- malformed requests

def test_garbage(server):
    data = bytes(range(256)) * 4 + b"\r\n\r\n"
    status, closed, head = exchange(server, data, timeout=12, wait_close=3)
    assert status == 400 or (status is None and closed), \
        "garbage: status %s, closed %s, %r" % (status, closed, head[:200])
    still_serving(server)


def test_huge_header(server):
    data = (b"OPTIONS " + server.url("").encode() + b" RTSP/1.0\r\nCSeq: 1\r\nX-Big: " +
            b"a" * (100 * 1024) + b"\r\n\r\n")
    t0 = time.monotonic()
    status, closed, head = exchange(server, data, timeout=12, wait_close=3)
    assert status in (400, 413, 431, None), "100 KiB header: %r" % head[:200]
    assert closed, "the connection stayed open after a 100 KiB header"
    assert time.monotonic() - t0 < 8, "took the time-out instead of the size limit"
    still_serving(server)


def test_missing_cseq(server):
    status, _, head = exchange(server, req("OPTIONS", server.url("")), timeout=5)
    assert status == 400, head
    still_serving(server)


def test_unknown_method(server):
    status, _, head = exchange(server, req("FROBNICATE", server.url("sample.mp4"), "CSeq: 1"),
                               timeout=5)
    assert status in (501, 405), head
    still_serving(server)


def test_rtsp_2_0(server):
    status, _, head = exchange(server, req("OPTIONS", server.url(""), "CSeq: 1",
                                           version="RTSP/2.0"), timeout=5)
    assert status == 505, head
    still_serving(server)


def test_unknown_require(server):
    status, _, head = exchange(server, req("DESCRIBE", server.url("sample.mp4"), "CSeq: 1",
                                           "Require: com.example.no-such-feature"), timeout=5)
    assert status == 551, head
    m = re.search(r"(?im)^Unsupported:\s*(.*)$", head)
    assert m and "com.example.no-such-feature" in m.group(1), head
    still_serving(server)


def test_wrong_session(server):
    # no session at all on this connection
    status, _, head = exchange(server, req("PLAY", server.url("sample.mp4"), "CSeq: 1",
                                           "Session: 0123456789ABCDEF"), timeout=5)
    assert status == 454, head
    # a real session, then PLAY with another id
    with RtspClient("127.0.0.1", server.port) as c:
        r, sdp = c.describe(server.url("sample.mp4"))
        assert r.status == 200
        assert c.setup_all("tcp").status == 200
        r = c.play(headers={"Session": c.session + "x"})
        assert r.status == 454, r
        r = c.play()
        assert r.status == 200, r
    still_serving(server)


def test_unsupported_transport(server):
    with RtspClient("127.0.0.1", server.port) as c:
        r, sdp = c.describe(server.url("sample.mp4"))
        assert r.status == 200
        r = c.setup(c.track_url(0), "RAW/RAW/UDP;unicast;client_port=5000-5001", index=0)
        assert r.status == 461, r
    still_serving(server)


def test_silent_connections_are_closed(server):
    """The master gives a connection 10 s to send its first request."""
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    partial = socket.create_connection(("127.0.0.1", server.port))
    partial.sendall(b"OPTIONS " + server.url("").encode() + b" RTSP/1.0\r\nCSeq: 1\r\n")
    socks = idle + [partial]
    closed_at = {}
    t0 = time.monotonic()

    def watch(i, s):
        s.settimeout(14)
        try:
            while s.recv(4096):
                pass
        except socket.timeout:
            return
        except OSError:
            pass
        closed_at[i] = time.monotonic() - t0

    threads = [threading.Thread(target=watch, args=(i, s), daemon=True)
               for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    slowest = 0.0
    while time.monotonic() - t0 < 12.5 and len(closed_at) < len(socks):
        slowest = max(slowest, still_serving(server))
        time.sleep(0.5)
    for t in threads:
        t.join(3)
    for s in socks:
        s.close()
    assert slowest < 1.0, "others waited %.1f s for an answer meanwhile" % slowest
    assert len(closed_at) == len(socks), "still open after 12.5 s: %s" % (
        [i for i in range(len(socks)) if i not in closed_at])
    assert max(closed_at.values()) <= 12.5, closed_at


# ---------------------------------------------------------------- paths

@pytest.fixture(scope="module")
def jail(server_factory, tmp_path_factory):
    """A media dir with real files, and next to it files it must not give
    away: outside.mp4, a symlink to it and a symlinked directory."""
    root = tmp_path_factory.mktemp("jail")
    media = root / "media"
    (media / "sub").mkdir(parents=True)
    src = os.environ["RTSPD_MEDIA"]
    shutil.copy(os.path.join(src, "sample.mp4"), media / "sample.mp4")
    shutil.copy(os.path.join(src, "sample.mp4"), media / "sub" / "nested.mp4")
    shutil.copy(os.path.join(src, "sample.mp4"), root / "outside.mp4")
    (root / "outdir").mkdir()
    shutil.copy(os.path.join(src, "sample.mp4"), root / "outdir" / "sample.mp4")
    os.symlink(root / "outside.mp4", media / "evil.mp4")
    os.symlink(root / "outdir", media / "evildir")
    srv = server_factory(media=str(media))
    srv.jail_root = str(root)
    return srv


def describe_status(server, raw_path):
    url = "rtsp://127.0.0.1:%d%s" % (server.port, raw_path)
    status, _, head = exchange(server, req("DESCRIBE", url, "CSeq: 1",
                                           "Accept: application/sdp"), timeout=10)
    return status, head


@pytest.mark.parametrize("path", ["/sample.mp4", "/sub/nested.mp4"])
def test_paths_inside_play(jail, path):
    status, head = describe_status(jail, path)
    assert status == 200, head


@pytest.mark.parametrize("path", [
    "/../outside.mp4",
    "/sub/../../outside.mp4",
    "/%2e%2e/outside.mp4",
    "/%2E%2E/outside.mp4",
    "/sub/%2e%2e/%2e%2e/outside.mp4",
    "/..%2foutside.mp4",
    "/%2e%2e%2foutside.mp4",
    "/etc/passwd",
    "//etc/passwd",
    "/../../../../../../etc/passwd",
    "ABSOLUTE",                      # //<tmp>/outside.mp4
    "/evil.mp4",                     # symlink to outside.mp4
    "/evildir/sample.mp4",           # through a symlinked directory
])
def test_paths_outside_are_404(jail, path):
    if path == "ABSOLUTE":
        path = "/" + os.path.join(jail.jail_root, "outside.mp4")
    status, head = describe_status(jail, path)
    assert status == 404, "%s: %r" % (path, head[:300])
    still_serving(jail)


# ---------------------------------------------------------------- slow consumer

def test_slow_consumer(server):
    """One viewer stops reading for 5 s (its socket buffers fill) while five
    others read: they see every packet, the server's memory stays bounded."""
    others, errors = [], []

    def viewer():
        c = RtspClient("127.0.0.1", server.port)
        try:
            c.start("test", "tcp")
            c.receive(9.0)
            others.append(c)
        except Exception as e:
            errors.append(repr(e))
        finally:
            c.close()

    slow = RtspClient("127.0.0.1", server.port, rcvbuf=32 * 1024)
    threads = [threading.Thread(target=viewer, daemon=True) for _ in range(5)]
    try:
        slow.start("test", "tcp")
        for t in threads:
            t.start()
        slow.receive(1.0)
        base_rss = server.total_rss_kb()
        peak = base_rss
        t_end = time.monotonic() + 5.0             # the stall: read nothing
        while time.monotonic() < t_end:
            time.sleep(0.25)
            peak = max(peak, server.total_rss_kb())
        resumed = time.monotonic()
        slow.receive(2.5)
        peak = max(peak, server.total_rss_kb())
        last = slow.track("video").last_packet_time
        for t in threads:
            t.join(20)
    finally:
        slow.close()
    assert not errors, errors
    assert len(others) == 5
    for c in others:
        for t in c.tracks:
            assert t.packets > 0, t
            assert t.gaps == 0 and t.late == 0, "a slow viewer disturbed another: %r" % t
    assert not slow.closed, "the slow viewer was disconnected"
    # if the server skipped packets for it, it skipped to a key frame
    v = slow.track("video")
    assert v.key_checks and all(k is True for k in v.key_checks), \
        "the slow viewer resumed off a key frame: %r %r" % (v, v.key_checks)
    assert last - resumed > 1.5, "the slow viewer got no new packets once it read again"
    grew_mb = (peak - base_rss) / 1024.0
    assert grew_mb < 50, "server RSS grew %.1f MB during a 5 s stall" % grew_mb
    still_serving(server)
