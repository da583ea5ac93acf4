/*
 * v2 keys requests (etcdserverpb.Request) on the v2 store: the writes of
 * committed entries as etcd's applierV2store applies them, and local reads.
 * Answers are ipc.V2Result built in an arena. No event loop, no logging.
 */
#ifndef STORAGED_V2APPLY_H
#define STORAGED_V2APPLY_H

#include "arena.h"
#include "ipc.pb-c.h"
#include "v2.pb-c.h"
#include "v2store.h"

/*
 * Applies r (Method PUT, POST, DELETE, QGET or SYNC). *ret is its answer
 * (etcd's event or error), NULL for SYNC, which nobody waits for. Returns
 * 0, or a negative errno after which the store is lost.
 */
int v2_apply(struct v2store *s, const Etcdserverpb__Request *r,
	     struct arena *a, Ipc__V2Result **ret);
/* A local GET (or HEAD) without wait. */
int v2_read(struct v2store *s, const Etcdserverpb__Request *r,
	    struct arena *a, Ipc__V2Result **ret);
/* An answer as a V2Result in a. */
Ipc__V2Result *v2_result(struct arena *a, const struct v2_out *o, int more);

#endif
