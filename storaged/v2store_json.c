/*
 * The v2 store's JSON, byte for byte as Go's encoding/json writes etcd's
 * NodeExtern, Event and Error: field order, omitempty, HTML-safe string
 * escapes, time.Time as RFC 3339 with trimmed nanoseconds, and the "\n"
 * json.Encoder ends with.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "v2store_int.h"

void jb_put(struct jbuf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void jb_puts(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

void jb_u64(struct jbuf *b, uint64_t v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%" PRIu64, v);
	jb_put(b, t, (size_t)n);
}

void jb_i64(struct jbuf *b, int64_t v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%" PRId64, v);
	jb_put(b, t, (size_t)n);
}

/*
 * One UTF-8 sequence at p (n bytes left) as Go's DecodeRuneInString reads
 * it: the rune and its length, or -1 with length 1 for a byte that does
 * not start a valid, shortest, non-surrogate sequence.
 */
static int32_t utf8_rune(const unsigned char *p, size_t n, size_t *ret_len)
{
	unsigned char c = p[0];
	size_t len;
	int32_t r, min;
	*ret_len = 1;
	if (c < 0xc2 || c > 0xf4)
		return -1;
	if (c < 0xe0) {
		len = 2;
		r = c & 0x1f;
		min = 0x80;
	} else if (c < 0xf0) {
		len = 3;
		r = c & 0x0f;
		min = 0x800;
	} else {
		len = 4;
		r = c & 0x07;
		min = 0x10000;
	}
	if (n < len)
		return -1;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		r = (r << 6) | (p[i] & 0x3f);
	}
	if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
		return -1;
	*ret_len = len;
	return r;
}

void jb_str(struct jbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t start = 0, i = 0;
	jb_put(b, "\"", 1);
	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' &&
			    c != '>' && c != '&') {
				i++;
				continue;
			}
			jb_put(b, s + start, i - start);
			char esc[6] = { '\\', 0 };
			size_t el = 2;
			switch (c) {
			case '"':
			case '\\':
				esc[1] = (char)c;
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				/* Go 1.19 (etcd 3.4.23's) writes \b and \f
				 * this way too. */
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 0xf];
				el = 6;
				break;
			}
			jb_put(b, esc, el);
			start = ++i;
			continue;
		}
		size_t len;
		int32_t r = utf8_rune(p + i, n - i, &len);
		if (r < 0 || r == 0x2028 || r == 0x2029) {
			jb_put(b, s + start, i - start);
			jb_puts(b, r < 0 ? "\\ufffd" : r == 0x2028 ? "\\u2028"
								   : "\\u2029");
			start = i + len;
		}
		i += len;
	}
	jb_put(b, s + start, n - start);
	jb_put(b, "\"", 1);
}

void jb_time(struct jbuf *b, int64_t ns)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[48];
	int n = snprintf(buf, sizeof(buf), "\"%04d-%02d-%02dT%02d:%02d:%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
	jb_put(b, buf, (size_t)n);
	if (frac) {
		/* RFC3339Nano: ".999999999", trailing zeros dropped. */
		char f[11];
		snprintf(f, sizeof(f), ".%09" PRId64, frac);
		size_t fl = 10;
		while (f[fl - 1] == '0')
			fl--;
		jb_put(b, f, fl);
	}
	jb_put(b, "Z\"", 2);
}

int64_t v2_ttl(int64_t expire, int64_t now)
{
	if (!expire)
		return 0;
	/* etcd: ceil((expire - now) / 1s) with Go's truncating division, so
	 * a node past its expiry shows 0 or a negative ttl. */
	int64_t d = expire - now;
	int64_t ttl = d / 1000000000;
	if (d % 1000000000 > 0)
		ttl++;
	return ttl;
}

void v2_ext_of(const struct v2_node *n, struct v2_ext *x)
{
	x->key = n->path;
	x->klen = n->plen;
	x->value = n->dir ? NULL : n->value;
	x->vlen = n->vlen;
	x->dir = n->dir;
	x->expire = n->expire;
	x->modified = n->modified;
	x->created = n->created;
}

static int is_root(const char *key, size_t klen)
{
	return !key || (klen == 1 && key[0] == '/');
}

/* The fields of a NodeExtern up to "nodes" (exclusive); *first says
 * whether nothing was written yet. */
static void ext_head(struct jbuf *b, const struct v2_ext *x, int64_t now,
		     int *first)
{
	*first = 1;
	if (!is_root(x->key, x->klen)) {
		jb_puts(b, "\"key\":");
		jb_str(b, x->key, x->klen);
		*first = 0;
	}
	if (x->value) {
		jb_puts(b, *first ? "\"value\":" : ",\"value\":");
		jb_str(b, x->value, x->vlen);
		*first = 0;
	}
	if (x->dir) {
		jb_puts(b, *first ? "\"dir\":true" : ",\"dir\":true");
		*first = 0;
	}
	if (x->expire) {
		jb_puts(b, *first ? "\"expiration\":" : ",\"expiration\":");
		jb_time(b, x->expire);
		*first = 0;
		int64_t ttl = v2_ttl(x->expire, now);
		if (ttl) {
			jb_puts(b, ",\"ttl\":");
			jb_i64(b, ttl);
		}
	}
}

static void ext_tail(struct jbuf *b, const struct v2_ext *x, int first)
{
	if (x->modified) {
		jb_puts(b, first ? "\"modifiedIndex\":" : ",\"modifiedIndex\":");
		jb_u64(b, x->modified);
		first = 0;
	}
	if (x->created) {
		jb_puts(b, first ? "\"createdIndex\":" : ",\"createdIndex\":");
		jb_u64(b, x->created);
	}
	jb_put(b, "}", 1);
}

void json_ext(struct jbuf *b, const struct v2_ext *x, int64_t now)
{
	int first;
	jb_put(b, "{", 1);
	ext_head(b, x, now, &first);
	ext_tail(b, x, first);
}

const char *v2_action_name(enum v2_action a)
{
	static const char *const names[] = {
		[V2A_GET] = "get",
		[V2A_CREATE] = "create",
		[V2A_SET] = "set",
		[V2A_UPDATE] = "update",
		[V2A_DELETE] = "delete",
		[V2A_CAS] = "compareAndSwap",
		[V2A_CAD] = "compareAndDelete",
		[V2A_EXPIRE] = "expire",
	};
	return names[a];
}

void json_event(struct jbuf *b, enum v2_action a, const struct v2_ext *node,
		const struct v2_ext *prev, int64_t now)
{
	/* etcd's Refresh never shows: the API layer writes a clone, and
	 * Clone leaves it out. */
	jb_puts(b, "{\"action\":\"");
	jb_puts(b, v2_action_name(a));
	jb_puts(b, "\",\"node\":");
	json_ext(b, node, now);
	if (prev) {
		jb_puts(b, ",\"prevNode\":");
		json_ext(b, prev, now);
	}
	jb_puts(b, "}\n");
}

static int hidden(const struct v2_node *n)
{
	return n->nlen && n->name[0] == '_';
}

/* etcd's Repr(recursive) of a child, or loadInternalNode of the top
 * (children listed one level even when not recursive). */
static void json_node(struct jbuf *b, const struct v2_node *n, int recursive,
		      int top, int64_t now)
{
	struct v2_ext x;
	int first;
	v2_ext_of(n, &x);
	jb_put(b, "{", 1);
	ext_head(b, &x, now, &first);
	if (n->dir && (top || recursive)) {
		/* Children are kept sorted by name, which is the order of
		 * sorted=true; unsorted, etcd's order is a Go map's. */
		int any = 0;
		for (size_t i = 0; i < n->nkids; i++) {
			const struct v2_node *c = n->kids[i];
			if (hidden(c))
				continue;
			if (!any)
				jb_puts(b, first ? "\"nodes\":[" : ",\"nodes\":[");
			else
				jb_put(b, ",", 1);
			any = 1;
			json_node(b, c, recursive, 0, now);
		}
		if (any) {
			jb_put(b, "]", 1);
			first = 0;
		}
	}
	ext_tail(b, &x, first);
}

void json_get(struct jbuf *b, const struct v2_node *n, int recursive,
	      int64_t now)
{
	jb_puts(b, "{\"action\":\"get\",\"node\":");
	json_node(b, n, recursive, 1, now);
	jb_puts(b, "}\n");
}

void json_error(struct jbuf *b, uint32_t code, const char *cause,
		size_t clen, uint64_t index)
{
	static const struct {
		uint32_t code;
		const char *msg;
	} msgs[] = {
		{ 100, "Key not found" },
		{ 101, "Compare failed" },
		{ 102, "Not a file" },
		{ 104, "Not a directory" },
		{ 105, "Key already exists" },
		{ 107, "Root is read only" },
		{ 108, "Directory not empty" },
		{ 300, "Raft Internal Error" },
		{ 400, "watcher is cleared due to etcd recovery" },
		{ 401, "The event in requested index is outdated and cleared" },
	};
	const char *msg = "";
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		if (msgs[i].code == code)
			msg = msgs[i].msg;
	jb_puts(b, "{\"errorCode\":");
	jb_u64(b, code);
	jb_puts(b, ",\"message\":");
	jb_str(b, msg, strlen(msg));
	if (clen) {
		jb_puts(b, ",\"cause\":");
		jb_str(b, cause, clen);
	}
	jb_puts(b, ",\"index\":");
	jb_u64(b, index);
	jb_puts(b, "}\n");
}
