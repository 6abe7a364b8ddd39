/* test_config.c — unit tests of the rtspserver.cfg parser (common/config.c).
 *
 * Most cases load a document from memory under the name "x.cfg", so that
 * the expected messages read exactly like what a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

#define ERRLEN 512

/* Every node, in Happytime's spelling where it has one (the line numbers of
 * the <output>, <proxy> and <pusher> nodes are checked below). */
static const char full_happytime_cfg[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<config>\n"
	"\t<serverip>192.168.1.10</serverip>\n"
	"\t<serverport>8554</serverport>\n"
	"\t<rtsp_enable>1</rtsp_enable>\n"
	"\t<rtsp_port>8322</rtsp_port>\n"
	"\t<rtsp_cert>ssl.ca</rtsp_cert>\n"
	"\t<rtsp_key>ssl.key</rtsp_key>\n"
	"\t<loop_nums>3</loop_nums>\n"
	"\t<multicast>yes</multicast>\n"
	"\t<udp_base_port>30000</udp_base_port>\n"
	"\t<metadata>TRUE</metadata>\n"
	"\t<rtsp_over_http>1</rtsp_over_http>\n"
	"\t<http_port>8080</http_port>\n"
	"\t<rtsp_over_https>on</rtsp_over_https>\n"
	"\t<https_port>8443</https_port>\n"
	"\t<https_cert>https.crt</https_cert>\n"
	"\t<https_key>https.key</https_key>\n"
	"\t<ipv6_enable>1</ipv6_enable>\n"
	"\t<need_auth>1</need_auth>\n"
	"\t<log_enable>0</log_enable>\n"
	"\t<log_level> 4 </log_level>\n"
	"\t<http_notify>\n"
	"\t\t<enable>1</enable>\n"
	"\t\t<notify_url>http://127.0.0.1:9000/hook</notify_url>\n"
	"\t\t<notify_method>get</notify_method>\n"
	"\t\t<on_connect>1</on_connect>\n"
	"\t\t<on_play>1</on_play>\n"
	"\t\t<on_publish>0</on_publish>\n"
	"\t\t<on_done>1</on_done>\n"
	"\t\t<timeout_ms>1500</timeout_ms>\n"
	"\t</http_notify>\n"
	"\t<user>\n"
	"\t\t<username>admin</username>\n"
	"\t\t<password>secret</password>\n"
	"\t</user>\n"
	"\t<user>\n"
	"\t\t<username>viewer</username>\n"
	"\t\t<password></password>\n"
	"\t</user>\n"
	"\t<output>\n"
	"\t\t<url>screenlive</url>\n"
	"\t\t<video>\n"
	"\t\t\t<codec>h265</codec>\n"
	"\t\t\t<width>1920</width>\n"
	"\t\t\t<height>1080</height>\n"
	"\t\t\t<framerate>30</framerate>\n"
	"\t\t\t<bitrate>4000</bitrate>\n"
	"\t\t</video>\n"
	"\t\t<audio>\n"
	"\t\t\t<codec>pcmu</codec>\n"
	"\t\t\t<samplerate>8000</samplerate>\n"
	"\t\t\t<channels>1</channels>\n"
	"\t\t\t<bitrate>64</bitrate>\n"
	"\t\t</audio>\n"
	"\t</output>\n"
	"\t<output>\n"
	"\t\t<url></url>\n"
	"\t\t<video><codec>H264</codec></video>\n"
	"\t\t<audio><codec>AAC</codec><samplerate>44100</samplerate><channels>2</channels></audio>\n"
	"\t</output>\n"
	"\t<proxy>\n"
	"\t\t<suffix>cam1</suffix>\n"
	"\t\t<url>rtsp://10.0.0.5/stream1</url>\n"
	"\t\t<user>admin</user>\n"
	"\t\t<pass>pw</pass>\n"
	"\t\t<transfer>udp</transfer>\n"
	"\t\t<ondemand>1</ondemand>\n"
	"\t\t<output>\n"
	"\t\t\t<video><codec>JPEG</codec><width>640</width><height>480</height></video>\n"
	"\t\t</output>\n"
	"\t</proxy>\n"
	"\t<pusher>\n"
	"\t\t<suffix>pusher1</suffix>\n"
	"\t\t<video><codec>H264</codec></video>\n"
	"\t\t<audio><codec>G711</codec><samplerate>8000</samplerate><channels>1</channels></audio>\n"
	"\t\t<transfer>\n"
	"\t\t\t<mode>UDP</mode>\n"
	"\t\t\t<ip>10.0.0.1</ip>\n"
	"\t\t\t<vport>50001</vport>\n"
	"\t\t\t<aport>50002</aport>\n"
	"\t\t</transfer>\n"
	"\t\t<srtp>1</srtp>\n"
	"\t\t<output>\n"
	"\t\t\t<audio><codec>OPUS</codec><samplerate>48000</samplerate></audio>\n"
	"\t\t</output>\n"
	"\t</pusher>\n"
	"\t<pusher>\n"
	"\t\t<suffix>/pusher2</suffix>\n"
	"\t\t<video><codec>mp4</codec></video>\n"
	"\t\t<transfer>TCP</transfer>\n"
	"\t\t<vport>50003</vport>\n"
	"\t</pusher>\n"
	"\t<backchannel>\n"
	"\t\t<codec>PCMA</codec>\n"
	"\t\t<samplerate>8000</samplerate>\n"
	"\t\t<channels>1</channels>\n"
	"\t\t<device>hw:1,0</device>\n"
	"\t</backchannel>\n"
	"\t<media_dir>/srv/media</media_dir>\n"
	"\t<file_mode>LIVE</file_mode>\n"
	"\t<control_socket>/tmp/rtspd-test.sock</control_socket>\n"
	"\t<session_timeout>120</session_timeout>\n"
	"\t<worker_idle_timeout>0</worker_idle_timeout>\n"
	"\t<max_sessions>500</max_sessions>\n"
	"\t<slow_viewer_timeout>5</slow_viewer_timeout>\n"
	"\t<ring_size_kb>4096</ring_size_kb>\n"
	"\t<multicast_group_base>232.10.0.0</multicast_group_base>\n"
	"\t<multicast_port_base>30000</multicast_port_base>\n"
	"\t<multicast_ttl>4</multicast_ttl>\n"
	"\t<srtp_over_plain_rtsp>1</srtp_over_plain_rtsp>\n"
	"</config>\n";

static int load(const char *xml, struct rtspd_config *c, char *err)
{
	return config_load_buffer(xml, strlen(xml), "x.cfg", c, err, ERRLEN);
}

static bool all_zero(const struct rtspd_config *c)
{
	static const struct rtspd_config zero;
	return memcmp(c, &zero, sizeof zero) == 0;
}

/* Load `xml`, expect it to fail with `rc` and a single-line message that
 * contains `expected`; the config must be left zeroed. */
#define expect_error(xml, rc, expected) expect_error_at(xml, rc, expected, __LINE__)
static void expect_error_at(const char *xml, int rc, const char *expected, int line)
{
	struct rtspd_config c;
	char err[ERRLEN];
	memset(&c, 0x5a, sizeof c);
	int got = load(xml, &c, err);
	if (got != rc)
		fail_msg("line %d: rc %d, expected %d (err: %s)", line, got, rc, err);
	if (!strstr(err, expected))
		fail_msg("line %d: message \"%s\" does not contain \"%s\"", line, err, expected);
	if (strchr(err, '\n'))
		fail_msg("line %d: message spans several lines: \"%s\"", line, err);
	if (!all_zero(&c))
		fail_msg("line %d: config not zeroed after a failed load", line);
	config_free(&c);
}

static struct rtspd_config load_ok_at(const char *xml, int line)
{
	struct rtspd_config c;
	char err[ERRLEN];
	int rc = load(xml, &c, err);
	if (rc != 0)
		fail_msg("line %d: rc %d: %s", line, rc, err);
	return c;
}
#define load_ok(xml) load_ok_at(xml, __LINE__)

/* Write `text` to a new temporary file; returns its path (static). */
static const char *write_temp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/test_config_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
	struct rtspd_config c;
	memset(&c, 0x5a, sizeof c);
	config_defaults(&c);
	assert_string_equal(c.source_path, "");
	assert_string_equal(c.serverip, "");
	assert_int_equal(c.rtsp_port, 554);
	assert_false(c.rtsps_enable);
	assert_int_equal(c.rtsps_port, 322);
	assert_int_equal(c.loop_nums, -1);
	assert_false(c.multicast);
	assert_int_equal(c.udp_base_port, 22000);
	assert_int_equal(c.http_port, 80);
	assert_int_equal(c.https_port, 443);
	assert_false(c.need_auth);
	assert_true(c.log_enable);
	assert_int_equal(c.log_level, 2);
	assert_false(c.http_notify.enable);
	assert_int_equal(c.http_notify.method, NOTIFY_POST);
	assert_int_equal(c.http_notify.timeout_ms, 3000);
	assert_false(c.backchannel.enable);
	assert_string_equal(c.backchannel.device, "default");
	assert_null(c.users);
	assert_int_equal(c.nusers + c.noutputs + c.nproxies + c.npushers, 0);
	assert_string_equal(c.media_dir, ".");
	assert_int_equal(c.file_mode, FILE_MODE_ONDEMAND);
	assert_string_equal(c.control_socket, "/run/rtspd/control.sock");
	assert_int_equal(c.session_timeout, 60);
	assert_int_equal(c.worker_idle_timeout, 10);
	assert_int_equal(c.max_sessions, 10000);
	assert_int_equal(c.slow_viewer_timeout, 10);
	assert_int_equal(c.ring_size_kb, 8192);
	assert_string_equal(c.multicast_group_base, "232.0.1.0");
	assert_int_equal(c.multicast_port_base, 26000);
	assert_int_equal(c.multicast_ttl, 16);
	assert_false(c.srtp_over_plain_rtsp);
	assert_int_equal(config_unsupported(&c, NULL, NULL), 0);
	config_free(&c);
}

/* An empty <config> and empty nodes change nothing. */
static void test_empty_config_is_defaults(void **state)
{
	struct rtspd_config d;
	config_defaults(&d);
	snprintf(d.source_path, sizeof d.source_path, "x.cfg");

	struct rtspd_config c = load_ok("<config/>");
	assert_memory_equal(&c, &d, sizeof c);
	config_free(&c);

	c = load_ok("<?xml version=\"1.0\"?>\n<config>\n"
		    "<serverip></serverip><rtsp_port/><loop_nums> </loop_nums>\n"
		    "<multicast></multicast><file_mode/><media_dir>\n\t\n</media_dir>\n"
		    "<control_socket></control_socket><!-- a comment -->\n"
		    "</config>\n");
	assert_memory_equal(&c, &d, sizeof c);
	config_free(&c);
}

static void test_full_happytime_file(void **state)
{
	const char *path = write_temp(full_happytime_cfg);
	struct rtspd_config c;
	char err[ERRLEN];
	int rc = config_load(path, &c, err, sizeof err);
	unlink(path);
	if (rc)
		fail_msg("%s", err);

	assert_string_equal(c.source_path, path);
	assert_string_equal(c.serverip, "192.168.1.10");
	assert_int_equal(c.rtsp_port, 8554);
	assert_true(c.rtsps_enable);
	assert_int_equal(c.rtsps_port, 8322);
	assert_string_equal(c.rtsps_cert, "ssl.ca");
	assert_string_equal(c.rtsps_key, "ssl.key");
	assert_int_equal(c.loop_nums, 3);
	assert_true(c.multicast);
	assert_int_equal(c.udp_base_port, 30000);
	assert_true(c.metadata);
	assert_true(c.rtsp_over_http);
	assert_int_equal(c.http_port, 8080);
	assert_true(c.rtsp_over_https);
	assert_int_equal(c.https_port, 8443);
	assert_string_equal(c.https_cert, "https.crt");
	assert_string_equal(c.https_key, "https.key");
	assert_true(c.ipv6_enable);
	assert_true(c.need_auth);
	assert_false(c.log_enable);
	assert_int_equal(c.log_level, 4);

	assert_true(c.http_notify.enable);
	assert_string_equal(c.http_notify.url, "http://127.0.0.1:9000/hook");
	assert_int_equal(c.http_notify.method, NOTIFY_GET);
	assert_true(c.http_notify.on_connect);
	assert_true(c.http_notify.on_play);
	assert_false(c.http_notify.on_publish);
	assert_true(c.http_notify.on_done);
	assert_int_equal(c.http_notify.timeout_ms, 1500);

	assert_int_equal(c.nusers, 2);
	assert_string_equal(c.users[0].username, "admin");
	assert_string_equal(c.users[0].password, "secret");
	assert_string_equal(c.users[1].username, "viewer");
	assert_string_equal(c.users[1].password, "");

	assert_int_equal(c.noutputs, 2);
	assert_int_equal(c.outputs[0].line, 41);
	assert_string_equal(c.outputs[0].url, "screenlive");
	assert_string_equal(c.outputs[0].video.codec, "H265");
	assert_int_equal(c.outputs[0].video.width, 1920);
	assert_int_equal(c.outputs[0].video.height, 1080);
	assert_int_equal(c.outputs[0].video.framerate, 30);
	assert_int_equal(c.outputs[0].video.bitrate, 4000);
	assert_string_equal(c.outputs[0].audio.codec, "G711U");
	assert_int_equal(c.outputs[0].audio.samplerate, 8000);
	assert_int_equal(c.outputs[0].audio.channels, 1);
	assert_int_equal(c.outputs[0].audio.bitrate, 64);
	assert_int_equal(c.outputs[1].line, 57);
	assert_string_equal(c.outputs[1].url, "");
	assert_string_equal(c.outputs[1].video.codec, "H264");
	assert_int_equal(c.outputs[1].video.width, 0);
	assert_string_equal(c.outputs[1].audio.codec, "AAC");
	assert_int_equal(c.outputs[1].audio.samplerate, 44100);
	assert_int_equal(c.outputs[1].audio.channels, 2);

	assert_int_equal(c.nproxies, 1);
	assert_int_equal(c.proxies[0].line, 62);
	assert_string_equal(c.proxies[0].suffix, "cam1");
	assert_string_equal(c.proxies[0].url, "rtsp://10.0.0.5/stream1");
	assert_string_equal(c.proxies[0].user, "admin");
	assert_string_equal(c.proxies[0].pass, "pw");
	assert_int_equal(c.proxies[0].transfer, TRANSFER_UDP);
	assert_true(c.proxies[0].ondemand);
	assert_true(c.proxies[0].has_output);
	assert_int_equal(c.proxies[0].output.line, 69);
	assert_string_equal(c.proxies[0].output.url, "");
	assert_string_equal(c.proxies[0].output.video.codec, "JPEG");
	assert_int_equal(c.proxies[0].output.video.width, 640);
	assert_int_equal(c.proxies[0].output.video.height, 480);

	assert_int_equal(c.npushers, 2);
	const struct cfg_pusher *p1 = &c.pushers[0], *p2 = &c.pushers[1];
	assert_int_equal(p1->line, 73);
	assert_string_equal(p1->suffix, "pusher1");
	assert_string_equal(p1->video.codec, "H264");
	assert_string_equal(p1->audio.codec, "G711A");
	assert_int_equal(p1->audio.samplerate, 8000);
	assert_int_equal(p1->audio.channels, 1);
	assert_int_equal(p1->transfer, TRANSFER_UDP);
	assert_string_equal(p1->ip, "10.0.0.1");
	assert_int_equal(p1->vport, 50001);
	assert_int_equal(p1->aport, 50002);
	assert_true(p1->srtp);
	assert_true(p1->has_output);
	assert_int_equal(p1->output.line, 84);
	assert_string_equal(p1->output.audio.codec, "OPUS");
	assert_int_equal(p1->output.audio.samplerate, 48000);
	assert_int_equal(p2->line, 88);
	assert_string_equal(p2->suffix, "pusher2");     /* leading '/' dropped */
	assert_string_equal(p2->video.codec, "MP4");
	assert_int_equal(p2->transfer, TRANSFER_TCP);
	assert_int_equal(p2->vport, 50003);
	assert_int_equal(p2->aport, 0);
	assert_false(p2->srtp);
	assert_false(p2->has_output);

	assert_true(c.backchannel.enable);
	assert_string_equal(c.backchannel.audio.codec, "G711A");
	assert_int_equal(c.backchannel.audio.samplerate, 8000);
	assert_int_equal(c.backchannel.audio.channels, 1);
	assert_string_equal(c.backchannel.device, "hw:1,0");

	assert_string_equal(c.media_dir, "/srv/media");
	assert_int_equal(c.file_mode, FILE_MODE_LIVE);
	assert_string_equal(c.control_socket, "/tmp/rtspd-test.sock");
	assert_int_equal(c.session_timeout, 120);
	assert_int_equal(c.worker_idle_timeout, 0);
	assert_int_equal(c.max_sessions, 500);
	assert_int_equal(c.slow_viewer_timeout, 5);
	assert_int_equal(c.ring_size_kb, 4096);
	assert_string_equal(c.multicast_group_base, "232.10.0.0");
	assert_int_equal(c.multicast_port_base, 30000);
	assert_int_equal(c.multicast_ttl, 4);
	assert_true(c.srtp_over_plain_rtsp);

	config_free(&c);
	config_free(&c);        /* safe twice */
	assert_null(c.users);
	assert_null(c.pushers);
	assert_int_equal(c.nusers + c.noutputs + c.nproxies + c.npushers, 0);
}

static void test_clear_spelling(void **state)
{
	struct rtspd_config c = load_ok(
		"<config>\n"
		"  <rtsp_port>8554</rtsp_port>\n"
		"  <rtsps_enable>1</rtsps_enable>\n"
		"  <rtsps_port>8322</rtsps_port>\n"
		"  <rtsps_cert>/etc/rtspd/cert.pem</rtsps_cert>\n"
		"  <rtsps_key>/etc/rtspd/key.pem</rtsps_key>\n"
		"  <http_notify><enable>1</enable><url>https://hooks.example/x</url>"
		"<method>POST</method></http_notify>\n"
		"  <backchannel><audio><codec>g726</codec><samplerate>8000</samplerate>"
		"<bitrate>32</bitrate></audio></backchannel>\n"
		"</config>\n");
	assert_int_equal(c.rtsp_port, 8554);
	assert_true(c.rtsps_enable);
	assert_int_equal(c.rtsps_port, 8322);
	assert_string_equal(c.rtsps_cert, "/etc/rtspd/cert.pem");
	assert_string_equal(c.rtsps_key, "/etc/rtspd/key.pem");
	assert_string_equal(c.http_notify.url, "https://hooks.example/x");
	assert_int_equal(c.http_notify.method, NOTIFY_POST);
	assert_true(c.backchannel.enable);
	assert_string_equal(c.backchannel.audio.codec, "G726");
	assert_int_equal(c.backchannel.audio.bitrate, 32);
	assert_string_equal(c.backchannel.device, "default");
	config_free(&c);
}

/* Which <rtsp_port> is the RTSPS one in Happytime's spelling. */
static void test_happytime_rtsp_port_rule(void **state)
{
	/* after <rtsp_enable> but before any plain port: the plain port */
	struct rtspd_config c = load_ok(
		"<config><rtsp_enable>0</rtsp_enable><rtsp_port>8554</rtsp_port></config>");
	assert_int_equal(c.rtsp_port, 8554);
	assert_int_equal(c.rtsps_port, 322);
	assert_false(c.rtsps_enable);
	config_free(&c);

	/* the second one, after <rtsp_enable>: RTSPS */
	c = load_ok("<config><rtsp_port>8554</rtsp_port><rtsp_enable>0</rtsp_enable>"
		    "<rtsp_port>8322</rtsp_port></config>");
	assert_int_equal(c.rtsp_port, 8554);
	assert_int_equal(c.rtsps_port, 8322);
	config_free(&c);

	/* a second one without <rtsp_enable> before it is a duplicate */
	expect_error("<config>\n<rtsp_port>8554</rtsp_port>\n<rtsp_port>8322</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:3: <rtsp_port>: given twice (first at line 2)");
	/* a third one is a duplicate of the RTSPS port */
	expect_error("<config>\n<serverport>8554</serverport>\n<rtsp_enable>1</rtsp_enable>\n"
		     "<rtsp_port>8322</rtsp_port>\n<rtsp_port>8323</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:5: <rtsp_port>: given twice (first at line 4)");
	/* both spellings of the RTSPS port */
	expect_error("<config>\n<serverport>8554</serverport>\n<rtsp_enable>1</rtsp_enable>\n"
		     "<rtsp_port>8322</rtsp_port>\n<rtsps_port>8323</rtsps_port>\n</config>",
		     -EINVAL, "x.cfg:5: <rtsps_port>: already set by <rtsp_port> at line 4");
}

static void test_boolean_spellings(void **state)
{
	static const struct { const char *text; bool value; } cases[] = {
		{ "1", true }, { "0", false }, { "true", true }, { "FALSE", false },
		{ "Yes", true }, { "no", false }, { "on", true }, { "OFF", false },
		{ " 1\n", true },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char xml[128];
		snprintf(xml, sizeof xml, "<config><multicast>%s</multicast></config>", cases[i].text);
		struct rtspd_config c = load_ok(xml);
		assert_int_equal(c.multicast, cases[i].value);
		config_free(&c);
	}
}

static void test_aliases_and_forms(void **state)
{
	struct rtspd_config c = load_ok(
		"<config>\n"
		"<file_mode>on-demand</file_mode>\n"
		"<output><video><codec>hevc</codec></video><audio><codec>PCMA</codec></audio></output>\n"
		"<output><url>*.mp4</url><video><codec>MJPEG</codec></video></output>\n"
		/* Happytime's own example: mode rtsp, empty ip, ports not used */
		"<pusher><suffix>pusher</suffix><video><codec>H264</codec></video>"
		"<audio><codec>G711</codec><samplerate>8000</samplerate><channels>1</channels></audio>"
		"<transfer><mode>rtsp</mode><ip></ip><vport>50001</vport><aport>50002</aport></transfer>"
		"</pusher>\n"
		"<proxy><suffix>a/b</suffix><url>SRT://10.0.0.9:9000</url></proxy>\n"
		"<backchannel/>\n"
		"<loop_nums>+2</loop_nums>\n"
		"<log_level><![CDATA[5]]></log_level>\n"
		"<serverip>a&amp;b</serverip>\n"
		"</config>\n");
	assert_int_equal(c.file_mode, FILE_MODE_ONDEMAND);
	assert_string_equal(c.outputs[0].video.codec, "H265");
	assert_string_equal(c.outputs[0].audio.codec, "G711A");
	assert_string_equal(c.outputs[1].video.codec, "JPEG");
	assert_int_equal(c.pushers[0].transfer, TRANSFER_RTSP);
	assert_string_equal(c.pushers[0].audio.codec, "G711A");
	assert_string_equal(c.proxies[0].suffix, "a/b");
	assert_int_equal(c.proxies[0].transfer, TRANSFER_TCP);
	assert_false(c.proxies[0].ondemand);
	assert_true(c.backchannel.enable);      /* present means on */
	assert_int_equal(c.loop_nums, 2);
	assert_int_equal(c.log_level, 5);
	assert_string_equal(c.serverip, "a&b");
	config_free(&c);

	c = load_ok("<config><backchannel><enable>0</enable></backchannel></config>");
	assert_false(c.backchannel.enable);
	config_free(&c);
}

static void test_err_unknown_node(void **state)
{
	expect_error("<config>\n<rtsp_port>554</rtsp_port>\n\n\n\n\n<foo>1</foo>\n</config>",
		     -EINVAL, "x.cfg:7: <foo>: unknown node");
	expect_error("<config>\n<proxy>\n<suffix>a</suffix>\n<bogus/>\n</proxy>\n</config>",
		     -EINVAL, "x.cfg:4: <bogus>: unknown node in <proxy>");
	expect_error("<config>\n<rtsp_prot>554</rtsp_prot>\n</config>",
		     -EINVAL, "x.cfg:2: <rtsp_prot>: unknown node; did you mean <rtsp_port>?");
	/* node names are case-sensitive, as in XML */
	expect_error("<config>\n<RTSP_PORT>554</RTSP_PORT>\n</config>",
		     -EINVAL, "x.cfg:2: <RTSP_PORT>: unknown node; did you mean <rtsp_port>?");
	/* <url> belongs to a top-level <output> only */
	expect_error("<config>\n<pusher><suffix>p</suffix>\n<output><url>x</url></output></pusher>\n</config>",
		     -EINVAL, "x.cfg:3: <url>: unknown node in <output>");
	/* notify_method lives in <http_notify> only */
	expect_error("<config>\n<notify_method>GET</notify_method>\n</config>",
		     -EINVAL, "x.cfg:2: <notify_method>: unknown node");
}

static void test_err_out_of_range(void **state)
{
	expect_error("<config>\n\n\n\n\n\n\n\n\n\n\n<rtsp_port>70000</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:12: <rtsp_port>: 70000 is out of range 1..65535");
	expect_error("<config>\n<serverport>0</serverport>\n</config>",
		     -EINVAL, "x.cfg:2: <serverport>: 0 is out of range 1..65535");
	expect_error("<config>\n<udp_base_port>65530</udp_base_port>\n</config>",
		     -EINVAL, "x.cfg:2: <udp_base_port>: 65530 is out of range 1024..65527");
	expect_error("<config>\n<log_level>6</log_level>\n</config>",
		     -EINVAL, "x.cfg:2: <log_level>: 6 is out of range 0..5");
	expect_error("<config>\n<loop_nums>0</loop_nums>\n</config>",
		     -EINVAL, "x.cfg:2: <loop_nums>: 0 is not allowed");
	expect_error("<config>\n<loop_nums>-2</loop_nums>\n</config>",
		     -EINVAL, "x.cfg:2: <loop_nums>: -2 is out of range -1..");
	expect_error("<config>\n<session_timeout>4</session_timeout>\n</config>",
		     -EINVAL, "x.cfg:2: <session_timeout>: 4 is out of range 5..3600");
	expect_error("<config>\n<ring_size_kb>1048577</ring_size_kb>\n</config>",
		     -EINVAL, "x.cfg:2: <ring_size_kb>: 1048577 is out of range 256..1048576");
	expect_error("<config>\n<multicast_ttl>0</multicast_ttl>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_ttl>: 0 is out of range 1..255");
	expect_error("<config>\n<multicast_ttl>256</multicast_ttl>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_ttl>: 256 is out of range 1..255");
	expect_error("<config>\n<multicast_port_base>65528</multicast_port_base>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_port_base>: 65528 is out of range 1024..65527");
	expect_error("<config>\n<multicast_port_base>1023</multicast_port_base>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_port_base>: 1023 is out of range 1024..65527");
	expect_error("<config>\n<multicast_group_base>239.1.1.1</multicast_group_base>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_group_base>: '239.1.1.1' is not in 232.0.0.0/8 "
			      "(the SSM range multicast groups come from)");
	expect_error("<config>\n<multicast_group_base>232.1.1</multicast_group_base>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast_group_base>: '232.1.1' is not an IPv4 address");
	expect_error("<config>\n<max_sessions>99999999999999999999999</max_sessions>\n</config>",
		     -EINVAL, "x.cfg:2: <max_sessions>: 99999999999999999999999 is out of range 1..100000");
	expect_error("<config><output>\n<audio>\n<samplerate>4000</samplerate>\n</audio></output></config>",
		     -EINVAL, "x.cfg:3: <samplerate>: 4000 is out of range: 0 (as the source) or 8000..48000");
	expect_error("<config><output>\n<audio><channels>3</channels></audio></output></config>",
		     -EINVAL, "x.cfg:2: <channels>: 3 is out of range 0..2");
	expect_error("<config><output>\n<video><width>8193</width></video></output></config>",
		     -EINVAL, "x.cfg:2: <width>: 8193 is out of range 0..8192");
	expect_error("<config><output>\n<video><framerate>121</framerate></video></output></config>",
		     -EINVAL, "x.cfg:2: <framerate>: 121 is out of range 0..120");
	expect_error("<config><http_notify>\n<timeout_ms>0</timeout_ms></http_notify></config>",
		     -EINVAL, "x.cfg:2: <timeout_ms>: 0 is out of range 1..600000");
	expect_error("<config><pusher><suffix>p</suffix>\n<transfer><vport>65536</vport></transfer></pusher></config>",
		     -EINVAL, "x.cfg:2: <vport>: 65536 is out of range 0..65535");
}

static void test_err_not_a_number(void **state)
{
	expect_error("<config>\n<rtsp_port>abc</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:2: <rtsp_port>: 'abc' is not a whole number");
	expect_error("<config>\n<rtsp_port>85 54</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:2: <rtsp_port>: '85 54' is not a whole number");
	expect_error("<config>\n<http_port>0x50</http_port>\n</config>",
		     -EINVAL, "x.cfg:2: <http_port>: '0x50' is not a whole number");
	expect_error("<config>\n<log_level>1.5</log_level>\n</config>",
		     -EINVAL, "x.cfg:2: <log_level>: '1.5' is not a whole number");
	/* a value that would break the one-line message is quoted safely */
	expect_error("<config>\n<log_level>1\n2</log_level>\n</config>",
		     -EINVAL, "x.cfg:2: <log_level>: '1?2' is not a whole number");
}

static void test_err_bad_boolean(void **state)
{
	expect_error("<config>\n<multicast>maybe</multicast>\n</config>",
		     -EINVAL, "x.cfg:2: <multicast>: 'maybe' is not a boolean (use 0 or 1)");
	expect_error("<config>\n<proxy><suffix>a</suffix><url>rtsp://h/</url>\n<ondemand>2</ondemand></proxy>\n</config>",
		     -EINVAL, "x.cfg:3: <ondemand>: '2' is not a boolean");
}

static void test_err_bad_enum(void **state)
{
	expect_error("<config>\n<proxy>\n<suffix>a</suffix>\n<url>rtsp://h/s</url>\n"
		     "<transfer>FOO</transfer>\n</proxy>\n</config>",
		     -EINVAL, "x.cfg:5: <transfer>: 'FOO' is not one of TCP, UDP, MULTICAST");
	expect_error("<config>\n<pusher><suffix>p</suffix>\n<transfer>MULTICAST</transfer></pusher>\n</config>",
		     -EINVAL, "x.cfg:3: <transfer>: 'MULTICAST' is not one of TCP, UDP, RTSP");
	expect_error("<config>\n<file_mode>sometimes</file_mode>\n</config>",
		     -EINVAL, "x.cfg:2: <file_mode>: 'sometimes' is not one of ondemand, live");
	expect_error("<config><http_notify>\n<method>PUT</method></http_notify></config>",
		     -EINVAL, "x.cfg:2: <method>: 'PUT' is not one of POST, GET");
	expect_error("<config><output>\n<video><codec>VP8</codec></video></output></config>",
		     -EINVAL, "x.cfg:2: <codec>: 'VP8' is not a supported codec (H264, H265, MP4, JPEG)");
	expect_error("<config><backchannel>\n<codec>MP3</codec></backchannel></config>",
		     -EINVAL, "x.cfg:2: <codec>: 'MP3' is not a supported codec (G711A, G711U, G722, G726, AAC, OPUS)");
}

static void test_err_xml_syntax(void **state)
{
	expect_error("<config>\n<rtsp_port>554</rtsp_port>\n<log_level>2</loglevel>\n</config>",
		     -EINVAL, "x.cfg:3: XML syntax error: ");
	expect_error("<config>\n<rtsp_port>554\n", -EINVAL, "x.cfg:");
	expect_error("<config>\n<rtsp_port>554\n", -EINVAL, "XML syntax error");
	expect_error("", -EINVAL, "x.cfg:1: XML syntax error: the file is empty");
	expect_error("not xml at all", -EINVAL, "x.cfg:1: XML syntax error: ");
	expect_error("<config></config>\n<config></config>", -EINVAL, "x.cfg:2: XML syntax error: ");
	/* undeclared namespace prefix: an error from libxml2 that still builds a tree */
	expect_error("<config>\n<a:rtsp_port>1</a:rtsp_port></config>", -EINVAL, "x.cfg:2: XML syntax error: ");
}

static void test_err_wrong_root(void **state)
{
	expect_error("<?xml version=\"1.0\"?>\n<rtspserver>\n</rtspserver>",
		     -EINVAL, "x.cfg:2: <rtspserver>: the root element must be <config>");
}

static void test_err_duplicate(void **state)
{
	expect_error("<config>\n<log_level>1</log_level>\n<log_level>2</log_level>\n</config>",
		     -EINVAL, "x.cfg:3: <log_level>: given twice (first at line 2)");
	expect_error("<config>\n<serverport>554</serverport>\n<rtsp_port>8554</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:3: <rtsp_port>: already set by <serverport> at line 2");
	expect_error("<config>\n<rtsp_port>554</rtsp_port>\n<serverport>8554</serverport>\n</config>",
		     -EINVAL, "x.cfg:3: <serverport>: already set by <rtsp_port> at line 2");
	expect_error("<config>\n<rtsp_cert>a</rtsp_cert>\n<rtsps_cert>b</rtsps_cert>\n</config>",
		     -EINVAL, "x.cfg:3: <rtsps_cert>: already set by <rtsp_cert> at line 2");
	expect_error("<config>\n<http_notify/>\n<http_notify/>\n</config>",
		     -EINVAL, "x.cfg:3: <http_notify>: given twice (first at line 2)");
	expect_error("<config><http_notify>\n<url>http://a/</url>\n<notify_url>http://b/</notify_url>\n"
		     "</http_notify></config>",
		     -EINVAL, "x.cfg:3: <notify_url>: already set by <url> at line 2");
	expect_error("<config><output>\n<video/>\n<video/>\n</output></config>",
		     -EINVAL, "x.cfg:3: <video>: given twice (first at line 2)");
	/* the nested and the flat pusher forms fill the same fields */
	expect_error("<config><pusher><suffix>p</suffix>\n<transfer><mode>UDP</mode><vport>5000</vport></transfer>\n"
		     "<vport>5002</vport></pusher></config>",
		     -EINVAL, "x.cfg:3: <vport>: given twice (first at line 2)");
	expect_error("<config><pusher><suffix>p</suffix>\n<transfer>UDP</transfer>\n"
		     "<transfer><mode>TCP</mode></transfer></pusher></config>",
		     -EINVAL, "x.cfg:3: <mode>: already set by <transfer> at line 2");
	/* users, outputs, proxies and pushers repeat freely */
	struct rtspd_config c = load_ok("<config><output/><output/><output/><output/><output/></config>");
	assert_int_equal(c.noutputs, 5);
	config_free(&c);
}

static void test_err_too_long(void **state)
{
	char xml[4096];
	char value[300];
	memset(value, 'a', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	snprintf(xml, sizeof xml, "<config>\n<serverip>%s</serverip>\n</config>", value);
	expect_error(xml, -EINVAL, "x.cfg:2: <serverip>: the value is 299 bytes long; at most 255 fit");

	char path[200];
	memset(path, 'b', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	snprintf(xml, sizeof xml, "<config>\n<control_socket>%s</control_socket>\n</config>", path);
	expect_error(xml, -EINVAL,
		     "x.cfg:2: <control_socket>: the path is 199 bytes long; a Unix socket path can be at most 107");

	/* exactly the largest that fits */
	value[255] = '\0';
	snprintf(xml, sizeof xml, "<config>\n<serverip>%s</serverip>\n</config>", value);
	struct rtspd_config c = load_ok(xml);
	assert_int_equal(strlen(c.serverip), 255);
	config_free(&c);
}

static void test_err_required(void **state)
{
	expect_error("<config>\n<proxy>\n<url>rtsp://h/s</url>\n</proxy>\n</config>",
		     -EINVAL, "x.cfg:2: <proxy>: <suffix> is required");
	expect_error("<config>\n<proxy>\n<suffix>cam</suffix>\n</proxy>\n</config>",
		     -EINVAL, "x.cfg:2: <proxy>: <url> is required");
	expect_error("<config>\n<user><password>x</password></user>\n</config>",
		     -EINVAL, "x.cfg:2: <user>: <username> is required");
	expect_error("<config>\n<pusher><video><codec>H264</codec></video></pusher>\n</config>",
		     -EINVAL, "x.cfg:2: <pusher>: <suffix> is required");
	expect_error("<config>\n<pusher><suffix>p</suffix></pusher>\n</config>",
		     -EINVAL, "x.cfg:2: <pusher>: TCP mode needs a <vport> and/or an <aport>");
	expect_error("<config><pusher><suffix>p</suffix>\n<transfer>UDP</transfer>\n<vport>5000</vport></pusher></config>",
		     -EINVAL, "x.cfg:3: <vport>: port 5000 receives video, so <video> needs a <codec>");
	expect_error("<config><http_notify>\n<enable>1</enable></http_notify></config>",
		     -EINVAL, "x.cfg:2: <enable>: is 1, so <http_notify> needs a <url>");
	expect_error("<config>\n<proxy><suffix>/</suffix><url>rtsp://h/</url></proxy>\n</config>",
		     -EINVAL, "x.cfg:2: <suffix>: '/' does not name a stream");
}

static void test_err_semantics(void **state)
{
	expect_error("<config>\n<need_auth>1</need_auth>\n</config>",
		     -EINVAL, "x.cfg:2: <need_auth>: is 1, but no <user> is defined");
	expect_error("<config>\n<user><username>a</username></user>\n<user>\n<username>a</username></user>\n</config>",
		     -EINVAL, "x.cfg:4: <username>: user 'a' is defined twice");
	expect_error("<config>\n<proxy><suffix>cam</suffix><url>rtsp://h/</url></proxy>\n"
		     "<pusher>\n<suffix>cam</suffix><transfer>RTSP</transfer></pusher>\n</config>",
		     -EINVAL, "x.cfg:4: <suffix>: 'cam' is already the suffix of the <proxy> at line 2");
	expect_error("<config>\n<proxy><suffix>cam</suffix>\n<url>ftp://h/x</url></proxy>\n</config>",
		     -EINVAL, "x.cfg:3: <url>: 'ftp://h/x' is not a supported upstream URL");
	expect_error("<config>\n<proxy><suffix>cam</suffix>\n<url>rtsp://h/a b</url></proxy>\n</config>",
		     -EINVAL, "x.cfg:3: <url>: a URL cannot contain spaces");
	expect_error("<config>\n<proxy><suffix>a b</suffix>\n<url>rtsp://h/</url></proxy>\n</config>",
		     -EINVAL, "x.cfg:2: <suffix>: 'a b' cannot be a URL path");
	expect_error("<config><http_notify>\n<url>ftp://x/</url></http_notify></config>",
		     -EINVAL, "x.cfg:2: <url>: 'ftp://x/' is not an http:// or https:// URL");
	expect_error("<config>\n<rtsp_port>8000</rtsp_port>\n<rtsp_over_http>1</rtsp_over_http>\n"
		     "<http_port>8000</http_port>\n</config>",
		     -EINVAL, "x.cfg:4: <http_port>: port 8000 is already the RTSP port");
	expect_error("<config>\n<rtsps_enable>1</rtsps_enable>\n<rtsps_port>554</rtsps_port>\n</config>",
		     -EINVAL, "x.cfg:3: <rtsps_port>: port 554 is already the RTSP port");
	/* ports of disabled listeners do not clash */
	struct rtspd_config c = load_ok("<config><http_port>554</http_port></config>");
	config_free(&c);
	expect_error("<config><output><audio><codec>G726</codec>\n<channels>2</channels></audio></output></config>",
		     -EINVAL, "x.cfg:2: <channels>: G726 is mono only");
	expect_error("<config><backchannel><codec>G726</codec>\n<bitrate>64</bitrate></backchannel></config>",
		     -EINVAL, "x.cfg:2: <bitrate>: G726 runs at 16, 24, 32 or 40 kbit/s, not 64");
	expect_error("<config><backchannel><codec>G711A</codec>\n<audio><codec>AAC</codec></audio></backchannel></config>",
		     -EINVAL, "x.cfg:2: <audio>: give the audio format either in <audio> or directly in <backchannel>");
	expect_error("<config>\n<pusher><suffix>a</suffix><audio><codec>AAC</codec></audio>"
		     "<transfer><mode>UDP</mode><vport>0</vport><aport>6000</aport></transfer></pusher>\n"
		     "<pusher><suffix>b</suffix><video><codec>H264</codec></video>\n<transfer>UDP</transfer>\n"
		     "<vport>6000</vport></pusher>\n</config>",
		     -EINVAL, "x.cfg:5: <vport>: UDP port 6000 is already used by the <pusher> at line 2");
	expect_error("<config>\n<pusher><suffix>a</suffix><audio><codec>AAC</codec></audio>"
		     "<video><codec>H264</codec></video>\n<vport>6000</vport>\n<aport>6000</aport></pusher></config>",
		     -EINVAL, "x.cfg:4: <aport>: port 6000 is also the <vport>");
}

static void test_err_structure(void **state)
{
	expect_error("<config>\n<rtsp_port value=\"554\"/>\n</config>",
		     -EINVAL, "x.cfg:2: <rtsp_port>: attributes are not used");
	expect_error("<config>\n<rtsp_port>554<x/></rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:2: <rtsp_port>: expected a value, found the node <x>");
	expect_error("<config>\n<output>\nH264\n</output>\n</config>",
		     -EINVAL, "x.cfg:3: <output>: unexpected text 'H264' (this node holds other nodes");
	expect_error("<config>\n<output>\n\n  H264\nH265\n\n<video/></output>\n</config>",
		     -EINVAL, "x.cfg:4: <output>: unexpected text 'H264?H265'");
	expect_error("<config>\nstray\n</config>", -EINVAL, "x.cfg:2: <config>: unexpected text 'stray'");
	expect_error("<config>\n<serverip>a\tb</serverip>\n</config>",
		     -EINVAL, "x.cfg:2: <serverip>: the value contains a control character");
}

/* Entities are neither expanded nor fetched: a reference is an error. */
static void test_err_entities(void **state)
{
	expect_error("<!DOCTYPE config [<!ENTITY port \"554\">]>\n<config>\n<rtsp_port>&port;</rtsp_port>\n</config>",
		     -EINVAL, "x.cfg:3: <rtsp_port>: entity references (&port;) are not supported");
	expect_error("<!DOCTYPE config [<!ENTITY ext SYSTEM \"/etc/passwd\">]>\n<config>\n"
		     "<serverip>&ext;</serverip>\n</config>",
		     -EINVAL, "x.cfg:3: <serverip>: entity references (&ext;) are not supported");
	/* the classic exponential entity: refused, quickly */
	expect_error("<!DOCTYPE config [\n"
		     "<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
		     "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
		     "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
		     "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
		     "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">\n"
		     "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">\n"
		     "<!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">\n"
		     "]>\n<config><serverip>&g;</serverip></config>",
		     -EINVAL, "x.cfg:");
	/* character references and the predefined entities are plain text */
	struct rtspd_config c = load_ok("<config><serverip>&#49;&lt;2</serverip></config>");
	assert_string_equal(c.serverip, "1<2");
	config_free(&c);
}

/* Lines past 65535 are reported right for a bad value (libxml2 2.9 keeps
 * such line numbers on text nodes only, with XML_PARSE_BIG_LINES). */
static void test_big_line_numbers(void **state)
{
	size_t lines = 70000;
	char *xml = malloc(lines + 64);
	assert_non_null(xml);
	char *p = xml + sprintf(xml, "<config>");
	memset(p, '\n', lines - 1);
	p += lines - 1;
	strcpy(p, "<rtsp_port>x</rtsp_port></config>");
	struct rtspd_config c;
	char err[ERRLEN];
	int rc = load(xml, &c, err);
	free(xml);
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(err, "x.cfg:70000: <rtsp_port>: 'x' is not a whole number");
}

static void test_missing_file(void **state)
{
	struct rtspd_config c;
	char err[ERRLEN];
	memset(&c, 0x5a, sizeof c);
	int rc = config_load("/nonexistent/rtspserver.cfg", &c, err, sizeof err);
	assert_int_equal(rc, -ENOENT);
	assert_string_equal(err, "/nonexistent/rtspserver.cfg: cannot read: No such file or directory");
	assert_true(all_zero(&c));
	config_free(&c);

	rc = config_load("/tmp", &c, err, sizeof err);
	assert_int_equal(rc, -EISDIR);
	assert_non_null(strstr(err, "/tmp: cannot read: "));
	assert_true(all_zero(&c));
}

/* The file name used in messages is the path as given. */
static void test_error_names_file(void **state)
{
	const char *path = write_temp("<config>\n<rtsp_port>x</rtsp_port>\n</config>\n");
	struct rtspd_config c;
	char err[ERRLEN], expected[128];
	int rc = config_load(path, &c, err, sizeof err);
	unlink(path);
	assert_int_equal(rc, -EINVAL);
	snprintf(expected, sizeof expected, "%s:2: <rtsp_port>: 'x' is not a whole number", path);
	assert_string_equal(err, expected);

	/* a short buffer truncates the message but never overflows */
	char tiny[8];
	rc = config_load_buffer("<x/>", 4, "x.cfg", &c, tiny, sizeof tiny);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(strlen(tiny), sizeof tiny - 1);
	/* and no buffer at all is fine */
	assert_int_equal(config_load_buffer("<x/>", 4, NULL, &c, NULL, 0), -EINVAL);
}

struct emitted { int n; char names[16][32]; };

static void collect(const char *feature, void *arg)
{
	struct emitted *e = arg;
	if (e->n < 16)
		snprintf(e->names[e->n], sizeof e->names[0], "%s", feature);
	e->n++;
}

/* Stream i: group base + i, ports base + 8i, both wrapping in their range. */
static void test_multicast_address(void **state)
{
	struct rtspd_config c;
	config_defaults(&c);
	char g[64];
	int port = -1;
	assert_int_equal(config_multicast_address(&c, 0, g, sizeof g, &port), 0);
	assert_string_equal(g, "232.0.1.0");
	assert_int_equal(port, 26000);
	assert_int_equal(config_multicast_address(&c, 300, g, sizeof g, &port), 0);
	assert_string_equal(g, "232.0.2.44");
	assert_int_equal(port, 26000 + 8 * 300);
	/* the group wraps inside 232.0.0.0/8 */
	snprintf(c.multicast_group_base, sizeof c.multicast_group_base, "232.255.255.255");
	assert_int_equal(config_multicast_address(&c, 2, g, sizeof g, &port), 0);
	assert_string_equal(g, "232.0.0.1");
	/* the ports wrap below 65536: with the highest base only one slot */
	c.multicast_port_base = 65527;
	assert_int_equal(config_multicast_address(&c, 5, g, sizeof g, &port), 0);
	assert_int_equal(port, 65527);
	c.multicast_port_base = 65000;  /* 67 slots of 8 */
	assert_int_equal(config_multicast_address(&c, 67, g, sizeof g, &port), 0);
	assert_int_equal(port, 65000);
	assert_int_equal(config_multicast_address(&c, 66, g, sizeof g, &port), 0);
	assert_int_equal(port, 65000 + 8 * 66);
	assert_true(port + 7 <= 65535);
	assert_int_equal(config_multicast_address(&c, 1, g, 4, &port), -ENOSPC);
	snprintf(c.multicast_group_base, sizeof c.multicast_group_base, "224.0.0.1");
	assert_int_equal(config_multicast_address(&c, 1, g, sizeof g, &port), -EINVAL);
}

static void test_unsupported(void **state)
{
	struct rtspd_config c = load_ok(full_happytime_cfg);
	struct emitted e = { 0 };
	int n = config_unsupported(&c, collect, &e);
	static const char *const expected[] = {
		"metadata",
		"need_auth", "http_notify.enable", "users", "outputs", "proxies", "pushers",
	};
	size_t nexp = sizeof expected / sizeof expected[0];
	assert_int_equal(n, nexp);
	assert_int_equal(e.n, nexp);
	for (size_t i = 0; i < nexp; i++)
		assert_string_equal(e.names[i], expected[i]);
	assert_int_equal(config_unsupported(&c, NULL, NULL), nexp);
	config_free(&c);

	/* users without need_auth do nothing; an all-"as the source" output
	 * asks for no transcoding */
	c = load_ok("<config><user><username>u</username></user>"
		    "<output><url></url><video><codec></codec><width>0</width></video></output>"
		    "<backchannel><enable>0</enable></backchannel></config>");
	assert_int_equal(config_unsupported(&c, NULL, NULL), 0);
	config_free(&c);

	c = load_ok("<config><output><audio><channels>1</channels></audio></output></config>");
	memset(&e, 0, sizeof e);
	assert_int_equal(config_unsupported(&c, collect, &e), 1);
	assert_string_equal(e.names[0], "outputs");
	config_free(&c);
}

/* The configuration `make run` uses must load, and ask for nothing this
 * build lacks. The tests run from the top of the source tree. */
static void test_shipped_config(void **state)
{
	struct rtspd_config c;
	char err[ERRLEN];
	int rc = config_load("etc/rtspserver.cfg", &c, err, sizeof err);
	if (rc == -ENOENT)
		skip();
	if (rc)
		fail_msg("%s", err);
	assert_int_equal(c.rtsp_port, 8554);
	assert_int_equal(c.udp_base_port, 22000);
	assert_int_equal(c.loop_nums, -1);
	assert_true(c.log_enable);
	assert_int_equal(c.log_level, 2);
	assert_string_equal(c.media_dir, "build/media");
	assert_int_equal(c.file_mode, FILE_MODE_ONDEMAND);
	assert_string_equal(c.control_socket, "build/rtspd.sock");
	assert_int_equal(config_unsupported(&c, NULL, NULL), 0);
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_config_is_defaults),
		cmocka_unit_test(test_full_happytime_file),
		cmocka_unit_test(test_clear_spelling),
		cmocka_unit_test(test_happytime_rtsp_port_rule),
		cmocka_unit_test(test_boolean_spellings),
		cmocka_unit_test(test_aliases_and_forms),
		cmocka_unit_test(test_err_unknown_node),
		cmocka_unit_test(test_err_out_of_range),
		cmocka_unit_test(test_err_not_a_number),
		cmocka_unit_test(test_err_bad_boolean),
		cmocka_unit_test(test_err_bad_enum),
		cmocka_unit_test(test_err_xml_syntax),
		cmocka_unit_test(test_err_wrong_root),
		cmocka_unit_test(test_err_duplicate),
		cmocka_unit_test(test_err_too_long),
		cmocka_unit_test(test_err_required),
		cmocka_unit_test(test_err_semantics),
		cmocka_unit_test(test_err_structure),
		cmocka_unit_test(test_err_entities),
		cmocka_unit_test(test_big_line_numbers),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_error_names_file),
		cmocka_unit_test(test_multicast_address),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_shipped_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
