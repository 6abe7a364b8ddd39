"""rtsp-talk, the ONVIF audio back-channel client, against gst-rtsp-server's
ONVIF back channel (onvif_backchannel_server.py): a 3 s 1 kHz tone sent over
UDP, TCP-interleaved and the HTTP tunnel, in every codec the client encodes,
must come out of the server's decoder as >= 2.5 s of a 1 kHz tone. Against
rtspd's own back channel (RTSPD_BIN) the same over every transport rtspd
takes it on: UDP, TCP, the HTTP tunnel, RTSPS, the HTTPS tunnel, WebSocket,
wss, SRTP (over RTSPS, and over plain RTSP with <srtp_over_plain_rtsp>) and
IPv6. Then the error paths and their exit codes: no back channel (551) -> 3,
no codec in common -> 4, bad URL / unreachable / untrusted certificate /
SRTP we cannot do -> 1, usage -> 2; Digest authentication, keep-alive,
TEARDOWN on SIGINT, and the WebSocket framing against a scripted server.

Environment: RTSP_TALK_BIN (default build/rtsp-talk). The peer needs
/usr/bin/python3 with gi and gst-rtsp-server (python3-gi,
gir1.2-gst-rtsp-server-1.0); without them those tests are skipped."""

import base64
import hashlib
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import HERE, free_tcp_port, have_ipv6_loopback, require_tool, run, self_signed_cert, tool_bin, wait_for
import tones

PEER = os.path.join(HERE, "onvif_backchannel_server.py")
GI_PYTHON = "/usr/bin/python3"
RATE = 8000          # the peer writes S16LE mono at 8 kHz
TONE = 1000


def talk_bin():
    return tool_bin("RTSP_TALK_BIN", "build/rtsp-talk")


_peer_ok = None


def require_peer():
    global _peer_ok
    if _peer_ok is None:
        rc, _, err, _ = run([GI_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                             "from gi.repository import GstRtspServer; GstRtspServer.RTSPOnvifServer"], 30)
        _peer_ok = (rc == 0, err.strip()[-300:])
    if not _peer_ok[0]:
        reason = "gst-rtsp-server's Python bindings are missing: " + _peer_ok[1]
        print("SKIP: " + reason)
        pytest.skip(reason)


class Peer:
    """onvif_backchannel_server.py in the background; .url, .out (raw
    S16LE 8 kHz of what its back channel decoded)."""

    def __init__(self, tmp_path, *args):
        require_peer()
        self.out = str(tmp_path / ("bc-%d.raw" % time.monotonic_ns()))
        self.log = open(str(tmp_path / "peer.log"), "ab")
        port = free_tcp_port()
        self.proc = subprocess.Popen([GI_PYTHON, PEER, "--out", self.out, "--port", str(port)] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    break
                line += c
        if not line.startswith(b"READY "):
            self.close()
            pytest.fail("the back-channel peer did not start: %r (see %s)" % (line, self.log.name))
        self.port = int(line.split()[1])
        self.url = "rtsp://127.0.0.1:%d/talk" % self.port

    def pcm(self):
        try:
            with open(self.out, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture(scope="module")
def sine_wav(tmp_path_factory):
    require_tool("ffmpeg")
    path = str(tmp_path_factory.mktemp("talk") / "sine.wav")
    rc, _, err, _ = run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                         "sine=frequency=%d:duration=3" % TONE, "-ar", "16000", "-ac", "1", path], 60)
    assert rc == 0, err
    return path


# ---------------------------------------------------------------- signal analysis

samples = tones.samples
goertzel_power = tones.goertzel_power


def dominant_frequency(x, rate):
    """Frequency of the strongest component of a 0.5 s Hann-windowed window
    from the middle of x: a coarse scan every 25 Hz, then 1 Hz steps."""
    n = rate // 2
    mid = len(x) // 2
    seg = x[max(0, mid - n // 2):max(0, mid - n // 2) + n]
    if len(seg) < n:
        return 0
    win = [v * (0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))) for i, v in enumerate(seg)]
    coarse = max(range(100, rate // 2 - 100, 25), key=lambda f: goertzel_power(win, f, rate))
    return max(range(coarse - 30, coarse + 31), key=lambda f: goertzel_power(win, f, rate))


def tone_share(x, freq, rate):
    """tones.tone_share, skipping the first 0.2 s."""
    return tones.tone_share(x[rate // 5:], freq, rate)


def assert_tone(pcm, min_seconds=2.5, what=""):
    x = samples(pcm)
    secs = len(x) / RATE
    assert secs >= min_seconds, "%s: the server decoded only %.2f s of audio" % (what, secs)
    f = dominant_frequency(x, RATE)
    assert abs(f - TONE) <= 20, "%s: dominant frequency %d Hz, not %d" % (what, f, TONE)
    share = tone_share(x, TONE, RATE)
    assert share > 0.8, "%s: only %.2f of the energy is at %d Hz" % (what, share, TONE)


def talk(*args, timeout=60):
    return run([talk_bin()] + list(args), timeout)


# ---------------------------------------------------------------- interop: what the server hears

@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
def test_pcmu_reaches_the_back_channel(tmp_path, sine_wav, transport):
    with Peer(tmp_path, "--codec", "pcmu") as peer:
        rc, _, err, secs = talk("-v", "-t", transport, peer.url, "-i", sine_wav)
        assert rc == 0, "rtsp-talk -t %s failed (rc=%s): %s" % (transport, rc, err[-3000:])
        time.sleep(0.3)
        pcm = peer.pcm()
    # Paced in real time: a 3 s file takes about 3 s (+ set-up and the linger).
    assert 2.8 <= secs <= 8, "3 s of audio took %.1f s" % secs
    assert "Require: www.onvif.org/ver20/backchannel" in err
    # Only the back-channel media is SETUP, with the Require tag; PLAY then TEARDOWN.
    setups = [l for l in err.splitlines() if l.startswith("> SETUP ")]
    assert len(setups) == 1 and setups[0].split()[2].endswith("/stream=1"), setups
    assert "> TEARDOWN " in err
    assert_tone(pcm, what="PCMU over %s" % transport)


@pytest.mark.parametrize("codec,transport", [
    ("pcma", "udp"), ("g722", "udp"), ("g726-32", "udp"), ("opus", "udp"), ("aac", "udp"),
    ("g722", "tcp"), ("opus", "tcp"), ("aac", "http"),
])
def test_codecs_reach_the_back_channel(tmp_path, sine_wav, codec, transport):
    # The server offers only this codec: rtsp-talk picks it by itself.
    with Peer(tmp_path, "--codec", codec) as peer:
        rc, _, err, _ = talk("-t", transport, peer.url, "-i", sine_wav)
        assert rc == 0, "rtsp-talk (%s over %s) failed (rc=%s): %s" % (codec, transport, rc, err[-3000:])
        time.sleep(0.3)
        pcm = peer.pcm()
    assert_tone(pcm, what="%s over %s" % (codec, transport))


def test_codec_option_names_the_offered_codec(tmp_path, sine_wav):
    with Peer(tmp_path, "--codec", "g722") as peer:
        rc, _, err, _ = talk("-c", "g722", "-t", "tcp", peer.url, "-i", sine_wav)
        assert rc == 0, err
        time.sleep(0.3)
        assert_tone(peer.pcm(), what="-c g722")


def test_g726_aal2_packing(tmp_path, sine_wav):
    # A peer that reads G726-32 MSB first (gst's rtpg726depay by default):
    # RFC 3551 packing sounds wrong there, --g726-aal2 right.
    with Peer(tmp_path, "--codec", "g726-32-aal2") as peer:
        rc, _, err, _ = talk("--g726-aal2", peer.url, "-i", sine_wav)
        assert rc == 0, err
        time.sleep(0.3)
        assert_tone(peer.pcm(), what="G726-32 --g726-aal2")


def test_alsa_capture(tmp_path):
    """-d: a live capture through libavdevice's ALSA input. With no sound
    card, an ALSA `file` PCM whose infile holds the tone (raw S16LE 8 kHz
    mono) stands in for the microphone; its null slave does not block, so
    this also checks that a capture is held to real time."""
    require_tool("ffmpeg")
    raw = str(tmp_path / "mic.raw")
    rc, _, err, _ = run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=%d:duration=10" % TONE,
                         "-ar", "8000", "-ac", "1", "-f", "s16le", raw], 60)
    assert rc == 0, err
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text('pcm.talkmic {\n type file\n slave.pcm "null"\n file "/dev/null"\n'
                                    ' infile "%s"\n format "raw"\n}\n' % raw)
    with Peer(tmp_path) as peer:
        env = dict(os.environ, HOME=str(home))
        t0 = time.monotonic()
        p = subprocess.run([talk_bin(), "-D", "3", "-d", "talkmic", peer.url], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        secs = time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode and "ALSA" in err and "cannot open" in err:
            pytest.skip("no usable ALSA here: " + err.strip()[-300:])
        assert p.returncode == 0, err
        time.sleep(0.3)
        assert_tone(peer.pcm(), what="ALSA capture")
    assert secs >= 2.8, "3 s of capture sent in %.1f s" % secs


def test_digest_authentication(tmp_path, sine_wav):
    with Peer(tmp_path, "--digest", "admin:s3cret") as peer:
        # Credentials in the URL (and the URL is sent without them).
        url = peer.url.replace("rtsp://", "rtsp://admin:s3cret@")
        rc, _, err, _ = talk("-v", url, "-i", sine_wav)
        assert rc == 0, err[-3000:]
        assert "Authorization: Digest " in err and "admin:s3cret@" not in err.split("> OPTIONS", 1)[1]
        time.sleep(0.3)
        assert_tone(peer.pcm(), what="with Digest")
        # -u, wrong password: a clear failure, exit 1.
        rc, _, err, secs = talk("-u", "admin:wrong", peer.url, "-i", sine_wav)
        assert rc == 1 and "401" in err, (rc, err)
        # No credentials at all.
        rc, _, err, _ = talk(peer.url, "-i", sine_wav)
        assert rc == 1 and "401" in err and "-u" in err, (rc, err)


def test_keepalive_every_half_timeout(tmp_path, sine_wav):
    # Session timeout 4 s -> a GET_PARAMETER (OPTIONS' Public lists it) every 2 s.
    with Peer(tmp_path, "--session-timeout", "4") as peer:
        rc, _, err, secs = talk("-v", "--loop", "-D", "7", peer.url, "-i", sine_wav)
        assert rc == 0, err[-3000:]
        time.sleep(0.3)
        pcm = peer.pcm()
    kas = [l for l in err.splitlines() if l.startswith("> GET_PARAMETER ")]
    assert len(kas) >= 2, "%d keep-alives in %.1f s:\n%s" % (len(kas), secs, err[-3000:])
    # --loop carried on past the file's 3 s; -D stopped it at 7 s.
    assert_tone(pcm, min_seconds=6.0, what="--loop -D 7")


def test_sigint_tears_down(tmp_path, sine_wav):
    with Peer(tmp_path) as peer:
        p = subprocess.Popen([talk_bin(), "-v", "--loop", peer.url, "-i", sine_wav],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        time.sleep(3.5)
        p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError("rtsp-talk did not end after SIGINT")
        err = err.decode("utf-8", "replace")
        assert p.returncode == 0, err[-3000:]
        tail = err.split("> TEARDOWN ", 1)
        assert len(tail) == 2 and "< RTSP/1.0 200" in tail[1], "no answered TEARDOWN:\n" + err[-3000:]
        time.sleep(0.3)
        assert_tone(peer.pcm(), min_seconds=1.5, what="until SIGINT")


# ---------------------------------------------------------------- rtspd's own back channel

@pytest.mark.parametrize("transport,codec", [("udp", "pcmu"), ("tcp", "g726-32"), ("http", "opus"), ("udp", "aac")])
def test_rtspd_back_channel(server_factory, tmp_path, sine_wav, transport, codec):
    """rtsp-talk into rtspd (RTSPD_BIN): its talk process plays to an ALSA
    `file` PCM and records each talk as a WAV in wav_dir, which must hold
    the tone."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text('pcm.talkout {\n type file\n slave.pcm "null"\n file "%s"\n format "wav"\n}\n'
                                    % (tmp_path / "alsa.wav"))
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    srv = server_factory(env={"HOME": str(home)},
                         backchannel="<enable>1</enable><codec>G711U</codec><device>talkout</device>"
                                     "<wav_dir>%s</wav_dir>" % wav_dir)
    url = "rtsp://127.0.0.1:%d/%s" % (srv.port, "sample.mp4")
    rc, _, err, _ = run([talk_bin(), "-c", codec, "-t", transport, url, "-i", sine_wav], 60)
    assert rc == 0, "rtsp-talk into rtspd (%s over %s): rc=%s %s" % (codec, transport, rc, err[-3000:])
    wavs = wait_for(lambda: sorted(wav_dir.glob("talk-*.wav")), 10)
    assert wavs, "rtspd recorded no talk in %s" % wav_dir
    time.sleep(0.5)    # the talk process finishes the file after TEARDOWN
    assert_wav_tone(wavs[-1], "rtspd, %s over %s" % (codec, transport))


def run_bytes(cmd, timeout):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"), 0


def assert_wav_tone(path, what):
    rc, pcm, err, _ = run_bytes(["ffmpeg", "-v", "error", "-i", str(path), "-ar", str(RATE), "-ac", "1",
                                 "-f", "s16le", "-"], 60)
    assert rc == 0, err
    assert_tone(pcm, what=what)


# ---------------------------------------------------------------- rtspd: TLS, WebSocket, SRTP, IPv6

BC_NODE = "<enable>1</enable><codec>G711U</codec><device>talkout</device><wav_dir>%s</wav_dir>"


@pytest.fixture(scope="module")
def talk_certs(tmp_path_factory):
    """A self-signed certificate for "localhost" only (no IP address in it,
    so that a check against 127.0.0.1 fails on the name) and its key."""
    return self_signed_cert(tmp_path_factory.mktemp("talkcerts"), san="DNS:localhost")


def bc_server(server_factory, tmp_path_factory, **cfg):
    """rtspd with its back channel played to an ALSA `file` PCM and recorded
    in .wav_dir (talk-<time>-<session>.wav)."""
    d = tmp_path_factory.mktemp("bc")
    home, wav_dir = d / "home", d / "wav"
    home.mkdir()
    wav_dir.mkdir()
    (home / ".asoundrc").write_text('pcm.talkout {\n type file\n slave.pcm "null"\n file "%s"\n format "wav"\n}\n'
                                    % (d / "alsa.wav"))
    srv = server_factory(env={"HOME": str(home)}, backchannel=BC_NODE % wav_dir, **cfg)
    srv.wav_dir = wav_dir
    return srv


@pytest.fixture(scope="module")
def bc_tls(server_factory, tmp_path_factory, talk_certs):
    """rtspd with a back channel, RTSPS and the HTTPS port (tunnel and
    wss), listening on IPv6 too; SRTP keys only over TLS (the default)."""
    cert, key = talk_certs
    ports = []
    while len(ports) < 2:
        p = free_tcp_port()
        if p not in ports:
            ports.append(p)
    srv = bc_server(server_factory, tmp_path_factory, ipv6_enable=1,
                    rtsps_enable=1, rtsps_port=ports[0], rtsps_cert=cert, rtsps_key=key,
                    rtsp_over_https=1, https_port=ports[1], https_cert=cert, https_key=key)
    srv.rtsps_port, srv.https_port = ports
    assert wait_for(lambda: "TLS front started" in srv.log_text(), 10), srv.log_text()[-3000:]
    return srv


def talk_into_rtspd(srv, sine_wav, url, args, what):
    """rtsp-talk -v ARGS URL into srv; the talk rtspd recorded for that
    session must hold the tone. Returns (stderr, session id, the server's
    log lines written meanwhile)."""
    before = len(srv.log_text())
    rc, _, err, _ = talk("-v", *(list(args) + [url, "-i", sine_wav]))
    assert rc == 0, "rtsp-talk %s (%s): rc=%s\n%s" % (" ".join(args), url, rc, err[-3000:])
    m = re.search(r"^< Session: ([^;\s]+)", err, re.M)
    assert m, "no session in:\n" + err[-3000:]
    session = m.group(1)
    # The talk process writes the WAV to its end after TEARDOWN.
    ended = wait_for(lambda: ("session=%s: talk ended" % session) in srv.log_text()[before:], 10)
    assert ended, "rtspd did not end the talk of session %s:\n%s" % (session, srv.log_text()[before:][-3000:])
    wavs = sorted(srv.wav_dir.glob("talk-*-%s.wav" % session))
    assert wavs, "rtspd recorded no talk for session %s in %s" % (session, srv.wav_dir)
    assert_wav_tone(wavs[0], what)
    return err, session, srv.log_text()[before:]


def bc_case(srv, case):
    """-> (rtsp-talk arguments, URL, the transport its "talking to" line names)."""
    rtsps, https = srv.rtsps_port, srv.https_port
    return {
        "rtsps": (["-k"], "rtsps://127.0.0.1:%d/sample.mp4" % rtsps, "RTSPS (TCP in TLS)"),
        "https": (["-k", "-t", "https"], "rtsp://127.0.0.1:%d/sample.mp4" % https, "the HTTPS tunnel"),
        "rtspsh": (["-k"], "rtspsh://127.0.0.1:%d/sample.mp4" % https, "the HTTPS tunnel"),
        "ws": (["-t", "ws"], "rtsp://127.0.0.1:%d/sample.mp4" % srv.port, "WebSocket"),
        "wss": (["-k", "-t", "wss"], "rtsp://127.0.0.1:%d/sample.mp4" % https, "secure WebSocket (wss)"),
        "srtp-rtsps": (["-k"], "rtsps://127.0.0.1:%d/sample.mp4?srtp=1" % rtsps, "RTSPS (TCP in TLS)"),
        "srtp-rtsps-udp": (["-k", "-t", "udp"], "rtsps://127.0.0.1:%d/sample.mp4?srtp=1" % rtsps,
                           "UDP (RTSP in TLS)"),
        "ipv6-udp": ([], "rtsp://[::1]:%d/sample.mp4" % srv.port, "UDP"),
    }[case]


@pytest.mark.parametrize("case", ["rtsps", "https", "rtspsh", "ws", "wss", "srtp-rtsps", "srtp-rtsps-udp",
                                  "ipv6-udp"])
def test_rtspd_back_channel_secure_transports(bc_tls, sine_wav, case):
    """PCMU into rtspd over TLS, the HTTPS tunnel (-t https and GStreamer's
    rtspsh://), WebSocket on the RTSP port, wss on the HTTPS port, SRTP over
    RTSPS (media interleaved in the TLS, and over UDP as ONVIF has it), and
    UDP over IPv6. The server's log must show the path taken; with SRTP the
    session must be an SRTP one whose every packet authenticated (rtspd drops
    what does not, so the tone itself proves the audio was encrypted under
    the key it gave)."""
    if case.startswith("ipv6") and not have_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback address (::1)")
    args, url, names = bc_case(bc_tls, case)
    err, session, log = talk_into_rtspd(bc_tls, sine_wav, url, args, "rtspd, PCMU, %s" % case)
    assert re.search(r"talking to \S+: PCMU/8000, payload type 0, over %s(,|$)" % re.escape(names), err, re.M), \
        err[-3000:]
    if "rtsps" in case or case in ("https", "rtspsh", "wss"):
        assert "TLS: TLSv1." in log and " established" in log, log[-3000:]
        assert "> OPTIONS rtsps://" in err, "requests over TLS name rtsps:// URLs:\n" + err[-3000:]
    if case in ("ws", "wss"):
        assert "RTSP over WebSocket: upgraded (rtsp.onvif.org)" in log, log[-3000:]
        assert "> GET /websocket HTTP/1.1" in err and "WebSocket: close 1000 from the client" in log, log[-3000:]
    if case in ("https", "rtspsh"):
        assert "GET and POST joined" in log, log[-3000:]
    if case.startswith("srtp"):
        assert "SRTP AES_CM_128_HMAC_SHA1_80" in err, err[-3000:]
        assert re.search(r"^> Transport: RTP/SAVP%s;unicast;" % ("" if case.endswith("udp") else "/TCP"), err, re.M), \
            err[-3000:]
        assert re.search(r"session=%s: session %s ended \(.*SRTP\)" % (session, session), log), log[-3000:]
        assert "did not authenticate" not in log, log[-3000:]
        # -v shows the SDP, but not the key in it.
        assert re.search(r"^< a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\.\.\.$", err, re.M), err[-3000:]
        assert "warning: the SRTP key came over plain RTSP" not in err
    else:
        assert "SRTP" not in err.split("talking to", 1)[1].splitlines()[0]
    if case.startswith("ipv6"):
        assert "client=[::1]:" in log and "back channel set up over UDP" in log, log[-3000:]


def test_rtspd_srtp_over_plain_rtsp(server_factory, tmp_path_factory, sine_wav):
    """SRTP over UDP with the RTSP connection in the clear: rtspd gives the
    key only with <srtp_over_plain_rtsp>1; rtsp-talk encrypts with it, and
    warns that the key was not secret."""
    srv = bc_server(server_factory, tmp_path_factory, srtp_over_plain_rtsp=1)
    err, session, log = talk_into_rtspd(srv, sine_wav, "rtsp://127.0.0.1:%d/sample.mp4?srtp=1" % srv.port, [],
                                        "rtspd, PCMU, SRTP over UDP, plain RTSP")
    assert "over UDP, SRTP AES_CM_128_HMAC_SHA1_80" in err, err[-3000:]
    assert re.search(r"^> Transport: RTP/SAVP;unicast;client_port=\d+-\d+$", err, re.M), err[-3000:]
    assert "warning: the SRTP key came over plain RTSP" in err, err[-3000:]
    assert re.search(r"session=%s: session %s ended \(.*SRTP\)" % (session, session), log), log[-3000:]
    assert "did not authenticate" not in log, log[-3000:]


def test_rtsps_certificate_verification(bc_tls, talk_certs, sine_wav):
    """Verification is on by default: rtspd's self-signed certificate is
    refused with a clear message and exit 1, before any RTSP; --ca-file
    trusts it, and then the name is checked too (the certificate names
    localhost, not 127.0.0.1)."""
    cert, _ = talk_certs
    url = "rtsps://127.0.0.1:%d/sample.mp4" % bc_tls.rtsps_port
    rc, _, err, secs = talk("-v", url, "-i", sine_wav, timeout=30)
    assert rc == 1, (rc, err)
    assert "certificate" in err and "not trusted" in err and "self-signed" in err and "-k" in err, err
    assert "> OPTIONS" not in err and secs < 5, err
    # The same through the HTTPS tunnel and wss.
    for t in ("https", "wss"):
        rc, _, err, _ = talk("-t", t, "rtsp://127.0.0.1:%d/sample.mp4" % bc_tls.https_port, "-i", sine_wav,
                             timeout=30)
        assert rc == 1 and "self-signed" in err, (t, rc, err)
    # A CA that signed it (itself), but the wrong name: still refused.
    rc, _, err, _ = talk("--ca-file", cert, url, "-i", sine_wav, timeout=30)
    assert rc == 1 and "IP address mismatch" in err, (rc, err)
    # The right name: verified, and the talk goes through.
    rc, _, err, _ = talk("--ca-file", cert, "-D", "0.5", "rtsps://localhost:%d/sample.mp4" % bc_tls.rtsps_port,
                         "-i", sine_wav, timeout=30)
    assert rc == 0 and "over RTSPS" in err, (rc, err)


# ---------------------------------------------------------------- errors and exit codes

def test_server_without_back_channel_exits_3(tmp_path, sine_wav):
    with Peer(tmp_path, "--no-backchannel") as peer:
        rc, _, err, secs = talk(peer.url, "-i", sine_wav)
    assert rc == 3, (rc, err)
    assert "no ONVIF audio back channel" in err and "551" in err, err
    assert secs < 5


def test_codec_not_offered_exits_4(tmp_path, sine_wav):
    with Peer(tmp_path, "--codec", "pcmu") as peer:
        rc, _, err, _ = talk("-c", "opus", peer.url, "-i", sine_wav)
        assert rc == 4, (rc, err)
        assert "no codec in common" in err and "PCMU" in err and "opus" in err, err
        # Nothing was set up, and the server is still fine for the next talker.
        rc, _, err, _ = talk("-c", "pcmu", "-D", "1", peer.url, "-i", sine_wav)
        assert rc == 0, err


class Canned:
    """A scripted RTSP server on one connection: handler(method, headers)
    returns (status line + headers, body) per request; records requests."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.url = "rtsp://127.0.0.1:%d/x" % self.port
        self.th = threading.Thread(target=self.serve, daemon=True)
        self.th.start()

    def serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        c.settimeout(15)
        buf = b""
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                buf += d
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode().split("\r\n")
                    headers = {}
                    for l in lines[1:]:
                        k, _, v = l.partition(":")
                        headers[k.strip().lower()] = v.strip()
                    method = lines[0].split()[0]
                    self.requests.append((lines[0], headers))
                    status, extra, body = self.handler(method, headers)
                    msg = "RTSP/1.0 %s\r\nCSeq: %s\r\n%s" % (status, headers.get("cseq", "0"), extra)
                    if body:
                        msg += "Content-Type: application/sdp\r\nContent-Length: %d\r\n" % len(body)
                    c.sendall((msg + "\r\n" + body).encode())
        except OSError:
            pass
        c.close()

    def close(self):
        self.srv.close()


def canned_sdp(media):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\n" + media)


@pytest.mark.parametrize("media,rc_want,text", [
    # Only a format rtsp-talk has no encoder for: no codec in common.
    ("m=audio 0 RTP/AVP 96\r\na=rtpmap:96 L16/8000\r\na=control:back\r\na=sendonly\r\n", 4, "L16/8000"),
    # The Require tag accepted, but no sendonly section: no back channel.
    ("m=audio 0 RTP/AVP 0\r\na=control:fwd\r\na=recvonly\r\n", 3, "a=sendonly"),
    # SRTP that rtsp-talk cannot do: a clear refusal (exit 1) before SETUP.
    ("m=audio 0 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:%s\r\na=control:back\r\na=sendonly\r\n"
     % base64.b64encode(bytes(46)).decode(), 1, "the crypto suite AES_256_CM_HMAC_SHA1_80"),
    ("m=audio 0 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^20|1:4\r\na=control:back\r\n"
     "a=sendonly\r\n" % base64.b64encode(bytes(30)).decode(), 1, "MKI"),
    ("m=audio 0 RTP/SAVP 0\r\na=key-mgmt:mikey AQAFgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\na=control:back\r\n"
     "a=sendonly\r\n", 1, "MIKEY"),
    # A control URL that would break the SETUP's request line.
    ("m=audio 0 RTP/AVP 0\r\na=control:back channel\r\na=sendonly\r\n", 1, "control URL"),
], ids=["no-encoder", "no-sendonly", "srtp-suite", "srtp-mki", "srtp-mikey", "control-with-space"])
def test_canned_sdp_without_usable_back_channel(sine_wav, media, rc_want, text):
    srv = Canned(lambda method, h: ("200 OK", "Content-Base: rtsp://127.0.0.1/x/\r\n",
                                    canned_sdp(media) if method == "DESCRIBE" else ""))
    rc, _, err, _ = talk(srv.url, "-i", sine_wav, timeout=20)
    srv.close()
    assert rc == rc_want and text in err, (rc, err)
    assert not any(r[0].startswith("SETUP") for r in srv.requests), "SETUP sent anyway"


def test_digest_sha256_preferred(sine_wav):
    """A 401 offering SHA-256 and MD5 (ONVIF-C: one challenge per
    algorithm): rtsp-talk answers with SHA-256, RFC 7616's computation."""
    realm, nonce = "cam", "5f3c9a"
    seen = []

    def handler(method, h):
        auth = h.get("authorization", "")
        if not auth:
            return ("401 Unauthorized",
                    'WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"\r\n'
                    'WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=SHA-256, qop="auth", '
                    'opaque="op"\r\n' % (realm, nonce, realm, nonce), "")
        p = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', auth)}
        H = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
        ha1 = H("admin:%s:pw" % realm)
        ha2 = H("%s:%s" % (method, p.get("uri", "")))
        want = H("%s:%s:%s:%s:%s:%s" % (ha1, nonce, p.get("nc", ""), p.get("cnonce", ""), p.get("qop", ""), ha2))
        ok = p.get("algorithm") == "SHA-256" and p.get("response") == want and p.get("opaque") == "op"
        seen.append((method, ok, auth))
        if not ok:
            return ("401 Unauthorized", 'WWW-Authenticate: Digest realm="%s", nonce="%s"\r\n' % (realm, nonce), "")
        if method == "DESCRIBE":
            return ("551 Option not supported", "Unsupported: www.onvif.org/ver20/backchannel\r\n", "")
        return ("200 OK", "Public: OPTIONS, DESCRIBE\r\n", "")

    srv = Canned(handler)
    rc, _, err, _ = talk("-u", "admin:pw", srv.url, "-i", sine_wav, timeout=20)
    srv.close()
    assert seen and all(ok for _, ok, _ in seen), seen
    assert [m for m, _, _ in seen] == ["OPTIONS", "DESCRIBE"], seen
    assert rc == 3, (rc, err)


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_server_frame(opcode, payload, fin=True):
    """An unmasked server frame (RFC 6455 5.2)."""
    b0 = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return struct.pack(">BB", b0, len(payload)) + payload
    return struct.pack(">BBH", b0, 126, len(payload)) + payload


class CannedWs:
    """A scripted RTSP-over-WebSocket server on one connection. It checks
    nothing itself: it records the handshake and every client frame
    (opcode, payload unmasked, masked?), pings right behind its 101 (in the
    same write), answers OPTIONS in two frames (binary + continuation) and
    then DESCRIBE with 551 ("answer"), or closes with 1001 ("close")."""

    def __init__(self, mode):
        self.mode = mode
        self.frames = []
        self.head = None
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.url = "rtsp://127.0.0.1:%d/x" % self.port
        self.th = threading.Thread(target=self.serve, daemon=True)
        self.th.start()

    def recv_exact(self, c, buf, n):
        while len(buf) < n:
            d = c.recv(65536)
            if not d:
                raise EOFError
            buf += d
        return buf[:n], buf[n:]

    def serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        c.settimeout(15)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            h = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                h[k.strip().lower()] = v.strip()
            self.head = (lines[0], h)
            accept = base64.b64encode(hashlib.sha1((h.get("sec-websocket-key", "") + WS_GUID).encode())
                                      .digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: rtsp.onvif.org\r\n\r\n" % accept)
                      .encode() + ws_server_frame(0x9, b"hi"))
            stream = b""
            while True:
                hdr, buf = self.recv_exact(c, buf, 2)
                op, n, masked = hdr[0] & 0x0F, hdr[1] & 0x7F, bool(hdr[1] & 0x80)
                if n == 126:
                    ext, buf = self.recv_exact(c, buf, 2)
                    n = struct.unpack(">H", ext)[0]
                elif n == 127:
                    ext, buf = self.recv_exact(c, buf, 8)
                    n = struct.unpack(">Q", ext)[0]
                key = b"\0\0\0\0"
                if masked:
                    key, buf = self.recv_exact(c, buf, 4)
                data, buf = self.recv_exact(c, buf, n)
                data = bytes(b ^ key[i & 3] for i, b in enumerate(data))
                self.frames.append((op, data, masked))
                if op == 0x8:
                    break
                if op not in (0x0, 0x1, 0x2):
                    continue
                stream += data
                while b"\r\n\r\n" in stream:
                    req, stream = stream.split(b"\r\n\r\n", 1)
                    method = req.split(b" ", 1)[0]
                    cseq = re.search(rb"CSeq: *(\d+)", req).group(1).decode()
                    if method == b"OPTIONS":
                        ans = ("RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n" % cseq).encode()
                        c.sendall(ws_server_frame(0x2, ans[:10], fin=False) + ws_server_frame(0x0, ans[10:]))
                    elif self.mode == "close":
                        c.sendall(ws_server_frame(0x8, struct.pack(">H", 1001)))
                    else:
                        c.sendall(ws_server_frame(0x2, ("RTSP/1.0 551 Option not supported\r\nCSeq: %s\r\n"
                                                        "Unsupported: www.onvif.org/ver20/backchannel\r\n\r\n"
                                                        % cseq).encode()))
        except (OSError, EOFError, AttributeError):
            pass
        c.close()

    def close(self):
        self.srv.close()
        self.th.join(5)


@pytest.mark.parametrize("mode", ["answer", "close"])
def test_websocket_framing(sine_wav, mode):
    """The client side of RFC 6455 as ONVIF uses it: the handshake (version
    13, subprotocol rtsp.onvif.org, --ws-path), masked binary frames, a
    ping answered with its payload, a response split over a binary and a
    continuation frame, our close (1000) at the end, and a server's close
    echoed and reported."""
    srv = CannedWs(mode)
    rc, _, err, _ = talk("-t", "ws", "--ws-path", "/onvif/ws", srv.url, "-i", sine_wav, timeout=20)
    srv.close()
    line, h = srv.head
    assert line == "GET /onvif/ws HTTP/1.1", line
    assert h.get("upgrade", "").lower() == "websocket" and "upgrade" in h.get("connection", "").lower(), h
    assert h.get("sec-websocket-version") == "13" and h.get("sec-websocket-protocol") == "rtsp.onvif.org", h
    assert h.get("host") == "127.0.0.1:%d" % srv.port, h
    assert srv.frames and all(masked for _, _, masked in srv.frames), "unmasked client frames: %r" % srv.frames
    assert (0xA, b"hi", True) in srv.frames, "no pong for the ping: %r" % srv.frames
    data = b"".join(d for op, d, _ in srv.frames if op == 0x2)
    assert data.startswith(b"OPTIONS rtsp://127.0.0.1:") and b"\r\n\r\nDESCRIBE " in data, data
    closes = [d for op, d, _ in srv.frames if op == 0x8]
    if mode == "answer":
        assert rc == 3 and "551" in err, (rc, err)
        assert closes == [struct.pack(">H", 1000)], srv.frames
    else:
        assert rc == 1 and "DESCRIBE" in err and "the server closed the connection" in err, (rc, err)
        assert closes == [struct.pack(">H", 1001)], srv.frames


def test_bad_url_and_unreachable_exit_1(sine_wav):
    for url in ["http://127.0.0.1/x", "rtsp://", "not a url"]:
        rc, _, err, secs = talk(url, "-i", sine_wav, timeout=20)
        assert rc == 1 and "URL" in err, (url, rc, err)
    port = free_tcp_port()          # nothing listens there
    rc, _, err, secs = talk("rtsp://127.0.0.1:%d/x" % port, "-i", sine_wav, timeout=20)
    assert rc == 1 and "cannot connect" in err, (rc, err)
    assert secs < 3, "a refused connection took %.1f s" % secs
    rc, _, err, secs = talk("rtsp://no-such-host.invalid/x", "-i", sine_wav, timeout=30)
    assert rc == 1 and "no-such-host.invalid" in err, (rc, err)


def test_usage_exits_2(sine_wav):
    for args in [[], ["rtsp://127.0.0.1/x"], ["rtsp://127.0.0.1/x", "-i", sine_wav, "-d", "default"],
                 ["-t", "sctp", "rtsp://127.0.0.1/x", "-i", sine_wav], ["-c", "mp3", "rtsp://127.0.0.1/x", "-i", sine_wav],
                 ["--bogus", "rtsp://127.0.0.1/x", "-i", sine_wav], ["rtsp://a/x", "rtsp://b/y", "-i", sine_wav]]:
        rc, out, err, _ = talk(*args, timeout=10)
        assert rc == 2 and "usage:" in err, (args, rc, err)
    rc, out, _, _ = talk("-h", timeout=10)
    assert rc == 0 and "usage:" in out


def test_missing_input_file_exits_1(tmp_path):
    with Peer(tmp_path) as peer:
        rc, _, err, _ = talk(peer.url, "-i", str(tmp_path / "missing.wav"))
    assert rc == 1 and "missing.wav" in err, (rc, err)
