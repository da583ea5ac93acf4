/*
 * gatewayd: every network socket of a member. It serves etcd's JSON gateway
 * on the client listeners, turns requests into proposals for raftd and
 * queries for storaged, and answers when their results come back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/http.h>

#include "gatewayd.h"
#include "gw.h"
#include "gw_tls.h"
#include "log.h"
#include "modes.h"
#include "pbjson.h"
#include "peer.h"
#include "raft_internal.pb-c.h"

#define ERR_TIMEOUT "etcdserver: request timed out"
#define ERR_LEASE_NOT_FOUND "etcdserver: requested lease not found"
#define TICK_MS 50

static uint64_t unix_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void gw_propose(struct gw *gw, struct pending *p, ProtobufCMessage *irr)
{
	/* Without raftd nothing can be proposed, and without storaged the
	 * outcome would never be known: fail now rather than at the deadline. */
	if (!gw->w->peer[PROC_RAFTD] || !gw->w->peer[PROC_STORAGED] ||
	    worker_send_pb(gw->w, PROC_RAFTD, MSG_PROPOSE, p->id, irr) < 0) {
		pending_fail(gw, p, 14, ERR_TIMEOUT);
		return;
	}
	p->wait = PW_PROPOSE;
}

static void send_query(struct gw *gw, struct pending *p, uint64_t min_applied)
{
	Ipc__Query q = IPC__QUERY__INIT;
	q.min_applied = min_applied;
	switch (p->kind) {
	case PK_MEMBER_LIST:
	case PK_PEER_MEMBERS:
		q.query_case = IPC__QUERY__QUERY_MEMBER_LIST;
		q.member_list = (Etcdserverpb__MemberListRequest *)p->msg;
		break;
	case PK_STATUS:
		q.query_case = IPC__QUERY__QUERY_STATUS;
		q.status = (Etcdserverpb__StatusRequest *)p->msg;
		break;
	case PK_TXN:
		q.query_case = IPC__QUERY__QUERY_TXN;
		q.txn = (Etcdserverpb__TxnRequest *)p->msg;
		break;
	case PK_LEASE_TTL:
		q.query_case = IPC__QUERY__QUERY_LEASE_TIME_TO_LIVE;
		q.lease_time_to_live = (Etcdserverpb__LeaseTimeToLiveRequest *)p->msg;
		break;
	case PK_V2:
		q.query_case = IPC__QUERY__QUERY_V2;
		q.v2 = (Etcdserverpb__Request *)p->msg;
		break;
	case PK_LEASE_LEASES:
		q.query_case = IPC__QUERY__QUERY_LEASE_LEASES;
		q.lease_leases = (Etcdserverpb__LeaseLeasesRequest *)p->msg;
		break;
	default:
		q.query_case = IPC__QUERY__QUERY_RANGE;
		q.range = (Etcdserverpb__RangeRequest *)p->msg;
		break;
	}
	p->wait = PW_QUERY;
	if (worker_send_pb(gw->w, PROC_STORAGED, MSG_QUERY, p->id, &q.base) < 0)
		pending_fail(gw, p, 14, ERR_TIMEOUT);
}

void gw_read(struct gw *gw, struct pending *p, int linearizable)
{
	if (!linearizable) {
		send_query(gw, p, 0);
		return;
	}
	p->wait = PW_READINDEX;
	p->in_ri = 1;
	TAILQ_INSERT_TAIL(&gw->ri_wait, p, rq);
	/* Start the round once this loop pass has read every request that
	 * arrived with this one: they all share it. */
	if (!gw->ri_id)
		event_active(gw->ri_ev, EV_TIMEOUT, 0);
}

static void start_round(struct gw *gw)
{
	struct pending *p;
	if (gw->ri_id || TAILQ_EMPTY(&gw->ri_wait))
		return;
	if (!gw->w->peer[PROC_RAFTD]) {
		while ((p = TAILQ_FIRST(&gw->ri_wait)))
			pending_fail(gw, p, 14, ERR_TIMEOUT);
		return;
	}
	gw->ri_id = reqid_next(&gw->ids);
	while ((p = TAILQ_FIRST(&gw->ri_wait))) {
		TAILQ_REMOVE(&gw->ri_wait, p, rq);
		TAILQ_INSERT_TAIL(&gw->ri_round, p, rq);
		p->in_ri = 2;
	}
	if (worker_send(gw->w, PROC_RAFTD, MSG_READINDEX, gw->ri_id, NULL, 0) < 0) {
		gw->ri_id = 0;
		while ((p = TAILQ_FIRST(&gw->ri_round)))
			pending_fail(gw, p, 14, ERR_TIMEOUT);
	}
}

static void on_ri_ev(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_round(arg);
}

static void on_readindex(struct gw *gw, const struct msg_hdr *hdr,
			 const uint8_t *body)
{
	Ipc__ReadIndexResp *r = MSG_UNPACK(Ipc__ReadIndexResp,
					   ipc__read_index_resp, body, hdr->len);
	if (!r)
		worker_fatal(gw->w, "gatewayd: bad MSG_READINDEX_RESP from raftd");
	if (hdr->id == gw->ri_id && gw->ri_id) {
		struct pending *p;
		gw->ri_id = 0;
		while ((p = TAILQ_FIRST(&gw->ri_round))) {
			TAILQ_REMOVE(&gw->ri_round, p, rq);
			p->in_ri = 0;
			if (r->error)
				pending_fail(gw, p, r->error->code,
					     r->error->message);
			else
				send_query(gw, p, r->index);
		}
		/* What arrived during the round needs a round of its own. */
		start_round(gw);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/*
 * The response's header gets what gatewayd knows (storaged set revision).
 * Returns the header slot when it had to be pointed at spare, which the
 * caller resets before protobuf-c frees the response.
 */
static Etcdserverpb__ResponseHeader **
fill_header(struct gw *gw, ProtobufCMessage *resp,
	    Etcdserverpb__ResponseHeader *spare)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(resp->descriptor,
								"header");
	if (!f || f->descriptor != &etcdserverpb__response_header__descriptor)
		return NULL;
	Etcdserverpb__ResponseHeader **hp =
		(Etcdserverpb__ResponseHeader **)((char *)resp + f->offset);
	Etcdserverpb__ResponseHeader **ret = NULL;
	if (!*hp) {
		*hp = spare;
		ret = hp;
	}
	gw_fill_header(gw, *hp);
	return ret;
}

void gw_fill_header(struct gw *gw, Etcdserverpb__ResponseHeader *h)
{
	h->cluster_id = gw->cluster_id;
	h->member_id = gw->member_id;
	h->raft_term = gw->term;
	if (h->revision > gw->rev_seen)
		gw->rev_seen = h->revision;
}

static ProtobufCMessage *response_of(Ipc__Result *r)
{
	switch (r->response_case) {
	case IPC__RESULT__RESPONSE_RANGE: return &r->range->base;
	case IPC__RESULT__RESPONSE_PUT: return &r->put->base;
	case IPC__RESULT__RESPONSE_DELETE_RANGE: return &r->delete_range->base;
	case IPC__RESULT__RESPONSE_TXN: return &r->txn->base;
	case IPC__RESULT__RESPONSE_COMPACTION: return &r->compaction->base;
	case IPC__RESULT__RESPONSE_MEMBER_LIST: return &r->member_list->base;
	case IPC__RESULT__RESPONSE_STATUS: return &r->status->base;
	case IPC__RESULT__RESPONSE_LEASE_GRANT: return &r->lease_grant->base;
	case IPC__RESULT__RESPONSE_LEASE_REVOKE: return &r->lease_revoke->base;
	case IPC__RESULT__RESPONSE_LEASE_TIME_TO_LIVE:
		return &r->lease_time_to_live->base;
	case IPC__RESULT__RESPONSE_LEASE_LEASES: return &r->lease_leases->base;
	case IPC__RESULT__RESPONSE_MEMBER_ADD: return &r->member_add->base;
	case IPC__RESULT__RESPONSE_MEMBER_REMOVE: return &r->member_remove->base;
	case IPC__RESULT__RESPONSE_MEMBER_UPDATE: return &r->member_update->base;
	case IPC__RESULT__RESPONSE_MEMBER_PROMOTE:
		return &r->member_promote->base;
	default: return NULL;
	}
}

/* Prints resp and answers p's client with it; frees p. */
static void answer(struct gw *gw, struct pending *p, Ipc__Result *r,
		   ProtobufCMessage *resp)
{
	Etcdserverpb__ResponseHeader spare = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__ResponseHeader **spare_slot = fill_header(gw, resp, &spare);
	char version[] = ETCD_VERSION;
	char *old_version = NULL;
	char no_leader[] = "etcdserver: no leader";
	char *errors[] = {no_leader};
	struct jbuf b = JBUF_INIT;

	if (p->kind == PK_STATUS && r->response_case == IPC__RESULT__RESPONSE_STATUS) {
		/* Ours to say: storaged knows the store, raftd the rest. */
		Etcdserverpb__StatusResponse *st = r->status;
		old_version = st->version;
		st->version = version;
		st->leader = gw->leader;
		st->raftindex = gw->commit;
		st->raftterm = gw->term;
		st->islearner = gw->learner;
		/* etcd lists the member's alarms and "no leader" here. */
		if (!gw->leader) {
			st->n_errors = 1;
			st->errors = errors;
		}
	}
	pbjson_encode(&b, resp);
	/* Nothing of our stack may stay in what protobuf-c frees. */
	if (spare_slot)
		*spare_slot = NULL;
	if (old_version) {
		r->status->version = old_version;
		r->status->n_errors = 0;
		r->status->errors = NULL;
	}

	struct evhttp_request *req = pending_take_req(p);
	if (req && !b.oom) {
		size_t len;
		char *out = jbuf_steal(&b, &len);
		http_reply_json(req, out, len, 1);
	} else if (req) {
		http_reply_error(req, 8, "etcdserver: too many requests");
	}
	jbuf_clear(&b);
	pending_free(gw, p);
}

static void on_result(struct gw *gw, const struct msg_hdr *hdr,
		      const uint8_t *body)
{
	struct pending *p = u64map_get(&gw->pend, hdr->id);
	if (!p && peer_on_result(gw, hdr->id, body, hdr->len))
		return;
	if (!p && !u64map_get(&gw->wq, hdr->id))
		return; /* timed out or failed meanwhile */
	Ipc__Result *r = MSG_UNPACK(Ipc__Result, ipc__result, body, hdr->len);
	if (!r)
		worker_fatal(gw->w, "gatewayd: bad MSG_RESULT from storaged");
	ProtobufCMessage *resp = response_of(r);
	Etcdserverpb__LeaseTimeToLiveResponse ttl =
		ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader ttl_h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

	if (!p) {
		stream_on_result(gw, hdr->id, r);
	} else if (p->kind == PK_V2) {
		v2_on_result(gw, p, r);
	} else if (p->kind == PK_V2_NEW) {
		v2_new_on_result(gw, p, r);
	} else if (p->kind == PK_PEER_MEMBERS) {
		peer_members_answer(gw, p, r);
	} else if ((p->kind == PK_MEMBER_ADD || p->kind == PK_MEMBER_REMOVE) &&
		   p->wait == PW_QUERY) {
		member_on_list(gw, p, r);
	} else if (p->kind == PK_MEMBER_ADD && !r->error &&
		   r->response_case == IPC__RESULT__RESPONSE_MEMBER_ADD &&
		   !r->member_add->member) {
		/* etcd prints the member it built; ours is p's. */
		r->member_add->member = (Etcdserverpb__Member *)p->msg;
		answer(gw, p, r, resp);
		r->member_add->member = NULL;
	} else if (p->kind == PK_LEASE_TTL && r->error && r->error->code == 5 &&
		   strcmp(r->error->message, ERR_LEASE_NOT_FOUND) == 0) {
		/* etcd answers an unknown lease's time-to-live with -1. */
		ttl.header = &ttl_h;
		ttl_h.revision = gw->rev_seen;
		ttl.id = ((Etcdserverpb__LeaseTimeToLiveRequest *)p->msg)->id;
		ttl.ttl = -1;
		Ipc__Error *e = r->error;
		r->error = NULL;
		answer(gw, p, r, &ttl.base);
		r->error = e;
	} else if (p->kind == PK_HEALTH) {
		struct evhttp_request *req = pending_take_req(p);
		if (req)
			http_reply_health(req, !r->error);
		pending_free(gw, p);
	} else if (r->error || !resp) {
		pending_fail(gw, p, r->error ? r->error->code : 13,
			     r->error ? r->error->message
				      : "etcdserver: no response");
	} else {
		answer(gw, p, r, resp);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void on_propose_err(struct gw *gw, const struct msg_hdr *hdr,
			   const uint8_t *body)
{
	Ipc__Error *e = MSG_UNPACK(Ipc__Error, ipc__error, body, hdr->len);
	if (!e)
		worker_fatal(gw->w, "gatewayd: bad MSG_PROPOSE_ERR from raftd");
	struct pending *p = u64map_get(&gw->pend, hdr->id);
	if (p)
		pending_fail(gw, p, e->code, e->message);
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void on_raft_state(struct gw *gw, const struct msg_hdr *hdr,
			  const uint8_t *body)
{
	Ipc__RaftState *s = MSG_UNPACK(Ipc__RaftState, ipc__raft_state, body,
				       hdr->len);
	if (!s)
		worker_fatal(gw->w, "gatewayd: bad MSG_RAFT_STATE from raftd");
	if (s->leader != gw->leader) {
		if (s->leader)
			log_info("etcdserver", "leader is %016llx at term %llu",
				 (unsigned long long)s->leader,
				 (unsigned long long)s->term);
		else
			log_info("etcdserver", "no leader at term %llu",
				 (unsigned long long)s->term);
	}
	gw->term = s->term;
	gw->leader = s->leader;
	gw->commit = s->commit;
	gw->learner = s->is_learner;
	gw->member = s->is_member;
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	struct gw *gw = w->arg;
	/* Only a snapshot's files come with a descriptor. */
	if (from == PROC_STORAGED && hdr->type == MSG_SNAP_FILE) {
		snap_on_file(gw, hdr->id, body, hdr->len, fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	switch (from) {
	case PROC_RAFTD:
		switch (hdr->type) {
		case MSG_PROPOSE_ERR:
			on_propose_err(gw, hdr, body);
			return;
		case MSG_READINDEX_RESP:
			on_readindex(gw, hdr, body);
			return;
		case MSG_RAFT_STATE:
			on_raft_state(gw, hdr, body);
			return;
		case MSG_RAFT_MSG:
			peer_send_msg(gw, body, hdr->len);
			return;
		}
		break;
	case PROC_STORAGED:
		if (hdr->type == MSG_RESULT) {
			on_result(gw, hdr, body);
			return;
		}
		if (hdr->type == MSG_WATCH_EVENTS) {
			watch_on_events(gw, body, hdr->len);
			return;
		}
		if (hdr->type == MSG_SNAP_ACK) {
			snap_on_ack(gw, hdr->id, body, hdr->len);
			return;
		}
		break;
	default:
		break;
	}
	if (hdr->type == MSG_METRICS_RESP &&
	    (from == PROC_SUPERVISOR || from == PROC_RAFTD ||
	     from == PROC_STORAGED)) {
		gwm_on_resp(gw, from, hdr->id, body, hdr->len);
		return;
	}
	log_warn("embed", "unexpected %s from %s", msg_type_name(hdr->type),
		 proc_name(from));
}

static int waits_on_raftd(const struct pending *p)
{
	return p->wait == PW_PROPOSE || p->wait == PW_READINDEX;
}

static int waits_on_storaged(const struct pending *p)
{
	return p->wait == PW_PROPOSE || p->wait == PW_QUERY;
}

static void on_peer_down(struct worker *w, enum proc_role role)
{
	struct gw *gw = w->arg;
	/* Whatever was in flight there may or may not have happened: an
	 * error is honest, waiting for the deadline would not help. */
	if (role == PROC_RAFTD) {
		gw->ri_id = 0;
		gw->leader = 0;
		pending_fail_if(gw, waits_on_raftd, 14, ERR_TIMEOUT);
		snap_raftd_down(gw);
	} else if (role == PROC_STORAGED) {
		pending_fail_if(gw, waits_on_storaged, 14, ERR_TIMEOUT);
		watch_storaged_down(gw);
		stream_storaged_down(gw);
		snap_storaged_down(gw);
	}
	log_warn("embed", "lost %s: failed the requests waiting on it",
		 proc_name(role));
}

static void on_peer_up(struct worker *w, enum proc_role role)
{
	struct gw *gw = w->arg;
	/* A restarted storaged knows no watcher: register them again, each
	 * from the revision after the last one its client got. */
	if (role == PROC_STORAGED && gw->w) {
		log_info("embed", "%s is up: re-creating %zu watches",
			 proc_name(role), gw->n_watches);
		watch_storaged_up(gw);
	}
	if (role == PROC_STORAGED && gw->w)
		peer_storaged_up(gw);
}

static void on_listener(struct worker *w, const Ipc__Listener *l, int fd)
{
	struct gw *gw = w->arg;
	/* Listeners come before MSG_START: set up on the first one. */
	if (gw_init(gw, w) < 0)
		worker_fatal(w, "gatewayd: cannot start");
	if (gw->gateway) {
		if (gateway_listen(gw, fd) < 0)
			worker_fatal(w, "cannot serve %s", l->url);
		return;
	}
	if (http_listen(gw, l->url, l->peer, fd) < 0)
		worker_fatal(w, "cannot serve %s", l->url);
	log_info("embed", "serving %s traffic on %s", l->peer ? "peer" : "client",
		 l->url);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct gw *gw = arg;
	pending_expire(gw, gw_now_ms());
}

/* The resolver ETCDC_RESOLVER names: "IP[:port]" or a resolv.conf file. */
static int dns_init(struct gw *gw, const char *res)
{
	if (!res || !res[0])
		return 0;
	gw->dns = evdns_base_new(gw->base, 0);
	if (!gw->dns)
		return -ENOMEM;
	int r = strchr(res, '/')
		? evdns_base_resolv_conf_parse(gw->dns, DNS_OPTIONS_ALL, res)
		: evdns_base_nameserver_ip_add(gw->dns, res);
	if (r != 0) {
		log_crit("etcdmain", "cannot use the resolver %s (ETCDC_RESOLVER)",
			 res);
		return -EINVAL;
	}
	return 0;
}

int gw_init(struct gw *gw, struct worker *w)
{
	const Ipc__WorkerConfig *cfg = w->cfg;
	if (gw->w)
		return 0; /* already, by an early listener */
	if (!cfg)
		return -EINVAL;
	memset(gw, 0, sizeof(*gw));
	gw->w = w;
	gw->base = w->base;
	gw->member_id = cfg->member_id;
	gw->cluster_id = cfg->cluster_id;
	gw->max_request_bytes = cfg->max_request_bytes ? cfg->max_request_bytes
						       : 1572864;
	gw->grpc_max = gw->max_request_bytes + (512u << 10);
	gw->max_txn_ops = cfg->max_txn_ops ? cfg->max_txn_ops : 128;
	gw->timeout_ms = 5000 + 2 * (uint64_t)(cfg->election_timeout_ms
						       ? cfg->election_timeout_ms
						       : 1000);
	gw->accepting = 1;
	reqid_init(&gw->ids, gw->member_id, unix_ms());
	TAILQ_INIT(&gw->dq_req);
	TAILQ_INIT(&gw->dq_health);
	TAILQ_INIT(&gw->dq_none);
	TAILQ_INIT(&gw->ri_round);
	TAILQ_INIT(&gw->ri_wait);
	TAILQ_INIT(&gw->m_wait);
	LIST_INIT(&gw->streams);
	gw->ri_ev = event_new(gw->base, -1, 0, on_ri_ev, gw);
	gw->tick = event_new(gw->base, -1, EV_PERSIST, on_tick, gw);
	if (!gw->ri_ev || !gw->tick) {
		gw_done(gw);
		return -ENOMEM;
	}
	int r;
	if ((r = dns_init(gw, cfg->dns_resolver)) < 0 ||
	    (r = gw_tls_init(gw)) < 0 || (r = peer_init(gw)) < 0 ||
	    (r = snap_init(gw)) < 0 ||
	    (cfg->gateway && (r = gateway_init(gw)) < 0) ||
	    (cfg->proxy && (r = proxy_init(gw)) < 0)) {
		gw_done(gw);
		return r;
	}
	struct timeval tv = { 0, TICK_MS * 1000 };
	event_add(gw->tick, &tv);
	return 0;
}

void gw_done(struct gw *gw)
{
	struct pending *p;
	/* Answer what is still open before the sockets go. */
	while ((p = TAILQ_FIRST(&gw->dq_req)))
		pending_fail(gw, p, 14, ERR_TIMEOUT);
	while ((p = TAILQ_FIRST(&gw->dq_health)))
		pending_fail(gw, p, 14, ERR_TIMEOUT);
	while ((p = TAILQ_FIRST(&gw->dq_none)))
		pending_fail(gw, p, 14, ERR_TIMEOUT);
	gwm_done(gw);
	gateway_done(gw);
	/* Closing the connections ends the streams and their watches. */
	http_close_all(gw);
	proxy_done(gw);
	/* After the connections: their close callbacks still see it. */
	snap_done(gw);
	peer_done(gw);
	pstat_done(gw);
	/* After every connection: their SSLs point at it. */
	gw_tls_done(gw);
	/* Pending lookups fail (1): their connections are gone already. */
	if (gw->dns)
		evdns_base_free(gw->dns, 1);
	gw->dns = NULL;
	if (gw->ri_ev)
		event_free(gw->ri_ev);
	if (gw->tick)
		event_free(gw->tick);
	gw->ri_ev = gw->tick = NULL;
	u64map_clear(&gw->pend);
	u64map_clear(&gw->watchers);
	u64map_clear(&gw->wq);
	u64map_clear(&gw->conns);
	gw->w = NULL;
}

static int on_start(struct worker *w)
{
	if (gw_init(w->arg, w) < 0) {
		log_err("embed", "gatewayd: cannot start");
		return -1;
	}
	return 0;
}

static void on_stop(struct worker *w)
{
	gw_done(w->arg);
}

const struct worker_ops gatewayd_ops = {
	.on_msg = on_msg,
	.on_peer_down = on_peer_down,
	.on_peer_up = on_peer_up,
	.on_listener = on_listener,
	.on_start = on_start,
	.on_stop = on_stop,
};

int gatewayd_main(int argc, char **argv)
{
	static struct gw gw;
	return worker_run(PROC_GATEWAYD, &gatewayd_ops, &gw, argc, argv);
}
