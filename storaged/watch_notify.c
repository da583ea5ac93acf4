/*
 * Live events: after a batch is committed, each revision's writes are
 * matched against the synced watchers (single-key watchers by a key lookup,
 * range watchers once per distinct range) and sent as one message per
 * revision, every event encoded once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watch_int.h"

/* The event of change c, built in mm the first time a watcher wants it. */
struct pending_ev {
	const struct mvcc_change *c;
	int idx;              /* in mm, -1 until built */
	int prev_tried;
};

static int build_event(struct whub *h, struct whub_msg *mm, struct pending_ev *pe)
{
	const struct mvcc_change *c = pe->c;
	Mvccpb__Event *ev = ARENA_NEW(&mm->a, Mvccpb__Event, MVCCPB__EVENT__INIT);
	(void)h;
	if (c->del) {
		/* etcd's DELETE event: the key and the deleting revision. */
		Mvccpb__KeyValue *kv = ARENA_NEW(&mm->a, Mvccpb__KeyValue,
						 MVCCPB__KEY_VALUE__INIT);
		kv->key.data = (uint8_t *)c->key;
		kv->key.len = c->klen;
		kv->mod_revision = c->main;
		ev->type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
		ev->kv = kv;
	} else {
		ev->kv = mvccpb__key_value__unpack(&mm->a.pb, c->kvlen, c->kv);
		if (!ev->kv)
			return -EIO;
	}
	int idx = whub_msg_event(mm, ev);
	if (idx < 0)
		return idx;
	pe->idx = idx;
	return 0;
}

static int deliver(struct whub *h, struct whub_msg *mm, struct watcher *w,
		   struct pending_ev *pe)
{
	const struct mvcc_change *c = pe->c;
	int err;
	if (c->main < w->minrev || !watcher_wants(w, (int)c->del))
		return 0;
	if (pe->idx < 0 && (err = build_event(h, mm, pe)) < 0)
		return err;
	if (w->prev_kv && !pe->prev_tried && c->prev_main) {
		/* One read for every watcher of the event that wants it. A
		 * value compacted away in this very batch is simply absent,
		 * as etcd's read at mod_revision - 1 would find it. */
		Mvccpb__KeyValue *prev;
		pe->prev_tried = 1;
		if (mvcc_kv_rev(h->m, c->prev_main, c->prev_sub, &mm->a,
				&prev) == 0)
			mm->ev[pe->idx]->prev_kv = prev;
	}
	return whub_msg_hit(h, mm, w, (uint32_t)pe->idx);
}

static int match_group(struct whub *h, struct whub_msg *mm, struct wgroup *g,
		       struct pending_ev *pe)
{
	for (struct watcher *w = g->synced; w; w = w->next) {
		int err = deliver(h, mm, w, pe);
		if (err < 0)
			return err;
	}
	return 0;
}

static int one_key_eq(const struct smap_node *n, const void *key)
{
	const struct wgroup *g = smap_entry(n, struct wgroup, hn);
	const struct mvcc_change *c = key;
	return g->kind == WK_ONE && g->klen == c->klen &&
	       memcmp(g->key, c->key, c->klen) == 0;
}

/* The changes c[0..n) of one revision. */
static int notify_rev(struct whub *h, const struct mvcc_change *c, size_t n)
{
	struct whub_msg *mm = &h->live;
	whub_msg_reset(h, mm);
	for (size_t i = 0; i < n; i++) {
		struct pending_ev pe = { &c[i], -1, 0 };
		int err;
		if (h->groups.n > 0) {
			uint64_t hash = whub_group_hash(WK_ONE, c[i].key, c[i].klen,
						    NULL, 0);
			struct smap_node *gn = smap_find(&h->groups, hash,
							 one_key_eq, &c[i]);
			if (gn && (err = match_group(h, mm,
					smap_entry(gn, struct wgroup, hn), &pe)) < 0)
				return err;
		}
		for (struct wgroup *g = h->ranges; g; g = g->rnext) {
			if (!g->synced || !whub_group_has(g, c[i].key, c[i].klen))
				continue;
			if ((err = match_group(h, mm, g, &pe)) < 0)
				return err;
		}
	}
	whub_msg_send(h, mm, c[0].main);
	return 0;
}

int whub_apply(struct whub *h)
{
	size_t n;
	const struct mvcc_change *c = mvcc_changes(h->m, &n);
	if (!h->nsynced)
		return 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && c[j].main == c[i].main)
			j++;
		int err = notify_rev(h, c + i, j - i);
		if (err < 0)
			return err;
		i = j;
	}
	return 0;
}
