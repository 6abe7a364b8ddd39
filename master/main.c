/* main.c — rtspd's entry point: command line, configuration, start-up.
 *
 *   rtspd [-c FILE] [-d] [-t] [--version] [-h]
 *
 * The same binary runs the workers ("rtspd --worker KEY") and the TLS front
 * ("rtspd --tls"), started by the master with the IPC socket on fd 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "master/master.h"
#include "talk/talk.h"
#include "tls/tls.h"
#include "worker/worker.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtspd [-c FILE] [-d] [-t] [--version] [-h]\n"
		"  -c FILE    configuration file (default /etc/rtspd/rtspserver.cfg, then ./rtspserver.cfg,\n"
		"             then built-in defaults: port 8554, media from the current directory)\n"
		"  -d         run in the background (daemonize)\n"
		"  -t         check the configuration and exit (0: valid, 1: not)\n"
		"  --version  print the version and exit\n"
		"  -h         this help\n");
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--worker"))
		return worker_main(3);
	if (argc == 2 && !strcmp(argv[1], "--tls"))
		return tls_main(3);
	if (argc == 2 && !strcmp(argv[1], "--talk"))
		return talk_main(3);

	const char *config_path = NULL;
	bool test_only = false, background = false;
	static const struct option longopts[] = {
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:dthV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'd': background = true; break;
		case 't': test_only = true; break;
		case 'V': printf("rtspd %s\n", RTSPD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}

	static struct master m;
	char err[1024] = "";
	if (!config_path) {
		if (access("/etc/rtspd/rtspserver.cfg", F_OK) == 0)
			config_path = "/etc/rtspd/rtspserver.cfg";
		else if (access("rtspserver.cfg", F_OK) == 0)
			config_path = "rtspserver.cfg";
	}
	if (master_load_config(config_path, &m.cfg, err, sizeof err) < 0) {
		fprintf(stderr, "rtspd: %s\n", err);
		return 1;
	}
	/* Reload reads the same file, whatever the working directory is then. */
	if (config_path && !realpath(config_path, m.config_path))
		snprintf(m.config_path, sizeof m.config_path, "%s", config_path);
	if (test_only) {
		printf("rtspd: configuration %s is valid\n", config_path ? config_path : "(built-in defaults)");
		config_free(&m.cfg);
		return 0;
	}

	log_init("master", m.cfg.log_level, m.cfg.log_enable);
	if (!config_path)
		log_info("no configuration file: built-in defaults (port 8554, media from the current directory)");
	else
		log_info("configuration: %s", config_path);
	master_warn_unsupported(&m.cfg, NULL);
	if (!realpath(m.cfg.media_dir[0] ? m.cfg.media_dir : ".", m.media_root))
		fatal("<media_dir> %s: %s", m.cfg.media_dir, strerror(errno));
	struct stat st;
	if (stat(m.media_root, &st) < 0 || !S_ISDIR(st.st_mode))
		fatal("<media_dir> %s is not a directory", m.cfg.media_dir);
	log_info("media directory: %s", m.media_root);

	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		fatal("cannot find my own executable: %s", strerror(errno));
	exe[n] = 0;
	m.self_exe = exe;
	raise_fd_limit();

	m.loop = ev_create();
	if (!m.loop)
		fatal("cannot create the event loop");
	m.ctl_fd = -1;
	m.started_us = ev_now_us();
	master_listen(&m);
	if (control_open(&m, m.cfg.control_socket, err, sizeof err) < 0)
		log_warn("control socket: %s: rtspctl cannot reach this server", err);
	else
		log_info("control socket: %s", m.ctl_path);
	if (background)
		daemonize();
	log_info("rtspd %s ready", RTSPD_VERSION);
	int code = master_run(&m);
	config_free(&m.cfg);
	ev_destroy(m.loop);
	return code;
}
