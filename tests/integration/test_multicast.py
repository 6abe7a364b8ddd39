"""Multicast (SPEC §4): one 232.0.0.0/8 group per stream, shared by every
session of the stream, carrying data while at least one session plays.

Everything runs in a network namespace the test creates (`ip netns add`,
`lo` up with multicast on and a 232.0.0.0/8 route, as PROTOCOL-NOTES
"Multicast on loopback" says), so the groups never leave this test: the
server, the ffmpeg clients and the probes (mcast_probe.py) are all started
with `ip netns exec`. The control socket is a path in the file system, so
rtspctl reaches the server from outside the namespace.
"""

import json
import os
import re
import subprocess
import time
import uuid

import pytest

import conftest
from conftest import Server, ctl_status, require_server_env, require_tool, wait_for

PROBE = os.path.join(conftest.HERE, "mcast_probe.py")
PYTHON = "/usr/bin/python3"
# The built-in test pattern (worker/testsrc.c).
TEST_W, TEST_H, TEST_FPS = 640, 360, 25
SECONDS = 5


@pytest.fixture(scope="module")
def netns():
    """A fresh network namespace with multicast on loopback; deleted at the
    end whatever happened. Skips only when no namespace can be created."""
    require_server_env()
    require_tool("ip")
    name = "rtspd-mc-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6])
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        reason = "cannot create a network namespace (ip netns add: %s)" % p.stderr.strip()
        print("SKIP: " + reason)
        pytest.skip(reason)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                    ["ip", "route", "add", "232.0.0.0/8", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name] + cmd, check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def in_ns(ns, cmd):
    return ["ip", "netns", "exec", ns] + list(cmd)


class NsServer(Server):
    """A Server whose processes live in the namespace (`ip netns exec` execs
    rtspd, so the pid is the master's as usual)."""

    ns = None

    def start(self, timeout=10.0):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:malloc_context_size=20")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(in_ns(self.ns, [conftest.rtspd_bin(), "-c", self.config_path]),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=env)
        self.pid = self.proc.pid
        ok = wait_for(lambda: "listening for RTSP" in self.log_text() or self.proc.poll() is not None, timeout)
        if not ok or self.proc.poll() is not None:
            self.stop(check=False)
            raise AssertionError("rtspd did not start in the namespace:\n" + self.log_text()[-4000:])
        return self


@pytest.fixture(scope="module")
def ns_server(netns, tmp_path_factory):
    """start(**config) -> a started NsServer in the namespace; all are
    stopped and checked (exit status, children, sanitizer reports) at the
    end. Each gets its own group base so that servers never share a group."""
    started = []

    def start(**cfg):
        cfg.setdefault("log_level", 1)
        cfg.setdefault("multicast_group_base", "232.0.%d.0" % (10 + len(started)))
        s = NsServer(tmp_path_factory.mktemp("rtspd-mc"), **cfg)
        s.ns = netns
        started.append(s)
        return s.start()

    yield start
    errors = []
    for s in started:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


def probe_rtsp(ns, srv, path, transport, *play):
    p = subprocess.run(in_ns(ns, [PYTHON, PROBE, "rtsp", str(srv.port), path, transport] + [str(a) for a in play]),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "probe failed: %s\n%s" % (p.stderr[-2000:], srv.log_text()[-3000:])
    return json.loads(p.stdout)


def parse_mcast_transport(value):
    m = re.match(r"RTP/AVP;multicast;destination=(232\.\d+\.\d+\.\d+);port=(\d+)-(\d+);ttl=(\d+)", value)
    assert m, "not a multicast Transport answer: %r" % value
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


class Listener:
    """A socket in the namespace joined to the group, recording what comes
    to the given ports until stop()."""

    def __init__(self, ns, group, ports):
        self.proc = subprocess.Popen(in_ns(ns, [PYTHON, PROBE, "listen", group, ",".join(map(str, ports))]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stderr.readline()
        assert b"ready" in line, "listener did not start: %r" % line

    def stop(self):
        out, err = self.proc.communicate(input=b"", timeout=30)   # stdin closed: it stops
        assert self.proc.returncode == 0, "listener failed: %s" % err[-2000:]
        return json.loads(out)


def count_between(packets, t0, t1):
    return sum(1 for t, _, _ in packets if t0 <= t < t1)


def test_two_ffmpeg_clients_share_the_group(ns_server, netns, tmp_path):
    require_tool("ffmpeg")
    srv = ns_server(multicast=0, multicast_ttl=16)

    # The ?t=multicast URL turns multicast on for this request although
    # <multicast> is 0; the SDP and the SETUP answer name the group.
    r = probe_rtsp(netns, srv, "test?t=multicast", "RTP/AVP;multicast;destination=232.9.9.9;port=5000-5001")
    assert r["describe"]["status"] == 200
    sdp = r["describe"]["body"]
    m = re.search(r"^c=IN IP4 (232\.\d+\.\d+\.\d+)/16\r?$", sdp, re.M)
    assert m, "no 232.x group in the SDP:\n" + sdp
    assert r["setup"]["status"] == 200, r["setup"]
    group, port, rtcp, ttl = parse_mcast_transport(r["setup"]["headers"]["transport"])
    # the server's group, never the client's destination=/port=
    assert group == m.group(1) == "232.0.10.0" and ttl == 16 and rtcp == port + 1, r["setup"]
    assert re.search(r"^m=video %d " % port, sdp, re.M), sdp
    assert re.search(r"^m=audio %d " % (port + 2), sdp, re.M), sdp

    listener = Listener(netns, group, [port, port + 2])
    try:
        url = srv.url("test?t=multicast")
        outs = [str(tmp_path / ("client%d.yuv" % i)) for i in range(2)]
        clients = [subprocess.Popen(in_ns(netns, ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp_multicast",
                                                  "-i", url, "-t", str(SECONDS), "-map", "0:v", "-f", "rawvideo",
                                                  "-pix_fmt", "yuv420p", "-y", o]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for o in outs]
        # While they play: two sessions, both shown as MCAST.
        st = wait_for(lambda: (lambda s: s if len([x for x in s.get("sessions", [])
                                                        if x.get("transport") == "MCAST"]) == 2 else None)(ctl_status(srv)),
                      20, step=0.3)
        results = []
        for c in clients:
            try:
                out, err = c.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                c.kill()
                out, err = c.communicate()
            results.append((c.returncode, err.decode("utf-8", "replace")))
        ended = time.time()
        assert st, "rtspctl status never showed two MCAST sessions"
        frame = TEST_W * TEST_H * 3 // 2
        for (rc, err), o in zip(results, outs):
            assert rc == 0, "ffmpeg udp_multicast failed: %s\n%s" % (err[-2000:], srv.log_text()[-3000:])
            size = os.path.getsize(o)
            assert size % frame == 0, "%s: %d bytes is not a whole number of %dx%d frames" % (o, size, TEST_W, TEST_H)
            frames = size // frame
            assert frames >= (SECONDS - 1) * TEST_FPS, "only %d frames decoded from the group" % frames
        # Both left (TEARDOWN): the group must go quiet.
        assert wait_for(lambda: "the group goes quiet" in srv.log_text(), 10), srv.log_text()[-3000:]
        time.sleep(2.5)
    finally:
        packets = listener.stop()
    played = count_between(packets, ended - SECONDS, ended - 1)
    assert played > 50, "the listener heard only %d packets while the clients played" % played
    quiet = count_between(packets, ended + 0.5, ended + 2.5)
    assert quiet == 0, "%d packets went to the group after both sessions ended" % quiet
    assert "multicast group 232.0.10.0: closed" in srv.log_text()


def test_connection_loss_silences_the_group(ns_server, netns):
    """A viewer that vanishes without TEARDOWN (its RTSP connection closes)
    leaves the group at once, rather than after the session timeout."""
    srv = ns_server(multicast=1)
    r = probe_rtsp(netns, srv, "test", "RTP/AVP;multicast")
    group, port, _, _ = parse_mcast_transport(r["setup"]["headers"]["transport"])
    listener = Listener(netns, group, [port])
    try:
        r = probe_rtsp(netns, srv, "test", "RTP/AVP;multicast", 2.0, "drop")
        assert r["play"]["status"] == 200, r["play"]
        assert wait_for(lambda: "leaving the multicast group" in srv.log_text(), 10), srv.log_text()[-3000:]
        time.sleep(2.5)
    finally:
        packets = listener.stop()
    ended = r["ended"]
    assert count_between(packets, ended - 1.5, ended) > 10, "no data while the session played"
    assert count_between(packets, ended + 0.5, ended + 2.5) == 0, "the group kept sending after the viewer left"


def test_pause_silences_the_group(ns_server, netns):
    """The group carries data while a session PLAYs, not while the only
    one is paused (it still exists, so only the refcount can stop it)."""
    srv = ns_server(multicast=1)
    r = probe_rtsp(netns, srv, "test", "RTP/AVP;multicast")
    group, port, _, _ = parse_mcast_transport(r["setup"]["headers"]["transport"])
    listener = Listener(netns, group, [port])
    try:
        r = probe_rtsp(netns, srv, "test", "RTP/AVP;multicast", 2.0, "pause")
    finally:
        packets = listener.stop()
    assert r["pause"]["status"] == 200, r["pause"]
    paused = r["paused"]
    assert count_between(packets, paused - 1.5, paused) > 10, "no data while the session played"
    assert count_between(packets, paused + 0.5, paused + 2.5) == 0, "the group kept sending while paused"


def test_on_demand_file_multicast(ns_server, netns, manifest):
    """An on-demand file's multicast sessions share one broadcast."""
    require_tool("ffmpeg")
    srv = ns_server(multicast=1)
    want = manifest["files"]["sample.mp4"][0]
    p = subprocess.run(in_ns(netns, ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp_multicast",
                                     "-i", srv.url("sample.mp4"), "-t", "3", "-map", "0:v", "-f", "framemd5", "-"]),
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, "ffmpeg: %s\n%s" % (p.stderr[-2000:], srv.log_text()[-3000:])
    frames = [l for l in p.stdout.splitlines() if l.startswith("0,")]
    assert len(frames) >= 2 * want["fps"], "only %d frames of sample.mp4 from the group" % len(frames)
    assert "set up over multicast" in srv.log_text()


def test_multicast_needs_config_or_url(ns_server, netns):
    off = ns_server(multicast=0)
    r = probe_rtsp(netns, off, "test", "RTP/AVP;multicast")
    assert r["setup"]["status"] == 461, r["setup"]
    # unicast still works on that server, and the SDP stays unicast
    assert "c=IN IP4 0.0.0.0" in r["describe"]["body"]
    r = probe_rtsp(netns, off, "test", "RTP/AVP;multicast,RTP/AVP;unicast;client_port=40000-40001")
    assert r["setup"]["status"] == 200 and "unicast" in r["setup"]["headers"]["transport"], r["setup"]

    on = ns_server(multicast=1)
    r = probe_rtsp(netns, on, "test", "RTP/AVP;multicast")
    assert r["setup"]["status"] == 200, r["setup"]
    parse_mcast_transport(r["setup"]["headers"]["transport"])
    # t=unicast in the URL says no to multicast even when it is on
    r = probe_rtsp(netns, on, "test?t=unicast", "RTP/AVP;multicast")
    assert r["setup"]["status"] == 461, r["setup"]
