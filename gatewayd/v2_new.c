/*
 * Our own discovery service: GET /new?size=N on a member's client port
 * does what the public discovery.etcd.io does. It creates a fresh token
 * directory with its _config/size in this cluster's v2 store (through
 * Raft, like any v2 write) and answers the discovery URL that new members
 * give to --discovery. Needs --enable-v2: members read the token through
 * the v2 keys API.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "gw.h"
#include "v2_form.h"

#define NEW_DEFAULT_SIZE 3 /* as discovery.etcd.io */
#define NEW_MAX_SIZE 1000

/* A Host header we can put in a URL as it is. */
static int host_ok(const char *h)
{
	if (!h || !*h || strlen(h) > 255)
		return 0;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr(".-:[]_", *h))
			return 0;
	return 1;
}

/* size: absent or empty is the default; else 1..NEW_MAX_SIZE. */
static int read_size(struct evhttp_request *req, struct arena *a)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct v2_form *f = arena_zalloc(a, sizeof(*f));
	char err[128];
	unsigned long long n;
	if (!f || (q && v2_form_parse(f, a, q, strlen(q), err, sizeof(err)) < 0))
		return -1;
	const struct v2_kv *kv = v2_form_get(f, "size");
	if (!kv || kv->vlen == 0)
		return NEW_DEFAULT_SIZE;
	if (v2_parse_uint(kv, &n) < 0 || n < 1 || n > NEW_MAX_SIZE)
		return -1;
	return (int)n;
}

void v2_new_handle(struct gw *gw, struct evhttp_request *req, struct conn *c,
		   const struct gw_listener *l)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		http_reply_text(req, 405, "Method Not Allowed\n", "GET");
		return;
	}
	struct pending *p = c && gw->pend.n < GW_MAX_PENDING
		? pending_new(gw, req, c, PK_V2_NEW, reqid_next(&gw->ids)) : NULL;
	if (!p) {
		http_reply_text(req, 429, "too many requests\n", NULL);
		return;
	}
	int size = read_size(req, &p->arena);
	if (size < 0) {
		struct evhttp_request *r = p->req;
		p->req = NULL;
		pending_free(gw, p);
		http_reply_text(r, 400, "invalid size: give a whole number from 1 to 1000\n",
				NULL);
		return;
	}
	unsigned char rnd[16];
	char tok[33], *path = arena_alloc(&p->arena, 64), *val = arena_alloc(&p->arena, 8);
	char *base = arena_alloc(&p->arena, 300);
	Etcdserverpb__Request *r = arena_zalloc(&p->arena, sizeof(*r));
	if (!path || !val || !base || !r || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		pending_fail(gw, p, 8, "etcdserver: too many requests");
		return;
	}
	for (int i = 0; i < 16; i++)
		snprintf(tok + 2 * i, 3, "%02x", rnd[i]);
	snprintf(path, 64, "/discovery/%s/_config/size", tok);
	snprintf(val, 8, "%d", size);
	/* The URL as the client reached us; the listener's when the Host
	 * header cannot be used. */
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req),
					      "Host");
	const char *lhost = strstr(l->url, "://");
	snprintf(base, 300, "%s://%s/v2/keys/discovery/%s",
		 l->tls ? "https" : "http",
		 host_ok(host) ? host : (lhost ? lhost + 3 : "localhost:2379"), tok);
	p->base_url = base;

	etcdserverpb__request__init(r);
	r->method = "PUT";
	r->path = path;
	r->val = val;
	r->has_prevexist = 1; /* a fresh directory, never an old token's */
	p->msg = &r->base;
	v2_propose(gw, p, r);
}

void v2_new_on_result(struct gw *gw, struct pending *p, const Ipc__Result *r)
{
	struct evhttp_request *req = p->req;
	if (r->error || !r->v2 || !req) {
		pending_fail(gw, p, 14, r->error ? r->error->message
						 : "etcdserver: no response");
		return;
	}
	pending_take_req(p);
	if (r->v2->status == 201) {
		struct evbuffer *out = evhttp_request_get_output_buffer(req);
		http_cors(req);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", "text/plain; charset=utf-8");
		evbuffer_add_printf(out, "%s\n", p->base_url);
		evhttp_send_reply(req, 200, "OK", NULL);
	} else {
		/* The store's refusal, as it wrote it. */
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req),
			     r->v2->body.data, r->v2->body.len);
		evhttp_send_reply(req, (int)r->v2->status,
				  http_reason((int)r->v2->status), NULL);
	}
	pending_free(gw, p);
}
