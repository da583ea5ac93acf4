/*
 * The v2 store on RocksDB: every node in the "v2" column family (path ->
 * packed ipc.V2Node), written into the apply's WriteBatch as the store
 * changes, and the store's index in the meta family with the applied
 * index; read back whole at open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.pb-c.h"
#include "mvcc_int.h"
#include "v2store.h"

struct v2store *mvcc_v2(struct mvcc *m)
{
	return m->v2;
}

static int put_node(void *arg, const struct v2_rec *r)
{
	struct mvcc *m = arg;
	/* Only an apply changes the store. */
	if (!m->in_batch)
		return -EINVAL;
	Ipc__V2Node n = IPC__V2_NODE__INIT;
	n.value.data = (uint8_t *)r->value;
	n.value.len = r->value ? r->vlen : 0;
	n.dir = r->dir;
	n.created_index = r->created;
	n.modified_index = r->modified;
	n.expiration = r->expire;
	size_t len = ipc__v2_node__get_packed_size(&n);
	if (len > m->v2cap) {
		uint8_t *b = realloc(m->v2buf, len);
		if (!b)
			return -ENOMEM;
		m->v2buf = b;
		m->v2cap = len;
	}
	ipc__v2_node__pack(&n, m->v2buf);
	rocksdb_writebatch_put_cf(m->wb, m->cf[CF_V2], r->path, r->plen,
				  (const char *)m->v2buf, len);
	return 0;
}

static int del_node(void *arg, const char *path, size_t plen)
{
	struct mvcc *m = arg;
	if (!m->in_batch)
		return -EINVAL;
	rocksdb_writebatch_delete_cf(m->wb, m->cf[CF_V2], path, plen);
	return 0;
}

/* Reads every node, in key order: a directory's path is a prefix of its
 * children's, so it comes first. */
static int load(struct mvcc *m)
{
	int ret = 0;
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, ro,
							    m->cf[CF_V2]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		Ipc__V2Node *n = ipc__v2_node__unpack(NULL, vlen,
						      (const uint8_t *)v);
		if (!n) {
			ret = -EINVAL;
			break;
		}
		struct v2_rec r = {
			.path = k, .plen = klen,
			.value = n->dir ? NULL : (const char *)n->value.data,
			.vlen = n->value.len, .dir = n->dir,
			.created = n->created_index,
			.modified = n->modified_index, .expire = n->expiration,
		};
		/* An empty value unpacks without data. */
		if (!n->dir && !r.value)
			r.value = "";
		ret = v2_load_node(m->v2, &r);
		ipc__v2_node__free_unpacked(n, NULL);
		if (ret < 0)
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
	return ret;
}

int mvcc_v2_open(struct mvcc *m)
{
	int ret = v2_new(NULL, &m->v2);
	if (ret < 0)
		return ret;
	if ((ret = load(m)) < 0)
		return ret;
	int64_t index = 0;
	if ((ret = meta_get(m, META_V2INDEX, &index)) < 0 && ret != -ENOENT)
		return ret;
	v2_load_index(m->v2, (uint64_t)index);
	struct v2_persist p = { put_node, del_node, m };
	v2_set_persist(m->v2, &p);
	return 0;
}

void mvcc_v2_close(struct mvcc *m)
{
	v2_free(m->v2);
	m->v2 = NULL;
	free(m->v2buf);
	m->v2buf = NULL;
	m->v2cap = 0;
}
