/* The checks the storaged unit tests share. */
#ifndef TESTS_STORAGED_CHECK_H
#define TESTS_STORAGED_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"

#define CHECK_EQ(a, b)                                                         \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		if (a_ != b_) {                                                \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
				__FILE__, __LINE__, #a, a_, #b, b_);           \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHECK_STR(bin, s)                                                      \
	do {                                                                   \
		ProtobufCBinaryData b_ = (bin);                                \
		const char *s_ = (s);                                          \
		if (b_.len != strlen(s_) || (b_.len && memcmp(b_.data, s_, b_.len))) { \
			fprintf(stderr, "%s:%d: %s is \"%.*s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #bin, (int)b_.len,         \
				(const char *)b_.data, s_);                    \
			exit(1);                                               \
		}                                                              \
	} while (0)

#endif
