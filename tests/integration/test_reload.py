"""Reloading the configuration of a running server (master/reload.c,
docs/CONTROL.md "Reload"): viewers of streams whose configuration did not
change lose nothing, a stream whose <output> changed gets a new worker, a
bad file changes nothing, a new <rtsp_port> or <control_socket> moves the
listener, a file gone from media_dir ends its stream; and SIGTERM under load
ends everything cleanly."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from conftest import (Bench, Viewer, alive, cmdline, ctl_status, free_tcp_port, media_dir,
                      rtspctl, stream_entry, wait_for, wait_status)
from rtspclient import RtspClient

TEST = "test"
A = "sample.mp4?mode=live"
B = "sample.flv?mode=live"


# ---------------------------------------------------------------- helpers

def write_config(server, base, extra="", **nodes):
    """Rewrites the server's file from `base` (its text at start): nodes
    replace (or add) top-level values, extra is raw XML put before
    </config>. Returns the new text."""
    text = base
    for k, v in nodes.items():
        text, n = re.subn(r"<%s>[^<]*</%s>" % (k, k), "<%s>%s</%s>" % (k, v, k), text)
        if not n:
            text = text.replace("</config>", "  <%s>%s</%s>\n</config>" % (k, v, k))
    if extra:
        text = text.replace("</config>", extra + "\n</config>")
    with open(server.config_path, "w") as f:
        f.write(text)
    return text


def output_for(url, kbps):
    return ("  <output>\n    <url>%s</url>\n    <video><bitrate>%d</bitrate></video>\n  </output>"
            % (url, kbps))


def reload(server, expect=0):
    rc, out, err = rtspctl(server, "reload")
    assert rc == expect, "rtspctl reload: exit %s (expected %s):\n%s%s" % (rc, expect, out, err)
    return out, err


def streams_line(out):
    m = re.search(r"^streams: (\d+) kept running untouched, (\d+) restarted, (\d+) ended$", out, re.M)
    assert m, "no 'streams: K kept running untouched, R restarted, E ended' line in:\n" + out
    return tuple(int(x) for x in m.groups())


def viewers_of(status, path):
    row = stream_entry(status, path)
    return row["viewers"] if row else None


def pid_of(server, path):
    row = stream_entry(ctl_status(server), path)
    return row["pid"] if row else 0


def start_worker(server, path):
    """Makes the master start the stream's worker (a DESCRIBE) and waits
    until status shows it ready; returns its pid."""
    with RtspClient("127.0.0.1", server.port, timeout=15) as c:
        resp, _ = c.describe(c.url(path))
        assert resp.status == 200, resp
    st = wait_status(server, lambda s: (stream_entry(s, path) or {}).get("state") == "ready",
                     what="a ready worker for %s" % path)
    return stream_entry(st, path)["pid"]


def describe_status(port, path):
    with RtspClient("127.0.0.1", port, timeout=10) as c:
        resp, _ = c.describe(c.url(path))
        return resp.status


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def assert_no_loss(result, viewers):
    summary = "rtspbench: %s" % {k: result[k] for k in ("connected", "streaming", "failed", "lost",
                                                        "viewers_with_loss", "max_silence_ms", "errors")}
    assert result["connected"] == viewers, summary
    assert result["failed"] == 0, summary
    assert result["streaming"] == viewers, summary
    assert result["lost"] == 0 and result["viewers_with_loss"] == 0, summary
    assert result["reordered"] == 0 and result["ssrc_changes"] == 0, summary


# ---------------------------------------------------------------- tests

def test_reload_without_dropping_a_packet(server_factory):
    """10 viewers of A over TCP while the configuration is reloaded 5 times
    with changes that concern B (its <output>) or every process (the log
    level): A's worker stays, its viewers lose nothing; B's worker is
    replaced each time its output changed, and only then."""
    server = server_factory(worker_idle_timeout=120)
    base = open(server.config_path).read()
    b_pid = start_worker(server, B)
    bench = Bench(server.url(A), 10, 12, "-T", "tcp")
    try:
        st = wait_status(server, lambda s: viewers_of(s, A) == 10, what="10 viewers of " + A)
        a_pid = stream_entry(st, A)["pid"]
        steps = [  # (log_level, B's output bitrate or None)
            (1, 800), (2, 800), (2, 900), (1, 900), (2, 1000)]
        level, kbps = 1, None
        for i, (new_level, new_kbps) in enumerate(steps):
            write_config(server, base, output_for("sample.flv", new_kbps), log_level=new_level)
            out, _ = reload(server)
            assert "configuration %s reloaded" % server.config_path in out, out
            b_changed = new_kbps != kbps
            if new_level != level:
                assert "  <log_level>: %d -> %d" % (level, new_level) in out.splitlines(), out
            if b_changed:
                assert re.search(r"^  stream %s: configuration changed: worker pid %d stopped"
                                 % (re.escape(B), b_pid), out, re.M), out
                assert streams_line(out) == (1, 1, 0), out
                assert "not supported yet" in out, out
                new_b = pid_of(server, B)
                assert new_b not in (0, b_pid), "B's worker was not replaced: %d -> %d" % (b_pid, new_b)
                assert wait_for(lambda: not alive(b_pid), 5), "B's old worker %d is still there" % b_pid
                b_pid = new_b
            else:
                assert streams_line(out) == (2, 0, 0), out
                assert "stream %s" % B not in out, out
                assert pid_of(server, B) == b_pid, "B's worker changed though its configuration did not"
            st = ctl_status(server)
            assert stream_entry(st, A)["pid"] == a_pid, "A's worker changed at reload %d:\n%s" % (i + 1, out)
            assert viewers_of(st, A) == 10, "A lost viewers at reload %d: %s" % (i + 1, st["streams"])
            assert alive(a_pid)
            level, kbps = new_level, new_kbps
            time.sleep(1.0)
        rc, result, err = bench.result()
    finally:
        bench.kill()
    assert_no_loss(result, 10)
    assert rc == 0, err[-2000:]
    assert pid_of(server, A) == a_pid
    server.stop()


def test_log_level_applies_without_restart(server_factory):
    """A new log level reaches the running workers at once: at WARN a new
    session's INFO lines are not logged, back at INFO they are, and the
    worker is the same all along."""
    server = server_factory(log_level=2, worker_idle_timeout=120)
    base = open(server.config_path).read()
    pid = start_worker(server, A)

    def one_session():
        with RtspClient("127.0.0.1", server.port) as c:
            c.start(A, "tcp")
            c.receive(0.3)
            sid = c.session
            c.teardown()
        return sid

    write_config(server, base, log_level=3)
    out, _ = reload(server)
    assert "  <log_level>: 2 -> 3" in out.splitlines() and streams_line(out) == (1, 0, 0), out
    quiet = one_session()
    write_config(server, base, log_level=2)
    out, _ = reload(server)
    assert "  <log_level>: 3 -> 2" in out.splitlines() and streams_line(out) == (1, 0, 0), out
    loud = one_session()
    assert wait_for(lambda: re.search(r"worker\[%d\].*session %s: .*set up" % (pid, loud), server.log_text()), 5), \
        "back at INFO, the worker did not log session %s:\n%s" % (loud, server.log_text()[-3000:])
    assert quiet not in server.log_text(), \
        "at WARN the worker still logged INFO lines of session %s" % quiet
    assert pid_of(server, A) == pid and alive(pid), "the worker was restarted for a log level change"
    server.stop()


def test_bad_reload_changes_nothing(server_factory):
    server = server_factory(worker_idle_timeout=120)
    base = open(server.config_path).read()
    v = Viewer(server.port, A, "tcp").wait_playing()
    try:
        before = wait_status(server, lambda s: viewers_of(s, A) == 1, what="one viewer")
        new_port = free_tcp_port()

        # a value out of range, next to a port change that must not happen
        text = write_config(server, base, rtsp_port=new_port, log_level=9)
        line = text[:text.index("<log_level>")].count("\n") + 1
        rc, out, err = rtspctl(server, "reload")
        assert rc == 1, "a bad configuration was accepted: exit %s:\n%s%s" % (rc, out, err)
        assert "reload refused: %s:%d: <log_level>" % (server.config_path, line) in err, err
        assert not out.strip(), "a refused reload printed changes:\n" + out

        # the same through SIGHUP
        server.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(re.findall(r"reload refused", server.log_text())) >= 2, 5), \
            "SIGHUP with a bad file: no 'reload refused' in the log"

        # a port that cannot be bound is refused as well
        blocker = socket.socket()
        blocker.bind(("0.0.0.0", 0))
        blocker.listen(1)
        try:
            write_config(server, base, rtsp_port=blocker.getsockname()[1])
            rc, out, err = rtspctl(server, "reload")
            assert rc == 1, "a port in use was accepted: exit %s:\n%s%s" % (rc, out, err)
            assert "reload refused" in err and str(blocker.getsockname()[1]) in err, err
        finally:
            blocker.close()

        assert server.alive()
        after = ctl_status(server)
        assert after["server"]["rtsp_port"] == server.port, after["server"]
        assert [(s["path"], s["pid"], s["state"]) for s in after["streams"]] == \
            [(s["path"], s["pid"], s["state"]) for s in before["streams"]], (before, after)
        assert [s["id"] for s in after["sessions"]] == [s["id"] for s in before["sessions"]]
        assert describe_status(server.port, A) == 200, "the old port stopped serving"
        assert refuses(new_port), "the refused configuration's port %d was opened" % new_port
        p = v.packets
        assert wait_for(lambda: v.packets > p + 20, 5) and v.gaps == 0 and not v.ended.is_set(), v

        write_config(server, base)
        out, _ = reload(server)
        assert "  no setting changed" in out.splitlines() and streams_line(out) == (1, 0, 0), out
    finally:
        v.stop()
    server.stop()


def test_port_change(server_factory):
    server = server_factory(worker_idle_timeout=120)
    base = open(server.config_path).read()
    old_port = server.port
    bench = Bench(server.url(A), 2, 8, "-T", "tcp")
    try:
        st = wait_status(server, lambda s: viewers_of(s, A) == 2, what="2 viewers")
        a_pid = stream_entry(st, A)["pid"]
        new_port = free_tcp_port()
        write_config(server, base, rtsp_port=new_port)
        out, _ = reload(server)
        server.port = new_port
        assert "  <rtsp_port>: %d -> %d" % (old_port, new_port) in out.splitlines(), out
        assert streams_line(out) == (1, 0, 0), out
        assert ctl_status(server)["server"]["rtsp_port"] == new_port

        # the new port serves, the old one is closed
        with RtspClient("127.0.0.1", new_port) as c:
            c.start(A, "tcp")
            c.receive(1.0)
            assert c.tracks and all(t.packets > 0 for t in c.tracks), c.tracks
            c.teardown()
        assert wait_for(lambda: refuses(old_port), 3), "the old port %d still accepts" % old_port

        # the viewers that came in through the old port played on
        rc, result, err = bench.result()
    finally:
        bench.kill()
    assert_no_loss(result, 2)
    assert rc == 0, err[-2000:]
    assert pid_of(server, A) == a_pid
    server.stop()


def test_control_socket_moved(server_factory):
    server = server_factory()
    base = open(server.config_path).read()
    old = server.control_socket
    new = os.path.join(server.dir, "ctl2.sock")
    write_config(server, base, control_socket=new)
    out, _ = reload(server)
    assert '  <control_socket>: "%s" -> "%s"' % (old, new) in out.splitlines(), out
    server.control_socket = new
    assert ctl_status(server)["server"]["pid"] == server.pid
    rc, out, err = rtspctl(old, "status")
    assert rc == 3, "the old control socket still answers: exit %s" % rc
    assert not os.path.exists(old), "the old socket file is left behind"
    server.stop()


def test_file_removed_ends_its_stream(server_factory, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(os.path.join(media_dir(), "sample.mp4"), str(media / "clip.mp4"))
    clip = "clip.mp4?mode=live"
    server = server_factory(media=str(media), worker_idle_timeout=120)
    gone, stays = Viewer(server.port, clip, "tcp"), Viewer(server.port, TEST, "tcp")
    try:
        gone.wait_playing()
        stays.wait_playing()
        st = wait_status(server, lambda s: viewers_of(s, clip) == 1 and viewers_of(s, TEST) == 1,
                         what="one viewer on each stream")
        pid = stream_entry(st, clip)["pid"]
        test_pid = stream_entry(st, TEST)["pid"]
        os.unlink(str(media / "clip.mp4"))
        out, _ = reload(server)
        assert re.search(r"^  stream %s: its file is no longer in media_dir: worker pid %d stopped"
                         % (re.escape(clip), pid), out, re.M), out
        assert streams_line(out) == (1, 0, 1), out
        assert gone.ended.wait(5) and gone.bye, "the viewer of the removed file: %r" % gone
        assert wait_for(lambda: not alive(pid), 5), "the worker of the removed file is still there"
        assert describe_status(server.port, clip) == 404
        assert pid_of(server, TEST) == test_pid and not stays.ended.is_set() and stays.gaps == 0, stays
    finally:
        gone.stop()
        stays.stop()
    server.stop()


def test_sigterm_under_load(server_factory):
    server = server_factory()
    bench = Bench(server.url(A), 20, 60, "-T", "tcp")
    try:
        wait_status(server, lambda s: viewers_of(s, A) == 20, timeout=20, what="20 viewers")
        time.sleep(0.5)
        tree = [server.pid] + server.children()
        assert len(tree) >= 2 and all("rtspd" in " ".join(cmdline(p)) for p in tree), tree
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("rtspd still runs 5 s after SIGTERM with 20 viewers")
        took = time.monotonic() - t0
        assert code == 0, "rtspd exit status %s after SIGTERM (%.1f s):\n%s" % (
            code, took, server.log_text()[-3000:])
        assert wait_for(lambda: not [p for p in tree if alive(p)], 3), \
            "left running after SIGTERM: %s" % [(p, cmdline(p)) for p in tree if alive(p)]
        rc, result, err = bench.result(timeout=30)
    finally:
        bench.kill()
    assert result["connected"] == 20, result
    assert result["failed"] == 20 and result["streaming"] == 0, \
        "viewers still streaming after the server stopped: %s" % result
    ends = " ".join(result["errors"])
    assert re.search(r"closed by the server|reset by the server", ends), result["errors"]
    assert result["rtcp_bye"] >= 20, "%d RTCP BYEs for 20 viewers: %s" % (result["rtcp_bye"], result)
    server.stop()   # no sanitizer report, nothing left over
