/*
 * The v2 store's waits, as etcd's watcherHub and EventHistory: the last
 * events in a ring (a wait for an older index is "cleared"), watchers by
 * key (one-shot or stream, recursive or not), and etcd's rules for which
 * event a watcher sees (hidden keys, deleted directories).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v2store_int.h"

/* Watchers of one key, in arrival order. */
struct wlist {
	struct smap_node node;
	struct v2_watcher *head, *tail;
	size_t klen;
	char key[];
};

struct v2_watcher {
	struct smap_node byid;
	uint64_t id;
	struct wlist *list;
	struct v2_watcher *prev, *next;
	int recursive, stream;
	uint64_t since;      /* events at or after this index */
	uint64_t start;      /* the store index when the wait began */
};

struct keyref {
	const char *p;
	size_t len;
};

static int eq_key(const struct smap_node *n, const void *key)
{
	const struct wlist *l = smap_entry(n, struct wlist, node);
	const struct keyref *k = key;
	return l->klen == k->len && memcmp(l->key, k->p, k->len) == 0;
}

static int eq_id(const struct smap_node *n, const void *key)
{
	return smap_entry(n, struct v2_watcher, byid)->id ==
	       *(const uint64_t *)key;
}

static struct wlist *list_find(const struct v2store *s, const char *p,
			       size_t len)
{
	struct keyref k = { p, len };
	struct smap_node *n = smap_find(&s->wkeys, smap_hash_bytes(p, len, 0),
					eq_key, &k);
	return n ? smap_entry(n, struct wlist, node) : NULL;
}

static struct v2_watcher *watcher_find(const struct v2store *s, uint64_t id)
{
	struct smap_node *n = smap_find(&s->wids, smap_hash_u64(id), eq_id,
					&id);
	return n ? smap_entry(n, struct v2_watcher, byid) : NULL;
}

static void watcher_remove(struct v2store *s, struct v2_watcher *w)
{
	struct wlist *l = w->list;
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	smap_del(&s->wids, &w->byid);
	s->nwatchers--;
	free(w);
	if (!l->head) {
		smap_del(&s->wkeys, &l->node);
		free(l);
	}
}

int v2w_history_add(struct v2store *s, struct v2_event *e)
{
	if (s->hn == V2_HISTORY_MAX) {
		struct v2_event *old = s->hist[s->hfront];
		s->hbytes -= old->jlen;
		v2_event_unref(old);
		s->hfront = (s->hfront + 1) % V2_HISTORY_MAX;
		s->hn--;
	}
	s->hist[(s->hfront + s->hn) % V2_HISTORY_MAX] = e;
	e->refs++;
	s->hn++;
	s->hbytes += e->jlen;
	/* Our bound on memory: large values make the history shorter. */
	while (s->hbytes > V2_HISTORY_BYTES_MAX && s->hn > 1) {
		struct v2_event *old = s->hist[s->hfront];
		s->hbytes -= old->jlen;
		v2_event_unref(old);
		s->hfront = (s->hfront + 1) % V2_HISTORY_MAX;
		s->hn--;
	}
	s->hlast = e->index;
	s->hstart = s->hist[s->hfront]->index;
	return 0;
}

static int fire(struct v2store *s, struct v2_watcher *w, struct v2_event *e)
{
	if (s->nfired == s->capfired) {
		size_t cap = s->capfired ? s->capfired * 2 : 16;
		struct v2_fire *f = realloc(s->fired, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		s->fired = f;
		struct v2_event **fe = realloc(s->fired_ev, cap * sizeof(*fe));
		if (!fe)
			return -ENOMEM;
		s->fired_ev = fe;
		s->capfired = cap;
	}
	struct v2_fire *f = &s->fired[s->nfired];
	f->id = w->id;
	f->etcd_index = w->start;
	f->more = w->stream;
	f->body = e->json;
	f->len = e->jlen;
	s->fired_ev[s->nfired++] = e;
	e->refs++;
	return 0;
}

/* etcd's isHidden: whether key, seen from a watch on its first wlen
 * bytes, lies under a component starting with "_". */
static int is_hidden(size_t wlen, const char *key, size_t klen)
{
	if (wlen > klen)
		return 0;
	/* path.Clean("/" + rest) contains "/_" exactly when a component of
	 * rest starts with '_'. */
	const char *rest = key + wlen, *end = key + klen;
	int at_start = 1;
	for (const char *p = rest; p < end; p++) {
		if (*p == '/') {
			at_start = 1;
			continue;
		}
		if (at_start && *p == '_')
			return 1;
		at_start = 0;
	}
	return 0;
}

int v2w_notify_path(struct v2store *s, struct v2_event *e, const char *path,
		    size_t plen, int deleted)
{
	struct wlist *l = list_find(s, path, plen);
	if (!l)
		return 0;
	int original = e->klen == plen && memcmp(e->key, path, plen) == 0;
	if (!original && is_hidden(plen, e->key, e->klen))
		return 0;
	/* Removing the list's last watcher frees the list: next is read
	 * first, and is NULL then. */
	struct v2_watcher *w = l->head, *next;
	for (; w; w = next) {
		next = w->next;
		if (!(w->recursive || original || deleted) || e->index < w->since)
			continue;
		int ret = fire(s, w, e);
		if (ret < 0)
			return ret;
		if (!w->stream)
			watcher_remove(s, w);
	}
	return 0;
}

int v2w_notify(struct v2store *s, struct v2_event *e)
{
	int ret = v2w_history_add(s, e);
	if (ret < 0 || !s->nwatchers)
		return ret;
	/* Every prefix of the key: "/", "/foo", "/foo/bar". */
	if ((ret = v2w_notify_path(s, e, "/", 1, 0)) < 0)
		return ret;
	for (size_t i = 1; i <= e->klen; i++)
		if (i == e->klen || e->key[i] == '/')
			if ((ret = v2w_notify_path(s, e, e->key, i, 0)) < 0)
				return ret;
	return 0;
}

/* etcd's EventHistory.scan: the first event at or after index that a
 * wait on key sees; -1 if index is older than the history. */
static int scan(const struct v2store *s, const char *key, size_t klen,
		int recursive, uint64_t index, struct v2_event **ret)
{
	*ret = NULL;
	if (index < s->hstart)
		return -1;
	if (index > s->hlast || !s->hn)
		return 0;
	for (size_t k = (size_t)(index - s->hstart); k < s->hn; k++) {
		struct v2_event *e = s->hist[(s->hfront + k) % V2_HISTORY_MAX];
		if (e->refresh)
			continue;
		int ok = e->klen == klen && memcmp(e->key, key, klen) == 0;
		/* Recursive: under key + "/" (the root is "/" already). */
		if (recursive && !ok)
			ok = klen == 1 ? 1
				       : e->klen > klen && e->key[klen] == '/' &&
						 memcmp(e->key, key, klen) == 0;
		/* A deleted directory ends the waits on what it held; etcd
		 * compares plain prefixes here. */
		if (!ok && (e->action == V2A_DELETE || e->action == V2A_EXPIRE) &&
		    e->prev_key && e->prev_dir && klen >= e->pklen &&
		    memcmp(key, e->prev_key, e->pklen) == 0)
			ok = 1;
		if (ok) {
			*ret = e;
			return 0;
		}
	}
	return 0;
}

int v2_watch(struct v2store *s, uint64_t id, const char *path, int recursive,
	     int stream, uint64_t since, struct arena *a, struct v2_out *out,
	     int *ret_pending)
{
	size_t n = strlen(path);
	char *key = malloc(n + 2);
	if (!key)
		return -ENOMEM;
	size_t klen = v2_clean_path(path, key);
	if (since == 0)
		since = s->index + 1;
	struct v2_event *e;
	int ret = 0;
	if (scan(s, key, klen, recursive, since, &e) < 0) {
		char cause[96];
		snprintf(cause, sizeof(cause),
			 "the requested history has been cleared [%" PRIu64
			 "/%" PRIu64 "]", s->hstart, since);
		*ret_pending = 0;
		ret = v2_error(V2_EEVENTINDEXCLEARED, cause, s->index, a, out);
		goto done;
	}
	if (e) {
		/* Answered from the history; etcd registers no watcher then,
		 * not even for a stream. */
		out->body = arena_memdup(a, e->json, e->jlen);
		if (!out->body) {
			ret = -ENOMEM;
			goto done;
		}
		out->len = e->jlen;
		out->status = 200;
		out->etcd_index = s->index;
		*ret_pending = 0;
		goto done;
	}
	if (s->nwatchers >= V2_WATCHERS_MAX) {
		ret = -ENOBUFS;
		goto done;
	}
	/* An id in use is a wait gatewayd gave up on and reused. */
	v2_unwatch(s, id);
	struct v2_watcher *w = calloc(1, sizeof(*w));
	struct wlist *l = list_find(s, key, klen);
	if (!w)
		goto oom;
	if (!l) {
		if (!(l = calloc(1, sizeof(*l) + klen + 1)))
			goto oom;
		memcpy(l->key, key, klen);
		l->klen = klen;
		if (smap_add(&s->wkeys, &l->node,
			     smap_hash_bytes(key, klen, 0)) < 0) {
			free(l);
			goto oom;
		}
	}
	w->id = id;
	w->recursive = recursive;
	w->stream = stream;
	w->since = since;
	w->start = s->index;
	w->list = l;
	if (smap_add(&s->wids, &w->byid, smap_hash_u64(id)) < 0) {
		if (!l->head) {
			smap_del(&s->wkeys, &l->node);
			free(l);
		}
		goto oom;
	}
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	s->nwatchers++;
	*ret_pending = 1;
	goto done;
oom:
	free(w);
	ret = -ENOMEM;
done:
	free(key);
	return ret;
}

void v2_unwatch(struct v2store *s, uint64_t id)
{
	struct v2_watcher *w = watcher_find(s, id);
	if (w)
		watcher_remove(s, w);
}

size_t v2_watcher_count(const struct v2store *s)
{
	return s->nwatchers;
}

const struct v2_fire *v2_fired(const struct v2store *s, size_t *ret_n)
{
	*ret_n = s->nfired;
	return s->fired;
}

void v2_fired_clear(struct v2store *s)
{
	for (size_t i = 0; i < s->nfired; i++)
		v2_event_unref(s->fired_ev[i]);
	s->nfired = 0;
}

void v2_unwatch_all(struct v2store *s, void (*fn)(uint64_t id, void *arg),
		    void *arg)
{
	size_t it;
	struct smap_node *n;
	while ((n = smap_first(&s->wids, &it))) {
		struct v2_watcher *w = smap_entry(n, struct v2_watcher, byid);
		uint64_t id = w->id;
		watcher_remove(s, w);
		if (fn)
			fn(id, arg);
	}
}

void v2w_free(struct v2store *s)
{
	v2_unwatch_all(s, NULL, NULL);
	smap_clear(&s->wids);
	smap_clear(&s->wkeys);
	v2_fired_clear(s);
	free(s->fired);
	free(s->fired_ev);
	for (size_t k = 0; k < s->hn; k++)
		v2_event_unref(s->hist[(s->hfront + k) % V2_HISTORY_MAX]);
	s->hn = 0;
}
