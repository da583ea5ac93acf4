/*
 * etcd discovery (--discovery): etcd 3.4's v2discovery.JoinCluster on the
 * worker's event loop, with its requests, log lines, retries and fatal
 * messages (etcdmain's). checkCluster (GET size, GET the directory) runs
 * before registering (the "fast path": a full cluster is not joined), the
 * member registers itself (PUT <id>?prevExist=false), waits to see its own
 * key, checks again, then watches the directory until size members are
 * there. The outcome goes to the supervisor as MSG_JOIN_RESULT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "discovery.h"
#include "log.h"
#include "memberid.h"
#include "tls_ctx.h"
#include "worker.h"

#define PKG "discovery"
#define MAIN "etcdmain"

/* etcd's client errors, as their Error() texts. */
#define ERR_INVALID_JSON "client: response is invalid json. The endpoint " \
			 "is probably not valid etcd cluster endpoint."
#define ERR_EMPTY_BODY "client: response body is empty"

struct disc {
	struct worker *w;
	struct disc_url url, proxy;
	bool has_proxy;
	SSL_CTX *tls;
	struct dhttp *h;
	struct event *backoff;
	char self[20];  /* this member's key: its ID in hex */
	char *value;    /* the PUT's form body */
	char *dir_path; /* request paths, without their queries */
	char *size_path, *self_path;
	unsigned retries; /* etcd's d.retries: never reset */
	bool created;     /* createSelf is done */
	long size;
	uint64_t index;   /* the last directory GET's X-Etcd-Index */
	struct disc_node *all; /* waitNodes' members so far */
	size_t n_all;
	uint64_t wait_index;
	bool over;
};

static void check_start(struct disc *d);

/* The end: msg (an error; "" once printed here), or the cluster c, which
 * this member bootstraps, or (proxy) stands in front of as a v2 proxy. */
static void send_result_as(struct disc *d, const char *msg,
			   const struct disc_cluster *c, bool proxy)
{
	Ipc__JoinResult r = IPC__JOIN_RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	Etcdserverpb__Member *m = NULL, **mp = NULL;
	d->over = true;
	if (msg) {
		e.code = 1;
		e.message = (char *)msg;
		r.error = &e;
	} else {
		m = calloc(c->n ? c->n : 1, sizeof(*m));
		mp = calloc(c->n ? c->n : 1, sizeof(*mp));
		if (!m || !mp)
			worker_fatal(d->w, "discoveryd: out of memory");
		for (size_t i = 0; i < c->n; i++) {
			etcdserverpb__member__init(&m[i]);
			m[i].name = c->m[i].name;
			m[i].n_peerurls = c->m[i].n;
			m[i].peerurls = c->m[i].urls;
			mp[i] = &m[i];
		}
		r.bootstrap = !proxy;
		r.proxy = proxy;
		r.n_members = c->n;
		r.members = mp;
	}
	worker_send_pb(d->w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &r.base);
	free(m);
	free(mp);
}

static void send_result(struct disc *d, const char *msg,
			const struct disc_cluster *c)
{
	send_result_as(d, msg, c, false);
}

/* etcdmain's lines for a DiscoveryError without a case of its own. */
static void fail_join(struct disc *d, const char *err)
{
	log_err(MAIN, "failed to join discovery cluster (%s)", err);
	log_info(MAIN, "discovery token %s was used, but failed to bootstrap "
		 "the cluster.", d->w->cfg->discovery);
	log_info(MAIN, "please generate a new discovery token and try to "
		 "bootstrap again.");
	send_result(d, "", NULL);
}

/*
 * The cluster is full (v: its first size registrations, taken): exit, or
 * become a v2 proxy in front of it, as etcd's getCluster (nodesToCluster
 * of those nodes) and startProxy.
 */
static void fail_full(struct disc *d, struct disc_node *v, size_t n)
{
	struct disc_cluster *c = NULL;
	int r = -ENOSPC;
	if (strcmp(d->w->cfg->discovery_fallback, "exit") != 0) {
		log_notice(MAIN, "discovery cluster full, falling back to proxy");
		char **values = calloc(n ? n : 1, sizeof(*values));
		if (!values)
			worker_fatal(d->w, "discoveryd: out of memory");
		for (size_t i = 0; i < n; i++)
			values[i] = v[i].value;
		r = disc_cluster_new(values, n, d->size, &c);
		free(values);
		if (r == -ENOMEM)
			worker_fatal(d->w, "discoveryd: out of memory");
	}
	if (r == 0)
		send_result_as(d, NULL, c, true);
	else
		fail_join(d, r == -ENOSPC ? "discovery: cluster is full"
			  : r == -EINVAL ? "discovery: invalid URL"
					 : "discovery: duplicate name");
	disc_cluster_free(c);
	disc_nodes_free(v, n);
}

/* The guide's line, not 3.4's raw client error (see discovery.md). */
static void fail_no_size(struct disc *d)
{
	char line[4096];
	int n = snprintf(line, sizeof(line), "etcd: error: the cluster "
			 "doesn\u2019t have a size configuration value in "
			 "%s/_config\n", d->w->cfg->discovery);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	ssize_t wr = write(STDERR_FILENO, line, (size_t)n);
	(void)wr;
	send_result(d, "", NULL);
}

/* A ClusterError (no answer, or a 5xx): log, wait, check again. */
static void cluster_error(struct disc *d, const char *why, const char *step)
{
	char dur[32];
	log_err(PKG, "error #0: %s", why);
	if (d->retries == UINT32_MAX) {
		fail_join(d, "discovery: too many retries");
		return;
	}
	d->retries++;
	unsigned s = disc_backoff_s(d->retries);
	disc_go_duration(s, dur, sizeof(dur));
	log_info(PKG, "%s: error connecting to %s, retrying in %s", step,
		 d->url.endpoint, dur);
	struct timeval tv = {s, 0};
	evtimer_add(d->backoff, &tv);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct disc *d = arg;
	(void)fd;
	(void)what;
	if (!d->over)
		check_start(d);
}

/* httpClusterClient.Do's text for a 5xx answer. */
static void server_error(struct disc *d, int status, char *buf, size_t len)
{
	static const struct {
		int code;
		const char *text;
	} t[] = {
		{501, "Not Implemented"}, {502, "Bad Gateway"},
		{504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
		{506, "Variant Also Negotiates"}, {507, "Insufficient Storage"},
		{508, "Loop Detected"}, {510, "Not Extended"},
		{511, "Network Authentication Required"},
	};
	const char *text = "";
	if (status == 500 || status == 503) {
		snprintf(buf, len, "client: etcd member %s has no leader",
			 d->url.endpoint);
		return;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == status)
			text = t[i].text;
	snprintf(buf, len, "client: etcd member %s returns server error [%s]",
		 d->url.endpoint, text);
}

/*
 * What every request does with a failure before its own answer: 1 when it
 * is a ClusterError (why filled), 0 when r is an answer to read, -1 when
 * the discovery is over (fatal, handled).
 */
static int classify(struct disc *d, int err, const struct dhttp_resp *r,
		    const char *why, char *buf, size_t len)
{
	if (err == -ETIMEDOUT) {
		fail_join(d, "context deadline exceeded");
		return -1;
	}
	if (err == -EMSGSIZE) {
		fail_join(d, "discovery: the answer is larger than 8 MiB");
		return -1;
	}
	if (err) {
		snprintf(buf, len, "%s", why ? why : "EOF");
		return 1;
	}
	if (r->status / 100 == 5) {
		server_error(d, r->status, buf, len);
		return 1;
	}
	return 0;
}

/* An answer that is not 200/201: etcd's error text, or ErrInvalidJSON. */
static void error_text(const struct dhttp_resp *r, int *code, char *buf,
		       size_t len)
{
	*code = 0;
	if (disc_parse_error(r->body, r->len, code, buf, len) < 0)
		snprintf(buf, len, "%s", ERR_INVALID_JSON);
}

static bool ok_status(const struct dhttp_resp *r)
{
	return r->status == 200 || r->status == 201;
}

/* unmarshalSuccessfulKeysResponse's X-Etcd-Index check. */
static bool bad_index(struct disc *d, const struct dhttp_resp *r)
{
	char buf[128];
	if (!r->index_raw)
		return false;
	snprintf(buf, sizeof(buf), "strconv.ParseUint: parsing \"%s\": "
		 "invalid syntax", r->index_raw);
	fail_join(d, buf);
	return true;
}

static void request(struct disc *d, const char *method, const char *path,
		    const char *query, const char *body, unsigned timeout_s,
		    dhttp_cb cb)
{
	char pq[4096];
	snprintf(pq, sizeof(pq), "%s?%s", path, query);
	if (dhttp_request(d->h, method, pq, body, timeout_s, cb, d) < 0)
		worker_fatal(d->w, "discoveryd: out of memory");
}

static void watch_next(struct disc *d);

static void log_waiting(struct disc *d)
{
	log_notice(PKG, "found %zu peer(s), waiting for %zu more", d->n_all,
		   (size_t)d->size - d->n_all);
}

/* nodesToCluster, then NewServer's duplicate URL check. */
static void finish_cluster(struct disc *d)
{
	log_notice(PKG, "found %zu needed peer(s)", d->n_all);
	char **values = calloc(d->n_all ? d->n_all : 1, sizeof(*values));
	struct disc_cluster *c = NULL;
	char *dup = NULL;
	if (!values)
		worker_fatal(d->w, "discoveryd: out of memory");
	for (size_t i = 0; i < d->n_all; i++)
		values[i] = d->all[i].value;
	int r = disc_cluster_new(values, d->n_all, d->size, &c);
	free(values);
	if (r == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (r == -EINVAL) {
		fail_join(d, "discovery: invalid URL");
	} else if (r == -ENOTUNIQ) {
		const char *u = d->w->cfg->discovery;
		log_err(MAIN, "member with duplicated name has registered with "
			"discovery service token(%s).", u);
		log_err(MAIN, "please check (cURL) the discovery token for more "
			"information.");
		log_err(MAIN, "please do not reuse the discovery token and "
			"generate a new one to bootstrap the cluster.");
		send_result(d, "", NULL);
	} else if ((r = disc_cluster_dup_url(c, &dup)) == 1) {
		size_t n = strlen(dup) + 64;
		char *msg = malloc(n);
		if (!msg)
			worker_fatal(d->w, "discoveryd: out of memory");
		snprintf(msg, n, "discovery cluster %s has duplicate url", dup);
		send_result(d, msg, NULL);
		free(msg);
		free(dup);
	} else if (r < 0) {
		worker_fatal(d->w, "discoveryd: out of memory");
	} else {
		send_result(d, NULL, c);
	}
	disc_cluster_free(c);
}

/* waitNodes: the members so far, then watches until size are there. */
static void wait_nodes(struct disc *d, struct disc_node *v, size_t n)
{
	disc_nodes_free(d->all, d->n_all);
	if (n > (size_t)d->size) {
		for (size_t i = (size_t)d->size; i < n; i++) {
			free(v[i].key);
			free(v[i].value);
		}
		n = (size_t)d->size;
	}
	d->all = v;
	d->n_all = n;
	for (size_t i = 0; i < n; i++) {
		size_t bl;
		const char *b = disc_key_base(v[i].key, &bl);
		if (bl == strlen(d->self) && memcmp(b, d->self, bl) == 0)
			log_notice(PKG, "found self %.*s in the cluster", (int)bl, b);
		else
			log_notice(PKG, "found peer %.*s in the cluster", (int)bl, b);
	}
	/* The watch starts after the GET's index (AfterIndex). */
	d->wait_index = d->index ? d->index + 1 : 0;
	if (d->n_all < (size_t)d->size) {
		log_waiting(d);
		watch_next(d);
	} else {
		finish_cluster(d);
	}
}

static void on_watch(void *arg, int err, const struct dhttp_resp *r,
		     const char *why)
{
	struct disc *d = arg;
	char buf[1024];
	int code, c = classify(d, err, r, why, buf, sizeof(buf));
	if (c < 0)
		return;
	if (c > 0) {
		cluster_error(d, buf, "waiting for other nodes");
		return;
	}
	if (ok_status(r) && r->len == 0) {
		watch_next(d); /* ErrEmptyBody: the watcher asks again */
		return;
	}
	if (!ok_status(r)) {
		error_text(r, &code, buf, sizeof(buf));
		fail_join(d, buf);
		return;
	}
	struct disc_node n;
	int pr = disc_parse_node(r->body, r->len, &n);
	if (pr == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (pr < 0) {
		fail_join(d, ERR_INVALID_JSON);
		return;
	}
	if (bad_index(d, r)) {
		free(n.key);
		free(n.value);
		return;
	}
	struct disc_node *v = realloc(d->all, (d->n_all + 1) * sizeof(*v));
	if (!v)
		worker_fatal(d->w, "discoveryd: out of memory");
	size_t bl;
	const char *b = disc_key_base(n.key, &bl);
	log_notice(PKG, "found peer %.*s in the cluster", (int)bl, b);
	/* Every event counts as a member, whatever it is (as etcd's). */
	d->wait_index = n.modified + 1;
	v[d->n_all++] = n;
	d->all = v;
	if (d->n_all < (size_t)d->size) {
		log_waiting(d);
		watch_next(d);
	} else {
		finish_cluster(d);
	}
}

static void watch_next(struct disc *d)
{
	char q[96];
	snprintf(q, sizeof(q), "recursive=true&wait=true&waitIndex=%" PRIu64,
		 d->wait_index);
	request(d, "GET", d->dir_path, q, NULL, 0, on_watch);
}

static void on_self(void *arg, int err, const struct dhttp_resp *r,
		    const char *why);

static void self_watch(struct disc *d)
{
	char q[96];
	snprintf(q, sizeof(q), "recursive=false&wait=true&waitIndex=%" PRIu64,
		 d->wait_index);
	request(d, "GET", d->self_path, q, NULL, 0, on_self);
}

/* createSelf's watch of its own key: it is there once this answers. */
static void on_self(void *arg, int err, const struct dhttp_resp *r,
		    const char *why)
{
	struct disc *d = arg;
	char buf[1200], det[1024];
	int code, c = classify(d, err, r, why, det, sizeof(det));
	if (c < 0)
		return;
	if (c > 0) {
		/* Not retried: createSelf's error ends the join. */
		snprintf(buf, sizeof(buf), "client: etcd cluster is unavailable "
			 "or misconfigured; error #0: %s\n", det);
		fail_join(d, buf);
		return;
	}
	if (ok_status(r) && r->len == 0) {
		self_watch(d);
		return;
	}
	struct disc_node n;
	if (!ok_status(r)) {
		error_text(r, &code, buf, sizeof(buf));
		fail_join(d, buf);
		return;
	}
	int pr = disc_parse_node(r->body, r->len, &n);
	if (pr == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (pr < 0) {
		fail_join(d, ERR_INVALID_JSON);
		return;
	}
	free(n.key);
	free(n.value);
	if (bad_index(d, r))
		return;
	d->created = true;
	check_start(d);
}

static void on_create(void *arg, int err, const struct dhttp_resp *r,
		      const char *why)
{
	struct disc *d = arg;
	char buf[1200], det[1024];
	int code, c = classify(d, err, r, why, det, sizeof(det));
	if (c < 0)
		return;
	if (c > 0) {
		snprintf(buf, sizeof(buf), "client: etcd cluster is unavailable "
			 "or misconfigured; error #0: %s\n", det);
		fail_join(d, buf);
		return;
	}
	if (!ok_status(r)) {
		error_text(r, &code, buf, sizeof(buf));
		if (code != 105) {
			fail_join(d, buf);
			return;
		}
		/* ErrDuplicateID */
		const Ipc__WorkerConfig *cfg = d->w->cfg;
		log_err(MAIN, "member \"%s\" has previously registered with "
			"discovery service token (%s).", cfg->name, cfg->discovery);
		log_err(MAIN, "But etcd could not find valid cluster "
			"configuration in the given data dir (%s).", cfg->data_dir);
		log_info(MAIN, "Please check the given data dir path if the "
			 "previous bootstrap succeeded");
		log_info(MAIN, "or use a new discovery token if the previous "
			 "bootstrap failed.");
		send_result(d, "", NULL);
		return;
	}
	struct disc_node n;
	int pr = r->len ? disc_parse_node(r->body, r->len, &n) : -ENODATA;
	if (pr == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (pr < 0) {
		fail_join(d, pr == -ENODATA ? ERR_EMPTY_BODY : ERR_INVALID_JSON);
		return;
	}
	free(n.key);
	free(n.value);
	if (bad_index(d, r))
		return;
	/* Watcher(AfterIndex: createdIndex - 1). */
	d->wait_index = n.created > 1 ? n.created : 0;
	self_watch(d);
}

static void on_dir(void *arg, int err, const struct dhttp_resp *r,
		   const char *why)
{
	struct disc *d = arg;
	char buf[1024];
	int code, c = classify(d, err, r, why, buf, sizeof(buf));
	if (c < 0)
		return;
	if (c > 0) {
		cluster_error(d, buf, "cluster status check");
		return;
	}
	if (!ok_status(r)) {
		error_text(r, &code, buf, sizeof(buf));
		fail_join(d, buf);
		return;
	}
	struct disc_node *v;
	size_t n;
	int pr = r->len ? disc_parse_dir(r->body, r->len, &v, &n) : -ENODATA;
	if (pr == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (pr < 0) {
		fail_join(d, pr == -ENODATA ? ERR_EMPTY_BODY : ERR_INVALID_JSON);
		return;
	}
	if (bad_index(d, r)) {
		disc_nodes_free(v, n);
		return;
	}
	d->index = r->has_index ? r->etcd_index : 0;
	if (disc_check_nodes(v, &n, d->size, d->self) == -ENOSPC) {
		fail_full(d, v, n);
		return;
	}
	if (!d->created) {
		disc_nodes_free(v, n);
		request(d, "PUT", d->self_path, "prevExist=false",
			d->value, DISC_REQUEST_TIMEOUT_S, on_create);
		return;
	}
	wait_nodes(d, v, n);
}

static void on_size(void *arg, int err, const struct dhttp_resp *r,
		    const char *why)
{
	struct disc *d = arg;
	char buf[1024];
	int code, c = classify(d, err, r, why, buf, sizeof(buf));
	if (c < 0)
		return;
	if (c > 0) {
		cluster_error(d, buf, "cluster status check");
		return;
	}
	if (!ok_status(r)) {
		if (disc_parse_error(r->body, r->len, &code, buf, sizeof(buf)) < 0)
			fail_join(d, "discovery: bad discovery endpoint");
		else if (code == 100)
			fail_no_size(d);
		else
			fail_join(d, buf);
		return;
	}
	struct disc_node n;
	int pr = r->len ? disc_parse_node(r->body, r->len, &n) : -ENODATA;
	if (pr == -ENOMEM)
		worker_fatal(d->w, "discoveryd: out of memory");
	if (pr < 0) {
		fail_join(d, pr == -ENODATA ? ERR_EMPTY_BODY
					    : "discovery: bad discovery endpoint");
		return;
	}
	if (bad_index(d, r)) {
		free(n.key);
		free(n.value);
		return;
	}
	/* A size below 1 would panic etcd; one above our limit is not a
	 * cluster we can start. */
	long size;
	int sr = disc_parse_size(n.value, &size);
	free(n.key);
	free(n.value);
	if (sr < 0 || size < 1) {
		fail_join(d, "discovery: size key is bad");
		return;
	}
	if (size > DISC_MAX_SIZE) {
		snprintf(buf, sizeof(buf), "discovery: size %ld is more than "
			 "the %d members supported", size, DISC_MAX_SIZE);
		fail_join(d, buf);
		return;
	}
	d->size = size;
	request(d, "GET", d->dir_path,
		"quorum=false&recursive=false&sorted=false", NULL,
		DISC_REQUEST_TIMEOUT_S, on_dir);
}

/* checkCluster: GET _config/size, then the directory. */
static void check_start(struct disc *d)
{
	request(d, "GET", d->size_path,
		"quorum=false&recursive=false&sorted=false", NULL,
		DISC_REQUEST_TIMEOUT_S, on_size);
}

static char *join_path(const char *dir, const char *leaf)
{
	size_t n = strlen(dir) + strlen(leaf) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s", dir, leaf);
	return s;
}

/* Everything the requests need, from the configuration. */
static int setup(struct disc *d)
{
	const Ipc__WorkerConfig *c = d->w->cfg;
	char *form = NULL, *shown = NULL;
	int r = disc_url_parse(c->discovery, &d->url);
	if (r == -EINVAL) {
		fail_join(d, "discovery: invalid URL");
		return 1;
	}
	if (r < 0)
		return r;
	if (c->discovery_proxy && c->discovery_proxy[0]) {
		r = disc_proxy_parse(c->discovery_proxy, &d->proxy, &shown);
		if (r == -EINVAL || r == -EPROTONOSUPPORT) {
			char buf[600];
			snprintf(buf, sizeof(buf), "invalid proxy address \"%s\": %s",
				 c->discovery_proxy, r == -EINVAL ? "bad URL"
				 : "only http:// proxies are supported");
			fail_join(d, buf);
			return 1;
		}
		if (r < 0)
			return r;
		d->has_proxy = true;
		log_info(PKG, "using proxy \"%s\"", shown);
		free(shown);
	}
	if (strcmp(d->url.scheme, "https") == 0) {
		char err[256];
		/* No TLS settings, as etcd's TLSInfo{}: the system's roots
		 * (SSL_CERT_FILE / SSL_CERT_DIR) and the host name. */
		r = tls_ctx_client(NULL, NULL, 0, &d->tls, err, sizeof(err));
		if (r < 0)
			return r;
	}
	/* The member's ID with the discovery URL as its cluster token. */
	uint64_t id = memberid_new((const char *const *)c->initial_advertise_peer_urls,
				   c->n_initial_advertise_peer_urls, c->discovery, -1);
	snprintf(d->self, sizeof(d->self), "%" PRIx64, id);
	r = disc_self_value(c->name, c->initial_advertise_peer_urls,
			    c->n_initial_advertise_peer_urls, &form);
	if (r == 0) {
		r = disc_form_value("value", form, &d->value);
		free(form);
	}
	if (r < 0)
		return r;
	/* The directory's path, cleaned as etcd's client cleans it, and its
	 * keys below it (path.Join). */
	const char *dir = d->url.path[0] ? d->url.path : "";
	d->dir_path = strdup(dir[0] ? dir : "/");
	d->size_path = join_path(dir, "_config/size");
	d->self_path = join_path(dir, d->self);
	d->h = dhttp_new(d->w->base, &d->url, d->has_proxy ? &d->proxy : NULL,
			 d->tls);
	d->backoff = evtimer_new(d->w->base, on_backoff, d);
	if (!d->dir_path || !d->size_path || !d->self_path || !d->h ||
	    !d->backoff)
		return -ENOMEM;
	return 0;
}

void discovery_done(struct worker *w)
{
	struct disc *d = w->arg;
	if (!d)
		return;
	dhttp_free(d->h);
	if (d->backoff)
		event_free(d->backoff);
	SSL_CTX_free(d->tls);
	disc_url_clear(&d->url);
	disc_url_clear(&d->proxy);
	disc_nodes_free(d->all, d->n_all);
	free(d->value);
	free(d->dir_path);
	free(d->size_path);
	free(d->self_path);
	free(d);
	w->arg = NULL;
}

int discovery_start(struct worker *w)
{
	struct disc *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->w = w;
	/* Lives as long as the process: discoveryd exists for this. */
	w->arg = d;
	int r = setup(d);
	if (r < 0) {
		discovery_done(w);
		return r;
	}
	if (r == 0)
		check_start(d);
	return 0;
}
