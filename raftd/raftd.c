/*
 * raftd: the Raft process of a member. The only code here touching libevent
 * and the links: frames from gatewayd (proposals, reads, peer messages,
 * snapshot reports), storaged (applied indexes) and the supervisor (the
 * stop's hand-over) are gathered during a loop iteration and
 * handled together by raftd_flush at its end, so one fsync covers them all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "raftd.h"

static struct raftd raftd;

/* Runs raftd_flush after every frame of this iteration was handled: an
 * event activated now joins the tail of the active queue, behind the links'
 * read events that epoll already reported. */
static void want_flush(struct raftd *d)
{
	if (d->flush_ev && !d->stopping)
		event_active(d->flush_ev, EV_TIMEOUT, 0);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct raftd *d = arg;
	(void)fd;
	(void)what;
	if (!d->stopping)
		raftd_flush(d);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct raftd *d = arg;
	(void)fd;
	(void)what;
	if (d->stopping)
		return;
	d->ticks++;
	/* Handed over and stopping: no campaign to take leadership back. */
	if (d->shut != SHUT_DONE)
		raft_tick(d->r);
	raftd_expire_reads(d);
	raftd_snap_tick(d);
	raftd_shutdown_check(d);
	raftd_conf_check_removed(d);
	want_flush(d);
}

void raftd_queue_prop(struct raftd *d, enum proc_role from, uint64_t id,
		      struct raft_ent *x)
{
	if (d->n_props == d->cap_props) {
		size_t c = d->cap_props ? d->cap_props * 2 : 256;
		struct raft_ent **p = realloc(d->props, c * sizeof(*p));
		if (p)
			d->props = p;
		uint64_t *q = p ? realloc(d->prop_ids, c * sizeof(*q)) : NULL;
		if (q)
			d->prop_ids = q;
		uint8_t *f = q ? realloc(d->prop_from, c) : NULL;
		if (!f)
			worker_fatal(d->w, "raftd: out of memory");
		d->prop_from = f;
		d->cap_props = c;
	}
	d->props[d->n_props] = x;
	d->prop_from[d->n_props] = (uint8_t)from;
	d->prop_ids[d->n_props++] = id;
	want_flush(d);
}

/* A proposal from gatewayd (a client's) or storaged (a lease revoke); a
 * failure is answered on the link it came from. */
static void take_proposal(struct raftd *d, enum proc_role from,
			  const struct msg_hdr *hdr, const uint8_t *body)
{
	uint32_t code;
	const char *why = raftd_shutdown_refusal(d, &code);
	if (why) {
		raftd_propose_err(d, from, hdr->id, code, why);
		return;
	}
	if (raft_lead(d->r) == 0) {
		raftd_propose_err(d, from, hdr->id, 14, "etcdserver: no leader");
		return;
	}
	if (hdr->len > d->max_proposal) {
		raftd_propose_err(d, from, hdr->id, 3,
				  "etcdserver: request is too large");
		return;
	}
	/* The one copy of the client's bytes: the WAL, peers and storaged
	 * all read this entry. */
	struct raft_ent *x = raft_ent_new(0, 0, RAFTPB__ENTRY_TYPE__EntryNormal,
					  body, hdr->len);
	if (!x)
		worker_fatal(d->w, "raftd: out of memory");
	raftd_queue_prop(d, from, hdr->id, x);
	want_flush(d);
}

static void take_read(struct raftd *d, uint64_t id)
{
	if (raft_lead(d->r) == 0) {
		d->reads_failed++;
		raftd_read_reply(d, id, 0, 14, "etcdserver: no leader");
		return;
	}
	if (d->reads_waiting >= RAFTD_MAX_READS) {
		d->reads_failed++;
		raftd_read_reply(d, id, 0, 8, "etcdserver: too many requests");
		return;
	}
	if (d->n_reads == d->cap_reads) {
		size_t c = d->cap_reads ? d->cap_reads * 2 : 256;
		uint64_t *p = realloc(d->reads, c * sizeof(*p));
		if (!p)
			worker_fatal(d->w, "raftd: out of memory");
		d->reads = p;
		d->cap_reads = c;
	}
	d->reads[d->n_reads++] = id;
	d->reads_waiting++;
	want_flush(d);
}

/*
 * A peer's message: its bytes come from the network through gatewayd, so
 * one that does not decode, or that the core refuses, is dropped with a
 * (rate-limited) warning rather than taken for a broken internal peer.
 */
static void take_raft_msg(struct raftd *d, const struct msg_hdr *hdr,
			  const uint8_t *body)
{
	Raftpb__Message *m = MSG_UNPACK(Raftpb__Message, raftpb__message, body,
					hdr->len);
	int rc = -EBADMSG;
	if (m && m->to == d->id && !raftd_conf_forward_ok(d, m))
		rc = 0; /* a forwarded conf change the leader refuses: dropped */
	else if (m && m->to == d->id)
		rc = raft_step(d->r, m);
	else if (m)
		rc = 0; /* for another member: a stale route, not an error */
	if (rc < 0) {
		uint64_t more;
		if (raftd_warn_ok(&d->warn_bad_msg, &more))
			log_warn("raft", "%llx dropped a malformed raft message "
				 "(%u bytes) from a peer (%llu similar suppressed)",
				 (unsigned long long)d->id, hdr->len,
				 (unsigned long long)more);
	}
	if (m)
		protobuf_c_message_free_unpacked(&m->base, NULL);
	want_flush(d);
}

static void raftd_dispatch_gatewayd(struct raftd *d, const struct msg_hdr *hdr,
				    const uint8_t *body)
{
	switch (hdr->type) {
	case MSG_PROPOSE:
		take_proposal(d, PROC_GATEWAYD, hdr, body);
		break;
	case MSG_CONF_CHANGE:
		raftd_conf_change(d, hdr, body);
		want_flush(d);
		break;
	case MSG_METRICS:
		raftd_metrics(d, hdr->id);
		break;
	case MSG_READINDEX:
		take_read(d, hdr->id);
		break;
	case MSG_RAFT_MSG:
		take_raft_msg(d, hdr, body);
		break;
	case MSG_SNAP_STATUS:
		raftd_snap_status(d, hdr, body);
		want_flush(d);
		break;
	default:
		worker_fatal(d->w, "raftd: unexpected %s from gatewayd",
			     msg_type_name(hdr->type));
	}
}

static void take_applied(struct raftd *d, const struct msg_hdr *hdr,
			 const uint8_t *body)
{
	Ipc__Applied *a = MSG_UNPACK(Ipc__Applied, ipc__applied, body, hdr->len);
	if (!a)
		worker_fatal(d->w, "raftd: bad MSG_APPLIED from storaged");
	if (!d->stor_synced) {
		/* storaged (re)started: resume right after what it holds. */
		if (a->index < raft_base_index(d->r))
			worker_fatal(d->w, "raftd: storaged applied %llu, but the "
				     "log starts after %llu",
				     (unsigned long long)a->index,
				     (unsigned long long)raft_base_index(d->r));
		d->stor_synced = true;
		d->stor_next = a->index + 1;
		d->stor_applied = a->index;
	}
	raftd_snap_stor_applied(d, a->index);
	if (a->durable_index > d->stor_durable)
		d->stor_durable = a->durable_index;
	protobuf_c_message_free_unpacked(&a->base, NULL);
	raftd_send_apply(d);
	raftd_maybe_compact(d);
	raftd_conf_check_removed(d);
}

static void raftd_dispatch_storaged(struct raftd *d, const struct msg_hdr *hdr,
				    const uint8_t *body)
{
	switch (hdr->type) {
	case MSG_APPLIED:
		take_applied(d, hdr, body);
		break;
	case MSG_PROPOSE:
		/* The lessor's revokes of expired leases. */
		take_proposal(d, PROC_STORAGED, hdr, body);
		break;
	default:
		worker_fatal(d->w, "raftd: unexpected %s from storaged",
			     msg_type_name(hdr->type));
	}
}

static void raftd_dispatch_supervisor(struct raftd *d,
				      const struct msg_hdr *hdr)
{
	switch (hdr->type) {
	case MSG_SHUTDOWN:
		raftd_shutdown_start(d);
		want_flush(d);
		break;
	default:
		log_warn("raftd", "ignored %s from the supervisor",
			 msg_type_name(hdr->type));
	}
}

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct raftd *d = w->arg;
	if (fd >= 0)
		worker_fatal(w, "raftd: unexpected descriptor from %s",
			     proc_name(from));
	if (d->stopping || !d->r)
		return;
	switch (from) {
	case PROC_GATEWAYD:
		raftd_dispatch_gatewayd(d, hdr, body);
		break;
	case PROC_STORAGED:
		raftd_dispatch_storaged(d, hdr, body);
		break;
	case PROC_SUPERVISOR:
		raftd_dispatch_supervisor(d, hdr);
		break;
	default:
		log_warn("raftd", "ignored %s from %s", msg_type_name(hdr->type),
			 proc_name(from));
	}
}

static void on_peer_up(struct worker *w, enum proc_role role)
{
	struct raftd *d = w->arg;
	if (!d->r)
		return;
	if (role == PROC_STORAGED)
		d->stor_synced = false; /* wait for its MSG_APPLIED */
	if (role == PROC_GATEWAYD || role == PROC_STORAGED)
		raftd_send_state(d, (int)role);
}

static void on_peer_down(struct worker *w, enum proc_role role)
{
	struct raftd *d = w->arg;
	if (role == PROC_STORAGED)
		d->stor_synced = false;
	if (role == PROC_GATEWAYD && d->r && !d->stopping) {
		raftd_snap_gw_down(d);
		want_flush(d);
	}
}

static int on_start(struct worker *w)
{
	struct raftd *d = w->arg;
	const Ipc__WorkerConfig *c = w->cfg;
	uint32_t hb = c->heartbeat_interval_ms ? c->heartbeat_interval_ms : 100;
	uint32_t el = c->election_timeout_ms ? c->election_timeout_ms : 1000;
	d->w = w;
	d->id = c->member_id;
	d->cluster_id = c->cluster_id;
	d->election_ticks = (int)(el / hb);
	if (d->election_ticks < 2)
		d->election_ticks = 2;
	d->snapshot_count = c->snapshot_count ? c->snapshot_count : 100000;
	d->strict_reconfig = c->strict_reconfig_check;
	uint64_t mrb = c->max_request_bytes ? c->max_request_bytes : 1572864;
	/* Room for the InternalRaftRequest wrapping around the request. */
	d->max_proposal = mrb + (1u << 20);
	/* etcd's ReqTimeout: 5 s plus two election timeouts. */
	d->read_timeout_ticks = (5000u + 2u * el) / hb;
	d->gw_queue_max = RAFTD_MAX_GW_QUEUE;
	d->read_seq = raftd_read_seq_start();
	d->flush_ev = event_new(w->base, -1, 0, on_flush, d);
	d->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, d);
	if (!d->flush_ev || !d->tick_ev)
		worker_fatal(w, "raftd: out of memory");
	if (raftd_boot(d) < 0)
		return -1;
	struct timeval tv = {.tv_sec = hb / 1000, .tv_usec = (hb % 1000) * 1000};
	event_add(d->tick_ev, &tv);
	return 0;
}

uint64_t raftd_read_seq_start(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	/* 65536 rounds per millisecond of downtime before ids could meet. */
	return ms << 16;
}

static void on_stop(struct worker *w)
{
	struct raftd *d = w->arg;
	/* Every WAL write is synced within the callback that made it, so
	 * nothing is half done here: stop handling frames and leave. */
	d->stopping = true;
	if (d->wal && wal_pending(d->wal) && wal_sync(d->wal, true) < 0)
		log_err("raftd", "final WAL sync failed");
	event_free(d->tick_ev);
	event_free(d->flush_ev);
	d->tick_ev = d->flush_ev = NULL;
}

static const struct worker_ops ops = {
	.on_msg = on_msg,
	.on_peer_up = on_peer_up,
	.on_peer_down = on_peer_down,
	.on_start = on_start,
	.on_stop = on_stop,
};

int raftd_main(int argc, char **argv)
{
	memset(&raftd, 0, sizeof(raftd));
	int rc = worker_run(PROC_RAFTD, &ops, &raftd, argc, argv);
	raft_free(raftd.r);
	wal_free(raftd.wal);
	for (size_t i = 0; i < raftd.n_props; i++)
		raft_ent_unref(raftd.props[i]);
	raft_ent_unref(raftd.cc_held);
	free(raftd.props);
	free(raftd.prop_ids);
	free(raftd.prop_from);
	return rc;
}
