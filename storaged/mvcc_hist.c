/*
 * History for the watch hub: stored revisions read in revision order (the
 * catch-up of unsynced watchers), and the values events need for prev_kv.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"

int mvcc_kv_rev(struct mvcc *m, int64_t main, uint32_t sub, struct arena *a,
		Mvccpb__KeyValue **ret)
{
	struct kirev rev = { main, sub, 0 };
	uint8_t k[REVKEY_MAX];
	size_t klen = revkey_put(k, &rev);
	char *err = NULL;
	rocksdb_pinnableslice_t *s = rocksdb_get_pinned_cf(
		m->db, m->ro, m->cf[CF_KEY], (const char *)k, klen, &err);
	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	if (!s)
		return -ENOENT;
	size_t vlen;
	const char *v = rocksdb_pinnableslice_value(s, &vlen);
	Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(&a->pb, vlen,
							 (const uint8_t *)v);
	rocksdb_pinnableslice_destroy(s);
	if (!kv)
		return -EIO;
	*ret = kv;
	return 0;
}

int mvcc_kv_before(struct mvcc *m, const uint8_t *key, size_t klen,
		   int64_t rev, struct arena *a, Mvccpb__KeyValue **ret)
{
	const struct ki_node *n = ki_find(m->ki, key, klen);
	struct kirev r;
	/* The index keeps, per key, what a read at any revision >= the
	 * compaction needs; an older read finds nothing or the kept value,
	 * which was the value then too. */
	if (!n || ki_get(n, rev - 1, &r) < 0)
		return -ENOENT;
	return mvcc_kv_rev(m, r.main, r.sub, a, ret);
}

int mvcc_scan(struct mvcc *m, int64_t *pos_main, uint32_t *pos_sub,
	      int64_t upto, size_t max,
	      int (*fn)(const struct mvcc_rec *r, void *arg), void *arg)
{
	if (m->in_batch)
		return -EBUSY;
	if (*pos_main > upto)
		return 1;
	uint8_t end[8];
	be64_put(end, (uint64_t)upto + 1);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (!ro)
		return -ENOMEM;
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end,
						    sizeof(end));
	/* Old history read once should not push the hot set out. */
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, ro,
							    m->cf[CF_KEY]);
	struct kirev from = { *pos_main, *pos_sub, 0 };
	uint8_t k[REVKEY_MAX];
	size_t klen = revkey_put(k, &from);
	int ret = 1;
	size_t n = 0;
	struct mvcc_rec r;
	for (rocksdb_iter_seek(it, (const char *)k, klen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		if (n == max) {
			ret = 0;
			break;
		}
		size_t kl, vl;
		const char *key = rocksdb_iter_key(it, &kl);
		const char *val = rocksdb_iter_value(it, &vl);
		struct kirev rev;
		if (revkey_parse((const uint8_t *)key, kl, &rev) < 0) {
			ret = -EINVAL;
			break;
		}
		r.main = rev.main;
		r.sub = rev.sub;
		r.tomb = (int)rev.tomb;
		r.kv = (const uint8_t *)val;
		r.kvlen = vl;
		n++;
		*pos_main = rev.main;
		*pos_sub = rev.sub + 1;
		int s = fn(&r, arg);
		if (s) {
			ret = s;
			break;
		}
	}
	if (ret == 1) {
		char *err = NULL;
		rocksdb_iter_get_error(it, &err);
		if (err) {
			rocksdb_free(err);
			ret = -EIO;
		} else {
			*pos_main = upto + 1;
			*pos_sub = 0;
		}
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return ret;
}

uint64_t mvcc_compacted_keys(const struct mvcc *m)
{
	return m->compacted_keys;
}
