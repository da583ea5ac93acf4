/* DNS SRV discovery, the DNS half: the resolver (ldns), bounded queries with
 * Go's error texts, A/AAAA resolution (and /etc/hosts), SRV records in Go's order. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <ldns/ldns.h>

#include "srv.h"
#include "srv_int.h"

struct srv_resolver {
	ldns_resolver *res;
	/* /etc/hosts, with the system resolver only: Go (and so etcd) reads
	 * it before DNS. NULL with a resolver the caller names. */
	ldns_rr_list *hosts;
	/* "ip:port" of the first nameserver: Go names the server in its
	 * lookup errors ("lookup X on 127.0.3.53:53: no such host"). */
	char server[INET6_ADDRSTRLEN + 8];
};

void srv_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static ldns_rdf *addr_rdf(const char *ip)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, ip, buf) == 1)
		return ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, ip);
	if (inet_pton(AF_INET6, ip, buf) == 1)
		return ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, ip);
	return NULL;
}

/* "IP", "IP:port", "[IPv6]:port" or a bare IPv6 address. */
static int resolver_from_addr(const char *conf, ldns_resolver *res)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *end;
	ldns_rdf *rdf;
	size_t len;

	if (conf[0] == '[') {
		end = strchr(conf, ']');
		if (end == NULL || (end[1] != 0 && end[1] != ':'))
			return -EINVAL;
		conf++;
		if (end[1] == ':')
			port = end + 2;
	} else if ((end = strchr(conf, ':')) != NULL &&
		   strchr(end + 1, ':') == NULL) {
		port = end + 1;
	} else {
		end = conf + strlen(conf);
	}
	len = (size_t)(end - conf);
	if (len == 0 || len >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, conf, len);
	ip[len] = 0;
	if (port != NULL) {
		char *e;
		unsigned long p;

		errno = 0;
		p = strtoul(port, &e, 10);
		if (*port == 0 || *e != 0 || errno != 0 || p == 0 || p > 65535)
			return -EINVAL;
		ldns_resolver_set_port(res, (uint16_t)p);
	}
	if ((rdf = addr_rdf(ip)) == NULL)
		return -EINVAL;
	if (ldns_resolver_push_nameserver(res, rdf) != LDNS_STATUS_OK) {
		ldns_rdf_deep_free(rdf);
		return -ENOMEM;
	}
	ldns_rdf_deep_free(rdf);
	return 0;
}

int srv_resolver_new(const char *conf, struct srv_resolver **ret, char *err,
		     size_t errlen)
{
	struct srv_resolver *r;
	ldns_resolver *res = NULL;
	ldns_status st;
	char *ns;
	int rc;

	if (conf == NULL || conf[0] == 0 || strchr(conf, '/') != NULL) {
		const char *path = conf != NULL && conf[0] != 0 ? conf : NULL;

		st = ldns_resolver_new_frm_file(&res, path);
		if (st != LDNS_STATUS_OK) {
			srv_seterr(err, errlen, "cannot read resolver configuration %s: %s",
			       path != NULL ? path : "/etc/resolv.conf",
			       ldns_get_errorstr_by_id(st));
			return st == LDNS_STATUS_MEM_ERR ? -ENOMEM : -ENOENT;
		}
	} else {
		if ((res = ldns_resolver_new()) == NULL)
			return -ENOMEM;
		if ((rc = resolver_from_addr(conf, res)) < 0) {
			ldns_resolver_deep_free(res);
			srv_seterr(err, errlen, "bad nameserver address %s", conf);
			return rc;
		}
	}
	if (ldns_resolver_nameserver_count(res) == 0) {
		ldns_resolver_deep_free(res);
		srv_seterr(err, errlen, "no nameserver in %s",
		       conf != NULL && conf[0] != 0 ? conf : "/etc/resolv.conf");
		return -ENOENT;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		ldns_resolver_deep_free(res);
		return -ENOMEM;
	}
	/* Every name we ask is absolute: no search list, no default domain. */
	ldns_resolver_set_defnames(res, false);
	ldns_resolver_set_dnsrch(res, false);
	ldns_resolver_set_timeout(res,
		(struct timeval){ .tv_sec = SRV_QUERY_TIMEOUT_S });
	/* query() retries: ldns's own retries skip a timed-out server. */
	ldns_resolver_set_retry(res, 1);
	ldns_resolver_set_fallback(res, true); /* TCP on truncation */
	ns = ldns_rdf2str(ldns_resolver_nameservers(res)[0]);
	if (ns != NULL && strchr(ns, ':') != NULL)
		snprintf(r->server, sizeof(r->server), "[%s]:%u", ns,
			 ldns_resolver_port(res));
	else
		snprintf(r->server, sizeof(r->server), "%s:%u",
			 ns != NULL ? ns : "?", ldns_resolver_port(res));
	free(ns);
	if (conf == NULL || conf[0] == 0)
		r->hosts = ldns_get_rr_list_hosts_frm_file(NULL);
	r->res = res;
	*ret = r;
	return 0;
}

struct srv_resolver *srv_resolver_free(struct srv_resolver *r)
{
	if (r != NULL) {
		ldns_resolver_deep_free(r->res);
		ldns_rr_list_deep_free(r->hosts);
		free(r);
	}
	return NULL;
}

/*
 * One query for name (as the user wrote it; made absolute here). On
 * success *ret_pkt holds an answer with records of type t. Failures are
 * Go's DNSError texts: no such host (NXDOMAIN or no record of that type),
 * server misbehaving (other rcodes), i/o timeout (no answer).
 */
static int query(struct srv_resolver *r, const char *name, ldns_rr_type t,
		 ldns_rr_list **ret, char *err, size_t errlen)
{
	char fqdn[LDNS_MAX_DOMAINLEN + 2];
	ldns_rr_list *list = NULL;
	ldns_pkt *pkt = NULL;
	ldns_rdf *dname;
	ldns_status st = LDNS_STATUS_ERR;
	size_t len = strlen(name);
	const char *why;

	if (len == 0 || len > LDNS_MAX_DOMAINLEN) {
		srv_seterr(err, errlen, "lookup %s: invalid domain name", name);
		return -ENOENT;
	}
	snprintf(fqdn, sizeof(fqdn), "%s%s", name,
		 name[len - 1] == '.' ? "" : ".");
	if ((dname = ldns_dname_new_frm_str(fqdn)) == NULL) {
		srv_seterr(err, errlen, "lookup %s: invalid domain name", name);
		return -ENOENT;
	}
	for (int try = 0; try < SRV_QUERY_TRIES; try++) {
		size_t nns = ldns_resolver_nameserver_count(r->res);
		bool alive = false;

		/*
		 * ldns marks a nameserver that timed out unreachable for good
		 * and skips it in every later query, its own retries too; with
		 * one nameserver a lost packet would end the bootstrap. So we
		 * retry here, giving them all another chance each time.
		 */
		for (size_t i = 0; i < nns; i++)
			alive |= ldns_resolver_nameserver_rtt(r->res, i) !=
				 LDNS_RESOLV_RTT_INF;
		for (size_t i = 0; !alive && i < nns; i++)
			ldns_resolver_set_nameserver_rtt(r->res, i,
							 LDNS_RESOLV_RTT_MIN);
		ldns_pkt_free(pkt);
		pkt = NULL;
		st = ldns_resolver_send(&pkt, r->res, dname, t,
					LDNS_RR_CLASS_IN, LDNS_RD);
		if (st == LDNS_STATUS_OK || st == LDNS_STATUS_MEM_ERR)
			break;
	}
	ldns_rdf_deep_free(dname);
	if (st == LDNS_STATUS_MEM_ERR)
		return -ENOMEM;
	if (st != LDNS_STATUS_OK || pkt == NULL)
		why = st == LDNS_STATUS_NETWORK_ERR ||
		      st == LDNS_STATUS_RES_NO_NS ? "i/o timeout"
						  : ldns_get_errorstr_by_id(st);
	else if (ldns_pkt_get_rcode(pkt) == LDNS_RCODE_NXDOMAIN)
		why = "no such host";
	else if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR)
		why = "server misbehaving";
	else if ((list = ldns_pkt_rr_list_by_type(pkt, t,
			LDNS_SECTION_ANSWER)) == NULL ||
		 ldns_rr_list_rr_count(list) == 0)
		why = "no such host";
	else
		why = NULL;
	ldns_pkt_free(pkt);
	if (why != NULL) {
		ldns_rr_list_deep_free(list);
		srv_seterr(err, errlen, "lookup %s on %s: %s", name, r->server, why);
		return -ENOENT;
	}
	*ret = list;
	return 0;
}

static void addrs_add(struct addrs *a, const char *ip)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], ip) == 0)
			return;
	if (a->n < SRV_MAX_ADDRS)
		snprintf(a->v[a->n++], sizeof(a->v[0]), "%s", ip);
}

/* The addresses /etc/hosts gives host (with or without its final dot). */
static void hosts_lookup(const struct srv_resolver *r, const char *host,
			 struct addrs *a)
{
	size_t hl = strlen(host);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	for (size_t i = 0; r->hosts != NULL &&
	     i < ldns_rr_list_rr_count(r->hosts); i++) {
		ldns_rr *rr = ldns_rr_list_rr(r->hosts, i);
		char *owner = ldns_rdf2str(ldns_rr_owner(rr));
		char *ip = NULL;

		if (owner != NULL && strncasecmp(owner, host, hl) == 0 &&
		    (owner[hl] == 0 || strcmp(owner + hl, ".") == 0) &&
		    ldns_rr_rd_count(rr) > 0 &&
		    (ip = ldns_rdf2str(ldns_rr_rdf(rr, 0))) != NULL)
			addrs_add(a, ip);
		free(ip);
		free(owner);
	}
}

/* Addresses of host: itself when numeric, else its A then AAAA records. */
int srv_resolve(struct srv_resolver *r, const char *host,
		   struct addrs *ret, char *err, size_t errlen)
{
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_A,
					      LDNS_RR_TYPE_AAAA };
	unsigned char bin[sizeof(struct in6_addr)];
	char aerr[SRV_ERR_MAX] = "";
	struct addrs a = { .n = 0 };
	int rc, first = 0;

	for (int af = 0; af < 2; af++) {
		int fam = af == 0 ? AF_INET : AF_INET6;

		if (inet_pton(fam, host, bin) == 1) {
			inet_ntop(fam, bin, a.v[0], sizeof(a.v[0]));
			a.n = 1;
			*ret = a;
			return 0;
		}
	}
	hosts_lookup(r, host, &a);
	if (a.n > 0) {
		*ret = a;
		return 0;
	}
	for (size_t i = 0; i < 2; i++) {
		ldns_rr_list *l;

		rc = query(r, host, types[i], &l, i == 0 ? aerr : NULL,
			   sizeof(aerr));
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0) {
			if (i == 0)
				first = rc;
			continue;
		}
		for (size_t j = 0; j < ldns_rr_list_rr_count(l); j++) {
			ldns_rdf *f = ldns_rr_rdf(ldns_rr_list_rr(l, j), 0);
			char *s = f != NULL ? ldns_rdf2str(f) : NULL;

			if (s != NULL)
				addrs_add(&a, s);
			free(s);
		}
		ldns_rr_list_deep_free(l);
	}
	if (a.n == 0) {
		if (first < 0)
			srv_seterr(err, errlen, "%s", aerr);
		else
			srv_seterr(err, errlen, "lookup %s on %s: no such host",
			       host, r->server);
		return -ENOENT;
	}
	*ret = a;
	return 0;
}

void srv_recs_free(struct rec *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].target);
	free(v);
}

/*
 * Go's net.LookupSRV order (RFC 2782): by priority, and within a priority
 * a weighted random order (records of weight 0 keep the server's order).
 */
static void recs_order(struct rec *v, size_t n)
{
	for (size_t i = 1; i < n; i++) /* stable insertion sort */
		for (size_t j = i; j > 0 &&
		     (v[j].prio < v[j - 1].prio ||
		      (v[j].prio == v[j - 1].prio &&
		       v[j].weight < v[j - 1].weight)); j--) {
			struct rec t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (size_t i = 0, j; i < n; i = j) {
		uint32_t sum = 0;

		for (j = i; j < n && v[j].prio == v[i].prio; j++)
			sum += v[j].weight;
		for (size_t k = i; sum > 0 && j - k > 1; k++) {
			uint32_t pick = arc4random_uniform(sum), s = 0;

			for (size_t m = k; m < j; m++) {
				s += v[m].weight;
				if (s > pick) {
					struct rec t = v[k];

					v[k] = v[m];
					v[m] = t;
					break;
				}
			}
			sum -= v[k].weight;
		}
	}
}

/* The SRV records of _service._tcp.domain, in Go's order. */
int srv_lookup(struct srv_resolver *r, const char *service,
		      const char *domain, struct rec **ret, size_t *ret_n,
		      char *err, size_t errlen)
{
	char name[LDNS_MAX_DOMAINLEN + 64];
	ldns_rr_list *l;
	struct rec *v;
	size_t n = 0, cnt;
	int rc;

	snprintf(name, sizeof(name), "_%s._tcp.%s", service, domain);
	if ((rc = query(r, name, LDNS_RR_TYPE_SRV, &l, err, errlen)) < 0)
		return rc;
	cnt = ldns_rr_list_rr_count(l);
	if (cnt > SRV_MAX_RECORDS)
		cnt = SRV_MAX_RECORDS;
	if ((v = calloc(cnt, sizeof(*v))) == NULL) {
		ldns_rr_list_deep_free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (ldns_rr_rd_count(rr) != 4)
			continue;
		v[n].prio = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
		v[n].weight = ldns_rdf2native_int16(ldns_rr_rdf(rr, 1));
		v[n].port = ldns_rdf2native_int16(ldns_rr_rdf(rr, 2));
		if ((v[n].target = ldns_rdf2str(ldns_rr_rdf(rr, 3))) == NULL) {
			ldns_rr_list_deep_free(l);
			srv_recs_free(v, n);
			return -ENOMEM;
		}
		n++;
	}
	ldns_rr_list_deep_free(l);
	if (n == 0) {
		free(v);
		srv_seterr(err, errlen, "lookup %s on %s: no such host", name,
		       r->server);
		return -ENOENT;
	}
	recs_order(v, n);
	*ret = v;
	*ret_n = n;
	return 0;
}
