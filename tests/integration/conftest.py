"""Fixtures for the rtspd integration tests.

Environment (set by `make integration`):
  RTSPD_BIN     the server binary (the ASan build)
  RTSPCTL_BIN   the control tool
  RTSPD_MEDIA   the directory tests/media/make-samples.sh filled

Without RTSPD_BIN every test that needs a server is skipped.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ports  # noqa: E402
from ports import free_tcp_port  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MANIFEST = os.path.join(HERE, "..", "media", "samples.json")
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)")


def load_manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def rtspd_bin():
    return os.environ.get("RTSPD_BIN")


def media_dir():
    return os.environ.get("RTSPD_MEDIA")


def require_server_env():
    if not rtspd_bin():
        reason = "RTSPD_BIN is not set (run through `make integration`)"
        print("SKIP: " + reason)
        pytest.skip(reason)
    if not os.access(rtspd_bin(), os.X_OK):
        pytest.fail("RTSPD_BIN=%s is not an executable" % rtspd_bin())
    if not media_dir() or not os.path.isdir(media_dir()):
        pytest.fail("RTSPD_MEDIA=%r is not a directory" % media_dir())


def require_tool(name):
    if shutil.which(name) is None:
        reason = "%s is not installed" % name
        print("SKIP: " + reason)
        pytest.skip(reason)


# ---------------------------------------------------------------- ports

def free_udp_base(span=256):
    """A base port (multiple of 8) in 30000..50000 whose next `span` UDP
    ports are free right now."""
    return ports.free_udp_base(30000, 50000, span)


# ---------------------------------------------------------------- processes

def descendants(pid):
    """All live descendant pids of pid (children first, breadth first)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        kids = set()
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                try:
                    with open("/proc/%d/task/%s/children" % (p, tid)) as f:
                        kids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
        except OSError:
            continue
        for k in sorted(kids):
            if k not in out:
                out.append(k)
                todo.append(k)
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One rtspd process started with its own config in a tmp dir."""

    def __init__(self, tmpdir, media=None, env=None, **cfg):
        self.dir = str(tmpdir)
        self.extra_env = env or {}
        os.makedirs(self.dir, exist_ok=True)
        self.media_dir = media or media_dir()
        self.port = free_tcp_port()
        self.udp_base = free_udp_base()
        self.control_socket = os.path.join(self.dir, "ctl.sock")
        self.config_path = os.path.join(self.dir, "rtspserver.cfg")
        self.log_path = os.path.join(self.dir, "rtspd.log")
        nodes = {
            "serverip": "",
            "rtsp_port": self.port,
            "udp_base_port": self.udp_base,
            "loop_nums": -1,
            "log_enable": 1,
            "log_level": 1,
            "media_dir": self.media_dir,
            "file_mode": "ondemand",
            "control_socket": self.control_socket,
            "session_timeout": 60,
        }
        nodes.update(cfg)
        # where start() knocks: the one address the server listens on, if set
        self.connect_host = str(nodes["serverip"]) or "127.0.0.1"
        with open(self.config_path, "w") as f:
            f.write("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config>\n")
            for k, v in nodes.items():
                f.write("  <%s>%s</%s>\n" % (k, v, k))
            f.write("</config>\n")
        self.proc = None
        self.pid = None
        self._known_children = set()

    def start(self, timeout=10.0):
        env = dict(os.environ)
        # Sanitizer reports go to the log; keep ASan's quarantine small so
        # memory measurements mean something.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:"
                                       "malloc_context_size=20")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.extra_env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([rtspd_bin(), "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.dir, env=env)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("rtspd exited with %s before accepting:\n%s"
                                     % (self.proc.returncode, self.log_text()[-4000:]))
            try:
                socket.create_connection((self.connect_host, self.port), timeout=0.5).close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop(check=False)
                raise AssertionError("rtspd did not accept on port %d within %.0f s:\n%s"
                                     % (self.port, timeout, self.log_text()[-4000:]))
            time.sleep(0.05)

    def url(self, path=""):
        return "rtsp://127.0.0.1:%d/%s" % (self.port, path.lstrip("/"))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def children(self):
        kids = descendants(self.pid) if self.pid else []
        self._known_children.update(kids)
        return kids

    def workers(self, path=None):
        """Descendant pids started as `rtspd --worker ...`; with path, only
        the one(s) whose arguments name that stream path."""
        out = []
        for p in self.children():
            args = cmdline(p)
            if "--worker" not in args:
                continue
            if path is None or worker_serves(args, path):
                out.append(p)
        return out

    def total_rss_kb(self):
        return rss_kb(self.pid) + sum(rss_kb(p) for p in self.children())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM, wait 5 s, SIGKILL. With check: the master must exit by
        itself, leave no child behind, and the log must hold no sanitizer
        report."""
        if self.proc is None:
            return
        self.children()
        kids = set(self._known_children)
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                killed = True
        rc = self.proc.returncode
        self.proc = None
        # children must go with the master (give them a moment)
        deadline = time.monotonic() + 3
        left = [p for p in kids if alive(p) and any("rtspd" in a for a in cmdline(p))]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [p for p in left if alive(p)]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.log.close()
        if not check:
            return
        text = self.log_text()
        assert not killed, "rtspd did not exit within 5 s of SIGTERM:\n" + text[-3000:]
        assert not left, "child processes left after rtspd stopped: %s" % left
        m = SANITIZER_RE.search(text)
        assert m is None, "sanitizer report in the server log:\n" + text[max(0, m.start() - 200):m.start() + 3000]
        assert rc in (0, -signal.SIGTERM), "rtspd exit status %s after SIGTERM" % rc


def worker_serves(args, path):
    """Whether a worker's argument list names stream `path` (query ignored):
    an argument equal to it, or ending with '/path' or '=path'."""
    path = path.split("?", 1)[0].strip("/")
    for a in args[1:]:
        a = a.split("?", 1)[0]
        if a == path or a == "/" + path or a.endswith("/" + path) or a.endswith("=" + path):
            return True
    return False


def pytest_terminal_summary(terminalreporter):
    """Say why tests were skipped, even under -q."""
    reasons = {}
    for rep in terminalreporter.stats.get("skipped", []):
        if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            reason = rep.longrepr[2].replace("Skipped: ", "")
            reasons[reason] = reasons.get(reason, 0) + 1
    for reason, n in sorted(reasons.items()):
        terminalreporter.write_line("skipped %d: %s" % (n, reason))


@pytest.fixture(scope="session")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory):
    """start_server(**config_overrides, media=DIR) -> a started Server; all
    are stopped (and checked) at the end of the module."""
    require_server_env()
    started = []

    def start_server(media=None, env=None, **cfg):
        s = Server(tmp_path_factory.mktemp("rtspd"), media=media, env=env, **cfg)
        started.append(s)
        return s.start()

    yield start_server
    errors = []
    for s in started:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


@pytest.fixture(scope="module")
def server(server_factory):
    """One server per test module, default config (loop forever, on demand)."""
    return server_factory()


# ---------------------------------------------------------------- clients

def run(cmd, timeout):
    """Run a command in its own process group, return (rc, stdout, stderr,
    seconds); rc is None on timeout (the whole group is killed then)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        rc = None
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), \
        time.monotonic() - t0


def ffprobe(url, transport="tcp", timeout=30):
    """ffprobe -show_streams over RTSP -> (list of streams, stderr) or (None, stderr)."""
    rc, out, err, _ = run(["ffprobe", "-v", "error", "-rtsp_transport", transport,
                           "-show_streams", "-of", "json", url], timeout)
    if rc != 0:
        return None, "ffprobe rc=%s: %s" % (rc, err.strip()[-2000:])
    try:
        return json.loads(out).get("streams", []), err
    except ValueError:
        return None, "ffprobe printed no JSON: %r" % out[:500]


# ---------------------------------------------------------------- rtspctl, rtspbench, viewers
# Shared by test_control.py, test_notify.py and test_reload.py.

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def wait_for(cond, timeout, step=0.1):
    """Polls cond() until it returns something true or timeout seconds
    passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def tool_bin(env_name, *candidates):
    """The tool named by env_name, else the first candidate (relative to the
    repository) that is an executable; skips the test when there is none."""
    paths = [os.environ[env_name]] if os.environ.get(env_name) else \
        [os.path.join(REPO, c) for c in candidates]
    for p in paths:
        if os.access(p, os.X_OK):
            return p
    reason = "%s not built (%s); set %s" % (os.path.basename(paths[0]), " or ".join(paths), env_name)
    print("SKIP: " + reason)
    pytest.skip(reason)


def rtspctl_bin():
    return tool_bin("RTSPCTL_BIN", "build/asan/rtspctl", "build/rtspctl")


def rtspbench_path():
    return tool_bin("RTSPBENCH_BIN", "build/rtspbench")


def rtspctl(target, *args, timeout=30, prefix=()):
    """Runs `rtspctl -s SOCKET ARGS` (target: a Server or a socket path; None:
    no -s) -> (rc, stdout, stderr). prefix goes before the command line (e.g.
    setpriv ...). rtspctl must end in time and print no sanitizer report."""
    cmd = list(prefix) + [rtspctl_bin()]
    if target is not None:
        cmd += ["-s", target.control_socket if isinstance(target, Server) else target]
    cmd += list(args)
    rc, out, err, _ = run(cmd, timeout)
    assert rc is not None, "%s did not end within %d s" % (" ".join(cmd), timeout)
    m = SANITIZER_RE.search(out + err)
    assert m is None, "sanitizer report from rtspctl:\n" + (out + err)[m.start():m.start() + 3000]
    return rc, out, err


def ctl_status(server):
    """`rtspctl status --json` parsed; the command must succeed."""
    rc, out, err = rtspctl(server, "status", "--json")
    assert rc == 0, "rtspctl status --json: exit %s: %s" % (rc, err)
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError("rtspctl status --json printed no valid JSON (%s):\n%s" % (e, out))


def wait_status(server, cond, timeout=15, what="the expected status"):
    """Polls `status --json` until cond(status) holds; returns that status."""
    last = {}

    def probe():
        last["s"] = ctl_status(server)
        return cond(last["s"])
    assert wait_for(probe, timeout, step=0.3), "no %s within %d s; last status:\n%s" % (
        what, timeout, last.get("s"))
    return last["s"]


def stream_entry(status, path):
    """The (single) non-draining entry of streams[] for path, or None."""
    rows = [s for s in status["streams"] if s["path"] == path and s["state"] != "draining"]
    assert len(rows) <= 1, "stream %s listed %d times: %s" % (path, len(rows), rows)
    return rows[0] if rows else None


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Bench:
    """rtspbench running in the background: Bench(url, viewers, seconds,
    *args).result() -> (exit status, JSON result, stderr)."""

    GRACE = 30

    def __init__(self, url, viewers, seconds, *args):
        self.seconds = seconds
        self.cmd = [rtspbench_path(), "-q", "-j", "-n", str(viewers), "-t", str(seconds)] + \
            list(args) + [url]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def result(self, timeout=None):
        timeout = self.seconds + self.GRACE if timeout is None else timeout
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("rtspbench did not end within %d s" % timeout)
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        lines = out.strip().splitlines()
        assert lines, "rtspbench printed nothing (rc=%s): %s" % (self.proc.returncode, err[-2000:])
        try:
            res = json.loads(lines[-1])
        except ValueError:
            raise AssertionError("rtspbench's last line is not JSON: %r" % lines[-1][:500])
        return self.proc.returncode, res, err

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.communicate()


class Viewer:
    """One RtspClient playing `path` in a background thread until stop(), or
    until the server ends the session (connection closed)."""

    def __init__(self, port, path, transport="tcp", host="127.0.0.1"):
        self.port, self.path, self.transport, self.host = port, path, transport, host
        self.client = None
        self.error = None
        self.session = None
        self.local = None            # "IP:PORT" of the RTSP connection
        self.closed_at = None        # when the server closed the connection
        self.playing = threading.Event()
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from rtspclient import RtspClient  # noqa: E402 (HERE is on sys.path by now)
        c = RtspClient(self.host, self.port, timeout=15, connect=False)
        self.client = c
        try:
            c.connect()
            ip, port = c.sock.getsockname()[:2]
            self.local = "%s:%d" % (ip, port)
            c.start(self.path, self.transport)
            self.session = c.session
            self.playing.set()
            while not self._stop.is_set() and not c.closed:
                c.receive(0.2)
            if c.closed:
                self.closed_at = time.monotonic()
                c.receive(0.5)       # a BYE over UDP may come after the close
        except Exception as e:       # noqa: BLE001 - reported by the test
            self.error = repr(e)
        finally:
            if self._stop.is_set() and not c.closed and c.sock is not None:
                c.teardown()
            c.close()
            self.playing.set()
            self.ended.set()

    def wait_playing(self, timeout=20):
        assert self.playing.wait(timeout), "viewer of %s did not start within %d s" % (self.path, timeout)
        assert self.error is None and self.session, "viewer of %s: %s" % (self.path, self.error)
        return self

    def stop(self, timeout=10):
        self._stop.set()
        self._thread.join(timeout)

    @property
    def tracks(self):
        return list(self.client.tracks) if self.client else []

    @property
    def packets(self):
        return sum(t.packets for t in self.tracks)

    @property
    def gaps(self):
        return sum(t.gaps + t.late for t in self.tracks)

    @property
    def bye(self):
        return any(t.bye for t in self.tracks)

    def __repr__(self):
        return "<Viewer %s %s session=%s local=%s error=%s %s>" % (
            self.path, self.transport, self.session, self.local, self.error,
            "; ".join(t.summary() for t in self.tracks))


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def self_signed_cert(directory, san=None):
    """A self-signed EC certificate for CN=localhost (with subjectAltName
    `san` when given) and its key in directory: (cert, key) paths."""
    require_tool("openssl")
    cert, key = os.path.join(str(directory), "rtspd.crt"), os.path.join(str(directory), "rtspd.key")
    extra = ["-addext", "subjectAltName=" + san] if san else []
    rc, _, err, _ = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-nodes", "-days", "2", "-subj", "/CN=localhost"] + extra + ["-keyout", key, "-out", cert], 60)
    assert rc == 0, "openssl req failed: rc=%s %s" % (rc, err[-2000:])
    return cert, key
