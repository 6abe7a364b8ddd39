"""IPv6 (rtsp://[::1]:PORT/ for plain RTSP over TCP and UDP, the HTTP
tunnel, RTSPS and SRTP; <serverip> as an IPv6 address or a host name) and
UDP hygiene: RTCP sent to a session's server port from another address
neither keeps the session alive nor moves its media."""

import socket
import struct
import threading
import time

import pytest

from conftest import have_ipv6_loopback, run, self_signed_cert, wait_for
from rtspclient import RtspClient


@pytest.mark.parametrize("transport", ["tcp", "udp", "http"])
def test_ipv6_loopback(server_factory, transport):
    if not have_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback address (::1)")
    srv = server_factory(ipv6_enable=1)
    url = "rtsp://[::1]:%d/test" % srv.port
    rc, out, err, _ = run(["ffmpeg", "-v", "error", "-rtsp_transport", transport, "-i", url, "-t", "2",
                           "-f", "framemd5", "-"], 60)
    assert rc == 0, "ffmpeg over [::1] (%s) failed: %s" % (transport, err[-2000:])
    video = [l for l in out.splitlines() if l.startswith("0,")]
    assert len(video) >= 40, "only %d frames over [::1] (%s)" % (len(video), transport)
    assert "client=[::1]:" in srv.log_text()


def decode_frames(url, transport="tcp", seconds=2):
    rc, out, err, _ = run(["ffmpeg", "-v", "error", "-rtsp_transport", transport, "-i", url, "-t", str(seconds),
                           "-f", "framemd5", "-"], 60)
    assert rc == 0, "ffmpeg %s (%s) failed: %s" % (url, transport, err[-2000:])
    return len([l for l in out.splitlines() if l.startswith("0,")])


def test_ipv6_rtsps_and_srtp(server_factory, tmp_path):
    """RTSPS over [::1] (the TLS front passes the client's IPv6 address on),
    and SRTP over UDP to an IPv6 client."""
    if not have_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback address (::1)")
    cert, key = self_signed_cert(tmp_path)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    tls_port = s.getsockname()[1]
    s.close()
    srv = server_factory(ipv6_enable=1, rtsps_enable=1, rtsps_port=tls_port, rtsps_cert=cert, rtsps_key=key,
                         srtp_over_plain_rtsp=1)
    assert wait_for(lambda: "TLS front started" in srv.log_text(), 10)
    time.sleep(0.3)
    assert decode_frames("rtsps://[::1]:%d/test" % tls_port) >= 40
    assert decode_frames("rtsp://[::1]:%d/sample.mp4?srtp=1" % srv.port, "udp") >= 40
    log = srv.log_text()
    assert "client=[::1]:" in log and "with SRTP" in log


@pytest.mark.parametrize("serverip", ["::1", "localhost"])
def test_serverip_ipv6_address_or_host_name(server_factory, serverip):
    """<serverip> binds what it names: an IPv6 address (only there), or a
    host name (each address it resolves to)."""
    if not have_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback address (::1)")
    srv = server_factory(ipv6_enable=1, serverip=serverip)
    host = "[::1]" if serverip == "::1" else "127.0.0.1"
    assert decode_frames("rtsp://%s:%d/test" % (host, srv.port)) >= 40
    if serverip == "::1":
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    assert "listening for RTSP on %s" % ("[::1]:%d" % srv.port if serverip == "::1" else "127.0.0.1:%d" % srv.port) \
        in srv.log_text()


def receiver_report(ssrc=0x12345678):
    # V=2, RC=0, PT=201 (RR), length 1 (two 32-bit words), sender SSRC.
    return struct.pack(">BBHI", 0x80, 201, 1, ssrc)


def test_spoofed_rtcp_is_ignored(server_factory):
    srv = server_factory(session_timeout=5)
    victim = RtspClient(port=srv.port)
    victim.start("test", transport="udp")
    control = RtspClient(port=srv.port)
    control.start("test", transport="udp")
    v_rtcp_port = victim.tracks[0].transport["server_port"][1]
    c_rtcp_port = control.tracks[0].transport["server_port"][1]
    c_own_rtcp = control.udp[0][1]

    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind(("127.0.0.2", 0))   # another address on the loopback network
    spoofer.settimeout(0.05)
    stop = threading.Event()
    spoofer_got = []

    def keepalives():
        while not stop.is_set():
            spoofer.sendto(receiver_report(), ("127.0.0.1", v_rtcp_port))
            c_own_rtcp.sendto(receiver_report(), ("127.0.0.1", c_rtcp_port))
            try:
                spoofer_got.append(spoofer.recv(65536))
            except (socket.timeout, OSError):
                pass
            stop.wait(0.3)

    t = threading.Thread(target=keepalives, daemon=True)
    t.start()
    try:
        # The control session must outlive the 5 s timeout thanks to its
        # own RTCP; the victim must time out despite the spoofed RTCP.
        assert wait_for(lambda: ("session %s timed out" % victim.session) in srv.log_text(), 15), \
            "a session kept alive by RTCP from another address:\n%s" % srv.log_text()[-3000:]
        control.receive(1.0)
        before = control.tracks[0].packets
        control.receive(1.5)
        assert control.tracks[0].packets > before, "the control session stopped receiving"
        assert ("session %s timed out" % control.session) not in srv.log_text(), \
            "RTCP from the client's own address did not keep its session alive"
    finally:
        stop.set()
        t.join(5)
    # Media never went to the spoofer, and the victim did receive its own.
    victim.receive(0.2)
    assert victim.tracks[0].packets > 0
    assert not spoofer_got, "media or RTCP was sent to the spoofing address"
    spoofer.close()
    victim.close()
    control.teardown()
    control.close()
