/*
 * The v2 store's operations, in the order and with the errors of etcd 3.4's
 * v2store/store.go: Get, Set, Create (in-order keys too), Update,
 * CompareAndSwap, Delete, CompareAndDelete, DeleteExpiredKeys. Every
 * change goes to the persistence hooks as it is made.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v2store_int.h"

/* etcd treats expirations before 2000-01-01 as none (minExpireTime). */
#define MIN_EXPIRE_NS (946684800LL * 1000000000LL)

/* A cleaned path on the heap for the length of one operation. */
struct cpath {
	char *p;
	size_t len;
};

static int clean(const char *path, const char *suffix, struct cpath *ret)
{
	size_t n = strlen(path), sn = suffix ? strlen(suffix) : 0;
	char *tmp = NULL;
	if (suffix) {
		if (!(tmp = malloc(n + sn + 1)))
			return -ENOMEM;
		memcpy(tmp, path, n);
		memcpy(tmp + n, suffix, sn + 1);
		path = tmp;
		n += sn;
	}
	ret->p = malloc(n + 2);
	if (!ret->p) {
		free(tmp);
		return -ENOMEM;
	}
	ret->len = v2_clean_path(path, ret->p);
	free(tmp);
	return 0;
}

static int is_root(const struct cpath *c)
{
	return c->len == 1;
}

static uint32_t error_status(uint32_t code)
{
	switch (code) {
	case 100:
		return 404;
	case 102:
	case 108:
		return 403;
	case 110:
		return 401;
	case 101:
	case 105:
		return 412;
	case 300:
	case 301:
		return 500;
	default:
		return 400;
	}
}

static int out_jb(struct v2store *s, uint32_t status, uint64_t index,
		  struct arena *a, struct v2_out *out)
{
	if (s->jb.oom) {
		s->jb.oom = 0;
		return -ENOMEM;
	}
	out->body = arena_memdup(a, s->jb.p, s->jb.len);
	if (!out->body)
		return -ENOMEM;
	out->len = s->jb.len;
	out->status = status;
	out->etcd_index = index;
	return 0;
}

static int fail(struct v2store *s, uint32_t code, const char *cause,
		size_t clen, uint64_t index, struct arena *a,
		struct v2_out *out)
{
	/* The API layer trims etcd's "/1" prefix from causes: the root's
	 * own path shows as no cause. The literal "/" of 107 stays. */
	if (code != V2_EROOTRONLY && clen == 1 && cause[0] == '/')
		clen = 0;
	s->jb.len = 0;
	json_error(&s->jb, code, cause, clen, index);
	return out_jb(s, error_status(code), index, a, out);
}

int v2_error(uint32_t code, const char *cause, uint64_t index,
	     struct arena *a, struct v2_out *out)
{
	struct jbuf b = { 0 };
	json_error(&b, code, cause, cause ? strlen(cause) : 0, index);
	int ret = -ENOMEM;
	if (!b.oom && (out->body = arena_memdup(a, b.p, b.len))) {
		out->len = b.len;
		out->status = error_status(code);
		out->etcd_index = index;
		ret = 0;
	}
	free(b.p);
	return ret;
}

/* The event of an operation: its JSON written once, in one allocation
 * with the keys the history compares. */
static struct v2_event *event_new(struct v2store *s, enum v2_action act,
				  const struct v2_ext *node,
				  const struct v2_ext *prev)
{
	s->jb.len = 0;
	json_event(&s->jb, act, node, prev, v2_now(s));
	if (s->jb.oom) {
		s->jb.oom = 0;
		return NULL;
	}
	size_t pk = prev ? prev->klen + 1 : 0;
	struct v2_event *e = malloc(sizeof(*e) + node->klen + 1 + pk +
				    s->jb.len);
	if (!e)
		return NULL;
	char *p = (char *)(e + 1);
	e->refs = 1;
	e->index = node->modified;
	e->action = (uint8_t)act;
	e->refresh = 0;
	e->prev_dir = prev ? (uint8_t)prev->dir : 0;
	memcpy(p, node->key, node->klen);
	p[node->klen] = 0;
	e->key = p;
	e->klen = node->klen;
	p += node->klen + 1;
	e->prev_key = NULL;
	e->pklen = 0;
	if (prev) {
		memcpy(p, prev->key, prev->klen);
		p[prev->klen] = 0;
		e->prev_key = p;
		e->pklen = prev->klen;
		p += pk;
	}
	e->json = (uint8_t *)p;
	e->jlen = s->jb.len;
	memcpy(p, s->jb.p, s->jb.len);
	return e;
}

void v2_event_unref(struct v2_event *e)
{
	if (e && --e->refs == 0)
		free(e);
}

/* The answer of a write: its event, 201 for a node made (etcd's
 * IsCreated), X-Etcd-Index = index. */
static int out_event(const struct v2_event *e, int created, uint64_t index,
		     struct arena *a, struct v2_out *out)
{
	out->body = arena_memdup(a, e->json, e->jlen);
	if (!out->body)
		return -ENOMEM;
	out->len = e->jlen;
	out->status = created ? 201 : 200;
	out->etcd_index = index;
	return 0;
}

/* Watchers see the event, except a refresh, which only the history
 * keeps (etcd: WatcherHub.add instead of notify). */
static int publish(struct v2store *s, struct v2_event *e, int refresh)
{
	if (refresh) {
		e->refresh = 1;
		return v2w_history_add(s, e);
	}
	return v2w_notify(s, e);
}

static int persist_put(struct v2store *s, const struct v2_node *n)
{
	if (!s->persist.put)
		return 0;
	struct v2_rec r = {
		.path = n->path, .plen = n->plen,
		.value = n->dir ? NULL : n->value, .vlen = n->vlen,
		.dir = n->dir, .created = n->created, .modified = n->modified,
		.expire = n->expire,
	};
	return s->persist.put(s->persist.arg, &r);
}

static int persist_del(struct v2store *s, const struct v2_node *n)
{
	if (!s->persist.del)
		return 0;
	return s->persist.del(s->persist.arg, n->path, n->plen);
}

/*
 * etcd's node.Remove after its checks: the children first, each one
 * detached, shown to the watchers of its path as deleted by e (if any),
 * taken out of the TTL heap, unpersisted and freed; then n itself.
 */
static int remove_tree(struct v2store *s, struct v2_node *n,
		       struct v2_event *e)
{
	int ret;
	while (n->nkids)
		if ((ret = remove_tree(s, n->kids[n->nkids - 1], e)) < 0)
			return ret;
	v2_detach(n);
	if (e && (ret = v2w_notify_path(s, e, n->path, n->plen, 1)) < 0)
		return ret;
	v2_heap_remove(s, n);
	ret = persist_del(s, n);
	v2_node_free(s, n);
	return ret;
}

int v2_get(struct v2store *s, const char *path, int recursive, int sorted,
	   struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	(void)sorted; /* children are always in key order */
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	if (v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0) {
		ret = fail(s, code, cause, clen, s->index, a, out);
	} else {
		s->jb.len = 0;
		json_get(&s->jb, n, recursive, v2_now(s));
		ret = out_jb(s, 200, s->index, a, out);
	}
	free(c.p);
	return ret;
}

/*
 * etcd's internalCreate: the event of a node made at path (in-order under
 * it if unique), with the missing directories on the way. replace lets a
 * file be replaced: its node, detached, comes back in *ret_old for the
 * caller to free once done with it. On an etcd error *ret_e stays NULL
 * and *out holds the error.
 */
static int internal_create(struct v2store *s, const char *path, int dir,
			   const char *value, int unique, int replace,
			   int64_t expire, enum v2_action act,
			   struct v2_event **ret_e, struct v2_node **ret_old,
			   struct arena *a, struct v2_out *out)
{
	uint64_t cur = s->index, next = cur + 1;
	char suffix[24];
	struct cpath c;
	int ret;
	if (unique)
		snprintf(suffix, sizeof(suffix), "/%020" PRIu64, next);
	if ((ret = clean(path, unique ? suffix : NULL, &c)) < 0)
		return ret;
	if (is_root(&c)) {
		ret = fail(s, V2_EROOTRONLY, "/", 1, cur, a, out);
		goto done;
	}
	if (expire < MIN_EXPIRE_NS)
		expire = 0;

	/* checkDir on every directory of the path: made if missing (at the
	 * new index, permanent), "Not a directory" on a file. */
	struct v2_node *d = s->root;
	size_t i = 1, last = (size_t)((char *)memrchr(c.p, '/', c.len) - c.p);
	while (i < last) {
		size_t j = i;
		while (j < last && c.p[j] != '/')
			j++;
		struct v2_node *k = v2_child(d, c.p + i, j - i);
		if (k && !k->dir) {
			ret = fail(s, V2_ENOTDIR, k->path, k->plen, cur, a, out);
			goto done;
		}
		if (!k) {
			k = v2_node_new(s, c.p, j, 1, NULL, 0, next, 0);
			if (!k) {
				ret = -ENOMEM;
				goto done;
			}
			if ((ret = v2_add_child(d, k)) < 0) {
				v2_node_free(s, k);
				goto done;
			}
			if ((ret = persist_put(s, k)) < 0)
				goto done;
		}
		d = k;
		i = j + 1;
	}

	struct v2_node *old = v2_child(d, c.p + last + 1, c.len - last - 1);
	struct v2_ext prev, node;
	if (old) {
		if (!replace) {
			ret = fail(s, V2_ENODEEXIST, c.p, c.len, cur, a, out);
			goto done;
		}
		if (old->dir) {
			ret = fail(s, V2_ENOTFILE, c.p, c.len, cur, a, out);
			goto done;
		}
		v2_ext_of(old, &prev);
		v2_detach(old);
		v2_heap_remove(s, old);
	}
	struct v2_node *n = v2_node_new(s, c.p, c.len, dir, value,
					dir ? 0 : strlen(value), next, expire);
	if (!n) {
		ret = -ENOMEM;
		goto undo;
	}
	if ((ret = v2_add_child(d, n)) < 0) {
		v2_node_free(s, n);
		goto undo;
	}
	if ((expire && (ret = v2_heap_push(s, n)) < 0) ||
	    (ret = persist_put(s, n)) < 0)
		goto done;
	s->index = next;
	v2_ext_of(n, &node);
	if (!(*ret_e = event_new(s, act, &node, old ? &prev : NULL)))
		ret = -ENOMEM;
	*ret_old = old;
	goto done;
undo:
	/* Only memory failed: put the replaced file back. */
	if (old && v2_add_child(d, old) == 0 && old->expire)
		v2_heap_push(s, old);
done:
	free(c.p);
	return ret;
}

int v2_create(struct v2store *s, const char *path, int dir, const char *value,
	      int unique, int64_t expire, struct arena *a, struct v2_out *out)
{
	struct v2_event *e = NULL;
	struct v2_node *old = NULL;
	int ret = internal_create(s, path, dir, value, unique, 0, expire,
				  V2A_CREATE, &e, &old, a, out);
	if (ret < 0 || !e)
		return ret;
	if ((ret = out_event(e, 1, s->index, a, out)) == 0)
		ret = publish(s, e, 0);
	v2_event_unref(e);
	return ret;
}

int v2_set(struct v2store *s, const char *path, int dir, const char *value,
	   int64_t expire, int refresh, struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n, *old = NULL;
	struct v2_event *e = NULL;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	int missing = v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0;
	if (missing && (code != V2_EKEYNOTFOUND || refresh)) {
		ret = fail(s, code, cause, clen, s->index, a, out);
		goto done;
	}
	/* A refresh keeps the value (and, with the node replaced, shows a
	 * new createdIndex, as etcd's does). */
	if (refresh && !n->dir)
		value = n->value;
	ret = internal_create(s, c.p, dir, value, 0, 1, expire, V2A_SET, &e,
			      &old, a, out);
	if (ret < 0 || !e)
		goto done;
	if ((ret = out_event(e, missing, s->index, a, out)) == 0)
		ret = publish(s, e, refresh);
done:
	v2_event_unref(e);
	v2_node_free(s, old);
	free(c.p);
	return ret;
}

int v2_update(struct v2store *s, const char *path, const char *value,
	      int64_t expire, int refresh, struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	uint64_t cur = s->index, next = cur + 1;
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	if (is_root(&c)) {
		ret = fail(s, V2_EROOTRONLY, "/", 1, cur, a, out);
		goto done;
	}
	if (v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0) {
		ret = fail(s, code, cause, clen, cur, a, out);
		goto done;
	}
	if (n->dir && value[0]) {
		ret = fail(s, V2_ENOTFILE, c.p, c.len, cur, a, out);
		goto done;
	}
	if (refresh)
		value = n->dir ? "" : n->value;
	struct v2_ext prev, node;
	v2_ext_of(n, &prev);
	char *oldval = NULL;
	if (!n->dir) {
		/* A directory's Write fails in etcd: its modifiedIndex stays,
		 * though the event shows the new index. */
		size_t vl = strlen(value);
		char *v = malloc(vl + 1);
		if (!v) {
			ret = -ENOMEM;
			goto done;
		}
		memcpy(v, value, vl + 1);
		oldval = n->value;
		n->value = v;
		n->vlen = vl;
		n->modified = next;
	}
	/* The previous node's value stays readable until the event is
	 * written. */
	if ((ret = v2_update_ttl(s, n, expire)) == 0 &&
	    (ret = persist_put(s, n)) == 0) {
		v2_ext_of(n, &node);
		node.modified = next;
		struct v2_event *e = event_new(s, V2A_UPDATE, &node, &prev);
		if (!e) {
			ret = -ENOMEM;
		} else {
			s->index = next;
			if ((ret = out_event(e, 0, next, a, out)) == 0)
				ret = publish(s, e, refresh);
			v2_event_unref(e);
		}
	}
	free(oldval);
done:
	free(c.p);
	return ret;
}

/* etcd's Compare: 0 on a match, else the cause of the failure in b. */
static int compare(struct v2store *s, const struct v2_node *n,
		   const char *prev_value, uint64_t prev_index)
{
	int index_ok = prev_index == 0 || n->modified == prev_index;
	int value_ok = !prev_value[0] || strcmp(n->value, prev_value) == 0;
	if (index_ok && value_ok)
		return 0;
	struct jbuf *b = &s->jb;
	b->len = 0;
	if (!value_ok) {
		jb_puts(b, "[");
		jb_puts(b, prev_value);
		jb_puts(b, " != ");
		jb_put(b, n->value, n->vlen);
		jb_puts(b, "]");
	}
	if (!index_ok) {
		jb_puts(b, value_ok ? "[" : " [");
		jb_u64(b, prev_index);
		jb_puts(b, " != ");
		jb_u64(b, n->modified);
		jb_puts(b, "]");
	}
	return 1;
}

static int compare_fail(struct v2store *s, struct arena *a,
			struct v2_out *out)
{
	if (s->jb.oom) {
		s->jb.oom = 0;
		return -ENOMEM;
	}
	/* The cause is in the scratch buffer the error is written to. */
	char *cause = malloc(s->jb.len);
	if (!cause)
		return -ENOMEM;
	size_t clen = s->jb.len;
	memcpy(cause, s->jb.p, clen);
	int ret = fail(s, V2_ETESTFAILED, cause, clen, s->index, a, out);
	free(cause);
	return ret;
}

int v2_cas(struct v2store *s, const char *path, const char *prev_value,
	   uint64_t prev_index, const char *value, int64_t expire, int refresh,
	   struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	if (is_root(&c)) {
		ret = fail(s, V2_EROOTRONLY, "/", 1, s->index, a, out);
		goto done;
	}
	if (v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0) {
		ret = fail(s, code, cause, clen, s->index, a, out);
		goto done;
	}
	if (n->dir) {
		ret = fail(s, V2_ENOTFILE, c.p, c.len, s->index, a, out);
		goto done;
	}
	if (compare(s, n, prev_value, prev_index)) {
		ret = compare_fail(s, a, out);
		goto done;
	}
	if (refresh)
		value = n->value;
	size_t vl = strlen(value);
	char *v = malloc(vl + 1);
	if (!v) {
		ret = -ENOMEM;
		goto done;
	}
	memcpy(v, value, vl + 1);
	struct v2_ext prev, node;
	v2_ext_of(n, &prev);
	char *oldval = n->value;
	s->index++;
	n->value = v;
	n->vlen = vl;
	n->modified = s->index;
	if ((ret = v2_update_ttl(s, n, expire)) == 0 &&
	    (ret = persist_put(s, n)) == 0) {
		v2_ext_of(n, &node);
		struct v2_event *e = event_new(s, V2A_CAS, &node, &prev);
		if (!e) {
			ret = -ENOMEM;
		} else {
			if ((ret = out_event(e, 0, s->index, a, out)) == 0)
				ret = publish(s, e, refresh);
			v2_event_unref(e);
		}
	}
	free(oldval);
done:
	free(c.p);
	return ret;
}

/* The event of a node about to be removed (Delete, CompareAndDelete,
 * expiry): no value, the new index, the node as it was before. */
static struct v2_event *removal_event(struct v2store *s, enum v2_action act,
				      const struct v2_node *n, uint64_t index)
{
	struct v2_ext node = { 0 }, prev;
	v2_ext_of(n, &prev);
	node.key = n->path;
	node.klen = n->plen;
	/* CompareAndDelete only removes files; etcd marks no dir there. */
	node.dir = act != V2A_CAD && n->dir;
	node.modified = index;
	node.created = n->created;
	return event_new(s, act, &node, &prev);
}

/* Removes n with event e: its watchers, the history, the index. */
static int remove_with(struct v2store *s, struct v2_node *n,
		       struct v2_event *e, struct arena *a, struct v2_out *out)
{
	int ret = out ? out_event(e, 0, e->index, a, out) : 0;
	if (ret == 0)
		ret = remove_tree(s, n, e);
	s->index = e->index;
	if (ret == 0)
		ret = v2w_notify(s, e);
	v2_event_unref(e);
	return ret;
}

int v2_delete(struct v2store *s, const char *path, int dir, int recursive,
	      struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	if (is_root(&c)) {
		ret = fail(s, V2_EROOTRONLY, "/", 1, s->index, a, out);
		goto done;
	}
	if (recursive)
		dir = 1;
	if (v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0) {
		ret = fail(s, code, cause, clen, s->index, a, out);
		goto done;
	}
	/* node.Remove's checks, before anything goes. */
	if (n->dir && !dir) {
		ret = fail(s, V2_ENOTFILE, n->path, n->plen, s->index, a, out);
		goto done;
	}
	if (n->dir && n->nkids && !recursive) {
		ret = fail(s, V2_EDIRNOTEMPTY, n->path, n->plen, s->index, a,
			   out);
		goto done;
	}
	struct v2_event *e = removal_event(s, V2A_DELETE, n, s->index + 1);
	ret = e ? remove_with(s, n, e, a, out) : -ENOMEM;
done:
	free(c.p);
	return ret;
}

int v2_cad(struct v2store *s, const char *path, const char *prev_value,
	   uint64_t prev_index, struct arena *a, struct v2_out *out)
{
	struct cpath c;
	struct v2_node *n;
	uint32_t code;
	const char *cause;
	size_t clen;
	int ret;
	if ((ret = clean(path, NULL, &c)) < 0)
		return ret;
	/* etcd checks no read-only root here: the root is a directory. */
	if (v2_lookup(s, c.p, c.len, &n, &code, &cause, &clen) < 0) {
		ret = fail(s, code, cause, clen, s->index, a, out);
		goto done;
	}
	if (n->dir) {
		ret = fail(s, V2_ENOTFILE, c.p, c.len, s->index, a, out);
		goto done;
	}
	if (compare(s, n, prev_value, prev_index)) {
		ret = compare_fail(s, a, out);
		goto done;
	}
	struct v2_event *e = removal_event(s, V2A_CAD, n, s->index + 1);
	ret = e ? remove_with(s, n, e, a, out) : -ENOMEM;
done:
	free(c.p);
	return ret;
}

int v2_expire(struct v2store *s, int64_t cutoff)
{
	struct v2_node *n;
	while ((n = v2_heap_top(s)) && n->expire <= cutoff) {
		struct v2_event *e = removal_event(s, V2A_EXPIRE, n,
						   s->index + 1);
		if (!e)
			return -ENOMEM;
		v2_heap_remove(s, n);
		int ret = remove_with(s, n, e, NULL, NULL);
		if (ret < 0)
			return ret;
	}
	return 0;
}
