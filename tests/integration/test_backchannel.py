"""The ONVIF audio back channel, server side.

A client that DESCRIBEs with "Require: www.onvif.org/ver20/backchannel"
gets an a=sendonly audio section; it SETs UP that track, PLAYs, and sends
RTP audio, which rtspd decodes and plays on an ALSA device. Here the
device is an ALSA "file" PCM (defined in an asoundrc under the server's
HOME) that writes what is played into a WAV file, so no sound card is
needed: the tests read that file and measure the tone.

GStreamer is the real client (rtspsrc backchannel=onvif, pushing PCMU
through push-backchannel-sample, see gst_talk.py), over UDP and TCP. A raw
client checks the SDP, the 551 cases, one talker per device (453), that a
talker who disconnects frees the device, and that malformed, oversized,
duplicated and reordered RTP is survived.
"""

import math
import os
import random
import re
import struct
import subprocess
import time
import wave

import pytest

from conftest import ctl_status, rtspctl, run, wait_for
from rtspclient import RtspClient
import tones

TAG = "www.onvif.org/ver20/backchannel"
REQUIRE = {"Require": TAG}
HERE = os.path.dirname(os.path.abspath(__file__))


goertzel = tones.goertzel_power


def dominant(samples, rate, lo=300, hi=3000, step=10):
    return max(range(lo, hi + 1, step), key=lambda f: goertzel(samples, f, rate))


def read_wav(path):
    with wave.open(path) as w:
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        data = struct.unpack("<%dh" % (n * ch), w.readframes(n))
    return rate, list(data[::ch])


def tone_check(path, want=1000, min_seconds=2.5):
    """The audible part of the WAV: its length and its frequency, measured
    over 0.25 s blocks (one loud block is not enough)."""
    assert os.path.exists(path), "nothing was played to the device (%s missing)" % path
    rate, x = read_wav(path)
    block = rate // 4
    loud = [x[i:i + block] for i in range(0, len(x) - block + 1, block)
            if max(abs(v) for v in x[i:i + block]) > 2000]
    seconds = len(loud) * 0.25
    assert seconds >= min_seconds, "only %.2f s of audio reached the device (%d samples at %d Hz)" % (
        seconds, len(x), rate)
    freqs = [dominant(b, rate, want - 200, want + 200, 2) for b in loud[1:-1][:8]]
    for f in freqs:
        assert abs(f - want) <= 20, "dominant frequency %d Hz, want %d ± 20 (blocks: %s)" % (f, want, freqs)
    return seconds


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    d = tmp_path_factory.mktemp("alsa-home")
    out = d / "device.wav"
    (d / ".asoundrc").write_text(
        'pcm.rtspdtest {\n    type file\n    slave.pcm "null"\n    file "%s"\n    format "wav"\n}\n' % out)
    return d


@pytest.fixture(scope="module")
def bc(server_factory, home, tmp_path_factory):
    rec = tmp_path_factory.mktemp("talks")
    srv = server_factory(env={"HOME": str(home)},
                         backchannel="<enable>1</enable><codec>G711U</codec><device>rtspdtest</device>"
                                     "<wav_dir>%s</wav_dir>" % rec)
    srv.device_wav = str(home / "device.wav")
    srv.rec_dir = str(rec)
    return srv


def talk_ended_count(srv):
    return len(re.findall(r"talk ended: \d+ packets played", srv.log_text()))


def wait_device_free(srv, before, timeout=10):
    assert wait_for(lambda: srv.log_text().count("is free") > before, timeout), \
        "the device was not freed:\n" + srv.log_text()[-3000:]


def setup_backchannel(c, path="test", transport="udp"):
    resp, sdp = c.describe(c.url(path), REQUIRE)
    assert resp.status == 200, resp
    idx = [i for i, m in enumerate(sdp.media) if any(n == "sendonly" for n, _ in m.attrs)]
    assert idx, "no a=sendonly section in:\n%s" % resp.body.decode()
    return c.setup(c.track_url(idx[0]), transport, headers=REQUIRE, index=idx[0])


def sdp_sections(body):
    return ["m=" + s for s in body.split("\nm=")[1:]]


# ---------------------------------------------------------------- SDP

def test_sdp_offers_the_back_channel_only_when_asked(bc):
    with RtspClient(port=bc.port) as c:
        resp, sdp = c.describe(c.url("test"), REQUIRE)
        assert resp.status == 200, resp
        body = resp.body.decode()
        secs = sdp_sections(body)
        assert len(secs) == 3, body
        back = secs[2]
        assert "a=sendonly" in back and "a=sendonly" not in secs[0] + secs[1], body
        assert back.startswith("m=audio 0 RTP/AVP 0 "), back   # the config's G711U first
        for rtpmap in ("0 PCMU/8000", "8 PCMA/8000", "9 G722/8000", "G726-32/8000", "mpeg4-generic/16000",
                       "opus/48000/2"):
            assert "a=rtpmap:" in back and rtpmap in back, "%s missing from\n%s" % (rtpmap, back)
        assert "a=control:trackID=2" in back, back
        resp, _ = c.describe(c.url("test"))
        assert resp.status == 200 and "sendonly" not in resp.body.decode()


def test_unknown_require_tag_is_551(bc):
    with RtspClient(port=bc.port) as c:
        resp = c.request("DESCRIBE", c.url("test"), {"Require": TAG + ", x-unknown"})
        assert resp.status == 551, resp
        assert resp.headers.get("Unsupported") == "x-unknown", resp.headers


def test_disabled_back_channel_is_551(server_factory):
    srv = server_factory()
    with RtspClient(port=srv.port) as c:
        resp = c.request("DESCRIBE", c.url("test"), REQUIRE)
        assert resp.status == 551, resp
        assert resp.headers.get("Unsupported") == TAG, resp.headers
        assert c.request("DESCRIBE", c.url("test")).status == 200


# ---------------------------------------------------------------- GStreamer

@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_gstreamer_talks(bc, proto):
    before = talk_ended_count(bc)
    freed = bc.log_text().count("is free")
    recorded = set(os.listdir(bc.rec_dir))
    rc, out, err, _ = run([HERE + "/gst_talk.py", bc.url("test"), proto, "3"], 60)
    assert rc == 0, "gst_talk over %s: rc=%s\n%s\n%s" % (proto, rc, out, err[-2000:])
    assert "pushed 150" in out, out
    wait_device_free(bc, freed)
    assert talk_ended_count(bc) == before + 1
    tone_check(bc.device_wav)
    # the latency from a packet's arrival to ALSA, as the talk process measured it
    m = re.findall(r"talk ended: (\d+) packets played, (\d+) lost.*?avg (\d+) ms, max (\d+) ms", bc.log_text())[-1]
    played, lost, avg, mx = map(int, m)
    assert played >= 140 and lost <= 3, m
    assert mx < 150, "latency from arrival to ALSA: avg %d ms, max %d ms" % (avg, mx)
    # the recording of the same talk
    new = sorted(set(os.listdir(bc.rec_dir)) - recorded)
    assert len(new) == 1 and new[0].startswith("talk-") and new[0].endswith(".wav"), new
    tone_check(os.path.join(bc.rec_dir, new[0]))


def test_status_shows_the_talker(bc):
    freed = bc.log_text().count("is free")
    p = subprocess.Popen([HERE + "/gst_talk.py", bc.url("test"), "tcp", "4"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        def talking():
            st = ctl_status(bc)
            t = st.get("talkers", []) if st else []
            return t and t[0]["packets"] > 20 and t
        talkers = wait_for(talking, 10)
        assert talkers, "no talker in rtspctl status: %s" % ctl_status(bc)
        t = talkers[0]
        assert t["device"] == "rtspdtest" and t["codec"] == "PCMU" and t["stream"] == "test", t
        assert re.match(r"127\.0\.0\.1:\d+$", t["client"]) and t["lost"] == 0, t
        rc, text, err = rtspctl(bc, "status")
        assert rc == 0 and "TALK DEVICE" in text and "rtspdtest" in text, text + err
    finally:
        p.communicate(timeout=30)
    wait_device_free(bc, freed)
    assert ctl_status(bc)["talkers"] == []


# ---------------------------------------------------------------- one talker per device

def test_second_talker_gets_453_until_the_first_leaves(bc):
    freed = bc.log_text().count("is free")
    a = RtspClient(port=bc.port)
    b = RtspClient(port=bc.port)
    try:
        assert setup_backchannel(a).status == 200
        r = setup_backchannel(b)
        assert r.status == 453, r
        # B's connection still works after the refusal
        assert b.options().status == 200
        # A disconnects without TEARDOWN: the device is freed at once
        a.close()
        wait_device_free(bc, freed, timeout=5)
        assert setup_backchannel(b).status == 200
        assert b.play().status == 200
    finally:
        a.close()
        b.teardown()
        b.close()
    wait_device_free(bc, freed + 1)


def test_talking_again_right_after_teardown_is_not_453(bc):
    """A talker TEARs DOWN and the next one sets up at once: it waits for
    the talk process to play out what it holds instead of getting 453,
    while a SETUP against a device still talking gets 453 at once."""
    freed = bc.log_text().count("is free")
    rounds = 3
    a = RtspClient(port=bc.port)
    try:
        assert setup_backchannel(a, transport="tcp").status == 200
        for k in range(rounds):
            ch = a.tracks[0].transport["interleaved"][0]
            assert a.play().status == 200
            for i in range(25):   # half a second of audio to play out
                pkt = rtp(i, 160 * i, mulaw_tone(160, start=160 * i))
                a.send_raw(b"$" + bytes([ch]) + struct.pack(">H", len(pkt)) + pkt)
            assert a.teardown().status == 200
            b = RtspClient(port=bc.port)
            r = setup_backchannel(b, transport="tcp")
            assert r.status == 200, "SETUP right after the previous talker's TEARDOWN: %s" % r
            t0 = time.monotonic()
            with RtspClient(port=bc.port) as other:
                r = setup_backchannel(other, transport="tcp")
                assert r.status == 453, r
            assert time.monotonic() - t0 < 1.0, "453 for a device in use must come at once"
            a.close()
            a = b
    finally:
        a.teardown()
        a.close()
    wait_device_free(bc, freed + rounds)


def test_silent_udp_talker_times_out_and_frees_the_device(server_factory, home):
    """A UDP talker that stops sending (and sends no keep-alive) while its
    RTSP connection stays open loses its session after the session
    timeout, and the device is free for the next one."""
    srv = server_factory(env={"HOME": str(home)}, session_timeout=5,
                         backchannel="<enable>1</enable><device>rtspdtest</device>")
    with RtspClient(port=srv.port) as a, RtspClient(port=srv.port) as b:
        assert setup_backchannel(a).status == 200
        assert a.play().status == 200
        assert setup_backchannel(b).status == 453
        t0 = time.monotonic()
        assert wait_for(lambda: "is free" in srv.log_text(), 15), srv.log_text()[-3000:]
        assert time.monotonic() - t0 >= 4.0, "freed before the session timeout"
        b2 = RtspClient(port=srv.port)
        try:
            assert setup_backchannel(b2).status == 200
        finally:
            b2.teardown()
            b2.close()


def test_udp_talker_kept_alive_by_its_audio_alone(server_factory, home):
    """A UDP talker that sends audio and no RTSP request for longer than
    the session timeout keeps its session, its RTSP connection and the
    device."""
    srv = server_factory(env={"HOME": str(home)}, session_timeout=5,
                         backchannel="<enable>1</enable><device>rtspdtest</device>")
    with RtspClient(port=srv.port) as a:
        assert setup_backchannel(a).status == 200
        assert a.play().status == 200
        rtp_sock, _, track = a.udp[0]
        sp = track.transport["server_port"]
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 8:
            rtp_sock.sendto(rtp(i, 160 * i, mulaw_tone(160, start=160 * i)), ("127.0.0.1", sp[0]))
            i += 1
            time.sleep(max(0, t0 + i * 0.02 - time.monotonic()))
        assert "is free" not in srv.log_text(), srv.log_text()[-3000:]
        assert a.get_parameter().status == 200
        with RtspClient(port=srv.port) as b:
            assert setup_backchannel(b).status == 453
        a.teardown()
    assert wait_for(lambda: "is free" in srv.log_text(), 10)


def test_missing_alsa_device_is_503_and_the_stream_plays_on(server_factory, home):
    """A device ALSA cannot open: SETUP gets 503 naming ALSA's reason,
    the log says why, the next SETUP gets the same answer, and the video
    stream of the same worker plays on."""
    srv = server_factory(env={"HOME": str(home)},
                         backchannel="<enable>1</enable><device>no_such_pcm</device>")
    with RtspClient(port=srv.port) as c:
        for _ in range(2):
            r = setup_backchannel(c)
            assert r.status == 503, r
            assert "no_such_pcm" in r.headers.get("X-Reason", "") + r.reason + r.body.decode(errors="replace") \
                or "no_such_pcm" in srv.log_text()
    assert re.search(r"back channel refused: .*no_such_pcm", srv.log_text()), srv.log_text()[-3000:]
    with RtspClient(port=srv.port) as v:
        v.start("test", "tcp")
        v.receive(1.0)
        assert v.tracks[0].packets > 0
    assert srv.alive()


# ---------------------------------------------------------------- bad input

def rtp(seq, ts, payload, pt=0, ssrc=0x1234, pad=0, version=2):
    b0 = version << 6 | (0x20 if pad else 0)
    body = payload + (bytes(pad - 1) + bytes([pad]) if pad else b"")
    return struct.pack(">BBHII", b0, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + body


def mulaw_tone(n, freq=1000, rate=8000, start=0):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    pcm = struct.pack("<%dh" % n, *(int(12000 * math.sin(2 * math.pi * freq * (start + i) / rate))
                                    for i in range(n)))
    return audioop.lin2ulaw(pcm, 2)


def test_malformed_and_reordered_rtp_is_survived(bc):
    """Over TCP interleaved: frames too short, of RTP version 1, with
    padding longer than the packet, of an unknown payload type, oversized,
    duplicated, then two seconds of tone sent in shuffled pairs. The talk
    goes on, the tone comes out, the stream still plays."""
    freed = bc.log_text().count("is free")
    with RtspClient(port=bc.port) as c:
        assert setup_backchannel(c, transport="tcp").status == 200
        ch = c.tracks[0].transport["interleaved"][0]

        def send(pkt):
            c.send_raw(b"$" + bytes([ch]) + struct.pack(">H", len(pkt)) + pkt)

        send(rtp(1, 0, b"early: before PLAY"))
        assert c.play().status == 200
        for bad in (b"\x80\x00", rtp(2, 160, b"x" * 160, version=1), b"\xa0\x00" + bytes(10) + b"\xff",
                    rtp(3, 320, b"y" * 160, pt=77), rtp(4, 480, os.urandom(4000)), os.urandom(300)):
            send(bad)
        pkts = [rtp(10 + i, 1000 + 160 * i, mulaw_tone(160, start=160 * i)) for i in range(100)]
        order = list(range(100))
        for i in range(0, 98, 2):
            if random.random() < 0.5:
                order[i], order[i + 1] = order[i + 1], order[i]
        t0 = time.monotonic()
        for k, i in enumerate(order):
            send(pkts[i])
            if k % 7 == 0:
                send(pkts[i])   # a duplicate
            delay = t0 + (k + 1) * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        assert c.options().status == 200
        c.teardown()
    wait_device_free(bc, freed)
    m = re.findall(r"talk ended: (\d+) packets played, (\d+) lost, (\d+) late, (\d+) duplicates, (\d+) malformed",
                   bc.log_text())[-1]
    played, lost, late, dups, malformed = map(int, m)
    assert played >= 95 and dups >= 10 and malformed >= 2, m
    tone_check(bc.device_wav, min_seconds=1.5)
    assert "sent before PLAY (ignored)" in bc.log_text()
    # the worker and the stream are fine
    with RtspClient(port=bc.port) as c:
        c.start("test", "tcp")
        c.receive(1.0)
        assert c.tracks[0].packets > 0
