/* The MVCC store's life: options, open and rebuild of the index, close, sync, size. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "mvcc_int.h"

static const char *const cf_names[CF_MAX] = {
	[CF_DEFAULT] = "default",
	[CF_KEY] = "key",
	[CF_META] = "meta",
	[CF_MEMBERS] = "members",
	[CF_LEASE] = "lease",
	[CF_V2] = "v2",
};

void mvcc_strerror(int err, uint32_t *ret_code, const char **ret_msg)
{
	uint32_t code = 13;
	const char *msg = "etcdserver: internal error";
	switch (-err) {
	case MVCC_ECOMPACTED:
		code = 11;
		msg = "etcdserver: mvcc: required revision has been compacted";
		break;
	case MVCC_EFUTUREREV:
		code = 11;
		msg = "etcdserver: mvcc: required revision is a future revision";
		break;
	case MVCC_EKEYNOTFOUND:
		code = 3;
		msg = "etcdserver: key not found";
		break;
	case MVCC_ELEASENOTFOUND:
		code = 5;
		msg = "etcdserver: requested lease not found";
		break;
	case MVCC_ETOOLARGE:
		code = 8;
		msg = "etcdserver: range response is too large";
		break;
	case MVCC_EUNSUPPORTED:
		code = 12;
		msg = "etcdserver: request not supported by this member yet";
		break;
	case MVCC_ELEASEEXISTS:
		code = 9;
		msg = "etcdserver: lease already exists";
		break;
	case MVCC_ETTLTOOLARGE:
		code = 11;
		msg = "etcdserver: too large lease TTL";
		break;
	case MVCC_ETOOMANYLEASES:
		code = 8;
		msg = "etcdserver: too many leases";
		break;
	case MVCC_EMEMBEREXISTS:
		code = 9;
		msg = "etcdserver: member ID already exist";
		break;
	case MVCC_EMEMBERNOTFOUND:
	case MVCC_EMEMBERREMOVED:
		/* etcd's v3rpc maps ErrIDRemoved to ErrGRPCMemberNotFound. */
		code = 5;
		msg = "etcdserver: member not found";
		break;
	case MVCC_EPEERURLEXISTS:
		code = 9;
		msg = "etcdserver: Peer URLs already exists";
		break;
	case MVCC_ETOOMANYLEARNERS:
		code = 9;
		msg = "etcdserver: too many learner members in cluster";
		break;
	case MVCC_ENOTLEARNER:
		code = 9;
		msg = "etcdserver: can only promote a learner member";
		break;
	case ENOMEM:
		code = 8;
		msg = "etcdserver: out of memory";
		break;
	}
	*ret_code = code;
	*ret_msg = msg;
}

int meta_get(struct mvcc *m, const char *name, int64_t *ret)
{
	char *err = NULL;
	size_t len = 0;
	char *v = rocksdb_get_cf(m->db, m->ro, m->cf[CF_META], name,
				 strlen(name), &len, &err);
	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	if (!v)
		return -ENOENT;
	if (len != 8) {
		rocksdb_free(v);
		return -EINVAL;
	}
	*ret = (int64_t)be64_get((const uint8_t *)v);
	rocksdb_free(v);
	return 0;
}

void meta_put(rocksdb_writebatch_t *wb, struct mvcc *m, const char *name,
	      int64_t v)
{
	uint8_t b[8];
	be64_put(b, (uint64_t)v);
	rocksdb_writebatch_put_cf(wb, m->cf[CF_META], name, strlen(name),
				  (const char *)b, sizeof(b));
}

static void set_err(char **ret_err, const char *what, const char *detail)
{
	if (!ret_err)
		return;
	char *s = NULL;
	if (asprintf(&s, "%s: %s", what, detail ? detail : "") < 0)
		s = NULL;
	*ret_err = s;
}

static int configure(struct mvcc *m, const struct mvcc_options *opt)
{
	size_t wbs = opt && opt->write_buffer_size ? opt->write_buffer_size
						   : 16u << 20;
	size_t cache = opt && opt->block_cache_size ? opt->block_cache_size
						    : 8u << 20;
	m->opts = rocksdb_options_create();
	m->topts = rocksdb_block_based_options_create();
	m->cache = rocksdb_cache_create_lru(cache);
	m->wo = rocksdb_writeoptions_create();
	m->ro = rocksdb_readoptions_create();
	m->wb = rocksdb_writebatch_create();
	if (!m->opts || !m->topts || !m->cache || !m->wo || !m->ro || !m->wb)
		return -ENOMEM;

	rocksdb_options_set_create_if_missing(m->opts, 1);
	rocksdb_options_set_create_missing_column_families(m->opts, 1);
	/* Memory: one modest memtable per family, a shared budget, a small
	 * block cache; we must stay below etcd's RSS. */
	rocksdb_options_set_write_buffer_size(m->opts, wbs);
	rocksdb_options_set_max_write_buffer_number(m->opts, 2);
	rocksdb_options_set_db_write_buffer_size(m->opts, 4 * wbs);
	rocksdb_options_set_max_background_jobs(m->opts, 2);
	rocksdb_options_set_max_open_files(m->opts, 512);
	/* RocksDB's own LOG stays small. */
	rocksdb_options_set_info_log_level(m->opts, 2 /* WARN */);
	rocksdb_options_set_keep_log_file_num(m->opts, 2);
	rocksdb_options_set_max_log_file_size(m->opts, 1u << 20);
	rocksdb_options_set_stats_dump_period_sec(m->opts, 0);

	rocksdb_block_based_options_set_block_cache(m->topts, m->cache);
	m->filter = rocksdb_filterpolicy_create_bloom_full(10);
	rocksdb_block_based_options_set_filter_policy(m->topts, m->filter);
	rocksdb_options_set_block_based_table_factory(m->opts, m->topts);

	/* Our WAL is RocksDB's, written on every batch but synced only by
	 * mvcc_sync(): a crashed storaged loses nothing written. */
	rocksdb_writeoptions_set_sync(m->wo, 0);
	return 0;
}

/* Rebuilds the key index from the "key" family, in revision order. */
static int restore_index(struct mvcc *m, int64_t *ret_maxrev)
{
	struct arena a;
	arena_init(&a, 0);
	int ret = 0;
	int64_t maxrev = 0;
	/* One pass over everything: read ahead, and keep the cache for reads. */
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_readoptions_set_readahead_size(ro, 2u << 20);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, ro,
							    m->cf[CF_KEY]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		struct kirev rev;
		if (revkey_parse((const uint8_t *)k, klen, &rev) < 0) {
			ret = -EINVAL;
			break;
		}
		Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(
			&a.pb, vlen, (const uint8_t *)v);
		if (!kv) {
			ret = -EINVAL;
			break;
		}
		struct ki_node *node;
		ret = ki_restore(m->ki, kv->key.data, kv->key.len, &rev,
				 kv->create_revision, kv->version, &node);
		if (ret < 0)
			break;
		/* Attached to its lease by lessor_open once leases are read. */
		node->lease = rev.tomb ? 0 : kv->lease;
		if (rev.main > maxrev)
			maxrev = rev.main;
		if (a.total > (4u << 20))
			arena_clear(&a);
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
	arena_done(&a);
	if (ret == 0)
		*ret_maxrev = maxrev;
	return ret;
}

static int collect_keep(const struct kirev *rev, void *arg)
{
	struct mvcc *m = arg;
	if (m->nkeep == m->capkeep) {
		size_t cap = m->capkeep ? m->capkeep * 2 : 1024;
		struct kirev *k = realloc(m->keep, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		m->keep = k;
		m->capkeep = cap;
	}
	m->keep[m->nkeep++] = *rev;
	return 0;
}

int mvcc_compact_index(struct mvcc *m, int64_t rev)
{
	m->nkeep = 0;
	return ki_compact(m->ki, rev, collect_keep, m);
}

static int load_state(struct mvcc *m)
{
	int64_t v, maxrev = 0;
	int ret;

	m->applied = 0;
	m->rev = 1; /* etcd's first revision; the first write makes it 2 */
	m->compact_rev = -1;
	if ((ret = meta_get(m, META_APPLIED, &v)) == 0)
		m->applied = (uint64_t)v;
	else if (ret != -ENOENT)
		return ret;
	if ((ret = meta_get(m, META_REV, &v)) == 0 && v > m->rev)
		m->rev = v;
	else if (ret < 0 && ret != -ENOENT)
		return ret;

	int64_t sched = -1, fin = -1;
	if ((ret = meta_get(m, META_SCHEDULED, &sched)) < 0 && ret != -ENOENT)
		return ret;
	if ((ret = meta_get(m, META_FINISHED, &fin)) < 0 && ret != -ENOENT)
		return ret;

	if ((ret = restore_index(m, &maxrev)) < 0)
		return ret;
	if (maxrev > m->rev)
		m->rev = maxrev;

	m->compact_rev = fin;
	if (sched > fin) {
		/* A compaction was applied but not finished before a crash. */
		if ((ret = mvcc_compact_index(m, sched)) < 0)
			return ret;
		m->compact_rev = sched;
		if ((ret = mvcc_compact_physical(m, sched)) < 0)
			return ret;
	}
	if (m->compact_rev > m->rev)
		m->rev = m->compact_rev;
	m->live_keys = 0;
	for (const struct ki_node *n = ki_seek(m->ki, NULL, 0); n; n = ki_next(n))
		m->live_keys += n->ver > 0;
	return 0;
}

int mvcc_open(const char *path, const struct mvcc_options *opt,
	      struct mvcc **ret_m, char **ret_err)
{
	struct mvcc *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	arena_init(&m->pend_arena, 0);
	int ret = -ENOMEM;
	m->path = strdup(path);
	m->ki = ki_new();
	if (!m->path || !m->ki || configure(m, opt) < 0)
		goto fail;

	const rocksdb_options_t *cfopts[CF_MAX];
	for (int i = 0; i < CF_MAX; i++)
		cfopts[i] = m->opts;
	char *err = NULL;
	m->db = rocksdb_open_column_families(m->opts, path, CF_MAX, cf_names,
					     cfopts, m->cf, &err);
	if (err) {
		set_err(ret_err, "cannot open database", err);
		rocksdb_free(err);
		m->db = NULL;
		ret = -EIO;
		goto fail;
	}
	if ((ret = load_state(m)) < 0) {
		set_err(ret_err, "cannot read database", strerror(-ret));
		goto fail;
	}
	if ((ret = members_load(m)) < 0) {
		set_err(ret_err, "cannot read members", strerror(-ret));
		goto fail;
	}
	if ((ret = lessor_open(m)) < 0) {
		set_err(ret_err, "cannot read leases", strerror(-ret));
		goto fail;
	}
	if ((ret = mvcc_v2_open(m)) < 0) {
		set_err(ret_err, "cannot read the v2 store", strerror(-ret));
		goto fail;
	}
	*ret_m = m;
	return 0;
fail:
	mvcc_close(m);
	return ret;
}

void mvcc_close(struct mvcc *m)
{
	if (!m)
		return;
	if (m->db) {
		for (int i = 0; i < CF_MAX; i++)
			if (m->cf[i])
				rocksdb_column_family_handle_destroy(m->cf[i]);
		rocksdb_close(m->db);
	}
	if (m->wb)
		rocksdb_writebatch_destroy(m->wb);
	if (m->ro)
		rocksdb_readoptions_destroy(m->ro);
	if (m->wo)
		rocksdb_writeoptions_destroy(m->wo);
	if (m->opts)
		rocksdb_options_destroy(m->opts);
	/* The table options own the filter policy. */
	if (m->topts)
		rocksdb_block_based_options_destroy(m->topts);
	if (m->cache)
		rocksdb_cache_destroy(m->cache);
	members_clear(m);
	lessor_free(m);
	mvcc_v2_close(m);
	ki_free(m->ki);
	free(m->chg);
	arena_done(&m->pend_arena);
	free(m->pend);
	free(m->keep);
	free(m->hits);
	free(m->path);
	free(m);
}

uint64_t mvcc_applied(const struct mvcc *m)
{
	return m->applied;
}

int64_t mvcc_rev(const struct mvcc *m)
{
	return m->rev;
}

int64_t mvcc_compact_rev(const struct mvcc *m)
{
	return m->compact_rev;
}

size_t mvcc_key_count(const struct mvcc *m)
{
	return ki_count(m->ki);
}

size_t mvcc_live_keys(const struct mvcc *m)
{
	return m->live_keys;
}

int mvcc_sync(struct mvcc *m)
{
	char *err = NULL;
	rocksdb_flush_wal(m->db, 1, &err);
	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	return 0;
}

int mvcc_checkpoint(struct mvcc *m, const char *dir, uint64_t *ret_applied,
		    char **ret_err)
{
	/* Between batches every write is in RocksDB with the applied index
	 * that covers it, so the checkpoint's meta family says m->applied. */
	if (m->in_batch)
		return -EBUSY;
	char *err = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(m->db, &err);
	if (!err)
		/* log_size_for_flush 0: memtables are flushed first, so the
		 * files hold everything without replaying a WAL. */
		rocksdb_checkpoint_create(cp, dir, 0, &err);
	if (cp)
		rocksdb_checkpoint_object_destroy(cp);
	if (err) {
		set_err(ret_err, "cannot make a checkpoint", err);
		rocksdb_free(err);
		return -EIO;
	}
	*ret_applied = m->applied;
	return 0;
}

int mvcc_disk_usage(struct mvcc *m, int64_t *ret_size, int64_t *ret_inuse)
{
	DIR *d = opendir(m->path);
	if (!d)
		return -errno;
	int64_t size = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		/* Logical sizes: RocksDB preallocates its WAL (blocks would
		 * show megabytes for an empty store). Its info LOG is not
		 * data. */
		if (strncmp(de->d_name, "LOG", 3) == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode))
			size += (int64_t)st.st_size;
	}
	closedir(d);

	int64_t inuse = 0;
	static const char *const props[] = {
		"rocksdb.estimate-live-data-size",
		"rocksdb.cur-size-all-mem-tables",
	};
	for (int i = 0; i < CF_MAX; i++)
		for (size_t p = 0; p < sizeof(props) / sizeof(props[0]); p++) {
			uint64_t v = 0;
			if (rocksdb_property_int_cf(m->db, m->cf[i], props[p],
						    &v) == 0)
				inuse += (int64_t)v;
		}
	if (inuse > size)
		inuse = size;
	*ret_size = size;
	*ret_inuse = inuse;
	return 0;
}
