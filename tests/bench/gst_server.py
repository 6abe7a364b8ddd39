#!/usr/bin/python3
"""gst_server.py PORT FILE [--streams K] [--backlog N] [--address ADDR]

gst-rtsp-server serving FILE (an mp4 with H.264 video and AAC audio) at
rtsp://ADDR:PORT/bench as one shared live broadcast that loops forever:
the reference rtspd is benchmarked against (tests/bench/bench.py). With
--streams K > 1, K independent broadcasts of the same file, at /bench0 ...
/bench<K-1> (zero-padded to the width of K-1), each with its own feeder and
media, as rtspd runs one worker per stream.

What it runs, and why:

- A feeder pipeline, `filesrc ! qtdemux`, with one appsink per track
  (sync=true, so it runs in real time). It loops the file with segment
  seeks: a non-flushing SEGMENT seek back to 0 on every SEGMENT_DONE, so the
  running time goes on growing across loops, with no flush, no re-preroll
  and no gap. (multifilesrc loop=true ! qtdemux does not loop mp4 cleanly,
  and a flushing seek on EOS restarts the running time.) qtdemux starts
  each new loop a little early when the AAC track is offset by its edit
  list (23 ms for the bench file), so the feeder measures that once at
  start-up (calibrate_loop: the file demuxed at full speed, a few ms) and
  moves every loop by it with a pad offset: video frames stay exactly one
  frame interval apart across the loop point.
- One shared media (factory.set_shared(True)) whose pipeline is
      appsrc ! h264parse ! rtph264pay pt=96 config-interval=-1
      appsrc ! aacparse ! rtpmp4gpay pt=97
  with live appsrcs that the feeder pushes every demuxed frame into (the
  same GstMemory, no copy, no transcoding), stamped with the feeder's
  running time moved onto the media pipeline's clock. Passthrough, like
  rtspd: the file's H.264 and AAC frames are packetized as they are.
- The media is constructed and prepared once at start-up and held by this
  process, so the broadcast runs from the start, with or without viewers,
  and every viewer joins the same stream (as rtspd's live file mode does).
  gst-rtsp-server keeps a live media's streams blocked until its first
  PLAY, so frames only flow to the payloaders once a viewer has played.

Settings that differ from gst-rtsp-server's defaults: the listen backlog
(--backlog, default 4096, the value rtspd uses; gst's default is 5), and
nothing else: default thread pool, session pool, protocols (UDP and TCP).

What this adds to gst's own work: the feeder (demuxing, and a Python
callback per frame that re-stamps it and pushes it into the media), about
1% of a core per stream with no viewer. If a media pipeline stops taking
frames (its appsrc holds more than 2 s), frames are dropped there and
"overrun: ..." is logged on stderr, so that a stall shows up in the
bench's notes instead of as silent memory growth.

Prints "READY rtsp://..." on stdout once it accepts connections. SIGTERM or
SIGINT stop it (exit 0); a pipeline error ends it with status 1.
"""

import argparse
import os
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/bench"
TRACKS = ("video", "audio")
# A media pipeline whose clock has drifted further than this from the
# feeder's (it was paused, or started late) is re-based.
REBASE_NS = 500 * Gst.MSECOND
# More than this queued in a media's appsrc means the media pipeline cannot
# keep up: frames are dropped there, and it is logged ("overrun").
MAX_QUEUE_NS = 2 * Gst.SECOND


def log(msg):
    sys.stderr.write("gst_server: %s\n" % msg)
    sys.stderr.flush()


class Demuxer:
    """filesrc ! qtdemux, a queue and an appsink per track (video, audio),
    looping the file with segment seeks. The feeder runs one in real time;
    calibrate_loop() runs one at full speed."""

    def __init__(self, path, sync, on_sample=None):
        self.pipeline = Gst.Pipeline.new("feeder")
        src = Gst.ElementFactory.make("filesrc", "src")
        src.set_property("location", path)
        demux = Gst.ElementFactory.make("qtdemux", "demux")
        self.pipeline.add(src)
        self.pipeline.add(demux)
        src.link(demux)
        self.sinks = {}
        self.queues = {}
        for kind in TRACKS:
            q = Gst.ElementFactory.make("queue", "q_" + kind)
            q.set_property("max-size-time", 2 * Gst.SECOND)
            q.set_property("max-size-buffers", 0)
            q.set_property("max-size-bytes", 0)
            sink = Gst.ElementFactory.make("appsink", "sink_" + kind)
            sink.set_property("sync", sync)
            sink.set_property("max-buffers", 0)
            sink.set_property("drop", False)
            if on_sample:
                sink.set_property("emit-signals", True)
                sink.connect("new-sample", on_sample, kind)
            self.pipeline.add(q)
            self.pipeline.add(sink)
            q.link(sink)
            self.sinks[kind] = sink
            self.queues[kind] = q
        self.demux_pads = []
        demux.connect("pad-added", self._on_pad)

    def _on_pad(self, demux, pad):
        name = pad.get_name()
        for kind in TRACKS:
            if name.startswith(kind + "_") and not self.queues[kind].get_static_pad("sink").is_linked():
                pad.link(self.queues[kind].get_static_pad("sink"))
                self.demux_pads.append(pad)
                return
        # Other tracks (a second audio, subtitles) are not served.
        fake = Gst.ElementFactory.make("fakesink", None)
        fake.set_property("async", False)
        fake.set_property("sync", False)
        self.pipeline.add(fake)
        fake.sync_state_with_parent()
        pad.link(fake.get_static_pad("sink"))

    def preroll(self, timeout_s=10):
        """PAUSED, then the first (flushing) segment seek; returns the caps
        of each track."""
        if self.pipeline.set_state(Gst.State.PAUSED) == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError("the feeder pipeline does not start")
        ret, _, _ = self.pipeline.get_state(timeout_s * Gst.SECOND)
        if ret in (Gst.StateChangeReturn.FAILURE, Gst.StateChangeReturn.ASYNC):
            raise RuntimeError("the feeder pipeline does not preroll (not an mp4 with H.264 and AAC?)")
        # Looping needs a SEGMENT seek; the first one may flush, nothing has played yet.
        if not self.pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT,
                                  Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1):
            raise RuntimeError("the feeder refuses a segment seek")
        ret, _, _ = self.pipeline.get_state(timeout_s * Gst.SECOND)
        if ret == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError("the feeder pipeline does not preroll after the seek")
        caps = {}
        for kind in TRACKS:
            c = self.sinks[kind].get_static_pad("sink").get_current_caps()
            if c is None:
                raise RuntimeError("the file has no %s track" % kind)
            caps[kind] = c
        if caps["video"].get_structure(0).get_name() != "video/x-h264":
            raise RuntimeError("video is %s, not H.264" % caps["video"].to_string())
        if caps["audio"].get_structure(0).get_name() != "audio/mpeg":
            raise RuntimeError("audio is %s, not AAC" % caps["audio"].to_string())
        return caps

    def loop_seek(self, stop=-1):
        return self.pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT, Gst.SeekType.SET, 0,
                                  Gst.SeekType.NONE if stop < 0 else Gst.SeekType.SET, stop)

    def shift_next_loop(self, shift):
        # A pad offset moves the running time of what follows the next
        # segment event, i.e. the next loop, and the appsinks pace by it.
        for pad in self.demux_pads:
            pad.set_offset(pad.get_offset() + shift)

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)


def calibrate_loop(path, timeout_s=10):
    """How far to shift every loop so that no track's next-loop frames start
    before its last frame ends (ns).

    qtdemux advances the running time at each segment loop by what it takes
    as the file's length, and with the usual mp4 edit list for AAC (the
    audio starts one frame late) that is shorter than the video: the next
    loop's first video frame would come 3 to 25 ms after the last one
    instead of 40. This plays the file once and the start of a second loop
    at full speed (a few ms; frames are looked at and dropped, not kept)
    and measures the overlap, per track."""
    lock = threading.Lock()
    prev = {}                 # kind -> (pts, running time where the frame ends)
    shift = [0]

    def on_sample(sink, kind):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        if buf.pts == Gst.CLOCK_TIME_NONE:
            return Gst.FlowReturn.OK
        rt = sample.get_segment().to_running_time(Gst.Format.TIME, buf.pts)
        dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
        with lock:
            p = prev.get(kind)
            if p is not None and p[0] is not None and buf.pts < p[0]:
                shift[0] = max(shift[0], p[1] - rt)
                prev[kind] = (None, 0)        # seen this track's loop point
            elif p is None or p[0] is not None:
                prev[kind] = (buf.pts, rt + dur)
        return Gst.FlowReturn.OK

    d = Demuxer(path, sync=False, on_sample=on_sample)
    try:
        d.preroll(timeout_s)
        bus = d.pipeline.get_bus()
        d.pipeline.set_state(Gst.State.PLAYING)
        want = Gst.MessageType.SEGMENT_DONE | Gst.MessageType.ERROR | Gst.MessageType.EOS
        m = bus.timed_pop_filtered(timeout_s * Gst.SECOND, want)
        if m is None or m.type != Gst.MessageType.SEGMENT_DONE:
            raise RuntimeError("calibration: the file does not loop (no SEGMENT_DONE)")
        d.loop_seek(stop=Gst.SECOND)
        m = bus.timed_pop_filtered(timeout_s * Gst.SECOND, want)
        if m is None or m.type != Gst.MessageType.SEGMENT_DONE:
            raise RuntimeError("calibration: the second loop does not end")
        # Both segments are done; what is still in the queues is the start of
        # loop 2. Wait until every track has been seen crossing the loop.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with lock:
                if all(prev.get(k, (0,))[0] is None for k in TRACKS):
                    break
            time.sleep(0.002)
        return shift[0]
    finally:
        d.stop()


class Feeder:
    """Demuxes FILE in real time, forever, and hands every frame to the
    media pipelines that are registered."""

    def __init__(self, path, on_error):
        self.on_error = on_error
        self.loop_shift = calibrate_loop(path)
        self.demuxer = Demuxer(path, sync=True, on_sample=self._on_sample)
        self.pipeline = self.demuxer.pipeline
        self.lock = threading.Lock()
        self.medias = []          # [MediaTarget]
        self.caps = {}
        self.loops = 0
        self.last_end = {}        # kind -> running time where its last frame ends
        self.overlaps = 0
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    def start(self, timeout_s=10):
        self.caps = self.demuxer.preroll(timeout_s)
        self.pipeline.set_state(Gst.State.PLAYING)

    def stop(self):
        self.demuxer.stop()

    def _on_message(self, bus, msg):
        t = msg.type
        if t == Gst.MessageType.SEGMENT_DONE:
            # Loop: not flushing, so the running time keeps growing.
            self.loops += 1
            if self.loop_shift > 0:
                self.demuxer.shift_next_loop(self.loop_shift)
            if not self.demuxer.loop_seek():
                self.on_error("segment seek for loop %d refused" % self.loops)
        elif t == Gst.MessageType.EOS:
            self.on_error("unexpected EOS in the feeder (the loop broke)")
        elif t == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self.on_error("feeder: %s (%s)" % (err.message, dbg))

    def add(self, target):
        with self.lock:
            self.medias.append(target)

    def remove(self, target):
        with self.lock:
            if target in self.medias:
                self.medias.remove(target)

    def _on_sample(self, sink, kind):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.EOS
        buf = sample.get_buffer()
        seg = sample.get_segment()
        none = Gst.CLOCK_TIME_NONE
        bpts, bdts = buf.pts, buf.dts
        if bpts == none:
            bpts = bdts
        if bpts == none:
            return Gst.FlowReturn.OK
        pts = seg.to_running_time(Gst.Format.TIME, bpts)
        if pts == none:
            return Gst.FlowReturn.OK      # outside the segment
        dts = pts if bdts in (bpts, none) else seg.to_running_time(Gst.Format.TIME, bdts)
        last = self.last_end.get(kind)
        if last is not None and pts + Gst.MSECOND < last:
            self.overlaps += 1
            if self.overlaps <= 5:
                log("%s frame at %.3f s starts %.1f ms before the previous one ends (loop %d)"
                    % (kind, pts / Gst.SECOND, (last - pts) / Gst.MSECOND, self.loops))
        self.last_end[kind] = pts + (buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0)
        with self.lock:
            targets = list(self.medias)
        for t in targets:
            if not t.push(kind, buf, pts, dts):
                self.remove(t)
        return Gst.FlowReturn.OK


class MediaTarget:
    """The two appsrcs of one media pipeline, and the offset from the
    feeder's running time to that pipeline's running time."""

    STREAM_INDEX = {"video": 0, "audio": 1}

    def __init__(self, media, srcs):
        self.media = media
        self.srcs = srcs
        self.base = None
        self.lock = threading.Lock()
        self.dead = False
        self.flowing = {kind: False for kind in srcs}
        self.next_check = {kind: 0 for kind in srcs}
        self.overrun_drops = 0
        self.overrun_logged = 0.0

    def blocked(self, kind):
        """Whether gst-rtsp-server still holds the stream back (a live media
        is blocked after preparing, until its first PLAY)."""
        stream = self.media.get_stream(self.STREAM_INDEX[kind])
        return stream is not None and stream.is_blocking()

    def push(self, kind, buf, pts, dts):
        # Called for every frame of every stream: as few GObject calls as
        # the job allows (this feeder's own CPU counts as gst's).
        if self.dead:
            return False
        src = self.srcs[kind]
        if not self.flowing[kind]:
            if src.get_clock() is None:
                return True           # not PLAYING yet: a live source drops what it misses
            if self.blocked(kind):
                # Nothing flows before the first PLAY: keep one frame queued,
                # not a backlog that the first viewer would get in a burst.
                if src.get_property("current-level-buffers") > 0:
                    return True
            else:
                self.flowing[kind] = True
        if src.get_property("current-level-time") > MAX_QUEUE_NS:
            # The media pipeline does not keep up: say so, do not hide it.
            self.overrun_drops += 1
            now_s = time.monotonic()
            if now_s - self.overrun_logged >= 1.0:
                self.overrun_logged = now_s
                log("overrun: the media pipeline's %s is more than %.1f s behind; %d frames dropped so far"
                    % (kind, MAX_QUEUE_NS / Gst.SECOND, self.overrun_drops))
            return True
        if self.base is None or pts >= self.next_check[kind]:
            # Where the media pipeline's clock is: checked four times a
            # second, it only moves when that pipeline changes state.
            clock = src.get_clock()
            if clock is None:
                return True
            now = clock.get_time() - src.get_base_time()
            with self.lock:
                if self.base is None or abs(pts + self.base - now) > REBASE_NS:
                    self.base = now - pts
            self.next_check[kind] = pts + REBASE_NS // 2
        base = self.base
        out = buf.copy()              # shallow: the same memory, new timestamps
        out.pts = pts + base
        out.dts = dts + base if dts != Gst.CLOCK_TIME_NONE else out.pts
        # FLUSHING while the media changes state is not an error; a media
        # that is gone is dropped through its "unprepared" signal.
        src.emit("push-buffer", out)
        return True


def serve(server, mount, path, fatal):
    """One looping live broadcast of PATH at MOUNT; returns what must stay
    referenced for it to go on (the feeder, the factory, the held media)."""
    feeder = Feeder(path, fatal)
    try:
        feeder.start()
    except RuntimeError:
        feeder.stop()
        raise
    vcaps = feeder.caps["video"]
    acaps = feeder.caps["audio"]

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=vsrc is-live=true format=time do-timestamp=false max-bytes=0 "
        "! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        "appsrc name=asrc is-live=true format=time do-timestamp=false max-bytes=0 "
        "! aacparse ! rtpmp4gpay name=pay1 pt=97 )")
    factory.set_shared(True)
    factory.set_eos_shutdown(False)

    def on_unprepared(media, target):
        target.dead = True
        feeder.remove(target)

    def on_configure(factory_, media):
        bin_ = media.get_element()
        v = bin_.get_by_name("vsrc")
        a = bin_.get_by_name("asrc")
        v.set_property("caps", vcaps)
        a.set_property("caps", acaps)
        target = MediaTarget(media, {"video": v, "audio": a})
        feeder.add(target)
        media.connect("unprepared", on_unprepared, target)

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(mount, factory)
    return feeder, factory


def hold(server, factory, url_text):
    """Construct and prepare the shared media now, and keep it prepared for
    the life of the process: the broadcast runs with no viewer, and every
    viewer gets this one media."""
    res, url = GstRtsp.rtsp_url_parse(url_text)
    if res != GstRtsp.RTSPResult.OK:
        raise RuntimeError("cannot parse %s" % url_text)
    media = factory.construct(url)
    thread = server.get_thread_pool().get_thread(GstRtspServer.RTSPThreadType.MEDIA,
                                                 GstRtspServer.RTSPContext())
    if media is None or thread is None or not media.prepare(thread):
        raise RuntimeError("the shared media of %s does not prepare" % url_text)
    return media


def mounts(streams):
    if streams == 1:
        return [MOUNT]
    width = len(str(streams - 1))
    return ["%s%0*d" % (MOUNT, width, i) for i in range(streams)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("file")
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--streams", type=int, default=1,
                    help="independent broadcasts of FILE: 1 (default) serves /bench; "
                         "K > 1 serves /bench0 .. /bench<K-1> (zero-padded)")
    args = ap.parse_args()
    if not os.path.isfile(args.file):
        log("no such file: %s" % args.file)
        return 2
    if args.streams < 1:
        log("--streams wants 1 or more")
        return 2

    Gst.init(None)
    loop = GLib.MainLoop()
    status = {"rc": 0}

    def fatal(msg):
        log(msg)
        status["rc"] = 1
        loop.quit()

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    server.set_backlog(args.backlog)

    keep = []
    feeders = []
    try:
        for m in mounts(args.streams):
            feeder, factory = serve(server, m, os.path.abspath(args.file), fatal)
            feeders.append(feeder)
            keep.append((m, factory))
    except RuntimeError as e:
        log(str(e))
        for f in feeders:
            f.stop()
        return 1

    if server.attach(None) == 0:
        log("cannot listen on %s:%d" % (args.address, args.port))
        for f in feeders:
            f.stop()
        return 1

    held = []
    try:
        for m, factory in keep:
            held.append(hold(server, factory, "rtsp://%s:%d%s" % (args.address, args.port, m)))
    except RuntimeError as e:
        log(str(e))
        for f in feeders:
            f.stop()
        return 1

    def on_signal():
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_signal)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_signal)

    first = keep[0][0]
    print("READY rtsp://%s:%d%s%s" % (args.address, args.port, first,
                                      "" if len(keep) == 1 else " (+%d more)" % (len(keep) - 1)),
          flush=True)
    try:
        loop.run()
    finally:
        for f in feeders:
            f.stop()
    return status["rc"]


if __name__ == "__main__":
    sys.exit(main())
