/*
 * Membership changes at apply: etcd's validity rule (membership's
 * ValidateConfigurationChange) and the change with its answer. raftd applies
 * the same rule to its configuration, so both take the same decision.
 */
#ifndef STORAGED_CONFCHANGE_H
#define STORAGED_CONFCHANGE_H

#include <stddef.h>

#include "arena.h"
#include "ipc.pb-c.h"
#include "mvcc.h"
#include "raft.pb-c.h"

/* etcd 3.4's limit on learners (membership.maxLearners). */
#define MEMBERS_MAX_LEARNERS 1

/*
 * Whether cc may apply to the members members[0..n) (borrowed); removed
 * tells whether cc->nodeid was removed before; given is cc's decoded
 * context (borrowed, NULL without one). Pure. Returns 0 or, in etcd's
 * order of checks:
 *   -MVCC_EMEMBERREMOVED   cc->nodeid was removed (any type);
 *   AddNode whose context has no peer URLs is a promotion:
 *     -MVCC_EMEMBERNOTFOUND  unknown ID;
 *     -MVCC_ENOTLEARNER      the member votes already;
 *   AddNode with peer URLs, AddLearnerNode (an addition):
 *     -MVCC_EMEMBEREXISTS    the ID is a member;
 *     -MVCC_EPEERURLEXISTS   a peer URL is some member's;
 *     -MVCC_ETOOMANYLEARNERS AddLearnerNode past MEMBERS_MAX_LEARNERS;
 *   RemoveNode: -MVCC_EMEMBERNOTFOUND for an unknown ID;
 *   UpdateNode: -MVCC_EMEMBERNOTFOUND, or -MVCC_EPEERURLEXISTS for a peer
 *     URL another member has;
 *   -EINVAL for an unknown type or node ID 0 (raft's none).
 */
int member_cc_check(Etcdserverpb__Member *const *members, size_t n,
		    int removed, const Raftpb__ConfChange *cc,
		    const Etcdserverpb__Member *given);

/*
 * Applies cc inside m's batch when member_cc_check allows it (an invalid
 * change changes nothing). When ret_res is not NULL, *ret_res is the answer
 * built in a: a Member{Add,Remove,Update,Promote}Response with the members
 * after the change, or an Error with etcd's code and message.
 *
 * Returns 0; APPLY_EBADENTRY (apply.h) for an undecodable context or an
 * unknown type (nothing changed, no answer); or a negative errno after which
 * the store is unusable.
 */
int apply_confchange(struct mvcc *m, const Raftpb__ConfChange *cc,
		     struct arena *a, Ipc__Result **ret_res);

#endif
