/*
 * Snapshots as the driver sees them (docs/ARCHITECTURE.md, Snapshots). On
 * the leader: every MsgSnap the core emits ends in one report to it
 * (etcd's ReportSnapshot), from gatewayd's MSG_SNAP_STATUS, or from raftd
 * itself when the message never reached gatewayd. On a follower: the core
 * restored a snapshot whose data storaged installed first; entries after it
 * go to storaged once storaged's applied index shows it holds the snapshot.
 */
#include "log.h"
#include "raftd.h"

void raftd_snap_status(struct raftd *d, const struct msg_hdr *hdr,
		       const uint8_t *body)
{
	Ipc__SnapStatus *s = MSG_UNPACK(Ipc__SnapStatus, ipc__snap_status, body,
					hdr->len);
	if (!s)
		worker_fatal(d->w, "raftd: bad MSG_SNAP_STATUS from gatewayd");
	log_debug("raft", "%llx snapshot to %llx %s", (unsigned long long)d->id,
		  (unsigned long long)s->to, s->failed ? "failed" : "delivered");
	raft_report_snapshot(d->r, s->to, s->failed);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

/* etcd's peer does the same when its buffer is full: a MsgSnap that cannot
 * be queued is a failed snapshot, or the leader would wait for a status
 * that never comes. */
void raftd_snap_dropped(struct raftd *d, uint64_t to)
{
	for (size_t i = 0; i < d->n_snap_failed; i++)
		if (d->snap_failed[i] == to)
			return;
	if (d->n_snap_failed < RAFT_MAX_NODES)
		d->snap_failed[d->n_snap_failed++] = to;
}

/* A new gatewayd knows nothing of the old one's transfers: each is a
 * failure (a no-op for peers that were not being sent one). */
void raftd_snap_gw_down(struct raftd *d)
{
	struct raft_conf c;
	raft_conf_get(d->r, &c);
	for (int i = 0; i < c.n; i++)
		raft_report_snapshot(d->r, c.ids[i], true);
}

/* storaged holds the snapshot: resume after what it holds. */
static void snap_check(struct raftd *d)
{
	if (!d->snap_wait || !d->stor_synced || d->stor_applied < d->snap_wait)
		return;
	if (d->stor_next <= d->stor_applied)
		d->stor_next = d->stor_applied + 1;
	if (d->snap_wait_logged)
		log_notice("raft", "%llx storaged caught up with the snapshot at "
			   "index %llu (applied %llu)", (unsigned long long)d->id,
			   (unsigned long long)d->snap_wait,
			   (unsigned long long)d->stor_applied);
	d->snap_wait = 0;
	d->snap_wait_logged = false;
}

void raftd_snap_restored(struct raftd *d, uint64_t index, uint64_t term)
{
	log_info("raft", "%llx [commit: %llu] restored snapshot [index: %llu, "
		 "term: %llu]", (unsigned long long)d->id,
		 (unsigned long long)raft_commit(d->r),
		 (unsigned long long)index, (unsigned long long)term);
	/*
	 * gatewayd handed the MsgSnap over only after storaged installed the
	 * data, and storaged's MSG_APPLIED saying so may be here already, or
	 * still on its way (another link): hold entries back until it is.
	 */
	d->snap_wait = index;
	d->snap_wait_since = d->ticks;
	d->snap_wait_logged = false;
	snap_check(d);
}

void raftd_snap_stor_applied(struct raftd *d, uint64_t index)
{
	/* Past what raftd sent: storaged installed a snapshot. Never send it
	 * entries it holds. */
	if (index >= d->stor_next)
		d->stor_next = index + 1;
	if (index > d->stor_applied)
		d->stor_applied = index;
	snap_check(d);
}

void raftd_snap_tick(struct raftd *d)
{
	if (!d->snap_wait || d->snap_wait_logged ||
	    d->ticks - d->snap_wait_since < d->read_timeout_ticks)
		return;
	/* The design's order (storaged installs, then raftd takes the
	 * marker) makes this impossible; say so loudly rather than apply
	 * with a gap. */
	d->snap_wait_logged = true;
	log_err("raft", "%llx restored a snapshot at index %llu, but storaged "
		"reports applied index %llu%s: entries after the snapshot are "
		"held back until it holds the snapshot's data (a bug: storaged "
		"must install a snapshot before raftd takes it)",
		(unsigned long long)d->id, (unsigned long long)d->snap_wait,
		(unsigned long long)d->stor_applied,
		d->stor_synced ? "" : " (storaged is not connected)");
}
