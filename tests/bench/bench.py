#!/usr/bin/python3
"""bench.py: the fan-out benchmark, rtspd against gst-rtsp-server.

Run through tests/bench/run.sh (`make bench`), which makes the media file
first. Environment:

  RTSPD_BIN      rtspd to measure (default build/rtspd: the optimized build)
  RTSPBENCH_BIN  the load client (default build/rtspbench)
  BENCH_SECONDS  how long each viewer plays (default 30)
  BENCH_TCP      viewer counts over TCP interleaved (default "10 100 500 1000 2000";
                 set and empty: none)
  BENCH_UDP      viewer counts over UDP (default "100 500 1000"; set and empty: none)
  BENCH_UDP_GRO  viewer counts over UDP with a client that receives coalesced
                 bursts (rtspbench -T udp --gro; "UDP+GRO" in the report;
                 default "100 500 1000"; set and empty: none)
  BENCH_TLS      viewer counts over TCP interleaved inside TLS (rtsps://),
                 rtspd only ("TCP in TLS" in the report; default: none). Each
                 run gets a throw-away self-signed certificate; the report
                 adds the CPU of rtspd's TLS front process (`rtspd --tls`)
                 apart, and compares with the rtspd TCP row of the same N
                 when BENCH_TCP has it: the cost of the TLS relay
  BENCH_UDP_NET  where the UDP and UDP+GRO rows run: "lo" (loopback, the
                 default), "veth", or "veth lo" (each viewer count twice,
                 loopback first; about 8 more minutes with the default
                 counts). See "veth" below. When a network namespace cannot
                 be made here, the veth rows run over loopback instead and
                 the reason is printed and reported. Smoke runs default to
                 "veth", so that the path is exercised. Loopback stays the
                 default: on this kind of machine (a KVM guest) veth+RPS
                 makes the sender pay an inter-processor interrupt, a VM
                 exit, each time the client's CPU has to be woken for more
                 packets, which costs a sender of single datagrams (gst)
                 about what the receive work it moves away saved it.
  BENCH_TCP_NET  the same for the TCP rows (default "lo")
  BENCH_CPUS     "S,C": the CPU the server is pinned to and the CPU the load
                 client and its receive processing are steered to in veth
                 mode (default: the first two CPUs this runner may use)
  BENCH_PROFILE=0  no perf profile
  BENCH_RAMP     joins per second (default 100), for both servers
  BENCH_MULTI    the multi-stream case, STREAMSxVIEWERS (default "50x10"; "0" skips it)
  BENCH_MULTI_SINGLE  its single-stream counterpart, viewers of one stream
                 (default: STREAMS x VIEWERS, i.e. 500)
  BENCH_SMOKE=1  10 viewers for 3 s, TCP, UDP and UDP+GRO, each server once,
                 and a 3x3 multi-stream round; a 2 s file, so both servers loop
                 during the run; no profile. Well under a minute; `make check`
                 runs it.
  BENCH_OUT      the report (default docs/PERFORMANCE.md; in smoke mode a
                 temporary file, never the docs)
  BENCH_JSON     also write every measurement as JSON to this file
                 (default build/bench/results.json; none in smoke mode)
  BENCH_MEDIA    the bench file (run.sh sets it)
  BENCH_KEEP=1   keep the work directory (configs, server logs)

Method, per server, transport and viewer count: a fresh server (its own
ports and config), one warm-up viewer so the stream is running (rtspd's
worker started, gst's shared media played once), 3 s idle to measure the
server's CPU and RSS with the stream and no viewer; then rtspbench with N
viewers joining at BENCH_RAMP per second, each playing BENCH_SECONDS. The
measuring window runs from just before rtspbench starts to just after it
exits (joins, playing, TEARDOWNs). Server CPU is utime+stime of the whole
process tree (master and workers, read from /proc/PID/stat at both ends of
the window; a process born in the window counts from zero, one that exited
and was reaped counts through its parent's cutime+cstime); "above idle"
takes away the idle rate over the window. RSS is the sum of VmRSS over the
tree, sampled every 0.25 s, the peak reported; PSS the sum of Pss, read once
in the middle of the run; KiB per added viewer comes from VmRSS - RssShmem
(rtspd's ring is shared memory that fills up over time whatever the load).
The load client runs as SCHED_BATCH (rtspbench sets it itself), so that its
wake-ups do not preempt the server in the middle of a burst; both servers
get the same client.

Two UDP sets: "UDP" is a client that receives datagram by datagram, as
ffmpeg or VLC do; on loopback the kernel cuts the segmented bursts rtspd
sends (UDP_SEGMENT) back into datagrams on rtspd's CPU, and each datagram's
receive path, the client's wake-up included, is charged to the sender.
"UDP+GRO" is rtspbench --gro: its sockets set UDP_GRO and take a burst
whole, as a host with a GRO-capable NIC does; that is closer to what the
server pays on a real network, where the receive side runs on other
machines. gst-rtsp-server sends one datagram per packet, so --gro changes
little for it; it is measured all the same.

veth (BENCH_UDP_NET / BENCH_TCP_NET): the load client runs in a network
namespace of its own
(rtspdbench-PID), joined to the server's (the root namespace) by a veth
pair: the server side 10.200.K.1/24, the client 10.200.K.2/24 (K: the first
10.200.K.0/24 no interface here uses). The server's whole process tree is
pinned to one CPU (sched_setaffinity, as `taskset -c S` does; rtspd's
workers and gst's threads inherit it), the load client to the other
(`taskset -c C`), and RPS on the client-side veth (every
/sys/class/net/VETH/queues/rx-*/rps_cpus) steers the receive processing of
what the server sends to the client's CPU; RPS on the server-side veth
steers what the client sends (requests, RTCP, ACKs) to the server's CPU. On
loopback, and on a veth pair without RPS, the kernel runs the receiving
side's network stack (the softirq: GSO segmentation, UDP queueing, waking
the client) right away in the sending process's context, so it is charged
to the server; with RPS it runs on the client's CPU, as on a real network
it runs on the viewers' machines. The client is still on the same machine:
it shares the memory bus and caches, and the machine busy figure includes
it. The sender still pays for its own transmit path, veth's included (about
what a NIC driver costs). RPS is set on the namespace's veth only, never on
the shared loopback device. Every run records, over its window, the
per-CPU softirq time (/proc/stat), NET_RX softirqs (/proc/softirqs), and
the skbs received, RPS wake-ups and backlog drops (/proc/net/softnet_stat), and
checks that the server's processes stayed on their CPU: the report's
"Where the receive work ran" table shows what moved. What RPS adds: the
sending CPU must interrupt the client's CPU (an IPI:
smp_call_function_single_async under net_rps_send_ipi) whenever that CPU's backlog was empty; in a
virtual machine each IPI is a VM exit charged to the sender. A sender of
bursts (rtspd's UDP_SEGMENT) pays few; one that sends datagram by datagram
(gst) pays about one per few datagrams. And the client CPU's backlog holds
net.core.netdev_max_backlog skbs (1000 by default): a segmented burst is
one skb there but many datagrams of receive work, so big fan-out bursts
can overflow it (counted as backlog drops; the viewers see lost packets).

Hot-path profile (not in smoke mode): when perf works, rtspd's worker
processes are recorded with `perf record -F 999 -g` for 10 s of the TCP
and the UDP run with the most viewers (from about 5 s after rtspbench
starts, or once every viewer has joined if the ramp is longer), and the
report gets the top symbols by self time, a children view, the user/kernel
split and the share under net_rx_action / __netif_receive_skb (the
loopback receive path run in the server's context). perf's files stay in
the work directory; without perf the section says so and nothing fails.

The report says all this, with the machine, the commit and the numbers.

Exit status: 0 when every planned run was measured; 1 when the harness or
rtspd had a problem (a server did not start, rtspd crashed, hung or left a
process behind, a sanitizer report, a run had to be killed), or, in smoke
mode, when rtspd did not stream to every viewer without loss. gst's
failures to sustain a load are results, reported, not errors.
"""

import ctypes
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ports  # noqa: E402
from ports import free_tcp_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"
GST_SERVER = os.path.join(HERE, "gst_server.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)")
SERVERS = ("rtspd", "gst")
TRANSPORTS = ("tcp", "udp", "udp-gro", "tls")
TRANSPORT_LABELS = {"tcp": "TCP", "udp": "UDP", "udp-gro": "UDP+GRO", "tls": "TCP in TLS"}
# rtspbench's options per transport: udp-gro is UDP with UDP_GRO on the
# client's RTP sockets (it takes the server's segmented bursts whole); tls
# is TCP interleaved with an rtsps:// URL (rtspd only: gst is not set up
# for TLS here).
TRANSPORT_ARGS = {"tcp": ["-T", "tcp"], "udp": ["-T", "udp"], "udp-gro": ["-T", "udp", "--gro"],
                  "tls": ["-T", "tcp"]}
TRANSPORT_SERVERS = {"tls": ("rtspd",)}
PROFILE_HZ = 999
PROFILE_SECONDS = 10.0
PROFILE_DELAY = 5.0


def tr_label(transport):
    return TRANSPORT_LABELS.get(transport, transport.upper())


def log(msg):
    print(msg, flush=True)


def env_str(name, default):
    v = os.environ.get(name)
    return default if v is None or v.strip() == "" else v.strip()


def env_int(name, default, lo=1):
    v = env_str(name, None)
    if v is None:
        return default
    try:
        n = int(v)
    except ValueError:
        raise SystemExit("bench: %s=%r is not a whole number" % (name, v))
    if n < lo:
        raise SystemExit("bench: %s=%d is below %d" % (name, n, lo))
    return n


def env_counts(name, default):
    """A list of viewer counts; set but empty means none."""
    v = os.environ.get(name)
    if v is None:
        v = default
    out = []
    for w in v.replace(",", " ").split():
        try:
            n = int(w)
        except ValueError:
            raise SystemExit("bench: %s: %r is not a viewer count" % (name, w))
        if n < 1:
            raise SystemExit("bench: %s: viewer counts start at 1" % name)
        out.append(n)
    return out


def env_nets(name, default):
    """Where a transport's rows run: a list of "veth" and/or "lo"."""
    v = env_str(name, default)
    out = []
    for w in v.replace(",", " ").split():
        w = {"loopback": "lo"}.get(w, w)
        if w not in ("veth", "lo"):
            raise SystemExit("bench: %s: %r is neither veth nor lo" % (name, w))
        if w not in out:
            out.append(w)
    return out or [default]


def resolve(path):
    return path if os.path.isabs(path) else os.path.abspath(path)


class Settings:
    def __init__(self):
        self.smoke = env_str("BENCH_SMOKE", "0") == "1"
        self.rtspd = resolve(env_str("RTSPD_BIN", os.path.join(REPO, "build", "rtspd")))
        self.rtspbench = resolve(env_str("RTSPBENCH_BIN", os.path.join(REPO, "build", "rtspbench")))
        self.media = env_str("BENCH_MEDIA", None)
        self.ramp = float(env_int("BENCH_RAMP", 100))
        self.keep = env_str("BENCH_KEEP", "0") == "1"
        # Full runs keep UDP on loopback (see BENCH_UDP_NET above for why);
        # smoke runs take UDP through veth+RPS so that the path cannot rot.
        self.udp_net = env_nets("BENCH_UDP_NET", "veth" if self.smoke else "lo")
        self.tcp_net = env_nets("BENCH_TCP_NET", "lo")
        self.cpus = pick_cpus()
        self.veth = None            # the VethNet, once made
        self.veth_status = None     # why there is none, when one was wanted
        if self.smoke:
            self.seconds = 3
            self.tcp = [10]
            self.udp = [10]
            self.udp_gro = [10]
            self.tls = []
            self.multi = (3, 3)
            self.multi_single = 0          # the single-stream rows cover that path
            self.warm_seconds = 0.5
            self.settle_seconds = 0.2
            self.idle_seconds = 0.5
            self.out = env_str("BENCH_OUT", None)
            self.json = env_str("BENCH_JSON", None)
        else:
            self.seconds = env_int("BENCH_SECONDS", 30)
            self.tcp = env_counts("BENCH_TCP", "10 100 500 1000 2000")
            self.udp = env_counts("BENCH_UDP", "100 500 1000")
            self.udp_gro = env_counts("BENCH_UDP_GRO", "100 500 1000")
            self.tls = env_counts("BENCH_TLS", "")
            m = env_str("BENCH_MULTI", "50x10")
            if m in ("0", "no", "off"):
                self.multi = None
            else:
                mm = re.fullmatch(r"(\d+)x(\d+)", m)
                if not mm or int(mm.group(1)) < 1 or int(mm.group(2)) < 1:
                    raise SystemExit("bench: BENCH_MULTI=%r: want STREAMSxVIEWERS, e.g. 50x10" % m)
                self.multi = (int(mm.group(1)), int(mm.group(2)))
            self.multi_single = env_int("BENCH_MULTI_SINGLE",
                                        self.multi[0] * self.multi[1] if self.multi else 0, lo=0)
            self.warm_seconds = 2
            self.settle_seconds = 0.5
            self.idle_seconds = 3.0
            self.out = env_str("BENCH_OUT", os.path.join(REPO, "docs", "PERFORMANCE.md"))
            self.json = env_str("BENCH_JSON", os.path.join(REPO, "build", "bench", "results.json"))
        # (transport, N) of the rtspd runs to profile: the most viewers over
        # TCP and over plain UDP; main() drops them if perf does not work.
        self.profile = set()
        if not self.smoke and env_str("BENCH_PROFILE", "1") != "0":
            if self.tcp:
                self.profile.add(("tcp", max(self.tcp)))
            if self.udp:
                self.profile.add(("udp", max(self.udp)))
        self.perf_status = "this is a smoke run" if self.smoke else None
        if not self.smoke and not self.profile and env_str("BENCH_PROFILE", "1") == "0":
            self.perf_status = "BENCH_PROFILE=0"
        if self.out:
            self.out = resolve(self.out)
        if self.json:
            self.json = resolve(self.json)


# ---------------------------------------------------------------- /proc

def children_of(pid):
    kids = set()
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def tree(pid):
    """pid and all its live descendants."""
    out, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo.extend(children_of(p))
    return out


def stat_fields(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_cpu_ticks(pid, with_children=False):
    """utime+stime (+cutime+cstime: reaped children) in clock ticks."""
    f = stat_fields(pid)
    if f is None:
        return 0
    # after the ")" : state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    t = int(f[11]) + int(f[12])
    if with_children:
        t += int(f[13]) + int(f[14])
    return t


def tree_cpu_ms(pid):
    """CPU of pid's tree, in ms: every live member's own time plus what the
    root reaped (a worker that exited within the window still counts)."""
    total = 0
    for p in tree(pid):
        total += proc_cpu_ticks(p, with_children=(p == pid))
    return total * 1000.0 / CLK_TCK


def rss_kib(pid):
    """(VmRSS, RssShmem) of one process, KiB."""
    rss = shmem = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssShmem:"):
                    shmem = int(line.split()[1])
    except OSError:
        pass
    return rss, shmem


def tree_rss_kib(pid):
    """(sum of VmRSS, sum of VmRSS - RssShmem) over pid's tree, KiB."""
    rss = private = 0
    for p in tree(pid):
        r, sh = rss_kib(p)
        rss += r
        private += r - sh
    return rss, private


def tree_pss_kib(pid):
    """Sum of Pss over pid's tree (smaps_rollup), KiB: shared pages divided
    among the processes that map them, so libraries and rtspd's rings count
    once. Costlier to read than VmRSS, so it is read twice per run."""
    total = 0
    for p in tree(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]), idle


def alive(pid):
    f = stat_fields(pid)
    return f is not None and f[0] not in ("Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def tls_front_pids(pids):
    """rtspd's TLS front process(es) among pids (`rtspd --tls`)."""
    return [p for p in pids if "--tls" in cmdline(p)[1:2]]


def pids_cpu_ms(pids):
    return sum(proc_cpu_ticks(p) for p in pids) * 1000.0 / CLK_TCK


def make_cert(workdir):
    """A throw-away self-signed EC certificate and key for RTSPS, once per
    work directory: (cert, key)."""
    d = os.path.join(workdir, "certs")
    cert, key = os.path.join(d, "rtspd.crt"), os.path.join(d, "rtspd.key")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    os.makedirs(d, exist_ok=True)
    try:
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HarnessError("openssl req could not run: %s" % e)
    if p.returncode != 0:
        raise HarnessError("openssl req failed: %s" % p.stdout.decode("utf-8", "replace")[-500:])
    return cert, key


# ---------------------------------------------------------------- veth

NETNS_PREFIX = "rtspdbench-"
NET_LABELS = {"lo": "loopback", "veth": "veth+RPS"}
NETNS_LOCK = "/tmp/rtspd-bench-netns.lock"


class NetError(Exception):
    pass


def _ip(args, ns=None, raw=False, timeout=15):
    """`ip ARGS`, or with raw the command ARGS itself; inside namespace ns
    when given. Its output; NetError when it fails."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    cmd = ([ip, "netns", "exec", ns] if ns else []) + (list(args) if raw else [ip] + list(args))
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetError("%s: %s" % (" ".join(cmd), e))
    out = p.stdout.decode("utf-8", "replace").strip()
    if p.returncode != 0:
        raise NetError("%s: %s" % (" ".join(cmd), out.splitlines()[-1] if out else "exit %d" % p.returncode))
    return out


def cpu_mask(cpu):
    """rps_cpus mask for one CPU: hex, comma-separated 32-bit words."""
    v = 1 << cpu
    words = []
    while True:
        words.append("%08x" % (v & 0xffffffff))
        v >>= 32
        if not v:
            break
    return ",".join(reversed(words))


class VethNet:
    """A network namespace for the load client, joined to the root
    namespace by a veth pair, with RPS steering each side's receive
    processing to that side's CPU. setup() raises NetError with the reason
    when it cannot be made here; teardown() always deletes what was made
    (deleting the namespace deletes the veth pair)."""

    def __init__(self, server_cpu, client_cpu):
        self.ns = "%s%d" % (NETNS_PREFIX, os.getpid())
        self.host_if = "rbs%d" % os.getpid()
        self.peer_if = "rbc%d" % os.getpid()
        self.server_cpu = server_cpu
        self.client_cpu = client_cpu
        self.server_ip = self.client_ip = self.subnet = None
        self.made = False
        self.rps = {}

    @staticmethod
    def clean_stale():
        """Namespaces an earlier runner left behind (it was killed): those
        named after a process that no longer exists."""
        try:
            names = _ip(["netns", "list"])
        except NetError:
            return
        for line in names.splitlines():
            name = line.split()[0] if line.split() else ""
            if not name.startswith(NETNS_PREFIX):
                continue
            try:
                pid = int(name[len(NETNS_PREFIX):])
            except ValueError:
                continue
            if pid != os.getpid() and not os.path.exists("/proc/%d" % pid):
                try:
                    _ip(["netns", "del", name])
                    log("bench: deleted the stale namespace %s" % name)
                except NetError:
                    pass

    def setup(self):
        import fcntl
        if self.server_cpu == self.client_cpu:
            raise NetError("the server and the client need two different CPUs")
        if not os.path.isdir("/sys/class/net/lo/queues/rx-0"):
            raise NetError("no /sys/class/net/*/queues here (RPS cannot be set)")
        self.clean_stale()
        with open(NETNS_LOCK, "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)      # one runner at a time picks a subnet
            used = set(re.findall(r"\b10\.200\.(\d+)\.\d+", _ip(["-4", "-o", "addr", "show"])
                                  + "\n" + _ip(["-4", "route", "show"])))
            free = [k for k in range(256) if str(k) not in used]
            if not free:
                raise NetError("every 10.200.K.0/24 is in use here")
            k = free[0]
            self.subnet = "10.200.%d.0/24" % k
            self.server_ip, self.client_ip = "10.200.%d.1" % k, "10.200.%d.2" % k
            _ip(["netns", "add", self.ns])
            self.made = True
            _ip(["link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if])
            try:
                _ip(["link", "set", self.peer_if, "netns", self.ns])
            except NetError:
                _ip(["link", "del", self.host_if])
                raise
            _ip(["addr", "add", self.server_ip + "/24", "dev", self.host_if])
            _ip(["link", "set", self.host_if, "up"])
            _ip(["addr", "add", self.client_ip + "/24", "dev", self.peer_if], ns=self.ns)
            _ip(["link", "set", self.peer_if, "up"], ns=self.ns)
            _ip(["link", "set", "lo", "up"], ns=self.ns)
        # RPS, every receive queue of each side (veth picks the peer's
        # receive queue from the sender's transmit queue). The namespace's
        # sysfs is only visible from inside it.
        script = ('for q in /sys/class/net/%s/queues/rx-*; do echo %s > "$q/rps_cpus" || exit 1; done; '
                  'cat /sys/class/net/%s/queues/rx-*/rps_cpus')
        got = _ip(["sh", "-c", script % (self.peer_if, cpu_mask(self.client_cpu), self.peer_if)], ns=self.ns, raw=True)
        self.rps["client"] = got.split()
        got = subprocess.run(["sh", "-c", script % (self.host_if, cpu_mask(self.server_cpu), self.host_if)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15, check=False)
        if got.returncode != 0:
            raise NetError("cannot set rps_cpus on %s: %s" % (self.host_if, got.stdout.decode().strip()[-200:]))
        self.rps["server"] = got.stdout.decode().split()
        for side, cpu in (("client", self.client_cpu), ("server", self.server_cpu)):
            vals = self.rps[side]
            if not vals or any(int(v.replace(",", ""), 16) != 1 << cpu for v in vals):
                raise NetError("rps_cpus on the %s side reads back %s, not CPU %d" % (side, vals, cpu))
        # The namespace answers: a TCP listener here, connect() from there.
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lsock.bind((self.server_ip, 0))
            lsock.listen(1)
            port = lsock.getsockname()[1]
            _ip([PYTHON, "-c", "import socket; socket.create_connection(('%s', %d), timeout=3).close()"
                 % (self.server_ip, port)], ns=self.ns, raw=True)
        finally:
            lsock.close()
        return self

    def client_prefix(self):
        return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.ns]

    def describe(self):
        return ("namespace %s, veth %s (%s/24, server side, RPS to CPU %d) <-> %s (%s/24, client side, "
                "RPS to CPU %d); server pinned to CPU %d, client to CPU %d" % (
                    self.ns, self.host_if, self.server_ip, self.server_cpu, self.peer_if, self.client_ip,
                    self.client_cpu, self.server_cpu, self.client_cpu))

    def teardown(self):
        if not self.made:
            return
        for _ in range(3):
            try:
                _ip(["netns", "del", self.ns])
                self.made = False
                return
            except NetError as e:
                err = e
                time.sleep(0.5)
        log("bench: could not delete the namespace %s: %s" % (self.ns, err))


def pick_cpus():
    """(server CPU, client CPU): BENCH_CPUS=S,C or the first two CPUs
    this runner may use; None when there is only one."""
    v = env_str("BENCH_CPUS", None)
    allowed = sorted(os.sched_getaffinity(0))
    if v:
        m = re.fullmatch(r"(\d+),(\d+)", v)
        if not m or int(m.group(1)) == int(m.group(2)):
            raise SystemExit("bench: BENCH_CPUS=%r: want two different CPUs, e.g. 0,1" % v)
        a, b = int(m.group(1)), int(m.group(2))
        for c in (a, b):
            if c not in allowed:
                raise SystemExit("bench: BENCH_CPUS=%r: CPU %d is not one this runner may use (%s)" % (v, c, allowed))
        return a, b
    if len(allowed) < 2:
        return None
    return allowed[0], allowed[1]


def kernel_counters():
    """Per-CPU counters for the window: /proc/stat (all and softirq ticks),
    NET_RX softirqs (/proc/softirqs), and from /proc/net/softnet_stat the
    packets processed, dropped (backlog full) and received by RPS IPI."""
    out = {"stat": {}, "net_rx": [], "softnet": []}
    try:
        with open("/proc/stat") as f:
            for line in f:
                m = re.match(r"cpu(\d+)\s+(.*)", line)
                if m:
                    v = [int(x) for x in m.group(2).split()]
                    out["stat"][int(m.group(1))] = {"total": sum(v[:8]), "idle": v[3] + v[4],
                                                    "softirq": v[6], "system": v[2], "user": v[0] + v[1]}
    except OSError:
        pass
    try:
        with open("/proc/softirqs") as f:
            for line in f:
                if line.strip().startswith("NET_RX:"):
                    out["net_rx"] = [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    try:
        with open("/proc/net/softnet_stat") as f:
            for line in f:
                v = [int(x, 16) for x in line.split()]
                out["softnet"].append({"processed": v[0], "dropped": v[1],
                                       "received_rps": v[9] if len(v) > 9 else 0})
    except OSError:
        pass
    return out


def counters_delta(a, b, seconds):
    """Per CPU, over the window: busy %, softirq % (of that CPU), NET_RX
    softirqs, packets processed, RPS-received, dropped."""
    per = {}
    for cpu, x in b["stat"].items():
        y = a["stat"].get(cpu)
        if not y:
            continue
        tot = x["total"] - y["total"]
        if tot <= 0:
            continue
        per[cpu] = {"busy_pct": 100.0 * (tot - (x["idle"] - y["idle"])) / tot,
                    "softirq_pct": 100.0 * (x["softirq"] - y["softirq"]) / tot}
    for cpu, (x, y) in enumerate(zip(b["net_rx"], a["net_rx"])):
        per.setdefault(cpu, {})["net_rx"] = x - y
    for cpu, (x, y) in enumerate(zip(b["softnet"], a["softnet"])):
        d = per.setdefault(cpu, {})
        for k in ("processed", "dropped", "received_rps"):
            d[k] = x[k] - y[k]
    return {str(c): v for c, v in sorted(per.items())}


def allowed_cpus(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _server_preexec():
    # The server dies with the runner, even if the runner is SIGKILLed
    # (rtspd's workers follow their master the same way).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def pinned_preexec(cpu, base=None):
    """A preexec_fn that pins the child to one CPU (as `taskset -c CPU`
    does; its children and threads inherit it), after `base`."""
    def fn():
        if base is not None:
            base()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return fn


LIVE = set()            # every Popen this runner started and has not reaped
LIVE_LOCK = threading.Lock()


def track(p):
    with LIVE_LOCK:
        LIVE.add(p)
    return p


def untrack(p):
    with LIVE_LOCK:
        LIVE.discard(p)


def kill_all():
    """Stop everything still running that this runner started: its own
    process groups (one per server and per client), TERM then KILL."""
    with LIVE_LOCK:
        procs = list(LIVE)
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)     # the group: workers too
        except OSError:
            pass
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            pass
        untrack(p)


def free_udp_base(span=64):
    """A base (multiple of 8) below the ephemeral range whose first `span`
    ports are free; rtspd skips busy blocks above it by itself."""
    return ports.free_udp_base(10000, 24000 + span, span)


class HarnessError(Exception):
    pass


class Server:
    """One server process (rtspd or gst_server.py) in a process group of its own."""

    def __init__(self, kind, settings, workdir, media_dir, media_file, streams=1, tls=False, net=None):
        self.kind = kind
        self.net = net          # a VethNet: serve its server side, pinned to its server CPU
        self.host = net.server_ip if net else "127.0.0.1"
        self.workdir = workdir
        self.tls = tls
        self.tls_port = free_tcp_port() if tls else None
        self.s = settings
        self.dir = tempfile.mkdtemp(prefix=kind + "-", dir=workdir)
        self.media_dir = media_dir
        self.media_file = media_file
        self.streams = streams
        self.port = free_tcp_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.pids_seen = set()
        self.stop_info = {}

    def urls(self, names=None):
        if self.kind == "rtspd":
            if names is None:
                names = [os.path.basename(self.media_file)]
            if self.tls:
                return ["rtsps://%s:%d/%s" % (self.host, self.tls_port, n) for n in names]
            return ["rtsp://%s:%d/%s" % (self.host, self.port, n) for n in names]
        if self.streams == 1:
            return ["rtsp://%s:%d/bench" % (self.host, self.port)]
        w = len(str(self.streams - 1))
        return ["rtsp://%s:%d/bench%0*d" % (self.host, self.port, w, i) for i in range(self.streams)]

    def start(self, timeout=20.0):
        env = dict(os.environ)
        if self.kind == "rtspd":
            cfg = os.path.join(self.dir, "rtspserver.cfg")
            nodes = [
                ("serverip", ""),
                ("rtsp_port", self.port),
                ("udp_base_port", free_udp_base()),
                ("loop_nums", -1),
                ("log_enable", 1),
                ("log_level", 3),
                ("media_dir", self.media_dir),
                ("file_mode", "live"),
                ("control_socket", os.path.join(self.dir, "ctl.sock")),
                ("session_timeout", 60),
                ("worker_idle_timeout", 3600),
                ("max_sessions", 100000),
            ]
            if self.tls:
                cert, key = make_cert(self.workdir)
                nodes += [("rtsps_enable", 1), ("rtsps_port", self.tls_port),
                          ("rtsps_cert", cert), ("rtsps_key", key)]
            with open(cfg, "w") as f:
                f.write('<?xml version="1.0" encoding="UTF-8"?>\n<config>\n')
                for k, v in nodes:
                    f.write("  <%s>%s</%s>\n" % (k, v, k))
                f.write("</config>\n")
            cmd = [self.s.rtspd, "-c", cfg]
            env.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16:malloc_context_size=20")
            env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        else:
            cmd = [PYTHON, GST_SERVER, str(self.port), self.media_file]
            if self.net:
                cmd += ["--address", self.host]
            if self.streams > 1:
                cmd += ["--streams", str(self.streams)]
        self.log = open(self.log_path, "ab")
        self.proc = track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                           stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                                           start_new_session=True,
                                           preexec_fn=pinned_preexec(self.net.server_cpu if self.net else None,
                                                                     _server_preexec)))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HarnessError("%s exited with %s before serving:\n%s"
                                   % (self.kind, self.proc.returncode, self.log_tail()))
            if self.ready():
                return self
            if time.monotonic() > deadline:
                raise HarnessError("%s did not serve on port %d within %.0f s:\n%s"
                                   % (self.kind, self.port, timeout, self.log_tail()))
            time.sleep(0.05)

    def ready(self):
        if self.kind == "gst" and "READY " not in self.log_text():
            return False
        if self.tls and not tls_front_pids(self.members()):
            return False
        try:
            for port in (self.port, self.tls_port) if self.tls else (self.port,):
                socket.create_connection((self.host, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def members(self):
        pids = tree(self.proc.pid) if self.alive() else []
        self.pids_seen.update(pids)
        return pids

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=2000):
        return self.log_text()[-n:]

    def stop(self):
        """SIGTERM; SIGKILL after 5 s. Records whether it had to be killed,
        what it left behind, and sanitizer reports in its log."""
        if self.proc is None:
            return self.stop_info
        self.members()
        killed = False
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(5)
            except subprocess.TimeoutExpired:
                killed = True
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                rc = self.proc.wait(5)
        # Children go with their master; give them a moment, then kill what
        # is left of this server's own process group.
        deadline = time.monotonic() + 3
        left = [p for p in self.pids_seen if p != self.proc.pid and alive(p)]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [p for p in left if alive(p)]
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        untrack(self.proc)
        self.log.close()
        text = self.log_text()
        m = SANITIZER_RE.search(text)
        self.stop_info = {
            "rc": rc,
            "killed": killed,
            "left": left,
            "sanitizer": text[max(0, m.start() - 200):m.start() + 3000] if m else None,
        }
        self.proc = None
        return self.stop_info


# ---------------------------------------------------------------- load client

def parse_result(out):
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def run_clients(settings, urls, viewers, seconds, ramp, transport, logdir, tag, extra_timeout=45, net=None):
    """One rtspbench per URL, all at once, each with `viewers` viewers
    joining at `ramp` per second; with net (a VethNet), inside its namespace
    and pinned to its client CPU. Returns (list of results or None, notes)."""
    procs = []
    for i, url in enumerate(urls):
        cmd = (net.client_prefix() if net else []) + [settings.rtspbench, "-n", str(viewers), "-t", "%g" % seconds] + \
            TRANSPORT_ARGS[transport] + ["-q"]
        if ramp > 0:
            cmd += ["-r", "%g" % ramp]
        cmd.append(url)
        err = open(os.path.join(logdir, "%s-client%d.log" % (tag, i)), "wb")
        p = track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=err, start_new_session=True,
                                   preexec_fn=pinned_preexec(net.client_cpu) if net else None))
        procs.append((p, err))
    ramp_s = (viewers - 1) / ramp if ramp > 0 else 0
    deadline = time.monotonic() + ramp_s + seconds + extra_timeout
    results, notes = [], []
    outs = [None] * len(procs)

    def reader(i, p):
        outs[i] = p.stdout.read().decode("utf-8", "replace")

    readers = [threading.Thread(target=reader, args=(i, p), daemon=True)
               for i, (p, _) in enumerate(procs)]
    for t in readers:
        t.start()
    for i, (p, err) in enumerate(procs):
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            notes.append("rtspbench on %s hung: killed after %.0f s" % (urls[i], ramp_s + seconds + extra_timeout))
            try:
                os.killpg(p.pid, signal.SIGTERM)     # it prints its report on SIGTERM
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(5)
        untrack(p)
        err.close()
    for t in readers:
        t.join(5)
    for i, (p, _) in enumerate(procs):
        r = parse_result(outs[i] or "")
        if r is None:
            notes.append("rtspbench on %s (exit %s) printed no result" % (urls[i], p.returncode))
        else:
            r["exit"] = p.returncode
        results.append(r)
    return results, notes


def merge_results(results, viewers):
    """Sum of several rtspbench results (multi-stream); percentiles: the
    median of the medians, the largest p99."""
    ok = [r for r in results if r]
    out = {"viewers": viewers * len(results)}
    for k in ("connected", "streaming", "failed", "lost", "viewers_with_loss", "packets", "bytes",
              "cpu_seconds", "keyframe_start_ok"):
        out[k] = sum(r.get(k, 0) or 0 for r in ok)
    # a client that printed nothing: all its viewers count as failed
    out["failed"] += viewers * (len(results) - len(ok))
    out["mbps"] = sum(r.get("mbps", 0) or 0 for r in ok)
    for key in ("ttfp_ms", "ttfk_ms"):
        meds = [r[key]["median"] for r in ok if r.get(key) and r[key].get("median") is not None]
        p99s = [r[key]["p99"] for r in ok if r.get(key) and r[key].get("p99") is not None]
        out[key] = {"median": statistics.median(meds) if meds else None,
                    "p99": max(p99s) if p99s else None}
    errs = []
    for r in ok:
        for e in r.get("errors", []):
            if e not in errs:
                errs.append(e)
    out["errors"] = errs
    return out


# ---------------------------------------------------------------- one measurement

class Sampler(threading.Thread):
    """Peak RSS of a server's tree (all of it, and without shared memory),
    every 0.25 s until stopped; and its PSS once, at `pss_after` seconds (the
    middle of the run, when every viewer is playing)."""

    def __init__(self, server, pss_after):
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0
        self.peak_private = 0
        self.pss = None
        self.pss_at = time.monotonic() + pss_after
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            if self.server.alive():
                self.server.members()
                rss, private = tree_rss_kib(self.server.pid())
                self.peak = max(self.peak, rss)
                self.peak_private = max(self.peak_private, private)
                if self.pss is None and time.monotonic() >= self.pss_at:
                    self.pss = tree_pss_kib(self.server.pid())
            self.halt.wait(0.25)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.peak, self.peak_private, self.pss


# ---------------------------------------------------------------- profile

def check_perf():
    """None when `perf record` works here, else why not."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed"
    try:
        p = subprocess.run([perf, "record", "-o", "/dev/null", "--", "true"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return "`perf record` did not finish a trial run within 15 s"
    except OSError as e:
        return "perf could not run: %s" % e
    if p.returncode != 0:
        why = p.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            with open("/proc/sys/kernel/perf_event_paranoid") as f:
                paranoid = " (kernel.perf_event_paranoid = %s)" % f.read().strip()
        except OSError:
            paranoid = ""
        return "`perf record` failed here%s: %s" % (paranoid, why[0] if why else "exit %d" % p.returncode)
    return None


def profile_window(ramp_s, seconds):
    """(start, length) of the recording, in seconds from the start of the
    load client: PROFILE_SECONDS from PROFILE_DELAY on, or from the end of
    the ramp if that is later; shortened (and started earlier) to end a
    second before the last viewer does."""
    total = ramp_s + seconds
    start, length = max(PROFILE_DELAY, ramp_s), PROFILE_SECONDS
    latest_end = total - 1.0
    if start + length > latest_end:
        start = max(min(start, latest_end - length), min(ramp_s, latest_end - 2.0), 0.5)
        length = max(1.0, min(PROFILE_SECONDS, latest_end - start))
    return start, length


class Profiler(threading.Thread):
    """`perf record -g` of a server's processes (rtspd: its workers, not the
    master) for `length` seconds, `delay` seconds after it is started. Never
    raises: what went wrong ends up in self.error."""

    def __init__(self, server, path, delay, length):
        super().__init__(daemon=True)
        self.server = server
        self.path = path
        self.delay = delay
        self.length = length
        self.halt = threading.Event()
        self.proc = None
        self.pids = []
        self.error = None
        self.started_at = None       # seconds after the Profiler started
        self.t0 = None

    def run(self):
        self.t0 = time.monotonic()
        try:
            if self.halt.wait(self.delay):
                self.error = "the run ended before the recording was to start"
                return
            if not self.server.alive():
                self.error = "the server was not running"
                return
            members = self.server.members()
            master = self.server.pid()
            self.pids = [p for p in members if p != master] or [master]
            cmd = ["perf", "record", "-F", str(PROFILE_HZ), "-g", "-o", self.path,
                   "-p", ",".join(str(p) for p in self.pids), "--", "sleep", "%g" % self.length]
            log_path = self.path + ".log"
            with open(log_path, "wb") as plog:
                self.started_at = time.monotonic() - self.t0
                self.proc = track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=plog,
                                                   stderr=subprocess.STDOUT, start_new_session=True,
                                                   preexec_fn=_server_preexec))
            try:
                self.proc.wait(self.length + 30)
            except subprocess.TimeoutExpired:
                self.error = "perf record did not end (stopped)"
                self.finish()
            if self.proc.returncode not in (0, None) and not os.path.exists(self.path):
                try:
                    with open(log_path, "rb") as f:
                        tail = f.read().decode("utf-8", "replace").strip().splitlines()
                except OSError:
                    tail = []
                self.error = "perf record exited with %s%s" % (
                    self.proc.returncode, (": " + tail[-1]) if tail else "")
        except Exception as e:          # a profile is never worth failing the bench for
            self.error = "perf record could not run: %s" % e
        finally:
            if self.proc is not None:
                untrack(self.proc)

    def finish(self):
        """Stop perf early (SIGINT: it writes its file and exits), then
        harder if it does not."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, sig)
            except OSError:
                pass
            try:
                p.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """After the load: cancel a recording not yet started, end one still
        running (the load ended early), wait for it."""
        self.halt.set()
        self.join(1)
        if self.is_alive():
            self.finish()
            self.join(30)


HEX_SYM_RE = re.compile(r"\[[.kgu]\]\s+0x[0-9a-f]+\s*$")
# "  12.34%  [k] sym" (self), "  56.78%  12.34%  [k] sym" (children),
# "  12.34%  123  [k] sym" (self with -n: the number of samples)
REPORT_LINE_RE = re.compile(r"^\s*([\d.]+)%\s+(?:([\d.]+)%\s+)?(?:(\d+)\s+)?\[(.)\]\s+(.*?)\s*$")


def perf_report(path, args, timeout=180):
    try:
        p = subprocess.run(["perf", "report", "-i", path, "--stdio"] + args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=timeout, check=False)
        return p.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""


def summarize_profile(path):
    """What the report shows of one recording: a dict with the event, the
    sample count, the top self and children lines, the user/kernel split
    and the share of samples under the loopback receive path."""
    out = {"file": path}
    self_all = perf_report(path, ["--no-children", "-n", "--sort", "sym", "-g", "none"])
    m = re.search(r"^# Samples: (\S+)\s+of event '([^']*)'", self_all, re.M)
    if not m:
        out["error"] = "perf report found no samples in %s" % os.path.basename(path)
        return out
    out["samples"], out["event"] = m.group(1), m.group(2)
    user = kernel = other = 0.0
    samples = 0
    top_self = []
    for line in self_all.splitlines():
        mm = REPORT_LINE_RE.match(line)
        if not mm:
            continue
        pct, where = float(mm.group(1)), mm.group(4)
        samples += int(mm.group(3) or 0)
        if where == ".":
            user += pct
        elif where == "k":
            kernel += pct
        else:
            other += pct
        if pct >= 1.5 and not HEX_SYM_RE.search(line) and len(top_self) < 15:
            top_self.append(line.rstrip())
    if samples:
        out["samples"] = str(samples)      # the header rounds to thousands ("12K")
    out["user_pct"], out["kernel_pct"], out["other_pct"] = user, kernel, other
    out["top_self"] = top_self
    children = perf_report(path, ["--children", "--sort", "sym", "-g", "none"])
    top_children, under = [], {}
    for line in children.splitlines():
        mm = REPORT_LINE_RE.match(line)
        if not mm or mm.group(2) is None:
            continue
        sym = mm.group(5)
        # the loopback receive path; __netif_receive_skb is often inlined
        # into __netif_receive_skb_one_core or _list_core
        if sym == "net_rx_action" or sym.startswith("__netif_receive_skb"):
            under.setdefault(sym, float(mm.group(1)))
        if not HEX_SYM_RE.search(line) and len(top_children) < 20:
            top_children.append(line.rstrip())
    out["top_children"] = top_children
    out["under"] = under
    return out


def measure(settings, kind, transport, streams, per_stream, workdir, media_dir, media_file,
            names=None, label=None, profile=False, net=None):
    """Start a fresh server, warm it up, measure idle, run the load, stop it.
    With net (a VethNet) the server is pinned to its server CPU and the
    clients run in its namespace. Returns a row (dict)."""
    n_total = streams * per_stream
    netname = "veth" if net else "lo"
    row = {"server": kind, "transport": transport, "streams": streams, "per_stream": per_stream,
           "n": n_total, "net": netname,
           "label": label or ("%s %s %d%s" % (kind, transport, n_total, " veth" if net else "")),
           "notes": [], "harness_errors": []}
    if net:
        row["net_info"] = {"server_cpu": net.server_cpu, "client_cpu": net.client_cpu,
                           "server_ip": net.server_ip, "client_ip": net.client_ip, "ns": net.ns}
    server = Server(kind, settings, workdir, media_dir, media_file, streams=streams,
                    tls=transport == "tls", net=net)
    tag = "%s-%s-%dx%d%s" % (kind, transport, streams, per_stream, "-veth" if net else "")
    profiler = None
    try:
        try:
            server.start()
        except HarnessError as e:
            row["harness_errors"].append(str(e))
            return row
        urls = server.urls(names)
        # Warm-up: one short viewer per stream, so the broadcast is running.
        warm, wnotes = run_clients(settings, urls, 1, settings.warm_seconds, 0, "tcp",
                                   server.dir, tag + "-warmup", extra_timeout=30, net=net)
        bad = [u for u, r in zip(urls, warm) if not r or r.get("streaming") != 1]
        if bad or wnotes:
            row["notes"].append("warm-up viewer failed on %d of %d streams" % (len(bad), len(urls)))
            row["notes"] += wnotes
        # Idle: the stream running, no viewer.
        time.sleep(settings.settle_seconds)
        front = tls_front_pids(server.members()) if server.tls else []
        c0, w0 = tree_cpu_ms(server.pid()), time.monotonic()
        f0 = pids_cpu_ms(front)
        rss_samples = []
        t_end = w0 + settings.idle_seconds
        while time.monotonic() < t_end:
            rss_samples.append(tree_rss_kib(server.pid()))
            time.sleep(0.25)
        c1, w1 = tree_cpu_ms(server.pid()), time.monotonic()
        row["idle_cpu_pct"] = 100.0 * (c1 - c0) / ((w1 - w0) * 1000.0)
        if front:
            row["tls_idle_cpu_pct"] = 100.0 * (pids_cpu_ms(front) - f0) / ((w1 - w0) * 1000.0)
        if not rss_samples:
            rss_samples.append(tree_rss_kib(server.pid()))
        row["rss_idle_kib"] = max(x[0] for x in rss_samples)
        row["private_idle_kib"] = max(x[1] for x in rss_samples)
        row["pss_idle_kib"] = tree_pss_kib(server.pid())
        row["processes"] = len(server.members())
        if not server.alive():
            row["harness_errors"].append("%s died before the load:\n%s" % (kind, server.log_tail()))
            return row

        # The load.
        ramp = settings.ramp / len(urls)
        ramp_s = (per_stream - 1) / ramp if ramp > 0 else 0
        sampler = Sampler(server, ramp_s + settings.seconds / 2.0)
        sampler.start()
        if profile:
            delay, length = profile_window(ramp_s, settings.seconds)
            profiler = Profiler(server, os.path.join(server.dir, "perf-%s.data" % tag), delay, length)
        k0 = kernel_counters()
        m0 = machine_ticks()
        cpu0, t0 = tree_cpu_ms(server.pid()), time.monotonic()
        tls0 = pids_cpu_ms(front)
        if profiler:
            profiler.start()
        results, cnotes = run_clients(settings, urls, per_stream, settings.seconds, ramp,
                                      transport, server.dir, tag, net=net)
        t1 = time.monotonic()
        server_alive = server.alive()
        cpu1 = tree_cpu_ms(server.pid()) if server_alive else None
        tls1 = pids_cpu_ms(front) if front and all(alive(p) for p in front) else None
        m1 = machine_ticks()
        k1 = kernel_counters()
        row["per_cpu"] = counters_delta(k0, k1, t1 - t0)
        if net and server_alive:
            # every process of the server still on its CPU (nothing re-pinned it)
            off = {}
            for p in server.members():
                a = allowed_cpus(p)
                if a is not None and a != str(net.server_cpu):
                    off[p] = a
            row["pinned"] = not off
            if off:
                row["notes"].append("not every server process stayed on CPU %d: %s" % (
                    net.server_cpu, ", ".join("%d: %s" % kv for kv in sorted(off.items()))))
        row["rss_peak_kib"], row["private_peak_kib"], row["pss_mid_kib"] = sampler.stop()
        if profiler:
            profiler.stop()
            prof = {"file": profiler.path, "pids": profiler.pids, "hz": PROFILE_HZ,
                    "start_s": profiler.started_at, "length_s": profiler.length,
                    "joined": min(per_stream, 1 + int((profiler.started_at or 0) * ramp))}
            if profiler.error:
                prof["error"] = profiler.error
            elif profiler.is_alive():
                prof["error"] = "perf record did not end"
            else:
                try:
                    prof.update(summarize_profile(profiler.path))
                except Exception as e:
                    prof["error"] = "perf report failed: %s" % e
            row["profile"] = prof
            if profiler.started_at is not None:
                row["notes"].append("profiled: perf sampled the rtspd workers at %d Hz with call graphs "
                                    "for %g s of this run, which adds a little to its server CPU and "
                                    "machine busy figures" % (PROFILE_HZ, profiler.length))
        row["notes"] += cnotes
        if any("hung" in x for x in cnotes):
            row["harness_errors"] += [x for x in cnotes if "hung" in x]
        if not server_alive:
            row["harness_errors"].append("%s died during the run (exit %s):\n%s"
                                         % (kind, server.proc.returncode, server.log_tail()))
        r = results[0] if len(results) == 1 else merge_results(results, per_stream)
        if r is None:
            r = {"viewers": n_total, "streaming": 0, "failed": n_total, "errors": []}
        row["result"] = r
        row["window_s"] = t1 - t0
        row["streaming"] = r.get("streaming", 0)
        row["failed"] = r.get("failed", n_total)
        row["lost"] = r.get("lost", 0)
        row["viewers_with_loss"] = r.get("viewers_with_loss", 0)
        row["ttfk_median"] = (r.get("ttfk_ms") or {}).get("median")
        row["ttfk_p99"] = (r.get("ttfk_ms") or {}).get("p99")
        row["ttfp_median"] = (r.get("ttfp_ms") or {}).get("median")
        row["mbps"] = r.get("mbps")
        row["errors"] = r.get("errors", [])
        row["client_cpu_s"] = r.get("cpu_seconds")
        busy = (m1[0] - m0[0]) - (m1[1] - m0[1])
        row["machine_busy_pct"] = 100.0 * busy / (m1[0] - m0[0]) if m1[0] > m0[0] else None
        if cpu1 is not None:
            row["cpu_ms"] = cpu1 - cpu0
            row["cpu_pct"] = 100.0 * row["cpu_ms"] / (row["window_s"] * 1000.0)
            vs = row["streaming"] * settings.seconds
            row["cpu_per_vs"] = row["cpu_ms"] / vs if vs > 0 else None
            # What the viewers added: the window's CPU less what the server
            # spends with the stream(s) running and no viewer.
            above = row["cpu_ms"] - row["idle_cpu_pct"] / 100.0 * row["window_s"] * 1000.0
            row["cpu_above_idle_per_vs"] = max(0.0, above) / vs if vs > 0 else None
            if tls1 is not None:
                # The TLS front process alone (it is in the tree total too).
                row["tls_cpu_ms"] = tls1 - tls0
                row["tls_cpu_pct"] = 100.0 * row["tls_cpu_ms"] / (row["window_s"] * 1000.0)
                row["tls_cpu_per_vs"] = row["tls_cpu_ms"] / vs if vs > 0 else None
        if front and tls1 is None:
            row["harness_errors"].append("rtspd's TLS front process %s ended during the run" % front)
        row["tls_handshake_median"] = (r.get("tls_handshake_ms") or {}).get("median")
        if row.get("private_peak_kib") and row.get("private_idle_kib") is not None:
            # Shared memory is left out: rtspd's ring fills up over its first
            # ring_size / bitrate seconds (about 30 s here) whatever the viewers.
            row["kib_per_viewer"] = (row["private_peak_kib"] - row["private_idle_kib"]) / n_total
        row["sustained"] = (row["streaming"] == n_total and row["failed"] == 0
                            and row["lost"] == 0 and not row["harness_errors"])
        if kind == "rtspd" and "UDP segmentation offload refused" in server.log_text():
            row["notes"].append("rtspd logged that the kernel refused UDP_SEGMENT: it sent packet by packet")
        if kind == "gst":
            over = server.log_text().count("overrun:")
            if over:
                row["notes"].append("gst_server.py logged %d source overruns (the media pipeline "
                                    "fell more than 2 s behind and frames were dropped before "
                                    "packetizing)" % over)
        return row
    finally:
        if profiler is not None and profiler.is_alive():
            profiler.stop()
        info = server.stop()
        if info:
            row["stop"] = {"rc": info.get("rc"), "killed": info.get("killed"), "left": info.get("left")}
            if info.get("killed"):
                (row["harness_errors"] if kind == "rtspd" else row["notes"]).append(
                    "%s did not exit within 5 s of SIGTERM (killed)" % kind)
            if info.get("left"):
                row["harness_errors"].append("%s left processes behind: %s" % (kind, info["left"]))
            if info.get("sanitizer"):
                row["harness_errors"].append("sanitizer report in the %s log:\n%s" % (kind, info["sanitizer"]))
        row["log_dir"] = server.dir


# ---------------------------------------------------------------- report

def fmt(v, spec="%.0f", none="-"):
    if v is None:
        return none
    return spec % v


def net_of(r):
    return r.get("net", "lo")


def set_label(transport, net, rows):
    """"UDP", or "UDP over veth+RPS" / "UDP over loopback" when the rows
    have both kinds."""
    label = tr_label(transport)
    if net == "veth":
        return label + " over veth+RPS"
    if any(net_of(r) == "veth" for r in rows):
        return label + " over loopback"
    return label


def ratio_for(rows, transport, n, net="lo"):
    a = [r for r in rows if r["server"] == "rtspd" and r["transport"] == transport and r["n"] == n
         and r.get("streams", 1) == 1 and net_of(r) == net]
    b = [r for r in rows if r["server"] == "gst" and r["transport"] == transport and r["n"] == n
         and r.get("streams", 1) == 1 and net_of(r) == net]
    if not a or not b:
        return None
    a, b = a[0], b[0]
    if a.get("sustained") and b.get("sustained") and a.get("cpu_per_vs") and b.get("cpu_per_vs"):
        return a["cpu_per_vs"] / b["cpu_per_vs"]
    return None


COLUMNS = [
    ("server", "server", lambda r: r["server"]),
    ("tr", "transport", lambda r: tr_label(r["transport"])),
    ("N", "viewers", lambda r: str(r["n"]) if r.get("streams", 1) == 1
     else "%dx%d" % (r["streams"], r["per_stream"])),
    ("streaming", "streaming", lambda r: fmt(r.get("streaming"), "%d")),
    ("failed", "failed", lambda r: fmt(r.get("failed"), "%d")),
    ("lost", "lost packets", lambda r: fmt(r.get("lost"), "%d")),
    ("w/loss", "viewers with loss", lambda r: fmt(r.get("viewers_with_loss"), "%d")),
    ("ttfk med", "ttfk median ms", lambda r: fmt(r.get("ttfk_median"))),
    ("ttfk p99", "ttfk p99 ms", lambda r: fmt(r.get("ttfk_p99"))),
    ("srv CPU%", "server CPU % of one core", lambda r: fmt(r.get("cpu_pct"))),
    ("ms/v-s", "server CPU ms per viewer-second", lambda r: fmt(r.get("cpu_per_vs"), "%.3f")),
    ("above idle", "the same, above idle", lambda r: fmt(r.get("cpu_above_idle_per_vs"), "%.3f")),
    ("RSS MiB", "server RSS MiB (peak)", lambda r: fmt(r["rss_peak_kib"] / 1024.0 if r.get("rss_peak_kib") else None, "%.1f")),
    ("PSS MiB", "server PSS MiB (mid-run)", lambda r: fmt(r["pss_mid_kib"] / 1024.0 if r.get("pss_mid_kib") else None, "%.1f")),
    ("KiB/v", "KiB per added viewer", lambda r: fmt(r.get("kib_per_viewer"), "%.1f")),
    ("client CPU%", "load client CPU %", lambda r: fmt(100.0 * r["client_cpu_s"] / r["window_s"]
                                                         if r.get("client_cpu_s") is not None and r.get("window_s") else None)),
    ("busy%", "machine busy % (2 cores = 100)" , lambda r: fmt(r.get("machine_busy_pct"))),
    ("net", "network", lambda r: NET_LABELS.get(net_of(r), net_of(r))),
]


def row_cells(r, rows):
    cells = [f(r) for _, _, f in COLUMNS]
    ratio = ratio_for(rows, r["transport"], r["n"], net_of(r)) \
        if r["server"] == "rtspd" and r.get("streams", 1) == 1 else None
    cells.append(fmt(ratio, "%.2f"))
    status = "ok" if r.get("sustained") else ("ERROR" if r.get("harness_errors") else "NOT SUSTAINED")
    cells.append(status)
    return cells


def text_table(rows):
    heads = [h for h, _, _ in COLUMNS] + ["rtspd/gst", "status"]
    data = [row_cells(r, rows) for r in rows]
    widths = [max(len(h), *(len(d[i]) for d in data)) if data else len(h) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    for d in data:
        lines.append("  ".join(c.rjust(w) for c, w in zip(d, widths)))
    return "\n".join(lines)


def md_table(rows):
    heads = [m for _, m, _ in COLUMNS] + ["CPU rtspd/gst", "result"]
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        out.append("| " + " | ".join(row_cells(r, rows)) + " |")
    return "\n".join(out)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    except OSError:
        pass
    return "unknown"


def cmd_output(cmd, timeout=20):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False).stdout.decode("utf-8", "replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def media_description(path):
    out = cmd_output(["ffprobe", "-v", "error", "-show_entries",
                      "stream=codec_type,codec_name,profile,width,height,r_frame_rate,bit_rate,"
                      "sample_rate,channels:format=duration,bit_rate", "-of", "json", path])
    try:
        info = json.loads(out)
    except ValueError:
        return os.path.basename(path)
    parts = []
    for s in info.get("streams", []):
        if s.get("codec_type") == "video":
            parts.append("%s %s %sx%s at %s fps, %.0f kbit/s" % (
                s.get("codec_name", "?").upper(), s.get("profile", ""), s.get("width"), s.get("height"),
                s.get("r_frame_rate", "?").replace("/1", ""), int(s.get("bit_rate", 0)) / 1000.0))
        elif s.get("codec_type") == "audio":
            parts.append("%s %s %s Hz %s ch, %.0f kbit/s" % (
                s.get("codec_name", "?").upper(), s.get("profile", ""), s.get("sample_rate"),
                s.get("channels"), int(s.get("bit_rate", 0)) / 1000.0))
    dur = float(info.get("format", {}).get("duration", 0))
    return "%s: %s; %.0f s, looped" % (os.path.basename(path), "; ".join(parts), dur)


def versions(settings):
    v = {}
    v["rtspd"] = cmd_output([settings.rtspd, "--version"]).splitlines()[:1]
    v["gst"] = cmd_output(["gst-launch-1.0", "--version"]).splitlines()[1:2]
    v["ffmpeg"] = [x.split(" Copyright")[0] for x in cmd_output(["ffmpeg", "-version"]).splitlines()[:1]]
    return {k: (x[0] if x else "unknown") for k, x in v.items()}


def findings(settings, rows, multi_rows):
    """Sentences about the numbers."""
    out = []
    all_rows = rows
    for tr, net in [(t, n) for t in TRANSPORTS for n in ("lo", "veth")]:
        rows = [r for r in all_rows if net_of(r) == net]
        label = set_label(tr, net, all_rows)
        counts = sorted({r["n"] for r in rows if r["transport"] == tr})
        if not counts:
            continue
        for kind in TRANSPORT_SERVERS.get(tr, SERVERS):
            mine = [r for r in rows if r["transport"] == tr and r["server"] == kind]
            ok = [r["n"] for r in mine if r.get("sustained")]
            bad = [r for r in mine if not r.get("sustained")]
            name = "rtspd" if kind == "rtspd" else "gst-rtsp-server"
            if not bad:
                out.append("Over %s, %s sustained every load tried, up to %d viewers (all streaming, no loss)."
                           % (label, name, max(counts)))
            else:
                first = min(bad, key=lambda r: r["n"])
                how = []
                if first.get("harness_errors"):
                    how.append("the run failed: " + first["harness_errors"][0].splitlines()[0])
                if first.get("failed"):
                    how.append("%d of %d viewers failed" % (first["failed"], first["n"]))
                if first.get("lost"):
                    how.append("%d packets lost by %d viewers" % (first["lost"], first.get("viewers_with_loss", 0)))
                if first.get("streaming") is not None and first.get("streaming") < first["n"] and not first.get("failed"):
                    how.append("%d of %d streaming" % (first["streaming"], first["n"]))
                if first.get("errors"):
                    how.append("first error: %s" % first["errors"][0])
                sustained_txt = ("it sustained %s" % ", ".join(str(x) for x in ok)) if ok else "it sustained none of the loads"
                out.append("Over %s, %s stopped sustaining the load at %d viewers (%s); %s."
                           % (label, name, first["n"], "; ".join(how) or "see the table", sustained_txt))
        if tr in TRANSPORT_SERVERS:
            continue
        ratios = [(n, ratio_for(rows, tr, n, net)) for n in counts]
        ratios = [(n, x) for n, x in ratios if x is not None]
        if ratios:
            out.append("Over %s, where both sustained the load, rtspd needed %s gst-rtsp-server's CPU per viewer-second (%s)."
                       % (label,
                          ("%.2f times" % ratios[0][1]) if len(ratios) == 1 else
                          "%.2f to %.2f times" % (min(x for _, x in ratios), max(x for _, x in ratios)),
                          ", ".join("N=%d: %.2f" % (n, x) for n, x in ratios)))
            ab = []
            for n, _ in ratios:
                a = [r for r in rows if r["server"] == "rtspd" and r["transport"] == tr and r["n"] == n]
                b = [r for r in rows if r["server"] == "gst" and r["transport"] == tr and r["n"] == n]
                if a and b and a[0].get("cpu_above_idle_per_vs") and b[0].get("cpu_above_idle_per_vs"):
                    ab.append((n, a[0]["cpu_above_idle_per_vs"] / b[0]["cpu_above_idle_per_vs"]))
            if ab:
                out.append("Counting only what the viewers added above each server's idle cost: %s."
                           % ", ".join("N=%d: %.2f" % (n, x) for n, x in ab))
        else:
            out.append("Over %s there is no load both servers sustained, so no CPU ratio." % label)
    rows = all_rows
    # what a client that takes bursts whole changes, per server
    for kind, net in [(k, n) for n in ("lo", "veth") for k in SERVERS]:
        pairs = []
        for n in sorted(set(settings.udp) & set(settings.udp_gro)):
            a = [r for r in rows if r["server"] == kind and r["transport"] == "udp" and r["n"] == n
                 and net_of(r) == net]
            b = [r for r in rows if r["server"] == kind and r["transport"] == "udp-gro" and r["n"] == n
                 and net_of(r) == net]
            if (a and b and a[0].get("sustained") and b[0].get("sustained")
                    and a[0].get("cpu_per_vs") and b[0].get("cpu_per_vs")):
                pairs.append((n, b[0]["cpu_per_vs"] / a[0]["cpu_per_vs"]))
        if pairs:
            out.append("%s's CPU per viewer-second over %s, as a fraction of the same over %s "
                       "(both sustained): %s." % ("rtspd" if kind == "rtspd" else "gst-rtsp-server",
                                                  set_label("udp-gro", net, rows), set_label("udp", net, rows),
                                                  ", ".join("N=%d: %.2f" % p for p in pairs)))
    # what moving the client behind veth+RPS changed, per server
    for kind, tr in [(k, t) for t in TRANSPORTS for k in SERVERS]:
        pairs = []
        for n in sorted({r["n"] for r in rows if r["transport"] == tr}):
            a = [r for r in rows if r["server"] == kind and r["transport"] == tr and r["n"] == n
                 and net_of(r) == "lo" and r.get("streams", 1) == 1]
            b = [r for r in rows if r["server"] == kind and r["transport"] == tr and r["n"] == n
                 and net_of(r) == "veth" and r.get("streams", 1) == 1]
            if a and b and a[0].get("cpu_per_vs") and b[0].get("cpu_per_vs"):
                pairs.append("N=%d: %.2f%s" % (n, b[0]["cpu_per_vs"] / a[0]["cpu_per_vs"],
                                               "" if a[0].get("sustained") and b[0].get("sustained")
                                               else " (not both sustained)"))
        if pairs:
            out.append("%s's CPU per viewer-second over %s with the client behind veth+RPS, as a fraction "
                       "of the same over loopback: %s." % ("rtspd" if kind == "rtspd" else "gst-rtsp-server",
                                                            tr_label(tr), ", ".join(pairs)))
    # the TLS relay: TCP in TLS against plain TCP, rtspd, same N
    tls_parts = []
    for r in [x for x in rows if x["transport"] == "tls" and x["server"] == "rtspd"]:
        if r.get("cpu_per_vs") is None:
            continue
        txt = "N=%d: %.3f ms/viewer-second, %s of it in the TLS front process" % (
            r["n"], r["cpu_per_vs"], fmt(r.get("tls_cpu_per_vs"), "%.3f"))
        plain = [x for x in rows if x["transport"] == "tcp" and x["server"] == "rtspd" and x["n"] == r["n"]]
        if plain and plain[0].get("cpu_per_vs"):
            txt += " (plain TCP: %.3f; %.2f times)" % (plain[0]["cpu_per_vs"], r["cpu_per_vs"] / plain[0]["cpu_per_vs"])
        if not r.get("sustained"):
            txt += " (NOT sustained)"
        tls_parts.append(txt)
    if tls_parts:
        out.append("rtspd over TCP in TLS (rtsps://; the TLS front process decrypts the viewers' "
                   "requests and encrypts every interleaved packet to them): " + "; ".join(tls_parts) + ".")
    # memory
    for kind in SERVERS:
        kv = [r["kib_per_viewer"] for r in rows if r["server"] == kind and r.get("kib_per_viewer") is not None
              and r["n"] >= 100 and r.get("sustained")]
        if kv:
            out.append("%s's memory grew by %.0f to %.0f KiB per added viewer (sustained loads of 100 viewers or more)."
                       % ("rtspd" if kind == "rtspd" else "gst-rtsp-server", min(kv), max(kv)))
    # time to first key frame
    for kind in SERVERS:
        t = [r["ttfk_median"] for r in rows if r["server"] == kind and r.get("ttfk_median") is not None]
        if t:
            out.append("Median time from connect to the first key frame, %s: %.0f to %.0f ms."
                       % ("rtspd" if kind == "rtspd" else "gst-rtsp-server", min(t), max(t)))
    # saturation
    sat = [r for r in rows if (r.get("machine_busy_pct") or 0) >= 90]
    if sat:
        out.append("The machine (server and load client together) was saturated (>= 90%% busy) in: %s; "
                   "there the load client competes with the server for the CPU, and a failure may be the client's."
                   % ", ".join("%s %s %d%s" % (r["server"], tr_label(r["transport"]), r["n"],
                                               " (veth)" if net_of(r) == "veth" else "") for r in sat))
    # multi-stream
    if multi_rows:
        for kind in SERVERS:
            m = [r for r in multi_rows if r["server"] == kind and r.get("streams", 1) > 1]
            s1 = [r for r in multi_rows if r["server"] == kind and r.get("streams", 1) == 1]
            if not m:
                continue
            m = m[0]
            name = "rtspd" if kind == "rtspd" else "gst-rtsp-server"
            txt = "%s, %d streams x %d viewers: %s ms CPU per viewer-second%s" % (
                name, m["streams"], m["per_stream"], fmt(m.get("cpu_per_vs"), "%.3f"),
                "" if m.get("sustained") else " (NOT sustained: %s streaming, %s failed, %s lost)" % (
                    fmt(m.get("streaming"), "%d"), fmt(m.get("failed"), "%d"), fmt(m.get("lost"), "%d")))
            if s1:
                s1 = s1[0]
                txt += "; %d viewers of one stream: %s%s" % (
                    s1["n"], fmt(s1.get("cpu_per_vs"), "%.3f"),
                    "" if s1.get("sustained") else " (NOT sustained)")
                if m.get("cpu_per_vs") and s1.get("cpu_per_vs"):
                    txt += "; many streams cost %.2f times as much per viewer-second" % (m["cpu_per_vs"] / s1["cpu_per_vs"])
                if m.get("cpu_above_idle_per_vs") and s1.get("cpu_above_idle_per_vs"):
                    txt += (". With no viewer the %d streams took %.0f%% of a core (one stream: %.1f%%); "
                            "above that idle cost, a viewer of one of many streams cost %.3f ms per second "
                            "against %.3f for one stream (%.2f times)" % (
                                m["streams"], m["idle_cpu_pct"], s1["idle_cpu_pct"],
                                m["cpu_above_idle_per_vs"], s1["cpu_above_idle_per_vs"],
                                m["cpu_above_idle_per_vs"] / s1["cpu_above_idle_per_vs"]))
            if m.get("pss_mid_kib"):
                txt += "; memory (PSS) with %d streams: %.0f MiB" % (m["streams"], m["pss_mid_kib"] / 1024.0)
                if s1 and s1.get("pss_mid_kib"):
                    txt += " against %.0f MiB for one" % (s1["pss_mid_kib"] / 1024.0)
            out.append(txt + ".")
            b = multi_bound(m, s1 or None)
            if b:
                out.append("%s against the many-streams bound: %s" % (name, b))
    return out


def multi_bound(m, s1):
    """The many-streams bound: S streams x V viewers should cost no more
    than S*V viewers of one stream + S x the per-stream cost, the per-stream
    cost being one stream's CPU with no viewer (the S-stream idle rate / S)
    over the same window length. A sentence, or None without the numbers."""
    if not s1 or m.get("cpu_ms") is None or not m.get("window_s") or m.get("idle_cpu_pct") is None \
            or s1.get("cpu_ms") is None:
        return None
    streams = m["streams"]
    per_stream_ms = m["idle_cpu_pct"] / 100.0 * m["window_s"] * 1000.0 / streams
    bound = s1["cpu_ms"] + streams * per_stream_ms
    measured = m["cpu_ms"]
    if measured <= bound:
        verdict = "within the bound (%.0f%% of it)" % (100.0 * measured / bound) if bound > 0 else "within the bound"
    else:
        verdict = ("above the bound by %.0f%%" % (100.0 * (measured - bound) / bound)) if bound > 0 \
            else "above the bound"
    caveat = "" if (m.get("sustained") and s1.get("sustained")) else \
        " (not every run of the two was sustained, so the comparison is rough)"
    return ("%d streams x %d viewers should take at most %d viewers of one stream + %d x the "
            "per-stream cost = %.0f ms + %d x %.1f ms = %.0f ms of server CPU, where the per-stream cost is one stream's "
            "CPU with no viewer: the %d-stream idle rate (%.1f%% of a core) / %d = %.2f%% of a core, over "
            "the %.1f s window of the %dx%d run (the one-stream run's %.0f ms are over its own %.1f s "
            "window). Measured in the %dx%d run: %.0f ms, %s%s." % (
                streams, m["per_stream"], s1["n"], streams,
                s1["cpu_ms"], streams, per_stream_ms, bound,
                streams, m["idle_cpu_pct"], streams, m["idle_cpu_pct"] / streams,
                m["window_s"], streams, m["per_stream"], s1["cpu_ms"], s1["window_s"],
                streams, m["per_stream"], measured, verdict, caveat))


def receive_section(settings, rows):
    """The "Where the receive work ran" section, as lines: per run, each
    CPU's busy and softirq shares, NET_RX softirqs and skbs received, the
    RPS wake-ups and the backlog drops, over the measuring window."""
    have = [r for r in rows if r.get("per_cpu") and r.get("streams", 1) == 1]
    if not have:
        return []
    cpus = sorted({int(c) for r in have for c in r["per_cpu"]})[:4]
    lines = ["## Where the receive work ran", ""]
    txt = ("Per CPU, over each run's measuring window, from /proc/stat, /proc/softirqs and "
           "/proc/net/softnet_stat (the whole machine: the server, the client and anything else): "
           "busy %% and softirq %% of that CPU's time (softirq: the ticks that landed in softirq context, "
           "whichever process it ran on behalf of; this kernel charges those ticks to the process that "
           "was running as well, so on loopback they are part of the server's CPU figure), NET_RX "
           "softirqs per second, the skbs that CPU's network stack took in per second (a segmented burst "
           "counts once), how many times RPS had to wake a CPU with an inter-processor interrupt, and "
           "skbs dropped because a backlog queue was full (net.core.netdev_max_backlog = %s).") % read_sysctl("net/core/netdev_max_backlog")
    if settings.veth:
        txt += (" In the veth+RPS runs the server is pinned to CPU %d and the client, with the receive "
                "processing of what the server sends, to CPU %d; the loopback runs are not pinned."
                % (settings.veth.server_cpu, settings.veth.client_cpu))
    lines += [txt, ""]
    heads = ["server", "transport", "viewers", "network", "server CPU % of one core", "ms per viewer-second"]
    for c in cpus:
        heads += ["CPU%d busy %%" % c, "CPU%d softirq %%" % c, "CPU%d NET_RX/s" % c, "CPU%d skbs received/s" % c]
    heads += ["RPS wake-ups (IPIs)", "backlog drops", "result"]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "---|" * len(heads))
    for r in have:
        pc = r["per_cpu"]
        w = r.get("window_s") or 0
        cells = [r["server"], tr_label(r["transport"]), str(r["n"]), NET_LABELS.get(net_of(r), net_of(r)),
                 fmt(r.get("cpu_pct")), fmt(r.get("cpu_per_vs"), "%.3f")]
        for c in cpus:
            d = pc.get(str(c), {})
            cells += [fmt(d.get("busy_pct")), fmt(d.get("softirq_pct")),
                      fmt(d["net_rx"] / w if "net_rx" in d and w else None),
                      fmt(d["processed"] / w if "processed" in d and w else None)]
        cells += [str(sum(d.get("received_rps", 0) for d in pc.values())),
                  str(sum(d.get("dropped", 0) for d in pc.values())),
                  "ok" if r.get("sustained") else "NOT SUSTAINED"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def read_sysctl(name):
    try:
        with open("/proc/sys/" + name) as f:
            return f.read().strip()
    except OSError:
        return "?"


def profile_section(settings, rows):
    """The "Hot-path profile" section, as lines."""
    lines = ["## Hot-path profile", ""]
    profiled = [r for r in rows if r.get("profile")]
    if not profiled:
        if settings.perf_status:
            why = settings.perf_status
        elif not (settings.tcp or settings.udp):
            why = "no TCP or UDP run to profile"
        else:
            why = "no run was profiled"
        lines += ["Not recorded: %s." % why, ""]
        return lines
    lines.append(
        "rtspd's worker process(es) (not the master) sampled with `perf record -F %d -g -p PIDS` during "
        "the rtspd run with the most viewers over TCP and over UDP (plain UDP, the client that receives "
        "datagram by datagram), for up to %g s from %g s after rtspbench started, or from the end of "
        "the ramp when that is later (shorter, and earlier, when the run is too short for that; the "
        "window of each run is given below). perf's own sampling adds a little to these two runs' CPU figures. "
        "Listed: the symbols with the most samples by self time (where the sample landed; `[k]` kernel, "
        "`[.]` user space; unresolved addresses left out), then by children time (samples with the "
        "symbol anywhere on the call chain). User call chains may be cut short where frame pointers "
        "are missing; kernel ones are complete. On loopback the receiving side's network stack runs as "
        "a softirq in the sending process's context: the samples under `net_rx_action` and "
        "`__netif_receive_skb` (or `__netif_receive_skb_one_core`, into which it is often inlined) "
        "are that work, which on a real network the viewers' machines do. With the client behind "
        "veth+RPS that work is steered to the client's CPU and should all but vanish from these "
        "profiles; what is left is the receive of what the client sends."
        % (PROFILE_HZ, PROFILE_SECONDS, PROFILE_DELAY))
    lines.append("")
    for r in profiled:
        p = r["profile"]
        lines.append("### rtspd %s, %d viewers" % (set_label(r["transport"], net_of(r), rows), r["n"]))
        lines.append("")
        if p.get("start_s") is not None:
            lines.append("Recorded from %.1f s to %.1f s after rtspbench started (%d of %d viewers had "
                         "joined at the start), pid%s %s; perf file `%s` in the work directory%s." % (
                             p["start_s"], p["start_s"] + p["length_s"], p.get("joined", 0), r["n"],
                             "" if len(p.get("pids", [])) == 1 else "s",
                             ",".join(str(x) for x in p.get("pids", [])), os.path.basename(p["file"]),
                             "; %s samples of the `%s` event" % (p["samples"], p["event"]) if p.get("samples") else ""))
            lines.append("")
        if p.get("error"):
            lines += ["No profile: %s." % p["error"], ""]
            continue
        lines.append("Self time, symbols with at least 1.5% of the samples (share, samples):")
        lines.append("")
        lines.append("```")
        lines += p.get("top_self") or ["(none above 1.5%)"]
        lines.append("```")
        lines.append("")
        lines.append("Children time (self and everything called from it), top entries:")
        lines.append("")
        lines.append("```")
        lines += p.get("top_children") or ["(none)"]
        lines.append("```")
        lines.append("")
        lines.append("- User space: %.1f%% of the samples; kernel: %.1f%%%s." % (
            p["user_pct"], p["kernel_pct"],
            "; other: %.1f%%" % p["other_pct"] if p.get("other_pct", 0) >= 0.05 else ""))
        under = p.get("under", {})
        # net_rx_action, then the outermost __netif_receive_skb* entry
        syms = [x for x in under if x == "net_rx_action"]
        syms += sorted((x for x in under if x != "net_rx_action"), key=lambda x: -under[x])[:1]
        parts = ["`%s` %.1f%%" % (sym, under[sym]) for sym in syms]
        if parts:
            lines.append("- Under the receive path run in rtspd's context (%s): %s of the samples."
                         % ("what the client sends: requests, RTCP, ACKs; RPS steers the rest to the client's CPU"
                            if net_of(r) == "veth" else "loopback: everything the viewers receive",
                            ", ".join(parts)))
        else:
            lines.append("- No samples under `net_rx_action` or `__netif_receive_skb`.")
        lines.append("")
    return lines


def write_report(settings, rows, multi_rows, started, finished, media_file, path):
    vers = versions(settings)
    git = cmd_output(["git", "-C", REPO, "describe", "--always", "--dirty"]) or "unknown"
    lines = []
    lines.append("# Performance: rtspd and gst-rtsp-server, fan-out on one machine")
    lines.append("")
    lines.append("<!-- Generated by `make bench` (tests/bench/run.sh); it will be overwritten. -->")
    lines.append("_This file is generated by `make bench` and will be overwritten; "
                 "edit tests/bench/bench.py instead._")
    lines.append("")
    if settings.smoke:
        lines.append("**Smoke run (BENCH_SMOKE=1): tiny loads, possibly a sanitizer build; "
                     "these numbers mean nothing.**")
        lines.append("")
    lines.append("## Set-up")
    lines.append("")
    lines.append("- Date: %s to %s (UTC)" % (started.strftime("%Y-%m-%d %H:%M"), finished.strftime("%H:%M")))
    lines.append("- Commit: `%s`" % git)
    lines.append("- Machine: %s, %d cores, %s RAM, Linux %s" % (cpu_model(), os.cpu_count() or 0,
                                                                 mem_total(), platform.release()))
    lines.append("- rtspd: `%s` (%s)" % (os.path.relpath(settings.rtspd, REPO), vers["rtspd"]))
    lines.append("- gst-rtsp-server: %s, through tests/bench/gst_server.py" % vers["gst"])
    lines.append("- Load client: `%s` on the same machine; %s" % (os.path.relpath(settings.rtspbench, REPO), vers["ffmpeg"]))
    nets = []
    for name, lst in (("TCP", settings.tcp_net), ("UDP and UDP+GRO", settings.udp_net)):
        nets.append("%s over %s" % (name, " and ".join(NET_LABELS[x] for x in lst)))
    lines.append("- Network paths: %s%s" % (
        "; ".join(nets) + "; TCP in TLS and the many-streams rounds over loopback",
        (". veth+RPS: " + settings.veth.describe()) if settings.veth else ""))
    if settings.veth_status:
        lines.append("- **veth+RPS was wanted but could not be set up here, so those rows ran over loopback "
                     "instead: %s**" % settings.veth_status)
    lines.append("- Media: %s (tests/bench/make-bench-media.sh: libx264 CBR 2000k, maxrate 2000k, "
                 "bufsize 1000k, key frame every second, no B-frames; AAC-LC 128k)" % media_description(media_file))
    lines.append("- Each viewer plays %g s; viewers join at %g per second; %s"
                 % (settings.seconds, settings.ramp,
                    "smoke mode" if settings.smoke else "TCP: %s, UDP: %s, UDP+GRO: %s%s" % (
                        " ".join(map(str, settings.tcp)) or "none", " ".join(map(str, settings.udp)) or "none",
                        " ".join(map(str, settings.udp_gro)) or "none",
                        (", TCP in TLS (rtspd only): %s" % " ".join(map(str, settings.tls))) if settings.tls else "")))
    lines.append("")
    lines.append("## Method")
    lines.append("")
    lines.append(
        "Both servers serve the same file as one looping live broadcast that every viewer shares, "
        "passing the H.264 and AAC frames through (no transcoding): rtspd with `<file_mode>live</file_mode>` "
        "(one worker process per stream), gst-rtsp-server with a shared media factory "
        "(`appsrc ! h264parse ! rtph264pay`, `appsrc ! aacparse ! rtpmp4gpay`) fed by one looping "
        "`filesrc ! qtdemux` pipeline (see tests/bench/gst_server.py; its listen backlog is set to "
        "4096 as rtspd's, everything else is gst's default).")
    lines.append("")
    lines.append(
        "For every server, transport and viewer count, a fresh server is started (own ports and "
        "config; rtspd at log level 3). One warm-up viewer plays for %g s so that the stream is running, "
        "then the server is left idle for %g s: its CPU and RSS there are the idle figures. Then "
        "`rtspbench -n N -t %g -r %g` runs (with `-T tcp`, `-T udp` or `-T udp --gro`); its viewers "
        "connect, DESCRIBE, SETUP, PLAY, play for %g s each, TEARDOWN. The two servers are measured "
        "alternately at each step. rtspbench runs as SCHED_BATCH, so that its wake-ups do not preempt "
        "the server in the middle of a burst of packets; both servers get the same client." % (
            settings.warm_seconds, settings.idle_seconds, settings.seconds, settings.ramp, settings.seconds))
    lines.append("")
    lines.append(
        "There are two UDP sets because on loopback the receiving side's work lands on the sender. "
        "rtspd sends each video frame to a UDP viewer as one segmented burst (UDP_SEGMENT, \"GSO\"); "
        "gst-rtsp-server sends one datagram per packet.")
    lines.append("")
    lines.append(
        "- **UDP**: a client that receives datagram by datagram, as ffmpeg or VLC do. On loopback the "
        "kernel cuts rtspd's segmented bursts back into datagrams on rtspd's CPU, and the receive path "
        "of every datagram, the client's wake-up included, is charged to the sender. On a real network "
        "that work is done by the viewers' machines.")
    lines.append(
        "- **UDP+GRO**: `rtspbench --gro`, whose RTP sockets set UDP_GRO: the kernel hands a burst the "
        "server sent segmented to the client whole, as on a host whose NIC coalesces received datagrams "
        "(GRO). This is closer to what the server pays on a real network, where the receive side runs "
        "on other machines. For gst-rtsp-server, which sends single datagrams, it changes little; it is "
        "measured the same way all the same.")
    lines.append("")
    lines.append(
        "Where the client's receive work lands. On loopback the kernel runs the receiving side's network "
        "stack (softirq: GSO segmentation, UDP queueing, waking the client) right away in the context of "
        "the process that sent the packet, and this kernel (tick-based CPU accounting, no "
        "IRQ_TIME_ACCOUNTING) charges it to that process: to the server. That is the same for both "
        "servers but it is work a real deployment does on the viewers' machines. Rows marked "
        "**veth+RPS** move it: the load client runs in a network namespace of its own, joined to the "
        "server by a veth pair; the server's whole process tree is pinned to one CPU "
        "(sched_setaffinity, as `taskset -c` does; rtspd's master and workers, every gst thread), the "
        "client to the other, and RPS (`/sys/class/net/VETH/queues/rx-*/rps_cpus`) on the client-side "
        "veth steers the receive processing of what the server sends to the client's CPU (on the "
        "server-side veth, what the client sends to the server's CPU, as a server's NIC would). The "
        "server still pays its whole send path, veth's transmit included. The client is still on the "
        "same machine: it shares the caches and the memory bus, and the server has one core and the "
        "client (with the receive work) the other. The \"Where the receive work ran\" section shows, per "
        "run and per CPU, where the softirq time and NET_RX work went. RPS is set on the namespace's "
        "veth only, never on the machine's loopback device, which other programs share. What veth+RPS "
        "adds in turn: the sending CPU has to interrupt the client's CPU (an IPI, under "
        "`net_rps_send_ipi`) whenever that CPU's backlog had run empty, and in a virtual machine every "
        "IPI is a VM exit charged to the sender; a server that sends segmented bursts pays few, one that "
        "sends datagram by datagram pays about one per few datagrams. And the client CPU's backlog holds "
        "at most net.core.netdev_max_backlog skbs: a segmented burst is one skb there but many datagrams "
        "of receive work, so large fan-out bursts can overflow it (backlog drops; lost packets for the "
        "viewers).")
    lines.append("")
    lines.append("- **Server CPU**: utime + stime of the server's whole process tree (rtspd: master and "
                 "workers; gst: one process) from /proc/PID/stat, read just before rtspbench starts and "
                 "just after it exits, so it includes connection set-up and teardown. A process born in "
                 "the window counts from zero; one that exited counts through its parent's cutime+cstime.")
    lines.append("- **ms/viewer-second** = server CPU ms / (viewers streaming x %g s). **Above idle**: the "
                 "same after taking away what the server spent in that window with the stream(s) running "
                 "and no viewer (the idle rate measured before the run): the cost the viewers added. "
                 "gst's idle includes gst_server.py's Python feeder, which hands every demuxed frame "
                 "to the media pipeline (about 1%% of a core per stream)." % settings.seconds)
    lines.append("- **RSS**: sum of VmRSS over the tree, sampled every 0.25 s during the run; the peak. "
                 "Shared pages (libraries, rtspd's shared-memory ring) count once per process that maps "
                 "them. **PSS**: sum of Pss (/proc/PID/smaps_rollup) over the tree, read once in the "
                 "middle of the run: shared pages divided among the processes that map them, i.e. the "
                 "memory the server really uses. **KiB per added viewer** = (peak - idle) / N of "
                 "VmRSS - RssShmem: shared memory is left out because rtspd's 8 MiB ring of a live "
                 "stream fills up during its first ~30 s whatever the number of viewers. Kernel socket "
                 "buffers are in none of these.")
    lines.append("- **streaming / failed / lost / ttfk**: from rtspbench: a viewer is streaming when it "
                 "played its whole time with every track flowing; lost = RTP sequence gaps; ttfk = time "
                 "from connect() to the first packet of a key frame. rtspd starts viewers at the latest key "
                 "frame; gst-rtsp-server starts them wherever the broadcast is, so they wait for the next one.")
    lines.append("- **Sustained** = every viewer streaming, none failed, no packet lost.")
    if any(r["transport"] == "tls" for r in rows):
        lines.append("- **TCP in TLS** (rtspd only): `rtspbench -T tcp` with an rtsps:// URL to rtspd's "
                     "RTSPS port (a self-signed P-256 certificate; the client does not verify it). The "
                     "server CPU includes rtspd's TLS front process (`rtspd --tls`), which terminates every "
                     "viewer's TLS connection and relays it through a socketpair whose plain end the "
                     "worker serves like any connection; what that process alone took is in the findings and in the JSON "
                     "(`tls_cpu_ms`). The ttfk figures include the TLS handshake.")
    lines.append("- **load client CPU %** and **machine busy %** (all cores, /proc/stat; 100 = both "
                 "cores busy) show how much of the machine the client took: above about 90% busy the "
                 "server and the client compete for the CPU.")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append(md_table(rows))
    lines.append("")
    lines.append("CPU rtspd/gst: rtspd's ms per viewer-second divided by gst-rtsp-server's, where both "
                 "sustained that load (below 1: rtspd uses less).")
    lines.append("")
    if multi_rows:
        lines.append("### Many streams against one")
        lines.append("")
        m = [r for r in multi_rows if r.get("streams", 1) > 1]
        if m:
            lines.append("%d live streams (the bench file under %d names) x %d viewers each, against %s "
                         "viewers of one stream, over TCP, same ramp (spread over the streams)."
                         % (m[0]["streams"], m[0]["streams"], m[0]["per_stream"],
                            " / ".join(sorted({str(r["n"]) for r in multi_rows if r.get("streams", 1) == 1})) or "no"))
            lines.append("")
        lines.append(md_table(multi_rows))
        lines.append("")
        idle = [r for r in multi_rows if r.get("idle_cpu_pct") is not None]
        if idle:
            lines.append("Idle CPU with the streams running and no viewer: " + "; ".join(
                "%s %s: %.1f%% of one core (%s process%s)" % (
                    r["server"], ("%d streams" % r["streams"]) if r["streams"] > 1 else "1 stream",
                    r["idle_cpu_pct"], r.get("processes", "?"), "" if r.get("processes") == 1 else "es")
                for r in idle) + ". For gst this includes the Python feeder of each stream.")
            lines.append("")
    lines.append("## What the numbers say")
    lines.append("")
    for s in findings(settings, rows, multi_rows):
        lines.append("- " + s)
    lines.append("")
    lines += receive_section(settings, rows)
    lines += profile_section(settings, rows)
    details = []
    for r in rows + (multi_rows or []):
        bits = []
        if r.get("errors"):
            bits.append("rtspbench errors: " + "; ".join(r["errors"][:4]))
        bits += [x.splitlines()[0] for x in r.get("notes", [])]
        bits += [x.splitlines()[0] for x in r.get("harness_errors", [])]
        if bits:
            details.append("- %s: %s" % (r["label"], " | ".join(bits)))
    if details:
        lines.append("## Failures and notes, per run")
        lines.append("")
        lines += details
        lines.append("")
    lines.append("Idle (stream running, no viewer), per run: " + "; ".join(
        "%s: %s%% CPU, RSS %s MiB, PSS %s MiB" % (
            r["label"], fmt(r.get("idle_cpu_pct"), "%.1f"),
            fmt(r["rss_idle_kib"] / 1024.0 if r.get("rss_idle_kib") else None, "%.1f"),
            fmt(r["pss_idle_kib"] / 1024.0 if r.get("pss_idle_kib") else None, "%.1f"))
        for r in rows + (multi_rows or [])) + ".")
    lines.append("")
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


# ---------------------------------------------------------------- main

class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    # Once: the clean-up that follows (bounded: TERM, 5 s, KILL) must not
    # be cut short by a second Ctrl-C.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted("signal %d" % signum)


def check_tools(settings):
    problems = []
    for name, path in (("RTSPD_BIN", settings.rtspd), ("RTSPBENCH_BIN", settings.rtspbench)):
        if not os.access(path, os.X_OK):
            problems.append("%s=%s is not an executable" % (name, path))
    if not settings.media or not os.path.isfile(settings.media):
        problems.append("BENCH_MEDIA=%r is not a file (run through tests/bench/run.sh)" % settings.media)
    if shutil.which("ffprobe") is None:
        problems.append("ffprobe is not installed")
    return problems


def setup_veth(settings):
    """Makes the namespace and veth pair when a row wants them; when that
    cannot be done here, says why and runs those rows over loopback."""
    if "veth" not in settings.udp_net + settings.tcp_net:
        return
    if not (settings.udp + settings.udp_gro if "veth" in settings.udp_net else []) and \
            not (settings.tcp if "veth" in settings.tcp_net else []):
        return
    why = None
    if settings.cpus is None:
        why = "it needs two CPUs (the server on one, the client and its receive work on the other)"
    elif os.geteuid() != 0:
        why = "it needs root (ip netns add, veth, rps_cpus)"
    elif shutil.which("ip") is None:
        why = "the ip command (iproute2) is not installed"
    if why is None:
        net = VethNet(*settings.cpus)
        try:
            settings.veth = net.setup()
        except (NetError, OSError) as e:
            net.teardown()
            why = "could not set up the namespace and veth pair: %s" % e
    if why:
        settings.veth_status = why
        settings.udp_net = ["lo"]
        settings.tcp_net = ["lo"]
        log("bench: SKIP veth+RPS: %s; those rows run over loopback instead" % why)
    else:
        log("bench: veth+RPS: %s" % settings.veth.describe())


def make_multi_dir(workdir, media_file, streams):
    """The bench file under `streams` names, as relative symlinks inside one
    directory (rtspd refuses links that leave its media_dir)."""
    d = os.path.join(workdir, "multi-media")
    os.makedirs(d, exist_ok=True)
    base = os.path.basename(media_file)
    shutil.copyfile(media_file, os.path.join(d, base))
    names = []
    w = len(str(streams - 1))
    for i in range(streams):
        n = "s%0*d.mp4" % (w, i)
        os.symlink(base, os.path.join(d, n))
        names.append(n)
    return d, names


def main():
    settings = Settings()
    problems = check_tools(settings)
    if problems:
        for p in problems:
            log("bench: " + p)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Thousands of sockets, for the servers this runner starts (rtspd raises its own limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = tempfile.mkdtemp(prefix="rtspd-bench-")
    media_file = os.path.abspath(settings.media)
    media_dir = os.path.dirname(media_file)
    rows, multi_rows = [], []
    t_start = time.monotonic()
    rc = 0
    try:
        log("bench: %s; rtspd %s; rtspbench %s; media %s; work dir %s"
            % ("SMOKE" if settings.smoke else "full", settings.rtspd, settings.rtspbench, media_file, workdir))
        if settings.profile:
            why = check_perf()
            if why:
                settings.perf_status = why
                settings.profile = set()
                log("bench: no hot-path profile: %s" % why)
        setup_veth(settings)
        order = lambda nets: [x for x in ("lo", "veth") if x in nets]    # noqa: E731
        plan = ([("tcp", n, net) for n in settings.tcp for net in order(settings.tcp_net)]
                + [("udp", n, net) for n in settings.udp for net in order(settings.udp_net)]
                + [("udp-gro", n, net) for n in settings.udp_gro for net in order(settings.udp_net)]
                + [("tls", n, "lo") for n in settings.tls])
        for transport, n, net in plan:
            for kind in TRANSPORT_SERVERS.get(transport, SERVERS):
                prof = kind == "rtspd" and (transport, n) in settings.profile
                log("bench: %s %s N=%d%s%s ..." % (kind, tr_label(transport), n,
                                                   " over veth+RPS" if net == "veth" else "",
                                                   " (profiled)" if prof else ""))
                row = measure(settings, kind, transport, 1, n, workdir, media_dir, media_file, profile=prof,
                              net=settings.veth if net == "veth" else None)
                rows.append(row)
                log("       " + summary_line(row))
                if row.get("profile"):
                    log("       " + profile_line(row["profile"]))
        if settings.multi:
            streams, per = settings.multi
            mdir, names = make_multi_dir(workdir, media_file, streams)
            for kind in SERVERS:
                log("bench: %s multi-stream %dx%d TCP ..." % (kind, streams, per))
                row = measure(settings, kind, "tcp", streams, per, workdir, mdir,
                              os.path.join(mdir, os.path.basename(media_file)), names=names,
                              label="%s TCP %dx%d" % (kind, streams, per))
                multi_rows.append(row)
                log("       " + summary_line(row))
                if settings.multi_single:
                    log("bench: %s single stream %d TCP ..." % (kind, settings.multi_single))
                    row = measure(settings, kind, "tcp", 1, settings.multi_single, workdir, media_dir,
                                  media_file, label="%s TCP 1x%d" % (kind, settings.multi_single))
                    multi_rows.append(row)
                    log("       " + summary_line(row))
    except Interrupted as e:
        log("bench: interrupted (%s); stopping everything it started" % e)
        kill_all()
        rc = 130
    except Exception:
        kill_all()
        raise
    finally:
        kill_all()
        if settings.veth:
            settings.veth.teardown()
    finished = datetime.datetime.now(datetime.timezone.utc)

    all_rows = rows + multi_rows
    log("")
    log(text_table(rows))
    if multi_rows:
        log("")
        log("multi-stream (TCP):")
        log(text_table(multi_rows))
    log("")
    for s in findings(settings, rows, multi_rows):
        log("* " + s)
    for r in all_rows:
        for e in r.get("harness_errors", []):
            log("ERROR %s: %s" % (r["label"], e))
    log("bench: %.0f s" % (time.monotonic() - t_start))

    if rc == 0:
        out = settings.out
        if out is None:
            fd, out = tempfile.mkstemp(prefix="rtspd-bench-smoke-", suffix=".md")
            os.close(fd)
        write_report(settings, rows, multi_rows, started, finished, media_file, out)
        log("bench: report written to %s" % out)
        if settings.json:
            os.makedirs(os.path.dirname(settings.json), exist_ok=True)
            with open(settings.json, "w") as f:
                json.dump({"smoke": settings.smoke, "seconds": settings.seconds, "ramp": settings.ramp,
                           "media": media_file, "rows": rows, "multi": multi_rows,
                           "veth": settings.veth.describe() if settings.veth else None,
                           "veth_status": settings.veth_status,
                           "started": started.isoformat(), "finished": finished.isoformat()},
                          f, indent=1, default=str)
            log("bench: measurements written to %s" % settings.json)
        errors = [r for r in all_rows if r.get("harness_errors")]
        if errors:
            rc = 1
        if settings.smoke and any(r["server"] == "rtspd" and not r.get("sustained") for r in all_rows):
            log("bench: smoke: rtspd did not stream to every viewer without loss")
            rc = 1
    unsustained = any(not r.get("sustained") for r in all_rows)
    if settings.keep or rc not in (0, 130) or (unsustained and not settings.smoke):
        log("bench: server configs and logs kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return rc


def profile_line(p):
    if p.get("error"):
        return "profile: none (%s)" % p["error"]
    under = p.get("under", {})
    return "profile: %s samples, user %.1f%%, kernel %.1f%%, under net_rx_action %s%%, file %s" % (
        p.get("samples"), p.get("user_pct", 0), p.get("kernel_pct", 0),
        fmt(under.get("net_rx_action"), "%.1f"), p["file"])


def summary_line(r):
    if r.get("harness_errors") and r.get("streaming") is None:
        return "ERROR: " + r["harness_errors"][0].splitlines()[0]
    return ("%s/%d streaming, %s failed, %s lost (%s viewers), ttfk median %s ms p99 %s, "
            "server CPU %s%% = %s ms/viewer-s, RSS %s MiB (idle %s), client CPU %s s%s" % (
                fmt(r.get("streaming"), "%d"), r["n"], fmt(r.get("failed"), "%d"), fmt(r.get("lost"), "%d"),
                fmt(r.get("viewers_with_loss"), "%d"), fmt(r.get("ttfk_median")), fmt(r.get("ttfk_p99")),
                fmt(r.get("cpu_pct")), fmt(r.get("cpu_per_vs"), "%.3f"),
                fmt(r["rss_peak_kib"] / 1024.0 if r.get("rss_peak_kib") else None, "%.1f"),
                fmt(r["rss_idle_kib"] / 1024.0 if r.get("rss_idle_kib") else None, "%.1f"),
                fmt(r.get("client_cpu_s"), "%.1f"),
                ("" if r.get("tls_cpu_ms") is None else
                 "; TLS front %s%% = %s ms/viewer-s, handshake median %s ms" % (
                     fmt(r.get("tls_cpu_pct")), fmt(r.get("tls_cpu_per_vs"), "%.3f"),
                     fmt(r.get("tls_handshake_median"), "%.1f"))) + (
                "" if not r.get("harness_errors") else "; ERROR: " + r["harness_errors"][0].splitlines()[0])))


if __name__ == "__main__":
    sys.exit(main())
