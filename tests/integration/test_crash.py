"""A worker that dies is restarted, with back-off, and takes no other stream
down with it."""

import os
import re
import signal
import threading
import time

from conftest import cmdline, ffprobe, require_tool, wait_for
from rtspclient import RtspClient

A = "test"
B = "sample.mp4?mode=live"




class Viewer(threading.Thread):
    def __init__(self, server, path, seconds):
        super().__init__(daemon=True)
        self.server, self.path, self.seconds = server, path, seconds
        self.client = None
        self.error = None
        self.playing = threading.Event()

    def run(self):
        c = RtspClient("127.0.0.1", self.server.port)
        self.client = c
        try:
            c.start(self.path, "tcp")
            self.playing.set()
            c.receive(self.seconds)
        except Exception as e:
            self.error = repr(e)
        finally:
            self.playing.set()
            c.close()


def poke(server, path):
    """Ask for a stream in the background (makes the master start its worker)."""
    def body():
        try:
            with RtspClient("127.0.0.1", server.port, timeout=5) as c:
                c.describe(c.url(path))
        except Exception:
            pass
    threading.Thread(target=body, daemon=True).start()


def kill_worker(server, path, timeout=10.0):
    """SIGKILL the worker of `path`; while none runs, ask for the stream
    every second so that the master starts one."""
    deadline = time.monotonic() + timeout
    next_poke = 0.0
    while True:
        pids = server.workers(path)
        if pids or time.monotonic() > deadline:
            break
        if time.monotonic() >= next_poke:
            poke(server, path)
            next_poke = time.monotonic() + 1.0
        time.sleep(0.1)
    assert pids, "no worker for /%s among %s" % (
        path, [(p, " ".join(cmdline(p))) for p in server.children()])
    for p in pids:
        os.kill(p, signal.SIGKILL)
    return pids


def test_worker_crash_is_contained_and_restarted(server_factory):
    require_tool("ffprobe")
    server = server_factory()
    va = Viewer(server, A, 6.0)
    vb = Viewer(server, B, 12.0)
    va.start()
    vb.start()
    assert va.playing.wait(15) and vb.playing.wait(15)
    assert va.error is None and vb.error is None, (va.error, vb.error)
    time.sleep(1.5)

    a_workers = server.workers(A)
    b_workers = server.workers(B)
    assert a_workers, "no worker found for /%s: %s" % (
        A, [(p, " ".join(cmdline(p))) for p in server.children()])
    assert b_workers and not set(a_workers) & set(b_workers), (a_workers, b_workers)

    killed_at = time.monotonic()
    kill_worker(server, A)

    # A's viewer loses its session (its connection belonged to the worker)
    # the new viewer of A plays within 3 s of the crash
    ok, last_err = False, None
    while time.monotonic() - killed_at < 3.0 and not ok:
        streams, err = ffprobe(server.url(A), "tcp", timeout=20)
        ok = bool(streams) and any(s.get("codec_type") == "video" for s in streams)
        last_err = err
        if not ok:
            time.sleep(0.2)
    assert ok, "/%s did not play again within 3 s of its worker's crash: %s" % (A, last_err)

    vb.join(30)
    assert vb.error is None, vb.error
    for t in vb.client.tracks:
        assert t.packets > 0, t
        assert t.gaps == 0 and t.late == 0, "/%s was disturbed by /%s's crash: %r" % (B, A, t)
        assert t.last_packet_time > killed_at + 2, "/%s stopped with /%s's crash" % (B, A)
    assert set(server.workers(B)) == set(b_workers), "/%s's worker changed" % B

    log = server.log_text()
    assert re.search(r"crash|killed by signal", log, re.I), \
        "the log does not mention the crash:\n" + log[-3000:]

    # crash it again and again: the restarts back off
    def backoff_logged():
        return re.search(r"back-?off", server.log_text(), re.I)

    for _ in range(4):
        if backoff_logged():
            break
        kill_worker(server, A, timeout=20)
        wait_for(backoff_logged, 1.0)
    assert wait_for(lambda: re.search(r"back-?off", server.log_text(), re.I), 5), \
        "no back-off in the log after 5 crashes:\n" + server.log_text()[-3000:]
    assert server.alive(), "the master died"
    with RtspClient("127.0.0.1", server.port) as c:
        assert c.options(server.url("")).status == 200
