/* raftd's driver state, shared by its files (raftd.c: links and events;
 * raftd_boot.c: WAL creation and recovery; raftd_ready.c: the ready loop;
 * raftd_metrics.c: /metrics). */
#ifndef ETCD_RAFTD_RAFTD_H
#define ETCD_RAFTD_RAFTD_H

#include <stdbool.h>
#include <stdint.h>

#include "raft.h"
#include "wal.h"
#include "worker.h"

/* etcd's SnapshotCatchUpEntries: entries kept behind a compaction point so
 * that a slow follower catches up from the log, not a snapshot. */
#define RAFTD_CATCH_UP_ENTRIES 5000
/* MSG_APPLY frames stay below this. */
#define RAFTD_APPLY_FRAME_BYTES (4u << 20)
/* Reads waiting for an index at once; more are refused. */
#define RAFTD_MAX_READS 100000

/* Bytes queued towards gatewayd above which messages to peers are dropped
 * (and their peers reported unreachable), like a full etcd peer stream. */
#define RAFTD_MAX_GW_QUEUE (64u << 20)
/* A warning about input dropped repeatedly is logged at most this often. */
#define RAFTD_WARN_EVERY_MS 1000

/* One rate-limited warning. */
struct raftd_warn {
	bool logged;
	uint64_t last_ms;
	uint64_t suppressed;
};

/* gatewayd's reads that share one ReadIndex round. */
struct read_batch {
	uint64_t ctx;
	uint64_t deadline; /* in ticks */
	uint64_t *ids;
	size_t n;
};

struct raftd {
	struct worker *w;
	struct raft *r;
	struct wal *wal;
	uint64_t id, cluster_id;
	struct event *tick_ev;
	struct event *flush_ev; /* runs at the end of a loop iteration */
	bool stopping;
	uint64_t ticks;
	int election_ticks;
	uint64_t snapshot_count;
	uint64_t max_proposal;

	/* Proposals of this loop iteration, and who sent each (gatewayd for
	 * clients, storaged for lease revokes): a failure goes back there. */
	struct raft_ent **props;
	uint64_t *prop_ids;
	uint8_t *prop_from; /* enum proc_role */
	size_t n_props, cap_props;

	/* Reads of this loop iteration, and rounds in flight. */
	uint64_t *reads;
	size_t n_reads, cap_reads;
	struct read_batch *batches;
	size_t n_batches, cap_batches;
	size_t reads_waiting;
	uint64_t read_seq;
	uint64_t read_timeout_ticks;

	/* Messages to peers that could not be queued this ready round. */
	uint64_t unreach[RAFT_MAX_NODES];
	size_t n_unreach;
	size_t gw_queue_max; /* RAFTD_MAX_GW_QUEUE; tests lower it */
	uint64_t msgs_dropped;
	struct raftd_warn warn_full, warn_bad_msg;

	/* storaged: nothing is sent before its first MSG_APPLIED. */
	bool stor_synced;
	uint64_t stor_next;    /* next index to send */
	uint64_t stor_applied; /* the highest it reported on this link */
	uint64_t stor_durable; /* synced to disk by storaged */
	const Raftpb__Entry **apply_buf;
	size_t apply_cap;

	/*
	 * A snapshot the core restored (its index), not yet confirmed by
	 * storaged's applied index: nothing is sent to storaged meanwhile, so
	 * it gets neither entries it holds nor a gap (raftd_snap.c).
	 */
	uint64_t snap_wait;
	uint64_t snap_wait_since; /* in ticks */
	bool snap_wait_logged;
	/* MsgSnap dropped on the way to gatewayd this ready round. */
	uint64_t snap_failed[RAFT_MAX_NODES];
	size_t n_snap_failed;

	/* The supervisor's MSG_SHUTDOWN: leadership hand-over (raftd_shutdown.c). */
	enum { SHUT_NONE, SHUT_HANDOVER, SHUT_DONE } shut;
	uint64_t shut_deadline; /* in ticks */
	uint64_t shut_start_ns; /* CLOCK_MONOTONIC */

	/* Membership changes (raftd_conf.c). */
	bool strict_reconfig; /* --strict-reconfig-check */
	/* A removal of this leader, held while leadership moves away. */
	struct raft_ent *cc_held;
	uint64_t cc_held_id;
	uint64_t cc_held_deadline; /* in ticks */
	/* The index of this member's own removal, once applied; then the
	 * tick it was applied at. */
	uint64_t removed_at, removed_tick;

	uint64_t log_lead; /* leader in the last log line */

	/* Counters for /metrics (etcd's names in raftd_metrics.c). */
	uint64_t leader_changes;
	uint64_t props_failed;   /* answered with MSG_PROPOSE_ERR */
	uint64_t reads_failed;   /* read-index rounds or reads answered an error */
	uint64_t reads_slow;     /* read-index rounds that timed out */

	/* The last RaftState sent. */
	uint64_t st_term, st_lead, st_commit, st_last;
	bool st_learner, st_member, st_valid;
};

/* raftd_boot.c: creates or recovers the WAL and the core. 0 or -1 (after
 * worker_fatal). */
int raftd_boot(struct raftd *d);

/* raftd_ready.c */
void raftd_flush(struct raftd *d);
void raftd_send_apply(struct raftd *d);
void raftd_send_state(struct raftd *d, int to);
void raftd_maybe_compact(struct raftd *d);
void raftd_read_reply(struct raftd *d, uint64_t id, uint64_t index,
		      uint32_t code, const char *msg);
void raftd_expire_reads(struct raftd *d);
void raftd_propose_err(struct raftd *d, enum proc_role to, uint64_t id,
		       uint32_t code, const char *msg);
/* Queues messages to peers on the gatewayd link, or drops them and notes
 * their peers for raftd_report_unreachable when it is full or down. */
void raftd_send_msgs(struct raftd *d, Raftpb__Message **m, size_t n);
void raftd_report_unreachable(struct raftd *d);
/* True if a warning may be logged now; ret_suppressed: how many were not
 * since the last one. */
bool raftd_warn_ok(struct raftd_warn *rl, uint64_t *ret_suppressed);

/* raftd.c: queues proposal x (reference taken) from link from, request id. */
void raftd_queue_prop(struct raftd *d, enum proc_role from, uint64_t id,
		      struct raft_ent *x);

/* raftd_conf.c: membership changes. */
/* gatewayd's MSG_CONF_CHANGE: refused, queued, or held for a hand-over. */
void raftd_conf_change(struct raftd *d, const struct msg_hdr *hdr,
		       const uint8_t *body);
/* Start of a flush: a held removal goes once leadership moved (or the
 * hand-over ran out of time). */
void raftd_conf_release(struct raftd *d);
/* A conf change entry at index was committed: applied to the core, or a
 * no-op if invalid for the configuration at that point. */
void raftd_conf_apply(struct raftd *d, const Raftpb__Entry *e);
/* After a tick or storaged's MSG_APPLIED: a member that applied its own
 * removal stops once storaged has it too. */
void raftd_conf_check_removed(struct raftd *d);
/* Logs etcd's lines for a removed member and stops it (exit code 0). */
void raftd_removed_exit(struct raftd *d) __attribute__((noreturn));
/* On the leader: false for a MsgProp carrying a conf change that the
 * leader's checks (validity, learner in sync, strict reconfiguration)
 * refuse; the follower that forwarded it cannot know them. The proposer
 * gets no answer and times out. */
bool raftd_conf_forward_ok(struct raftd *d, const Raftpb__Message *m);

/* raftd_snap.c: snapshots as the driver sees them. */
/* gatewayd's MSG_SNAP_STATUS: a MsgSnap's delivery ended. */
void raftd_snap_status(struct raftd *d, const struct msg_hdr *hdr,
		       const uint8_t *body);
/* A MsgSnap to peer to was dropped before gatewayd got it: reported as a
 * failure after the ready round (raftd_report_unreachable). */
void raftd_snap_dropped(struct raftd *d, uint64_t to);
/* gatewayd went away with whatever transfers it had in flight. */
void raftd_snap_gw_down(struct raftd *d);
/* The core restored a snapshot at index (its marker is in the WAL). */
void raftd_snap_restored(struct raftd *d, uint64_t index, uint64_t term);
/* storaged reported applied index (MSG_APPLIED). */
void raftd_snap_stor_applied(struct raftd *d, uint64_t index);
/* Once per tick: a restored snapshot storaged does not confirm is a bug. */
void raftd_snap_tick(struct raftd *d);

/* raftd_shutdown.c: the supervisor's MSG_SHUTDOWN. */
void raftd_shutdown_start(struct raftd *d);
/* After every ready round and tick: has leadership moved, or time run out? */
void raftd_shutdown_check(struct raftd *d);
/* NULL, or the error (and its gRPC code) a proposal gets while stopping. */
const char *raftd_shutdown_refusal(const struct raftd *d, uint32_t *ret_code);

/* raftd.c: the first read-index context of this run (unix ms << 16), so a
 * late answer to a round of an earlier run matches nothing. */
uint64_t raftd_read_seq_start(void);

/* raftd_metrics.c: answers gatewayd's MSG_METRICS round id. */
void raftd_metrics(struct raftd *d, uint64_t id);

#endif
