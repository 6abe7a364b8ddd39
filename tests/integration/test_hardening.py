"""The server under the restrictions of its systemd unit.

This machine need not run systemd as PID 1, so systemd cannot apply the
unit here. What can be shown without it, is, with the unit as installed by
`make install` as the source of every setting (nothing is copied by hand):

test_runs_unprivileged_on_port_554
    The installed binary and configuration, run the way the unit runs
    them: User=/Group=/SupplementaryGroups=, exactly the capabilities of
    AmbientCapabilities= (also as bounding set, as CapabilityBoundingSet=
    says), NoNewPrivileges=, UMask=, LimitNOFILE=, WorkingDirectory=, with
    NOTIFY_SOCKET and WATCHDOG_USEC as Type=notify and WatchdogSec= set
    them, in a fresh network namespace (so port 554 clashes with nothing).
    It must bind port 554, say READY=1 only once it listens, send
    WATCHDOG=1 at least every half WatchdogSec=, send nothing from any
    process but the master (NotifyAccess=main), serve the built-in /test
    and a file that ffprobe decodes over TCP and UDP, IPv4 and IPv6, run
    its workers with the same identity and capabilities, and stop on
    SIGTERM within TimeoutStopSec= with STOPPING=1 and exit status 0.

test_system_calls_stay_within_the_unit_filters
    The same, traced with strace (master and workers, -f) while ffmpeg
    decodes /test and a file over TCP and UDP, IPv4 and IPv6, and while the
    two ExecReload= commands run (also traced). Every system call made is in
    the unit's SystemCallFilter= (systemd-analyze syscall-filter, nested
    groups expanded, ~ lines subtracted), every socket() / socketpair()
    family is in RestrictAddressFamilies=, no mmap/mprotect would be refused
    by MemoryDenyWriteExecute=, and nothing failed with EPERM or EACCES.

Not shown here: systemd itself installing the seccomp filter, the mount
namespace (ProtectSystem=, PrivateTmp= ...) and the device cgroup.
"""

import grp
import json
import os
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import alive, cmdline, descendants, media_dir, require_tool, run
from test_install import (install_dirs, make_install, parse_unit, require_systemd_analyze,
                          under, unit_value, unit_values)

PORT = 554
SAMPLE = "sample.mp4"       # from tests/media/make-samples.sh: h264 640x360 + aac

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def skip(reason):
    print("SKIP: " + reason)
    pytest.skip(reason)


def seconds(value):
    """A systemd time span as the unit writes it here ("10s", "10", "1min")."""
    m = re.fullmatch(r"(\d+)\s*(s|sec|min|ms)?", value.strip())
    assert m, "cannot read the time span %r" % value
    n = int(m.group(1))
    return {"ms": n / 1000.0, "min": n * 60.0}.get(m.group(2), float(n))


# ---------------------------------------------------------------- the sandbox

class Sandbox:
    """The installed tree and everything the unit would set up, in a
    throwaway directory under /tmp (reachable by the unprivileged user)."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="rtspd-hardening-", dir="/tmp")
        os.chmod(self.top, 0o755)
        self.dest = os.path.join(self.top, "root")
        make_install(self.dest, "/usr")
        self.dirs = install_dirs("/usr")
        self.unit = parse_unit(under(self.dest, self.dirs["UNITDIR"] + "/rtspd.service"))
        self.rtspd = under(self.dest, self.dirs["BINDIR"] + "/rtspd")
        self.rtspctl = under(self.dest, self.dirs["BINDIR"] + "/rtspctl")

        # User=, Group=, SupplementaryGroups=: the unit's user does not exist
        # here (sysusers would create it), so nobody/nogroup stand in for it.
        self.uid = pwd.getpwnam("nobody").pw_uid
        try:
            self.gid = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            self.gid = pwd.getpwnam("nobody").pw_gid
        self.groups, self.missing_groups = [], []
        for name in " ".join(unit_values(self.unit, "SupplementaryGroups")).split():
            try:
                self.groups.append(grp.getgrnam(name).gr_gid)
            except KeyError:
                self.missing_groups.append(name)

        # StateDirectory=, WorkingDirectory=, RuntimeDirectory= and the
        # tmpfiles.d snippet's media directory and configuration modes.
        state = unit_value(self.unit, "StateDirectory")
        self.state = under(self.top, "/var/lib/" + state)
        self.media = os.path.join(self.state, "media")
        os.makedirs(self.media)
        os.chown(self.state, self.uid, self.gid)
        src = media_dir()
        shutil.copy(os.path.join(src, SAMPLE), self.media)
        os.chmod(os.path.join(self.media, SAMPLE), 0o644)
        wd = unit_value(self.unit, "WorkingDirectory")
        assert wd == "/var/lib/" + state, "WorkingDirectory=%s is not the state directory" % wd
        self.cwd = under(self.top, wd)
        self.run_dir = under(self.top, "/run/" + unit_value(self.unit, "RuntimeDirectory"))
        os.makedirs(self.run_dir)
        os.chown(self.run_dir, self.uid, self.gid)
        os.chmod(self.run_dir, int(unit_value(self.unit, "RuntimeDirectoryMode"), 8))
        self.trace_dir = os.path.join(self.top, "trace")
        os.makedirs(self.trace_dir)
        os.chown(self.trace_dir, self.uid, self.gid)

        # The installed configuration, with the tree's paths for media and
        # the control socket, and IPv6 on (so the IPv6 paths run too).
        with open(under(self.dest, self.dirs["SYSCONFDIR"] + "/rtspd/rtspserver.cfg")) as f:
            text = f.read()
        assert re.search(r"<rtsp_port>%d</rtsp_port>" % PORT, text), "installed config is not on port 554"
        subst = {"media_dir": self.media, "control_socket": os.path.join(self.run_dir, "control.sock"),
                 "ipv6_enable": "1"}
        for node, value in subst.items():
            text, n = re.subn(r"<%s>[^<]*</%s>" % (node, node), "<%s>%s</%s>" % (node, value, node), text)
            assert n == 1, "<%s> is not in the installed configuration once" % node
        cfg_dir = os.path.join(self.top, "etc", "rtspd")
        os.makedirs(cfg_dir)
        self.config = os.path.join(cfg_dir, "rtspserver.cfg")
        with open(self.config, "w") as f:
            f.write(text)
        os.chown(cfg_dir, 0, self.gid)
        os.chmod(cfg_dir, 0o750)
        os.chown(self.config, 0, self.gid)
        os.chmod(self.config, 0o640)

        # Capabilities, no-new-privs, umask, limits, watchdog.
        self.ambient = " ".join(unit_values(self.unit, "AmbientCapabilities")).split()
        self.bounding = " ".join(unit_values(self.unit, "CapabilityBoundingSet")).split()
        for c in self.ambient + self.bounding:
            assert c in CAPS, "unknown capability %s in the unit" % c
        self.nnp = unit_value(self.unit, "NoNewPrivileges") == "yes"
        self.umask = int(unit_value(self.unit, "UMask"), 8)
        self.nofile = int(unit_value(self.unit, "LimitNOFILE"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < self.nofile:
            # Raising the hard limit takes CAP_SYS_RESOURCE, which systemd has
            # and a container's root may lack: use the most this machine allows.
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, self.nofile))
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            except (ValueError, OSError):
                print("note: LimitNOFILE=%d cannot be applied here (hard limit %d): using %d"
                      % (self.nofile, hard, hard))
                self.nofile = hard
        self.watchdog = seconds(unit_value(self.unit, "WatchdogSec"))
        self.stop_timeout = seconds(unit_value(self.unit, "TimeoutStopSec"))

    def cap_mask(self, names):
        return sum(1 << CAPS.index(c) for c in names)

    def setpriv(self, argv):
        def capset(names):
            return "-all" + "".join(",+" + c[4:].lower() for c in names)
        cmd = ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid]
        cmd += ["--groups=" + ",".join(map(str, self.groups))] if self.groups else ["--clear-groups"]
        cmd += ["--inh-caps=" + capset(self.ambient), "--ambient-caps=" + capset(self.ambient),
                "--bounding-set=" + capset(self.bounding)]
        if self.nnp:
            cmd.append("--no-new-privs")
        return cmd + ["--"] + argv

    def popen(self, netns, argv, log, env_extra=None):
        """Start argv as the unit would, inside netns; the pid returned is
        argv's own (nsenter and setpriv exec, they do not fork)."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update(env_extra or {})
        nofile = self.nofile

        def limits():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        return subprocess.Popen(netns.enter(self.setpriv(argv)), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env=env,
                                umask=self.umask, preexec_fn=limits)

    def cleanup(self):
        shutil.rmtree(self.top, ignore_errors=True)


class NetNS:
    """A fresh network namespace with lo up, held open by a sleeping process."""

    def __init__(self):
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r, _, _ = select.select([self.holder.stdout], [], [], 10)
        line = self.holder.stdout.readline() if r else b""
        if line.strip() != b"up":
            err = self.holder.stderr.read1(4000) if self.holder.poll() is not None else b""
            self.close()
            skip("cannot create a network namespace: %s" % err.decode("utf-8", "replace").strip())
        self.path = "/proc/%d/ns/net" % self.holder.pid

    def enter(self, argv):
        return ["nsenter", "--net=" + self.path, "--"] + argv

    def listening(self, port):
        """Whether something listens on TCP port `port` (IPv4 or IPv6) in
        the namespace, from the holder's view of /proc/net."""
        for f in ("tcp", "tcp6"):
            try:
                with open("/proc/%d/net/%s" % (self.holder.pid, f)) as fh:
                    for line in fh.readlines()[1:]:
                        parts = line.split()
                        if parts[1].endswith(":%04X" % port) and parts[3] == "0A":
                            return True
            except OSError:
                pass
        return False

    def close(self):
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


class NotifySocket:
    """What systemd's notify socket would receive: messages with the
    sender's pid, collected by a thread."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)       # /run/systemd/notify is writable by every service
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []          # (monotonic time, pid, uid, {field: value})
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = uid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid, uid, _ = struct.unpack("iII", cdata[:12])
            fields = dict(l.split("=", 1) for l in data.decode("utf-8", "replace").split("\n") if "=" in l)
            with self.lock:
                self.messages.append((time.monotonic(), pid, uid, fields))

    def wait_for(self, key, value=None, timeout=10.0, after=0.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for m in self.messages:
                    if m[0] >= after and key in m[3] and (value is None or m[3][key] == value):
                        return m
            time.sleep(0.05)
        return None

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def sandbox():
    if os.geteuid() != 0:
        skip("needs root: to create a network namespace and to switch to an unprivileged user")
    for tool in ("unshare", "nsenter", "setpriv", "ip", "ffprobe", "ffmpeg"):
        require_tool(tool)
    src = media_dir()
    if not src or not os.path.isfile(os.path.join(src, SAMPLE)):
        skip("RTSPD_MEDIA has no %s (run through `make integration`)" % SAMPLE)
    s = Sandbox()
    yield s
    s.cleanup()


@pytest.fixture
def netns():
    ns = NetNS()
    yield ns
    ns.close()


# ---------------------------------------------------------------- helpers

def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def nofile_limits(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    return None


def wait_listening(netns, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns.listening(PORT):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def ffprobe_in(netns, url, transport):
    rc, out, err, _ = run(netns.enter(["ffprobe", "-v", "error", "-rtsp_transport", transport,
                                       "-show_streams", "-of", "json", url]), 30)
    assert rc == 0, "ffprobe %s over %s: rc=%s %s" % (url, transport, rc, err.strip()[-2000:])
    return json.loads(out).get("streams", [])


def check_streams(streams, url, transport, want_size=None):
    video = [s for s in streams if s.get("codec_type") == "video"]
    assert video, "%s over %s: no video stream: %s" % (url, transport, streams)
    v = video[0]
    assert v.get("codec_name") == "h264", "%s over %s: video codec %s" % (url, transport, v.get("codec_name"))
    assert v.get("width", 0) > 0 and v.get("height", 0) > 0, "%s: no picture size: %s" % (url, v)
    if want_size:
        assert (v["width"], v["height"]) == want_size, "%s: %dx%d" % (url, v["width"], v["height"])
    assert any(s.get("codec_type") == "audio" for s in streams), "%s over %s: no audio" % (url, transport)


def stop_master(proc, master_pid, timeout):
    """SIGTERM to the master, as KillMode=mixed does; the exit status of
    proc (the master itself or the strace holding it)."""
    os.kill(master_pid, signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        for p in [proc.pid] + descendants(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(5)
        return None


def log_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------- 1: privileges

def test_runs_unprivileged_on_port_554(sandbox, netns):
    s = sandbox
    if s.missing_groups:
        print("note: groups %s do not exist here; the unit would fail to start with 216/GROUP"
              % s.missing_groups)
    notify = NotifySocket(os.path.join(s.top, "notify-1.sock"))
    log_path = os.path.join(s.top, "rtspd-1.log")
    log = open(log_path, "wb")
    t0 = time.monotonic()
    proc = s.popen(netns, [s.rtspd, "-c", s.config], log,
                   {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(int(s.watchdog * 1e6))})
    try:
        # Type=notify: READY=1 from the master, once it listens.
        ready = notify.wait_for("READY", "1", timeout=15, after=t0)
        assert ready, "no READY=1 within 15 s (Type=notify would time out):\n" + log_text(log_path)[-3000:]
        assert netns.listening(PORT), "READY=1 sent before port %d listens" % PORT
        assert ready[1] == proc.pid, "READY=1 from pid %s, not the master %d" % (ready[1], proc.pid)
        assert ready[2] == s.uid

        # The master's identity and privileges.
        st = proc_status(proc.pid)
        want_caps = s.cap_mask(s.ambient)
        assert st["Uid"].split() == [str(s.uid)] * 4, st["Uid"]
        assert st["Gid"].split() == [str(s.gid)] * 4, st["Gid"]
        assert sorted(map(int, st["Groups"].split())) == sorted(s.groups), st["Groups"]
        assert int(st["CapEff"], 16) == want_caps, "CapEff %s" % st["CapEff"]
        assert int(st["CapPrm"], 16) == want_caps, "CapPrm %s" % st["CapPrm"]
        assert int(st["CapAmb"], 16) == want_caps, "CapAmb %s" % st["CapAmb"]
        assert int(st["CapBnd"], 16) == s.cap_mask(s.bounding), "CapBnd %s" % st["CapBnd"]
        assert st["NoNewPrivs"] == ("1" if s.nnp else "0")
        assert int(st["Umask"], 8) == s.umask

        # Clients: the built-in stream and a file, TCP and UDP, IPv4 and IPv6.
        for url, transport, size in (
                ("rtsp://127.0.0.1:%d/test" % PORT, "tcp", None),
                ("rtsp://127.0.0.1:%d/test" % PORT, "udp", None),
                ("rtsp://[::1]:%d/%s" % (PORT, SAMPLE), "udp", (640, 360)),
                ("rtsp://[::1]:%d/%s" % (PORT, SAMPLE), "tcp", (640, 360))):
            check_streams(ffprobe_in(netns, url, transport), url, transport, size)

        # Workers: started by the master (fork + exec of itself), same
        # identity, same capabilities, same limits.
        workers = [p for p in descendants(proc.pid) if "--worker" in cmdline(p)]
        assert len(workers) >= 2, "expected a worker for /test and one for the file: %s" % workers
        for w in workers:
            ws = proc_status(w)
            for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapAmb", "CapBnd", "NoNewPrivs"):
                assert ws[k] == st[k], "worker %d %s=%s, master %s" % (w, k, ws[k], st[k])
            assert nofile_limits(w) == (s.nofile, s.nofile), "worker %d: %s" % (w, nofile_limits(w))
        assert nofile_limits(proc.pid) == (s.nofile, s.nofile)

        # WatchdogSec=: pings from the master, never more than half the
        # period apart (what systemd advises); nothing from the workers.
        time.sleep(max(0.0, ready[0] + s.watchdog / 2 + 0.5 - time.monotonic()))
        with notify.lock:
            msgs = list(notify.messages)
        pings = [m[0] for m in msgs if m[3].get("WATCHDOG") == "1"]
        assert pings, "no WATCHDOG=1 with WatchdogSec=%gs" % s.watchdog
        gaps = [b - a for a, b in zip([ready[0]] + pings, pings + [time.monotonic()])]
        assert max(gaps) <= s.watchdog / 2, "WATCHDOG=1 gaps %s with WatchdogSec=%gs" % (gaps, s.watchdog)
        strangers = [m for m in msgs if m[1] != proc.pid]
        assert not strangers, "notifications from other processes than the master: %s" % strangers
        assert any("STATUS" in m[3] for m in msgs), "no STATUS= (systemctl status shows it)"

        # Stop as systemd does: SIGTERM to the master only (KillMode=mixed).
        t_stop = time.monotonic()
        rc = stop_master(proc, proc.pid, s.stop_timeout)
        assert rc is not None, "rtspd did not exit within TimeoutStopSec=%gs of SIGTERM" % s.stop_timeout
        assert rc == 0, "exit status %s after SIGTERM:\n%s" % (rc, log_text(log_path)[-3000:])
        assert notify.wait_for("STOPPING", "1", timeout=1, after=t_stop), "no STOPPING=1"
        left = [w for w in workers if alive(w)]
        assert not left, "workers left after the master exited: %s" % left
    finally:
        if proc.poll() is None:
            stop_master(proc, proc.pid, 5)
        log.close()
        notify.close()


# ---------------------------------------------------------------- 2: system calls

LINE_RE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
# Refusals that are expected and harmless: libsystemd's sd_notify() asks
# for an 8 MiB send buffer with SO_SNDBUF and then tries SO_SNDBUFFORCE,
# which needs CAP_NET_ADMIN (under systemd too) and is allowed to fail.
BENIGN_DENIAL_RE = re.compile(r"setsockopt\(\d+, SOL_SOCKET, SO_(SND|RCV)BUFFORCE,")


def parse_trace(path):
    """strace -f output -> (Counter-like dict name -> lines, families, wx, denied, execs)."""
    names, families, wx, denied, execs = {}, set(), [], [], []
    unfinished = {}   # pid -> the first half of a call strace split in two
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE_RE.match(line)
            if not m:
                continue
            resumed, name, rest = m.group(2) is not None, m.group(2) or m.group(3), m.group(4)
            if line.rstrip().endswith("<unfinished ...>"):
                unfinished[m.group(1)] = line.rstrip()[:-len("<unfinished ...>")].rstrip()
            elif resumed and m.group(1) in unfinished:
                # the whole call, so that a benign refusal is known as one
                line = unfinished.pop(m.group(1)) + rest.lstrip() + "\n"
            names.setdefault(name, line.strip())
            if not resumed:
                if name in ("socket", "socketpair"):
                    families.add(rest.split(",", 1)[0].strip())
                if name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_EXEC" in rest:
                    wx.append((name, "PROT_WRITE" in rest, line.strip()))
                if name == "execve":
                    execs.append(line.strip())
            if re.search(r"= -1 (EPERM|EACCES) ", line) and not BENIGN_DENIAL_RE.search(line):
                denied.append(line.strip())
    return names, families, wx, denied, execs


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True,
                         text=True, timeout=60).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif not line.strip():
            cur = None
        elif cur and line.startswith("    ") and not line.strip().startswith("#"):
            groups[cur].append(line.strip())
    return groups


def expand(groups, item, seen=None):
    seen = set() if seen is None else seen
    if not item.startswith("@"):
        return {item}
    assert item in groups, "systemd-analyze does not know %s" % item
    if item in seen:
        return set()
    seen.add(item)
    out = set()
    for e in groups[item]:
        out |= expand(groups, e, seen)
    return out


def allowed_syscalls(unit):
    """The unit's SystemCallFilter= lines as systemd combines them: the
    first decides allow-list (no ~) or deny-list (~); later lines add to or
    take from it."""
    groups = syscall_groups()
    allow, deny_list_mode = set(), None
    for value in unit_values(unit, "SystemCallFilter"):
        neg = value.startswith("~")
        items = set()
        for it in value.lstrip("~").split():
            items |= expand(groups, it)
        if deny_list_mode is None:
            deny_list_mode = neg
            if neg:
                skip("the unit's SystemCallFilter= is a deny-list; this test checks allow-lists")
        if neg:
            allow -= items
        else:
            allow |= items
    assert allow, "no SystemCallFilter= in the unit"
    return allow


def test_system_calls_stay_within_the_unit_filters(sandbox, netns):
    require_systemd_analyze()
    require_tool("strace")
    s = sandbox
    allowed = allowed_syscalls(s.unit)
    fam_values = " ".join(unit_values(s.unit, "RestrictAddressFamilies")).split()
    assert fam_values and not fam_values[0].startswith("~"), "RestrictAddressFamilies= is not an allow-list"
    families_ok = set(fam_values)
    mdwe = unit_value(s.unit, "MemoryDenyWriteExecute") == "yes"

    notify = NotifySocket(os.path.join(s.top, "notify-2.sock"))
    trace = os.path.join(s.trace_dir, "rtspd.trace")
    log_path = os.path.join(s.top, "rtspd-2.log")
    log = open(log_path, "wb")
    t0 = time.monotonic()
    proc = s.popen(netns, ["strace", "-f", "-qq", "-s", "64", "-o", trace, s.rtspd, "-c", s.config], log,
                   {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(int(s.watchdog * 1e6))})
    master = None
    try:
        ready = notify.wait_for("READY", "1", timeout=30, after=t0)
        if not ready and proc.poll() is not None:
            text = log_text(log_path)
            if "ptrace" in text or "Operation not permitted" in text:
                skip("strace cannot trace here: " + text.strip()[-300:])
        assert ready, "no READY=1 under strace within 30 s:\n" + log_text(log_path)[-3000:]
        master = ready[1]
        assert master in descendants(proc.pid), "READY=1 from %s, not strace's child" % master

        # Real clients, at once: the live test pattern and a file on demand,
        # TCP interleaved and UDP, IPv4 and IPv6, each decoding 3 s.
        clients = [("rtsp://127.0.0.1:%d/test" % PORT, "tcp"),
                   ("rtsp://[::1]:%d/test" % PORT, "udp"),
                   ("rtsp://127.0.0.1:%d/%s" % (PORT, SAMPLE), "udp"),
                   ("rtsp://[::1]:%d/%s" % (PORT, SAMPLE), "tcp")]
        results = [None] * len(clients)

        def play(i, url, transport):
            results[i] = run(netns.enter(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport,
                                          "-i", url, "-t", "3", "-map", "0:v", "-f", "framemd5", "-"]), 40)

        threads = [threading.Thread(target=play, args=(i, u, t)) for i, (u, t) in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for (url, transport), (rc, out, err, _) in zip(clients, results):
            frames = [l for l in out.splitlines() if l and not l.startswith("#")]
            assert rc == 0, "ffmpeg %s over %s: rc=%s %s" % (url, transport, rc, err.strip()[-1500:])
            assert len(frames) >= 25, "ffmpeg %s over %s decoded %d video frames in 3 s" % (url, transport, len(frames))

        # ExecReload=, as the unit runs it: same sandbox, each command traced.
        reload_traces = []
        for i, cmd in enumerate(unit_values(s.unit, "ExecReload")):
            argv = cmd.split()
            argv[0] = under(s.dest, argv[0])
            argv = [s.config if a == s.dirs["SYSCONFDIR"] + "/rtspd/rtspserver.cfg" else a for a in argv]
            assert s.config in argv, "ExecReload=%s does not name the installed configuration" % cmd
            t = os.path.join(s.trace_dir, "reload-%d.trace" % i)
            reload_traces.append(t)
            rlog_path = os.path.join(s.top, "reload-%d.log" % i)
            with open(rlog_path, "wb") as rlog:
                p = s.popen(netns, ["strace", "-f", "-qq", "-s", "64", "-o", t] + argv, rlog)
                rc = p.wait(60)
            assert rc == 0, "ExecReload=%s failed (%s):\n%s" % (cmd, rc, log_text(rlog_path)[-2000:])

        # Still serving after the reload.
        check_streams(ffprobe_in(netns, "rtsp://127.0.0.1:%d/test" % PORT, "tcp"), "/test", "tcp")

        rc = stop_master(proc, master, s.stop_timeout + 10)
        assert rc == 0, "strace/rtspd exit status %s after SIGTERM:\n%s" % (rc, log_text(log_path)[-3000:])
    finally:
        if proc.poll() is None:
            stop_master(proc, master or proc.pid, 5)
        log.close()
        notify.close()

    names, families, wx, denied, execs = parse_trace(trace)
    for t in reload_traces:
        n2, f2, wx2, d2, _ = parse_trace(t)
        for k, v in n2.items():
            names.setdefault(k, v)
        families |= f2
        wx += wx2
        denied += d2
    print("system calls made (%d): %s" % (len(names), " ".join(sorted(names))))
    print("socket families: %s" % " ".join(sorted(families)))

    # The trace really covers master and workers, IPv4 and IPv6, TCP and UDP.
    assert any("--worker" in e for e in execs), "no worker in the trace: %s" % execs[:5]
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families, "families seen: %s" % families
    assert any(not w for _, w, _ in wx), "no executable mapping seen at all: is the trace complete?"

    outside = sorted(n for n in names if n not in allowed)
    assert not outside, "system calls outside SystemCallFilter=%s:\n%s" % (
        unit_values(s.unit, "SystemCallFilter"), "\n".join(names[n] for n in outside))
    assert families <= families_ok, "socket families outside RestrictAddressFamilies=%s: %s" % (
        " ".join(fam_values), sorted(families - families_ok))
    if mdwe:
        bad = [l for name, w, l in wx if name != "mmap" or w]
        assert not bad, "MemoryDenyWriteExecute=yes would refuse:\n" + "\n".join(bad[:10])
    assert not denied, "calls refused with EPERM/EACCES in the sandbox:\n" + "\n".join(denied[:20])
