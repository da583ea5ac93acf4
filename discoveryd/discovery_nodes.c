/*
 * The discovery cluster's answers and what etcd's v2discovery makes of
 * them: v2 nodes and errors from JSON (jansson), checkCluster's sort and
 * "full" test, nodesToCluster's member list and etcd's duplicate URL check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "discovery.h"

void disc_nodes_free(struct disc_node *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static int index_of(json_t *o, const char *field, uint64_t *ret)
{
	json_t *v = json_object_get(o, field);
	if (!v) {
		*ret = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/* Go's decoder: absent fields are zero, fields of another type fail. */
static int node_of(json_t *o, struct disc_node *ret)
{
	if (!json_is_object(o))
		return -EINVAL;
	json_t *k = json_object_get(o, "key"), *v = json_object_get(o, "value");
	struct disc_node n = {0};
	if ((k && !json_is_string(k)) || (v && !json_is_string(v)) ||
	    index_of(o, "createdIndex", &n.created) < 0 ||
	    index_of(o, "modifiedIndex", &n.modified) < 0)
		return -EINVAL;
	n.key = strdup(k ? json_string_value(k) : "");
	n.value = strdup(v ? json_string_value(v) : "");
	if (!n.key || !n.value) {
		free(n.key);
		free(n.value);
		return -ENOMEM;
	}
	*ret = n;
	return 0;
}

static json_t *load_node(const char *body, size_t len, json_t **ret_root)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *node = json_is_object(root) ? json_object_get(root, "node")
					    : NULL;
	if (!json_is_object(node)) {
		json_decref(root);
		return NULL;
	}
	*ret_root = root;
	return node;
}

int disc_parse_node(const char *body, size_t len, struct disc_node *ret)
{
	json_t *root;
	json_t *node = load_node(body, len, &root);
	if (!node)
		return -EINVAL;
	int r = node_of(node, ret);
	json_decref(root);
	return r;
}

int disc_parse_dir(const char *body, size_t len, struct disc_node **ret,
		   size_t *ret_n)
{
	json_t *root;
	json_t *node = load_node(body, len, &root);
	if (!node)
		return -EINVAL;
	json_t *a = json_object_get(node, "nodes");
	struct disc_node self;
	int sr = node_of(node, &self); /* the directory's own fields */
	if (sr == 0) {
		free(self.key);
		free(self.value);
	}
	if (sr < 0 || (a && !json_is_array(a) && !json_is_null(a))) {
		json_decref(root);
		return sr < 0 ? sr : -EINVAL;
	}
	size_t n = json_is_array(a) ? json_array_size(a) : 0;
	struct disc_node *v = calloc(n ? n : 1, sizeof(*v));
	int r = v ? 0 : -ENOMEM;
	size_t got = 0;
	for (; r == 0 && got < n; got++)
		if ((r = node_of(json_array_get(a, got), &v[got])) < 0)
			break;
	json_decref(root);
	if (r < 0) {
		disc_nodes_free(v, got);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int disc_parse_error(const char *body, size_t len, int *ret_code, char *buf,
		     size_t buflen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *code = json_object_get(root, "errorCode");
	json_t *msg = json_object_get(root, "message");
	json_t *cause = json_object_get(root, "cause");
	json_t *idx = json_object_get(root, "index");
	if (!json_is_object(root) || (code && !json_is_integer(code)) ||
	    (msg && !json_is_string(msg)) || (cause && !json_is_string(cause)) ||
	    (idx && (!json_is_integer(idx) || json_integer_value(idx) < 0))) {
		json_decref(root);
		return -EINVAL;
	}
	/* client.Error's text: "%v: %v (%v) [%v]". */
	int c = code ? (int)json_integer_value(code) : 0;
	snprintf(buf, buflen, "%d: %s (%s) [%lld]", c,
		 msg ? json_string_value(msg) : "",
		 cause ? json_string_value(cause) : "",
		 idx ? (long long)json_integer_value(idx) : 0LL);
	*ret_code = c;
	json_decref(root);
	return 0;
}

const char *disc_key_base(const char *key, size_t *ret_len)
{
	size_t n = strlen(key);
	while (n > 0 && key[n - 1] == '/')
		n--;
	if (n == 0) {
		/* path.Base("") is ".", of "///" it is "/". */
		*ret_len = 1;
		return key[0] ? "/" : ".";
	}
	size_t s = n;
	while (s > 0 && key[s - 1] != '/')
		s--;
	*ret_len = n - s;
	return key + s;
}

static bool base_is(const char *key, const char *name)
{
	size_t n;
	const char *b = disc_key_base(key, &n);
	return n == strlen(name) && memcmp(b, name, n) == 0;
}

static int cmp_created(const void *a, const void *b)
{
	const struct disc_node *x = a, *y = b;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return 0;
}

int disc_check_nodes(struct disc_node *v, size_t *n, long size,
		     const char *self)
{
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		if (base_is(v[i].key, "_config")) {
			free(v[i].key);
			free(v[i].value);
		} else {
			v[k++] = v[i];
		}
	}
	*n = k;
	/* Equal createdIndexes cannot come from one v2 store. */
	qsort(v, k, sizeof(*v), cmp_created);
	for (size_t i = 0; i < k; i++) {
		if (base_is(v[i].key, self))
			break;
		if ((long)i >= size - 1) {
			size_t keep = size > 0 ? (size_t)size : 0;
			for (size_t j = keep; j < k; j++) {
				free(v[j].key);
				free(v[j].value);
			}
			*n = keep;
			return -ENOSPC;
		}
	}
	return 0;
}

void disc_cluster_free(struct disc_cluster *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->m[i].name);
		for (size_t k = 0; k < c->m[i].n; k++)
			free(c->m[i].urls[k]);
		free(c->m[i].urls);
	}
	free(c->m);
	free(c->joined);
	free(c);
}

/* types.NewURLs' check of one URL: http(s)/unix(s), host:port, no path. */
static bool url_ok(const char *u)
{
	const char *sep = strstr(u, "://");
	if (!sep)
		return false;
	size_t sl = (size_t)(sep - u);
	if (!((sl == 4 && strncmp(u, "http", 4) == 0) ||
	      (sl == 5 && strncmp(u, "https", 5) == 0) ||
	      (sl == 4 && strncmp(u, "unix", 4) == 0) ||
	      (sl == 5 && strncmp(u, "unixs", 5) == 0)))
		return false;
	const char *a = sep + 3;
	size_t al = strcspn(a, "/?#");
	if (a[al] == '/')
		return false; /* a path */
	const char *at = memchr(a, '@', al);
	if (at) {
		al -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	/* net.SplitHostPort: "host:port" or "[v6]:port", one colon. */
	if (al && a[0] == '[') {
		const char *e = memchr(a, ']', al);
		return e && e + 1 < a + al && e[1] == ':' &&
		       !memchr(e + 2, ':', (size_t)(a + al - e - 2)) &&
		       !memchr(e + 2, ']', (size_t)(a + al - e - 2));
	}
	const char *c = memchr(a, ':', al);
	return c && !memchr(c + 1, ':', (size_t)(a + al - c - 1)) &&
	       !memchr(a, '[', al) && !memchr(a, ']', al);
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
		     s[n - 1] == '\r'))
		n--;
	return strndup(s, n);
}

/* Adds url to the member called name (made if new). */
static int add_pair(struct disc_cluster *c, size_t cap, const char *name,
		    size_t nl, char *url)
{
	struct disc_member *m = NULL;
	for (size_t i = 0; i < c->n && !m; i++)
		if (strlen(c->m[i].name) == nl && memcmp(c->m[i].name, name, nl) == 0)
			m = &c->m[i];
	if (!m) {
		if (c->n == cap)
			return -E2BIG;
		m = &c->m[c->n];
		if (!(m->name = strndup(name, nl)))
			return -ENOMEM;
		c->n++;
	}
	char **u = realloc(m->urls, (m->n + 1) * sizeof(*u));
	if (!u)
		return -ENOMEM;
	m->urls = u;
	u[m->n++] = url;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int disc_cluster_new(char *const *values, size_t n, long size,
		     struct disc_cluster **ret)
{
	size_t len = 1, pairs = 0;
	for (size_t i = 0; i < n; i++) {
		len += strlen(values[i]) + 1;
		for (const char *p = values[i]; *p; p++)
			pairs += *p == ',';
		pairs++;
	}
	struct disc_cluster *c = calloc(1, sizeof(*c));
	if (!c || !(c->joined = calloc(1, len)) ||
	    !(c->m = calloc(pairs ? pairs : 1, sizeof(*c->m)))) {
		disc_cluster_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(c->joined, ",");
		strcat(c->joined, values[i]);
	}
	/* types.parse: ","-separated, empty entries skipped, "name=url"
	 * (no "=": the whole entry is the name, the URL is ""). */
	int r = 0;
	for (const char *p = c->joined; r == 0 && *p;) {
		size_t el = strcspn(p, ",");
		const char *eq = memchr(p, '=', el);
		if (el) {
			size_t nl = eq ? (size_t)(eq - p) : el;
			char *url = eq ? trim_dup(eq + 1, el - nl - 1) : strdup("");
			if (!url)
				r = -ENOMEM;
			else if (!url_ok(url))
				r = -EINVAL;
			if (r == 0)
				r = add_pair(c, pairs, p, nl, url);
			if (r < 0)
				free(url);
		}
		p += el + (p[el] == ',');
	}
	if (r == 0 && (long)c->n != size)
		r = -ENOTUNIQ;
	if (r < 0) {
		disc_cluster_free(c);
		return r == -E2BIG ? -EINVAL : r;
	}
	for (size_t i = 0; i < c->n; i++)
		qsort(c->m[i].urls, c->m[i].n, sizeof(char *), cmp_str);
	*ret = c;
	return 0;
}

int disc_cluster_dup_url(const struct disc_cluster *c, char **ret_str)
{
	size_t n = 0, len = 1;
	for (size_t i = 0; i < c->n; i++)
		for (size_t k = 0; k < c->m[i].n; k++) {
			n++;
			len += strlen(c->m[i].name) + strlen(c->m[i].urls[k]) + 2;
		}
	char **urls = calloc(n ? n : 1, sizeof(*urls));
	char **pairs = calloc(n ? n : 1, sizeof(*pairs));
	char *s = calloc(1, len);
	int r = urls && pairs && s ? 0 : -ENOMEM;
	size_t j = 0;
	for (size_t i = 0; r == 0 && i < c->n; i++)
		for (size_t k = 0; r == 0 && k < c->m[i].n; k++, j++) {
			size_t l = strlen(c->m[i].name) + strlen(c->m[i].urls[k]) + 2;
			urls[j] = c->m[i].urls[k];
			if (!(pairs[j] = malloc(l)))
				r = -ENOMEM;
			else
				snprintf(pairs[j], l, "%s=%s", c->m[i].name,
					 c->m[i].urls[k]);
		}
	if (r == 0) {
		qsort(urls, n, sizeof(*urls), cmp_str);
		for (size_t i = 1; i < n && r == 0; i++)
			if (strcmp(urls[i - 1], urls[i]) == 0)
				r = 1;
	}
	if (r == 1) {
		/* The message shows URLsMap.String(): the pairs sorted. */
		qsort(pairs, n, sizeof(*pairs), cmp_str);
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(s, ",");
			strcat(s, pairs[i]);
		}
		*ret_str = s;
		s = NULL;
	}
	for (size_t i = 0; pairs && i < j; i++)
		free(pairs[i]);
	free(pairs);
	free(urls);
	free(s);
	return r;
}
