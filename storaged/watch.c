/*
 * The watch hub's registry: watchers by gatewayd's id, their ranges shared
 * in groups, the synced and unsynced groups, create (etcd's checks and
 * answers), cancel, progress requests and notifications.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watch_int.h"

struct whub *whub_new(struct mvcc *m, whub_send_fn *send, void *arg)
{
	struct whub *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->m = m;
	h->send = send;
	h->arg = arg;
	whub_msg_init(&h->live);
	whub_msg_init(&h->hist);
	return h;
}

void whub_free(struct whub *h)
{
	if (!h)
		return;
	whub_clear(h);
	smap_clear(&h->by_id);
	smap_clear(&h->groups);
	free(h->round.w);
	whub_msg_done(&h->live);
	whub_msg_done(&h->hist);
	free(h);
}

struct range_key {
	enum wkind kind;
	const uint8_t *key, *end;
	size_t klen, elen;
};

uint64_t whub_group_hash(enum wkind kind, const uint8_t *key, size_t klen,
		     const uint8_t *end, size_t elen)
{
	return smap_hash_bytes(end, elen, smap_hash_bytes(key, klen, kind));
}

static int group_eq(const struct smap_node *n, const void *key)
{
	const struct wgroup *g = smap_entry(n, struct wgroup, hn);
	const struct range_key *k = key;
	return g->kind == k->kind && g->klen == k->klen && g->elen == k->elen &&
	       memcmp(g->key, k->key, k->klen) == 0 &&
	       (!k->elen || memcmp(g->end, k->end, k->elen) == 0);
}

static struct wgroup *group_get(struct whub *h, const struct range_key *k)
{
	uint64_t hash = whub_group_hash(k->kind, k->key, k->klen, k->end, k->elen);
	struct smap_node *n = smap_find(&h->groups, hash, group_eq, k);
	if (n)
		return smap_entry(n, struct wgroup, hn);
	struct wgroup *g = calloc(1, sizeof(*g) + k->klen + k->elen + 1);
	if (!g)
		return NULL;
	g->kind = k->kind;
	g->klen = (uint32_t)k->klen;
	g->elen = (uint32_t)k->elen;
	g->key = (uint8_t *)(g + 1);
	g->end = g->key + k->klen;
	memcpy(g->key, k->key, k->klen);
	if (k->elen)
		memcpy(g->end, k->end, k->elen);
	if (smap_add(&h->groups, &g->hn, hash) < 0) {
		free(g);
		return NULL;
	}
	if (g->kind != WK_ONE) {
		g->rnext = h->ranges;
		if (h->ranges)
			h->ranges->rprev = g;
		h->ranges = g;
	}
	return g;
}

static void group_put(struct whub *h, struct wgroup *g)
{
	if (--g->refs)
		return;
	smap_del(&h->groups, &g->hn);
	if (g->kind != WK_ONE) {
		if (g->rprev)
			g->rprev->rnext = g->rnext;
		else
			h->ranges = g->rnext;
		if (g->rnext)
			g->rnext->rprev = g->rprev;
	}
	free(g);
}

int whub_group_has(const struct wgroup *g, const uint8_t *key, size_t klen)
{
	int c = ki_keycmp(key, klen, g->key, g->klen);
	switch (g->kind) {
	case WK_ONE:
		return c == 0;
	case WK_FROM:
		return c >= 0;
	default:
		return c >= 0 && ki_keycmp(key, klen, g->end, g->elen) < 0;
	}
}

/* Unlinks w from its list (synced group or unsynced), or its round slot. */
static void unlink_w(struct whub *h, struct watcher *w)
{
	switch (w->state) {
	case W_ROUND: {
		/* Its history gathered so far goes with it. */
		struct whub_msg *mm = &h->hist;
		h->round.w[w->slot] = NULL;
		if (w->hit_gen == mm->gen && w->hit)
			for (size_t i = 0; i < mm->nhits; i++)
				if (mm->hits[i] == w->hit) {
					mm->hits[i] = mm->hits[--mm->nhits];
					break;
				}
		w->hit = NULL;
		return;
	}
	case W_SYNCED:
		if (w->prev)
			w->prev->next = w->next;
		else
			w->g->synced = w->next;
		h->nsynced--;
		break;
	case W_UNSYNCED:
		if (w->prev)
			w->prev->next = w->next;
		else
			h->unsynced = w->next;
		h->nunsynced--;
		break;
	}
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

/* Links w, which is in no list, into its group's synced list. */
static void link_synced(struct whub *h, struct watcher *w, int64_t minrev)
{
	w->state = W_SYNCED;
	w->minrev = minrev;
	w->prev = NULL;
	w->next = w->g->synced;
	if (w->next)
		w->next->prev = w;
	w->g->synced = w;
	h->nsynced++;
}

void whub_set_synced(struct whub *h, struct watcher *w, int64_t minrev)
{
	/* A round member is in no list (its slot is the round's business). */
	if (w->state != W_ROUND)
		unlink_w(h, w);
	link_synced(h, w, minrev);
}

struct watcher *whub_pop_unsynced(struct whub *h)
{
	struct watcher *w = h->unsynced;
	if (w)
		unlink_w(h, w);
	return w;
}

static void set_unsynced(struct whub *h, struct watcher *w)
{
	w->state = W_UNSYNCED;
	w->prev = NULL;
	w->next = h->unsynced;
	if (w->next)
		w->next->prev = w;
	h->unsynced = w;
	h->nunsynced++;
}

void whub_drop(struct whub *h, struct watcher *w)
{
	unlink_w(h, w);
	smap_del(&h->by_id, &w->hn);
	group_put(h, w->g);
	free(w);
}

static int id_eq(const struct smap_node *n, const void *key)
{
	return smap_entry(n, struct watcher, hn)->id == *(const uint64_t *)key;
}

static struct watcher *find(const struct whub *h, uint64_t id)
{
	struct smap_node *n = smap_find(&h->by_id, smap_hash_u64(id), id_eq, &id);
	return n ? smap_entry(n, struct watcher, hn) : NULL;
}

/* A frame of one hit, outside the messages being built. */
static void send_hit(struct whub *h, int64_t rev, Ipc__WatchHit *hit)
{
	Ipc__WatchEvents msg = IPC__WATCH_EVENTS__INIT;
	msg.revision = rev;
	msg.hits = &hit;
	msg.n_hits = 1;
	h->send(h->arg, &msg);
}

void whub_compacted(struct whub *h, struct watcher *w, int64_t compact_rev)
{
	Ipc__WatchHit hit = IPC__WATCH_HIT__INIT;
	hit.watcher = w->id;
	hit.canceled = 1;
	hit.compact_revision = compact_rev;
	/* etcd's answer carries no revision in its header. */
	send_hit(h, 0, &hit);
	whub_drop(h, w);
}

static void refuse(struct whub *h, uint64_t id, const char *reason)
{
	Ipc__WatchHit hit = IPC__WATCH_HIT__INIT;
	hit.watcher = id;
	hit.created = 1;
	hit.canceled = 1;
	hit.cancel_reason = (char *)reason;
	send_hit(h, mvcc_rev(h->m), &hit);
}

int whub_create(struct whub *h, const Ipc__WatchCreate *c)
{
	static const Etcdserverpb__WatchCreateRequest empty =
		ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	const Etcdserverpb__WatchCreateRequest *r = c->req ? c->req : &empty;
	static const uint8_t zero[1] = { 0 };

	/* etcd's watch server: no key is "\0", the smallest key; a range end
	 * of "\0" is every key from key on. */
	struct range_key k = { WK_SPAN, r->key.data, r->range_end.data,
			       r->key.len, r->range_end.len };
	if (!k.klen) {
		k.key = zero;
		k.klen = 1;
	}
	if (!k.elen)
		k.kind = WK_ONE;
	else if (k.elen == 1 && k.end[0] == 0)
		k.kind = WK_FROM;
	if (k.kind != WK_SPAN)
		k.elen = 0;
	if (k.kind == WK_SPAN && ki_keycmp(k.key, k.klen, k.end, k.elen) >= 0) {
		refuse(h, c->watcher, "mvcc: watcher range is empty");
		return 0;
	}

	struct watcher *old = find(h, c->watcher);
	if (old)
		whub_drop(h, old);
	if (h->by_id.n >= WATCH_MAX) {
		refuse(h, c->watcher, "etcdserver: too many watchers");
		return 0;
	}

	int64_t cur = mvcc_rev(h->m), compacted = mvcc_compact_rev(h->m);
	int64_t start = r->start_revision;
	if (!c->resume) {
		/* etcd answers created at the current revision first. */
		Ipc__WatchHit hit = IPC__WATCH_HIT__INIT;
		hit.watcher = c->watcher;
		hit.created = 1;
		send_hit(h, cur, &hit);
	}
	if (start != 0 && start < compacted) {
		Ipc__WatchHit hit = IPC__WATCH_HIT__INIT;
		hit.watcher = c->watcher;
		hit.canceled = 1;
		hit.compact_revision = compacted;
		send_hit(h, 0, &hit);
		return 0;
	}

	struct watcher *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->id = c->watcher;
	w->prev_kv = r->prev_kv;
	w->progress_notify = r->progress_notify;
	for (size_t i = 0; i < r->n_filters; i++) {
		if (r->filters[i] ==
		    ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
			w->noput = 1;
		else if (r->filters[i] ==
			 ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
			w->nodelete = 1;
	}
	w->g = group_get(h, &k);
	if (!w->g) {
		free(w);
		return -ENOMEM;
	}
	w->g->refs++;
	if (smap_add(&h->by_id, &w->hn, smap_hash_u64(w->id)) < 0) {
		group_put(h, w->g);
		free(w);
		return -ENOMEM;
	}
	if (start == 0 || start > cur) {
		/* etcd: synced when it needs nothing already written. */
		link_synced(h, w, start ? start : cur + 1);
	} else {
		w->minrev = start;
		set_unsynced(h, w);
	}
	return 0;
}

void whub_cancel(struct whub *h, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct watcher *w = find(h, ids[i]);
		if (w)
			whub_drop(h, w);
	}
}

void whub_progress(struct whub *h, const uint64_t *ids, size_t n)
{
	struct whub_msg *mm = &h->live;
	whub_msg_reset(h, mm);
	for (size_t i = 0; i < n; i++) {
		struct watcher *w = find(h, ids[i]);
		if (!w)
			continue;
		if (w->state != W_SYNCED) {
			w->want_progress = 1;
			continue;
		}
		Ipc__WatchHit *hit = whub_msg_hit_of(mm, w);
		if (hit)
			hit->progress = 1;
	}
	whub_msg_send(h, mm, mvcc_rev(h->m));
}

void whub_progress_notify(struct whub *h)
{
	struct whub_msg *mm = &h->live;
	whub_msg_reset(h, mm);
	size_t it;
	for (struct smap_node *n = smap_first(&h->by_id, &it); n;
	     n = smap_next(&h->by_id, n, &it)) {
		struct watcher *w = smap_entry(n, struct watcher, hn);
		if (w->state == W_SYNCED && w->progress_notify && !w->active) {
			Ipc__WatchHit *hit = whub_msg_hit_of(mm, w);
			if (hit)
				hit->progress = 1;
		}
		w->active = 0;
	}
	whub_msg_send(h, mm, mvcc_rev(h->m));
}

void whub_clear(struct whub *h)
{
	size_t it;
	struct smap_node *n = smap_first(&h->by_id, &it);
	while (n) {
		struct smap_node *next = smap_next(&h->by_id, n, &it);
		whub_drop(h, smap_entry(n, struct watcher, hn));
		n = next;
	}
	h->round.active = 0;
	h->round.n = 0;
}

void whub_rebase(struct whub *h, struct mvcc *m, int64_t seen)
{
	struct wround *r = &h->round;
	/* History gathered and not sent is read again from the new store:
	 * each round watcher's minrev is past what was sent only. */
	for (size_t i = 0; r->active && i < r->n; i++) {
		struct watcher *w = r->w[i];
		if (!w)
			continue;
		w->hit = NULL;
		set_unsynced(h, w);
	}
	r->active = 0;
	r->n = 0;
	whub_msg_reset(h, &h->hist);
	size_t it;
	for (struct smap_node *n = smap_first(&h->by_id, &it); n;
	     n = smap_next(&h->by_id, n, &it)) {
		struct watcher *w = smap_entry(n, struct watcher, hn);
		if (w->state != W_SYNCED)
			continue;
		/* It has every event up to seen. */
		unlink_w(h, w);
		if (w->minrev <= seen)
			w->minrev = seen + 1;
		set_unsynced(h, w);
	}
	h->m = m;
}

void whub_stats(const struct whub *h, struct whub_stats *ret)
{
	ret->watchers = h->by_id.n;
	ret->unsynced = h->by_id.n - h->nsynced;
	ret->events = h->events;
}
