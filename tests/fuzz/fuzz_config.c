/* fuzz_config.c — libFuzzer target for the rtspserver.cfg parser.
 *
 * Any byte string must give either a configuration or one error line, and
 * never a crash, a hang or a leak. Seeds: tests/fuzz/corpus/config/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtspd_config cfg;
	char err[256];
	int rc = config_load_buffer((const char *)data, size, "fuzz.cfg", &cfg, err, sizeof err);
	/* a failure names itself on one line */
	if (rc != 0 && (err[0] == '\0' || strchr(err, '\n')))
		__builtin_trap();
	config_unsupported(&cfg, NULL, NULL);
	config_free(&cfg);
	return 0;
}
