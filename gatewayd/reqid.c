/* etcd's idutil.Generator. */
#include "reqid.h"

#define TS_LEN 40
#define CNT_LEN 8
#define SUFFIX_LEN (TS_LEN + CNT_LEN)

static uint64_t lowbit(uint64_t x, int n)
{
	return x & (UINT64_MAX >> (64 - n));
}

void reqid_init(struct reqid *g, uint64_t member_id, uint64_t unix_ms)
{
	g->prefix = (uint64_t)(uint16_t)member_id << SUFFIX_LEN;
	g->suffix = lowbit(unix_ms, TS_LEN) << CNT_LEN;
}

uint64_t reqid_next(struct reqid *g)
{
	g->suffix++;
	return g->prefix | lowbit(g->suffix, SUFFIX_LEN);
}
