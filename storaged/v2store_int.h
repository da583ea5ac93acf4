/*
 * What the files of the v2 store share (v2store*.c): nodes, events, the
 * history ring, watchers and the JSON writer. Nothing else includes this.
 */
#ifndef STORAGED_V2STORE_INT_H
#define STORAGED_V2STORE_INT_H

#include "smap.h"
#include "v2store.h"

#define V2_NOHEAP ((size_t)-1)

struct v2_node {
	struct v2_node *parent;   /* NULL for the root */
	char *path;               /* owned, cleaned */
	size_t plen;
	const char *name;         /* the last component, inside path */
	size_t nlen;
	char *value;              /* owned; files only */
	size_t vlen;
	int dir;
	uint64_t created, modified;
	int64_t expire;           /* unix ns; 0: permanent */
	size_t heap_pos;          /* in the TTL heap, or V2_NOHEAP */
	struct v2_node **kids;    /* directories: sorted by name */
	size_t nkids, capkids;
};

/* Event actions (etcd's strings in v2_action_name). */
enum v2_action {
	V2A_GET,
	V2A_CREATE,
	V2A_SET,
	V2A_UPDATE,
	V2A_DELETE,
	V2A_CAS,
	V2A_CAD,
	V2A_EXPIRE,
};
const char *v2_action_name(enum v2_action a);

/*
 * An event as the history keeps it: what the scan of a wait compares and
 * the JSON written once. One allocation, reference counted (the history
 * and the fired waits share it).
 */
struct v2_event {
	int refs;
	uint64_t index;      /* its node's modifiedIndex */
	uint8_t action;
	uint8_t refresh;     /* not shown to waits (etcd's Refresh) */
	uint8_t prev_dir;    /* the previous node was a directory */
	const char *key;     /* node key, inside this allocation */
	size_t klen;
	const char *prev_key; /* NULL without a previous node */
	size_t pklen;
	uint8_t *json;
	size_t jlen;
};
void v2_event_unref(struct v2_event *e);

/* A growable buffer; oom is sticky and checked once at the end. */
struct jbuf {
	char *p;
	size_t len, cap;
	int oom;
};
void jb_put(struct jbuf *b, const void *p, size_t n);
void jb_puts(struct jbuf *b, const char *s);
void jb_u64(struct jbuf *b, uint64_t v);
void jb_i64(struct jbuf *b, int64_t v);
/* A JSON string as Go's encoding/json writes it (HTML-safe). */
void jb_str(struct jbuf *b, const char *s, size_t n);
/* A time as Go marshals time.Time in UTC (RFC 3339, nanoseconds trimmed). */
void jb_time(struct jbuf *b, int64_t unix_ns);

/* A NodeExtern without children, as events carry them. */
struct v2_ext {
	const char *key;     /* NULL or "/": no key (etcd's trimmed root) */
	size_t klen;
	const char *value;   /* NULL: no "value" */
	size_t vlen;
	int dir;
	int64_t expire;
	uint64_t modified, created;
};
/* n as etcd's Repr(false, false) shows it. */
void v2_ext_of(const struct v2_node *n, struct v2_ext *x);

/* JSON writers (v2store_json.c); now is for "ttl". */
void json_ext(struct jbuf *b, const struct v2_ext *x, int64_t now);
void json_event(struct jbuf *b, enum v2_action a, const struct v2_ext *node,
		const struct v2_ext *prev, int64_t now);
/* GET: n with its children (all levels if recursive), hidden ones left out. */
void json_get(struct jbuf *b, const struct v2_node *n, int recursive,
	      int64_t now);
void json_error(struct jbuf *b, uint32_t code, const char *cause,
		size_t clen, uint64_t index);
/* etcd's ttl: whole seconds left, rounded up; 0 when none. */
int64_t v2_ttl(int64_t expire, int64_t now);

struct v2store {
	struct v2_node *root;
	uint64_t index;
	size_t nnodes;
	struct v2_node **heap;    /* TTL min-heap by expire */
	size_t nheap, capheap;
	int64_t (*now)(void);
	struct v2_persist persist;
	struct jbuf jb;           /* scratch for one answer */

	/* History: a ring of the last events (etcd's EventHistory). */
	struct v2_event *hist[V2_HISTORY_MAX];
	size_t hfront, hn;
	uint64_t hstart, hlast;   /* StartIndex, LastIndex */
	size_t hbytes;

	/* Watchers by key and by id. */
	struct smap wkeys, wids;
	size_t nwatchers;
	struct v2_fire *fired;
	struct v2_event **fired_ev; /* a reference per fired entry */
	size_t nfired, capfired;
};

/* v2store_watch.c */
/* Adds e to the history (reference taken). */
int v2w_history_add(struct v2store *s, struct v2_event *e);
/* etcd's notifyWatchers(e, path, deleted). */
int v2w_notify_path(struct v2store *s, struct v2_event *e, const char *path,
		    size_t plen, int deleted);
/* etcd's notify(e): history, then every prefix of the event's key. */
int v2w_notify(struct v2store *s, struct v2_event *e);
void v2w_free(struct v2store *s);

/* v2store_node.c: the tree and the TTL heap. */
int64_t v2_now(const struct v2store *s);
struct v2_node *v2_node_new(struct v2store *s, const char *path, size_t plen,
			    int dir, const char *value, size_t vlen,
			    uint64_t index, int64_t expire);
/* Frees n and what it holds (n must be detached and out of the heap,
 * and so must what it holds). NULL is a no-op. */
void v2_node_free(struct v2store *s, struct v2_node *n);
struct v2_node *v2_child(const struct v2_node *d, const char *name,
			 size_t len);
/* -EEXIST if d has a child of that name. */
int v2_add_child(struct v2_node *d, struct v2_node *n);
void v2_detach(struct v2_node *n);
int v2_heap_push(struct v2store *s, struct v2_node *n);
void v2_heap_remove(struct v2store *s, struct v2_node *n);
struct v2_node *v2_heap_top(const struct v2store *s);
/* etcd's UpdateTTL (expire 0: permanent). */
int v2_update_ttl(struct v2store *s, struct v2_node *n, int64_t expire);
/*
 * etcd's internalGet of a cleaned path: 0 and *ret, or -1 with etcd's code
 * and cause (pointing into path or a node's path).
 */
int v2_lookup(struct v2store *s, const char *path, size_t plen,
	      struct v2_node **ret, uint32_t *ret_code, const char **ret_cause,
	      size_t *ret_clen);

#endif
