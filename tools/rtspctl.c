/* rtspctl — controls a running rtspd. This version knows only its own
 * version and help: the control socket (status, reload, kick, restart, stop)
 * is not supported yet, and every such command says so and exits 2. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: rtspctl [--version] [help] COMMAND\n"
		   "commands (not supported yet in this version): status, reload, kick SESSION, restart STREAM, stop\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("rtspctl %s\n", RTSPD_VERSION);
		return 0;
	}
	fprintf(stderr, "rtspctl: '%s': the control socket is not supported yet in this version\n", argv[1]);
	return 2;
}
