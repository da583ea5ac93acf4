/*
 * The pure parts of etcd's v2discovery client: the discovery and proxy URLs,
 * the requests as Go's transport writes them, the registered value, the
 * size key, the backoff. The JSON answers and the member list are in
 * discovery_nodes.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery.h"

void disc_url_clear(struct disc_url *u)
{
	if (!u)
		return;
	free(u->scheme);
	free(u->hostport);
	free(u->host);
	free(u->endpoint);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

/* Go's path.Clean of a rooted path: no "//", ".", ".." or trailing "/". */
static char *path_clean(const char *p, size_t len)
{
	char *out = malloc(len + 2);
	size_t o = 0, i = 0;
	if (!out)
		return NULL;
	out[o++] = '/';
	while (i < len) {
		size_t s = i;
		while (i < len && p[i] != '/')
			i++;
		size_t n = i - s;
		if (i < len)
			i++; /* the '/' */
		if (n == 0 || (n == 1 && p[s] == '.'))
			continue;
		if (n == 2 && p[s] == '.' && p[s + 1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--; /* the '/' before the dropped element */
			continue;
		}
		if (o > 1)
			out[o++] = '/';
		memcpy(out + o, p + s, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

/* scheme://[user@]host[:port][/path][?query][#frag]: fills u except path. */
static int split_url(const char *url, struct disc_url *u, const char **ret_rest)
{
	const char *sep = strstr(url, "://");
	if (!sep || sep == url)
		return -EINVAL;
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', alen);
	if (at) {
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	const char *host = auth, *hend, *port = NULL;
	if (alen && auth[0] == '[') {
		hend = memchr(auth, ']', alen);
		if (!hend)
			return -EINVAL;
		host = auth + 1;
		if (hend + 1 < auth + alen) {
			if (hend[1] != ':')
				return -EINVAL;
			port = hend + 2;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		hend = colon ? colon : auth + alen;
		if (colon)
			port = colon + 1;
	}
	if (hend == host)
		return -EINVAL;
	long pn = 0;
	if (port && port < auth + alen) {
		for (const char *c = port; c < auth + alen; c++) {
			if (*c < '0' || *c > '9' || pn > 65535)
				return -EINVAL;
			pn = pn * 10 + (*c - '0');
		}
		if (pn == 0 || pn > 65535)
			return -EINVAL;
	}
	u->scheme = strndup(url, (size_t)(sep - url));
	u->hostport = strndup(auth, alen);
	u->host = strndup(host, (size_t)(hend - host));
	if (!u->scheme || !u->hostport || !u->host)
		return -ENOMEM;
	for (char *c = u->scheme; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (pn)
		u->port = (uint16_t)pn;
	else
		u->port = strcmp(u->scheme, "https") == 0 ? 443 : 80;
	size_t elen = strlen(u->scheme) + 3 + alen + 1;
	if (!(u->endpoint = malloc(elen)))
		return -ENOMEM;
	snprintf(u->endpoint, elen, "%s://%s", u->scheme, u->hostport);
	*ret_rest = auth + alen;
	return 0;
}

int disc_url_parse(const char *url, struct disc_url *ret)
{
	struct disc_url u = {0};
	const char *rest;
	int r = split_url(url, &u, &rest);
	if (r == 0 && strcmp(u.scheme, "http") != 0 &&
	    strcmp(u.scheme, "https") != 0)
		r = -EINVAL;
	if (r == 0) {
		/* The directory is the path; a query or fragment is not. */
		size_t plen = strcspn(rest, "?#");
		if (!(u.path = path_clean(rest, plen)))
			r = -ENOMEM;
		else if (strcmp(u.path, "/") == 0)
			u.path[0] = '\0';
	}
	if (r < 0) {
		disc_url_clear(&u);
		return r;
	}
	*ret = u;
	return 0;
}

int disc_proxy_parse(const char *proxy, struct disc_url *ret, char **ret_shown)
{
	/* newProxyFunc: a value whose scheme does not start with "http" (or
	 * that has none, "127.0.0.1:3128") gets "http://" in front. */
	const char *sep = strstr(proxy, "://");
	bool has = sep && strncmp(proxy, "http", 4) == 0 &&
		   strspn(proxy, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789+-.") == (size_t)(sep - proxy);
	size_t len = strlen(proxy) + 8;
	char *shown = malloc(len);
	if (!shown)
		return -ENOMEM;
	snprintf(shown, len, "%s%s", has ? "" : "http://", proxy);
	struct disc_url u = {0};
	const char *rest;
	int r = split_url(shown, &u, &rest);
	if (r == 0 && strcmp(u.scheme, "http") != 0)
		r = -EPROTONOSUPPORT;
	if (r < 0) {
		disc_url_clear(&u);
		free(shown);
		return r;
	}
	*ret = u;
	*ret_shown = shown;
	return 0;
}

static int appendf(char **buf, size_t *len, size_t *cap, const char *s,
		   size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = (*len + n + 1) * 2;
		char *b = realloc(*buf, c);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

#define APPEND(s) appendf(&b, &len, &cap, (s), strlen(s))

int disc_request_format(const struct disc_url *target, bool via_proxy,
			const char *method, const char *path_query,
			const char *body, char **ret)
{
	char *b = NULL;
	size_t len = 0, cap = 0;
	char num[32];
	int r = APPEND(method);
	r |= APPEND(" ");
	/* An http proxy gets the absolute form (RFC 7230 5.3.2). */
	if (via_proxy)
		r |= APPEND(target->endpoint);
	r |= APPEND(path_query);
	r |= APPEND(" HTTP/1.1\r\nHost: ");
	r |= APPEND(target->hostport);
	r |= APPEND("\r\nUser-Agent: Go-http-client/1.1\r\n");
	if (body) {
		snprintf(num, sizeof(num), "%zu", strlen(body));
		r |= APPEND("Content-Length: ");
		r |= APPEND(num);
		r |= APPEND("\r\nContent-Type: application/x-www-form-urlencoded\r\n");
	}
	r |= APPEND("\r\n");
	if (body)
		r |= APPEND(body);
	if (r) {
		free(b);
		return -ENOMEM;
	}
	*ret = b;
	return 0;
}

int disc_connect_format(const struct disc_url *target, char **ret)
{
	/* Go's canonicalAddr: host:port with the scheme's port. */
	bool v6 = strchr(target->host, ':') != NULL;
	size_t n = strlen(target->host) * 2 + 128;
	char *b = malloc(n);
	if (!b)
		return -ENOMEM;
	snprintf(b, n, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
		 "User-Agent: Go-http-client/1.1\r\n\r\n",
		 v6 ? "[" : "", target->host, v6 ? "]" : "", target->port,
		 v6 ? "[" : "", target->host, v6 ? "]" : "", target->port);
	*ret = b;
	return 0;
}

int disc_form_value(const char *key, const char *s, char **ret)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t kl = strlen(key), n = strlen(s);
	char *b = malloc(kl + 1 + n * 3 + 1), *o;
	if (!b)
		return -ENOMEM;
	memcpy(b, key, kl);
	o = b + kl;
	*o++ = '=';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
		    *c == '.' || *c == '~') {
			*o++ = (char)*c;
		} else if (*c == ' ') {
			*o++ = '+';
		} else {
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 15];
		}
	}
	*o = '\0';
	*ret = b;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int disc_self_value(const char *name, char *const *urls, size_t n, char **ret)
{
	char **pairs = calloc(n ? n : 1, sizeof(*pairs));
	char *b = NULL;
	size_t len = 0, cap = 0;
	int r = pairs ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		size_t l = strlen(name) + strlen(urls[i]) + 2;
		if (!(pairs[i] = malloc(l)))
			r = -ENOMEM;
		else
			snprintf(pairs[i], l, "%s=%s", name, urls[i]);
	}
	if (r == 0) {
		qsort(pairs, n, sizeof(*pairs), cmp_str);
		r = APPEND("");
		for (size_t i = 0; r == 0 && i < n; i++)
			r = (i ? APPEND(",") : 0) | APPEND(pairs[i]);
	}
	for (size_t i = 0; pairs && i < n; i++)
		free(pairs[i]);
	free(pairs);
	if (r) {
		free(b);
		return -ENOMEM;
	}
	*ret = b;
	return 0;
}

int disc_parse_size(const char *s, long *ret)
{
	const char *p = s;
	bool neg = false;
	unsigned long long v = 0;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > (unsigned long long)LONG_MAX + 1)
			return -EINVAL;
	}
	if (!neg && v > LONG_MAX)
		return -EINVAL;
	*ret = neg ? (long)(0 - v) : (long)v;
	return 0;
}

unsigned disc_backoff_s(unsigned retries)
{
	return 1u << (retries > DISC_MAX_BACKOFF_EXP ? DISC_MAX_BACKOFF_EXP
						     : retries);
}

void disc_go_duration(unsigned s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%us", s);
	else if (s < 3600)
		snprintf(buf, len, "%um%us", s / 60, s % 60);
	else
		snprintf(buf, len, "%uh%um%us", s / 3600, s / 60 % 60, s % 60);
}
