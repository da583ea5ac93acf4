/*
 * Reading a peer's GET /members answer: [{"id":N,"peerURLs":[...],
 * "isLearner":b,"name":s,"clientURLs":[...]}, ...] with jansson. Member IDs
 * are unsigned 64-bit numbers, beyond jansson's signed integers: the "id"
 * values are turned into strings before parsing, so none loses a bit.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "join.h"

/* A copy of s with the value of every "id" key quoted when it is a bare
 * non-negative integer; nothing else changes. */
static char *quote_ids(const char *s, size_t len)
{
	/* Each quoted value gains 2 bytes and follows at least "id": */
	char *out = malloc(2 * len + 1), *o = out;
	size_t str_start = 0;
	int in_str = 0, last_was_id = 0, id_value = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			*o++ = c;
			if (c == '\\' && i + 1 < len) {
				*o++ = s[++i];
			} else if (c == '"') {
				in_str = 0;
				last_was_id = i - str_start == 3 &&
					      memcmp(s + str_start + 1, "id", 2) == 0;
			}
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			*o++ = c;
			continue;
		}
		if (c == ':') {
			id_value = last_was_id;
			last_was_id = 0;
			*o++ = c;
			continue;
		}
		last_was_id = 0;
		if (c == '"') {
			in_str = 1;
			str_start = i;
			id_value = 0;
			*o++ = c;
			continue;
		}
		size_t k = i;
		while (k < len && isdigit((unsigned char)s[k]))
			k++;
		if (id_value && k > i && (k == len || !strchr(".eE", s[k]))) {
			*o++ = '"';
			memcpy(o, s + i, k - i);
			o += k - i;
			*o++ = '"';
			i = k - 1;
		} else {
			*o++ = c;
		}
		id_value = 0;
	}
	*o = '\0';
	return out;
}

static char **strings_of(json_t *a, size_t *ret_n)
{
	*ret_n = 0;
	if (!a)
		return calloc(1, sizeof(char *));
	if (!json_is_array(a) || json_array_size(a) > JOIN_MAX_MEMBERS)
		return NULL;
	size_t n = json_array_size(a);
	char **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s || !(v[i] = strdup(s))) {
			while (i--)
				free(v[i]);
			free(v);
			return NULL;
		}
	}
	if (v)
		*ret_n = n;
	return v;
}

static void member_free(Etcdserverpb__Member *m)
{
	if (!m)
		return;
	free(m->name);
	for (size_t i = 0; i < m->n_peerurls; i++)
		free(m->peerurls[i]);
	free(m->peerurls);
	for (size_t i = 0; i < m->n_clienturls; i++)
		free(m->clienturls[i]);
	free(m->clienturls);
	free(m);
}

void join_members_free(Etcdserverpb__Member **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		member_free(v[i]);
	free(v);
}

static Etcdserverpb__Member *member_of(json_t *o)
{
	Etcdserverpb__Member *m = calloc(1, sizeof(*m));
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *learner = json_object_get(o, "isLearner");
	char *end;

	if (!m)
		return NULL;
	etcdserverpb__member__init(m);
	m->name = strdup(name ? name : "");
	m->peerurls = strings_of(json_object_get(o, "peerURLs"), &m->n_peerurls);
	m->clienturls = strings_of(json_object_get(o, "clientURLs"),
				   &m->n_clienturls);
	errno = 0;
	m->id = id ? strtoull(id, &end, 10) : 0;
	if (!m->name || !m->peerurls || !m->clienturls || !id || *end ||
	    errno || m->id == 0 || (learner && !json_is_boolean(learner))) {
		member_free(m);
		return NULL;
	}
	m->islearner = json_is_true(learner);
	return m;
}

int join_parse_members(const char *body, size_t len,
		       Etcdserverpb__Member ***ret, size_t *ret_n)
{
	char *q = quote_ids(body, len);
	if (!q)
		return -ENOMEM;
	json_t *root = json_loads(q, JSON_REJECT_DUPLICATES, NULL);
	free(q);
	if (!json_is_array(root) || json_array_size(root) > JOIN_MAX_MEMBERS) {
		json_decref(root);
		return -EINVAL;
	}
	size_t n = json_array_size(root);
	Etcdserverpb__Member **v = calloc(n ? n : 1, sizeof(*v));
	int r = v ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (!(v[i] = member_of(json_array_get(root, i))))
			r = -EINVAL;
	json_decref(root);
	if (r < 0) {
		join_members_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
