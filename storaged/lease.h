/*
 * The lessor, as etcd 3.4's: leases (ID -> TTL) persisted in the "lease"
 * column family at apply, the keys attached to each (a key's lease is in its
 * KeyValue; the lease -> keys sets live in memory and are rebuilt at open),
 * grant and revoke applied from the Raft log, and the leader's view of
 * expiry: while this member is primary (leader), every lease expires at its
 * last renewal + TTL; otherwise never. Expired leases are only reported
 * (lessor_expired): storaged proposes their revoke through Raft, and no key
 * is ever deleted here outside an applied revoke.
 */
#ifndef STORAGED_LEASE_H
#define STORAGED_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "mvcc.h"
#include "rpc.pb-c.h"

/* etcd's MaxLeaseTTL. */
#define LEASE_MAX_TTL 9000000000ll
/* Our limit on leases held at once (etcd has none); a grant past it fails. */
#define LEASE_MAX 1000000
/* An expired lease is proposed for revoke again after this (etcd's
 * expiredLeaseRetryInterval). */
#define LEASE_RETRY_MS 3000

/* Milliseconds of a monotonic clock. */
typedef int64_t lessor_clock_fn(void);

/*
 * Timing that makes etcd's minimum TTL: ceil(3/2 election timeout) in whole
 * seconds, with the timeout counted in heartbeat ticks as etcd counts it
 * (2 s with the defaults). 0 takes etcd's defaults (1000 ms, 100 ms).
 * clock NULL: CLOCK_MONOTONIC. Call after mvcc_open, before applying.
 */
void lessor_configure(struct mvcc *m, uint32_t election_ms,
		      uint32_t heartbeat_ms, lessor_clock_fn *clock);
int64_t lessor_min_ttl(const struct mvcc *m);

/* Apply (inside a batch): etcd's lessor Grant and Revoke. Revoke deletes
 * every attached key in one new revision, in key order. */
int lessor_grant(struct mvcc *m, const Etcdserverpb__LeaseGrantRequest *r,
		 struct arena *a, Etcdserverpb__LeaseGrantResponse **ret);
int lessor_revoke(struct mvcc *m, const Etcdserverpb__LeaseRevokeRequest *r,
		  struct arena *a, Etcdserverpb__LeaseRevokeResponse **ret);

/* Queries. An unknown ID is not an error: TTL -1 (time to live), no TTL
 * (keepalive), as etcd's API answers. Keepalive renews on the primary only
 * (-EAGAIN otherwise: the caller waits for leadership). */
int lessor_time_to_live(struct mvcc *m,
			const Etcdserverpb__LeaseTimeToLiveRequest *r,
			struct arena *a,
			Etcdserverpb__LeaseTimeToLiveResponse **ret);
int lessor_leases(struct mvcc *m, struct arena *a,
		  Etcdserverpb__LeaseLeasesResponse **ret);
int lessor_keep_alive(struct mvcc *m,
		      const Etcdserverpb__LeaseKeepAliveRequest *r,
		      struct arena *a,
		      Etcdserverpb__LeaseKeepAliveResponse **ret);

/*
 * Leadership. Promote: this member became leader; every lease expires
 * extend_ms + its TTL from now (etcd's Promote: a new leader never expires a
 * lease early). Demote: leases no longer expire here.
 */
void lessor_promote(struct mvcc *m, int64_t extend_ms);
void lessor_demote(struct mvcc *m);
int lessor_primary(const struct mvcc *m);

/*
 * Up to max expired leases (primary only), into ids; each one is not
 * reported again for LEASE_RETRY_MS unless revoked meanwhile. Returns how
 * many.
 */
size_t lessor_expired(struct mvcc *m, int64_t *ids, size_t max);

struct lessor_stats {
	size_t leases;
	uint64_t granted, revoked, renewed; /* since open */
};
void lessor_stats(const struct mvcc *m, struct lessor_stats *ret);

#endif
