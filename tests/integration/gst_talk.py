#!/usr/bin/python3
"""GStreamer as an ONVIF back-channel client: rtspsrc backchannel=onvif
plays the stream and pushes a sine, encoded as PCMU and payloaded by
rtppcmupay, into the back channel with the push-backchannel-sample action
signal.

    gst_talk.py URL udp|tcp SECONDS [FREQ]

Prints "backchannel-stream N", "pushed N" and "flow-errors N" on stdout;
exit 0 when the back channel was found and every push was accepted, 3
when the server offered no back channel.
"""
import os
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    url, proto, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    freq = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    Gst.init(None)
    pipe = Gst.Pipeline()
    src = Gst.ElementFactory.make("rtspsrc")
    src.set_property("location", url)
    src.set_property("backchannel", "onvif")
    src.set_property("protocols", proto)
    src.set_property("latency", 0)
    pipe.add(src)
    state = {"bc": None, "pushed": 0, "errors": 0, "keep": []}

    def on_select(_src, num, caps):
        if caps.get_structure(0).has_field("a-sendonly"):
            state["bc"] = num
            print("backchannel-stream %d %s" % (num, caps.get_structure(0).to_string()), flush=True)
        return True

    def on_pad(_src, pad):
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("async", False)
        pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    src.connect("select-stream", on_select)
    src.connect("pad-added", on_pad)
    # 20 ms packets of 8 kHz PCMU, as a camera's talk button would send.
    gen = Gst.parse_launch(
        "audiotestsrc is-live=true freq=%d volume=0.5 samplesperbuffer=160 num-buffers=%d ! "
        "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay ! appsink name=out emit-signals=true sync=false"
        % (freq, int(secs * 50)))
    out = gen.get_by_name("out")

    def on_sample(sink):
        sample = sink.emit("pull-sample")
        if state["bc"] is None:
            return Gst.FlowReturn.OK
        # A fresh sample that stays referenced here: rtspsrc drops a
        # reference of its own when it is done with it.
        fresh = Gst.Sample.new(sample.get_buffer().copy(), sample.get_caps(), None, None)
        state["keep"].append(fresh)
        r = src.emit("push-backchannel-sample", state["bc"], fresh)
        state["pushed"] += 1
        if r != Gst.FlowReturn.OK:
            state["errors"] += 1
        return Gst.FlowReturn.OK

    out.connect("new-sample", on_sample)
    loop = GLib.MainLoop()
    bus = pipe.get_bus()
    bus.add_signal_watch()

    def on_error(_bus, msg):
        err, dbg = msg.parse_error()
        print("error %s %s" % (err, dbg), flush=True)
        loop.quit()

    bus.connect("message::error", on_error)
    pipe.set_state(Gst.State.PLAYING)

    def start_talking():
        if state["bc"] is None:
            print("no back channel offered", flush=True)
            loop.quit()
            return False
        gen.set_state(Gst.State.PLAYING)
        return False

    GLib.timeout_add(1500, start_talking)
    GLib.timeout_add(int((secs + 2.5) * 1000), loop.quit)
    loop.run()
    print("pushed %d" % state["pushed"], flush=True)
    print("flow-errors %d" % state["errors"], flush=True)
    gen.set_state(Gst.State.NULL)
    pipe.set_state(Gst.State.NULL)   # TEARDOWN
    code = 3 if state["bc"] is None else 0 if state["pushed"] and not state["errors"] else 1
    os._exit(code)   # the kept samples are not unreffed behind rtspsrc's back


if __name__ == "__main__":
    main()
