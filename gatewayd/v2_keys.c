/*
 * The v2 keys API (--enable-v2): /v2/keys/<key> requests read as etcd's
 * v2http reads them (parameters, their checks and error wording), turned
 * into one etcdserverpb.Request. Writes go through Raft
 * (InternalRaftRequest.v2), reads and waits to storaged as a query; the
 * v2 store there writes the JSON body, which goes out as it came, with
 * etcd's headers added here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gojson.h"
#include "gw.h"
#include "raft_internal.pb-c.h"
#include "v2_err.h"
#include "v2_form.h"

static int64_t unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Is the request's body a form Go's ParseForm reads? */
static int is_form(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
					    "Content-Type");
	static const char form[] = "application/x-www-form-urlencoded";
	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	return n == sizeof(form) - 1 && strncasecmp(ct, form, n) == 0;
}

/* Reads the parameters: a form body's first, then the query's. */
static int read_form(struct evhttp_request *req, struct arena *a,
		     struct v2_form *f, char *err, size_t errlen)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	int first = 0, r;
	if ((m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_POST) && is_form(req)) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
		if (!body)
			return -ENOMEM;
		r = v2_form_parse(f, a, body, len, err, errlen);
		if (r == -EINVAL)
			first = r;
		else if (r < 0)
			return r;
	}
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	char e2[128];
	r = q ? v2_form_parse(f, a, q, strlen(q), e2, sizeof(e2)) : 0;
	if (r == -EINVAL && !first) {
		snprintf(err, errlen, "%s", e2);
		first = r;
	} else if (r < 0 && r != -EINVAL) {
		return r;
	}
	return first;
}

/* Reads bool parameter name into *ret (absent: 0); 0 or -EINVAL. */
static int get_bool(const struct v2_form *f, const char *name, int *ret)
{
	const struct v2_kv *kv = v2_form_get(f, name);
	*ret = 0;
	return kv ? v2_parse_bool(kv, ret) : 0;
}

static int get_uint(const struct v2_form *f, const char *name,
		    unsigned long long *ret)
{
	const struct v2_kv *kv = v2_form_get(f, name);
	*ret = 0;
	return kv ? v2_parse_uint(kv, ret) : 0;
}

/*
 * etcd's parseKeyRequest, check for check in its order. Fills r (strings
 * in the arena); 0, or the v2 error code with *cause set; -ENOMEM.
 */
static int parse_key_request(struct evhttp_request *req, const char *key,
			     struct arena *a, Etcdserverpb__Request *r,
			     int *ret_no_value, const char **cause)
{
	static char err[160];
	struct v2_form *f = arena_zalloc(a, sizeof(*f));
	if (!f)
		return -ENOMEM;
	int rc = read_form(req, a, f, err, sizeof(err));
	if (rc == -EINVAL || rc == -E2BIG) {
		*cause = rc == -E2BIG ? "too many parameters" : err;
		return V2E_INVALID_FORM;
	}
	if (rc < 0)
		return rc;

	unsigned long long prev_index, wait_index, ttl = 0;
	int rec, sorted, wait, dir, quorum, stream, no_value;
	if (get_uint(f, "prevIndex", &prev_index) < 0) {
		*cause = "invalid value for \"prevIndex\"";
		return V2E_INDEX_NAN;
	}
	if (get_uint(f, "waitIndex", &wait_index) < 0) {
		*cause = "invalid value for \"waitIndex\"";
		return V2E_INDEX_NAN;
	}
	static const struct {
		const char *name, *cause;
	} bools[] = {
		{"recursive", "invalid value for \"recursive\""},
		{"sorted", "invalid value for \"sorted\""},
		{"wait", "invalid value for \"wait\""},
		{"dir", "invalid value for \"dir\""},
		{"quorum", "invalid value for \"quorum\""},
		{"stream", "invalid value for \"stream\""},
	};
	int *bv[] = {&rec, &sorted, &wait, &dir, &quorum, &stream};
	for (size_t i = 0; i < 6; i++)
		if (get_bool(f, bools[i].name, bv[i]) < 0) {
			*cause = bools[i].cause;
			return V2E_INVALID_FIELD;
		}
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	if (wait && m != EVHTTP_REQ_GET) {
		*cause = "\"wait\" can only be used with GET requests";
		return V2E_INVALID_FIELD;
	}
	const struct v2_kv *pv = v2_form_get(f, "prevValue");
	if (pv && pv->vlen == 0) {
		*cause = "\"prevValue\" cannot be empty";
		return V2E_PREV_VALUE_REQUIRED;
	}
	if (get_bool(f, "noValueOnSuccess", &no_value) < 0) {
		*cause = "invalid value for \"noValueOnSuccess\"";
		return V2E_INVALID_FIELD;
	}
	const struct v2_kv *tk = v2_form_get(f, "ttl");
	int has_ttl = tk && tk->vlen > 0;
	if (has_ttl && v2_parse_uint(tk, &ttl) < 0) {
		*cause = "invalid value for \"ttl\"";
		return V2E_TTL_NAN;
	}
	const struct v2_kv *pe = v2_form_get(f, "prevExist");
	int prev_exist = 0;
	if (pe && v2_parse_bool(pe, &prev_exist) < 0) {
		*cause = "invalid value for prevExist";
		return V2E_INVALID_FIELD;
	}
	const struct v2_kv *rf = v2_form_get(f, "refresh");
	int refresh = 0;
	if (rf) {
		if (v2_parse_bool(rf, &refresh) < 0) {
			*cause = "invalid value for refresh";
			return V2E_INVALID_FIELD;
		}
		const struct v2_kv *val = v2_form_get(f, "value");
		if (refresh && val && val->vlen > 0) {
			*cause = "A value was provided on a refresh";
			return V2E_REFRESH_VALUE;
		}
		if (refresh && !has_ttl) {
			*cause = "No TTL value set";
			return V2E_REFRESH_TTL_REQUIRED;
		}
	}

	const struct v2_kv *val = v2_form_get(f, "value");
	r->path = (char *)key;
	r->val = (char *)(val ? val->v : "");
	r->has_dir = r->dir = dir;
	r->prevvalue = (char *)(pv ? pv->v : "");
	r->has_previndex = prev_index != 0;
	r->previndex = prev_index;
	if (pe) {
		r->has_prevexist = 1;
		r->prevexist = prev_exist;
	}
	r->has_wait = r->wait = wait;
	r->has_since = wait_index != 0;
	r->since = wait_index;
	r->has_recursive = r->recursive = rec;
	r->has_sorted = r->sorted = sorted;
	r->has_quorum = r->quorum = quorum;
	r->has_stream = r->stream = stream;
	if (rf) {
		r->has_refresh = 1;
		r->refresh = refresh;
	}
	if (has_ttl) {
		/* now + ttl, as etcd's API layer computes it; a TTL past
		 * what the clock can hold never expires. */
		int64_t now = unix_ns();
		r->has_expiration = 1;
		r->expiration = ttl > (unsigned long long)(INT64_MAX - now) / 1000000000ULL
					? INT64_MAX
					: now + (int64_t)ttl * 1000000000;
	}
	*ret_no_value = no_value;
	return 0;
}

/* Go's path.Clean of "/" + s, into the arena: the key's store path. */
static char *clean_path(struct arena *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 2);
	if (!out)
		return NULL;
	size_t o = 1;
	out[0] = '/';
	for (size_t i = 0; i < n;) {
		while (i < n && s[i] == '/')
			i++;
		size_t j = i;
		while (j < n && s[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 1 && s[i] == '.') {
			/* nothing */
		} else if (len == 2 && s[i] == '.' && s[i + 1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--;
		} else if (len) {
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, s + i, len);
			o += len;
		}
		i = j;
	}
	out[o] = '\0';
	return out;
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	default: return "GET"; /* and HEAD: a GET whose body is not sent */
	}
}

void v2_propose(struct gw *gw, struct pending *p, Etcdserverpb__Request *r)
{
	Etcdserverpb__InternalRaftRequest irr =
		ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	Etcdserverpb__RequestHeader hdr = ETCDSERVERPB__REQUEST_HEADER__INIT;
	hdr.id = p->id;
	irr.header = &hdr;
	irr.id = p->id;
	irr.v2 = r;
	r->has_id = 1;
	r->id = p->id;
	if (protobuf_c_message_get_packed_size(&irr.base) >
	    gw->max_request_bytes + 1024) {
		pending_fail(gw, p, 3, "etcdserver: request is too large");
		return;
	}
	gw_propose(gw, p, &irr.base);
}

void v2_keys_handle(struct gw *gw, struct evhttp_request *req,
		    struct conn *c, const char *rest)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_PUT &&
	    m != EVHTTP_REQ_POST && m != EVHTTP_REQ_DELETE) {
		http_reply_text(req, 405, "Method Not Allowed\n",
				"HEAD,GET,PUT,POST,DELETE");
		return;
	}
	if (!c || gw->pend.n >= GW_MAX_PENDING) {
		v2_reply_error(gw, req, V2E_RAFT_INTERNAL,
			       "etcdserver: too many requests", 0);
		return;
	}
	struct pending *p = pending_new(gw, req, c, PK_V2, reqid_next(&gw->ids));
	if (!p) {
		v2_reply_error(gw, req, V2E_RAFT_INTERNAL,
			       "etcdserver: too many requests", 0);
		return;
	}
	/* The key is the URL's path, percent-decoded as Go's r.URL.Path. */
	size_t klen = 0;
	char *dec = evhttp_uridecode(rest, 0, &klen);
	Etcdserverpb__Request *r = arena_zalloc(&p->arena, sizeof(*r));
	char *key = dec ? clean_path(&p->arena, dec, klen) : NULL;
	int nul = dec && strlen(dec) != klen;
	free(dec);
	if (!r || !key) {
		pending_fail(gw, p, 8, "etcdserver: too many requests");
		return;
	}
	if (nul) {
		pending_v2_fail(gw, p, V2E_INVALID_FORM, "invalid key");
		return;
	}
	/* storaged walks a key's levels recursively: tens of thousands of
	 * them (a 64 KiB request line allows 32k) would overflow its stack
	 * at apply, again at every restart. etcd has no such limit. */
	size_t depth = 0;
	for (const char *k = key; *k; k++)
		depth += *k == '/';
	if (depth > V2_MAX_DEPTH) {
		pending_v2_fail(gw, p, V2E_INVALID_FIELD, "key has too many levels");
		return;
	}
	etcdserverpb__request__init(r);
	const char *cause = NULL;
	int no_value = 0;
	int code = parse_key_request(req, key, &p->arena, r, &no_value, &cause);
	if (code < 0) {
		pending_fail(gw, p, 8, "etcdserver: too many requests");
		return;
	}
	if (code > 0) {
		pending_v2_fail(gw, p, code, cause);
		return;
	}
	p->no_value = no_value;
	p->msg = &r->base;
	r->method = (char *)method_name(m);
	if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
		/* A quorum read is linearizable: a read index instead of
		 * etcd's QGET through the log, with the same guarantee (and
		 * etcd ignores wait on it too). */
		if (r->quorum)
			r->wait = r->has_wait = 0;
		if (r->wait) {
			pending_no_deadline(gw, p);
			v2_watch_gone(gw, p);
		}
		gw_read(gw, p, r->quorum);
	} else {
		v2_propose(gw, p, r);
	}
}
