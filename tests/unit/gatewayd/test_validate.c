/* etcd's API-layer checks (v3rpc/key.go) and request-ID generation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pbjson.h"
#include "reqid.h"
#include "rpc.pb-c.h"
#include "validate.h"

#include "tcheck.h"

int failures;

/* want: NULL for valid, else etcd's message. Outcomes checked against
 * etcd 3.4.23. */
static void txn(const char *json, uint32_t max_ops, const char *want)
{
	struct arena a;
	arena_init(&a, 0);
	ProtobufCMessage *m;
	char err[GOJSON_ERRMAX];
	const char *msg = NULL;
	int r = pbjson_decode_body(&etcdserverpb__txn_request__descriptor, json,
				   strlen(json), &a, &m, err);
	CHECK(r == 0, "decode %s: %s", json, err);
	if (r == 0) {
		r = validate_txn((Etcdserverpb__TxnRequest *)m, max_ops, &msg);
		if (want)
			CHECK(r == -EINVAL && strcmp(msg, want) == 0,
			      "%s: got %d %s, want %s", json, r, r ? msg : "ok", want);
		else
			CHECK(r == 0, "%s: got %s, want ok", json, msg);
	}
	arena_done(&a);
}

#define PUT(k) "{\"request_put\":{\"key\":\"" k "\"}}"
#define DEL(k) "{\"request_delete_range\":{\"key\":\"" k "\"}}"
#define DELR(k, e) "{\"request_delete_range\":{\"key\":\"" k "\",\"range_end\":\"" e "\"}}"
#define RNG(k) "{\"request_range\":{\"key\":\"" k "\"}}"
#define TXN(s, f) "{\"request_txn\":{\"success\":[" s "],\"failure\":[" f "]}}"
#define OPS(s) "{\"success\":[" s "]}"

static void test_txn(void)
{
	txn("{}", 128, NULL);
	txn(OPS(PUT("YQ==") "," PUT("Yg==")), 128, NULL);
	txn(OPS(PUT("YQ==") "," PUT("YQ==")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(PUT("YQ==") "," DEL("YQ==")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(DEL("YQ==") "," DEL("YQ==")), 128, NULL);
	txn(OPS(RNG("YQ==") "," PUT("YQ==")), 128, NULL);
	/* Ranges: [a, c) holds b; a range_end of "\0" is an empty interval. */
	txn(OPS(DELR("YQ==", "Yw==") "," PUT("Yg==")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(DELR("YQ==", "Yw==") "," PUT("Yw==")), 128, NULL);
	txn(OPS(PUT("YQ==") "," DELR("AA==", "AA==")), 128, NULL);
	/* Nested txns, in etcd's (asymmetric) order. */
	txn(OPS(TXN(PUT("YQ=="), "") "," DEL("YQ==")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(DEL("YQ==") "," TXN(PUT("YQ=="), "")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(TXN(PUT("YQ=="), "") "," TXN(DEL("YQ=="), "")), 128, NULL);
	txn(OPS(TXN(DEL("YQ=="), "") "," TXN(PUT("YQ=="), "")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(TXN(PUT("YQ=="), PUT("YQ=="))), 128, NULL);
	txn(OPS(TXN(PUT("YQ=="), "") "," PUT("YQ==")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(TXN(PUT("YQ=="), "") "," TXN(PUT("YQ=="), "")), 128, ERR_DUPLICATE_KEY);
	txn(OPS(TXN("", PUT("YQ==")) "," TXN("", PUT("YQ=="))), 128, ERR_DUPLICATE_KEY);
	/* Other checks. */
	txn(OPS("{}"), 128, ERR_KEY_NOT_FOUND);
	txn(OPS(PUT("")), 128, ERR_EMPTY_KEY);
	txn("{\"compare\":[{\"key\":\"\"}]}", 128, ERR_EMPTY_KEY);
	txn(OPS("{\"request_put\":{\"key\":\"YQ==\",\"value\":\"YQ==\",\"ignore_value\":true}}"),
	    128, ERR_VALUE_PROVIDED);
	txn(OPS(PUT("YQ==") "," PUT("Yg==") "," PUT("Yw==")), 2, ERR_TOO_MANY_OPS);
	txn(OPS(PUT("YQ==") "," PUT("Yg==")), 2, NULL);
	/* A nested txn may use what its parent left: 3 - 2 = 1 op. */
	txn(OPS(PUT("YQ==") "," TXN(PUT("Yg=="), "")), 3, NULL);
	txn(OPS(PUT("YQ==") "," TXN(PUT("Yg==") "," PUT("Yw=="), "")), 3, ERR_TOO_MANY_OPS);
}

static void test_simple(void)
{
	const char *msg;
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	CHECK(validate_put(&p, &msg) == -EINVAL && !strcmp(msg, ERR_EMPTY_KEY), "put empty key");
	p.key.data = (uint8_t *)"a";
	p.key.len = 1;
	CHECK(validate_put(&p, &msg) == 0, "put ok");
	p.ignore_lease = 1;
	p.lease = 5;
	CHECK(validate_put(&p, &msg) == -EINVAL && !strcmp(msg, ERR_LEASE_PROVIDED), "lease provided");
	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	CHECK(validate_range(&r, &msg) == -EINVAL && !strcmp(msg, ERR_EMPTY_KEY), "range empty key");
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	CHECK(validate_delete(&d, &msg) == -EINVAL && !strcmp(msg, ERR_EMPTY_KEY), "delete empty key");
}

static void test_reqid(void)
{
	struct reqid g;
	/* etcd: prefix = member << 48, suffix = (ms & 2^40-1) << 8, then +1. */
	reqid_init(&g, 0x1234567890abcdefULL, 0x123456789aULL);
	CHECK(reqid_next(&g) == 0xcdef123456789a01ULL, "first id");
	CHECK(reqid_next(&g) == 0xcdef123456789a02ULL, "second id");
	/* The counter carries into the time bits, never into the prefix. */
	reqid_init(&g, 1, 0xffffffffffULL);
	for (int i = 0; i < 255; i++)
		reqid_next(&g);
	CHECK(reqid_next(&g) == 0x0001000000000000ULL, "wrap: %llx",
	      (unsigned long long)g.suffix);
	/* Only the low 40 bits of the time count. */
	reqid_init(&g, 0xffff, 0x10000000001ULL);
	CHECK(reqid_next(&g) == 0xffff000000000101ULL, "time bits");
}

int main(void)
{
	test_simple();
	test_txn();
	test_reqid();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
