/*
 * Membership changes as the driver sees them: gatewayd's MSG_CONF_CHANGE
 * is refused with etcd's error when raftd can tell it would fail (etcd's
 * configure path: mayAddMember, mayRemoveMember, mayPromoteMember and the
 * membership validity rule), otherwise proposed as one EntryConfChange;
 * a committed change is applied to the core, or skipped as a no-op when
 * invalid at that point (storaged answers the proposer then); a member
 * that applies its own removal stops as etcd does.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raftd.h"

/* etcd's ErrProposalDropped-free answer to a change while another is
 * pending: its raft drops the second one and the client times out. */
#define MSG_PENDING "etcdserver: request timed out"
/* etcd's message for a member that applied its own removal. */
#define MSG_REMOVED "the member has been permanently removed from the cluster"
/* etcd stops a removed member after 10 heartbeats (stopWithDelay). */
#define REMOVED_DELAY_TICKS 10

static bool queued_conf_change(const struct raftd *d)
{
	if (d->cc_held)
		return true;
	for (size_t i = 0; i < d->n_props; i++)
		if (d->props[i]->e.type == RAFTPB__ENTRY_TYPE__EntryConfChange)
			return true;
	return false;
}

/*
 * What the leader alone knows: a learner in sync before its promotion,
 * and (under --strict-reconfig-check) enough active voters after the
 * change. NULL if allowed. A follower cannot tell and lets it through.
 */
static const char *leader_refusal(struct raftd *d, const struct raft_conf *c,
				  const Raftpb__ConfChange *cc,
				  uint32_t *ret_code)
{
	uint64_t lead_match, match;
	bool on;
	if (raft_peer_status(d->r, d->id, &lead_match, &on) < 0)
		return NULL;
	if (raft_cc_is_promote(cc) &&
	    raft_peer_status(d->r, cc->nodeid, &match, &on) == 0 &&
	    !raft_cc_learner_ready(match, lead_match)) {
		*ret_code = 9;
		return "etcdserver: can only promote a learner member which "
		       "is in sync with leader";
	}
	if (!d->strict_reconfig)
		return NULL;
	bool active[RAFT_MAX_NODES];
	for (int i = 0; i < c->n; i++) {
		active[i] = false;
		raft_peer_status(d->r, c->ids[i], &match, &active[i]);
	}
	if (!raft_cc_healthy(c, active, d->id, cc)) {
		*ret_code = 14;
		return "etcdserver: unhealthy cluster";
	}
	return NULL;
}

/* The refusal of cc by the validity rule or the leader's checks, or NULL. */
static const char *conf_refusal(struct raftd *d, const Raftpb__ConfChange *cc,
				uint32_t *ret_code)
{
	struct raft_conf c;
	raft_conf_get(d->r, &c);
	const char *why = raft_cc_err_message(raft_cc_validate(&c, cc), ret_code);
	return why ? why : leader_refusal(d, &c, cc, ret_code);
}

bool raftd_conf_forward_ok(struct raftd *d, const Raftpb__Message *m)
{
	if (m->type != RAFTPB__MESSAGE_TYPE__MsgProp ||
	    raft_lead(d->r) != d->id)
		return true;
	for (size_t i = 0; i < m->n_entries; i++) {
		const Raftpb__Entry *e = m->entries[i];
		if (e->type != RAFTPB__ENTRY_TYPE__EntryConfChange)
			continue;
		Raftpb__ConfChange *cc = raftpb__conf_change__unpack(
			NULL, e->data.len, e->data.data);
		if (!cc)
			return false;
		uint32_t code = 0;
		const char *why = conf_refusal(d, cc, &code);
		if (why)
			log_warn("etcdserver", "%llx refused a conf change "
				 "forwarded by %llx: %s",
				 (unsigned long long)d->id,
				 (unsigned long long)m->from, why);
		raftpb__conf_change__free_unpacked(cc, NULL);
		if (why)
			return false;
	}
	return true;
}

void raftd_conf_change(struct raftd *d, const struct msg_hdr *hdr,
		       const uint8_t *body)
{
	Raftpb__ConfChange *cc = MSG_UNPACK(Raftpb__ConfChange,
					    raftpb__conf_change, body, hdr->len);
	if (!cc)
		worker_fatal(d->w, "raftd: bad MSG_CONF_CHANGE from gatewayd");
	uint32_t code = 0;
	const char *why = raftd_shutdown_refusal(d, &code);
	if (!why && d->removed_at) {
		code = 14;
		why = "etcdserver: server stopped";
	}
	if (!why && raft_lead(d->r) == 0) {
		code = 14;
		why = "etcdserver: no leader";
	}
	if (!why && hdr->len > d->max_proposal) {
		code = 3;
		why = "etcdserver: request is too large";
	}
	if (!why && (raft_conf_pending(d->r) || queued_conf_change(d))) {
		code = 14;
		why = MSG_PENDING;
	}
	if (!why)
		why = conf_refusal(d, cc, &code);
	if (why) {
		raftd_propose_err(d, PROC_GATEWAYD, hdr->id, code, why);
		goto out;
	}
	struct raft_ent *x = raft_ent_new(0, 0,
					  RAFTPB__ENTRY_TYPE__EntryConfChange,
					  body, hdr->len);
	if (!x)
		worker_fatal(d->w, "raftd: out of memory");
	/* The leader removing itself hands leadership over first, so the
	 * cluster is not left leaderless for an election timeout. */
	uint64_t to = 0;
	if (cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode &&
	    cc->nodeid == d->id && raft_lead(d->r) == d->id)
		to = raft_transfer_target(d->r);
	if (to != 0) {
		log_info("raft", "%llx is removing itself: transferring "
			 "leadership to %llx first", (unsigned long long)d->id,
			 (unsigned long long)to);
		raft_transfer_leader(d->r, to);
		d->cc_held = x;
		d->cc_held_id = hdr->id;
		d->cc_held_deadline = d->ticks + (uint64_t)d->election_ticks;
	} else {
		raftd_queue_prop(d, PROC_GATEWAYD, hdr->id, x);
	}
out:
	protobuf_c_message_free_unpacked(&cc->base, NULL);
}

void raftd_conf_release(struct raftd *d)
{
	if (!d->cc_held)
		return;
	uint64_t lead = raft_lead(d->r);
	bool moved = lead != 0 && lead != d->id;
	if (!moved && d->ticks < d->cc_held_deadline)
		return;
	/* Forwarded to the new leader, or (hand-over failed) appended
	 * here: this leader then steps down when it applies it. */
	struct raft_ent *x = d->cc_held;
	d->cc_held = NULL;
	raftd_queue_prop(d, PROC_GATEWAYD, d->cc_held_id, x);
}

void raftd_conf_apply(struct raftd *d, const Raftpb__Entry *e)
{
	Raftpb__ConfChange *cc =
		raftpb__conf_change__unpack(NULL, e->data.len, e->data.data);
	if (!cc) {
		log_warn("raft", "%llx ignored an undecodable conf change at "
			 "index %llu", (unsigned long long)d->id,
			 (unsigned long long)e->index);
		return;
	}
	int rc = raft_apply_conf_change(d->r, cc);
	if (rc == -EINVAL) {
		/* Valid when proposed, not any more (or never, if proposed
		 * elsewhere): nothing changes here nor in storaged. */
		log_info("raft", "%llx skipped conf change %d for %llx at "
			 "index %llu: invalid for the configuration then",
			 (unsigned long long)d->id, cc->type,
			 (unsigned long long)cc->nodeid,
			 (unsigned long long)e->index);
	} else if (rc < 0) {
		worker_fatal(d->w, "raftd: cannot apply conf change at %llu: %s",
			     (unsigned long long)e->index, strerror(-rc));
	} else if (cc->type == RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode &&
		   cc->nodeid == d->id && !d->removed_at) {
		d->removed_at = e->index;
		d->removed_tick = d->ticks;
	}
	raftpb__conf_change__free_unpacked(cc, NULL);
}

void raftd_conf_check_removed(struct raftd *d)
{
	if (!d->removed_at || d->stopping)
		return;
	/* The entry is in the WAL (applied after it was persisted); wait
	 * for storaged to have it too, so that the member list it answers
	 * the proposer with is the new one, and give the others the time
	 * etcd gives them to learn of the commit. A storaged that does not
	 * come back is not waited for past the request timeout. */
	uint64_t t = d->ticks - d->removed_tick;
	bool stored = d->stor_applied >= d->removed_at;
	if (t < REMOVED_DELAY_TICKS || (!stored && t < d->read_timeout_ticks))
		return;
	raftd_removed_exit(d);
}

void raftd_removed_exit(struct raftd *d)
{
	log_err("etcdserver", MSG_REMOVED);
	log_info("etcdserver", "the data-dir used by this member must be "
		 "removed.");
	worker_member_done(d->w, MSG_REMOVED);
}
