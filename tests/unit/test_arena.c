/* Unit test of common/arena.c: every allocation is usable for its whole
 * size (sizes around the chunk boundaries), limits, clear and reuse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "check.h"

int main(void)
{
	struct arena a;
	arena_init(&a, 0);
	/* Sizes that straddle every chunk size, in an order that makes the
	 * arena grow while asking for more than the next chunk holds. */
	static const size_t sizes[] = {1, 4000, 10000, 16, 16384, 16385, 3,
				       70000, 9000, 12000, 65536, 15000, 1};
	for (int round = 0; round < 3; round++) {
		uint8_t *p[sizeof(sizes) / sizeof(sizes[0])];
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			p[i] = arena_alloc(&a, sizes[i]);
			CHECK(p[i] && ((uintptr_t)p[i] & 15) == 0);
			memset(p[i], (int)i + 1, sizes[i]);
		}
		/* No allocation overlaps another. */
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			for (size_t k = 0; k < sizes[i]; k++)
				CHECK(p[i][k] == (uint8_t)(i + 1));
		uint8_t *z = arena_zalloc(&a, 5000);
		for (size_t k = 0; k < 5000; k++)
			CHECK(z[k] == 0);
		arena_clear(&a);
	}
	arena_done(&a);

	/* A limit bounds what one round may take. */
	arena_init(&a, 10000);
	CHECK(arena_alloc(&a, 6000) != NULL);
	CHECK(arena_alloc(&a, 6000) == NULL);
	CHECK(arena_alloc(&a, 3000) != NULL);
	arena_clear(&a);
	CHECK(arena_alloc(&a, 9000) != NULL);
	arena_done(&a);
	arena_done(NULL);
	printf("arena: ok\n");
	return 0;
}
