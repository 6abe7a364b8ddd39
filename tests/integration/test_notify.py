"""systemd's notify protocol (master/service.c, docs/CONTROL.md "systemd"):
READY=1 only once the RTSP port and the control socket accept, STATUS=
updates, WATCHDOG=1 pings, RELOADING=1/READY=1 around a reload (SIGHUP or
rtspctl, refused or not), STOPPING=1 on SIGTERM, and never a word from a
worker. The test plays systemd: a datagram socket as NOTIFY_SOCKET, with
SO_PASSCRED so that every message carries its sender's pid."""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import (Server, Viewer, alive, rtspctl, rtspd_bin, require_server_env,
                      wait_for)

TEST = "test"
A = "sample.mp4?mode=live"
WATCHDOG_USEC = 1000000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # = SCM_TIMESTAMPNS (Linux)


class Notify:
    """The receiving end of NOTIFY_SOCKET. Every message is kept as
    (time.monotonic() when read, sender pid, {field: value}, raw text,
    kernel arrival time in s (CLOCK_REALTIME))."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # the kernel's arrival time of each message, free of this
        # process's own scheduling delays
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(path)
        self.msgs = []

    def close(self):
        self.sock.close()

    def recv(self, timeout):
        """The next message, or None after timeout seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
        except socket.timeout:
            return None
        now = time.monotonic()
        pid, ktime = None, None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
            elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", payload[:16])
                ktime = sec + nsec / 1e9
        text = data.decode("utf-8", "replace")
        fields = {}
        for line in text.split("\n"):
            k, eq, v = line.partition("=")
            if eq:
                fields[k] = v
        msg = (now, pid, fields, text, ktime if ktime is not None else now)
        self.msgs.append(msg)
        return msg

    def wait(self, pred, timeout, what):
        """Receives until a message satisfies pred(fields); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no notification with %s within %.0f s; got:\n%s" % (
                    what, timeout, "\n".join(repr(m[3]) for m in self.msgs[-30:])))
            m = self.recv(min(left, 0.5))
            if m is not None and pred(m[2]):
                return m

    def drain(self, seconds):
        """Receives everything for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.recv(deadline - time.monotonic())


def launch(server, env_extra, watchdog_pid_self=False, prefix=()):
    """Starts rtspd like Server.start() but with env_extra in its
    environment, and returns at once (the test watches the notifications).
    watchdog_pid_self: WATCHDOG_PID is set to rtspd's own pid (a shell that
    execs it). prefix: a command rtspd runs under (strace ...)."""
    require_server_env()
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:malloc_context_size=20")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    env.update(env_extra)
    cmd = [rtspd_bin(), "-c", server.config_path]
    if watchdog_pid_self:
        cmd = ["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"'] + cmd
    cmd = list(prefix) + cmd
    server.log = open(server.log_path, "ab")
    server.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=server.log,
                                   stderr=subprocess.STDOUT, cwd=server.dir, env=env)
    server.pid = server.proc.pid
    return server


def accepts_tcp(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def accepts_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def viewers_in(fields):
    m = re.search(r"(\d+) streams?, (\d+) viewers?", fields.get("STATUS", ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


def out_rate(fields):
    m = re.search(r"out ([0-9.]+) Mbit/s", fields.get("STATUS", ""))
    return float(m.group(1)) if m else None


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


def check_reload(n, how, trigger):
    """trigger() starts a reload; RELOADING=1 (with MONOTONIC_USEC = now)
    then READY=1 must follow."""
    t0 = time.monotonic()
    trigger()
    m = n.wait(lambda f: "RELOADING" in f, 10, "RELOADING=1 after %s" % how)
    f = m[2]
    assert f["RELOADING"] == "1", m[3]
    assert "MONOTONIC_USEC" in f, "RELOADING=1 without MONOTONIC_USEC: %r" % m[3]
    mono = int(f["MONOTONIC_USEC"]) / 1e6
    assert t0 - 0.05 <= mono <= m[0] + 0.05, \
        "MONOTONIC_USEC=%s is not the time of the reload (%.3f .. %.3f s, CLOCK_MONOTONIC)" % (
            f["MONOTONIC_USEC"], t0, m[0])
    r = n.wait(lambda f: "READY" in f or "RELOADING" in f, 10, "READY=1 after the reload (%s)" % how)
    assert r[2].get("READY") == "1", "after RELOADING=1 came %r, not READY=1" % r[3]


def test_notify_lifecycle(tmp_path):
    server = Server(tmp_path / "srv", worker_idle_timeout=120)
    n = Notify(str(tmp_path / "notify.sock"))
    viewers = []
    try:
        launch(server, {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})

        # READY=1: freeze the master the moment it arrives; what it claims
        # to have open must take connections then (the kernel completes
        # them while the master is stopped).
        first = n.wait(lambda f: "READY" in f, 20, "READY=1")
        server.proc.send_signal(signal.SIGSTOP)
        try:
            tcp_ok = accepts_tcp(server.port)
            ctl_ok = accepts_unix(server.control_socket)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        assert tcp_ok, "READY=1 came before the RTSP port %d accepted connections" % server.port
        assert ctl_ok, "READY=1 came before the control socket accepted connections"
        f = first[2]
        assert f["READY"] == "1", first[3]
        assert f.get("MAINPID") == str(server.pid), "MAINPID: %r (master %d)" % (f.get("MAINPID"), server.pid)
        assert viewers_in(f) == (0, 0), "READY=1 without a STATUS of 0 streams, 0 viewers: %r" % first[3]
        assert not [m for m in n.msgs[:-1] if "READY" in m[2]], "more than one READY=1 at start-up"

        # STATUS follows the viewers
        viewers.append(Viewer(server.port, TEST, "tcp").wait_playing())
        n.wait(lambda f: viewers_in(f) == (1, 1), 15, "STATUS=1 stream, 1 viewer")
        n.wait(lambda f: viewers_in(f) == (1, 1) and (out_rate(f) or 0) > 0, 15,
               "STATUS with 1 viewer and a nonzero out rate")
        viewers.append(Viewer(server.port, A, "udp").wait_playing())
        n.wait(lambda f: viewers_in(f) == (2, 2), 15, "STATUS=2 streams, 2 viewers")
        for v in viewers:
            v.stop()
        n.wait(lambda f: viewers_in(f) == (2, 0), 15, "STATUS=2 streams, 0 viewers")

        # workers: their environment holds nothing of systemd's
        workers = server.workers()
        assert len(workers) == 2, workers
        for w in workers:
            env = environ_of(w)
            leaked = [k for k in (b"NOTIFY_SOCKET", b"WATCHDOG_USEC", b"WATCHDOG_PID") if k in env]
            assert not leaked, "worker %d inherited %s" % (w, leaked)

        # the watchdog: WATCHDOG_USEC/4 nominal, never more than /2 apart
        n.drain(max(0.0, resumed + 3.0 - time.monotonic()))
        pings = [m[4] for m in n.msgs if m[2].get("WATCHDOG") == "1" and m[0] > resumed]
        assert len(pings) >= 6, "%d WATCHDOG=1 in %.1f s (WATCHDOG_USEC=%d)" % (
            len(pings), time.monotonic() - resumed, WATCHDOG_USEC)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) <= WATCHDOG_USEC / 2e6, \
            "WATCHDOG=1 %.3f s apart, more than WATCHDOG_USEC/2 (intervals: %s)" % (
                max(gaps), " ".join("%.3f" % g for g in gaps))

        readies = [m[3] for m in n.msgs if "READY" in m[2]]
        assert len(readies) == 1, "READY=1 sent %d times without a reload: %s" % (len(readies), readies)

        # reload: SIGHUP, rtspctl, and a refused one
        check_reload(n, "SIGHUP", lambda: server.proc.send_signal(signal.SIGHUP))

        def ctl_reload():
            rc, out, err = rtspctl(server, "reload")
            assert rc == 0, "rtspctl reload: exit %s: %s" % (rc, err)
        check_reload(n, "rtspctl reload", ctl_reload)

        good = open(server.config_path).read()
        with open(server.config_path, "w") as cfg:
            cfg.write(re.sub(r"<log_level>\d+</log_level>", "<log_level>9</log_level>", good))

        def bad_reload():
            rc, out, err = rtspctl(server, "reload")
            assert rc == 1, "a bad configuration was not refused: exit %s: %s %s" % (rc, out, err)
        check_reload(n, "a refused rtspctl reload", bad_reload)
        with open(server.config_path, "w") as cfg:
            cfg.write(good)

        # STOPPING=1 on SIGTERM, then a clean exit
        tree = [server.pid] + server.children()
        server.proc.send_signal(signal.SIGTERM)
        n.wait(lambda f: "STOPPING" in f, 5, "STOPPING=1 after SIGTERM")
        try:
            code = server.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError("rtspd still runs 5 s after SIGTERM")
        assert code == 0, "rtspd exit status %s after SIGTERM:\n%s" % (code, server.log_text()[-3000:])
        assert wait_for(lambda: not [p for p in tree if alive(p)], 3), \
            "left running: %s" % [p for p in tree if alive(p)]
        n.drain(0.3)

        # every message came from the master
        senders = {m[1] for m in n.msgs}
        assert senders == {server.pid}, "notifications from pids %s; the master is %d, workers were %s" % (
            senders, server.pid, workers)
    finally:
        for v in viewers:
            v.stop()
        n.close()
        server.stop()


def test_watchdog_pid(tmp_path):
    """WATCHDOG_PID names the process the watchdog is meant for: the master
    itself -> pings; another process -> none (READY=1 all the same)."""
    for mine in (True, False):
        server = Server(tmp_path / ("own" if mine else "other"))
        n = Notify(str(tmp_path / ("own.sock" if mine else "other.sock")))
        try:
            extra = {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
            if not mine:
                extra["WATCHDOG_PID"] = "1"
            launch(server, extra, watchdog_pid_self=mine)
            ready = n.wait(lambda f: "READY" in f, 20, "READY=1")
            assert ready[2].get("MAINPID") == str(server.pid), ready[3]
            n.drain(1.5)
            pings = [m for m in n.msgs if "WATCHDOG" in m[2]]
            if mine:
                assert len(pings) >= 3, "WATCHDOG_PID=<master pid>: %d WATCHDOG=1 in 1.5 s" % len(pings)
                assert {m[1] for m in pings} == {server.pid}
            else:
                assert not pings, "WATCHDOG_PID=1 (not the master): still sent %r" % pings[0][3]
        finally:
            n.close()
            server.stop()


def test_ready_only_after_the_listeners(tmp_path):
    """The order of the master's system calls, as strace sees them: the
    RTSP port's and the control socket's listen() come before the sendmsg()
    that carries READY=1."""
    strace = shutil.which("strace")
    if not strace:
        print("SKIP: strace is not installed")
        pytest.skip("strace is not installed")
    server = Server(tmp_path / "srv")
    n = Notify(str(tmp_path / "notify.sock"))
    trace = str(tmp_path / "strace.txt")
    try:
        # LeakSanitizer cannot run under ptrace: leaks are checked elsewhere.
        launch(server, {"NOTIFY_SOCKET": n.path,
                        "ASAN_OPTIONS": "detect_leaks=0:quarantine_size_mb=16:malloc_context_size=20"},
                        prefix=[strace, "-o", trace, "-yy", "-s", "256", "-e", "trace=listen,sendmsg"])
        ready = n.wait(lambda f: "READY" in f, 30, "READY=1")
        master = int(ready[2]["MAINPID"])

        def lines():
            with open(trace) as f:
                return f.read().splitlines()
        if not wait_for(lambda: any("READY=1" in ln for ln in lines()), 5):
            if any("Operation not permitted" in ln for ln in lines()) or server.proc.poll() is not None:
                pytest.skip("strace cannot trace here: %s" % lines()[:3])
            raise AssertionError("strace did not record the READY=1 sendmsg:\n" + "\n".join(lines()))
        calls = lines()

        def first(pattern):
            for i, ln in enumerate(calls):
                if re.search(pattern, ln):
                    return i
            return None
        rtsp = first(r"^listen\(\d+<TCP:\[[0-9.]+:%d\]>.*= 0$" % server.port)
        ctl = first(r"^listen\(\d+<UNIX[^>]*%s[^>]*>.*= 0$" % re.escape(server.control_socket))
        note = first(r"^sendmsg\(.*READY=1")
        text = "\n".join(calls)
        assert rtsp is not None, "no listen() on port %d in:\n%s" % (server.port, text)
        assert ctl is not None, "no listen() on the control socket in:\n%s" % text
        assert rtsp < note and ctl < note, "READY=1 was sent before the listeners were open:\n" + text
        os.kill(master, signal.SIGTERM)
        server.proc.wait(10)
    finally:
        n.close()
        server.stop()
