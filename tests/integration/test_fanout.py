"""Fan-out: 20 viewers of one stream at once, each gets every packet."""

import threading

import pytest

from rtspclient import RtspClient

VIEWERS = 20
SECONDS = 5.0


def watch(server, path, transport, seconds, n):
    clients, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def body(i):
        c = RtspClient("127.0.0.1", server.port, timeout=15)
        try:
            resp, sdp = c.describe(c.url(path))
            assert resp.status == 200, resp
            resp = c.setup_all(transport)
            assert resp.status == 200, resp
            barrier.wait(30)                 # all PLAY at about the same time
            resp = c.play()
            assert resp.status == 200, resp
            c.receive(seconds)
            clients[i] = c
            c.teardown()
        except Exception as e:
            errors.append("viewer %d: %r" % (i, e))
            barrier.abort()
        finally:
            c.close()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    assert not errors, "\n".join(errors)
    return clients


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_fanout_test_pattern(server, transport):
    clients = watch(server, "test", transport, SECONDS, VIEWERS)
    problems = []
    for i, c in enumerate(clients):
        assert c is not None, "viewer %d did not finish" % i
        assert len(c.tracks) == 2, "viewer %d: %d tracks" % (i, len(c.tracks))
        for t in c.tracks:
            if t.packets < 50:
                problems.append("viewer %d: only %d packets: %r" % (i, t.packets, t))
            if t.gaps or t.late:
                problems.append("viewer %d: sequence gaps: %r" % (i, t))
        v = c.track("video")
        if v is None or v.first_keyframe is not True:
            problems.append("viewer %d did not start at a key frame: %r" % (i, v))
    assert not problems, "\n".join(problems)
