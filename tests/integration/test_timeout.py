"""Session timeout: a session with no RTSP request and no RTCP for
<session_timeout> seconds is torn down (RTCP BYE, media stops, its id is
gone); any request on it keeps it alive."""

import time

import pytest

from rtspclient import RtspClient

TIMEOUT = 5


@pytest.fixture(scope="module")
def short_server(server_factory):
    return server_factory(session_timeout=TIMEOUT)


def test_session_times_out(short_server):
    c = RtspClient("127.0.0.1", short_server.port, timeout=10)
    try:
        resp = c.start("test", transport="udp")
        assert resp.headers["Session"].endswith(";timeout=%d" % TIMEOUT)
        sid = resp.headers["Session"].split(";")[0]
        play = time.monotonic()
        c.receive(TIMEOUT + 4)
        v = c.track("video")
        assert v.packets > 50, v
        assert v.bye, "no RTCP BYE when the session timed out: %r" % v
        assert TIMEOUT - 0.5 <= v.bye_time - play <= TIMEOUT + 2.5, v.bye_time - play
        # media stopped with the session
        assert v.last_packet_time - play <= TIMEOUT + 2.5, v.last_packet_time - play
        base = c.base
    finally:
        c.close()
    # the id is gone (asked on a new connection: the idle one was closed too)
    c2 = RtspClient("127.0.0.1", short_server.port, timeout=10)
    try:
        r = c2.request("GET_PARAMETER", base, {"Session": sid})
        assert r.status == 454, r
    finally:
        c2.close()
    assert "timed out" in short_server.log_text()


def test_keepalive_keeps_session(short_server):
    c = RtspClient("127.0.0.1", short_server.port, timeout=10)
    try:
        c.start("test", transport="udp")
        play = time.monotonic()
        for _ in range(int((TIMEOUT + 4) / 2)):
            c.receive(2)
            r = c.get_parameter()
            assert r.status == 200, r
        v = c.track("video")
        assert not v.bye, "session ended although kept alive: %r" % v
        assert v.last_packet_time - play >= TIMEOUT + 2, v.last_packet_time - play
        assert v.gaps == 0, v
    finally:
        c.teardown()
        c.close()
