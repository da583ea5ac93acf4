/* The check the gatewayd unit tests share: report where and what, count the
 * failure, and go on (each test's main exits non-zero if any check failed).
 * Every test executable defines `int failures`. */
#ifndef TESTS_GATEWAYD_TCHECK_H
#define TESTS_GATEWAYD_TCHECK_H

#include <stdio.h>

extern int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);        \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			failures++;                                            \
		}                                                              \
	} while (0)

#endif
