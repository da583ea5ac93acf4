/* URL parsing with Go's net/url rules and etcd's types.NewURLs checks. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* Go's validOptionalPort: empty, or ':' then digits only. */
static bool valid_optional_port(const char *p, size_t n)
{
	if (n == 0)
		return true;
	if (p[0] != ':')
		return false;
	for (size_t i = 1; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* Go's net.SplitHostPort, reduced to: does it split, and into what. */
static int split_host_port(const char *hp, size_t n, size_t *ret_hoff,
			   size_t *ret_hlen, size_t *ret_poff)
{
	const char *colon = NULL;
	for (size_t i = 0; i < n; i++)
		if (hp[i] == ':')
			colon = hp + i;
	if (!colon)
		return -EINVAL; /* missing port in address */
	size_t i = (size_t)(colon - hp);
	size_t hoff, hlen;
	if (n > 0 && hp[0] == '[') {
		const char *end = memchr(hp, ']', n);
		if (!end)
			return -EINVAL;
		size_t e = (size_t)(end - hp);
		if (e + 1 != i)
			return -EINVAL;
		hoff = 1;
		hlen = e - 1;
	} else {
		hoff = 0;
		hlen = i;
		if (memchr(hp, ':', hlen))
			return -EINVAL; /* too many colons */
	}
	if (memchr(hp + hoff, '[', hlen) || memchr(hp + hoff, ']', hlen) ||
	    memchr(hp + i + 1, '[', n - i - 1) ||
	    memchr(hp + i + 1, ']', n - i - 1))
		return -EINVAL;
	*ret_hoff = hoff;
	*ret_hlen = hlen;
	*ret_poff = i + 1;
	return 0;
}

void url_clear(struct url *u)
{
	if (!u)
		return;
	free(u->str);
	free(u->scheme);
	free(u->host);
	free(u->port);
	memset(u, 0, sizeof(*u));
}

int url_parse(const char *in, struct url *ret, char *err, size_t errlen)
{
	char buf[URL_MAX_LEN + 1];
	size_t n;

	while (is_space(*in))
		in++;
	n = strlen(in);
	while (n > 0 && is_space(in[n - 1]))
		n--;
	if (n > URL_MAX_LEN) {
		snprintf(err, errlen, "URL longer than %d bytes", URL_MAX_LEN);
		return -EINVAL;
	}
	memcpy(buf, in, n);
	buf[n] = '\0';

	/* The fragment goes first, as in Go's url.Parse. */
	char *frag = strchr(buf, '#');
	if (frag)
		*frag++ = '\0';
	char *rest = buf;

	/* getScheme */
	char scheme[64] = "";
	for (size_t i = 0; rest[i]; i++) {
		char c = rest[i];
		if (isalpha((unsigned char)c))
			continue;
		if (isdigit((unsigned char)c) || c == '+' || c == '-' ||
		    c == '.') {
			if (i == 0)
				break;
			continue;
		}
		if (c == ':') {
			if (i == 0) {
				snprintf(err, errlen,
					 "parse \"%s\": missing protocol scheme",
					 buf);
				return -EINVAL;
			}
			if (i >= sizeof(scheme))
				break;
			for (size_t k = 0; k < i; k++)
				scheme[k] = (char)tolower((unsigned char)rest[k]);
			scheme[i] = '\0';
			rest += i + 1;
		}
		break;
	}

	char *query = strchr(rest, '?');
	if (query)
		*query++ = '\0';

	const char *user = NULL, *host = "", *path = rest, *opaque = NULL;
	size_t user_len = 0, host_len = 0;
	if (rest[0] != '/') {
		if (scheme[0]) {
			opaque = rest;
			path = "";
		} else {
			size_t seg = strcspn(rest, "/");
			if (memchr(rest, ':', seg)) {
				snprintf(err, errlen,
					 "parse \"%.*s\": first path segment in URL cannot contain colon",
					 (int)n, in);
				return -EINVAL;
			}
		}
	} else if (rest[1] == '/' && (scheme[0] || rest[2] != '/')) {
		char *auth = rest + 2;
		size_t alen = strcspn(auth, "/");
		path = auth + alen;
		const char *at = NULL;
		for (size_t i = 0; i < alen; i++)
			if (auth[i] == '@')
				at = auth + i;
		if (at) {
			user = auth;
			user_len = (size_t)(at - auth);
			host = at + 1;
			host_len = alen - user_len - 1;
		} else {
			host = auth;
			host_len = alen;
		}
		/* parseHost: the port, when there is one, is digits only. */
		const char *cp = NULL;
		if (host_len > 0 && host[0] == '[') {
			const char *rb = NULL;
			for (size_t i = 0; i < host_len; i++)
				if (host[i] == ']')
					rb = host + i;
			if (!rb) {
				snprintf(err, errlen,
					 "parse \"%.*s\": missing ']' in host",
					 (int)n, in);
				return -EINVAL;
			}
			cp = rb + 1;
		} else {
			for (size_t i = 0; i < host_len; i++)
				if (host[i] == ':')
					cp = host + i;
		}
		if (cp) {
			size_t cplen = host_len - (size_t)(cp - host);
			if (!valid_optional_port(cp, cplen)) {
				snprintf(err, errlen,
					 "parse \"%.*s\": invalid port \"%.*s\" after host",
					 (int)n, in, (int)cplen, cp);
				return -EINVAL;
			}
		}
	}

	/* types.NewURLs' checks. */
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0 &&
	    strcmp(scheme, "unix") != 0 && strcmp(scheme, "unixs") != 0) {
		snprintf(err, errlen,
			 "URL scheme must be http, https, unix, or unixs: %.*s",
			 (int)n, in);
		return -EINVAL;
	}
	size_t hoff, hlen, poff;
	if (split_host_port(host, host_len, &hoff, &hlen, &poff) < 0) {
		snprintf(err, errlen,
			 "URL address does not have the form \"host:port\": %.*s",
			 (int)n, in);
		return -EINVAL;
	}
	if (path[0]) {
		snprintf(err, errlen, "URL must not contain a path: %.*s",
			 (int)n, in);
		return -EINVAL;
	}

	/* Go's URL.String() of what we accepted. */
	char out[URL_MAX_LEN + 80];
	int m;
	if (opaque)
		m = snprintf(out, sizeof(out), "%s:%s", scheme, opaque);
	else
		m = snprintf(out, sizeof(out), "%s://%.*s%s%.*s", scheme,
			     (int)user_len, user ? user : "", user ? "@" : "",
			     (int)host_len, host);
	if (query && m >= 0 && (size_t)m < sizeof(out))
		m += snprintf(out + m, sizeof(out) - (size_t)m, "?%s", query);
	if (frag && *frag && m >= 0 && (size_t)m < sizeof(out))
		snprintf(out + m, sizeof(out) - (size_t)m, "#%s", frag);

	struct url u = {
		.str = strdup(out),
		.scheme = strdup(scheme),
		.host = strndup(host + hoff, hlen),
		.port = strndup(host + poff, host_len - poff),
	};
	if (!u.str || !u.scheme || !u.host || !u.port) {
		url_clear(&u);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*ret = u;
	return 0;
}

void url_list_clear(struct url_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		url_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int cmp_url(const void *a, const void *b)
{
	return strcmp(((const struct url *)a)->str,
		      ((const struct url *)b)->str);
}

int url_list_parse(const char *s, struct url_list *ret, char *err,
		   size_t errlen)
{
	struct url_list l = {0};
	size_t cap = 1;

	if (*s == '\0') {
		url_list_clear(ret);
		return 0;
	}
	for (const char *p = s; *p; p++)
		if (*p == ',')
			cap++;
	if (cap > URL_LIST_MAX) {
		snprintf(err, errlen, "more than %d URLs given", URL_LIST_MAX);
		return -EINVAL;
	}
	l.v = calloc(cap, sizeof(*l.v));
	if (!l.v)
		return -ENOMEM;
	const char *p = s;
	for (;;) {
		size_t len = strcspn(p, ",");
		char *one = strndup(p, len);
		if (!one) {
			url_list_clear(&l);
			return -ENOMEM;
		}
		int r = url_parse(one, &l.v[l.n], err, errlen);
		free(one);
		if (r < 0) {
			url_list_clear(&l);
			return r;
		}
		l.n++;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_url);
	url_list_clear(ret);
	*ret = l;
	return 0;
}

int url_list_copy(const struct url_list *from, struct url_list *ret)
{
	struct url_list l = {0};
	if (from->n == 0) {
		*ret = l;
		return 0;
	}
	l.v = calloc(from->n, sizeof(*l.v));
	if (!l.v)
		return -ENOMEM;
	for (; l.n < from->n; l.n++) {
		const struct url *f = &from->v[l.n];
		struct url *t = &l.v[l.n];
		t->str = strdup(f->str);
		t->scheme = strdup(f->scheme);
		t->host = strdup(f->host);
		t->port = strdup(f->port);
		if (!t->str || !t->scheme || !t->host || !t->port) {
			l.n++;
			url_list_clear(&l);
			return -ENOMEM;
		}
	}
	*ret = l;
	return 0;
}

char *url_list_join(const struct url_list *l, const char *sep)
{
	size_t len = 1;
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i].str) + strlen(sep);
	char *s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			strcat(s, sep);
		strcat(s, l->v[i].str);
	}
	return s;
}

bool url_list_equal(const struct url_list *a, const struct url_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].str, b->v[i].str) != 0)
			return false;
	return true;
}

bool url_host_is_ip(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}
