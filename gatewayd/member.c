/*
 * The membership API: member add, remove, update and promote become one
 * raftpb.ConfChange each (MSG_CONF_CHANGE to raftd, ID = request ID), whose
 * outcome storaged reports once applied, as for a put. Member add first
 * asks storaged for the member list, to refuse a peer URL in use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "member.h"
#include "memberid.h"
#include "raft.pb-c.h"
#include "rpc.pb-c.h"

#define ERR_TIMEOUT "etcdserver: request timed out"
#define ERR_BAD_URLS "etcdserver: given member URLs are invalid"
#define ERR_URL_EXISTS "etcdserver: Peer URLs already exists"
#define ERR_ID_EXISTS "etcdserver: member ID already exist"
#define ERR_TOO_MANY "etcdserver: too many requests"
/* etcd 3.4 maps this error to no gRPC code: Unknown (2), HTTP 500. */
#define ERR_NOT_STARTED \
	"etcdserver: re-configuration failed due to not enough started members"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void member_sort_urls(char **urls, size_t n)
{
	if (n > 1)
		qsort(urls, n, sizeof(*urls), cmp_str);
}

/*
 * Sends ConfChange{ID = p->id, type, node, Context = ctx encoded} to raftd
 * and waits for storaged's MSG_RESULT (or raftd's MSG_PROPOSE_ERR).
 */
static void send_cc(struct gw *gw, struct pending *p, Raftpb__ConfChangeType type,
		    uint64_t node, const Etcdserverpb__Member *ctx)
{
	Raftpb__ConfChange cc = RAFTPB__CONF_CHANGE__INIT;
	uint8_t *buf = NULL;

	cc.id = p->id;
	cc.type = type;
	cc.nodeid = node;
	if (ctx) {
		size_t n = protobuf_c_message_get_packed_size(&ctx->base);
		buf = arena_alloc(&p->arena, n ? n : 1);
		if (!buf) {
			pending_fail(gw, p, 8, ERR_TOO_MANY);
			return;
		}
		cc.context.data = buf;
		cc.context.len = protobuf_c_message_pack(&ctx->base, buf);
	}
	/* As for a put: without storaged the outcome would never come. */
	if (!gw->w->peer[PROC_RAFTD] || !gw->w->peer[PROC_STORAGED] ||
	    worker_send_pb(gw->w, PROC_RAFTD, MSG_CONF_CHANGE, p->id,
			   &cc.base) < 0) {
		pending_fail(gw, p, 14, ERR_TIMEOUT);
		return;
	}
	p->wait = PW_PROPOSE;
}

/* Asks storaged for the member list; member_on_list goes on. */
static void ask_list(struct gw *gw, struct pending *p)
{
	Etcdserverpb__MemberListRequest lr = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
	Ipc__Query q = IPC__QUERY__INIT;
	q.query_case = IPC__QUERY__QUERY_MEMBER_LIST;
	q.member_list = &lr;
	p->wait = PW_QUERY;
	if (!gw->w->peer[PROC_STORAGED] ||
	    worker_send_pb(gw->w, PROC_STORAGED, MSG_QUERY, p->id, &q.base) < 0)
		pending_fail(gw, p, 14, ERR_TIMEOUT);
}

/* Member add, once decoded: the new member (p->msg from now on), then the
 * member list, to compare peer URLs. */
static void add(struct gw *gw, struct pending *p)
{
	Etcdserverpb__MemberAddRequest *r = (Etcdserverpb__MemberAddRequest *)p->msg;
	Etcdserverpb__Member *m = arena_zalloc(&p->arena, sizeof(*m));
	char **urls = r->n_peerurls
		? arena_alloc(&p->arena, r->n_peerurls * sizeof(*urls)) : NULL;

	if (!m || (r->n_peerurls && !urls)) {
		pending_fail(gw, p, 8, ERR_TOO_MANY);
		return;
	}
	/* types.NewURLs refuses an empty list too. */
	if (r->n_peerurls == 0) {
		pending_fail(gw, p, 3, ERR_BAD_URLS);
		return;
	}
	for (size_t i = 0; i < r->n_peerurls; i++) {
		int e = peerurl_check(r->peerurls[i], &p->arena, &urls[i]);
		if (e < 0) {
			pending_fail(gw, p, e == -EINVAL ? 3 : 8,
				     e == -EINVAL ? ERR_BAD_URLS : ERR_TOO_MANY);
			return;
		}
	}
	member_sort_urls(urls, r->n_peerurls);
	etcdserverpb__member__init(m);
	m->peerurls = urls;
	m->n_peerurls = r->n_peerurls;
	m->islearner = r->islearner;
	/* etcd 3.4's v3 MemberAdd passes an empty cluster name to
	 * NewMember: the initial cluster token does not enter the ID. */
	m->id = memberid_new((const char *const *)urls, m->n_peerurls, "",
			     (int64_t)time(NULL));
	p->msg = &m->base;
	ask_list(gw, p);
}

/*
 * etcd's IsReadyToAddVotingMember / IsReadyToRemoveVotingMember under
 * --strict-reconfig-check: a quorum of the voters after the change must
 * have started (published their name), or the change could leave the
 * cluster waiting on members that never came up. One started member of
 * two may add (etcd's exception for restoring a cluster from one member).
 */
static int enough_started(const Etcdserverpb__MemberListResponse *l,
			  int adding, uint64_t removing)
{
	int nmembers = adding, nstarted = 0;
	for (size_t i = 0; i < l->n_members; i++) {
		const Etcdserverpb__Member *o = l->members[i];
		if (o->islearner || (!adding && o->id == removing))
			continue;
		nstarted += o->name && o->name[0];
		nmembers++;
	}
	if (adding && nstarted == 1 && nmembers == 2)
		return 1;
	return nstarted >= nmembers / 2 + 1;
}

/* A removal of a voter first needs the member list. */
static void remove_member(struct gw *gw, struct pending *p)
{
	if (!gw->w->cfg->strict_reconfig_check) {
		Etcdserverpb__MemberRemoveRequest *r =
			(Etcdserverpb__MemberRemoveRequest *)p->msg;
		send_cc(gw, p, RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode,
			r->id, NULL);
		return;
	}
	ask_list(gw, p);
}

static void removal_listed(struct gw *gw, struct pending *p,
			   const Etcdserverpb__MemberListResponse *l)
{
	Etcdserverpb__MemberRemoveRequest *r =
		(Etcdserverpb__MemberRemoveRequest *)p->msg;
	int learner = 0;
	for (size_t i = 0; i < l->n_members; i++)
		learner |= l->members[i]->id == r->id && l->members[i]->islearner;
	if (!learner && !enough_started(l, 0, r->id)) {
		pending_fail(gw, p, 2, ERR_NOT_STARTED);
		return;
	}
	send_cc(gw, p, RAFTPB__CONF_CHANGE_TYPE__ConfChangeRemoveNode, r->id,
		NULL);
}

void member_on_list(struct gw *gw, struct pending *p, const Ipc__Result *r)
{
	const Etcdserverpb__Member *m = (const Etcdserverpb__Member *)p->msg;

	if (r->error) {
		pending_fail(gw, p, r->error->code, r->error->message);
		return;
	}
	if (r->response_case != IPC__RESULT__RESPONSE_MEMBER_LIST) {
		pending_fail(gw, p, 13, "etcdserver: no response");
		return;
	}
	const Etcdserverpb__MemberListResponse *l = r->member_list;
	if (p->kind == PK_MEMBER_REMOVE) {
		removal_listed(gw, p, l);
		return;
	}
	if (gw->w->cfg->strict_reconfig_check && !m->islearner &&
	    !enough_started(l, 1, 0)) {
		pending_fail(gw, p, 2, ERR_NOT_STARTED);
		return;
	}
	/* etcd's ValidateConfigurationChange for ConfChangeAddNode, which
	 * it runs at apply; storaged runs it there again. */
	for (size_t i = 0; i < l->n_members; i++) {
		const Etcdserverpb__Member *o = l->members[i];
		if (o->id == m->id) {
			pending_fail(gw, p, 9, ERR_ID_EXISTS);
			return;
		}
		for (size_t j = 0; j < o->n_peerurls; j++)
			for (size_t k = 0; k < m->n_peerurls; k++)
				if (strcmp(o->peerurls[j], m->peerurls[k]) == 0) {
					pending_fail(gw, p, 9, ERR_URL_EXISTS);
					return;
				}
	}
	send_cc(gw, p,
		m->islearner ? RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddLearnerNode
			     : RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
		m->id, m);
}

void member_handle(struct gw *gw, struct pending *p)
{
	Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;

	switch (p->kind) {
	case PK_MEMBER_ADD:
		add(gw, p);
		return;
	case PK_MEMBER_REMOVE:
		remove_member(gw, p);
		return;
	case PK_MEMBER_UPDATE: {
		/* etcd checks neither the URLs' syntax nor their number
		 * here; a URL in use by another member is refused at apply. */
		Etcdserverpb__MemberUpdateRequest *r =
			(Etcdserverpb__MemberUpdateRequest *)p->msg;
		m.id = r->id;
		m.peerurls = r->peerurls;
		m.n_peerurls = r->n_peerurls;
		send_cc(gw, p, RAFTPB__CONF_CHANGE_TYPE__ConfChangeUpdateNode,
			r->id, &m);
		return;
	}
	case PK_MEMBER_PROMOTE: {
		/* etcd promotes with ConfChangeAddNode for the learner. */
		Etcdserverpb__MemberPromoteRequest *r =
			(Etcdserverpb__MemberPromoteRequest *)p->msg;
		m.id = r->id;
		send_cc(gw, p, RAFTPB__CONF_CHANGE_TYPE__ConfChangeAddNode,
			r->id, &m);
		return;
	}
	default:
		pending_fail(gw, p, 13, "etcdserver: internal error");
		return;
	}
}
