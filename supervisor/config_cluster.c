/*
 * The start-up checks that depend on the data dir: the initial cluster of a
 * new member (the Clustering Guide's error cases, then etcd's), its member
 * and cluster IDs, and what this build does not support yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "ids.h"

/* etcd's types.NewURLsMap: "name=url,name=url,...", a name may repeat. */
static int parse_initial_cluster(struct config *c, const char *s,
				 struct cfg_error *err)
{
	struct cfg_member *m = NULL;
	size_t n = 0;
	char **urls = NULL; /* per member, the comma-joined URL texts */
	size_t n_urls = 0;
	char uerr[1024];
	int r = 0;

	while (*s) {
		size_t len = strcspn(s, ",");
		const char *next = s[len] ? s + len + 1 : s + len;
		if (len == 0) {
			s = next;
			continue;
		}
		const char *eq = memchr(s, '=', len);
		size_t nlen = eq ? (size_t)(eq - s) : len;
		const char *val = eq ? eq + 1 : s + len;
		size_t vlen = (size_t)(s + len - val);
		size_t k;
		for (k = 0; k < n; k++)
			if (strlen(m[k].name) == nlen &&
			    memcmp(m[k].name, s, nlen) == 0)
				break;
		if (k == n) {
			if (n == IDS_MAX_MEMBERS) {
				r = config_fail(err, CFG_ERR_FATAL, "etcdmain",
						"error setting up initial cluster: more than %d members",
						IDS_MAX_MEMBERS);
				goto out;
			}
			struct cfg_member *nm = realloc(m, (n + 1) * sizeof(*m));
			char **nu = realloc(urls, (n + 1) * sizeof(*urls));
			if (nm)
				m = nm;
			if (nu)
				urls = nu;
			if (!nm || !nu) {
				r = -ENOMEM;
				goto oom;
			}
			memset(&m[n], 0, sizeof(m[n]));
			urls[n] = NULL;
			n_urls++;
			m[n].name = strndup(s, nlen);
			n++;
			if (!m[k].name) {
				r = -ENOMEM;
				goto oom;
			}
		}
		char *joined;
		if (asprintf(&joined, "%s%s%.*s", urls[k] ? urls[k] : "",
			     urls[k] ? "," : "", (int)vlen, val) < 0) {
			r = -ENOMEM;
			goto oom;
		}
		free(urls[k]);
		urls[k] = joined;
		s = next;
	}
	for (size_t k = 0; k < n; k++) {
		/* A member listed without a URL gets etcd's scheme error. */
		if (!urls[k][0]) {
			r = config_fail(err, CFG_ERR_FATAL, "etcdmain",
					"error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ");
			goto out;
		}
		r = url_list_parse(urls[k], &m[k].peer_urls, uerr, sizeof(uerr));
		if (r < 0) {
			r = config_fail(err, CFG_ERR_FATAL, "etcdmain",
					"error setting up initial cluster: %s", uerr);
			goto out;
		}
	}
	c->members = m;
	c->n_members = n;
	m = NULL;
	n = 0;
	goto out;
oom:
	r = config_fail(err, CFG_ERR_FATAL, "etcdmain", "out of memory");
out:
	for (size_t k = 0; k < n; k++) {
		free(m[k].name);
		url_list_clear(&m[k].peer_urls);
	}
	free(m);
	for (size_t k = 0; k < n_urls; k++)
		free(urls[k]);
	free(urls);
	return r;
}

/*
 * etcd compares advertised URLs after resolving host names; for the only
 * name we accept in a listen URL, localhost, that is 127.0.0.1.
 */
static void resolved(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://localhost:");
	if (p)
		snprintf(buf, len, "%.*s://127.0.0.1:%s", (int)(p - url), url,
			 p + strlen("://localhost:"));
	else
		snprintf(buf, len, "%s", url);
}

static bool same_urls(const struct url_list *a, const struct url_list *b)
{
	char x[URL_MAX_LEN + 16], y[URL_MAX_LEN + 16];
	if (a->n != b->n)
		return false;
	/* Both lists are sorted; resolving keeps them comparable pairwise. */
	for (size_t i = 0; i < a->n; i++) {
		resolved(a->v[i].str, x, sizeof(x));
		resolved(b->v[i].str, y, sizeof(y));
		if (strcmp(x, y) != 0)
			return false;
	}
	return true;
}

static int cmp_pair(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Go's URLsMap.String(): the name=url pairs, sorted, comma-joined. */
static char *cluster_string(const struct config *c)
{
	size_t np = 0, len = 1;
	for (size_t i = 0; i < c->n_members; i++)
		np += c->members[i].peer_urls.n;
	char **pairs = calloc(np ? np : 1, sizeof(*pairs));
	if (!pairs)
		return NULL;
	np = 0;
	for (size_t i = 0; i < c->n_members; i++)
		for (size_t k = 0; k < c->members[i].peer_urls.n; k++) {
			if (asprintf(&pairs[np], "%s=%s", c->members[i].name,
				     c->members[i].peer_urls.v[k].str) < 0)
				pairs[np] = NULL;
			else
				len += strlen(pairs[np]) + 1;
			np++;
		}
	qsort(pairs, np, sizeof(*pairs), cmp_pair);
	char *s = calloc(1, len);
	for (size_t i = 0; i < np; i++) {
		if (s && pairs[i]) {
			if (s[0])
				strcat(s, ",");
			strcat(s, pairs[i]);
		}
		free(pairs[i]);
	}
	free(pairs);
	return s;
}

static int cmp_member(const void *a, const void *b)
{
	uint64_t x = ((const struct cfg_member *)a)->id;
	uint64_t y = ((const struct cfg_member *)b)->id;
	return x < y ? -1 : x > y;
}

static int check_new_member(struct config *c, struct cfg_error *err)
{
	const char *name = cfg_str(c, F_NAME);
	const char *ic = cfg_str(c, F_INITIAL_CLUSTER);
	char *own = NULL;
	int r;

	/*
	 * etcd's UpdateDefaultClusterFromName: with only --name given, the
	 * initial cluster is that name at the advertised peer URLs.
	 */
	if (strcmp(name, "default") != 0 &&
	    strcmp(ic, config_flags[F_INITIAL_CLUSTER].def) == 0) {
		const struct url_list *ap = cfg_urls(c, F_INITIAL_ADVERTISE_PEER_URLS);
		size_t len = 1;
		for (size_t i = 0; i < ap->n; i++)
			len += strlen(name) + strlen(ap->v[i].str) + 2;
		own = calloc(1, len);
		if (!own)
			return config_fail(err, CFG_ERR_FATAL, "etcdmain", "out of memory");
		for (size_t i = 0; i < ap->n; i++) {
			if (i)
				strcat(own, ",");
			strcat(own, name);
			strcat(own, "=");
			strcat(own, ap->v[i].str);
		}
		ic = own;
	}
	r = config_initial_cluster(c, ic, true, err);
	free(own);
	return r;
}

int config_parse_cluster(struct config *c, struct cfg_error *err)
{
	return parse_initial_cluster(c, cfg_str(c, F_INITIAL_CLUSTER), err);
}

/* etcd takes the discovery URL, as given, as the cluster token. */
const char *config_cluster_token(const struct config *c)
{
	const char *d = cfg_str(c, F_DISCOVERY);
	return d[0] ? d : cfg_str(c, F_INITIAL_CLUSTER_TOKEN);
}

int config_initial_cluster(struct config *c, const char *ic,
			   bool check_advertised, struct cfg_error *err)
{
	const char *name = cfg_str(c, F_NAME);
	int r = parse_initial_cluster(c, ic, err);
	if (r < 0)
		return r;

	struct cfg_member *self = NULL;
	for (size_t i = 0; i < c->n_members; i++)
		if (strcmp(c->members[i].name, name) == 0)
			self = &c->members[i];
	if (!self)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "%s not listed in the initial cluster config",
				   name);
	if (check_advertised &&
	    !same_urls(&self->peer_urls, cfg_urls(c, F_INITIAL_ADVERTISE_PEER_URLS)))
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "error setting up initial cluster: %s has different advertised URLs in the cluster and advertised peer URLs list",
				   name);
	for (size_t i = 0; i < c->n_members; i++)
		for (size_t k = 0; k < c->members[i].peer_urls.n; k++)
			for (size_t j = i; j < c->n_members; j++)
				for (size_t l = (j == i ? k + 1 : 0);
				     l < c->members[j].peer_urls.n; l++)
					if (strcmp(c->members[i].peer_urls.v[k].str,
						   c->members[j].peer_urls.v[l].str) == 0) {
						char *cs = cluster_string(c);
						config_fail(err, CFG_ERR_FATAL, "etcdmain",
							    "initial cluster %s has duplicate url",
							    cs ? cs : "");
						free(cs);
						return -EINVAL;
					}

	const char *token = config_cluster_token(c);
	uint64_t ids[IDS_MAX_MEMBERS];
	for (size_t i = 0; i < c->n_members; i++) {
		c->members[i].id = ids_member_id(&c->members[i].peer_urls, token);
		ids[i] = c->members[i].id;
	}
	c->member_id = self->id;
	c->cluster_id = ids_cluster_id(ids, c->n_members);
	qsort(c->members, c->n_members, sizeof(*c->members), cmp_member);
	return 0;
}

static bool any_scheme(const struct url_list *l, const char *a, const char *b)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].scheme, a) == 0 || strcmp(l->v[i].scheme, b) == 0)
			return true;
	return false;
}

/*
 * Features that come in later issues: refused, never silently ignored.
 * TLS (https URLs and the certificate flags) is checked by tls_conf.
 */
static int check_unsupported(struct config *c, struct cfg_error *err)
{
	static const enum flag_id url_flags[] = {
		F_LISTEN_CLIENT_URLS, F_LISTEN_PEER_URLS,
		F_ADVERTISE_CLIENT_URLS, F_INITIAL_ADVERTISE_PEER_URLS,
	};

	for (size_t i = 0; i < sizeof(url_flags) / sizeof(url_flags[0]); i++) {
		const struct url_list *l = cfg_urls(c, url_flags[i]);
		if (any_scheme(l, "unix", "unixs"))
			return config_fail(err, CFG_ERR_PLAIN, NULL,
					   "unix URLs (in --%s) are not supported yet",
					   config_flags[url_flags[i]].name);
	}
	if (cfg_str(c, F_EXPERIMENTAL_ENABLE_V2V3)[0])
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--%s is not supported yet",
				   config_flags[F_EXPERIMENTAL_ENABLE_V2V3].name);
	if (c->v[F_FORCE_NEW_CLUSTER].b)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--%s is not supported yet",
				   config_flags[F_FORCE_NEW_CLUSTER].name);
	if (cfg_urls(c, F_LISTEN_METRICS_URLS)->n)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--listen-metrics-urls is not supported yet");
	if (strcmp(cfg_str(c, F_CORS), "*") != 0 && cfg_str(c, F_CORS)[0])
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--cors other than '*' is not supported yet");
	if (strcmp(cfg_str(c, F_HOST_WHITELIST), "*") != 0 &&
	    cfg_str(c, F_HOST_WHITELIST)[0])
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--host-whitelist other than '*' is not supported yet");
	if (strcmp(cfg_str(c, F_AUTH_TOKEN), "simple") != 0)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--auth-token=%s is not supported yet",
				   cfg_str(c, F_AUTH_TOKEN));
	return 0;
}

int config_bootstrap(struct config *c, bool initialized, struct cfg_error *err)
{
	int r;

	bool srv = cfg_str(c, F_DISCOVERY_SRV)[0] != 0;
	bool disc = cfg_str(c, F_DISCOVERY)[0] != 0;
	if (!initialized && (srv || disc) &&
	    strcmp(cfg_str(c, F_INITIAL_CLUSTER_STATE), "existing") == 0)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
				   "--%s with --initial-cluster-state existing "
				   "is not supported yet",
				   srv ? "discovery-srv" : "discovery");
	/* With DNS SRV records or a discovery URL the initial cluster
	 * comes from discoveryd. */
	if (!initialized && !srv && !disc && (r = check_new_member(c, err)) < 0)
		return r;
	return check_unsupported(c, err);
}
