"""Logging to journald (common/log.c, docs/LOGGING.md).

rtspd runs in a private mount namespace whose /run/systemd/journal is a
directory of the test's: there the test binds the datagram socket that
libsystemd sends to, and reads journald's native protocol itself (or, in
the last test, runs a real systemd-journald and reads its files with
journalctl). The host's journal is never touched. Building the namespace
needs root (unshare -m, mount --bind), or unprivileged user namespaces
(unshare -r -m): without either the tests are skipped.
"""

import array
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import run, wait_for
from rtspclient import RtspClient

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
JOURNALD = "/lib/systemd/systemd-journald"




# ---------------------------------------------------------------- namespace

@functools.lru_cache(maxsize=None)
def unshare_cmd():
    """(the unshare command that gives a private mount namespace in which
    we may mount, None) or (None, why there is none): root's, else one in
    a user namespace of our own where the kernel allows that."""
    if shutil.which("unshare") is None:
        return None, "unshare is not installed"
    errors = []
    for cmd in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        rc, _, err, _ = run(cmd + ["--", "sh", "-c", "mkdir -p /run/systemd/journal && "
                                   "mount -t tmpfs tmpfs /run/systemd/journal"], 10)
        if rc == 0:
            return cmd, None
        errors.append(err.strip() or str(rc))
    return None, "cannot mount in a private mount namespace (needs root or user namespaces): %s" \
        % "; ".join(errors)


def require_ns():
    why = unshare_cmd()[1]
    if why:
        print("SKIP: " + why)
        pytest.skip(why)


def ns_wrapper(tmp_path, journal_dir, real_bin):
    """An executable that runs real_bin (with its arguments) in a private
    mount namespace where journal_dir is /run/systemd/journal. unshare and
    both shells exec, so its pid is the server's."""
    path = os.path.join(str(tmp_path), "rtspd-in-ns-" + os.path.basename(journal_dir))
    inner = 'mkdir -p /run/systemd/journal && mount --bind "$0" /run/systemd/journal && exec "$@"'
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s -- sh -c %s %s %s \"$@\"\n"
                % (" ".join(unshare_cmd()[0]), shlex.quote(inner), shlex.quote(journal_dir),
                   shlex.quote(real_bin)))
    os.chmod(path, 0o755)
    return path


def start_server(server_factory, wrapper, target="journal", **cfg):
    """A Server (conftest) started through wrapper, with RTSPD_LOG_TARGET."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RTSPD_BIN", wrapper)
        if target is None:
            mp.delenv("RTSPD_LOG_TARGET", raising=False)
        else:
            mp.setenv("RTSPD_LOG_TARGET", target)
        mp.delenv("JOURNAL_STREAM", raising=False)
        return server_factory(**cfg)


# ---------------------------------------------------------------- native protocol

def parse_native(data):
    """One entry of journald's native protocol -> dict. Fields are
    "KEY=VALUE\\n", or "KEY\\n" + 64-bit LE length + VALUE + "\\n" when the
    value holds a newline."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 1 + 8
            v = data[start:start + n]
            assert data[start + n:start + n + 1] == b"\n", "bad binary field %r" % k
            i = start + n + 1
        fields[k.decode()] = v.decode("utf-8", "replace")
    return fields


class JournalReceiver(threading.Thread):
    """Binds a datagram socket at path and collects every entry sent to it,
    with the sender's pid (SO_PASSCRED) as _PID. Reads all the time: a
    full queue would block the server's logging."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.entries = []
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.start()

    def run(self):
        anc = socket.CMSG_SPACE(struct.calcsize("3i")) + socket.CMSG_SPACE(4 * struct.calcsize("i"))
        while not self.stopping.is_set():
            try:
                data, ancdata, _, _ = self.sock.recvmsg(1 << 17, anc)
            except socket.timeout:
                continue
            except OSError as e:
                self.errors.append(repr(e))
                return
            pid = None
            for level, kind, cdata in ancdata:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack_from("3i", cdata)[0]
                elif kind == socket.SCM_RIGHTS:
                    # A large entry comes as a sealed memfd instead.
                    fds = array.array("i")
                    fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                    for fd in fds:
                        try:
                            data = os.pread(fd, os.fstat(fd).st_size, 0)
                        finally:
                            os.close(fd)
            try:
                e = parse_native(data)
            except (ValueError, AssertionError, struct.error) as ex:
                self.errors.append("unparsable entry %r: %r" % (data[:200], ex))
                continue
            e["_PID"] = str(pid)
            with self.lock:
                self.entries.append(e)

    def snapshot(self):
        with self.lock:
            return list(self.entries)

    def find(self, pred):
        return [e for e in self.snapshot() if pred(e)]

    def wait(self, pred, timeout=10.0):
        return wait_for(lambda: self.find(pred), timeout)

    def close(self):
        self.stopping.set()
        self.join(2)
        self.sock.close()


def dump(entries, n=40):
    return "\n".join(json.dumps(e, sort_keys=True) for e in entries[-n:])


# ---------------------------------------------------------------- tests

# A stderr line: level, role, pid, tags, message.
LINE_RE = re.compile(r"^%s (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) *(master|worker)\[(\d+)\]"
                     r"((?: \w+=\S+)*): (.*)$" % TIME_RE, re.M)
PRIORITY = {"TRACE": "7", "DEBUG": "7", "INFO": "6", "WARN": "4", "ERROR": "3", "FATAL": "2"}


def normalized(msg):
    """A message with what differs between two runs (pids, ports, counts,
    session ids) blanked out."""
    return re.sub(r"\d+", "N", re.sub(r"session \S+", "session S", msg))


def scenario(server, seen):
    """A viewer plays /test and leaves; a DESCRIBE the master answers 404;
    the worker is killed and the master says so. seen(text) says whether a
    line has been logged yet. Returns the worker's pid."""
    with RtspClient("127.0.0.1", server.port) as c:
        c.start("test", "tcp")
        c.receive(1.0)
        workers = server.workers("test")
        assert len(workers) == 1, "workers of /test: %s" % workers
        with RtspClient("127.0.0.1", server.port) as c2:
            resp, _ = c2.describe(c2.url("no-such-file.mp4"))
            assert resp.status == 404
        c.teardown()
    assert wait_for(lambda: seen("TEARDOWN"), 10), "no TEARDOWN line"
    os.kill(workers[0], signal.SIGKILL)
    assert wait_for(lambda: seen("restart: "), 10), "no restart line after the worker was killed"
    return workers[0]


def stderr_levels(server_factory, tmp_path, jdir):
    """The scenario with RTSPD_LOG_TARGET=stderr although a journal socket
    is there: {normalized message: (level, stream, has client)} from the
    stderr lines (messages logged at two levels left out)."""
    rx = JournalReceiver(str(jdir / "socket"))
    try:
        server = start_server(server_factory, ns_wrapper(tmp_path, str(jdir), os.environ["RTSPD_BIN"]),
                              target="stderr")
        scenario(server, lambda text: text in server.log_text())
        server.stop()
    finally:
        rx.close()
    assert rx.snapshot() == [], "RTSPD_LOG_TARGET=stderr, yet entries reached the journal socket"
    out, twice = {}, set()
    for level, _, _, tags, msg in LINE_RE.findall(server.log_text()):
        tags = dict(t.split("=", 1) for t in tags.split())
        v = (level, tags.get("stream"), "client" in tags)
        k = normalized(msg)
        if out.setdefault(k, v) != v:
            twice.add(k)
    for k in twice:
        del out[k]
    return out


def test_entries_carry_fields(server_factory, tmp_path):
    require_ns()
    (tmp_path / "j1").mkdir()
    (tmp_path / "j2").mkdir()
    # The same scenario on stderr first: what each line's level and tags are.
    levels = stderr_levels(server_factory, tmp_path, tmp_path / "j1")

    jdir = tmp_path / "j2"
    rx = JournalReceiver(str(jdir / "socket"))
    try:
        server = start_server(server_factory, ns_wrapper(tmp_path, str(jdir), os.environ["RTSPD_BIN"]))
        master = str(server.pid)
        worker = str(scenario(server, lambda text: rx.find(lambda e: text in e.get("MESSAGE", ""))))
        server.stop()
    finally:
        rx.close()
    entries = rx.snapshot()
    assert not rx.errors, rx.errors
    assert entries, "no entry reached the journal socket"

    # Every entry: rtspd's, a level's priority, a bare one-line message,
    # the role of the process that sent it.
    for e in entries:
        assert e.get("SYSLOG_IDENTIFIER") == "rtspd", e
        assert e.get("PRIORITY") in ("2", "3", "4", "6", "7"), e
        msg = e.get("MESSAGE")
        assert msg is not None and "\n" not in msg, e
        assert not re.match(TIME_RE, msg) and not re.match(r"(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\b", msg), e
        assert e["_PID"] in (master, worker), "entry from pid %s (master %s, worker %s): %s" % (
            e["_PID"], master, worker, e)
        assert e.get("RTSPD_ROLE") == ("master" if e["_PID"] == master else "worker"), e

    by_master = [e for e in entries if e["_PID"] == master]
    by_worker = [e for e in entries if e["_PID"] == worker]
    assert by_master and by_worker, dump(entries)
    # A worker's entries name its stream and its own pid.
    for e in by_worker:
        assert e.get("STREAM") == "test", e
        assert e.get("WORKER_PID") == worker, e
    # The master's only when they are about that worker.
    for e in by_master:
        assert e.get("WORKER_PID") in (None, worker), e
    assert any(e.get("CLIENT", "").startswith("127.0.0.1:") for e in by_worker), dump(by_worker)
    assert any(e.get("CLIENT", "").startswith("127.0.0.1:") and e["MESSAGE"].startswith("404 ")
               for e in by_master), dump(by_master)
    play = [e for e in by_worker if re.match(r"session \S+: PLAY$", e["MESSAGE"])]
    assert play and play[0].get("CLIENT", "").startswith("127.0.0.1:"), dump(by_worker)
    assert any(re.match(r"worker pid %s crashed" % worker, e["MESSAGE"]) and e.get("STREAM") == "test"
               for e in by_master), dump(by_master)

    # PRIORITY follows the level the same line has on stderr, and the tags
    # are the same ones.
    checked = set()
    for e in entries:
        k = normalized(e["MESSAGE"])
        if k not in levels:
            continue
        level, stream, client = levels[k]
        assert e["PRIORITY"] == PRIORITY[level], "%s on stderr, PRIORITY=%s in the journal: %s" % (
            level, e["PRIORITY"], e)
        assert e.get("STREAM") == stream and ("CLIENT" in e) == client, (levels[k], e)
        checked.add(level)
    assert {"DEBUG", "INFO", "WARN", "ERROR"} <= checked, \
        "levels compared: %s\n%s" % (sorted(checked), dump(entries))

    # Nothing of it went to stderr as well.
    log = server.log_text()
    assert not LINE_RE.search(log), log[-3000:]


def check_fallback(server, notice_re):
    """The server works and logs on stderr; each process said once why."""
    with RtspClient("127.0.0.1", server.port) as c:
        c.start("test", "tcp")
        c.receive(1.0)
        workers = server.workers("test")
        c.teardown()
    assert workers
    wait_for(lambda: "TEARDOWN" in server.log_text(), 5)
    server.stop()
    log = server.log_text()
    for role, pid in [("master", server.pid)] + [("worker", p) for p in workers]:
        notices = re.findall(r"^%s WARN  %s\[%s\]: journald: %s; logging to stderr from now on$"
                             % (TIME_RE, role, pid, notice_re), log, re.M)
        assert len(notices) == 1, "%s %s: %d notices in\n%s" % (role, pid, len(notices), log[-4000:])
    assert re.search(r"^%s INFO  master\[\d+\]: rtspd \S+ ready$" % TIME_RE, log, re.M), log[-3000:]
    assert re.search(r"^%s INFO  worker\[%d\] stream=test client=127\.0\.0\.1:\d+: session \S+: PLAY$"
                     % (TIME_RE, workers[0]), log, re.M), log[-3000:]


def test_fallback_without_socket(server_factory, tmp_path):
    """RTSPD_LOG_TARGET=journal and no journald at all: libsystemd would drop
    the lines silently, so rtspd must notice before sending."""
    require_ns()
    jdir = tmp_path / "empty"
    jdir.mkdir()
    server = start_server(server_factory, ns_wrapper(tmp_path, str(jdir), os.environ["RTSPD_BIN"]))
    check_fallback(server, re.escape("/run/systemd/journal/socket: No such file or directory"))


def test_fallback_when_journald_is_gone(server_factory, tmp_path):
    """The socket is there but nobody reads it (journald died): the first
    send fails, every line after goes to stderr."""
    require_ns()
    jdir = tmp_path / "dead"
    jdir.mkdir()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(jdir / "socket"))
    s.close()                    # the file stays, connections are refused
    server = start_server(server_factory, ns_wrapper(tmp_path, str(jdir), os.environ["RTSPD_BIN"]))
    check_fallback(server, "Connection refused")


# ---------------------------------------------------------------- a real journald

JOURNALD_CONF = """[Journal]
Storage=volatile
RateLimitBurst=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
Audit=no
"""


def test_real_journald(server_factory, tmp_path):
    """systemd-journald itself, in its own mount namespace (its sockets in
    a directory of ours, its files in another, its own configuration); rtspd
    joins that namespace; journalctl reads the files."""
    require_ns()
    if not os.access(JOURNALD, os.X_OK) or shutil.which("journalctl") is None or \
            shutil.which("nsenter") is None:
        reason = "systemd-journald, journalctl or nsenter is not installed"
        print("SKIP: " + reason)
        pytest.skip(reason)
    jdir, logdir, conf = tmp_path / "journal", tmp_path / "log", tmp_path / "journald.conf"
    jdir.mkdir()
    logdir.mkdir()
    conf.write_text(JOURNALD_CONF)
    # Hide the host's persistent journal and configuration drop-ins too.
    script = " && ".join([
        "mkdir -p /run/systemd/journal /run/log",
        "mount --bind %s /run/systemd/journal" % shlex.quote(str(jdir)),
        "mount --bind %s /run/log" % shlex.quote(str(logdir)),
        "{ [ ! -d /var/log/journal ] || mount -t tmpfs tmpfs /var/log/journal; }",
        "{ [ ! -d /etc/systemd/journald.conf.d ] || mount -t tmpfs tmpfs /etc/systemd/journald.conf.d; }",
        "{ [ ! -e /etc/systemd/journald.conf ] || mount --bind %s /etc/systemd/journald.conf; }"
        % shlex.quote(str(conf)),
        "exec %s" % JOURNALD,
    ])
    jlog = open(str(tmp_path / "journald.log"), "wb")
    jd = subprocess.Popen(unshare_cmd()[0] + ["--", "sh", "-c", script], stdin=subprocess.DEVNULL,
                          stdout=jlog, stderr=subprocess.STDOUT)
    try:
        if not wait_for(lambda: (jdir / "socket").exists() or jd.poll() is not None, 10) or \
                jd.poll() is not None:
            with open(str(tmp_path / "journald.log"), "rb") as f:
                why = f.read().decode("utf-8", "replace").strip()[-300:]
            reason = "systemd-journald did not start in a private namespace: %s" % (why or jd.returncode)
            print("SKIP: " + reason)
            pytest.skip(reason)
        wrapper = os.path.join(str(tmp_path), "rtspd-in-journald-ns")
        with open(wrapper, "w") as f:
            # In journald's user namespace too when that is how we may mount.
            userns = "-U --preserve-credentials " if "-r" in unshare_cmd()[0] else ""
            f.write("#!/bin/sh\nexec nsenter -t %d %s-m -- %s \"$@\"\n"
                    % (jd.pid, userns, shlex.quote(os.environ["RTSPD_BIN"])))
        os.chmod(wrapper, 0o755)
        server = start_server(server_factory, wrapper)
        with RtspClient("127.0.0.1", server.port) as c:
            c.start("test", "tcp")
            c.receive(0.5)
            worker = server.workers("test")[0]
            c.teardown()

        def read():
            rc, out, err, _ = run(["journalctl", "--directory", str(logdir / "journal"), "-o", "json",
                                   "--no-pager", "SYSLOG_IDENTIFIER=rtspd"], 20)
            if rc != 0:
                return []
            return [json.loads(l) for l in out.splitlines() if l.strip()]

        wait_for(lambda: any("TEARDOWN" in str(e.get("MESSAGE")) for e in read()), 10)
        server.stop()
        entries = read()
        assert entries, "journalctl found no rtspd entry in %s" % logdir
        w = [e for e in entries if e.get("_PID") == str(worker)]
        assert w and all(e.get("RTSPD_ROLE") == "worker" and e.get("STREAM") == "test"
                         and e.get("WORKER_PID") == str(worker) for e in w), dump(entries)
        m = [e for e in entries if e.get("_PID") == str(server.pid)]
        assert m and all(e.get("RTSPD_ROLE") == "master" for e in m), dump(entries)
        assert any(e.get("_TRANSPORT") == "journal" for e in entries)
        play = [e for e in w if str(e.get("MESSAGE", "")).endswith(": PLAY")]
        assert play and play[0]["PRIORITY"] == "6" and play[0].get("CLIENT"), dump(w)
        # What the documentation tells users to type.
        rc, out, _, _ = run(["journalctl", "--directory", str(logdir / "journal"), "-o", "cat",
                             "--no-pager", "-p", "info", "STREAM=test", "WORKER_PID=%d" % worker], 20)
        assert rc == 0 and re.search(r"^session \S+: PLAY$", out, re.M), out
    finally:
        jd.send_signal(signal.SIGTERM)
        try:
            jd.wait(5)
        except subprocess.TimeoutExpired:
            jd.kill()
            jd.wait(5)
        jlog.close()
