/* fuzz_ctl.c — libFuzzer target for the control protocol's request parser
 * (proto/ctl.c), what the master runs on every rtspctl request.
 *
 * Beyond "no crash": an accepted request has 1..CTL_MAX_WORDS words, each
 * non-empty printable ASCII lying inside the input; ctl_find() either
 * returns a table entry whose argument count fits or says why not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz-check.h"

#include "proto/ctl.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	const char *words[CTL_MAX_WORDS];
	int n = ctl_parse_request(buf, size, words);
	CHECK(n == -EINVAL || (n >= 1 && n <= CTL_MAX_WORDS));
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			CHECK(words[i] >= buf && words[i] < buf + size);
			size_t l = strlen(words[i]);
			CHECK(l > 0 && words[i] + l < buf + size);
			for (size_t k = 0; k < l; k++)
				CHECK(words[i][k] > 0x20 && words[i][k] < 0x7f);
		}
		char err[256];
		const struct ctl_command *c = ctl_find(words, n, err, sizeof err);
		if (c) {
			CHECK(!strcmp(c->name, words[0]));
			CHECK(n - 1 >= c->min_args && n - 1 <= c->max_args);
		} else {
			CHECK(strlen(err) > 0);
		}
	}
	free(buf);
	return 0;
}
