"""rtspbench, the load client (tools/rtspbench.c), against rtspd: many
viewers of the live test pattern over TCP and UDP get every packet and
start at a key frame; so do viewers of rtsps:// (RTSP and the interleaved
media inside TLS, through rtspd's TLS front process); a viewer that stops
reading does not disturb the others and comes back at a key frame (or is
dropped); a server that is not there makes every viewer fail.

The tool is RTSPBENCH_BIN, else <repo>/build/rtspbench.
"""

import json
import os
import socket

import pytest

from conftest import free_tcp_port, run, self_signed_cert, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))

# The tool ends by itself within ramp + -t + 15 s; the extra is for the
# start-up of a sanitizer build of the server.
GRACE = 30


def rtspbench_bin():
    path = os.environ.get("RTSPBENCH_BIN") or os.path.join(REPO, "build", "rtspbench")
    if not os.access(path, os.X_OK):
        reason = "rtspbench not built (%s); set RTSPBENCH_BIN or build build/rtspbench" % path
        print("SKIP: " + reason)
        pytest.skip(reason)
    return path


def bench(url, viewers, seconds, *args):
    """Runs rtspbench; returns (exit status, the JSON result, stderr)."""
    cmd = [rtspbench_bin(), "-q", "-j", "-n", str(viewers), "-t", str(seconds)] + list(args) + [url]
    rc, out, err, _ = run(cmd, seconds + GRACE)
    assert rc is not None, "rtspbench did not end within %d s: %s" % (seconds + GRACE, err[-2000:])
    lines = out.strip().splitlines()
    assert lines, "rtspbench printed nothing (rc=%s): %s" % (rc, err[-2000:])
    try:
        result = json.loads(lines[-1])
    except ValueError:
        pytest.fail("the last line of rtspbench's output is not JSON: %r" % lines[-1][:500])
    print(json.dumps(result, indent=1))
    return rc, result, err


def assert_all_streamed(result, viewers):
    summary = "errors: %s" % result["errors"]
    assert result["viewers"] == viewers
    assert result["failed"] == 0, summary
    assert result["connected"] == viewers, summary
    assert result["streaming"] == viewers, summary
    assert result["lost"] == 0, "%d packets lost by %d viewers (first: %s)" % (
        result["lost"], result["viewers_with_loss"], result.get("lossy_viewers"))
    assert result["viewers_with_loss"] == 0
    assert result["reordered"] == 0
    assert result["keyframe_start_ok"] == viewers, \
        "only %d of %d viewers started at a key frame" % (result["keyframe_start_ok"], viewers)


def test_200_viewers_tcp(server):
    viewers, seconds = 200, 5
    rc, result, err = bench(server.url("test"), viewers, seconds, "-T", "tcp")
    assert_all_streamed(result, viewers)
    assert rc == 0, err[-2000:]
    assert result["transport"] == "tcp"
    # The test pattern runs at 25 frames/s plus audio: at least 50 packets a
    # second per viewer, so this only catches a stream that crawls.
    assert result["packets"] >= viewers * seconds * 50, result["packets"]
    # Loose: every viewer sees its first key frame within 5 s of connecting.
    assert result["ttfk_ms"]["max"] is not None and result["ttfk_ms"]["max"] < 5000, result["ttfk_ms"]
    assert result["stall"] is None


def test_50_viewers_udp(server):
    viewers, seconds = 50, 5
    rc, result, err = bench(server.url("test"), viewers, seconds, "-T", "udp")
    assert_all_streamed(result, viewers)
    assert rc == 0, err[-2000:]
    assert result["transport"] == "udp"
    assert result["packets"] >= viewers * seconds * 50, result["packets"]


def test_stalled_viewer(server):
    """Viewer 0 stops reading 1 s into its play, for 5 s. The 20 others must
    not lose a packet. Viewer 0 must either come back at a key frame (the
    server skipped to the live edge: the first video packet after the gap
    starts a key frame) or have been disconnected."""
    viewers, seconds = 21, 9
    rc, result, err = bench(server.url("test"), viewers, seconds, "-T", "tcp", "--stall", "0:1:5")
    # The stalled viewer is reported apart; the totals are the other 20.
    assert result["failed"] == 0, result["errors"]
    assert result["streaming"] == viewers - 1, result["errors"]
    assert result["lost"] == 0, "the other viewers lost %d packets (viewers %s)" % (
        result["lost"], result.get("lossy_viewers"))
    assert rc == 0, err[-2000:]
    stall = result["stall"]
    assert stall is not None and stall["viewer"] == 0
    assert stall["stalled"], "viewer 0 never got to its stall: %s" % stall
    if stall["disconnected"]:
        return
    assert stall["resumed_at_keyframe"] is True, (
        "the stalled viewer resumed %s and not at a key frame: %s"
        % ("after a gap" if stall["gap_after_stall"] else "without a gap (nothing was skipped)", stall))


def test_20_viewers_rtsps_tcp(server_factory, tmp_path):
    """rtsps://: a TCP connect, a non-blocking TLS handshake (the
    self-signed certificate is not verified), then RTSP with interleaved
    media through SSL_read/SSL_write. Every viewer streams without loss."""
    cert, key = self_signed_cert(tmp_path)
    rtsps_port = free_tcp_port()
    srv = server_factory(rtsps_enable=1, rtsps_port=rtsps_port, rtsps_cert=cert, rtsps_key=key)

    def tls_port_open():
        # The TLS front process starts after the master accepts plain RTSP.
        try:
            socket.create_connection(("127.0.0.1", rtsps_port), timeout=0.5).close()
            return True
        except OSError:
            return False
    assert wait_for(tls_port_open, 10), "no RTSPS listener on port %d; log:\n%s" % (
        rtsps_port, srv.log_text()[-3000:])

    viewers, seconds = 20, 3
    rc, result, err = bench("rtsps://127.0.0.1:%d/test" % rtsps_port, viewers, seconds, "-T", "tcp")
    assert_all_streamed(result, viewers)
    assert rc == 0, err[-2000:]
    assert result["transport"] == "tcp" and result["tls"] is True
    assert result["packets"] >= viewers * seconds * 50, result["packets"]
    hs = result["tls_handshake_ms"]
    assert hs["median"] is not None and hs["max"] <= result["ttfp_ms"]["max"], (hs, result["ttfp_ms"])
    assert result["ttfk_ms"]["max"] is not None and result["ttfk_ms"]["max"] < 5000, result["ttfk_ms"]


def test_nothing_listening():
    url = "rtsp://127.0.0.1:%d/test" % free_tcp_port()
    rc, result, _ = bench(url, 5, 1)
    assert rc not in (0, 2), rc
    assert result["viewers"] == 5
    assert result["failed"] == 5
    assert result["connected"] == 0
    assert result["streaming"] == 0
    assert any("refused" in e for e in result["errors"]), result["errors"]
