/*
 * GET /members on the peer listener: the member list a new member fetches
 * when it joins with --initial-cluster-state existing (etcd's
 * etcdhttp.newPeerHandler). etcd's shape, not the v3 gateway's: a JSON
 * array sorted by ID, "id" a number, name and clientURLs left out until the
 * member has published them, no trailing newline; our cluster ID in the
 * X-Etcd-Cluster-Id header, which is where the joiner learns it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "gojson.h"
#include "gw.h"
#include "jbuf.h"
#include "peer.h"
#include "rpc.pb-c.h"

static int by_id(const void *a, const void *b)
{
	const Etcdserverpb__Member *x = *(Etcdserverpb__Member *const *)a;
	const Etcdserverpb__Member *y = *(Etcdserverpb__Member *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void put_strings(struct jbuf *b, char **v, size_t n)
{
	jbuf_putc(b, '[');
	for (size_t i = 0; i < n; i++) {
		if (i)
			jbuf_putc(b, ',');
		gojson_quote(b, v[i], strlen(v[i]));
	}
	jbuf_putc(b, ']');
}

static void put_member(struct jbuf *b, const Etcdserverpb__Member *m)
{
	jbuf_printf(b, "{\"id\":%llu,\"peerURLs\":", (unsigned long long)m->id);
	put_strings(b, m->peerurls, m->n_peerurls);
	if (m->islearner)
		jbuf_puts(b, ",\"isLearner\":true");
	if (m->name && *m->name) {
		jbuf_puts(b, ",\"name\":");
		gojson_quote(b, m->name, strlen(m->name));
	}
	if (m->n_clienturls) {
		jbuf_puts(b, ",\"clientURLs\":");
		put_strings(b, m->clienturls, m->n_clienturls);
	}
	jbuf_putc(b, '}');
}

void peer_members_handle(struct gw *gw, struct evhttp_request *req,
			 struct conn *c)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		http_reply_text(req, 405, "Method Not Allowed\n", "GET");
		return;
	}
	struct pending *p = c ? pending_new(gw, req, c, PK_PEER_MEMBERS,
					    reqid_next(&gw->ids)) : NULL;
	if (!p) {
		http_reply_text(req, 503, "too many requests\n", NULL);
		return;
	}
	Etcdserverpb__MemberListRequest *ml =
		arena_alloc(&p->arena, sizeof(*ml));
	if (!ml) {
		pending_free(gw, p);
		http_reply_text(req, 503, "too many requests\n", NULL);
		return;
	}
	etcdserverpb__member_list_request__init(ml);
	p->msg = &ml->base;
	/* The local view, as etcd's handler reads its own cluster store. */
	gw_read(gw, p, 0);
}

void peer_members_answer(struct gw *gw, struct pending *p,
			 const Ipc__Result *r)
{
	struct evhttp_request *req = p->req;
	if (!req) {
		pending_free(gw, p);
		return;
	}
	if (r->error || r->response_case != IPC__RESULT__RESPONSE_MEMBER_LIST) {
		pending_free(gw, p);
		http_reply_text(req, 500, "error listing members\n", NULL);
		return;
	}
	const Etcdserverpb__MemberListResponse *ml = r->member_list;
	Etcdserverpb__Member **v = malloc((ml->n_members ? ml->n_members : 1) *
					  sizeof(*v));
	struct jbuf b = JBUF_INIT;
	if (v) {
		for (size_t i = 0; i < ml->n_members; i++)
			v[i] = ml->members[i];
		qsort(v, ml->n_members, sizeof(*v), by_id);
		jbuf_putc(&b, '[');
		for (size_t i = 0; i < ml->n_members; i++) {
			if (i)
				jbuf_putc(&b, ',');
			put_member(&b, v[i]);
		}
		jbuf_putc(&b, ']');
		free(v);
	}
	pending_free(gw, p);
	if (!v || b.oom) {
		jbuf_clear(&b);
		http_reply_text(req, 500, "out of memory\n", NULL);
		return;
	}
	char cid[17];
	snprintf(cid, sizeof(cid), "%llx", (unsigned long long)gw->cluster_id);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "X-Etcd-Cluster-Id", cid);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), b.p, b.len);
	jbuf_clear(&b);
	evhttp_send_reply(req, 200, "OK", NULL);
}
