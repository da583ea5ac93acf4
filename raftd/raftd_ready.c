/*
 * The ready loop, once per event-loop iteration: propose everything that
 * arrived, start one ReadIndex round for all reads, then for each ready
 * bundle: send what may go early, write the WAL with one write and one
 * fdatasync, send the rest, hand committed entries to storaged, answer
 * reads; then report the Raft state if it changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "raftd.h"

/* Fails proposal id of the proposer at the other end of link to. */
void raftd_propose_err(struct raftd *d, enum proc_role to, uint64_t id,
		       uint32_t code, const char *msg)
{
	Ipc__Error e = IPC__ERROR__INIT;
	e.code = code;
	e.message = (char *)msg;
	d->props_failed++;
	worker_send_pb(d->w, to, MSG_PROPOSE_ERR, id, &e.base);
}

static void propose_range(struct raftd *d, size_t from, size_t n)
{
	int rc = raft_propose(d->r, d->props + from, n);
	if (rc == 0)
		return;
	/* etcd: no leader is ErrNoLeader; a drop (leadership being
	 * transferred, member removed) is raft's ErrProposalDropped. */
	bool nl = rc == -ENOTCONN;
	for (size_t i = from; i < from + n; i++)
		raftd_propose_err(d, (enum proc_role)d->prop_from[i],
				  d->prop_ids[i], nl ? 14 : 2,
				  nl ? "etcdserver: no leader"
				     : "raft proposal dropped");
}

/* Normal entries go together; a membership change goes alone, so that
 * its refusal (one already pending) fails nothing else. */
static void propose_all(struct raftd *d)
{
	size_t start = 0;
	for (size_t i = 0; i < d->n_props; i++) {
		if (d->props[i]->e.type != RAFTPB__ENTRY_TYPE__EntryConfChange)
			continue;
		if (i > start)
			propose_range(d, start, i - start);
		propose_range(d, i, 1);
		start = i + 1;
	}
	if (d->n_props > start)
		propose_range(d, start, d->n_props - start);
	d->n_props = 0;
}

void raftd_read_reply(struct raftd *d, uint64_t id, uint64_t index,
		      uint32_t code, const char *msg)
{
	Ipc__ReadIndexResp r = IPC__READ_INDEX_RESP__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	r.index = index;
	if (msg) {
		e.code = code;
		e.message = (char *)msg;
		r.error = &e;
	}
	worker_send_pb(d->w, PROC_GATEWAYD, MSG_READINDEX_RESP, id, &r.base);
}

static void batch_done(struct raftd *d, size_t k, uint64_t index,
		       const char *err)
{
	struct read_batch *b = &d->batches[k];
	/* etcd counts failed rounds, not the reads that shared one. */
	if (err)
		d->reads_failed++;
	for (size_t i = 0; i < b->n; i++)
		raftd_read_reply(d, b->ids[i], index, 14, err);
	d->reads_waiting -= b->n;
	free(b->ids);
	d->batches[k] = d->batches[--d->n_batches];
}

static void read_all(struct raftd *d)
{
	if (d->n_reads == 0)
		return;
	if (d->n_batches == d->cap_batches) {
		size_t c = d->cap_batches ? d->cap_batches * 2 : 16;
		struct read_batch *p = realloc(d->batches, c * sizeof(*p));
		if (!p)
			worker_fatal(d->w, "raftd: out of memory");
		d->batches = p;
		d->cap_batches = c;
	}
	struct read_batch *b = &d->batches[d->n_batches++];
	b->ctx = ++d->read_seq;
	b->deadline = d->ticks + d->read_timeout_ticks;
	b->ids = d->reads;
	b->n = d->n_reads;
	d->reads = NULL;
	d->n_reads = d->cap_reads = 0;
	int rc = raft_read_index(d->r, b->ctx);
	if (rc < 0)
		batch_done(d, d->n_batches - 1, 0,
			   rc == -ENOTCONN ? "etcdserver: no leader"
					   : "etcdserver: too many requests");
}

static void reads_ready(struct raftd *d, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_reads; i++)
		for (size_t k = 0; k < d->n_batches; k++)
			if (d->batches[k].ctx == rd->reads[i].ctx) {
				batch_done(d, k, rd->reads[i].index, NULL);
				break;
			}
	for (size_t i = 0; i < rd->n_dropped_reads; i++)
		for (size_t k = 0; k < d->n_batches; k++)
			if (d->batches[k].ctx == rd->dropped_reads[i]) {
				batch_done(d, k, 0, "etcdserver: leader changed");
				break;
			}
}

/* etcd's ReadIndex wait (ReqTimeout) ran out: the round was lost. */
void raftd_expire_reads(struct raftd *d)
{
	for (size_t k = 0; k < d->n_batches;) {
		if (d->batches[k].deadline <= d->ticks) {
			d->reads_slow++;
			batch_done(d, k, 0, "etcdserver: request timed out");
		} else
			k++;
	}
}

static void log_soft(struct raftd *d, const struct raft_ready *rd,
		     uint64_t old_lead)
{
	static const char *const what[] = {
		[RAFT_FOLLOWER] = "follower",
		[RAFT_CANDIDATE] = "candidate",
		[RAFT_LEADER] = "leader",
		[RAFT_PRE_CANDIDATE] = "pre-candidate",
	};
	unsigned long long id = d->id, term = rd->term;
	log_info("raft", "%llx became %s at term %llu", id, what[rd->role], term);
	if (rd->lead == old_lead)
		return;
	if (rd->lead && !old_lead)
		log_info("raft", "raft.node: %llx elected leader %llx at term %llu",
			 id, (unsigned long long)rd->lead, term);
	else if (rd->lead)
		log_info("raft", "raft.node: %llx changed leader from %llx to %llx "
			 "at term %llu", id, (unsigned long long)old_lead,
			 (unsigned long long)rd->lead, term);
	else
		log_info("raft", "raft.node: %llx lost leader %llx at term %llu",
			 id, (unsigned long long)old_lead, term);
}

bool raftd_warn_ok(struct raftd_warn *rl, uint64_t *ret_suppressed)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (rl->logged && now - rl->last_ms < RAFTD_WARN_EVERY_MS) {
		rl->suppressed++;
		return false;
	}
	rl->logged = true;
	rl->last_ms = now;
	*ret_suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

static void mark_unreachable(struct raftd *d, uint64_t to)
{
	for (size_t i = 0; i < d->n_unreach; i++)
		if (d->unreach[i] == to)
			return;
	if (d->n_unreach < RAFT_MAX_NODES)
		d->unreach[d->n_unreach++] = to;
}

/*
 * Messages to peers leave through gatewayd. When its link is down or holds
 * more than RAFTD_MAX_GW_QUEUE bytes, a message is dropped and its peer
 * reported unreachable, as etcd's peer does when a stream's buffer is
 * full: the leader then probes it rather than streaming appends into a
 * queue that only grows.
 */
void raftd_send_msgs(struct raftd *d, Raftpb__Message **m, size_t n)
{
	struct link *l = d->w->peer[PROC_GATEWAYD];
	for (size_t i = 0; i < n; i++) {
		if (l && link_queued(l) <= d->gw_queue_max &&
		    worker_send_pb(d->w, PROC_GATEWAYD, MSG_RAFT_MSG, 0,
				   &m[i]->base) == 0)
			continue;
		d->msgs_dropped++;
		mark_unreachable(d, m[i]->to);
		if (m[i]->type == RAFTPB__MESSAGE_TYPE__MsgSnap)
			raftd_snap_dropped(d, m[i]->to);
		uint64_t more;
		if (l && raftd_warn_ok(&d->warn_full, &more))
			log_warn("rafthttp", "dropped internal raft message to %llx "
				 "since its sending buffer is full (bad/overloaded "
				 "network) (%llu similar suppressed)",
				 (unsigned long long)m[i]->to,
				 (unsigned long long)more);
	}
}

/* After the ready bundle is done with: the core learns of dropped sends. */
void raftd_report_unreachable(struct raftd *d)
{
	for (size_t i = 0; i < d->n_unreach; i++)
		raft_report_unreachable(d->r, d->unreach[i]);
	d->n_unreach = 0;
	for (size_t i = 0; i < d->n_snap_failed; i++)
		raft_report_snapshot(d->r, d->snap_failed[i], true);
	d->n_snap_failed = 0;
}

static void persist(struct raftd *d, const struct raft_ready *rd)
{
	int rc = 0;
	if (rd->has_snap)
		rc = wal_save_snapshot(d->wal, rd->snap_index, rd->snap_term,
				       &rd->snap_conf);
	for (size_t i = 0; i < rd->n_ents && rc == 0; i++)
		rc = wal_save_entry(d->wal, &rd->ents[i]->e);
	if (rc == 0 && rd->hs_changed)
		rc = wal_save_hardstate(d->wal, rd->term, rd->vote, rd->commit);
	/* A commit index alone need not be synced: it is recomputed. */
	if (rc == 0)
		rc = wal_sync(d->wal, rd->must_sync);
	if (rc < 0)
		worker_fatal(d->w, "raftd: wal: %s", strerror(-rc));
	/* The marker is durable: entries after it may go to storaged. */
	if (rd->has_snap)
		raftd_snap_restored(d, rd->snap_index, rd->snap_term);
}

static void apply_conf(struct raftd *d, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_committed; i++)
		if (rd->committed[i]->e.type == RAFTPB__ENTRY_TYPE__EntryConfChange)
			raftd_conf_apply(d, &rd->committed[i]->e);
}

/* Sends storaged every committed entry it lacks, in frames below 4 MB. */
void raftd_send_apply(struct raftd *d)
{
	if (!d->stor_synced || d->snap_wait || !d->w->peer[PROC_STORAGED])
		return;
	uint64_t upto = raft_applied(d->r);
	while (d->stor_next <= upto) {
		size_t n = 0, bytes = 0;
		Ipc__ApplyBatch b = IPC__APPLY_BATCH__INIT;
		for (uint64_t i = d->stor_next; i <= upto; i++) {
			const Raftpb__Entry *e = raft_entry(d->r, i);
			if (!e)
				worker_fatal(d->w, "raftd: entry %llu to apply was "
					     "compacted away",
					     (unsigned long long)i);
			if (n > 0 && bytes + e->data.len > RAFTD_APPLY_FRAME_BYTES)
				break;
			if (n == d->apply_cap) {
				size_t c = d->apply_cap ? d->apply_cap * 2 : 1024;
				const Raftpb__Entry **p =
					realloc(d->apply_buf, c * sizeof(*p));
				if (!p)
					worker_fatal(d->w, "raftd: out of memory");
				d->apply_buf = p;
				d->apply_cap = c;
			}
			d->apply_buf[n++] = e;
			bytes += e->data.len + 32;
		}
		b.entries = (Raftpb__Entry **)d->apply_buf;
		b.n_entries = n;
		if (worker_send_pb(d->w, PROC_STORAGED, MSG_APPLY, 0, &b.base) < 0)
			return;
		d->stor_next += n;
	}
}

void raftd_send_state(struct raftd *d, int to)
{
	Ipc__RaftState s = IPC__RAFT_STATE__INIT;
	s.term = raft_term(d->r);
	s.leader = raft_lead(d->r);
	s.commit = raft_commit(d->r);
	s.last_index = raft_last_index(d->r);
	s.is_learner = raft_is_learner(d->r);
	s.is_member = raft_is_member(d->r);
	if (to >= 0) {
		worker_send_pb(d->w, (enum proc_role)to, MSG_RAFT_STATE, 0, &s.base);
		return;
	}
	if (d->st_valid && s.term == d->st_term && s.leader == d->st_lead &&
	    s.commit == d->st_commit && s.last_index == d->st_last &&
	    s.is_learner == d->st_learner && s.is_member == d->st_member)
		return;
	d->st_valid = true;
	d->st_term = s.term;
	d->st_lead = s.leader;
	d->st_commit = s.commit;
	d->st_last = s.last_index;
	d->st_learner = s.is_learner;
	d->st_member = s.is_member;
	worker_send_pb(d->w, PROC_GATEWAYD, MSG_RAFT_STATE, 0, &s.base);
	worker_send_pb(d->w, PROC_STORAGED, MSG_RAFT_STATE, 0, &s.base);
}

/*
 * Drops entries storaged has made durable, keeping the catch-up margin,
 * once more than snapshot_count of them can go (etcd's snapshot rule).
 */
void raftd_maybe_compact(struct raftd *d)
{
	uint64_t durable = d->stor_durable;
	if (durable > raft_applied(d->r))
		durable = raft_applied(d->r);
	if (durable <= RAFTD_CATCH_UP_ENTRIES)
		return;
	uint64_t c = durable - RAFTD_CATCH_UP_ENTRIES;
	uint64_t base = raft_base_index(d->r);
	if (c <= base || c - base <= d->snapshot_count)
		return;
	struct raft_conf conf;
	if (raft_conf_at(d->r, c, &conf) < 0 || raft_compact(d->r, c) < 0)
		return;
	int rc = wal_save_snapshot(d->wal, c, raft_base_term(d->r), &conf);
	if (rc == 0)
		rc = wal_sync(d->wal, true);
	if (rc < 0)
		worker_fatal(d->w, "raftd: wal: %s", strerror(-rc));
	rc = wal_release(d->wal, c);
	if (rc < 0)
		log_warn("wal", "failed to remove old segments: %s", strerror(-rc));
	log_info("etcdserver", "compacted raft log at %llu",
		 (unsigned long long)c);
}

void raftd_flush(struct raftd *d)
{
	raftd_conf_release(d);
	propose_all(d);
	read_all(d);
	while (raft_has_ready(d->r)) {
		struct raft_ready rd;
		if (raft_ready(d->r, &rd) < 0)
			worker_fatal(d->w, "raftd: out of memory");
		if (rd.soft_changed) {
			/* etcd counts a change to a leader, not its loss. */
			if (rd.lead && rd.lead != d->log_lead)
				d->leader_changes++;
			log_soft(d, &rd, d->log_lead);
			d->log_lead = rd.lead;
		}
		/* Thesis 10.2.1: the leader's appends go out while it writes. */
		raftd_send_msgs(d, rd.msgs, rd.n_early);
		if (rd.has_snap || rd.n_ents || rd.hs_changed) {
			/* They leave now, so the followers' fsyncs overlap ours. */
			if (rd.n_early && d->w->peer[PROC_GATEWAYD])
				link_flush_now(d->w->peer[PROC_GATEWAYD]);
			persist(d, &rd);
		}
		raftd_send_msgs(d, rd.msgs + rd.n_early,
				rd.n_msgs - rd.n_early);
		apply_conf(d, &rd);
		reads_ready(d, &rd);
		raft_advance(d->r, &rd);
		raft_ready_clear(&rd);
		raftd_report_unreachable(d);
	}
	raftd_send_apply(d);
	raftd_send_state(d, -1);
	raftd_shutdown_check(d);
}
