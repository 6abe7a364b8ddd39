/* fuzz-check.h — CHECK(cond) for the libFuzzer targets: a property the
 * code under test promises, checked on every input; a failure aborts, so
 * libFuzzer reports it with the input that broke it. */
#ifndef RTSPD_FUZZ_CHECK_H
#define RTSPD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

#endif
