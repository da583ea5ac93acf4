/*
 * Fetching the cluster a new member joins: GET /members from each peer URL
 * of the other --initial-cluster members in turn (sorted, as etcd's
 * getRemotePeerURLs), the first good answer wins. Its X-Etcd-Cluster-Id
 * header is the cluster's ID. A failed peer is logged as etcd logs it; when
 * none answers, the start fails with etcd's message. The outcome goes to
 * the supervisor as MSG_JOIN_RESULT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "join.h"
#include "log.h"
#include "tls_ctx.h"
#include "worker.h"

#define ERR_FETCH "cannot fetch cluster info from peer urls: could not " \
		  "retrieve cluster information from the given URLs"

struct join {
	struct worker *w;
	char **urls; /* borrowed from the configuration */
	size_t n_urls, next;
	struct evhttp_connection *conn;
	SSL_CTX *tls;  /* for https peer URLs, made at the first one */
	char why[256]; /* the current request's failure, Go's wording */
	char err[JOIN_ERR_MAX];
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void send_result(struct join *j, uint64_t cid, uint64_t self,
			Etcdserverpb__Member **v, size_t n, const char *err)
{
	Ipc__JoinResult r = IPC__JOIN_RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	if (err) {
		e.code = 1;
		e.message = (char *)err;
		r.error = &e;
	} else {
		r.cluster_id = cid;
		r.member_id = self;
		r.n_members = n;
		r.members = v;
	}
	worker_send_pb(j->w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &r.base);
}

static void try_next(struct join *j);
static void drop_conn(struct join *j);

/* The answer of one peer: 0 and the result sent, or -1 (j->why says why). */
static int take_answer(struct join *j, struct evhttp_request *req)
{
	const Ipc__WorkerConfig *c = j->w->cfg;
	int st = evhttp_request_get_response_code(req);
	if (st != 200) {
		snprintf(j->why, sizeof(j->why), "unexpected status %d", st);
		return -1;
	}
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "X-Etcd-Cluster-Id");
	char *end;
	errno = 0;
	uint64_t cid = h ? strtoull(h, &end, 16) : 0;
	if (!h || !*h || *end || errno || !cid) {
		snprintf(j->why, sizeof(j->why),
			 "could not parse the cluster ID from cluster res: %s",
			 h ? h : "");
		return -1;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	Etcdserverpb__Member **v;
	size_t n;
	if (!body || len > JOIN_MAX_BODY ||
	    join_parse_members(body, len, &v, &n) < 0) {
		snprintf(j->why, sizeof(j->why), "could not unmarshal cluster response");
		return -1;
	}
	uint64_t self = 0;
	int r = join_match(cid, v, n, c->initial_members, c->n_initial_members,
			   c->name, &self, j->err, sizeof(j->err));
	send_result(j, cid, self, v, n, r < 0 ? j->err : NULL);
	join_members_free(v, n);
	return 0;
}

static void on_error(enum evhttp_request_error e, void *arg)
{
	struct join *j = arg;
	int err = EVUTIL_SOCKET_ERROR();
	switch (e) {
	case EVREQ_HTTP_TIMEOUT:
		snprintf(j->why, sizeof(j->why), "context deadline exceeded");
		break;
	case EVREQ_HTTP_EOF:
		snprintf(j->why, sizeof(j->why), "%s",
			 err == ECONNREFUSED ? "connect: connection refused" : "EOF");
		break;
	default:
		snprintf(j->why, sizeof(j->why), "%s",
			 err ? evutil_socket_error_to_string(err) : "bad response");
	}
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct join *j = arg;
	if (req && evhttp_request_get_response_code(req) &&
	    take_answer(j, req) == 0) {
		drop_conn(j);
		return;
	}
	if (!j->why[0])
		snprintf(j->why, sizeof(j->why), "EOF");
	log_warn("etcdserver", "could not get cluster response from %s: "
		 "Get \"%s/members\": %s", j->urls[j->next - 1],
		 j->urls[j->next - 1], j->why);
	try_next(j);
}

static void free_conn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

/* The connection is freed on the next loop pass: its request's callback
 * is still on the stack. */
static void drop_conn(struct join *j)
{
	static const struct timeval now = {0, 0};
	if (j->conn &&
	    event_base_once(j->w->base, -1, EV_TIMEOUT, free_conn, j->conn,
			    &now) < 0)
		evhttp_connection_free_on_completion(j->conn);
	j->conn = NULL;
}

/* A connection to host:port, over TLS with the peer settings for https
 * (the member's peer certificate as client certificate, as etcd's). */
static struct evhttp_connection *connect_to(struct join *j, const char *scheme,
					     const char *host, int port)
{
	const Ipc__WorkerConfig *c = j->w->cfg;
	if (!scheme || strcmp(scheme, "https") != 0)
		return evhttp_connection_base_new(j->w->base, NULL, host,
						  (uint16_t)port);
	char err[256];
	if (!j->tls && tls_ctx_client(c->peer_tls, c->cipher_suites,
				      c->n_cipher_suites, &j->tls, err,
				      sizeof(err)) < 0) {
		snprintf(j->why, sizeof(j->why), "%s", err);
		return NULL;
	}
	SSL *ssl = SSL_new(j->tls);
	if (!ssl || tls_client_set_host(ssl, host) < 0) {
		SSL_free(ssl);
		return NULL;
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		j->w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	struct evhttp_connection *conn = evhttp_connection_base_bufferevent_new(
		j->w->base, NULL, bev, host, (uint16_t)port);
	if (!conn)
		bufferevent_free(bev);
	return conn;
}

static void try_next(struct join *j)
{
	drop_conn(j);
	while (j->next < j->n_urls) {
		const char *url = j->urls[j->next++];
		struct evhttp_uri *u = evhttp_uri_parse(url);
		const char *host = u ? evhttp_uri_get_host(u) : NULL;
		const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
		int port = u ? evhttp_uri_get_port(u) : -1;
		j->why[0] = '\0';
		if (host && port < 0)
			port = scheme && strcmp(scheme, "https") == 0 ? 443 : 80;
		struct evhttp_request *req = NULL;
		if (host)
			j->conn = connect_to(j, scheme, host, port);
		if (j->conn)
			req = evhttp_request_new(on_response, j);
		if (req) {
			char hp[300];
			evhttp_connection_set_timeout(j->conn, JOIN_FETCH_TIMEOUT_S);
			evhttp_request_set_error_cb(req, on_error);
			snprintf(hp, sizeof(hp), "%s:%d", host, port);
			evhttp_add_header(evhttp_request_get_output_headers(req),
					  "Host", hp);
		}
		evhttp_uri_free(u);
		if (req && evhttp_make_request(j->conn, req, EVHTTP_REQ_GET,
					       "/members") == 0)
			return;
		log_warn("etcdserver", "could not get cluster response from %s: %s",
			 url, j->why[0] ? j->why : "cannot send the request");
		if (j->conn)
			evhttp_connection_free(j->conn);
		j->conn = NULL;
	}
	send_result(j, 0, 0, NULL, 0, ERR_FETCH);
}

void join_done(struct worker *w)
{
	struct join *j = w->arg;
	if (!j)
		return;
	if (j->conn)
		evhttp_connection_free(j->conn);
	SSL_CTX_free(j->tls);
	free(j->urls);
	free(j);
	w->arg = NULL;
}

int join_start(struct worker *w)
{
	const Ipc__WorkerConfig *c = w->cfg;
	struct join *j = calloc(1, sizeof(*j));
	size_t n = 0;
	if (!j)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_initial_members; i++)
		if (strcmp(c->initial_members[i]->name, c->name) != 0)
			n += c->initial_members[i]->n_peerurls;
	j->w = w;
	j->urls = calloc(n ? n : 1, sizeof(*j->urls));
	if (!j->urls) {
		free(j);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n_initial_members; i++)
		if (strcmp(c->initial_members[i]->name, c->name) != 0)
			for (size_t k = 0; k < c->initial_members[i]->n_peerurls; k++)
				j->urls[j->n_urls++] = c->initial_members[i]->peerurls[k];
	qsort(j->urls, j->n_urls, sizeof(*j->urls), cmp_str);
	/* Lives as long as the process: discoveryd exists for this. */
	w->arg = j;
	try_next(j);
	return 0;
}
