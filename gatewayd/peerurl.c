/*
 * Peer URLs as etcd's types.NewURLs accepts them: Go's url.Parse (the parts
 * of it a peer URL can reach), then an http, https, unix or unixs scheme, a
 * host:port that net.SplitHostPort takes, and no path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "member.h"

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int unhex(char c)
{
	if (is_digit(c))
		return c - '0';
	return (c | 0x20) - 'a' + 10;
}

/* Go's space set for strings.TrimSpace, ASCII part. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

/* Every '%' starts a valid escape (Go's unescape, any mode). */
static int escapes_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '%' &&
		    (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
			return 0;
	return 1;
}

/* Go's validOptionalPort: "" or ':' followed by digits only. */
static int port_ok(const char *s, size_t n)
{
	if (n == 0)
		return 1;
	if (s[0] != ':')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!is_digit(s[i]))
			return 0;
	return 1;
}

/* Go's unescape in encodeHost mode: which bytes a host may hold. */
static int host_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return 0;
			/* Only %25 or non-ASCII bytes may be escaped in a host. */
			if (unhex(s[i + 1]) < 8 && strncmp(s + i, "%25", 3) != 0)
				return 0;
			i += 2;
			continue;
		}
		if (c >= 0x80 || is_alpha((char)c) || is_digit((char)c))
			continue;
		if (!strchr("!$&'()*+,;=:[]<>\"-_.~", c))
			return 0;
	}
	return 1;
}

/* Go's parseHost, syntax only. */
static int parse_host(const char *h, size_t n)
{
	if (n > 0 && h[0] == '[') {
		const char *e = NULL;
		for (size_t i = n; i-- > 0;)
			if (h[i] == ']') {
				e = h + i;
				break;
			}
		if (!e || !port_ok(e + 1, n - (size_t)(e + 1 - h)))
			return 0;
	} else {
		for (size_t i = n; i-- > 0;)
			if (h[i] == ':') {
				if (!port_ok(h + i, n - i))
					return 0;
				break;
			}
	}
	return host_chars_ok(h, n);
}

/* net.SplitHostPort succeeds on h (the host as url.Parse leaves it; an
 * escaped byte counts as one, which changes none of the checks below). */
static int split_host_port_ok(const char *h, size_t n)
{
	size_t i, j = 0, k = 0;
	const char *colon = NULL;
	for (i = n; i-- > 0;)
		if (h[i] == ':') {
			colon = h + i;
			break;
		}
	if (!colon)
		return 0;
	i = (size_t)(colon - h);
	if (h[0] == '[') {
		const char *e = memchr(h, ']', n);
		if (!e)
			return 0;
		size_t end = (size_t)(e - h);
		if (end + 1 != i)
			return 0; /* missing port or too many colons */
		j = 1;
		k = end + 1;
	} else if (memchr(h, ':', i)) {
		return 0; /* too many colons */
	}
	if (memchr(h + j, '[', n - j) || memchr(h + k, ']', n - k))
		return 0;
	return 1;
}

int peerurl_check(const char *in, struct arena *a, char **ret)
{
	size_t n = strlen(in);
	const char *s = in;

	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -EINVAL;

	/* The fragment goes first, then the scheme, then the query. */
	const char *hash = memchr(s, '#', n);
	size_t un = hash ? (size_t)(hash - s) : n;
	if (hash && !escapes_ok(hash + 1, n - un - 1))
		return -EINVAL;
	size_t sl = 0;
	while (sl < un && (is_alpha(s[sl]) ||
			   (sl > 0 && (is_digit(s[sl]) || s[sl] == '+' ||
				       s[sl] == '-' || s[sl] == '.'))))
		sl++;
	if (sl == 0 || sl >= un || s[sl] != ':')
		return -EINVAL; /* no scheme: not one etcd allows */
	char scheme[8];
	if (sl >= sizeof(scheme))
		return -EINVAL;
	for (size_t i = 0; i < sl; i++)
		scheme[i] = (char)(s[i] | 0x20);
	scheme[sl] = 0;
	if (strcmp(scheme, "http") && strcmp(scheme, "https") &&
	    strcmp(scheme, "unix") && strcmp(scheme, "unixs"))
		return -EINVAL;

	const char *rest = s + sl + 1;
	const char *q = memchr(rest, '?', (size_t)(s + un - rest));
	size_t rn = (size_t)((q ? q : s + un) - rest);
	/* Without "//" there is no host, which SplitHostPort refuses. */
	if (rn < 2 || rest[0] != '/' || rest[1] != '/')
		return -EINVAL;
	const char *auth = rest + 2;
	size_t an = rn - 2;
	const char *slash = memchr(auth, '/', an);
	if (slash)
		return -EINVAL; /* a path, even "/", is refused */
	const char *at = NULL;
	for (size_t i = an; i-- > 0;)
		if (auth[i] == '@') {
			at = auth + i;
			break;
		}
	const char *host = auth;
	size_t hn = an;
	if (at) {
		size_t un2 = (size_t)(at - auth);
		for (size_t i = 0; i < un2; i++)
			if (!is_alpha(auth[i]) && !is_digit(auth[i]) &&
			    !strchr("-._:~!$&'()*+,;=%@", auth[i]))
				return -EINVAL;
		if (!escapes_ok(auth, un2))
			return -EINVAL;
		host = at + 1;
		hn = an - un2 - 1;
	}
	if (!parse_host(host, hn) || !split_host_port_ok(host, hn))
		return -EINVAL;

	/* Go prints the URL back with its scheme in lower case. */
	char *out = arena_alloc(a, n + 1);
	if (!out)
		return -ENOMEM;
	memcpy(out, scheme, sl);
	memcpy(out + sl, s + sl, n - sl);
	out[n] = 0;
	*ret = out;
	return 0;
}
