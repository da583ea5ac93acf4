/* The Raft core's internal state, shared by its files (not by the driver). */
#ifndef ETCD_RAFTD_RAFT_IMPL_H
#define ETCD_RAFTD_RAFT_IMPL_H

#include <errno.h>

#include "raft.h"

#define RAFT_NONE 0
/* MsgVote context of an election forced by MsgTimeoutNow (etcd's string). */
#define RAFT_CAMPAIGN_TRANSFER "CampaignTransfer"

/* The log: entries after a compaction point, by reference. */
struct raft_log {
	uint64_t base_index, base_term;
	struct raft_ent **ents; /* ents[i] has index base_index + 1 + i */
	size_t n, cap;
	uint64_t committed;
	uint64_t applied;  /* handed out in a ready and advanced */
	uint64_t stable;   /* persisted by the driver */
	struct raft_conf base_conf; /* configuration at base_index */
};

enum pr_state { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };

/* A ring of the last indexes of MsgApp sent and not acknowledged. */
struct inflights {
	int start, count, size;
	uint64_t buf[RAFT_MAX_INFLIGHT];
};

/* What the leader knows of one member (thesis 3.5 nextIndex/matchIndex). */
struct progress {
	uint64_t id;            /* 0: free slot */
	uint64_t match, next;
	uint64_t pending_snapshot;
	enum pr_state state;
	bool probe_sent;
	bool recent_active;
	bool prev_active;       /* recent_active of the last CheckQuorum round */
	uint64_t heard_tick;    /* raft.ticks when it last answered the leader */
	bool learner;
	int8_t vote;            /* in an election: 0 none, 1 granted, -1 refused */
	struct inflights ins;
};

/* A read waiting for a quorum of heartbeat acknowledgements (thesis 6.4). */
struct read_req {
	uint64_t ctx;
	uint64_t from;  /* requesting node (self or a follower) */
	uint64_t index; /* commit index when the request arrived */
	uint64_t round; /* heartbeat context of its confirmation round */
	uint64_t acks;  /* bitmask of progress slots */
};

struct raft {
	uint64_t id;
	uint64_t term, vote, lead;
	enum raft_role role;
	struct raft_log log;

	struct progress prs[RAFT_MAX_NODES]; /* slot is stable while a member */
	int n_slots;                         /* slots in use or freed, high mark */

	int election_tick, heartbeat_tick, rand_election_tick;
	int election_elapsed, heartbeat_elapsed;
	uint64_t ticks;          /* every tick since start */
	uint64_t lead_since;     /* ticks when this node last became leader */
	bool pre_vote, check_quorum;
	size_t max_msg_bytes;
	int max_inflight;
	uint64_t prng;

	uint64_t lead_transferee;
	uint64_t pending_conf_index;

	/* ReadIndex: requests in heartbeat rounds, and those waiting for the
	 * leader's first commit in its term. */
	struct read_req *reads;
	size_t n_reads;
	struct read_req *reads_waiting;
	size_t n_reads_waiting;
	uint64_t read_round; /* heartbeat contexts for rounds */

	/* Output, taken by raft_ready. */
	Raftpb__Message **out;
	size_t n_out, cap_out;
	struct raft_read_state *rs;
	size_t n_rs, cap_rs;
	uint64_t *dropped;
	size_t n_dropped, cap_dropped;
	bool has_snap;

	/* Last state reported, to tell what changed. */
	uint64_t prev_term, prev_vote, prev_commit, prev_lead;
	enum raft_role prev_role;
};

/* raft_log.c */
int rlog_init(struct raft_log *l, uint64_t base_index, uint64_t base_term);
void rlog_done(struct raft_log *l);
static inline uint64_t rlog_last(const struct raft_log *l)
{
	return l->base_index + l->n;
}
/* Term at i: 0 and -ENOENT below the base, -ERANGE past the end. */
int rlog_term(const struct raft_log *l, uint64_t i, uint64_t *ret_t);
uint64_t rlog_term0(const struct raft_log *l, uint64_t i);
uint64_t rlog_last_term(const struct raft_log *l);
struct raft_ent *rlog_at(const struct raft_log *l, uint64_t i);
int rlog_append(struct raft_log *l, struct raft_ent *x); /* reference taken */
void rlog_truncate(struct raft_log *l, uint64_t after);
bool rlog_match_term(const struct raft_log *l, uint64_t i, uint64_t t);
bool rlog_up_to_date(const struct raft_log *l, uint64_t i, uint64_t t);
/* Appends ents after prev (idx, term) if they match: 0 and the new last
 * index; -ESRCH on a mismatch; -ENOMEM. */
int rlog_maybe_append(struct raft_log *l, uint64_t idx, uint64_t term,
		      uint64_t commit, Raftpb__Entry *const *ents, size_t n,
		      uint64_t *ret_last);
void rlog_commit_to(struct raft_log *l, uint64_t i);
void rlog_compact(struct raft_log *l, uint64_t i, uint64_t term);
void rlog_reset(struct raft_log *l, uint64_t index, uint64_t term);

/* raft_progress.c */
void pr_reset(struct progress *p, uint64_t id, uint64_t next, int max_inflight,
	      bool learner);
void pr_become_probe(struct progress *p);
void pr_become_replicate(struct progress *p);
void pr_become_snapshot(struct progress *p, uint64_t snapi);
bool pr_maybe_update(struct progress *p, uint64_t n);
bool pr_maybe_decr_to(struct progress *p, uint64_t rejected, uint64_t hint);
bool pr_is_paused(const struct progress *p);
void ins_add(struct inflights *in, uint64_t i);
void ins_free_le(struct inflights *in, uint64_t i);
void ins_free_first(struct inflights *in);
static inline bool ins_full(const struct inflights *in)
{
	return in->count == in->size;
}
struct progress *pr_get(struct raft *r, uint64_t id);
int pr_slot(const struct raft *r, const struct progress *p);

/* raft_quorum.c */
enum vote_result { VOTE_PENDING, VOTE_WON, VOTE_LOST };
int quorum_voters(const struct raft *r);
uint64_t quorum_committed(const struct raft *r);
enum vote_result quorum_vote_result(const struct raft *r);
bool quorum_acked(const struct raft *r, uint64_t slots);
bool quorum_active(struct raft *r);

/* raft_msg.c */
Raftpb__Message *msg_new(struct raft *r, Raftpb__MessageType type, uint64_t to);
int msg_set_context(Raftpb__Message *m, const void *p, size_t len);
int msg_add_entries(Raftpb__Message *m, struct raft_ent **ents, size_t n);
void msg_send(struct raft *r, Raftpb__Message *m);
uint64_t prng_next(struct raft *r);

/* raft_election.c */
void become_follower(struct raft *r, uint64_t term, uint64_t lead);
void become_leader(struct raft *r);
enum campaign_kind { CAMPAIGN_PRE, CAMPAIGN_ELECTION, CAMPAIGN_TRANSFER };
void campaign(struct raft *r, enum campaign_kind k);
void hup(struct raft *r, enum campaign_kind k);
void handle_vote(struct raft *r, const Raftpb__Message *m);
void handle_vote_resp(struct raft *r, const Raftpb__Message *m);
bool promotable(const struct raft *r);

/* raft_replicate.c */
bool send_append(struct raft *r, struct progress *p, bool if_empty);
void bcast_append(struct raft *r);
void send_heartbeat(struct raft *r, struct progress *p, uint64_t ctx);
void bcast_heartbeat(struct raft *r, uint64_t ctx);
bool maybe_commit(struct raft *r);
int append_local(struct raft *r, struct raft_ent **ents, size_t n);
void handle_append(struct raft *r, const Raftpb__Message *m);
void handle_heartbeat(struct raft *r, const Raftpb__Message *m);
void handle_snapshot(struct raft *r, const Raftpb__Message *m);
void handle_append_resp(struct raft *r, const Raftpb__Message *m);
void handle_heartbeat_resp(struct raft *r, const Raftpb__Message *m);

/* raft_readindex.c */
int read_request(struct raft *r, uint64_t ctx, uint64_t from);
void read_ack(struct raft *r, const Raftpb__Message *m);
void read_committed_in_term(struct raft *r);
void read_drop_all(struct raft *r);
void read_resp(struct raft *r, const Raftpb__Message *m);
void read_forget_slot(struct raft *r, int slot);
int read_state_add(struct raft *r, uint64_t index, uint64_t ctx);
void read_dropped_add(struct raft *r, uint64_t ctx);

/* raft_transfer.c */
void transfer_handle(struct raft *r, const Raftpb__Message *m);
void transfer_abort(struct raft *r);
void send_timeout_now(struct raft *r, uint64_t to);

/* raft_confchange.c */
int conf_apply(struct raft_conf *c, const Raftpb__ConfChange *cc);
void conf_of(const struct raft *r, struct raft_conf *ret_c);
int conf_load(struct raft *r, const struct raft_conf *c);

/* raft_step.c */
int step(struct raft *r, const Raftpb__Message *m);

#endif
