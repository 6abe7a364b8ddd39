"""The command line: --version, -h, -t (check the config), bad configs."""

import os
import re

from conftest import SANITIZER_RE, Server, require_server_env, rtspd_bin, run


def rtspd(*args, timeout=15):
    require_server_env()
    rc, out, err, _ = run([rtspd_bin()] + list(args), timeout)
    text = out + err
    m = SANITIZER_RE.search(text)
    assert m is None, "sanitizer report:\n" + text[m.start():m.start() + 3000]
    assert rc is not None, "rtspd %s did not exit within %d s" % (" ".join(args), timeout)
    return rc, text


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def good_config(tmp_path):
    """The config the server fixture writes (fresh ports, media dir)."""
    require_server_env()
    return Server(tmp_path / "good").config_path


def test_version():
    rc, out = rtspd("--version")
    assert rc == 0, out
    assert out.strip(), "--version printed nothing"
    assert len(out.strip().splitlines()) <= 5, out


def test_help():
    rc, out = rtspd("-h")
    assert rc == 0, out
    assert "-c" in out and "-t" in out, "usage does not list -c and -t:\n" + out


def test_check_good_config(tmp_path):
    rc, out = rtspd("-t", "-c", good_config(tmp_path))
    assert rc == 0, out


def test_check_unknown_node(tmp_path):
    cfg = write(tmp_path / "bad.cfg",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"   # 1
                "<config>\n"                                     # 2
                "  <rtsp_port>8554</rtsp_port>\n"                # 3
                "  <loop_nums>-1</loop_nums>\n"                  # 4
                "  <no_such_node>1</no_such_node>\n"             # 5
                "</config>\n")
    rc, out = rtspd("-t", "-c", cfg)
    assert rc == 1, "exit %s:\n%s" % (rc, out)
    assert re.search(re.escape(os.path.basename(cfg)) + r":5\b", out), \
        "no FILE:LINE (bad.cfg:5) in:\n" + out
    assert "no_such_node" in out, out


def test_check_out_of_range_value(tmp_path):
    cfg = write(tmp_path / "range.cfg",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<config>\n"
                "  <rtsp_port>70000</rtsp_port>\n"               # 3
                "</config>\n")
    rc, out = rtspd("-t", "-c", cfg)
    assert rc == 1, "exit %s:\n%s" % (rc, out)
    assert re.search(r"range\.cfg:3\b", out) and "rtsp_port" in out, out


def test_check_malformed_xml(tmp_path):
    cfg = write(tmp_path / "broken.cfg", "<config>\n  <rtsp_port>8554</rtsp_port>\n  <loop_nums>\n")
    rc, out = rtspd("-t", "-c", cfg)
    assert rc == 1, "exit %s:\n%s" % (rc, out)
    assert "broken.cfg" in out, out


def test_missing_config_file(tmp_path):
    missing = str(tmp_path / "does-not-exist.cfg")
    rc, out = rtspd("-c", missing, timeout=10)
    assert rc != 0, out
    assert "does-not-exist.cfg" in out, "the message does not name the file:\n" + out
