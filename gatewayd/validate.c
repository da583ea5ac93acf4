/*
 * etcd's request checks (v3rpc/key.go), including the txn overlap rules of
 * checkIntervals: the same key may not be written twice, across nested txns
 * too, except once in a nested txn's success and once in its failure branch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "validate.h"

int validate_range(const Etcdserverpb__RangeRequest *r, const char **ret_msg)
{
	if (r->key.len == 0) {
		*ret_msg = ERR_EMPTY_KEY;
		return -EINVAL;
	}
	return 0;
}

int validate_put(const Etcdserverpb__PutRequest *r, const char **ret_msg)
{
	const char *m = NULL;
	if (r->key.len == 0)
		m = ERR_EMPTY_KEY;
	else if (r->ignore_value && r->value.len != 0)
		m = ERR_VALUE_PROVIDED;
	else if (r->ignore_lease && r->lease != 0)
		m = ERR_LEASE_PROVIDED;
	if (m) {
		*ret_msg = m;
		return -EINVAL;
	}
	return 0;
}

int validate_delete(const Etcdserverpb__DeleteRangeRequest *r,
		    const char **ret_msg)
{
	if (r->key.len == 0) {
		*ret_msg = ERR_EMPTY_KEY;
		return -EINVAL;
	}
	return 0;
}

static int check_txn(const Etcdserverpb__TxnRequest *r, int64_t max_ops,
		     const char **ret_msg);

static int check_op(const Etcdserverpb__RequestOp *u, int64_t max_ops,
		    const char **ret_msg)
{
	switch (u->request_case) {
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
		return validate_range(u->request_range, ret_msg);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
		return validate_put(u->request_put, ret_msg);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
		return validate_delete(u->request_delete_range, ret_msg);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
		return check_txn(u->request_txn, max_ops, ret_msg);
	default:
		/* An empty op. */
		*ret_msg = ERR_KEY_NOT_FOUND;
		return -EINVAL;
	}
}

static int check_txn(const Etcdserverpb__TxnRequest *r, int64_t max_ops,
		     const char **ret_msg)
{
	int64_t opc = (int64_t)r->n_compare;
	if (opc < (int64_t)r->n_success)
		opc = (int64_t)r->n_success;
	if (opc < (int64_t)r->n_failure)
		opc = (int64_t)r->n_failure;
	if (opc > max_ops) {
		*ret_msg = ERR_TOO_MANY_OPS;
		return -EINVAL;
	}
	for (size_t i = 0; i < r->n_compare; i++)
		if (r->compare[i]->key.len == 0) {
			*ret_msg = ERR_EMPTY_KEY;
			return -EINVAL;
		}
	for (size_t i = 0; i < r->n_success; i++) {
		int e = check_op(r->success[i], max_ops - opc, ret_msg);
		if (e < 0)
			return e;
	}
	for (size_t i = 0; i < r->n_failure; i++) {
		int e = check_op(r->failure[i], max_ops - opc, ret_msg);
		if (e < 0)
			return e;
	}
	return 0;
}

/* A set of keys: open addressing over (pointer, length) pairs. */
struct kset {
	const ProtobufCBinaryData **slot;
	size_t cap, n;
	const ProtobufCBinaryData **all; /* insertion order, for iteration */
	size_t all_cap;
};

static uint64_t hash(const ProtobufCBinaryData *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < k->len; i++)
		h = (h ^ k->data[i]) * 1099511628211ULL;
	return h;
}

static int key_eq(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int kset_has(const struct kset *s, const ProtobufCBinaryData *k)
{
	if (s->n == 0)
		return 0;
	for (size_t i = hash(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return 0;
		if (key_eq(s->slot[i], k))
			return 1;
	}
}

static int kset_add(struct kset *s, struct arena *a, const ProtobufCBinaryData *k)
{
	if (kset_has(s, k))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		const ProtobufCBinaryData **slot = arena_zalloc(a, cap * sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < s->n; i++) {
			const ProtobufCBinaryData *e = s->all[i];
			size_t j = hash(e) & (cap - 1);
			while (slot[j])
				j = (j + 1) & (cap - 1);
			slot[j] = e;
		}
		s->slot = slot;
		s->cap = cap;
	}
	if (s->n == s->all_cap) {
		size_t cap = s->all_cap ? s->all_cap * 2 : 16;
		const ProtobufCBinaryData **all = arena_zalloc(a, cap * sizeof(*all));
		if (!all)
			return -ENOMEM;
		if (s->n)
			memcpy(all, s->all, s->n * sizeof(*all));
		s->all = all;
		s->all_cap = cap;
	}
	size_t j = hash(k) & (s->cap - 1);
	while (s->slot[j])
		j = (j + 1) & (s->cap - 1);
	s->slot[j] = k;
	s->all[s->n++] = k;
	return 0;
}

/* Go string order: bytewise, the shorter first on a tie. */
static int key_cmp(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->data, b->data, n) : 0;
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/*
 * The deletes of a level: single keys in a set, ranges [key, range_end) in
 * a list (etcd's affine intervals: only an empty end means "to infinity", so
 * a range_end of "\0" is an empty interval here, as it is in etcd).
 */
struct dels {
	struct kset points;
	const Etcdserverpb__DeleteRangeRequest **ranges;
	size_t n, cap;
};

static int dels_hit(const struct dels *d, const ProtobufCBinaryData *k)
{
	if (kset_has(&d->points, k))
		return 1;
	for (size_t i = 0; i < d->n; i++) {
		const Etcdserverpb__DeleteRangeRequest *r = d->ranges[i];
		if (key_cmp(&r->key, k) <= 0 && key_cmp(k, &r->range_end) < 0)
			return 1;
	}
	return 0;
}

static int dels_add(struct dels *d, struct arena *a,
		    const Etcdserverpb__DeleteRangeRequest *r)
{
	if (r->range_end.len == 0)
		return kset_add(&d->points, a, &r->key);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		const Etcdserverpb__DeleteRangeRequest **v =
			arena_zalloc(a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (d->n)
			memcpy(v, d->ranges, d->n * sizeof(*v));
		d->ranges = v;
		d->cap = cap;
	}
	d->ranges[d->n++] = r;
	return 0;
}

static int dels_union(struct dels *d, struct arena *a, const struct dels *o)
{
	int e = 0;
	for (size_t i = 0; e == 0 && i < o->points.n; i++)
		e = kset_add(&d->points, a, o->points.all[i]);
	for (size_t i = 0; e == 0 && i < o->n; i++)
		e = dels_add(d, a, o->ranges[i]);
	return e;
}

/* checkIntervals, in etcd's order; -EEXIST for a duplicate key. */
static int check_intervals(struct arena *a, Etcdserverpb__RequestOp **reqs,
			   size_t n, struct kset *puts, struct dels *dels)
{
	int e;
	memset(puts, 0, sizeof(*puts));
	memset(dels, 0, sizeof(*dels));

	for (size_t i = 0; i < n; i++)
		if (reqs[i]->request_case ==
			    ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE &&
		    (e = dels_add(dels, a, reqs[i]->request_delete_range)) < 0)
			return e;

	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		const Etcdserverpb__TxnRequest *t = reqs[i]->request_txn;
		struct kset then_puts, else_puts;
		struct dels then_dels, else_dels;
		if ((e = check_intervals(a, t->success, t->n_success, &then_puts,
					 &then_dels)) < 0 ||
		    (e = check_intervals(a, t->failure, t->n_failure, &else_puts,
					 &else_dels)) < 0)
			return e;
		for (size_t k = 0; k < then_puts.n; k++) {
			const ProtobufCBinaryData *key = then_puts.all[k];
			if (kset_has(puts, key) || dels_hit(dels, key))
				return -EEXIST;
			if ((e = kset_add(puts, a, key)) < 0)
				return e;
		}
		for (size_t k = 0; k < else_puts.n; k++) {
			const ProtobufCBinaryData *key = else_puts.all[k];
			/* then and else exclude each other: the same key in
			 * both branches is fine. */
			if (kset_has(puts, key) && !kset_has(&then_puts, key))
				return -EEXIST;
			if (dels_hit(dels, key))
				return -EEXIST;
			if ((e = kset_add(puts, a, key)) < 0)
				return e;
		}
		if ((e = dels_union(dels, a, &then_dels)) < 0 ||
		    (e = dels_union(dels, a, &else_dels)) < 0)
			return e;
	}

	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			continue;
		const ProtobufCBinaryData *key = &reqs[i]->request_put->key;
		if (kset_has(puts, key) || dels_hit(dels, key))
			return -EEXIST;
		if ((e = kset_add(puts, a, key)) < 0)
			return e;
	}
	return 0;
}

int validate_txn(const Etcdserverpb__TxnRequest *r, uint32_t max_txn_ops,
		 const char **ret_msg)
{
	int e = check_txn(r, max_txn_ops, ret_msg);
	if (e < 0)
		return e;

	struct arena a;
	arena_init(&a, 0);
	struct kset puts;
	struct dels dels;
	e = check_intervals(&a, r->success, r->n_success, &puts, &dels);
	if (e == 0)
		e = check_intervals(&a, r->failure, r->n_failure, &puts, &dels);
	arena_done(&a);
	if (e == -EEXIST) {
		*ret_msg = ERR_DUPLICATE_KEY;
		return -EINVAL;
	}
	return e;
}

int txn_is_read_only(const Etcdserverpb__TxnRequest *r)
{
	for (int b = 0; b < 2; b++) {
		Etcdserverpb__RequestOp **ops = b ? r->failure : r->success;
		size_t n = b ? r->n_failure : r->n_success;
		for (size_t i = 0; i < n; i++) {
			switch (ops[i]->request_case) {
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
				break;
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
				if (!txn_is_read_only(ops[i]->request_txn))
					return 0;
				break;
			default:
				return 0;
			}
		}
	}
	return 1;
}

int txn_is_serializable(const Etcdserverpb__TxnRequest *r)
{
	for (int b = 0; b < 2; b++) {
		Etcdserverpb__RequestOp **ops = b ? r->failure : r->success;
		size_t n = b ? r->n_failure : r->n_success;
		for (size_t i = 0; i < n; i++)
			if (ops[i]->request_case !=
				    ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE ||
			    !ops[i]->request_range->serializable)
				return 0;
	}
	return 1;
}
