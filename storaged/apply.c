/* Decodes committed entries once and applies them to the MVCC store. */
#include <errno.h>
#include <string.h>

#include "apply.h"
#include "confchange.h"
#include "lease.h"
#include "raft_internal.pb-c.h"
#include "v2apply.h"

void apply_set_error(Ipc__Result *res, struct arena *a, int err)
{
	uint32_t code;
	const char *msg;
	mvcc_strerror(err, &code, &msg);
	Ipc__Error *e = ARENA_NEW(a, Ipc__Error, IPC__ERROR__INIT);
	e->code = code;
	/* protobuf-c only reads it. */
	e->message = (char *)msg;
	res->error = e;
	res->response_case = IPC__RESULT__RESPONSE__NOT_SET;
}

static int is_etcd_error(int err)
{
	return err <= -MVCC_EBASE;
}

static int apply_request(struct mvcc *m,
			 const Etcdserverpb__InternalRaftRequest *r,
			 struct arena *a, Ipc__Result *res)
{
	int err;
	if (r->put) {
		res->response_case = IPC__RESULT__RESPONSE_PUT;
		err = mvcc_put(m, r->put, a, &res->put);
	} else if (r->delete_range) {
		res->response_case = IPC__RESULT__RESPONSE_DELETE_RANGE;
		err = mvcc_delete_range(m, r->delete_range, a,
					&res->delete_range);
	} else if (r->txn) {
		res->response_case = IPC__RESULT__RESPONSE_TXN;
		err = mvcc_txn(m, r->txn, a, &res->txn);
	} else if (r->range) {
		res->response_case = IPC__RESULT__RESPONSE_RANGE;
		err = mvcc_range(m, r->range, a, &res->range);
	} else if (r->compaction) {
		res->response_case = IPC__RESULT__RESPONSE_COMPACTION;
		err = mvcc_compact(m, r->compaction, a, &res->compaction);
	} else if (r->lease_grant) {
		res->response_case = IPC__RESULT__RESPONSE_LEASE_GRANT;
		err = lessor_grant(m, r->lease_grant, a, &res->lease_grant);
	} else if (r->lease_revoke) {
		res->response_case = IPC__RESULT__RESPONSE_LEASE_REVOKE;
		err = lessor_revoke(m, r->lease_revoke, a, &res->lease_revoke);
	} else if (r->v2) {
		/* etcd's v2 keys API: the answer, event or error, is in
		 * res->v2 (none for the leader's SYNC). */
		return v2_apply(mvcc_v2(m), r->v2, a, &res->v2);
	} else if (r->cluster_member_attr_set) {
		/* A member's publish: nobody waits for an answer. */
		return mvcc_member_attr_set(m, r->cluster_member_attr_set, a);
	} else {
		/* Refused consistently on every member (lease checkpoints
		 * and auth come later). */
		err = -MVCC_EUNSUPPORTED;
	}
	if (err < 0 && !is_etcd_error(err))
		return err;
	if (err < 0)
		apply_set_error(res, a, err);
	return 0;
}

int apply_entry(struct mvcc *m, const Raftpb__Entry *e, struct arena *a,
		uint64_t *ret_id, Ipc__Result **ret_res)
{
	if (e->index <= mvcc_applied(m))
		return 0;
	int ret = 0;
	switch (e->type) {
	case RAFTPB__ENTRY_TYPE__EntryNormal: {
		/* Empty: the entry a new leader appends in its term. */
		if (e->data.len == 0)
			break;
		Etcdserverpb__InternalRaftRequest *r =
			etcdserverpb__internal_raft_request__unpack(
				&a->pb, e->data.len, e->data.data);
		if (!r) {
			ret = APPLY_EBADENTRY;
			break;
		}
		Ipc__Result *res = ARENA_NEW(a, Ipc__Result, IPC__RESULT__INIT);
		if ((ret = apply_request(m, r, a, res)) < 0)
			return ret;
		*ret_id = r->id;
		*ret_res = res;
		break;
	}
	case RAFTPB__ENTRY_TYPE__EntryConfChange: {
		Raftpb__ConfChange *cc = raftpb__conf_change__unpack(
			&a->pb, e->data.len, e->data.data);
		if (!cc) {
			ret = APPLY_EBADENTRY;
			break;
		}
		/* The bootstrap's entries (ID 0) answer nobody. */
		Ipc__Result *res = NULL;
		if ((ret = apply_confchange(m, cc, a,
					    cc->id ? &res : NULL)) < 0)
			return ret;
		if (res) {
			*ret_id = cc->id;
			*ret_res = res;
		}
		break;
	}
	default:
		ret = APPLY_EBADENTRY;
		break;
	}
	mvcc_batch_set_applied(m, e->index);
	return ret;
}
