/* DNS SRV discovery, etcd's half: pkg/srv GetCluster and GetClient on top of
 * srv_dns.c's lookups. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#include "srv.h"
#include "srv_int.h"

/* One resolved --initial-advertise-peer-urls entry. */
struct apurl {
	const char *url; /* borrowed, for the scheme mismatch message */
	char scheme[16];
	uint16_t port;
	struct addrs a;
};

/* The members one SRV name gives, in record order. */
struct parts {
	struct srv_member *v;
	size_t n;
};

/* "host:port", with brackets around an IPv6 host (Go's JoinHostPort). */
static void join_host_port(char *buf, size_t len, const char *host,
			   size_t hostlen, uint16_t port)
{
	bool v6 = memchr(host, ':', hostlen) != NULL;

	snprintf(buf, len, "%s%.*s%s:%u", v6 ? "[" : "", (int)hostlen, host,
		 v6 ? "]" : "", port);
}

static void parts_clear(struct parts *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].url);
		free(p->v[i].log);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static const struct apurl *ap_match(const struct apurl *ap, size_t nap,
				    uint16_t port, const struct addrs *a)
{
	for (size_t i = 0; i < nap; i++) {
		if (ap[i].port != port)
			continue;
		for (size_t j = 0; j < ap[i].a.n; j++)
			for (size_t k = 0; k < a->n; k++)
				if (strcmp(ap[i].a.v[j], a->v[k]) == 0)
					return &ap[i];
	}
	return NULL;
}

/*
 * etcd's GetCluster for one SRV name: each target resolved and matched
 * with the advertised addresses; records that do not resolve are skipped,
 * and only when no record is usable is the last error returned, wrapped as
 * etcd wraps it.
 */
static int get_cluster(struct srv_resolver *r, const char *scheme,
		       const char *service, const char *domain,
		       const char *self, const struct apurl *ap, size_t nap,
		       struct parts *ret, bool *nosrv, char *err, size_t errlen)
{
	char e[SRV_ERR_MAX] = "", urlhost[LDNS_MAX_DOMAINLEN + 16];
	struct parts p = { NULL, 0 };
	struct rec *recs;
	size_t n;
	unsigned tmp = 0;
	int rc;

	*nosrv = false;
	if ((rc = srv_lookup(r, service, domain, &recs, &n, e, sizeof(e))) < 0) {
		*nosrv = true;
		goto fail;
	}
	if ((p.v = calloc(n, sizeof(*p.v))) == NULL) {
		srv_recs_free(recs, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct apurl *m;
		struct srv_member *mb;
		struct addrs a;
		char num[16];
		size_t hl = strlen(recs[i].target);

		if ((rc = srv_resolve(r, recs[i].target, &a, e, sizeof(e))) < 0) {
			if (rc == -ENOMEM)
				goto oom;
			continue;
		}
		m = ap_match(ap, nap, recs[i].port, &a);
		if (m == NULL)
			snprintf(num, sizeof(num), "%u", tmp++);
		/* SRV targets end with a dot, URLs do not. */
		if (hl > 1 && recs[i].target[hl - 1] == '.')
			hl--;
		join_host_port(urlhost, sizeof(urlhost), recs[i].target, hl,
			       recs[i].port);
		if (m != NULL && strcmp(m->scheme, scheme) != 0) {
			snprintf(e, sizeof(e),
				 "bootstrap at %s://%s from DNS for %s has scheme mismatch with expected peer %s",
				 scheme, urlhost, service, m->url);
			continue;
		}
		mb = &p.v[p.n];
		mb->name = strdup(m != NULL ? self : num);
		if (mb->name == NULL ||
		    asprintf(&mb->url, "%s://%s", scheme, urlhost) < 0 ||
		    asprintf(&mb->log,
			     "got bootstrap from DNS for etcd-server at %s=%s",
			     mb->name, mb->url) < 0) {
			/* asprintf leaves its pointer undefined on failure */
			mb->url = mb->log = NULL;
			p.n++;
			goto oom;
		}
		p.n++;
	}
	srv_recs_free(recs, n);
	if (p.n == 0) {
		free(p.v);
		rc = -ENOENT;
		goto fail;
	}
	*ret = p;
	return 0;
oom:
	srv_recs_free(recs, n);
	parts_clear(&p);
	return -ENOMEM;
fail:
	if (rc != -ENOMEM)
		srv_seterr(err, errlen, "error querying DNS SRV records for _%s %s",
		       service, e);
	return rc;
}

/*
 * scheme://host:port[/...] of an advertised peer URL, resolved. Errors in
 * Go's SplitHostPort words, as etcd's resolveTCPAddr returns them.
 */
static int apurl_resolve(struct srv_resolver *r, const char *url,
			 struct apurl *ret, char *err, size_t errlen)
{
	struct apurl ap = { .url = url };
	char host[LDNS_MAX_DOMAINLEN + 2];
	const char *hp, *end, *hs, *he, *ps;
	unsigned long port = 0;
	size_t sl, hpl;
	int rc;

	if ((hp = strstr(url, "://")) == NULL ||
	    (sl = (size_t)(hp - url)) == 0 || sl >= sizeof(ap.scheme)) {
		srv_seterr(err, errlen, "parse %s: missing protocol scheme", url);
		return -EINVAL;
	}
	memcpy(ap.scheme, url, sl);
	hp += 3;
	hpl = strcspn(hp, "/?#");
	end = hp + hpl;
	if (*hp == '[') {
		hs = hp + 1;
		if ((he = memchr(hp, ']', hpl)) == NULL) {
			srv_seterr(err, errlen, "address %.*s: missing ']' in address",
			       (int)hpl, hp);
			return -EINVAL;
		}
		ps = he + 1 < end && he[1] == ':' ? he + 2 : NULL;
	} else {
		hs = hp;
		he = memchr(hp, ':', hpl);
		if (he != NULL && memchr(he + 1, ':', (size_t)(end - he - 1))) {
			srv_seterr(err, errlen, "address %.*s: too many colons in address",
			       (int)hpl, hp);
			return -EINVAL;
		}
		ps = he != NULL ? he + 1 : NULL;
	}
	if (ps == NULL) {
		srv_seterr(err, errlen, "address %.*s: missing port in address",
		       (int)hpl, hp);
		return -EINVAL;
	}
	for (const char *c = ps; c < end; c++)
		port = *c >= '0' && *c <= '9' && port <= 65535 ?
			       port * 10 + (unsigned long)(*c - '0') : 65536;
	if (ps == end || port > 65535) {
		srv_seterr(err, errlen, "address %.*s: invalid port", (int)hpl, hp);
		return -EINVAL;
	}
	if (he <= hs || (size_t)(he - hs) >= sizeof(host)) {
		srv_seterr(err, errlen, "address %.*s: missing host", (int)hpl, hp);
		return -EINVAL;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = 0;
	ap.port = (uint16_t)port;
	if ((rc = srv_resolve(r, host, &ap.a, err, errlen)) < 0)
		return rc;
	*ret = ap;
	return 0;
}

static int cluster_build(struct parts *p, bool tls, struct srv_cluster **ret)
{
	struct srv_cluster *c;
	size_t len = 1;
	char *s;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++)
		len += strlen(p->v[i].name) + strlen(p->v[i].url) + 2;
	if ((c->initial_cluster = s = malloc(len)) == NULL) {
		free(c);
		return -ENOMEM;
	}
	*s = 0;
	for (size_t i = 0; i < p->n; i++)
		s += sprintf(s, "%s%s=%s", i > 0 ? "," : "", p->v[i].name,
			     p->v[i].url);
	c->members = p->v;
	c->n = p->n;
	c->tls = tls;
	p->v = NULL;
	p->n = 0;
	*ret = c;
	return 0;
}

int srv_server_cluster(struct srv_resolver *r, const char *domain,
		       const char *srv_name, const char *self_name,
		       const char *const *apurls, size_t napurls,
		       struct srv_cluster **ret, char *err, size_t errlen)
{
	char svc[2][128], e_ssl[SRV_ERR_MAX], e_plain[SRV_ERR_MAX];
	const char *sfx = srv_name != NULL && srv_name[0] != 0 ? "-" : "";
	struct parts p = { NULL, 0 };
	struct apurl *ap;
	bool tls = true, found = false, nosrv;
	int rc;

	if (r == NULL || domain == NULL || self_name == NULL ||
	    (apurls == NULL && napurls > 0))
		return -EINVAL;
	if (strlen(srv_name != NULL ? srv_name : "") > 64) {
		srv_seterr(err, errlen, "--discovery-srv-name too long");
		return -EINVAL;
	}
	snprintf(svc[0], sizeof(svc[0]), "etcd-server-ssl%s%s", sfx,
		 sfx[0] ? srv_name : "");
	snprintf(svc[1], sizeof(svc[1]), "etcd-server%s%s", sfx,
		 sfx[0] ? srv_name : "");
	/* As etcd, the advertised URLs are resolved first. */
	if ((ap = calloc(napurls ? napurls : 1, sizeof(*ap))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < napurls; i++)
		if ((rc = apurl_resolve(r, apurls[i], &ap[i], err, errlen)) < 0)
			goto out;
	/*
	 * The guide: "If _etcd-server-ssl._tcp.example.com is found then etcd
	 * will attempt the bootstrapping process over TLS"; plain records
	 * alone bootstrap over http (etcd 3.3 and 3.5; 3.4's #11321 fails).
	 */
	rc = get_cluster(r, "https", svc[0], domain, self_name, ap, napurls,
			 &p, &nosrv, e_ssl, sizeof(e_ssl));
	if (rc == -ENOENT) {
		tls = false;
		rc = get_cluster(r, "http", svc[1], domain, self_name, ap,
				 napurls, &p, &nosrv, e_plain, sizeof(e_plain));
		/* Neither name answers: etcd's message, which names the -ssl
		 * lookup. Else what is wrong with the plain records. */
		if (rc == -ENOENT)
			srv_seterr(err, errlen, "%s", nosrv ? e_ssl : e_plain);
	}
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < p.n; i++)
		if (strcmp(p.v[i].name, self_name) == 0)
			found = true;
	if (!found) {
		srv_seterr(err, errlen,
		       "cannot find local etcd member \"%s\" in SRV records",
		       self_name);
		rc = -ENOENT;
		goto out;
	}
	rc = cluster_build(&p, tls, ret);
out:
	parts_clear(&p);
	free(ap);
	return rc;
}

struct srv_cluster *srv_cluster_free(struct srv_cluster *c)
{
	if (c != NULL) {
		struct parts p = { c->members, c->n };

		parts_clear(&p);
		free(c->initial_cluster);
		free(c);
	}
	return NULL;
}

int srv_client_endpoints(struct srv_resolver *r, const char *domain,
			 const char *srv_name, struct srv_endpoints **ret,
			 char *err, size_t errlen)
{
	char e[2][SRV_ERR_MAX], svc[128];
	const char *sfx = srv_name != NULL && srv_name[0] != 0 ? "-" : "";
	struct srv_endpoints *out;
	struct rec *recs[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 }, total;
	int rc[2];

	if (r == NULL || domain == NULL)
		return -EINVAL;
	if (strlen(srv_name != NULL ? srv_name : "") > 64) {
		srv_seterr(err, errlen, "--discovery-srv-name too long");
		return -EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(svc, sizeof(svc), "etcd-client%s%s%s",
			 i == 0 ? "-ssl" : "", sfx, sfx[0] ? srv_name : "");
		rc[i] = srv_lookup(r, svc, domain, &recs[i], &n[i], e[i],
				   sizeof(e[i]));
		if (rc[i] == -ENOMEM)
			goto oom;
	}
	if (rc[0] < 0 && rc[1] < 0) {
		srv_seterr(err, errlen, "dns lookup errors: %s and %s", e[0], e[1]);
		return -ENOENT;
	}
	total = n[0] + n[1];
	if ((out = calloc(1, sizeof(*out))) == NULL ||
	    (out->v = calloc(total, sizeof(*out->v))) == NULL) {
		free(out);
		goto oom;
	}
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < n[i]; j++) {
			struct srv_endpoint *ep = &out->v[out->n];
			char hp[LDNS_MAX_DOMAINLEN + 16];

			join_host_port(hp, sizeof(hp), recs[i][j].target,
				       strlen(recs[i][j].target),
				       recs[i][j].port);
			ep->port = recs[i][j].port;
			ep->tls = i == 0;
			if (asprintf(&ep->url, "%s://%s",
				     i == 0 ? "https" : "http", hp) < 0) {
				ep->url = NULL;
				srv_endpoints_free(out);
				goto oom;
			}
			/* The target moves into the endpoint. */
			ep->host = recs[i][j].target;
			recs[i][j].target = NULL;
			out->n++;
		}
	srv_recs_free(recs[0], n[0]);
	srv_recs_free(recs[1], n[1]);
	*ret = out;
	return 0;
oom:
	srv_recs_free(recs[0], n[0]);
	srv_recs_free(recs[1], n[1]);
	return -ENOMEM;
}

struct srv_endpoints *srv_endpoints_free(struct srv_endpoints *e)
{
	if (e != NULL) {
		for (size_t i = 0; i < e->n; i++) {
			free(e->v[i].host);
			free(e->v[i].url);
		}
		free(e->v);
		free(e);
	}
	return NULL;
}
