/*
 * The cluster's members as the applied ConfChange entries define them: the
 * "members" column family (member ID, 8 bytes big-endian -> packed
 * etcdserverpb.Member; the ID followed by 'r' -> nothing for a removed
 * member), mirrored in memory (a handful of records) so that a batch sees
 * its own writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc_int.h"

/* Cluster size limit: etcd's membership has no hard one; ours is generous. */
#define MEMBERS_MAX 1024
/* The key of a removed ID: the member key and this byte. */
#define REMOVED_TAG 'r'

void members_clear(struct mvcc *m)
{
	for (size_t i = 0; i < m->nmembers; i++)
		free(m->members[i].data);
	free(m->members);
	m->members = NULL;
	m->nmembers = 0;
	free(m->removed);
	m->removed = NULL;
	m->nremoved = 0;
}

/* Index of id in m->removed, or where it would go (negative - 1). */
static ssize_t removed_find(const struct mvcc *m, uint64_t id)
{
	size_t lo = 0, hi = m->nremoved;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->removed[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->nremoved && m->removed[lo] == id)
		return (ssize_t)lo;
	return -(ssize_t)lo - 1;
}

/*
 * No limit of its own: every removal is an operator's change committed
 * through Raft after an add, 8 bytes each, as etcd keeps them forever.
 */
static int removed_add(struct mvcc *m, uint64_t id)
{
	ssize_t i = removed_find(m, id);
	if (i >= 0)
		return 0;
	uint64_t *v = realloc(m->removed, (m->nremoved + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->removed = v;
	size_t at = (size_t)(-i - 1);
	memmove(&v[at + 1], &v[at], (m->nremoved - at) * sizeof(*v));
	v[at] = id;
	m->nremoved++;
	return 0;
}

const uint64_t *mvcc_members_removed(const struct mvcc *m, size_t *ret_n)
{
	*ret_n = m->nremoved;
	return m->removed;
}

int mvcc_member_removed(const struct mvcc *m, uint64_t id)
{
	return removed_find(m, id) >= 0;
}

/* Index of id in m->members, or where it would go (negative - 1). */
static ssize_t member_find(const struct mvcc *m, uint64_t id)
{
	size_t lo = 0, hi = m->nmembers;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->members[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->nmembers && m->members[lo].id == id)
		return (ssize_t)lo;
	return -(ssize_t)lo - 1;
}

/* Takes ownership of data (freed on failure). */
static int member_set(struct mvcc *m, uint64_t id, uint8_t *data, size_t len)
{
	ssize_t i = member_find(m, id);
	if (i >= 0) {
		free(m->members[i].data);
		m->members[i].data = data;
		m->members[i].len = len;
		return 0;
	}
	if (m->nmembers >= MEMBERS_MAX) {
		free(data);
		return -E2BIG;
	}
	struct member_rec *r = realloc(m->members,
				       (m->nmembers + 1) * sizeof(*r));
	if (!r) {
		free(data);
		return -ENOMEM;
	}
	m->members = r;
	size_t at = (size_t)(-i - 1);
	memmove(&r[at + 1], &r[at], (m->nmembers - at) * sizeof(*r));
	r[at].id = id;
	r[at].data = data;
	r[at].len = len;
	m->nmembers++;
	return 0;
}

int members_load(struct mvcc *m)
{
	int ret = 0;
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(m->db, m->ro,
							    m->cf[CF_MEMBERS]);
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		if (klen == 9 && k[8] == REMOVED_TAG) {
			if ((ret = removed_add(m, be64_get(
					      (const uint8_t *)k))) < 0)
				break;
			continue;
		}
		if (klen != 8) {
			ret = -EINVAL;
			break;
		}
		uint8_t *data = malloc(vlen ? vlen : 1);
		if (!data) {
			ret = -ENOMEM;
			break;
		}
		memcpy(data, v, vlen);
		if ((ret = member_set(m, be64_get((const uint8_t *)k), data,
				      vlen)) < 0)
			break;
	}
	rocksdb_iter_destroy(it);
	return ret;
}

int mvcc_member_put(struct mvcc *m, const Etcdserverpb__Member *mb)
{
	if (!m->in_batch)
		return -EINVAL;
	size_t len = etcdserverpb__member__get_packed_size(mb);
	uint8_t *data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	etcdserverpb__member__pack(mb, data);
	uint8_t k[8];
	be64_put(k, mb->id);
	rocksdb_writebatch_put_cf(m->wb, m->cf[CF_MEMBERS], (const char *)k, 8,
				  (const char *)data, len);
	return member_set(m, mb->id, data, len);
}

int mvcc_member_delete(struct mvcc *m, uint64_t id)
{
	if (!m->in_batch)
		return -EINVAL;
	uint8_t k[9];
	be64_put(k, id);
	int ret = removed_add(m, id);
	if (ret < 0)
		return ret;
	rocksdb_writebatch_delete_cf(m->wb, m->cf[CF_MEMBERS], (const char *)k, 8);
	k[8] = REMOVED_TAG;
	rocksdb_writebatch_put_cf(m->wb, m->cf[CF_MEMBERS], (const char *)k, 9,
				  "", 0);
	ssize_t i = member_find(m, id);
	if (i >= 0) {
		free(m->members[i].data);
		memmove(&m->members[i], &m->members[i + 1],
			(m->nmembers - (size_t)i - 1) * sizeof(m->members[0]));
		m->nmembers--;
	}
	return 0;
}

int mvcc_member_get(struct mvcc *m, uint64_t id, struct arena *a,
		    Etcdserverpb__Member **ret)
{
	ssize_t i = member_find(m, id);
	if (i < 0)
		return -ENOENT;
	Etcdserverpb__Member *mb = etcdserverpb__member__unpack(
		&a->pb, m->members[i].len, m->members[i].data);
	if (!mb)
		return -EINVAL;
	*ret = mb;
	return 0;
}

int mvcc_member_list(struct mvcc *m, struct arena *a,
		     Etcdserverpb__Member ***ret_members, size_t *ret_n)
{
	Etcdserverpb__Member **v = arena_alloc(a, (m->nmembers + 1) * sizeof(*v));
	for (size_t i = 0; i < m->nmembers; i++) {
		v[i] = etcdserverpb__member__unpack(&a->pb, m->members[i].len,
						    m->members[i].data);
		if (!v[i])
			return -EINVAL;
	}
	*ret_members = v;
	*ret_n = m->nmembers;
	return 0;
}

int mvcc_member_attr_set(struct mvcc *m,
			 const Etcdserverpb__ClusterMemberAttrSetRequest *r,
			 struct arena *a)
{
	Etcdserverpb__Member *mb;
	int err = mvcc_member_get(m, r->member_id, a, &mb);
	if (err == -ENOENT)
		return 0;
	if (err < 0)
		return err;
	static const Etcdserverpb__Attributes none = ETCDSERVERPB__ATTRIBUTES__INIT;
	const Etcdserverpb__Attributes *at = r->member_attributes ?
						     r->member_attributes : &none;
	mb->name = at->name;
	mb->clienturls = at->client_urls;
	mb->n_clienturls = at->n_client_urls;
	return mvcc_member_put(m, mb);
}

int mvcc_member_attr_equal(struct mvcc *m, uint64_t id, const char *name,
			   char *const *urls, size_t n)
{
	struct arena a;
	Etcdserverpb__Member *mb;
	arena_init(&a, 0);
	int ret = mvcc_member_get(m, id, &a, &mb);
	if (ret == 0) {
		ret = strcmp(mb->name ? mb->name : "", name ? name : "") == 0 &&
		      mb->n_clienturls == n;
		for (size_t i = 0; ret && i < n; i++)
			ret = strcmp(mb->clienturls[i], urls[i]) == 0;
	}
	arena_done(&a);
	return ret;
}
