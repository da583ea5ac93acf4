/*
 * The catch-up of unsynced watchers, as etcd's syncWatchers: a round takes
 * up to WATCH_ROUND_MAX of them and reads the store once for all, from the
 * oldest revision any of them needs, WATCH_CHUNK records per step so that
 * applying goes on in between. What each watcher gets is gathered and sent
 * as one message at the current revision when the read reaches it; then the
 * round's watchers join the synced group.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watch_int.h"

/*
 * The key of a packed KeyValue without decoding it: field 1 comes first
 * (protobuf-c and Go both write fields in order). -1 if it does not.
 */
static int peek_key(const uint8_t *kv, size_t len, const uint8_t **ret_key,
		    size_t *ret_len)
{
	if (len < 2 || kv[0] != 0x0a)
		return -1;
	uint64_t n = 0;
	size_t i = 1;
	for (int shift = 0; i < len && shift < 35; shift += 7) {
		uint8_t b = kv[i++];
		n |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (n > len - i)
				return -1;
			*ret_key = kv + i;
			*ret_len = n;
			return 0;
		}
	}
	return -1;
}

static int round_start(struct whub *h)
{
	struct wround *r = &h->round;
	int64_t lo = INT64_MAX;
	r->n = 0;
	while (h->unsynced && r->n < WATCH_ROUND_MAX) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 16;
			struct watcher **v = realloc(r->w, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
			r->w = v;
			r->cap = cap;
		}
		struct watcher *w = whub_pop_unsynced(h);
		w->state = W_ROUND;
		w->slot = (uint32_t)r->n;
		r->w[r->n++] = w;
		if (w->minrev < lo)
			lo = w->minrev;
	}
	/* Revision 1 is the empty store's: nothing is stored below 2. */
	r->pos_main = lo < 1 ? 1 : lo;
	r->pos_sub = 0;
	r->cur_main = 0;
	r->bytes = 0;
	r->active = 1;
	whub_msg_reset(h, &h->hist);
	return 0;
}

/* Sends what was gathered, complete up to revision rev. */
static void flush(struct whub *h, int64_t rev)
{
	struct wround *r = &h->round;
	whub_msg_send(h, &h->hist, rev);
	for (size_t i = 0; i < r->n; i++)
		if (r->w[i] && r->w[i]->minrev <= rev)
			r->w[i]->minrev = rev + 1;
	whub_msg_reset(h, &h->hist);
	r->bytes = 0;
}

static int hist_event(struct whub *h, const struct mvcc_rec *rec,
		      const uint8_t *key, size_t klen, Mvccpb__Event **ret)
{
	struct whub_msg *mm = &h->hist;
	Mvccpb__Event *ev = ARENA_NEW(&mm->a, Mvccpb__Event, MVCCPB__EVENT__INIT);
	if (rec->tomb) {
		/* Stored as the key alone; etcd patches in the revision. */
		Mvccpb__KeyValue *kv = ARENA_NEW(&mm->a, Mvccpb__KeyValue,
						 MVCCPB__KEY_VALUE__INIT);
		kv->key.data = arena_memdup(&mm->a, key, klen);
		kv->key.len = klen;
		kv->mod_revision = rec->main;
		ev->type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
		ev->kv = kv;
	} else {
		ev->kv = mvccpb__key_value__unpack(&mm->a.pb, rec->kvlen, rec->kv);
		if (!ev->kv)
			return -EIO;
	}
	h->round.bytes += rec->kvlen + 32;
	*ret = ev;
	return 0;
}

static int on_rec(const struct mvcc_rec *rec, void *arg)
{
	struct whub *h = arg;
	struct wround *r = &h->round;
	struct whub_msg *mm = &h->hist;
	if (rec->main != r->cur_main) {
		/* Every record of cur_main was read: a place to cut. */
		if (r->bytes >= WATCH_FLUSH_BYTES && r->cur_main)
			flush(h, r->cur_main);
		r->cur_main = rec->main;
	}
	const uint8_t *key;
	size_t klen;
	if (peek_key(rec->kv, rec->kvlen, &key, &klen) < 0) {
		Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(
			&mm->a.pb, rec->kvlen, rec->kv);
		if (!kv)
			return -EIO;
		key = kv->key.data;
		klen = kv->key.len;
	}
	int idx = -1, prev_tried = 0, err;
	for (size_t i = 0; i < r->n; i++) {
		struct watcher *w = r->w[i];
		if (!w || rec->main < w->minrev || !watcher_wants(w, rec->tomb) ||
		    !whub_group_has(w->g, key, klen))
			continue;
		if (idx < 0) {
			Mvccpb__Event *ev;
			if ((err = hist_event(h, rec, key, klen, &ev)) < 0 ||
			    (idx = err = whub_msg_event(mm, ev)) < 0)
				return err;
		}
		if (w->prev_kv && !prev_tried) {
			Mvccpb__KeyValue *prev;
			prev_tried = 1;
			if (mvcc_kv_before(h->m, key, klen, rec->main, &mm->a,
					   &prev) == 0) {
				mm->ev[idx]->prev_kv = prev;
				r->bytes += prev->key.len + prev->value.len + 32;
			}
		}
		if ((err = whub_msg_hit(h, mm, w, (uint32_t)idx)) < 0)
			return err;
		r->bytes += 4;
	}
	return 0;
}

/* Everything up to rev (the current revision) was read: send and sync. */
static void finish(struct whub *h, int64_t rev)
{
	struct wround *r = &h->round;
	struct whub_msg *mm = &h->hist;
	whub_msg_send(h, mm, rev);
	whub_msg_reset(h, mm);
	for (size_t i = 0; i < r->n; i++) {
		struct watcher *w = r->w[i];
		if (w && w->want_progress) {
			Ipc__WatchHit *hit = whub_msg_hit_of(mm, w);
			if (hit)
				hit->progress = 1;
			w->want_progress = 0;
		}
	}
	whub_msg_send(h, mm, rev);
	for (size_t i = 0; i < r->n; i++)
		if (r->w[i])
			whub_set_synced(h, r->w[i], rev + 1);
	r->n = 0;
	r->active = 0;
}

int whub_sync(struct whub *h)
{
	struct wround *r = &h->round;
	if (!r->active) {
		if (!h->unsynced)
			return 0;
		if (round_start(h) < 0)
			return -ENOMEM;
	}
	/*
	 * A compaction since the last step may have removed revisions the
	 * round still has to read: a watcher that needs one is canceled with
	 * the compacted revision, as etcd cancels one whose minRev fell
	 * below it.
	 */
	int64_t compacted = mvcc_compact_rev(h->m);
	size_t live = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct watcher *w = r->w[i];
		if (!w)
			continue;
		int64_t need = w->minrev > r->pos_main ? w->minrev : r->pos_main;
		if (need < compacted)
			whub_compacted(h, w, compacted);
		else
			live++;
	}
	int64_t upto = mvcc_rev(h->m);
	if (live) {
		int ret = mvcc_scan(h->m, &r->pos_main, &r->pos_sub, upto,
				    WATCH_CHUNK, on_rec, h);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return 1;
	}
	finish(h, upto);
	return h->unsynced ? 1 : 0;
}
