/*
 * The MVCC store as etcd 3.4 defines it, on RocksDB: revisions (main, sub),
 * key-values with create/mod revision and version, tombstones, the key index
 * rebuilt at open, compaction that frees space, and the apply of etcd's
 * requests (Range, Put, DeleteRange, Txn, Compaction) with etcd's answers and
 * errors. No event loop here: storaged.c drives it, tests call it directly.
 *
 * Writes happen inside a batch (mvcc_batch_begin .. mvcc_batch_commit): one
 * RocksDB WriteBatch for many Raft entries that also records the applied
 * index, so re-applying entries after a crash changes nothing.
 */
#ifndef STORAGED_MVCC_H
#define STORAGED_MVCC_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "kv.pb-c.h"
#include "raft_internal.pb-c.h"
#include "rpc.pb-c.h"

struct mvcc;

/*
 * etcd's errors, returned negated like errnos; mvcc_strerror() gives the
 * gRPC code and message a client sees.
 */
enum {
	MVCC_EBASE = 4096,
	MVCC_ECOMPACTED,      /* 11 mvcc: required revision has been compacted */
	MVCC_EFUTUREREV,      /* 11 mvcc: required revision is a future revision */
	MVCC_EKEYNOTFOUND,    /* 3 key not found */
	MVCC_ELEASENOTFOUND,  /* 5 requested lease not found */
	MVCC_ETOOLARGE,       /* 8 the answer is larger than a frame */
	MVCC_EUNSUPPORTED,    /* 12 a request this version does not serve */
	MVCC_ELEASEEXISTS,    /* 9 lease already exists */
	MVCC_ETTLTOOLARGE,    /* 11 too large lease TTL */
	MVCC_ETOOMANYLEASES,  /* 8 our limit on leases */
	/* Membership changes (etcd's membership.Err*, as v3rpc maps them). */
	MVCC_EMEMBEREXISTS,   /* 9 member ID already exist */
	MVCC_EMEMBERNOTFOUND, /* 5 member not found */
	MVCC_EMEMBERREMOVED,  /* 5 member not found (etcd's ErrIDRemoved) */
	MVCC_EPEERURLEXISTS,  /* 9 Peer URLs already exists */
	MVCC_ETOOMANYLEARNERS, /* 9 too many learner members in cluster */
	MVCC_ENOTLEARNER,     /* 9 can only promote a learner member */
};

/*
 * The gRPC status code and etcd's message for err (a negative MVCC_E* or
 * errno). Unknown errnos map to code 13 (Internal).
 */
void mvcc_strerror(int err, uint32_t *ret_code, const char **ret_msg);

struct mvcc_options {
	size_t write_buffer_size;  /* per column family memtable; 0: 16 MiB */
	size_t block_cache_size;   /* shared; 0: 8 MiB */
};

/*
 * Opens (creating if missing) the store in directory path, rebuilds the key
 * index and finishes a compaction that a crash interrupted. On failure
 * returns -errno and, if ret_err is not NULL, a malloc'd message in *ret_err.
 */
int mvcc_open(const char *path, const struct mvcc_options *opt,
	      struct mvcc **ret_m, char **ret_err);
/* Closes the store (a batch in progress is dropped). NULL is a no-op. */
void mvcc_close(struct mvcc *m);

uint64_t mvcc_applied(const struct mvcc *m);
int64_t mvcc_rev(const struct mvcc *m);
/* The last compaction's revision, -1 if none yet. */
int64_t mvcc_compact_rev(const struct mvcc *m);
size_t mvcc_key_count(const struct mvcc *m);
/* Keys that exist now (etcd's keys_total: deleted ones do not count). */
size_t mvcc_live_keys(const struct mvcc *m);

/* Writes the RocksDB WAL to disk and syncs it (for durable_index). */
int mvcc_sync(struct mvcc *m);
/*
 * Makes a RocksDB checkpoint of the store in directory dir (which must not
 * exist), consistent with *ret_applied, the applied index recorded in it.
 * Outside a batch only. On failure -errno and, if ret_err is not NULL, a
 * malloc'd message.
 */
int mvcc_checkpoint(struct mvcc *m, const char *dir, uint64_t *ret_applied,
		    char **ret_err);
/* Bytes the store takes on disk, and an estimate of the bytes in use. */
int mvcc_disk_usage(struct mvcc *m, int64_t *ret_size, int64_t *ret_inuse);

/* Batches of applied entries. */
int mvcc_batch_begin(struct mvcc *m);
/* Marks index applied (entries <= mvcc_applied() are to be skipped). */
void mvcc_batch_set_applied(struct mvcc *m, uint64_t index);
/*
 * Writes the batch (with the applied index) to RocksDB, then removes what a
 * compaction in the batch freed. On a write failure the store is unusable
 * (the in-memory index has moved on): the caller must exit.
 */
int mvcc_batch_commit(struct mvcc *m);

/*
 * The requests. Each builds its response in arena a (valid until the arena
 * is cleared) and returns 0, or a negative MVCC_E* without changing the store.
 * Writes must be inside a batch. Range and a write-free Txn may also run
 * outside one, as reads.
 */
int mvcc_range(struct mvcc *m, const Etcdserverpb__RangeRequest *r,
	       struct arena *a, Etcdserverpb__RangeResponse **ret);
int mvcc_put(struct mvcc *m, const Etcdserverpb__PutRequest *r,
	     struct arena *a, Etcdserverpb__PutResponse **ret);
int mvcc_delete_range(struct mvcc *m, const Etcdserverpb__DeleteRangeRequest *r,
		      struct arena *a, Etcdserverpb__DeleteRangeResponse **ret);
int mvcc_txn(struct mvcc *m, const Etcdserverpb__TxnRequest *r,
	     struct arena *a, Etcdserverpb__TxnResponse **ret);
int mvcc_compact(struct mvcc *m, const Etcdserverpb__CompactionRequest *r,
		 struct arena *a, Etcdserverpb__CompactionResponse **ret);

/*
 * A write of the last committed batch, as the watch hub turns it into an
 * event: a put (kv: the packed mvccpb.KeyValue written) or a delete of key.
 * prev_main > 0 names the revision holding the key's value before the write.
 */
struct mvcc_change {
	int64_t main;
	uint32_t sub;
	uint32_t del;
	const uint8_t *key; /* in the store's batch memory */
	uint32_t klen;
	uint32_t kvlen;
	const uint8_t *kv;  /* put only; in the store's batch memory */
	int64_t prev_main;
	uint32_t prev_sub;
};

/*
 * The writes of the last batch in revision order (valid from its commit
 * until the next mvcc_batch_begin).
 */
const struct mvcc_change *mvcc_changes(const struct mvcc *m, size_t *ret_n);

/* The key-value stored at revision (main, sub), unpacked into a; -ENOENT if
 * it is not stored (compacted). */
int mvcc_kv_rev(struct mvcc *m, int64_t main, uint32_t sub, struct arena *a,
		Mvccpb__KeyValue **ret);
/* The value key had just before revision rev (etcd's prev_kv of an event at
 * rev), unpacked into a; -ENOENT if the key did not exist or is compacted. */
int mvcc_kv_before(struct mvcc *m, const uint8_t *key, size_t klen,
		   int64_t rev, struct arena *a, Mvccpb__KeyValue **ret);

/* A stored revision, as the watch hub reads history. */
struct mvcc_rec {
	int64_t main;
	uint32_t sub;
	int tomb;
	const uint8_t *kv; /* packed mvccpb.KeyValue; borrowed for the call */
	size_t kvlen;
};

/*
 * Reads stored revisions in order, from (*pos_main, *pos_sub) up to main
 * revision upto, at most max of them, calling fn for each (a non-zero
 * return of fn stops the scan and is returned). Outside a batch only.
 * *pos is left at the revision after the last one read. Returns 1 when
 * everything up to upto was read, 0 when max stopped it, or -errno.
 */
int mvcc_scan(struct mvcc *m, int64_t *pos_main, uint32_t *pos_sub,
	      int64_t upto, size_t max,
	      int (*fn)(const struct mvcc_rec *r, void *arg), void *arg);

/* Revisions the compactions removed from the store, in total since open. */
uint64_t mvcc_compacted_keys(const struct mvcc *m);

/*
 * The v2 keys store (v2store.h), kept in the "v2" column family: its
 * changes join the current batch, its index is recorded with the applied
 * index. Loaded at open; owned by the store.
 */
struct v2store *mvcc_v2(struct mvcc *m);

/*
 * The members column family: member ID -> packed etcdserverpb.Member.
 * Writes go into the current batch.
 */
int mvcc_member_put(struct mvcc *m, const Etcdserverpb__Member *mb);
/* Deletes member id and records id as removed, for good (etcd's
 * members_removed bucket): a removed ID cannot come back. */
int mvcc_member_delete(struct mvcc *m, uint64_t id);
/* Whether id was removed from the cluster (1) or not (0). */
int mvcc_member_removed(const struct mvcc *m, uint64_t id);
/* Every removed ID, sorted (borrowed: valid until the next change). */
const uint64_t *mvcc_members_removed(const struct mvcc *m, size_t *ret_n);
/* The member with id, unpacked into a, or -ENOENT. */
int mvcc_member_get(struct mvcc *m, uint64_t id, struct arena *a,
		    Etcdserverpb__Member **ret);
/* Every member, sorted by ID, unpacked into a. */
int mvcc_member_list(struct mvcc *m, struct arena *a,
		     Etcdserverpb__Member ***ret_members, size_t *ret_n);
/*
 * etcd's publish, applied (inside a batch): member r->member_id's name and
 * client URLs become those published. An unknown member is ignored (it may
 * have been removed meanwhile), as etcd ignores it.
 */
int mvcc_member_attr_set(struct mvcc *m,
			 const Etcdserverpb__ClusterMemberAttrSetRequest *r,
			 struct arena *a);
/*
 * Whether member id's record holds name and client URLs urls[0..n): 1 if
 * it does, 0 if not, -ENOENT if there is no record.
 */
int mvcc_member_attr_equal(struct mvcc *m, uint64_t id, const char *name,
			   char *const *urls, size_t n);

#endif
