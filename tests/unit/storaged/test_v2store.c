/*
 * The v2 store alone: each operation and its errors, TTLs and expiry,
 * in-order keys, hidden keys, waits inside and outside the history,
 * recursive and stream waits, and the JSON bytes, as etcd 3.4.23 answered
 * the same requests (the bodies below are etcd's, observed with curl, with
 * our indexes: etcd's fresh member starts at 3, this store at 0).
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "v2store.h"

static struct v2store *s;
static struct arena a;
static struct v2_out o;
/* 2026-11-18T11:06:40.123456789Z */
#define T0 1795000000123456789LL
static int64_t now = T0;

static int64_t clock_fn(void)
{
	return now;
}

static void fresh(void)
{
	v2_free(s);
	CHECK(v2_new(clock_fn, &s) == 0);
	now = T0;
}

#define EXPECT(call, st, idx, body)                                            \
	do {                                                                   \
		CHECK((call) == 0);                                            \
		expect_out(__LINE__, st, idx, body);                           \
	} while (0)

static void expect_out(int line, uint32_t status, uint64_t index,
		       const char *body)
{
	size_t n = strlen(body);
	if (o.status != status || o.etcd_index != index || o.len != n + 1 ||
	    memcmp(o.body, body, n) != 0 || o.body[n] != '\n') {
		fprintf(stderr, "line %d: got %u [%llu] %.*s\nwanted %u [%llu] %s\n",
			line, o.status, (unsigned long long)o.etcd_index,
			(int)o.len, (const char *)o.body, status,
			(unsigned long long)index, body);
		exit(1);
	}
	arena_clear(&a);
}

#define SEC 1000000000LL

static void test_set_get(void)
{
	fresh();
	EXPECT(v2_get(s, "/", 0, 0, &a, &o), 200, 0,
	       "{\"action\":\"get\",\"node\":{\"dir\":true}}");
	EXPECT(v2_set(s, "/foo", 0, "bar", 0, 0, &a, &o), 201, 1,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_set(s, "foo", 0, "baz", 0, 0, &a, &o), 200, 2,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
	       "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
	       "\"/foo\",\"value\":\"bar\",\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_create(s, "/foo", 0, "x", 0, 0, &a, &o), 412, 2,
	       "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":"
	       "\"/foo\",\"index\":2}");
	EXPECT(v2_set(s, "/foo/bar", 0, "x", 0, 0, &a, &o), 400, 2,
	       "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":"
	       "\"/foo\",\"index\":2}");
	EXPECT(v2_get(s, "/foo/deeper", 0, 0, &a, &o), 400, 2,
	       "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":"
	       "\"/foo\",\"index\":2}");
	EXPECT(v2_get(s, "/missing/deeper", 0, 0, &a, &o), 404, 2,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/missing\",\"index\":2}");
	/* Paths are cleaned as etcd's path.Clean(path.Join("/", p)). */
	EXPECT(v2_get(s, "//x/../foo/.", 0, 0, &a, &o), 200, 2,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
	       "\"modifiedIndex\":2,\"createdIndex\":2}}");
	/* The root is etcd's read-only "/1". */
	EXPECT(v2_set(s, "/", 0, "x", 0, 0, &a, &o), 400, 2,
	       "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":"
	       "\"/\",\"index\":2}");
	EXPECT(v2_delete(s, "/", 1, 1, &a, &o), 400, 2,
	       "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":"
	       "\"/\",\"index\":2}");
	EXPECT(v2_cad(s, "/", "x", 0, &a, &o), 403, 2,
	       "{\"errorCode\":102,\"message\":\"Not a file\",\"index\":2}");
	CHECK_EQ(v2_index(s), 2);
	CHECK_EQ(v2_node_count(s), 1);
}

static void test_cas_cad(void)
{
	fresh();
	EXPECT(v2_set(s, "/foo", 0, "baz", 0, 0, &a, &o), 201, 1,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_cas(s, "/foo", "nope", 0, "x", 0, 0, &a, &o), 412, 1,
	       "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
	       "\"[nope != baz]\",\"index\":1}");
	EXPECT(v2_cas(s, "/foo", "", 99, "x", 0, 0, &a, &o), 412, 1,
	       "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
	       "\"[99 != 1]\",\"index\":1}");
	EXPECT(v2_cas(s, "/foo", "nope", 99, "x", 0, 0, &a, &o), 412, 1,
	       "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
	       "\"[nope != baz] [99 != 1]\",\"index\":1}");
	EXPECT(v2_cas(s, "/foo", "baz", 1, "y", 0, 0, &a, &o), 200, 2,
	       "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/foo\",\"value\":"
	       "\"y\",\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
	       "\"/foo\",\"value\":\"baz\",\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_cas(s, "/nope", "a", 0, "y", 0, 0, &a, &o), 404, 2,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/nope\",\"index\":2}");
	EXPECT(v2_cad(s, "/foo", "zz", 0, &a, &o), 412, 2,
	       "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
	       "\"[zz != y]\",\"index\":2}");
	EXPECT(v2_cad(s, "/foo", "", 5, &a, &o), 412, 2,
	       "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
	       "\"[5 != 2]\",\"index\":2}");
	EXPECT(v2_cad(s, "/foo", "y", 2, &a, &o), 200, 3,
	       "{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/foo\","
	       "\"modifiedIndex\":3,\"createdIndex\":1},\"prevNode\":{\"key\":"
	       "\"/foo\",\"value\":\"y\",\"modifiedIndex\":2,\"createdIndex\":1}}");
	CHECK_EQ(v2_node_count(s), 0);
	EXPECT(v2_set(s, "/d/f", 0, "1", 0, 0, &a, &o), 201, 4,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/d/f\",\"value\":\"1\","
	       "\"modifiedIndex\":4,\"createdIndex\":4}}");
	EXPECT(v2_cas(s, "/d", "a", 0, "y", 0, 0, &a, &o), 403, 4,
	       "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\","
	       "\"index\":4}");
	/* PUT prevExist=true: Update. */
	EXPECT(v2_update(s, "/d/f", "2", 0, 0, &a, &o), 200, 5,
	       "{\"action\":\"update\",\"node\":{\"key\":\"/d/f\",\"value\":\"2\","
	       "\"modifiedIndex\":5,\"createdIndex\":4},\"prevNode\":{\"key\":"
	       "\"/d/f\",\"value\":\"1\",\"modifiedIndex\":4,\"createdIndex\":4}}");
	EXPECT(v2_update(s, "/d/g", "2", 0, 0, &a, &o), 404, 5,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/d/g\",\"index\":5}");
}

static void test_dirs_hidden(void)
{
	fresh();
	CHECK(v2_set(s, "/d/e/f", 0, "1", 0, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/d/_h", 0, "hidden", 0, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/d/_hd/x", 0, "hidden2", 0, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/foo", 0, "y", 0, 0, &a, &o) == 0);
	EXPECT(v2_get(s, "/d", 0, 0, &a, &o), 200, 4,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,"
	       "\"nodes\":[{\"key\":\"/d/e\",\"dir\":true,\"modifiedIndex\":1,"
	       "\"createdIndex\":1}],\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_get(s, "/d", 1, 0, &a, &o), 200, 4,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,"
	       "\"nodes\":[{\"key\":\"/d/e\",\"dir\":true,\"nodes\":[{\"key\":"
	       "\"/d/e/f\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}],"
	       "\"modifiedIndex\":1,\"createdIndex\":1}],\"modifiedIndex\":1,"
	       "\"createdIndex\":1}}");
	/* Named directly, hidden nodes show, and what they hold too. */
	EXPECT(v2_get(s, "/d/_h", 0, 0, &a, &o), 200, 4,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/d/_h\",\"value\":"
	       "\"hidden\",\"modifiedIndex\":2,\"createdIndex\":2}}");
	EXPECT(v2_get(s, "/d/_hd", 0, 0, &a, &o), 200, 4,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/d/_hd\",\"dir\":true,"
	       "\"nodes\":[{\"key\":\"/d/_hd/x\",\"value\":\"hidden2\","
	       "\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":3,"
	       "\"createdIndex\":3}}");
	EXPECT(v2_get(s, "/", 1, 1, &a, &o), 200, 4,
	       "{\"action\":\"get\",\"node\":{\"dir\":true,\"nodes\":[{\"key\":"
	       "\"/d\",\"dir\":true,\"nodes\":[{\"key\":\"/d/e\",\"dir\":true,"
	       "\"nodes\":[{\"key\":\"/d/e/f\",\"value\":\"1\",\"modifiedIndex\":1,"
	       "\"createdIndex\":1}],\"modifiedIndex\":1,\"createdIndex\":1}],"
	       "\"modifiedIndex\":1,\"createdIndex\":1},{\"key\":\"/foo\","
	       "\"value\":\"y\",\"modifiedIndex\":4,\"createdIndex\":4}]}}");
	/* A directory holding only hidden nodes lists nothing. */
	CHECK(v2_set(s, "/t/_config/size", 0, "3", 0, 0, &a, &o) == 0);
	EXPECT(v2_get(s, "/t", 0, 0, &a, &o), 200, 5,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/t\",\"dir\":true,"
	       "\"modifiedIndex\":5,\"createdIndex\":5}}");
	EXPECT(v2_get(s, "/t/nope", 0, 0, &a, &o), 404, 5,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/t/nope\",\"index\":5}");

	EXPECT(v2_set(s, "/d", 1, "", 0, 0, &a, &o), 403, 5,
	       "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\","
	       "\"index\":5}");
	/* Update of a directory: the event has the new index, the node
	 * keeps its own (etcd's Write fails on a directory). */
	EXPECT(v2_update(s, "/d", "", 0, 0, &a, &o), 200, 6,
	       "{\"action\":\"update\",\"node\":{\"key\":\"/d\",\"dir\":true,"
	       "\"modifiedIndex\":6,\"createdIndex\":1},\"prevNode\":{\"key\":"
	       "\"/d\",\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_update(s, "/d", "x", 0, 0, &a, &o), 403, 6,
	       "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\","
	       "\"index\":6}");
	EXPECT(v2_delete(s, "/d", 0, 0, &a, &o), 403, 6,
	       "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\","
	       "\"index\":6}");
	EXPECT(v2_delete(s, "/d", 1, 0, &a, &o), 403, 6,
	       "{\"errorCode\":108,\"message\":\"Directory not empty\",\"cause\":"
	       "\"/d\",\"index\":6}");
	EXPECT(v2_delete(s, "/d", 0, 1, &a, &o), 200, 7,
	       "{\"action\":\"delete\",\"node\":{\"key\":\"/d\",\"dir\":true,"
	       "\"modifiedIndex\":7,\"createdIndex\":1},\"prevNode\":{\"key\":"
	       "\"/d\",\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_delete(s, "/foo", 0, 0, &a, &o), 200, 8,
	       "{\"action\":\"delete\",\"node\":{\"key\":\"/foo\","
	       "\"modifiedIndex\":8,\"createdIndex\":4},\"prevNode\":{\"key\":"
	       "\"/foo\",\"value\":\"y\",\"modifiedIndex\":4,\"createdIndex\":4}}");
	CHECK_EQ(v2_node_count(s), 3);
	/* An empty directory goes with dir alone. */
	CHECK(v2_set(s, "/e", 1, "", 0, 0, &a, &o) == 0);
	CHECK_EQ(o.status, 201);
	arena_clear(&a);
	EXPECT(v2_delete(s, "/e", 1, 0, &a, &o), 200, 10,
	       "{\"action\":\"delete\",\"node\":{\"key\":\"/e\",\"dir\":true,"
	       "\"modifiedIndex\":10,\"createdIndex\":9},\"prevNode\":{\"key\":"
	       "\"/e\",\"dir\":true,\"modifiedIndex\":9,\"createdIndex\":9}}");
}

static void test_inorder(void)
{
	fresh();
	EXPECT(v2_create(s, "/q", 0, "one", 1, 0, &a, &o), 201, 1,
	       "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000001\","
	       "\"value\":\"one\",\"modifiedIndex\":1,\"createdIndex\":1}}");
	EXPECT(v2_create(s, "/q", 0, "two", 1, 0, &a, &o), 201, 2,
	       "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000002\","
	       "\"value\":\"two\",\"modifiedIndex\":2,\"createdIndex\":2}}");
	EXPECT(v2_get(s, "/q", 0, 1, &a, &o), 200, 2,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/q\",\"dir\":true,"
	       "\"nodes\":[{\"key\":\"/q/00000000000000000001\",\"value\":\"one\","
	       "\"modifiedIndex\":1,\"createdIndex\":1},{\"key\":"
	       "\"/q/00000000000000000002\",\"value\":\"two\",\"modifiedIndex\":2,"
	       "\"createdIndex\":2}],\"modifiedIndex\":1,\"createdIndex\":1}}");
	/* POST to the root is allowed. */
	EXPECT(v2_create(s, "/", 0, "r", 1, 0, &a, &o), 201, 3,
	       "{\"action\":\"create\",\"node\":{\"key\":\"/00000000000000000003\","
	       "\"value\":\"r\",\"modifiedIndex\":3,\"createdIndex\":3}}");
	EXPECT(v2_create(s, "/q/00000000000000000001", 0, "x", 1, 0, &a, &o), 400,
	       3, "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":"
	       "\"/q/00000000000000000001\",\"index\":3}");
	/* A directory made by POST. */
	EXPECT(v2_create(s, "/q", 1, "", 1, 0, &a, &o), 201, 4,
	       "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000004\","
	       "\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4}}");
}

static void test_ttl(void)
{
	fresh();
	int64_t exp = T0 + 100 * SEC;
	EXPECT(v2_set(s, "/t", 0, "tv", exp, 0, &a, &o), 201, 1,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/t\",\"value\":\"tv\","
	       "\"expiration\":\"2026-11-18T11:08:20.123456789Z\",\"ttl\":100,"
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	CHECK_EQ(v2_next_expiry(s), exp);
	/* ttl rounds up: 99.5 s left shows 100, 99 s shows 99. */
	now = T0 + SEC / 2;
	EXPECT(v2_get(s, "/t", 0, 0, &a, &o), 200, 1,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/t\",\"value\":\"tv\","
	       "\"expiration\":\"2026-11-18T11:08:20.123456789Z\",\"ttl\":100,"
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	now = T0 + SEC;
	EXPECT(v2_get(s, "/t", 0, 0, &a, &o), 200, 1,
	       "{\"action\":\"get\",\"node\":{\"key\":\"/t\",\"value\":\"tv\","
	       "\"expiration\":\"2026-11-18T11:08:20.123456789Z\",\"ttl\":99,"
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	/* Refresh (PUT prevExist=true refresh=true): the value stays. */
	now = T0;
	int64_t exp2 = 1795000050LL * SEC + 120000000;
	EXPECT(v2_update(s, "/t", "", exp2, 1, &a, &o), 200, 2,
	       "{\"action\":\"update\",\"node\":{\"key\":\"/t\",\"value\":\"tv\","
	       "\"expiration\":\"2026-11-18T11:07:30.12Z\",\"ttl\":50,"
	       "\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
	       "\"/t\",\"value\":\"tv\",\"expiration\":"
	       "\"2026-11-18T11:08:20.123456789Z\",\"ttl\":100,\"modifiedIndex\":1,"
	       "\"createdIndex\":1}}");
	CHECK_EQ(v2_next_expiry(s), exp2);
	/* A set without ttl makes it permanent. */
	EXPECT(v2_set(s, "/t", 0, "tv2", 0, 0, &a, &o), 200, 3,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/t\",\"value\":\"tv2\","
	       "\"modifiedIndex\":3,\"createdIndex\":3},\"prevNode\":{\"key\":"
	       "\"/t\",\"value\":\"tv\",\"expiration\":\"2026-11-18T11:07:30.12Z\","
	       "\"ttl\":50,\"modifiedIndex\":2,\"createdIndex\":1}}");
	CHECK_EQ(v2_next_expiry(s), 0);
	/* Expirations before 2000 count as none (etcd's minExpireTime). */
	CHECK(v2_set(s, "/old", 0, "o", 5 * SEC, 0, &a, &o) == 0);
	CHECK_EQ(v2_next_expiry(s), 0);
	arena_clear(&a);

	/* Expiry: a file and a directory with what it holds. */
	CHECK(v2_set(s, "/ex", 0, "1", T0 + SEC, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/exd", 1, "", T0 + 2 * SEC, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/exd/c", 0, "2", 0, 0, &a, &o) == 0);
	arena_clear(&a);
	CHECK_EQ(v2_index(s), 7);
	int pending = 0;
	CHECK(v2_watch(s, 1, "/ex", 0, 0, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 2, "/exd/c", 0, 0, 0, &a, &o, &pending) == 0 &&
	      pending);
	CHECK(v2_expire(s, T0 + SEC - 1) == 0);
	CHECK_EQ(v2_index(s), 7);
	now = T0 + 3 * SEC + SEC / 2;
	CHECK(v2_expire(s, now) == 0);
	CHECK_EQ(v2_index(s), 9);
	size_t n;
	const struct v2_fire *f = v2_fired(s, &n);
	CHECK_EQ(n, 2);
	CHECK_EQ(f[0].id, 1);
	CHECK_EQ(f[0].etcd_index, 7);
	CHECK_EQ(f[0].more, 0);
	/* The expired node's ttl is past: -2 s and a half shows -2. */
	const char *e1 = "{\"action\":\"expire\",\"node\":{\"key\":\"/ex\","
			 "\"modifiedIndex\":8,\"createdIndex\":5},\"prevNode\":{"
			 "\"key\":\"/ex\",\"value\":\"1\",\"expiration\":"
			 "\"2026-11-18T11:06:41.123456789Z\",\"ttl\":-2,"
			 "\"modifiedIndex\":5,\"createdIndex\":5}}\n";
	CHECK(f[0].len == strlen(e1) && memcmp(f[0].body, e1, f[0].len) == 0);
	const char *e2 = "{\"action\":\"expire\",\"node\":{\"key\":\"/exd\","
			 "\"dir\":true,\"modifiedIndex\":9,\"createdIndex\":6},"
			 "\"prevNode\":{\"key\":\"/exd\",\"dir\":true,\"expiration\":"
			 "\"2026-11-18T11:06:42.123456789Z\",\"ttl\":-1,"
			 "\"modifiedIndex\":6,\"createdIndex\":6}}\n";
	CHECK_EQ(f[1].id, 2);
	CHECK(f[1].len == strlen(e2) && memcmp(f[1].body, e2, f[1].len) == 0);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 0);
	EXPECT(v2_get(s, "/exd", 0, 0, &a, &o), 404, 9,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/exd\",\"index\":9}");
	CHECK_EQ(v2_node_count(s), 2);
}

static void test_json_strings(void)
{
	fresh();
	EXPECT(v2_set(s, "/v", 0, "<a&b> \"q\" \xc3\xa9 \\ /", 0, 0, &a, &o), 201,
	       1, "{\"action\":\"set\",\"node\":{\"key\":\"/v\",\"value\":"
	       "\"\\u003ca\\u0026b\\u003e \\\"q\\\" \xc3\xa9 \\\\ /\","
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	/* Control characters (Go 1.19: only \n \r \t short), invalid UTF-8,
	 * U+2028, DEL kept. */
	EXPECT(v2_set(s, "/w", 0, "\x01\b\f\n\r\t\x7f\xff\xe2\x80\xa8\xc0\xaf",
		      0, 0, &a, &o), 201, 2,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/w\",\"value\":"
	       "\"\\u0001\\u0008\\u000c\\n\\r\\t\x7f\\ufffd\\u2028\\ufffd\\ufffd\","
	       "\"modifiedIndex\":2,\"createdIndex\":2}}");
	EXPECT(v2_get(s, "/a<b", 0, 0, &a, &o), 404, 2,
	       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
	       "\"/a\\u003cb\",\"index\":2}");
}

static void test_watch(void)
{
	fresh();
	int pending;
	CHECK(v2_set(s, "/foo", 0, "bar", 0, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/foo", 0, "baz", 0, 0, &a, &o) == 0);
	/* Inside the history: answered at once, X-Etcd-Index = now. */
	EXPECT(v2_watch(s, 1, "/foo", 0, 0, 1, &a, &o, &pending), 200, 2,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
	       "\"modifiedIndex\":1,\"createdIndex\":1}}");
	CHECK(!pending);
	EXPECT(v2_watch(s, 1, "/foo", 0, 0, 2, &a, &o, &pending), 200, 2,
	       "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
	       "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
	       "\"/foo\",\"value\":\"bar\",\"modifiedIndex\":1,\"createdIndex\":1}}");
	/* Waits: plain, recursive, on a parent (not recursive), stream. */
	CHECK(v2_watch(s, 10, "/foo", 0, 0, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 11, "/", 1, 0, 3, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 12, "/d", 0, 0, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 13, "/d/x", 0, 1, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 14, "/d", 1, 0, 0, &a, &o, &pending) == 0 && pending);
	CHECK_EQ(v2_watcher_count(s), 5);
	size_t n;
	/* A hidden key: only a wait on it sees it. */
	CHECK(v2_set(s, "/d/_h", 0, "h", 0, 0, &a, &o) == 0);
	v2_fired(s, &n);
	CHECK_EQ(n, 0);
	CHECK(v2_set(s, "/d/x", 0, "1", 0, 0, &a, &o) == 0);
	const struct v2_fire *f = v2_fired(s, &n);
	/* "/" recursive, "/d" recursive, "/d/x" stream; "/d" plain not. */
	CHECK_EQ(n, 3);
	CHECK_EQ(f[0].id, 11);
	CHECK_EQ(f[0].etcd_index, 2);
	CHECK_EQ(f[1].id, 14);
	CHECK_EQ(f[2].id, 13);
	CHECK_EQ(f[2].more, 1);
	CHECK_EQ(f[2].etcd_index, 2);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 3);
	/* Deleting /d: the stream wait on /d/x sees it (deleted), and the
	 * plain wait on /d twice-over rules: once. etcd notifies a stream on
	 * the deleted path itself twice; see test_stream_delete. */
	CHECK(v2_delete(s, "/d", 1, 1, &a, &o) == 0);
	f = v2_fired(s, &n);
	CHECK_EQ(n, 2);
	CHECK_EQ(f[0].id, 13);
	CHECK_EQ(f[1].id, 12);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 2);
	v2_unwatch(s, 13);
	v2_unwatch(s, 999);
	CHECK_EQ(v2_watcher_count(s), 1);
	CHECK(v2_set(s, "/foo", 0, "z", 0, 0, &a, &o) == 0);
	f = v2_fired(s, &n);
	CHECK_EQ(n, 1);
	CHECK_EQ(f[0].id, 10);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 0);
	arena_clear(&a);

	/* A refresh is not seen by waits, nor found in the history. */
	CHECK(v2_set(s, "/r", 0, "1", T0 + 10 * SEC, 0, &a, &o) == 0);
	uint64_t at = v2_index(s) + 1;
	CHECK(v2_watch(s, 20, "/r", 0, 0, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_set(s, "/r", 0, "", T0 + 20 * SEC, 1, &a, &o) == 0);
	CHECK_EQ(o.status, 200);
	v2_fired(s, &n);
	CHECK_EQ(n, 0);
	CHECK(v2_watch(s, 21, "/r", 0, 0, at, &a, &o, &pending) == 0 && pending);
	v2_unwatch_all(s, NULL, NULL);
	CHECK_EQ(v2_watcher_count(s), 0);
	arena_clear(&a);

	/* Past the history: etcd's 401 with its cause, status 400. */
	for (int i = 0; i < 1010; i++)
		CHECK(v2_set(s, "/h", 0, "1", 0, 0, &a, &o) == 0);
	arena_clear(&a);
	uint64_t idx = v2_index(s);
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"errorCode\":401,\"message\":\"The event in requested index "
		 "is outdated and cleared\",\"cause\":\"the requested history has "
		 "been cleared [%llu/5]\",\"index\":%llu}",
		 (unsigned long long)(idx - 999), (unsigned long long)idx);
	EXPECT(v2_watch(s, 30, "/foo", 0, 0, 5, &a, &o, &pending), 400, idx,
	       want);
	CHECK(!pending);
	/* The oldest index still held answers. */
	CHECK(v2_watch(s, 31, "/h", 0, 0, idx - 999, &a, &o, &pending) == 0);
	CHECK(!pending && o.status == 200);
	arena_clear(&a);
}

static void test_stream_delete(void)
{
	/* etcd 3.4 sends a stream wait on a deleted path the event twice:
	 * once as deleted, once as the event's own key. */
	fresh();
	int pending;
	size_t n;
	CHECK(v2_set(s, "/s", 0, "1", 0, 0, &a, &o) == 0);
	CHECK(v2_set(s, "/sd/a", 0, "1", 0, 0, &a, &o) == 0);
	CHECK(v2_watch(s, 1, "/s", 0, 1, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 2, "/sd/a", 0, 1, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 3, "/sd", 1, 1, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_watch(s, 4, "/sd", 0, 1, 0, &a, &o, &pending) == 0 && pending);
	CHECK(v2_delete(s, "/s", 0, 0, &a, &o) == 0);
	const struct v2_fire *f = v2_fired(s, &n);
	CHECK_EQ(n, 2);
	CHECK(f[0].id == 1 && f[1].id == 1);
	v2_fired_clear(s);
	CHECK(v2_delete(s, "/sd", 0, 1, &a, &o) == 0);
	f = v2_fired(s, &n);
	CHECK_EQ(n, 5);
	int count[5] = { 0 };
	for (size_t i = 0; i < n; i++)
		count[f[i].id]++;
	CHECK(count[2] == 1 && count[3] == 2 && count[4] == 2);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 4);
	/* A stream answered from the history is not kept (as etcd). */
	CHECK(v2_watch(s, 5, "/s", 0, 1, 3, &a, &o, &pending) == 0 && !pending);
	CHECK_EQ(v2_watcher_count(s), 4);
	arena_clear(&a);
}

static void test_history_dir_prefix(void)
{
	/* A deleted directory answers a later wait on what it held. */
	fresh();
	int pending;
	CHECK(v2_set(s, "/a/b", 0, "1", 0, 0, &a, &o) == 0);
	CHECK(v2_delete(s, "/a", 0, 1, &a, &o) == 0);
	CHECK(v2_watch(s, 1, "/a/b", 0, 0, 2, &a, &o, &pending) == 0);
	CHECK(!pending);
	CHECK(strstr((const char *)o.body, "\"action\":\"delete\""));
	/* A recursive wait on the root sees everything. */
	CHECK(v2_watch(s, 2, "/", 1, 0, 1, &a, &o, &pending) == 0 && !pending);
	CHECK(strstr((const char *)o.body, "\"key\":\"/a/b\""));
	arena_clear(&a);
}

static void test_limits(void)
{
	fresh();
	int pending;
	for (uint64_t i = 0; i < V2_WATCHERS_MAX; i++)
		CHECK(v2_watch(s, i + 1, "/w", 0, 0, 0, &a, &o, &pending) == 0);
	CHECK(v2_watch(s, 0, "/w", 0, 0, 0, &a, &o, &pending) == -ENOBUFS);
	CHECK(v2_set(s, "/w", 0, "x", 0, 0, &a, &o) == 0);
	size_t n;
	v2_fired(s, &n);
	CHECK_EQ(n, V2_WATCHERS_MAX);
	v2_fired_clear(s);
	CHECK_EQ(v2_watcher_count(s), 0);
	arena_clear(&a);
}

int main(void)
{
	arena_init(&a, 0);
	test_set_get();
	test_cas_cad();
	test_dirs_hidden();
	test_inorder();
	test_ttl();
	test_json_strings();
	test_watch();
	test_stream_delete();
	test_history_dir_prefix();
	test_limits();
	v2_free(s);
	arena_done(&a);
	return 0;
}
