/*
 * The physical half of a compaction: removes from RocksDB every revision <=
 * the compaction revision except those the key index kept (the value of every
 * key live at that revision), then compacts the range so the space is really
 * returned. Runs after the batch that applied the compaction is written, or
 * at open when a crash interrupted it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"

/* Deletes go to RocksDB in chunks, so one WriteBatch stays small. */
#define COMPACT_CHUNK 10000

static int rev_cmp(const void *pa, const void *pb)
{
	const struct kirev *a = pa, *b = pb;
	if (a->main != b->main)
		return a->main < b->main ? -1 : 1;
	if (a->sub != b->sub)
		return a->sub < b->sub ? -1 : 1;
	return 0;
}

static int write_chunk(struct mvcc *m, rocksdb_writebatch_t *wb)
{
	char *err = NULL;
	rocksdb_write(m->db, m->wo, wb, &err);
	rocksdb_writebatch_clear(wb);
	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	return 0;
}

int mvcc_compact_physical(struct mvcc *m, int64_t rev)
{
	/* The kept revisions came in key order; the store is in revision order. */
	if (m->nkeep > 1)
		qsort(m->keep, m->nkeep, sizeof(*m->keep), rev_cmp);

	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	uint8_t end[8];
	be64_put(end, (uint64_t)rev + 1);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end,
						    sizeof(end));
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, ro,
							    m->cf[CF_KEY]);
	size_t k = 0, n = 0;
	int ret = 0;
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen;
		const char *key = rocksdb_iter_key(it, &klen);
		struct kirev r;
		if (revkey_parse((const uint8_t *)key, klen, &r) < 0) {
			ret = -EINVAL;
			break;
		}
		if (r.main > rev)
			break;
		while (k < m->nkeep && rev_cmp(&m->keep[k], &r) < 0)
			k++;
		if (!r.tomb && k < m->nkeep && rev_cmp(&m->keep[k], &r) == 0)
			continue;
		rocksdb_writebatch_delete_cf(wb, m->cf[CF_KEY], key, klen);
		if (++n % COMPACT_CHUNK == 0 && (ret = write_chunk(m, wb)) < 0)
			break;
	}
	if (ret == 0) {
		char *err = NULL;
		rocksdb_iter_get_error(it, &err);
		if (err) {
			rocksdb_free(err);
			ret = -EIO;
		}
	}
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (ret == 0) {
		meta_put(wb, m, META_FINISHED, rev);
		ret = write_chunk(m, wb);
	}
	rocksdb_writebatch_destroy(wb);
	if (ret < 0)
		return ret;

	/* The keep list can be large; it is only needed until here. */
	free(m->keep);
	m->keep = NULL;
	m->nkeep = m->capkeep = 0;

	m->compacted_keys += n;
	if (n > 0) {
		/* Drop the deleted versions from the files, so the space is
		 * really freed, as bbolt's defrag would after etcd's compaction. */
		char *err = NULL;
		rocksdb_compact_range_cf(m->db, m->cf[CF_KEY], NULL, 0,
					 (const char *)end, sizeof(end));
		rocksdb_flush_wal(m->db, 0, &err);
		if (err)
			rocksdb_free(err);
	}
	return 0;
}
