/* The apply of v2 requests and the local reads, as etcd's apply_v2.go. */
#include <errno.h>
#include <string.h>

#include "v2apply.h"

static const char *str(const char *s)
{
	return s ? s : "";
}

Ipc__V2Result *v2_result(struct arena *a, const struct v2_out *o, int more)
{
	Ipc__V2Result *r = ARENA_NEW(a, Ipc__V2Result, IPC__V2_RESULT__INIT);
	if (!r)
		return NULL;
	r->status = o->status;
	r->body.data = (uint8_t *)o->body;
	r->body.len = o->len;
	r->etcd_index = o->etcd_index;
	r->more = more;
	return r;
}

static int put(struct v2store *s, const Etcdserverpb__Request *r,
	       struct arena *a, struct v2_out *o)
{
	const char *path = str(r->path), *val = str(r->val);
	const char *prev = str(r->prevvalue);
	int refresh = r->has_refresh && r->refresh;
	int64_t exp = r->expiration;
	if (r->has_prevexist) {
		if (!r->prevexist)
			return v2_create(s, path, r->dir, val, 0, exp, a, o);
		if (r->previndex == 0 && !prev[0])
			return v2_update(s, path, val, exp, refresh, a, o);
		return v2_cas(s, path, prev, r->previndex, val, exp, refresh,
			      a, o);
	}
	if (r->previndex > 0 || prev[0])
		return v2_cas(s, path, prev, r->previndex, val, exp, refresh,
			      a, o);
	/* etcd's member attributes and cluster version keys live under its
	 * "/0" namespace, which clients cannot reach: nothing to divert. */
	return v2_set(s, path, r->dir, val, exp, refresh, a, o);
}

int v2_apply(struct v2store *s, const Etcdserverpb__Request *r,
	     struct arena *a, Ipc__V2Result **ret)
{
	const char *m = str(r->method), *path = str(r->path);
	const char *prev = str(r->prevvalue);
	struct v2_out o;
	int err;
	if (strcmp(m, "SYNC") == 0) {
		*ret = NULL;
		return v2_expire(s, r->time);
	}
	if (strcmp(m, "PUT") == 0)
		err = put(s, r, a, &o);
	else if (strcmp(m, "POST") == 0)
		err = v2_create(s, path, r->dir, str(r->val), 1, r->expiration,
				a, &o);
	else if (strcmp(m, "DELETE") == 0)
		err = r->previndex > 0 || prev[0]
			      ? v2_cad(s, path, prev, r->previndex, a, &o)
			      : v2_delete(s, path, r->dir, r->recursive, a, &o);
	else if (strcmp(m, "QGET") == 0)
		err = v2_get(s, path, r->recursive, r->sorted, a, &o);
	else
		/* etcd's ErrUnknownMethod, as its API layer writes an error
		 * that is not the store's. */
		err = v2_error(V2_ERAFTINTERNAL, "etcdserver: unknown method",
			       0, a, &o);
	if (err < 0)
		return err;
	if (!(*ret = v2_result(a, &o, 0)))
		return -ENOMEM;
	return 0;
}

int v2_read(struct v2store *s, const Etcdserverpb__Request *r,
	    struct arena *a, Ipc__V2Result **ret)
{
	struct v2_out o;
	int err = v2_get(s, str(r->path), r->recursive, r->sorted, a, &o);
	if (err < 0)
		return err;
	if (!(*ret = v2_result(a, &o, 0)))
		return -ENOMEM;
	return 0;
}
