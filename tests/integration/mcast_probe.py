"""Helpers test_multicast.py runs inside its network namespace (through
`ip netns exec NS python3 mcast_probe.py ...`), where the server's group
can be joined and the server reached.

  listen GROUP PORT[,PORT...]
      Joins GROUP, counts the datagrams arriving on each PORT until stdin
      closes, then prints a JSON list of [wall-clock time, port, length].
  rtsp PORT PATH TRANSPORT [PLAY_SECONDS] [teardown|drop]
      DESCRIBE rtsp://127.0.0.1:PORT/PATH, SETUP its first track with
      TRANSPORT and prints {"describe": {...}, "setup": {...}} as JSON
      (status, headers, body). With PLAY_SECONDS: PLAY, stay that long,
      then TEARDOWN ("teardown", the default), close the connection
      without one ("drop"), or PAUSE, wait 3 s, then TEARDOWN ("pause";
      "paused" is when the PAUSE was answered); "play" holds the PLAY
      answer.
"""

import json
import select
import socket
import struct
import sys
import time


def listen(group, ports):
    socks = []
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((group, p))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
        s.setblocking(False)
        socks.append((s, p))
    got = []
    print("ready", file=sys.stderr, flush=True)
    fds = [s for s, _ in socks] + [sys.stdin]
    while True:
        r, _, _ = select.select(fds, [], [], 1.0)
        if sys.stdin in r and not sys.stdin.buffer.read1(4096):
            break
        for s, p in socks:
            if s in r:
                while True:
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        break
                    got.append([time.time(), p, len(data)])
    print(json.dumps(got))


class Rtsp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.cseq = 0

    def request(self, method, url, headers=()):
        self.cseq += 1
        lines = ["%s %s RTSP/1.0" % (method, url), "CSeq: %d" % self.cseq] + list(headers)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("utf-8", "replace").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        body, self.buf = self.buf[:n], self.buf[n:]
        return {"status": status, "headers": hdrs, "body": body.decode("utf-8", "replace")}


def rtsp(port, path, transport, play_seconds=None, end="teardown"):
    c = Rtsp(port)
    url = "rtsp://127.0.0.1:%d/%s" % (port, path)
    out = {"describe": c.request("DESCRIBE", url, ["Accept: application/sdp"])}
    base = out["describe"]["headers"].get("content-base", url + "/")
    out["setup"] = c.request("SETUP", base + "trackID=0", ["Transport: " + transport])
    session = out["setup"]["headers"].get("session", "").split(";")[0]
    if session and play_seconds is not None:
        out["play"] = c.request("PLAY", base, ["Session: " + session, "Range: npt=0-"])
        print(json.dumps({"playing": time.time()}), file=sys.stderr, flush=True)
        time.sleep(play_seconds)
        if end == "pause":
            out["pause"] = c.request("PAUSE", base, ["Session: " + session])
            out["paused"] = time.time()
            time.sleep(3)
        if end == "drop":
            out["ended"] = time.time()
            c.sock.close()
            print(json.dumps(out))
            return
    if session:
        out["teardown"] = c.request("TEARDOWN", base, ["Session: " + session])
    out["ended"] = time.time()
    c.sock.close()
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2], [int(p) for p in sys.argv[3].split(",")])
    elif sys.argv[1] == "rtsp":
        rtsp(int(sys.argv[2]), sys.argv[3], sys.argv[4],
             float(sys.argv[5]) if len(sys.argv) > 5 else None,
             sys.argv[6] if len(sys.argv) > 6 else "teardown")
    else:
        sys.exit("usage: see the docstring")
