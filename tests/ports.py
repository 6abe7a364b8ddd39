"""Free loopback ports for test and benchmark servers (shared by
tests/integration/conftest.py and tests/bench/bench.py)."""

import random
import socket


def free_tcp_port():
    """A TCP port the kernel says is free on 127.0.0.1 right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_udp_base(low, high, span):
    """A base port (multiple of 8) in low..high whose next `span` UDP ports
    are free right now (rtspd takes 8 per session from its base)."""
    for _ in range(200):
        base = random.randrange(low, high - span, 8)
        socks = []
        try:
            for p in range(base, base + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("0.0.0.0", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")
