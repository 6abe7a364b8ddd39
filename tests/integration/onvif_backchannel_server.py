#!/usr/bin/python3
"""An ONVIF back-channel peer for rtsp-talk's tests: gst-rtsp-server's
RTSPOnvifServer serving one stream whose back channel accepts one codec and
writes what it receives, decoded to S16LE mono 8 kHz, into a raw file.

    onvif_backchannel_server.py --out OUT [--codec pcmu|pcma|g722|g726-32[-aal2]|opus|aac]
                                [--port N] [--path /talk] [--digest user:pass]
                                [--no-backchannel] [--session-timeout S]

Prints "READY <port>" on stdout once it serves. --no-backchannel serves a
plain RTSPServer, which answers a DESCRIBE carrying
"Require: www.onvif.org/ver20/backchannel" with 551 Option not supported.

gst-rtsp-server builds the ONVIF media only when: the factory is an
RTSPOnvifMediaFactory with media type RTSPOnvifMedia and is not shared, the
back-channel launch line's first element is named "depay_backchannel", and
its sink has async=false (without them DESCRIBE answers 400). The SDP's
sendonly section is made from that first element's caps, so they carry the
payload type, clock rate and encoding name (and fmtp parameters) offered.
"""

import argparse
import socket
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# codec -> (RTP caps of the back channel, depayloader ! decoder)
CODECS = {
    "pcmu": ("payload=0, clock-rate=8000, encoding-name=PCMU", "rtppcmudepay ! mulawdec"),
    "pcma": ("payload=8, clock-rate=8000, encoding-name=PCMA", "rtppcmadepay ! alawdec"),
    # G.722: RTP clock 8000 although sampled at 16 kHz (RFC 3551 4.5.2)
    "g722": ("payload=9, clock-rate=8000, encoding-name=G722", "rtpg722depay ! avdec_g722"),
    # rtpg726depay's force-aal2 defaults to true: it then reads G726-32 with
    # the AAL2 (MSB-first) packing rather than RFC 3551's; "g726-32-aal2"
    # keeps that default, to test rtsp-talk --g726-aal2.
    "g726-32": ("payload=97, clock-rate=8000, encoding-name=G726-32",
                "rtpg726depay force-aal2=false ! avdec_g726"),
    "g726-32-aal2": ("payload=97, clock-rate=8000, encoding-name=G726-32",
                     "rtpg726depay ! avdec_g726"),
    "opus": ("payload=96, clock-rate=48000, encoding-name=OPUS, encoding-params=(string)2",
             "rtpopusdepay ! opusdec"),
    # AAC-LC 16 kHz mono (AudioSpecificConfig 0x1408), RFC 3640 AAC-hbr
    "aac": ("payload=98, clock-rate=16000, encoding-name=MPEG4-GENERIC, encoding-params=(string)1, "
            "streamtype=(string)5, profile-level-id=(string)1, mode=(string)AAC-hbr, "
            "config=(string)1408, sizelength=(string)13, indexlength=(string)3, "
            "indexdeltalength=(string)3",
            "rtpmp4gdepay ! avdec_aac"),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--codec", default="pcmu", choices=sorted(CODECS))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--path", default="/talk")
    ap.add_argument("--digest", default="", help="user:pass: require Digest authentication")
    ap.add_argument("--no-backchannel", action="store_true")
    ap.add_argument("--session-timeout", type=int, default=0,
                    help="the Session header's timeout (default: gst-rtsp-server's 60)")
    a = ap.parse_args()

    Gst.init(None)
    port = a.port or free_port()
    # The forward stream is not SETUP by a back-channel-only client; when
    # PLAY unblocks it, its first buffer meets an unlinked pad, and without
    # the tee (allow-not-linked) that not-linked error fails the whole media
    # at random, back channel included.
    forward = "( audiotestsrc is-live=1 wave=silence ! audio/x-raw,rate=8000,channels=1 ! " \
              "mulawenc ! tee allow-not-linked=true ! rtppcmupay name=pay0 pt=0 )"

    if a.no_backchannel:
        server = GstRtspServer.RTSPServer()
        factory = GstRtspServer.RTSPMediaFactory()
    else:
        server = GstRtspServer.RTSPOnvifServer()
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia)
        caps, dec = CODECS[a.codec]
        factory.set_backchannel_launch(
            '( capsfilter caps="application/x-rtp, media=audio, %s" name=depay_backchannel ! '
            '%s ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! '
            'filesink location="%s" async=false )' % (caps, dec, a.out))
    factory.set_launch(forward)
    factory.set_shared(False)

    if a.digest:
        user, _, password = a.digest.partition(":")
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_digest(user, password, token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", "media.factory.access", True)
        perms.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perms)

    if a.session_timeout:
        def on_client(_server, client):
            client.connect("new-session", lambda _c, session: session.set_timeout(a.session_timeout))
        server.connect("client-connected", on_client)

    server.set_address("127.0.0.1")
    server.set_service(str(port))
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        print("cannot listen on port %d" % port, file=sys.stderr)
        return 1
    print("READY %d" % port, flush=True)
    try:
        GLib.MainLoop().run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
