/*
 * What the files of the MVCC store share (mvcc*.c, members.c, lease*.c):
 * the store's state, the on-disk encoding of revisions, and the write
 * transaction that gives writes their revisions. Nothing else includes this.
 */
#ifndef STORAGED_MVCC_INT_H
#define STORAGED_MVCC_INT_H

#include <rocksdb/c.h>

#include "keyindex.h"
#include "link.h"
#include "mvcc.h"

enum mvcc_cf {
	CF_DEFAULT = 0, /* unused, RocksDB requires it */
	CF_KEY,         /* revision -> packed mvccpb.KeyValue */
	CF_META,        /* applied index, current and compacted revisions */
	CF_MEMBERS,     /* member ID (8 bytes BE) -> packed etcdserverpb.Member;
			 * ID + 'r' -> "" for a removed member */
	CF_LEASE,       /* lease ID (8 bytes BE) -> TTL (8 bytes BE) */
	CF_V2,          /* v2 store: node path -> packed ipc.V2Node */
	CF_MAX
};

/* Keys of CF_META, named as etcd names them in its meta bucket. */
#define META_APPLIED "consistent_index"
#define META_REV "currentRev"
#define META_SCHEDULED "scheduledCompactRev"
#define META_FINISHED "finishedCompactRev"
/* Ours: the v2 store's index (X-Etcd-Index). */
#define META_V2INDEX "v2Index"

/* A key-value written by the batch in progress, not yet in RocksDB. */
struct pending_kv {
	int64_t main;
	uint32_t sub;
	uint32_t len;
	const uint8_t *data; /* packed mvccpb.KeyValue, in m->pend_arena */
};

/* A member record, kept in memory as the members CF holds it. */
struct member_rec {
	uint64_t id;
	size_t len;
	uint8_t *data; /* owned: packed etcdserverpb.Member */
};

/* A key live at the revision of a range, with the revision of its value. */
struct range_hit {
	const struct ki_node *node;
	struct kirev rev;
};

struct mvcc {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_cache_t *cache;
	rocksdb_filterpolicy_t *filter; /* owned by topts once set */
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
	rocksdb_column_family_handle_t *cf[CF_MAX];
	char *path;

	struct keyindex *ki;
	uint64_t applied;
	int64_t rev;            /* current revision */
	int64_t compact_rev;    /* -1 until the first compaction */

	/* The batch in progress. */
	int in_batch;
	rocksdb_writebatch_t *wb;
	struct pending_kv *pend;
	size_t npend, cappend;
	struct arena pend_arena;
	/* A compaction applied in this batch, to finish after the commit. */
	int64_t phys_compact;   /* 0: none */
	struct kirev *keep;     /* revisions <= phys_compact that stay */
	size_t nkeep, capkeep;

	/* Scratch for ranges: the hits of the last collect. */
	struct range_hit *hits;
	size_t nhits, caphits;

	struct member_rec *members; /* sorted by id */
	size_t nmembers;
	uint64_t *removed;          /* IDs removed for good, sorted */
	size_t nremoved;

	struct lessor *ls;
	struct v2store *v2;     /* the v2 keys store (mvcc_v2.c) */
	uint8_t *v2buf;         /* scratch for one packed node */
	size_t v2cap;

	/* The writes of the last batch, for the watch hub (keys in
	 * pend_arena, which is cleared when the next batch begins). */
	struct mvcc_change *chg;
	size_t nchg, capchg;
	uint64_t compacted_keys;
	size_t live_keys;       /* keys whose latest revision is not a delete */
};

/* A revision as etcd stores it: 8 bytes BE main, '_', 8 bytes BE sub, 't'
 * after a tombstone. */
#define REVKEY_LEN 17
#define REVKEY_MAX 18

static inline void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline size_t revkey_put(uint8_t *out, const struct kirev *r)
{
	be64_put(out, (uint64_t)r->main);
	out[8] = '_';
	be64_put(out + 9, r->sub);
	if (r->tomb) {
		out[REVKEY_LEN] = 't';
		return REVKEY_MAX;
	}
	return REVKEY_LEN;
}

static inline int revkey_parse(const uint8_t *p, size_t len, struct kirev *ret)
{
	if ((len != REVKEY_LEN && len != REVKEY_MAX) || p[8] != '_' ||
	    (len == REVKEY_MAX && p[REVKEY_LEN] != 't'))
		return -1;
	ret->main = (int64_t)be64_get(p);
	ret->sub = (uint32_t)be64_get(p + 9);
	ret->tomb = len == REVKEY_MAX;
	return 0;
}

/* The key range of a request, as etcd's mkGteRange reads it. */
enum range_kind {
	RANGE_ONE,  /* range_end empty: the key alone */
	RANGE_SPAN, /* [key, range_end) */
	RANGE_FROM, /* range_end "\0": every key >= key */
};

struct krange {
	const uint8_t *key;
	size_t klen;
	const uint8_t *end;
	size_t elen;
	enum range_kind kind;
};

static inline struct krange krange_of(ProtobufCBinaryData key,
				      ProtobufCBinaryData end)
{
	struct krange r = { key.data, key.len, end.data, end.len, RANGE_SPAN };
	if (end.len == 0)
		r.kind = RANGE_ONE;
	else if (end.len == 1 && end.data[0] == 0)
		r.kind = RANGE_FROM;
	return r;
}

/*
 * A write transaction, as etcd's storeTxnWrite: every write gets revision
 * (begin + 1, number of changes so far); reads inside see those writes.
 */
struct wtxn {
	int64_t begin;
	uint32_t changes;
};

static inline int64_t wtxn_read_rev(const struct wtxn *t)
{
	return t->begin + (t->changes > 0);
}

void wtxn_begin(struct mvcc *m, struct wtxn *t);
/* Makes the writes' revision current if there were writes. */
void wtxn_end(struct mvcc *m, struct wtxn *t);
int wtxn_put(struct mvcc *m, struct wtxn *t, const uint8_t *key, size_t klen,
	     const uint8_t *val, size_t vlen, int64_t lease);
/* Deletes every key live in r; *ret_n = how many. */
int wtxn_delete(struct mvcc *m, struct wtxn *t, const struct krange *r,
		int64_t *ret_n);

/*
 * Fills m->hits with the keys of r live at revision at, in key order.
 * Returns their number or -ENOMEM.
 */
ssize_t mvcc_collect(struct mvcc *m, const struct krange *r, int64_t at);
/* The key-value stored at rev, unpacked into a. */
int mvcc_kv_at(struct mvcc *m, const struct kirev *rev, struct arena *a,
	       Mvccpb__KeyValue **ret);

/*
 * The key-values of hits[0..n), into out[0..n), unpacked into a;
 * -MVCC_ETOOLARGE once they pass max_bytes (an answer must fit a frame).
 */
int mvcc_kv_many(struct mvcc *m, const struct range_hit *hits, size_t n,
		 size_t max_bytes, struct arena *a, Mvccpb__KeyValue **out);

/* The most bytes of key-values one answer carries. */
#define MVCC_MAX_ANSWER ((size_t)LINK_MAX_BODY - (1u << 20))

/*
 * etcd's applierV3backend.Range with the read view's revision cur (the store's,
 * or that of a write transaction).
 */
int mvcc_range_at(struct mvcc *m, const Etcdserverpb__RangeRequest *r,
		  int64_t cur, struct arena *a,
		  Etcdserverpb__RangeResponse **ret);
/*
 * Put and DeleteRange inside write transaction t. strict: a put with
 * ignore_value or ignore_lease on a missing key fails (else it writes).
 */
int mvcc_put_in(struct mvcc *m, struct wtxn *t,
		const Etcdserverpb__PutRequest *r, int strict, struct arena *a,
		Etcdserverpb__PutResponse **ret);
int mvcc_delete_in(struct mvcc *m, struct wtxn *t,
		   const Etcdserverpb__DeleteRangeRequest *r, struct arena *a,
		   Etcdserverpb__DeleteRangeResponse **ret);
/* Whether lease id exists (0, "no lease", always does). */
int mvcc_lease_exists(struct mvcc *m, int64_t id);

/* The lessor's part of the store (lease.c). At open, after the index:
 * loads the leases and attaches the keys whose node->lease names one. */
int lessor_open(struct mvcc *m);
void lessor_free(struct mvcc *m);
/* Node n's live value now has lease id (0: none): moves n between the
 * leases' key sets. A lease that does not exist is recorded as none. */
int lessor_attach(struct mvcc *m, struct ki_node *n, int64_t id);

/* Meta values, 8 bytes big-endian. */
int meta_get(struct mvcc *m, const char *name, int64_t *ret);
void meta_put(rocksdb_writebatch_t *wb, struct mvcc *m, const char *name,
	      int64_t v);

/* Compacts the index at rev, remembering in m->keep the revisions that stay. */
int mvcc_compact_index(struct mvcc *m, int64_t rev);
/* Removes revisions freed by the compaction at rev (m->keep stays). */
int mvcc_compact_physical(struct mvcc *m, int64_t rev);
/* The v2 store (mvcc_v2.c): loaded at open, freed at close. */
int mvcc_v2_open(struct mvcc *m);
void mvcc_v2_close(struct mvcc *m);
/* At open: loads the members CF into m->members. */
int members_load(struct mvcc *m);
void members_clear(struct mvcc *m);

#endif
