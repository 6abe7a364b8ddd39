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


def test_idle_connection_closed_but_not_one_whose_udp_session_lives(short_server):
    """A connection with no session and no request for the session timeout
    is closed; the RTSP connection of a UDP session kept alive by its RTCP
    alone is not (the session names it), and stays usable."""
    import socket
    import struct
    idle = socket.create_connection(("127.0.0.1", short_server.port), timeout=TIMEOUT + 5)
    c = RtspClient("127.0.0.1", short_server.port, timeout=10)
    try:
        # a request for the stream, so that the connection goes to its worker
        idle.sendall(b"OPTIONS rtsp://127.0.0.1:%d/test RTSP/1.0\r\nCSeq: 1\r\n\r\n" % short_server.port)
        assert idle.recv(4096).startswith(b"RTSP/1.0 200")
        c.start("test", transport="udp")
        t0 = time.monotonic()
        closed_at = None
        while time.monotonic() - t0 < 2 * TIMEOUT + 1:
            for rtp_sock, rtcp_sock, track in c.udp:
                sp = track.transport.get("server_port")
                # an empty receiver report from the client's RTCP port
                rtcp_sock.sendto(struct.pack(">BBHI", 0x80, 201, 1, 0x1234), ("127.0.0.1", sp[1]))
            c.receive(1.0)
            if closed_at is None:
                idle.settimeout(0.01)
                try:
                    if idle.recv(1) == b"":
                        closed_at = time.monotonic() - t0
                except socket.timeout:
                    pass
        assert closed_at is not None, "the idle connection was not closed"
        assert TIMEOUT - 1 <= closed_at <= TIMEOUT + 2, closed_at
        v = c.track("video")
        assert not v.bye, "the RTCP-kept session ended: %r" % v
        r = c.get_parameter()
        assert r.status == 200, r
    finally:
        idle.close()
        c.teardown()
        c.close()
    assert "idle connection closed" in short_server.log_text()
