/*
 * The Raft core: a pure state machine in the shape of etcd's raft library.
 * No I/O, no clock, no logging: ticks, messages, proposals and read requests
 * go in; one ready bundle comes out (state and entries to persist, messages
 * to send, committed entries to apply, confirmed reads). The caller persists
 * the bundle, sends its messages, applies its entries and calls
 * raft_advance() before it feeds the core anything else.
 *
 * Implements the Raft thesis (Ongaro 2014): leader election (3.4) with
 * PreVote (9.6) and CheckQuorum (6.2), log replication (3.5) with flow
 * control, commitment (3.6), single-server membership changes (4.1),
 * leadership transfer (3.10), ReadIndex (6.4) and log compaction (5.1).
 */
#ifndef ETCD_RAFTD_RAFT_H
#define ETCD_RAFTD_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.pb-c.h"
#include "raft_ent.h"

/* Limits: members in a configuration, messages in flight per follower. */
#define RAFT_MAX_NODES 64
#define RAFT_MAX_INFLIGHT 512
/* Read requests the leader tracks at once (the driver batches many per one). */
#define RAFT_MAX_READS 4096

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_CANDIDATE,
	RAFT_LEADER,
	RAFT_PRE_CANDIDATE,
};

struct raft_config {
	uint64_t id;            /* this node, never 0 */
	int election_tick;      /* ticks without a leader before a campaign */
	int heartbeat_tick;     /* ticks between heartbeats; < election_tick */
	bool pre_vote;
	bool check_quorum;
	uint64_t seed;          /* of the election-timeout randomizer */
	size_t max_msg_bytes;   /* entry bytes per MsgApp (one entry at least) */
	int max_inflight;       /* MsgApp per follower not yet acknowledged */
};

/* A configuration: the voters and learners. */
struct raft_conf {
	int n;
	uint64_t ids[RAFT_MAX_NODES];
	bool learner[RAFT_MAX_NODES];
};

/* What a restarting node recovered from its WAL. */
struct raft_boot {
	uint64_t term, vote, commit;
	uint64_t base_index, base_term;   /* the log's compaction point */
	struct raft_conf base_conf;       /* configuration at base_index */
	struct raft_ent **ents;           /* base_index+1...; references transferred */
	size_t n_ents;
};

struct raft_read_state {
	uint64_t index; /* the read may be served once this index is applied */
	uint64_t ctx;   /* the caller's read context */
};

struct raft_ready {
	/* Soft state, for logs and the driver's status reports. */
	uint64_t lead;
	enum raft_role role;
	bool soft_changed;

	/* Hard state to persist when hs_changed. */
	bool hs_changed;
	uint64_t term, vote, commit;
	/* Term or vote changed, entries or a snapshot to write: fsync needed. */
	bool must_sync;

	/* A snapshot point the leader sent (the log was reset to it). */
	bool has_snap;
	uint64_t snap_index, snap_term;
	struct raft_conf snap_conf;

	/* Entries to persist (references owned by the ready), in order. */
	struct raft_ent **ents;
	size_t n_ents;

	/*
	 * Messages (owned): the first n_early may leave before the ready is
	 * persisted (a leader's appends and heartbeats, forwarded requests:
	 * thesis 10.2.1); the rest only after.
	 */
	Raftpb__Message **msgs;
	size_t n_msgs, n_early;

	/* Committed entries to apply, in order (references owned). */
	struct raft_ent **committed;
	size_t n_committed;

	/* Reads confirmed, and read contexts the core gave up on. */
	struct raft_read_state *reads;
	size_t n_reads;
	uint64_t *dropped_reads;
	size_t n_dropped_reads;
};

struct raft;

/* Checks c, builds a node from the recovered state b (its entries are taken
 * over even on failure). 0, -EINVAL or -ENOMEM. */
int raft_new(const struct raft_config *c, struct raft_boot *b,
	     struct raft **ret_r);
void raft_free(struct raft *r);

/* One tick of the logical clock. */
void raft_tick(struct raft *r);
/* A message from a peer (borrowed; entries are copied). 0 or -EINVAL. */
int raft_step(struct raft *r, const Raftpb__Message *m);
/* A message to peer id could not be sent (etcd's ReportUnreachable): the
 * leader stops streaming to it and probes. */
void raft_report_unreachable(struct raft *r, uint64_t id);
/*
 * Sending a MsgSnap to peer id ended (etcd's ReportSnapshot): delivered, or
 * failed. The leader leaves the snapshot state and probes id again after its
 * next answer (or heartbeat response). Every MsgSnap the core emits must be
 * reported once, or id waits in the snapshot state for good.
 */
void raft_report_snapshot(struct raft *r, uint64_t id, bool failed);
/*
 * Proposes entries (references transferred, term and index are set here),
 * appended together, or forwarded to the leader in one MsgProp.
 * -ENOTCONN without a leader, -EBUSY while leadership is being transferred,
 * -EPERM if this node is not a member.
 */
int raft_propose(struct raft *r, struct raft_ent **ents, size_t n);
/* Asks for a read index under context ctx: answered by a raft_read_state,
 * or by ctx in dropped_reads. -ENOTCONN without a leader, -ENOBUFS at the limit. */
int raft_read_index(struct raft *r, uint64_t ctx);
/* Starts an election now (MsgHup). */
void raft_campaign(struct raft *r);
/* Asks the leader to hand leadership to node to. */
void raft_transfer_leader(struct raft *r, uint64_t to);
/* On a leader: the other voter whose log matches the most of its own (one
 * heard from recently first), or 0 if there is none. */
uint64_t raft_transfer_target(const struct raft *r);
/* Applies a committed configuration change. 0, or -EINVAL if refused. */
int raft_apply_conf_change(struct raft *r, const Raftpb__ConfChange *cc);
/*
 * The validity rule for a membership change, applied when it is proposed
 * and again when it is applied (storaged must apply the same one): etcd's
 * ValidateConfigurationChange without what only storaged knows (peer URLs,
 * removed IDs). A promotion is an AddNode whose context is an
 * etcdserverpb.Member without peer URLs; an add carries its peer URLs.
 */
enum raft_cc_err {
	RAFT_CC_OK = 0,
	RAFT_CC_BAD,              /* node 0, unknown type, bad context */
	RAFT_CC_ID_EXISTS,        /* add of a member already there */
	RAFT_CC_NOT_FOUND,        /* remove, update, promote of an unknown one */
	RAFT_CC_NOT_LEARNER,      /* promote of a voter */
	RAFT_CC_TOO_MANY_LEARNERS,
};
/* etcd 3.4's maxLearners. */
#define RAFT_MAX_LEARNERS 1
/* etcd's readyPercent: a learner may be promoted once its match reaches
 * this share of the leader's. */
#define RAFT_LEARNER_READY_PERCENT 90
bool raft_cc_is_promote(const Raftpb__ConfChange *cc);
enum raft_cc_err raft_cc_validate(const struct raft_conf *c,
				  const Raftpb__ConfChange *cc);
/* etcd's message and gRPC code for e (NULL for RAFT_CC_OK). */
const char *raft_cc_err_message(enum raft_cc_err e, uint32_t *ret_code);
/* etcd's isLearnerReady: learner_match >= 0.9 * leader_match. */
bool raft_cc_learner_ready(uint64_t learner_match, uint64_t leader_match);
/*
 * etcd's strict reconfiguration check (mayAddMember, mayRemoveMember) from
 * the leader's view of which voters it heard from recently: false if cc
 * would leave fewer active voters than a quorum. The caller checked
 * validity first. Learners are neither checked nor counted.
 */
bool raft_cc_healthy(const struct raft_conf *c, const bool *active,
		     uint64_t self, const Raftpb__ConfChange *cc);

/* A membership change in the log not yet applied (proposed, or received
 * from the leader): another must wait. */
bool raft_conf_pending(const struct raft *r);
/* On a leader: what it knows of member id (its match index, heard from in
 * the last one or two election timeouts; the leader itself always is).
 * -ENOTCONN if not the leader, -ENOENT if id is not a member. */
int raft_peer_status(const struct raft *r, uint64_t id, uint64_t *ret_match,
		     bool *ret_active);

/* Drops entries up to index (at most the applied index). 0 or -EINVAL. */
int raft_compact(struct raft *r, uint64_t index);

bool raft_has_ready(const struct raft *r);
/* Fills rd (which the caller clears with raft_ready_clear after advance). */
int raft_ready(struct raft *r, struct raft_ready *ret_rd);
/* rd was persisted, sent and applied. */
void raft_advance(struct raft *r, const struct raft_ready *rd);
void raft_ready_clear(struct raft_ready *rd);
void raft_msg_free(Raftpb__Message *m);

/* State, for the driver and tests. */
uint64_t raft_id(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_lead(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
uint64_t raft_commit(const struct raft *r);
uint64_t raft_applied(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_base_index(const struct raft *r);
uint64_t raft_base_term(const struct raft *r);
/* The entry at index (borrowed, valid until the log drops it), or NULL. */
const Raftpb__Entry *raft_entry(const struct raft *r, uint64_t index);
/* The current configuration and that at index (base..applied). */
void raft_conf_get(const struct raft *r, struct raft_conf *ret_c);
int raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *ret_c);
bool raft_is_learner(const struct raft *r);
/* Whether this node is in its configuration (a joining node is not yet). */
bool raft_is_member(const struct raft *r);
/* Voters in the configuration. */
int raft_voters(const struct raft *r);
const char *raft_role_name(enum raft_role role);

#endif
