/* pbjson, gojson and base64: etcd gateway encoding and Go's error messages. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "gojson.h"
#include "ipc.pb-c.h"
#include "kv.pb-c.h"
#include "pbjson.h"
#include "rpc.pb-c.h"

#include "tcheck.h"

int failures;

/* Decodes in as d, then prints it again: want is either the JSON we print or
 * "ERR:<Go's message>". */
static void roundtrip(const ProtobufCMessageDescriptor *d, const char *in,
		      const char *want)
{
	struct arena a;
	arena_init(&a, 0);
	ProtobufCMessage *m = NULL;
	char err[GOJSON_ERRMAX];
	char got[4096];

	int r = pbjson_decode_body(d, in, strlen(in), &a, &m, err);
	if (r < 0) {
		snprintf(got, sizeof(got), "ERR:%s", err);
	} else {
		struct jbuf b = JBUF_INIT;
		pbjson_encode(&b, m);
		snprintf(got, sizeof(got), "%.*s", (int)b.len, b.p);
		jbuf_clear(&b);
		/* What we decoded must also pack: it becomes a Raft entry. */
		size_t sz = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(sz + 1);
		protobuf_c_message_pack(m, buf);
		ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, sz, buf);
		CHECK(u != NULL, "%s: packed form does not unpack", in);
		if (u)
			protobuf_c_message_free_unpacked(u, NULL);
		free(buf);
	}
	CHECK(strcmp(got, want) == 0, "%s %s\n  got  %s\n  want %s", d->name,
	      in, got, want);
	arena_done(&a);
}

#define RANGE &etcdserverpb__range_request__descriptor
#define PUT &etcdserverpb__put_request__descriptor
#define TXN &etcdserverpb__txn_request__descriptor
#define DEL &etcdserverpb__delete_range_request__descriptor
#define CMP &etcdserverpb__compaction_request__descriptor
#define MEMBER &etcdserverpb__member__descriptor

static void test_decode(void)
{
	/* Names: proto and lowerCamelCase; camelCase wins over the proto name. */
	roundtrip(RANGE, "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"keysOnly\":true}",
		  "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"keys_only\":true}");
	roundtrip(RANGE, "{\"rangeEnd\":\"YQ==\",\"range_end\":\"Yg==\"}",
		  "{\"range_end\":\"YQ==\"}");
	roundtrip(RANGE, "{\"range_end\":\"Yg==\",\"rangeEnd\":\"YQ==\"}",
		  "{\"range_end\":\"YQ==\"}");
	/* Unknown fields ignored, duplicates: the last wins, trailing junk. */
	roundtrip(RANGE, "{\"nope\":[1,{\"a\":2}],\"key\":\"YQ==\",\"key\":\"Yg==\"} garbage",
		  "{\"key\":\"Yg==\"}");
	roundtrip(RANGE, "", "{}");
	roundtrip(RANGE, "  \n", "{}");
	roundtrip(RANGE, "null", "{}");
	roundtrip(RANGE, "{\"key\":null,\"limit\":null,\"serializable\":null}", "{}");
	/* Escaped key names are unescaped before matching, as Go's map keys. */
	roundtrip(RANGE, "{\"k\\u0065y\":\"YQ==\"}", "{\"key\":\"YQ==\"}");
	/* int64: number or string; printed as strings. */
	roundtrip(RANGE, "{\"limit\":\"1\",\"revision\":-5}",
		  "{\"limit\":\"1\",\"revision\":\"-5\"}");
	roundtrip(RANGE, "{\"limit\":\" 1\"}", "{\"limit\":\"1\"}");
	roundtrip(RANGE, "{\"limit\":-0}", "{}");
	roundtrip(RANGE, "{\"limit\":9223372036854775807}",
		  "{\"limit\":\"9223372036854775807\"}");
	roundtrip(RANGE, "{\"limit\":-9223372036854775808}",
		  "{\"limit\":\"-9223372036854775808\"}");
	/* Enums: name or number; unknown numbers kept, printed bare. */
	roundtrip(RANGE, "{\"sort_order\":\"DESCEND\",\"sort_target\":4}",
		  "{\"sort_order\":\"DESCEND\",\"sort_target\":\"VALUE\"}");
	roundtrip(RANGE, "{\"sort_order\":7}", "{\"sort_order\":7}");
	roundtrip(RANGE, "{\"sort_order\":-1}", "{\"sort_order\":-1}");
	roundtrip(RANGE, "{\"sort_order\":\"NONE\"}", "{}");
	/* bytes as an array of numbers, as encoding/json allows. */
	roundtrip(PUT, "{\"key\":[102,111,111]}", "{\"key\":\"Zm9v\"}");
	/* base64 with escapes and newlines (Go skips \r and \n). */
	roundtrip(PUT, "{\"key\":\"Zm\\n9v\",\"value\":\"\\u0059mFy\"}",
		  "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
	roundtrip(PUT, "{\"key\":\"\",\"value\":\"\"}", "{}");
	roundtrip(PUT, "{\"key\":\"YQ==\",\"lease\":\"123\",\"prev_kv\":true,\"ignoreValue\":true,\"ignore_lease\":false}",
		  "{\"key\":\"YQ==\",\"lease\":\"123\",\"prev_kv\":true,\"ignore_value\":true}");
	roundtrip(DEL, "{\"key\":\"YQ==\",\"rangeEnd\":\"AA==\",\"prevKv\":true}",
		  "{\"key\":\"YQ==\",\"range_end\":\"AA==\",\"prev_kv\":true}");
	roundtrip(CMP, "{\"revision\":\"5\",\"physical\":true}",
		  "{\"revision\":\"5\",\"physical\":true}");
	/* txn: oneofs, nesting, an empty op, a null op. */
	roundtrip(TXN,
		  "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"createRevision\":0}],"
		  "\"success\":[{\"request_put\":{\"key\":\"YQ==\",\"value\":\"Yg==\"}},"
		  "{\"requestRange\":{\"key\":\"YQ==\"}},{},null,"
		  "{\"request_txn\":{\"success\":[{\"request_delete_range\":{\"key\":\"Yw==\"}}]}}],"
		  "\"failure\":[{\"request_range\":{}}]}",
		  "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"YQ==\",\"create_revision\":\"0\"}],"
		  "\"success\":[{\"request_put\":{\"key\":\"YQ==\",\"value\":\"Yg==\"}},"
		  "{\"request_range\":{\"key\":\"YQ==\"}},{},{},"
		  "{\"request_txn\":{\"success\":[{\"request_delete_range\":{\"key\":\"Yw==\"}}]}}],"
		  "\"failure\":[{\"request_range\":{}}]}");
	roundtrip(TXN, "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"VALUE\",\"value\":null}]}",
		  "{\"compare\":[{\"target\":\"VALUE\",\"key\":\"YQ==\",\"value\":\"\"}]}");
	roundtrip(TXN, "{\"success\":[{\"request_put\":null}]}", "{\"success\":[{}]}");
	/* Strings, repeated strings. */
	roundtrip(MEMBER, "{\"ID\":\"18446744073709551615\",\"name\":\"a\\u00e9<\\ud83d\\ude00\",\"peerURLs\":[\"http://x\",\"\"],\"isLearner\":true}",
		  "{\"ID\":\"18446744073709551615\",\"name\":\"a\xc3\xa9\\u003c\xf0\x9f\x98\x80\",\"peerURLs\":[\"http://x\",\"\"],\"isLearner\":true}");
	roundtrip(MEMBER, "{\"name\":\"\\ud800x\\u2028\"}",
		  "{\"name\":\"\xef\xbf\xbdx\\u2028\"}");
}

static void test_errors(void)
{
	roundtrip(RANGE, "{\"key\":\"!!!\"}", "ERR:illegal base64 data at input byte 0");
	roundtrip(RANGE, "{\"key\":\"eA\"}", "ERR:illegal base64 data at input byte 0");
	roundtrip(RANGE, "{\"key\":\"a-_=\"}", "ERR:illegal base64 data at input byte 1");
	roundtrip(RANGE, "{\"key\":\"YWJj\\u0021\"}", "ERR:illegal base64 data at input byte 4");
	roundtrip(RANGE, "{\"key\":123}",
		  "ERR:json: cannot unmarshal number into Go value of type []uint8");
	roundtrip(RANGE, "{\"key\":{}}",
		  "ERR:json: cannot unmarshal object into Go value of type []uint8");
	roundtrip(RANGE, "{\"key\":[\"a\"]}",
		  "ERR:json: cannot unmarshal string into Go value of type uint8");
	roundtrip(RANGE, "{\"key\":[256]}",
		  "ERR:json: cannot unmarshal number 256 into Go value of type uint8");
	roundtrip(RANGE, "{\"key\":\"Zm9v\",\"serializable\":\"x\"}",
		  "ERR:json: cannot unmarshal string into Go value of type bool");
	roundtrip(RANGE, "{\"key\":\"Zm9v\",\"serializable\":1}",
		  "ERR:json: cannot unmarshal number into Go value of type bool");
	roundtrip(RANGE, "{\"key\":\"Zm9v\",\"sort_order\":\"BOGUS\"}",
		  "ERR:unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder");
	roundtrip(RANGE, "{\"sort_order\":true}",
		  "ERR:json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder");
	roundtrip(RANGE, "{\"sort_order\":1.5}",
		  "ERR:json: cannot unmarshal number 1.5 into Go value of type etcdserverpb.RangeRequest_SortOrder");
	roundtrip(RANGE, "[1]",
		  "ERR:json: cannot unmarshal array into Go value of type map[string]json.RawMessage");
	roundtrip(RANGE, "\"x\"",
		  "ERR:json: cannot unmarshal string into Go value of type map[string]json.RawMessage");
	roundtrip(RANGE, "{b", "ERR:invalid character 'b' looking for beginning of object key string");
	roundtrip(RANGE, "{\"key\":\"Zm9v\"", "ERR:unexpected EOF");
	roundtrip(RANGE, "x", "ERR:invalid character 'x' looking for beginning of value");
	roundtrip(RANGE, "{\"a\" 1}", "ERR:invalid character '1' after object key");
	roundtrip(RANGE, "{\"a\":1 2}", "ERR:invalid character '2' after object key:value pair");
	roundtrip(RANGE, "{\"a\":[1 2]}", "ERR:invalid character '2' after array element");
	roundtrip(RANGE, "{\"a\":\"\x01\"}", "ERR:invalid character '\\x01' in string literal");
	roundtrip(RANGE, "{\"a\":\"\\x\"}", "ERR:invalid character 'x' in string escape code");
	roundtrip(RANGE, "{\"a\":\"\\u12g4\"}", "ERR:invalid character 'g' in \\u hexadecimal character escape");
	roundtrip(RANGE, "{\"a\":-x}", "ERR:invalid character 'x' in numeric literal");
	roundtrip(RANGE, "{\"a\":1.}", "ERR:invalid character '}' after decimal point in numeric literal");
	roundtrip(RANGE, "{\"a\":1e}", "ERR:invalid character '}' in exponent of numeric literal");
	roundtrip(RANGE, "{\"a\":tx}", "ERR:invalid character 'x' in literal true (expecting 'r')");
	roundtrip(RANGE, "{\"a\":nul}", "ERR:invalid character '}' in literal null (expecting 'l')");
	roundtrip(RANGE, "{\"a\":'x'}", "ERR:invalid character '\\'' looking for beginning of value");
	roundtrip(RANGE, "\xff", "ERR:invalid character '\xc3\xbf' looking for beginning of value");
	roundtrip(RANGE, "{\"a\":tru", "ERR:unexpected EOF");
	roundtrip(RANGE, "{\"key\":\"Zm9v\",\"limit\":\"abc\"}",
		  "ERR:invalid character 'a' looking for beginning of value");
	roundtrip(RANGE, "{\"limit\":1.5}",
		  "ERR:json: cannot unmarshal number 1.5 into Go value of type int64");
	roundtrip(RANGE, "{\"limit\":\"1e2\"}",
		  "ERR:json: cannot unmarshal number 1e2 into Go value of type int64");
	roundtrip(RANGE, "{\"limit\":true}",
		  "ERR:json: cannot unmarshal bool into Go value of type int64");
	roundtrip(RANGE, "{\"limit\":99999999999999999999}",
		  "ERR:json: cannot unmarshal number 99999999999999999999 into Go value of type int64");
	roundtrip(RANGE, "{\"limit\":\"\"}", "ERR:unexpected end of JSON input");
	roundtrip(RANGE, "{\"limit\":\"1 2\"}", "ERR:invalid character '2' after top-level value");
	roundtrip(RANGE, "{\"limit\":\"tru\"}",
		  "ERR:invalid character ' ' in literal true (expecting 'e')");
	roundtrip(RANGE, "{\"limit\":[1]}",
		  "ERR:json: cannot unmarshal array into Go value of type int64");
	roundtrip(MEMBER, "{\"ID\":-1}",
		  "ERR:json: cannot unmarshal number -1 into Go value of type uint64");
	roundtrip(MEMBER, "{\"name\":5}",
		  "ERR:json: cannot unmarshal number into Go value of type string");
	roundtrip(MEMBER, "{\"peerURLs\":{}}",
		  "ERR:json: cannot unmarshal object into Go value of type []json.RawMessage");
	/* The first error in field order wins, not the first in the text. */
	roundtrip(RANGE, "{\"limit\":true,\"key\":1}",
		  "ERR:json: cannot unmarshal number into Go value of type []uint8");
	roundtrip(TXN, "{\"success\":[{\"request_put\":{\"key\":\"!\"}}]}",
		  "ERR:illegal base64 data at input byte 0");
	/* Nesting beyond our bound is refused, not a crash. */
	{
		size_t n = 600;
		char *s = malloc(n * 40 + 64), *p = s;
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "{\"success\":[{\"request_txn\":");
		p += sprintf(p, "{}");
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "}]}");
		roundtrip(TXN, s, "ERR:json: exceeded max depth");
		free(s);
		/* Go's own depth limit in the scanner. */
		s = malloc(20010);
		memset(s, '[', 20009);
		s[20009] = 0;
		roundtrip(TXN, s, "ERR:invalid character '[' exceeded max depth");
		free(s);
	}
}

/* Responses as etcd prints them (v3api.md). */
static void test_encode(void)
{
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = 775629726009520682ULL;
	h.member_id = 467146360863644931ULL;
	h.revision = 1;
	h.raft_term = 2;
	Etcdserverpb__RangeResponse rr = ETCDSERVERPB__RANGE_RESPONSE__INIT;
	rr.header = &h;
	struct jbuf b = JBUF_INIT;
	pbjson_encode(&b, &rr.base);
	const char *want = "{\"header\":{\"cluster_id\":\"775629726009520682\","
			   "\"member_id\":\"467146360863644931\",\"revision\":\"1\","
			   "\"raft_term\":\"2\"}}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "range: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);

	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	kv.key.data = (uint8_t *)"foo";
	kv.key.len = 3;
	kv.create_revision = 2;
	kv.mod_revision = 3;
	kv.version = 2;
	Mvccpb__KeyValue *kvs[] = { &kv };
	rr.kvs = kvs;
	rr.n_kvs = 1;
	rr.count = 1;
	pbjson_encode(&b, &rr.base);
	want = "{\"header\":{\"cluster_id\":\"775629726009520682\","
	       "\"member_id\":\"467146360863644931\",\"revision\":\"1\","
	       "\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
	       "\"mod_revision\":\"3\",\"version\":\"2\"}],\"count\":\"1\"}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "range kvs: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);

	/* A nested txn response: inner header holds only the revision, an
	 * empty header prints as {}. */
	Etcdserverpb__ResponseHeader h2 = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h2.revision = 5;
	Etcdserverpb__ResponseHeader h3 = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	Etcdserverpb__PutResponse pr = ETCDSERVERPB__PUT_RESPONSE__INIT;
	pr.header = &h2;
	Etcdserverpb__TxnResponse inner = ETCDSERVERPB__TXN_RESPONSE__INIT;
	inner.header = &h3;
	Etcdserverpb__ResponseOp op1 = ETCDSERVERPB__RESPONSE_OP__INIT;
	op1.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
	op1.response_put = &pr;
	Etcdserverpb__ResponseOp op2 = ETCDSERVERPB__RESPONSE_OP__INIT;
	op2.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
	op2.response_txn = &inner;
	Etcdserverpb__ResponseOp *ops[] = { &op1, &op2 };
	Etcdserverpb__TxnResponse tr = ETCDSERVERPB__TXN_RESPONSE__INIT;
	tr.header = &h;
	tr.succeeded = 1;
	tr.responses = ops;
	tr.n_responses = 2;
	pbjson_encode(&b, &tr.base);
	want = "{\"header\":{\"cluster_id\":\"775629726009520682\","
	       "\"member_id\":\"467146360863644931\",\"revision\":\"1\","
	       "\"raft_term\":\"2\"},\"succeeded\":true,\"responses\":["
	       "{\"response_put\":{\"header\":{\"revision\":\"5\"}}},"
	       "{\"response_txn\":{\"header\":{}}}]}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "txn: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);

	/* Member list: no revision in the header; status field names. */
	Etcdserverpb__ResponseHeader h4 = h;
	h4.revision = 0;
	Etcdserverpb__Member mem = ETCDSERVERPB__MEMBER__INIT;
	mem.id = 467146360863644931ULL;
	mem.name = "ref";
	char *purls[] = { "http://127.0.0.100:2380" };
	char *curls[] = { "http://127.0.0.100:2379" };
	mem.peerurls = purls;
	mem.n_peerurls = 1;
	mem.clienturls = curls;
	mem.n_clienturls = 1;
	Etcdserverpb__Member *mems[] = { &mem };
	Etcdserverpb__MemberListResponse ml = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	ml.header = &h4;
	ml.members = mems;
	ml.n_members = 1;
	pbjson_encode(&b, &ml.base);
	want = "{\"header\":{\"cluster_id\":\"775629726009520682\",\"member_id\":\"467146360863644931\",\"raft_term\":\"2\"},\"members\":[{\"ID\":\"467146360863644931\",\"name\":\"ref\",\"peerURLs\":[\"http://127.0.0.100:2380\"],\"clientURLs\":[\"http://127.0.0.100:2379\"]}]}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "member list: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);

	Etcdserverpb__StatusResponse st = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	st.header = &h;
	st.version = "3.4.23";
	st.dbsize = 20480;
	st.leader = 467146360863644931ULL;
	st.raftindex = 5;
	st.raftterm = 2;
	st.raftappliedindex = 5;
	st.dbsizeinuse = 16384;
	pbjson_encode(&b, &st.base);
	want = "{\"header\":{\"cluster_id\":\"775629726009520682\",\"member_id\":\"467146360863644931\",\"revision\":\"1\",\"raft_term\":\"2\"},\"version\":\"3.4.23\",\"dbSize\":\"20480\",\"leader\":\"467146360863644931\",\"raftIndex\":\"5\",\"raftTerm\":\"2\",\"raftAppliedIndex\":\"5\",\"dbSizeInUse\":\"16384\"}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "status: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);

	/* A DELETE event prints its type; PUT (0) is left out. */
	Mvccpb__Event ev = MVCCPB__EVENT__INIT;
	Mvccpb__KeyValue dkv = MVCCPB__KEY_VALUE__INIT;
	dkv.key.data = (uint8_t *)"a";
	dkv.key.len = 1;
	dkv.mod_revision = 9;
	ev.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
	ev.kv = &dkv;
	pbjson_encode(&b, &ev.base);
	want = "{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"9\"}}";
	CHECK(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
	      "event: %.*s", (int)b.len, b.p);
	jbuf_clear(&b);
}

static void test_base64(void)
{
	struct {
		const char *in;
		int ok;
		size_t bad;
		const char *out;
	} t[] = {
		{ "", 1, 0, "" },
		{ "Zm9v", 1, 0, "foo" },
		{ "Zm9vYg==", 1, 0, "foob" },
		{ "Zm9vYmE=", 1, 0, "fooba" },
		{ "Zm9vYmFy", 1, 0, "foobar" },
		{ "Zm9\r\nvYmFy\n", 1, 0, "foobar" },
		{ "Zm9vYg=\n=", 1, 0, "foob" },
		{ "!!!", 0, 0, NULL },
		{ "eA", 0, 0, NULL },
		{ "a-_=", 0, 1, NULL },
		{ "Zm9vY", 0, 4, NULL },
		{ "Zm9vYg=", 0, 7, NULL },
		{ "Zm9vYg=x", 0, 6, NULL },
		{ "Zm9vYg==x", 0, 8, NULL },
		{ "Zm9v=", 0, 4, NULL },
		{ "Zm=9", 0, 2, NULL },
		{ "Zm9vYmFy!", 0, 8, NULL },
		{ "Zm9vYmF\xff", 0, 7, NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint8_t out[64];
		size_t n = 0, bad = 0;
		int r = base64_decode(out, t[i].in, strlen(t[i].in), &n, &bad);
		if (t[i].ok) {
			CHECK(r == 0 && n == strlen(t[i].out) &&
			      memcmp(out, t[i].out, n) == 0,
			      "base64 %s", t[i].in);
		} else {
			CHECK(r == -EINVAL && bad == t[i].bad,
			      "base64 %s: r=%d bad=%zu want %zu", t[i].in, r, bad,
			      t[i].bad);
		}
	}
	char enc[16];
	size_t n = base64_encode(enc, (const uint8_t *)"fooba", 5);
	CHECK(n == 8 && memcmp(enc, "Zm9vYmE=", 8) == 0, "encode");
	n = base64_encode(enc, (const uint8_t *)"f", 1);
	CHECK(n == 4 && memcmp(enc, "Zg==", 4) == 0, "encode 1");
}

int main(void)
{
	test_base64();
	test_decode();
	test_errors();
	test_encode();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
