/*
 * etcd 3.4's v2 keys store (etcdserver/api/v2store), in memory: a tree of
 * directories and files, the store index, TTLs and their expiry, the last
 * 1000 events and the watchers waiting for the next. Every answer is the
 * JSON body etcd's v2 HTTP API writes, with its status and X-Etcd-Index.
 *
 * No I/O, no clock but the one given, no logging: mvcc_v2.c keeps it in
 * RocksDB through the persistence hooks, storaged_v2.c serves it.
 *
 * User keys live where etcd keeps them under its "/1" namespace: the root
 * "/" here is etcd's "/1", so it shows without key or indexes, as etcd
 * shows it once the prefix is trimmed.
 */
#ifndef STORAGED_V2STORE_H
#define STORAGED_V2STORE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct v2store;

/* etcd's v2error codes the store returns. */
enum {
	V2_EKEYNOTFOUND = 100,
	V2_ETESTFAILED = 101,
	V2_ENOTFILE = 102,
	V2_ENOTDIR = 104,
	V2_ENODEEXIST = 105,
	V2_EROOTRONLY = 107,
	V2_EDIRNOTEMPTY = 108,
	V2_ERAFTINTERNAL = 300,
	V2_EWATCHERCLEARED = 400,
	V2_EEVENTINDEXCLEARED = 401,
};

/* Events kept for waits with an index (etcd's watcherHub capacity). */
#define V2_HISTORY_MAX 1000
/* ... and the bytes they may take: past it the oldest go earlier. */
#define V2_HISTORY_BYTES_MAX (64u << 20)
/* Waits pending at once. */
#define V2_WATCHERS_MAX 10000

/* A node as it is persisted (ipc.V2Node plus its path). */
struct v2_rec {
	const char *path;
	size_t plen;
	const char *value; /* files; NULL for a directory */
	size_t vlen;
	int dir;
	uint64_t created, modified;
	int64_t expire;    /* unix ns; 0: permanent */
};

/*
 * Persistence: called while an operation changes the tree, for every node
 * written (created, changed, its TTL changed) and every node removed
 * (each node of a removed directory). A negative errno aborts the
 * operation half done: the caller must treat the store as lost.
 */
struct v2_persist {
	int (*put)(void *arg, const struct v2_rec *n);
	int (*del)(void *arg, const char *path, size_t plen);
	void *arg;
};

/* One answer: HTTP status, X-Etcd-Index and the JSON body ending in "\n". */
struct v2_out {
	uint32_t status;
	uint64_t etcd_index;
	const uint8_t *body; /* in the arena given to the call */
	size_t len;
};

/* now: unix ns (NULL: the real clock), for the "ttl" shown. */
int v2_new(int64_t (*now)(void), struct v2store **ret);
void v2_free(struct v2store *s);
void v2_set_persist(struct v2store *s, const struct v2_persist *p);
void v2_set_clock(struct v2store *s, int64_t (*now)(void));

uint64_t v2_index(const struct v2store *s);
size_t v2_node_count(const struct v2store *s);
/* The earliest expiration of a node, 0 if no node has a TTL. */
int64_t v2_next_expiry(const struct v2store *s);

/*
 * Loading a persisted store: nodes in any order that puts a directory before
 * what it holds (RocksDB's key order does), then the index. The history
 * starts empty after index: older wait indexes are "cleared". Not persisted
 * again. -EINVAL for a node whose parent is missing or not a directory.
 */
int v2_load_node(struct v2store *s, const struct v2_rec *n);
void v2_load_index(struct v2store *s, uint64_t index);

/*
 * The operations, as etcd's store names them. path is the key as the
 * client gave it (cleaned here as etcd cleans it); values are NUL-ended.
 * expire is unix ns, 0: no TTL. Each fills *out (an event or etcd's error)
 * and returns 0, or a negative errno (out of memory, persistence) after
 * which the store cannot be trusted.
 */
int v2_get(struct v2store *s, const char *path, int recursive, int sorted,
	   struct arena *a, struct v2_out *out);
int v2_set(struct v2store *s, const char *path, int dir, const char *value,
	   int64_t expire, int refresh, struct arena *a, struct v2_out *out);
/* unique: an in-order key (a 20-digit index) is made under path. */
int v2_create(struct v2store *s, const char *path, int dir, const char *value,
	      int unique, int64_t expire, struct arena *a, struct v2_out *out);
int v2_update(struct v2store *s, const char *path, const char *value,
	      int64_t expire, int refresh, struct arena *a, struct v2_out *out);
int v2_cas(struct v2store *s, const char *path, const char *prev_value,
	   uint64_t prev_index, const char *value, int64_t expire, int refresh,
	   struct arena *a, struct v2_out *out);
int v2_delete(struct v2store *s, const char *path, int dir, int recursive,
	      struct arena *a, struct v2_out *out);
int v2_cad(struct v2store *s, const char *path, const char *prev_value,
	   uint64_t prev_index, struct arena *a, struct v2_out *out);
/* etcd's DeleteExpiredKeys: every node expiring at or before cutoff goes,
 * each with an "expire" event. */
int v2_expire(struct v2store *s, int64_t cutoff);

/* etcd's error body for code with cause (NULL: none) at index. */
int v2_error(uint32_t code, const char *cause, uint64_t index,
	     struct arena *a, struct v2_out *out);

/*
 * A wait (GET wait=true): since 0 means the next event. If the history
 * holds a matching event, or the index is too old, *out is the answer and
 * *ret_pending 0; else the wait is registered under id (*ret_pending 1)
 * and fires through v2_fired(). A stream wait answered from the history
 * gets that event only, as etcd's. -ENOBUFS past V2_WATCHERS_MAX.
 */
int v2_watch(struct v2store *s, uint64_t id, const char *path, int recursive,
	     int stream, uint64_t since, struct arena *a, struct v2_out *out,
	     int *ret_pending);
/* Drops wait id (a client gone); unknown ids are ignored. */
void v2_unwatch(struct v2store *s, uint64_t id);
size_t v2_watcher_count(const struct v2store *s);

/* A wait that an operation answered, kept until v2_fired_clear(). */
struct v2_fire {
	uint64_t id;
	uint64_t etcd_index; /* the index when the wait began */
	int more;            /* a stream: the wait goes on */
	const uint8_t *body; /* the event, borrowed */
	size_t len;
};
const struct v2_fire *v2_fired(const struct v2store *s, size_t *ret_n);
void v2_fired_clear(struct v2store *s);

/* Ends every wait: fn (if not NULL) gets each id. */
void v2_unwatch_all(struct v2store *s, void (*fn)(uint64_t id, void *arg),
		    void *arg);

/* Go's path.Clean(path.Join("/", p)) into out (strlen(p) + 2 bytes). */
size_t v2_clean_path(const char *p, char *out);

#endif
