/*
 * Joining a running cluster (--initial-cluster-state existing with a new
 * data dir): fetch the member list from the other --initial-cluster peers
 * (GET /members on their peer port, as etcd's GetClusterFromRemotePeers),
 * match it to the local --initial-cluster, and hand the result to the
 * supervisor as ipc.JoinResult.
 */
#ifndef ETCD_DISCOVERYD_JOIN_H
#define ETCD_DISCOVERYD_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.pb-c.h"

struct worker;

/* etcd waits this long for each peer's answer. */
#define JOIN_FETCH_TIMEOUT_S 10
/* Room for etcd's validation error, which prints the whole remote cluster. */
#define JOIN_ERR_MAX 16384
/* A member list body larger than this is not a peer's answer. */
#define JOIN_MAX_BODY (4u << 20)
/* Members we accept in an answer (each becomes a peer connection). */
#define JOIN_MAX_MEMBERS 1024

/* bootstrap_srv.c: a new cluster from DNS SRV records; MSG_JOIN_RESULT
 * (with bootstrap set, or an error) is sent before it returns. 0 or
 * -ENOMEM. */
int bootstrap_srv(struct worker *w);

/* gateway_srv.c: the gateway's endpoints from _etcd-client SRV records;
 * MSG_JOIN_RESULT (endpoints, or an error) is sent before it returns. 0 or
 * -ENOMEM. */
int gateway_srv(struct worker *w);

/* join_fetch.c: starts the fetch; MSG_JOIN_RESULT follows. 0 or -errno. */
int join_start(struct worker *w);
/* Frees what join_start set up (at the worker's stop). */
void join_done(struct worker *w);

/* join_parse.c: the body of GET /members, etcd's JSON array of members,
 * into *ret (malloc'd, free with join_members_free). 0 or -EINVAL. */
int join_parse_members(const char *body, size_t len,
		       Etcdserverpb__Member ***ret, size_t *ret_n);
void join_members_free(Etcdserverpb__Member **v, size_t n);

/*
 * join_match.c: etcd's ValidateClusterAndAssignIDs. remote: the cluster's
 * members sorted by ID; local: the --initial-cluster members in the order
 * of the IDs the token gives them. On success *ret_self is the existing ID
 * of local member self_name; else -EINVAL and etcd's message in err.
 */
int join_match(uint64_t cluster_id, Etcdserverpb__Member *const *remote,
	       size_t nr, Etcdserverpb__Member *const *local, size_t nl,
	       const char *self_name, uint64_t *ret_self, char *err,
	       size_t errlen);

#endif
