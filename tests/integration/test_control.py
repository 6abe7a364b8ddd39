"""The control socket and rtspctl (master/control.c, tools/rtspctl.c,
docs/CONTROL.md): `status` against what the test knows it started, `kick`,
`restart`, `stop`, and rtspctl's exit statuses (1 refused, 2 usage, 3 no
server, 4 not allowed)."""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import (Viewer, alive, cmdline, ctl_status, ppid_of, rtspctl,
                      rtspctl_bin, stream_entry, wait_for, wait_status)
from rtspclient import RtspClient

TEST = "test"
A = "sample.mp4?mode=live"
B = "sample.flv?mode=live"

# (path, transport) of the five viewers of the `loaded` server
VIEWERS = [(TEST, "tcp"), (TEST, "udp"), (A, "tcp"), (A, "tcp"), (B, "udp")]
COMMANDS = ["status", "reload", "kick", "restart", "stop", "help"]


def expected_viewers(viewers):
    out = {}
    for v in viewers:
        out[v.path] = out.get(v.path, 0) + 1
    return out


def viewers_per_stream(status):
    return {s["path"]: s["viewers"] for s in status["streams"] if s["state"] != "draining"}


def start_viewers(server, spec):
    viewers = [Viewer(server.port, path, transport) for path, transport in spec]
    for v in viewers:
        v.wait_playing()
    return viewers


def assert_worker_of(server, pid, path):
    assert pid and pid > 0, "stream %s has no worker pid" % path
    assert alive(pid), "worker pid %d of %s does not exist" % (pid, path)
    assert ppid_of(pid) == server.pid, "pid %d (%s) is not a child of the master %d: parent %s" % (
        pid, path, server.pid, ppid_of(pid))
    args = cmdline(pid)
    assert "--worker" in args and path in args, "pid %d is not %s's worker: %s" % (pid, path, args)


def session_of(status, viewer):
    rows = [s for s in status["sessions"] if s["id"] == viewer.session]
    assert len(rows) == 1, "session %s (%r) listed %d times in %s" % (
        viewer.session, viewer, len(rows), status["sessions"])
    return rows[0]


@pytest.fixture(scope="module")
def loaded(server_factory):
    """A server with three streams (the test pattern and two live files) and
    five viewers: TCP and UDP mixed."""
    server = server_factory(worker_idle_timeout=120)
    viewers = start_viewers(server, VIEWERS)
    want = expected_viewers(viewers)
    wait_status(server, lambda s: viewers_per_stream(s) == want and len(s["sessions"]) == len(viewers),
                what="viewer count %s" % want)
    yield server, viewers
    for v in viewers:
        v.stop()


def test_status_json_matches_what_plays(loaded):
    server, viewers = loaded
    st = ctl_status(server)

    srv = st["server"]
    assert srv["pid"] == server.pid, srv
    assert srv["rtsp_port"] == server.port, srv
    assert os.path.realpath(srv["config"]) == os.path.realpath(server.config_path), srv
    assert isinstance(srv["version"], str) and srv["version"], srv
    assert isinstance(srv["uptime_s"], int) and srv["uptime_s"] >= 0, srv
    assert st["unanswered_workers"] == [], st

    # every stream, with a live worker that is the master's child
    want = expected_viewers(viewers)
    assert sorted(s["path"] for s in st["streams"]) == sorted(want), st["streams"]
    pids = {}
    for path, n in want.items():
        row = stream_entry(st, path)
        assert row["source"] == ("test" if path == TEST else "file"), row
        assert row["state"] == "ready", row
        assert row["viewers"] == n, "stream %s: %d viewers, %d play: %s" % (path, row["viewers"], n, row)
        assert row["restarts"] == 0, row
        assert_worker_of(server, row["pid"], path)
        pids[path] = row["pid"]
    assert len(set(pids.values())) == len(pids), "streams share a worker: %s" % pids
    assert sorted(pids.values()) == sorted(server.workers()), (pids, server.workers())

    # every session, as the client sees it
    assert len(st["sessions"]) == len(viewers), st["sessions"]
    for v in viewers:
        s = session_of(st, v)
        assert s["client"] == v.local, (s, v)
        assert s["transport"] == v.transport.upper(), (s, v)
        assert s["stream"] == v.path, (s, v)
        assert s["pid"] == pids[v.path], (s, pids)
        assert s["state"] == "playing", s

    # bytes grow while playing
    time.sleep(1.5)
    st2 = ctl_status(server)
    for v in viewers:
        before, after = session_of(st, v)["bytes"], session_of(st2, v)["bytes"]
        assert after > before, "session %s: bytes did not grow (%d -> %d)" % (v.session, before, after)
        assert v.packets > 0 and v.gaps == 0, v

    # bit rates: nonzero, and a live stream sends about what it produces
    # times its viewers
    def rates_ok(s):
        for path in want:
            row = stream_entry(s, path)
            if not row or row["bitrate_in"] <= 0 or row["bitrate_out"] <= 0:
                return False
        a = stream_entry(s, A)
        ratio = a["bitrate_out"] / a["bitrate_in"]
        return 1.3 <= ratio <= 2.7 and all(x["bitrate"] > 0 for x in s["sessions"])
    wait_status(server, rates_ok, timeout=10,
                what="nonzero bit rates (and out ~ 2 x in for %s, which has two viewers)" % A)


def test_status_json_spellings(loaded):
    """`rtspctl --json status` and `rtspctl -c CONFIG status --json` are the
    same command."""
    server, viewers = loaded
    rc, out, err = rtspctl(server, "--json", "status")
    assert rc == 0, err
    st = json.loads(out)
    assert st["server"]["pid"] == server.pid
    assert sorted(s["id"] for s in st["sessions"]) == sorted(v.session for v in viewers)

    rc, out, err = rtspctl(None, "-c", server.config_path, "status", "--json")
    assert rc == 0, err
    assert json.loads(out)["server"]["pid"] == server.pid

    rc, out, err = rtspctl(server, "status", "--xml")
    assert rc == 2, "status --xml: exit %s, %s %s" % (rc, out, err)


def test_status_human(loaded):
    server, viewers = loaded
    rc, out, err = rtspctl(server, "status")
    assert rc == 0, err
    assert str(server.pid) in out.splitlines()[0], out
    st = ctl_status(server)
    for row in st["streams"]:
        line = [ln for ln in out.splitlines() if ln.startswith(row["path"] + " ")]
        assert line, "stream %s is not in:\n%s" % (row["path"], out)
        assert str(row["pid"]) in line[0].split(), (line, row)
    for v in viewers:
        line = [ln for ln in out.splitlines() if ln.startswith(v.session)]
        assert line, "session %s is not in:\n%s" % (v.session, out)
        words = line[0].split()
        assert v.local in words and v.transport.upper() in words and v.path in words, (line, v)


def test_kick(server_factory):
    server = server_factory(worker_idle_timeout=120)
    k1, k2 = start_viewers(server, [(A, "tcp"), (A, "tcp")])
    try:
        wait_status(server, lambda s: len(s["sessions"]) == 2 and viewers_per_stream(s).get(A) == 2,
                    what="2 sessions")
        rc, out, err = rtspctl(server, "kick", k1.session)
        assert rc == 0, "kick %s: exit %s: %s" % (k1.session, rc, err)
        assert out.strip() == "session %s ended" % k1.session, out
        assert k1.ended.wait(5), "the kicked viewer's connection is still open 5 s later: %r" % k1
        assert k1.closed_at is not None, "the kicked viewer ended otherwise: %r" % k1
        assert k1.bye, "the kicked viewer got no RTCP BYE before the close: %r" % k1

        st = wait_status(server, lambda s: len(s["sessions"]) == 1 and viewers_per_stream(s).get(A) == 1,
                         what="the kicked session gone")
        assert st["sessions"][0]["id"] == k2.session, st["sessions"]
        # the other viewer of the same stream did not notice
        p = k2.packets
        assert wait_for(lambda: k2.packets > p + 20, 5), "the other viewer stopped receiving: %r" % k2
        assert not k2.ended.is_set() and k2.gaps == 0, k2

        # unknown sessions: refused
        for sid in (k1.session, "0123456789ABCDEF"):
            rc, out, err = rtspctl(server, "kick", sid)
            assert rc == 1, "kick of unknown session %s: exit %s, %s %s" % (sid, rc, out, err)
            assert sid in err, err
        assert not k2.ended.is_set(), k2
    finally:
        for v in (k1, k2):
            v.stop()


def test_kick_udp_session(server_factory):
    """A UDP session gets its BYE over UDP, and its RTSP connection is
    closed too (docs/CONTROL.md: "RTCP BYE to the viewer, then its
    connection is closed")."""
    server = server_factory(worker_idle_timeout=120)
    k, other = start_viewers(server, [(TEST, "udp"), (TEST, "udp")])
    try:
        wait_status(server, lambda s: len(s["sessions"]) == 2, what="2 sessions")
        rc, out, err = rtspctl(server, "kick", k.session)
        assert rc == 0, "kick %s: exit %s: %s" % (k.session, rc, err)
        assert out.strip() == "session %s ended" % k.session, out
        assert wait_for(lambda: k.bye, 5), "the kicked UDP viewer got no RTCP BYE: %r" % k
        st = wait_status(server, lambda s: [x["id"] for x in s["sessions"]] == [other.session],
                         what="only the other session left")
        assert stream_entry(st, TEST)["viewers"] == 1, st
        assert not other.bye and not other.ended.is_set(), other
        assert k.ended.wait(5) and k.closed_at is not None, \
            "the kicked UDP session's RTSP connection is still open 5 s later: %r" % k
    finally:
        k.stop()
        other.stop()


def test_restart(server_factory):
    server = server_factory(worker_idle_timeout=120)
    r1, r2 = start_viewers(server, [(B, "udp"), (TEST, "tcp")])
    try:
        st = wait_status(server, lambda s: stream_entry(s, B) and stream_entry(s, B)["viewers"] == 1
                         and stream_entry(s, TEST) and stream_entry(s, TEST)["viewers"] == 1,
                         what="one viewer on each stream")
        old = stream_entry(st, B)
        test_pid = stream_entry(st, TEST)["pid"]
        assert_worker_of(server, old["pid"], B)

        rc, out, err = rtspctl(server, "restart", B)
        assert rc == 0, "restart %s: exit %s: %s" % (B, rc, err)
        st = ctl_status(server)
        new = stream_entry(st, B)
        assert new is not None, st
        assert new["pid"] not in (0, old["pid"]), "no new worker: %s -> %s" % (old, new)
        assert new["restarts"] == old["restarts"] + 1, (old, new)
        assert str(old["pid"]) in out and str(new["pid"]) in out, out
        assert_worker_of(server, new["pid"], B)
        assert wait_for(lambda: not alive(old["pid"]), 5), "the old worker %d is still there" % old["pid"]
        wait_status(server, lambda s: not [x for x in s["streams"] if x["pid"] == old["pid"]],
                    what="no trace of the old worker")

        # its viewer was told, the other stream's viewer was not disturbed
        assert r1.ended.wait(5), "the viewer of the restarted stream is still connected: %r" % r1
        assert r1.bye, "the viewer of the restarted stream got no RTCP BYE: %r" % r1
        p = r2.packets
        assert wait_for(lambda: r2.packets > p + 20, 5), r2
        assert not r2.ended.is_set() and r2.gaps == 0, r2
        assert stream_entry(ctl_status(server), TEST)["pid"] == test_pid

        # the new worker serves
        with RtspClient("127.0.0.1", server.port) as c:
            c.start(B, "tcp")
            c.receive(2.0)
            assert c.tracks and all(t.packets > 0 for t in c.tracks), c.tracks
            c.teardown()

        for bad in ("nosuch.mp4", "sample.ts?mode=live"):   # no such stream / never started
            rc, out, err = rtspctl(server, "restart", bad)
            assert rc == 1, "restart %s: exit %s, %s %s" % (bad, rc, out, err)
    finally:
        r1.stop()
        r2.stop()


# ---------------------------------------------------------------- exit statuses

def test_no_server(tmp_path):
    rc, out, err = rtspctl(str(tmp_path / "nothing.sock"), "status")
    assert rc == 3, "exit %s: %s %s" % (rc, out, err)
    assert "no rtspd answers" in err, err
    # a socket file nobody listens on (a server that died)
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(stale)
    s.close()
    rc, out, err = rtspctl(stale, "reload")
    assert rc == 3, "exit %s: %s %s" % (rc, out, err)
    assert "no rtspd answers" in err, err


def test_usage(tmp_path):
    nowhere = str(tmp_path / "nothing.sock")
    for args in (["frobnicate"], ["kick"], ["restart"], ["restart", "a", "b"], ["stop", "now"], []):
        rc, out, err = rtspctl(nowhere, *args)
        assert rc == 2, "rtspctl %s: exit %s (usage errors are 2): %s %s" % (args, rc, out, err)
    rc, out, err = rtspctl(nowhere, "frobnicate")
    assert "frobnicate" in err, err


def test_help(tmp_path):
    rc, out, err = rtspctl(str(tmp_path / "nothing.sock"), "help")
    assert rc == 0, "help needs no server: exit %s %s" % (rc, err)
    for cmd in COMMANDS:
        assert any(ln.split()[:1] == [cmd] for ln in out.splitlines()), "help does not list %s:\n%s" % (cmd, out)


def test_permission(server_factory):
    if os.geteuid() != 0:
        reason = "needs root to run rtspctl as another user"
        print("SKIP: " + reason)
        pytest.skip(reason)
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv is not installed")
    # The socket goes into a directory everyone may enter, so that only the
    # socket's own mode and the server's credential check stand in the way.
    d = tempfile.mkdtemp(prefix="rtspd-ctl-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        path = os.path.join(d, "ctl.sock")
        server = server_factory(control_socket=path)
        server.control_socket = path
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o660, "control socket mode %o, not 0660" % mode
        rc, out, err = rtspctl(server, "status")
        assert rc == 0, "root is refused: %s %s" % (rc, err)

        nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run(nobody + [rtspctl_bin(), "--version"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("cannot run rtspctl as uid 65534: %r" % probe.stderr[-300:])
        rc, out, err = rtspctl(server, "status", prefix=nobody)
        assert rc == 4, "uid 65534 on a root-owned 0660 socket: exit %s: %s %s" % (rc, out, err)
        assert "permission denied" in err, err

        # The server checks the peer's credentials itself too: a socket
        # made world-writable does not let anyone in.
        # (several times: the answer must not depend on who is faster, the
        # server refusing or rtspctl sending its request)
        os.chmod(path, 0o666)
        for _ in range(5):
            rc, out, err = rtspctl(server, "stop", prefix=nobody)
            assert rc == 4, "uid 65534 through a 0666 socket: exit %s: %s %s" % (rc, out, err)
            assert "permission denied" in err, err
        assert server.alive(), "an unprivileged `rtspctl stop` stopped the server"
        os.chmod(path, 0o660)
        assert rtspctl(server, "status")[0] == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_stop(server_factory):
    server = server_factory()
    v = Viewer(server.port, TEST, "tcp").wait_playing()
    try:
        assert wait_for(lambda: server.workers(TEST), 10), "no worker for the viewer"
        tree = [server.pid] + server.children()
        rc, out, err = rtspctl(server, "stop")
        assert rc == 0, "stop: exit %s: %s" % (rc, err)
        assert out.strip() == "stopping", out
        try:
            code = server.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("rtspd still runs 5 s after `rtspctl stop`:\n" + server.log_text()[-3000:])
        assert code == 0, "rtspd exit status %s after `rtspctl stop`:\n%s" % (code, server.log_text()[-3000:])
        assert wait_for(lambda: not [p for p in tree if alive(p)], 3), \
            "left running after stop: %s" % [(p, cmdline(p)) for p in tree if alive(p)]
        assert v.ended.wait(5), "the viewer is still connected: %r" % v
        assert v.bye, "the viewer got no RTCP BYE on stop: %r" % v
        assert not os.path.exists(server.control_socket), "the control socket file is left behind"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        v.stop()
        if server.alive():
            server.proc.send_signal(signal.SIGKILL)
    server.stop()   # the log must hold no sanitizer report
