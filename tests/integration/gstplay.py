"""Play an RTSP URL with GStreamer (rtspsrc ! decodebin per stream) and
count what gets decoded. Prints one JSON object on stdout:

  {"ok": true, "error": null, "eos": false,
   "streams": {"video": {"caps": "video/x-raw, ...", "width": 320, "height": 240,
                         "buffers": 125, "span": 5.0},
               "audio": {"caps": "audio/x-raw, ...", "rate": 44100, "channels": 2,
                         "buffers": 216, "span": 5.0}}}

"buffers" counts decoded buffers whose PTS falls within SECONDS of the
stream's first PTS; "span" is how much stream time (PTS) was decoded, capped at
SECONDS. The run ends when every decoded stream covered SECONDS of stream
time, at EOS, on an error, or after SECONDS + 15 s of wall time.

usage: gstplay.py URL tcp|udp [SECONDS]
"""

import json
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    url, proto = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    Gst.init(None)
    limit = int(seconds * Gst.SECOND)
    pipeline = Gst.Pipeline.new("play")
    src = Gst.ElementFactory.make("rtspsrc", "src")
    src.set_property("location", url)
    src.set_property("protocols", "tcp" if proto == "tcp" else "udp")
    src.set_property("latency", 300)
    # PTS from RTP timestamps only: a burst at start-up (a live stream sends
    # its latest GOP at once) must not squeeze the timeline
    src.set_property("buffer-mode", 0)
    pipeline.add(src)
    lock = threading.Lock()
    streams = {}            # kind -> dict
    expected = [0]          # rtspsrc pads seen (one decoder chain each)
    loop = GLib.MainLoop()
    result = {"ok": False, "error": None, "eos": False, "streams": streams}

    def all_done():
        return (expected[0] > 0 and len(streams) >= expected[0] and
                all(s["span"] >= seconds - 1e-6 for s in streams.values()))

    def on_handoff(sink, buf, pad, kind):
        if buf.pts == Gst.CLOCK_TIME_NONE:
            return
        with lock:
            s = streams[kind]
            if s["first"] is None:
                s["first"] = buf.pts
                caps = pad.get_current_caps()
                if caps:
                    st = caps.get_structure(0)
                    s["caps"] = caps.to_string()
                    for field in ("width", "height", "rate", "channels"):
                        ok, val = st.get_int(field)
                        if ok:
                            s[field] = val
            rel = buf.pts - s["first"]
            if rel < limit:
                s["buffers"] += 1
            dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
            s["span"] = max(s["span"], min(seconds, (rel + dur) / Gst.SECOND))
            done = all_done()
        if done:
            GLib.idle_add(loop.quit)

    def on_decoded_pad(dbin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
        kind = "video" if name.startswith("video/") else "audio" if name.startswith("audio/") else None
        if kind is None:
            return
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)
        sink.set_property("async", False)
        with lock:
            key = kind if kind not in streams else "%s%d" % (kind, len(streams))
            streams[key] = {"caps": None, "buffers": 0, "span": 0.0, "first": None}
        sink.connect("handoff", on_handoff, key)
        pipeline.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_src_pad(rtspsrc, pad):
        dec = Gst.ElementFactory.make("decodebin", None)
        dec.connect("pad-added", on_decoded_pad)
        pipeline.add(dec)
        dec.sync_state_with_parent()
        with lock:
            expected[0] += 1
        pad.link(dec.get_static_pad("sink"))

    src.connect("pad-added", on_src_pad)

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            result["error"] = "%s (%s)" % (err.message, dbg)
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            result["eos"] = True
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)

    def on_timeout():
        result["error"] = result["error"] or "timed out after %.0f s" % (seconds + 15)
        loop.quit()
        return False

    GLib.timeout_add(int((seconds + 15) * 1000), on_timeout)
    start = time.monotonic()
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    result["wall"] = round(time.monotonic() - start, 2)
    with lock:
        for s in streams.values():
            s.pop("first", None)
            s["span"] = round(s["span"], 3)
        result["ok"] = result["error"] is None and bool(streams) and all_done()
        out = json.dumps(result)
    pipeline.set_state(Gst.State.NULL)
    print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
