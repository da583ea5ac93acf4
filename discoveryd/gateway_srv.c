/*
 * The gateway's endpoints from DNS SRV records (etcd gateway start
 * --discovery-srv), as etcd's discoverEndpoints: _etcd-client-ssl and
 * _etcd-client records (srv.c), then, unless --insecure-discovery, only the
 * https ones whose TLS handshake succeeds against --trusted-ca-file (or the
 * system's roots) for the SRV domain. The supervisor gets them in
 * JoinResult.endpoints; none left means the --endpoints flag's.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "join.h"
#include "log.h"
#include "srv_int.h"
#include "tls_ctx.h"
#include "worker.h"

#define PKG "etcdmain"
#define DIAL_TIMEOUT_MS 5000 /* etcd's ValidateSecureEndpoints transport */

/* A TCP connection to addr:port within the timeout: fd or -errno. */
static int dial(const char *addr, uint16_t port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST}, *ai;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(addr, ps, &hints, &ai) != 0)
		return -EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r = fd < 0 ? -errno : 0;
	if (r == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		r = -errno;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (r == -EINPROGRESS) {
			int e = 0;
			socklen_t el = sizeof(e);
			r = poll(&p, 1, DIAL_TIMEOUT_MS) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0
				? -e : -ETIMEDOUT;
		}
	}
	freeaddrinfo(ai);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	/* The handshake blocks, bounded by the same timeout. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {DIAL_TIMEOUT_MS / 1000, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Does an https endpoint complete a verified handshake? 0, or -1 with
 * why in err as etcd words it ("\"<url>\" failed to dial (...)"). */
static int validate(struct srv_resolver *res, SSL_CTX *ctx, const char *domain,
		    const struct srv_endpoint *ep, char *err, size_t errlen)
{
	struct addrs a;
	char why[512] = "";
	if (srv_resolve(res, ep->host, &a, why, sizeof(why)) < 0 || a.n == 0) {
		snprintf(err, errlen, "\"%s\" failed to dial (%s)", ep->url, why);
		return -1;
	}
	int fd = dial(a.v[0], ep->port);
	if (fd < 0) {
		snprintf(err, errlen, "\"%s\" failed to dial (dial tcp %s:%u: %s)",
			 ep->url, a.v[0], ep->port,
			 fd == -ECONNREFUSED ? "connect: connection refused"
					     : strerror(-fd));
		return -1;
	}
	SSL *ssl = SSL_new(ctx);
	int ok = ssl && tls_client_set_host(ssl, domain) == 0 &&
		 SSL_set_fd(ssl, fd) == 1;
	int r = ok ? SSL_connect(ssl) : -1;
	if (r != 1) {
		if (!ssl || !tls_handshake_error(ssl, r, why, sizeof(why)))
			snprintf(why, sizeof(why), "handshake failed");
		snprintf(err, errlen, "\"%s\" failed to dial (%s)", ep->url, why);
	}
	if (ssl)
		SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return r == 1 ? 0 : -1;
}

/* etcd's "%v" of a []string: "[a b c]". */
static void go_list(char *buf, size_t len, char *const *v, size_t n)
{
	size_t o = (size_t)snprintf(buf, len, "[");
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " " : "", v[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

int gateway_srv(struct worker *w)
{
	const Ipc__WorkerConfig *c = w->cfg;
	const Ipc__GatewayConfig *g = c->gateway;
	char err[SRV_ERR_MAX];
	struct srv_resolver *res = NULL;
	struct srv_endpoints *eps = NULL;
	int r = srv_resolver_new(c->dns_resolver, &res, err, sizeof(err));
	if (r == 0)
		r = srv_client_endpoints(res, c->discovery_srv, c->discovery_srv_name,
					 &eps, err, sizeof(err));
	if (r == -ENOMEM) {
		srv_resolver_free(res);
		return r;
	}
	Ipc__JoinResult jr = IPC__JOIN_RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	if (r < 0) {
		/* etcd prints the lookup's error alone and exits 1. */
		fprintf(stderr, "%s\n", err);
		e.code = 1;
		e.message = "";
		jr.error = &e;
		worker_send_pb(w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &jr.base);
		srv_resolver_free(res);
		return 0;
	}
	char **urls = calloc(eps->n ? eps->n : 1, sizeof(*urls));
	char *list = malloc(16384), *errs = calloc(1, 16384);
	if (!urls || !list || !errs) {
		free(urls);
		free(list);
		free(errs);
		srv_endpoints_free(eps);
		srv_resolver_free(res);
		return -ENOMEM;
	}
	for (size_t i = 0; i < eps->n; i++)
		urls[i] = eps->v[i].url;
	go_list(list, 16384, urls, eps->n);
	log_info(PKG, "discovered the cluster %s from %s", list, c->discovery_srv);
	size_t n = eps->n;
	if (!g->insecure_discovery) {
		log_info(PKG, "validating discovered endpoints %s", list);
		Ipc__TlsInfo ti = IPC__TLS_INFO__INIT;
		ti.trusted_ca_file = g->trusted_ca_file;
		SSL_CTX *ctx = NULL;
		char cerr[512];
		if (tls_ctx_client(&ti, NULL, 0, &ctx, cerr, sizeof(cerr)) < 0)
			snprintf(errs, 16384, "%s", cerr);
		n = 0;
		for (size_t i = 0; ctx && i < eps->n; i++) {
			char one[1024];
			int ok = 0;
			if (!eps->v[i].tls)
				snprintf(one, sizeof(one), "\"%s\" is insecure", eps->v[i].url);
			else
				ok = validate(res, ctx, c->discovery_srv, &eps->v[i], one,
					      sizeof(one)) == 0;
			if (ok)
				urls[n++] = eps->v[i].url;
			else
				snprintf(errs + strlen(errs), 16384 - strlen(errs), "%s%s",
					 errs[0] ? "," : "", one);
		}
		if (ctx)
			SSL_CTX_free(ctx);
		if (errs[0])
			log_warn(PKG, "%s", errs);
		go_list(list, 16384, urls, n);
		log_info(PKG, "using discovered endpoints %s", list);
	}
	jr.n_endpoints = n;
	jr.endpoints = urls;
	worker_send_pb(w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &jr.base);
	free(urls);
	free(list);
	free(errs);
	srv_endpoints_free(eps);
	srv_resolver_free(res);
	return 0;
}
