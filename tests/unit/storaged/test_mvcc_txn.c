/*
 * Unit test of Txn in the MVCC store: every compare target and result,
 * compares over ranges, branches, nested txns (compares evaluated before any
 * write, empty nested headers), shared revisions and etcd's errors.
 */
#include "mvcc_helpers.h"

typedef Etcdserverpb__Compare Compare;
typedef Etcdserverpb__RequestOp RequestOp;
typedef Etcdserverpb__TxnRequest TxnRequest;

static Compare *cmp_int(const char *k, int target, int result, int64_t v)
{
	Compare *c = ARENA_NEW(&a, Compare, ETCDSERVERPB__COMPARE__INIT);
	c->key = B(k);
	c->target = target;
	c->result = result;
	switch (target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
		c->version = v;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		c->create_revision = v;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		c->mod_revision = v;
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
		c->lease = v;
		break;
	}
	return c;
}

static Compare *cmp_val(const char *k, int result, const char *v)
{
	Compare *c = ARENA_NEW(&a, Compare, ETCDSERVERPB__COMPARE__INIT);
	c->key = B(k);
	c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
	c->result = result;
	c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
	c->value = B(v);
	return c;
}

static RequestOp *op_put(const char *k, const char *v)
{
	Etcdserverpb__PutRequest *p = ARENA_NEW(&a, Etcdserverpb__PutRequest,
						ETCDSERVERPB__PUT_REQUEST__INIT);
	p->key = B(k);
	p->value = B(v);
	RequestOp *op = ARENA_NEW(&a, RequestOp, ETCDSERVERPB__REQUEST_OP__INIT);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op->request_put = p;
	return op;
}

static RequestOp *op_range(const char *k, const char *end, int64_t rev)
{
	Etcdserverpb__RangeRequest *r = ARENA_NEW(&a, Etcdserverpb__RangeRequest,
						  ETCDSERVERPB__RANGE_REQUEST__INIT);
	r->key = B(k);
	if (end)
		r->range_end = B(end);
	r->revision = rev;
	RequestOp *op = ARENA_NEW(&a, RequestOp, ETCDSERVERPB__REQUEST_OP__INIT);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	op->request_range = r;
	return op;
}

static RequestOp *op_del(const char *k, const char *end)
{
	Etcdserverpb__DeleteRangeRequest *d = ARENA_NEW(
		&a, Etcdserverpb__DeleteRangeRequest,
		ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT);
	d->key = B(k);
	if (end)
		d->range_end = B(end);
	RequestOp *op = ARENA_NEW(&a, RequestOp, ETCDSERVERPB__REQUEST_OP__INIT);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	op->request_delete_range = d;
	return op;
}

static TxnRequest *txn_new(size_t nc, Compare **c, size_t ns, RequestOp **s,
			   size_t nf, RequestOp **f)
{
	TxnRequest *t = ARENA_NEW(&a, TxnRequest, ETCDSERVERPB__TXN_REQUEST__INIT);
	t->n_compare = nc;
	t->compare = c;
	t->n_success = ns;
	t->success = s;
	t->n_failure = nf;
	t->failure = f;
	return t;
}

static RequestOp *op_txn(TxnRequest *t)
{
	RequestOp *op = ARENA_NEW(&a, RequestOp, ETCDSERVERPB__REQUEST_OP__INIT);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	op->request_txn = t;
	return op;
}

/* Whether a txn with the single compare c succeeds (it writes nothing). */
static int holds(Compare *c)
{
	Compare *cs[1] = { c };
	Ipc__Result *res = txn(txn_new(1, cs, 0, NULL, 0, NULL));
	CHECK(res && !res->error);
	return res->txn->succeeded;
}

enum { EQ = 0, GT = 1, LT = 2, NE = 3 };
enum { VER = 0, CRE = 1, MOD = 2, VAL = 3, LEA = 4 };

static void test_compare(void)
{
	store_new();
	put("a", "m");        /* 2 */
	put("b", "x");        /* 3 */
	put("a", "m");        /* 4: a version 2, create 2, mod 4 */
	int64_t rev = mvcc_rev(m);

	CHECK(holds(cmp_int("a", VER, EQ, 2)));
	CHECK(!holds(cmp_int("a", VER, EQ, 1)));
	CHECK(holds(cmp_int("a", VER, GT, 1)));
	CHECK(!holds(cmp_int("a", VER, GT, 2)));
	CHECK(holds(cmp_int("a", VER, LT, 3)));
	CHECK(holds(cmp_int("a", VER, NE, 3)));
	CHECK(!holds(cmp_int("a", VER, NE, 2)));
	CHECK(holds(cmp_int("a", CRE, EQ, 2)));
	CHECK(holds(cmp_int("a", CRE, LT, 3)));
	CHECK(holds(cmp_int("a", MOD, EQ, 4)));
	CHECK(holds(cmp_int("a", MOD, GT, 3)));
	CHECK(!holds(cmp_int("a", MOD, LT, 4)));
	CHECK(holds(cmp_int("a", LEA, EQ, 0)));
	CHECK(!holds(cmp_int("a", LEA, GT, 0)));
	CHECK(holds(cmp_val("a", EQ, "m")));
	CHECK(!holds(cmp_val("a", EQ, "n")));
	CHECK(holds(cmp_val("a", LT, "n")));
	CHECK(holds(cmp_val("a", GT, "")));
	CHECK(holds(cmp_val("a", GT, "l")));
	CHECK(holds(cmp_val("a", NE, "mm")));
	CHECK(holds(cmp_val("a", LT, "mm")));

	/* A missing key compares as zeros, but never on its value. */
	CHECK(holds(cmp_int("zz", CRE, EQ, 0)));
	CHECK(holds(cmp_int("zz", VER, EQ, 0)));
	CHECK(holds(cmp_int("zz", MOD, LT, 1)));
	CHECK(!holds(cmp_val("zz", EQ, "")));
	CHECK(!holds(cmp_val("zz", NE, "x")));

	/* A compare with range_end must hold for every key in it. */
	Compare *c = cmp_int("a", MOD, GT, 1);
	c->range_end = B("c");
	CHECK(holds(c));
	c = cmp_int("a", MOD, GT, 3);
	c->range_end = B("c");
	CHECK(!holds(c)); /* b has mod 3 */
	c = cmp_int("a", VER, EQ, 0);
	c->range_end = B("a0");
	CHECK(!holds(c));
	c = cmp_int("c", VER, EQ, 0); /* empty range: zeros */
	c->range_end = B("d");
	CHECK(holds(c));
	c = cmp_int("a", CRE, GT, 0);
	c->range_end = (ProtobufCBinaryData){ 1, (uint8_t *)"" };
	CHECK(holds(c));

	/* The target decides which field compares: a mismatched union is 0. */
	c = cmp_int("a", VER, EQ, 0);
	c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
	CHECK(holds(c) == 0);
	c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
	CHECK(holds(c));

	/* None of these wrote. */
	CHECK_EQ(mvcc_rev(m), rev);
	store_destroy();
}

static void test_branches(void)
{
	store_new();
	put("k", "v");  /* 2 */

	/* Success: two writes share revision 3, with sub revisions 0 and 1. */
	Compare *c1[1] = { cmp_int("k", VER, EQ, 1) };
	RequestOp *s1[4] = { op_put("k", "v2"), op_put("n", "1"),
			     op_range("k", NULL, 0), op_range("k", NULL, 2) };
	RequestOp *f1[1] = { op_del("k", NULL) };
	Ipc__Result *res = txn(txn_new(1, c1, 4, s1, 1, f1));
	CHECK(!res->error);
	Etcdserverpb__TxnResponse *tr = res->txn;
	CHECK(tr->succeeded);
	CHECK_EQ(tr->header->revision, 3);
	CHECK_EQ(tr->n_responses, 4);
	CHECK_EQ(tr->responses[0]->response_case,
		 ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT);
	CHECK_EQ(tr->responses[0]->response_put->header->revision, 3);
	CHECK_EQ(tr->responses[1]->response_put->header->revision, 3);
	/* A range after the writes sees them, at the txn's revision. */
	Etcdserverpb__RangeResponse *rr = tr->responses[2]->response_range;
	CHECK_EQ(rr->header->revision, 3);
	CHECK_STR(rr->kvs[0]->value, "v2");
	CHECK_EQ(rr->kvs[0]->version, 2);
	rr = tr->responses[3]->response_range;
	CHECK_STR(rr->kvs[0]->value, "v");
	CHECK_EQ(mvcc_rev(m), 3);
	CHECK_EQ(range("n", NULL)->kvs[0]->mod_revision, 3);

	/* Failure branch: delete k. */
	res = txn(txn_new(1, c1, 4, s1, 1, f1));
	tr = res->txn;
	CHECK(!tr->succeeded);
	CHECK_EQ(tr->n_responses, 1);
	CHECK_EQ(tr->responses[0]->response_delete_range->deleted, 1);
	CHECK_EQ(tr->header->revision, 4);
	CHECK_EQ(range("k", NULL)->count, 0);

	/* Without writes, no new revision; a read-only txn reads current. */
	RequestOp *s2[2] = { op_range("n", NULL, 0), op_del("nothing", NULL) };
	res = txn(txn_new(0, NULL, 2, s2, 0, NULL));
	tr = res->txn;
	CHECK(tr->succeeded);
	CHECK_EQ(tr->header->revision, 4);
	CHECK_EQ(tr->responses[0]->response_range->header->revision, 4);
	CHECK_EQ(tr->responses[1]->response_delete_range->header->revision, 4);
	CHECK_EQ(mvcc_rev(m), 4);
	res = txn(txn_new(0, NULL, 0, NULL, 0, NULL));
	CHECK(res->txn->succeeded);
	CHECK_EQ(res->txn->header->revision, 4);

	/* A delete of nothing before a put answers the old revision. */
	RequestOp *s3[2] = { op_del("nothing", NULL), op_put("y", "1") };
	res = txn(txn_new(0, NULL, 2, s3, 0, NULL));
	tr = res->txn;
	CHECK_EQ(tr->responses[0]->response_delete_range->header->revision, 4);
	CHECK_EQ(tr->responses[1]->response_put->header->revision, 5);
	CHECK_EQ(tr->header->revision, 5);
	store_destroy();
}

static void test_nested(void)
{
	store_new();
	put("a", "1"); /* 2 */

	/*
	 * success: put x=1, txn{ value(x) == "1" ? range x : range x, del zz }
	 * The nested compare runs before the put: x is missing, so it fails.
	 */
	Compare *nc[1] = { cmp_val("x", EQ, "1") };
	RequestOp *ns[1] = { op_range("x", NULL, 0) };
	RequestOp *nf[2] = { op_range("x", NULL, 0), op_del("zz", NULL) };
	RequestOp *s[2] = { op_put("x", "1"),
			    op_txn(txn_new(1, nc, 1, ns, 2, nf)) };
	Ipc__Result *res = txn(txn_new(0, NULL, 2, s, 0, NULL));
	CHECK(!res->error);
	Etcdserverpb__TxnResponse *tr = res->txn;
	CHECK(tr->succeeded);
	CHECK_EQ(tr->header->revision, 3);
	Etcdserverpb__TxnResponse *in = tr->responses[1]->response_txn;
	CHECK(in && !in->succeeded);
	CHECK(in->header && in->header->revision == 0);
	CHECK_EQ(in->n_responses, 2);
	Etcdserverpb__RangeResponse *rr = in->responses[0]->response_range;
	CHECK_EQ(rr->header->revision, 3);
	CHECK_EQ(rr->count, 1);
	CHECK_STR(rr->kvs[0]->value, "1");
	CHECK_EQ(in->responses[1]->response_delete_range->header->revision, 3);

	/* Two levels deep, writes in all of them share one revision. */
	RequestOp *d2[1] = { op_put("deep2", "v") };
	RequestOp *d1[2] = { op_put("deep1", "v"),
			     op_txn(txn_new(0, NULL, 1, d2, 0, NULL)) };
	Compare *cf[1] = { cmp_int("a", VER, EQ, 5) };
	RequestOp *top_f[2] = { op_txn(txn_new(0, NULL, 2, d1, 0, NULL)),
				op_put("top", "v") };
	res = txn(txn_new(1, cf, 0, NULL, 2, top_f));
	tr = res->txn;
	CHECK(!tr->succeeded);
	CHECK_EQ(tr->header->revision, 4);
	in = tr->responses[0]->response_txn;
	CHECK(in->succeeded);
	CHECK(in->responses[1]->response_txn->succeeded);
	CHECK_EQ(in->responses[1]->response_txn->responses[0]
			 ->response_put->header->revision, 4);
	CHECK_EQ(range("deep2", NULL)->kvs[0]->mod_revision, 4);
	CHECK_EQ(range("top", NULL)->kvs[0]->mod_revision, 4);
	store_destroy();
}

static void test_errors(void)
{
	store_new();
	put("a", "1"); /* 2 */
	put("a", "2"); /* 3 */

	/* Checked on the path taken only, before anything is written. */
	Etcdserverpb__PutRequest *p = op_put("a", "")->request_put;
	RequestOp *bad = op_put("missing", "");
	bad->request_put->ignore_value = 1;
	RequestOp *s[2] = { op_put("b", "1"), bad };
	check_err(txn(txn_new(0, NULL, 2, s, 0, NULL)), 3,
		  "etcdserver: key not found");
	CHECK_EQ(mvcc_rev(m), 3);
	CHECK_EQ(range("b", NULL)->count, 0);
	Ipc__Result *res = txn(txn_new(0, NULL, 0, NULL, 2, s));
	CHECK(!res->error && res->txn->succeeded);

	RequestOp *leased = op_put("l", "1");
	leased->request_put->lease = 7;
	RequestOp *s2[1] = { op_txn(txn_new(0, NULL, 1, &leased, 0, NULL)) };
	check_err(txn(txn_new(0, NULL, 1, s2, 0, NULL)), 5,
		  "etcdserver: requested lease not found");

	RequestOp *fut[2] = { op_put("c", "1"), op_range("a", NULL, 4) };
	check_err(txn(txn_new(0, NULL, 2, fut, 0, NULL)), 11,
		  "etcdserver: mvcc: required revision is a future revision");
	CHECK_EQ(mvcc_rev(m), 3);

	CHECK(!compact(3)->error);
	RequestOp *old[1] = { op_range("a", NULL, 2) };
	check_err(txn(txn_new(0, NULL, 1, old, 0, NULL)), 11,
		  "etcdserver: mvcc: required revision has been compacted");
	RequestOp *at[1] = { op_range("a", NULL, 3) };
	res = txn(txn_new(0, NULL, 1, at, 0, NULL));
	CHECK(!res->error);
	CHECK_STR(res->txn->responses[0]->response_range->kvs[0]->value, "2");

	/* ignore_value inside a txn keeps the value. */
	p->ignore_value = 1;
	RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op.request_put = p;
	RequestOp *ops[1] = { &op };
	res = txn(txn_new(0, NULL, 1, ops, 0, NULL));
	CHECK(!res->error);
	CHECK_STR(range("a", NULL)->kvs[0]->value, "2");
	CHECK_EQ(range("a", NULL)->kvs[0]->version, 3);
	store_destroy();
}

int main(void)
{
	test_compare();
	test_branches();
	test_nested();
	test_errors();
	return 0;
}
