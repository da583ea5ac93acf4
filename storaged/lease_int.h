/* What lease.c and lease_query.c share: the lessor's state. */
#ifndef STORAGED_LEASE_INT_H
#define STORAGED_LEASE_INT_H

#include "lease.h"
#include "mvcc_int.h"
#include "smap.h"

struct lease {
	struct smap_node hn;  /* in lessor.by_id */
	int64_t id;
	int64_t ttl;          /* granted TTL in seconds (minimum applied) */
	int64_t expiry;       /* clock ms; 0: never (not primary) */
	int64_t retry;        /* clock ms before which no revoke is re-proposed */
	struct ki_node **keys; /* attached keys; node->lease_slot indexes this */
	uint32_t nkeys, capkeys;
};

struct lessor {
	struct smap by_id;
	int primary;
	int64_t min_ttl;
	lessor_clock_fn *clock;
	uint64_t granted, revoked, renewed;
};

struct lease *lessor_find(const struct lessor *ls, int64_t id);

#endif
