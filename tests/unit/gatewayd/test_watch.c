/*
 * POST /v3/watch through the real gatewayd: stream framing and order as
 * etcd 3.4 sends it, events from the fake storaged's MSG_WATCH_EVENTS,
 * cancel, client disconnect, re-creating watches after a storaged restart
 * and pausing a client that does not read.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define R(rev) "{\"result\":{\"header\":" HDR ",\"revision\":\"" #rev "\",\"raft_term\":\"2\"}"

static int body_is(struct raw *r, const char *want, int want_chunks)
{
	int chunks;
	char *b = raw_body(r, &chunks, NULL);
	int ok = strcmp(b, want) == 0 && (want_chunks < 0 || chunks == want_chunks);
	if (!ok)
		fprintf(stderr, "body (%d chunks):\n%s\nwant (%d):\n%s\n", chunks,
			b, want_chunks, want);
	free(b);
	return ok;
}

static int was_cancelled(uint64_t watcher, int from)
{
	for (int i = from; i < n_cancels; i++)
		if (cancels[i] == watcher)
			return 1;
	return 0;
}

static void wait_creates(int n)
{
	for (int i = 0; i < 2000 && n_creates < n; i++)
		pump_ms(1);
	CHECK(n_creates >= n, "%d creates, want %d", n_creates, n);
}

static void kv_set(Mvccpb__KeyValue *kv, const char *key, const char *val,
		   int64_t create, int64_t mod)
{
	mvccpb__key_value__init(kv);
	kv->key.data = (uint8_t *)key;
	kv->key.len = strlen(key);
	if (val) {
		kv->value.data = (uint8_t *)val;
		kv->value.len = strlen(val);
		kv->version = 1;
		kv->create_revision = create;
	}
	kv->mod_revision = mod;
}

static void test_framing_events_cancel(void)
{
	struct raw r;
	int nc = n_creates, nx = n_cancels;
	revision = 10;
	raw_start(&r, "/v3/watch",
		  "{\"create_request\":{\"key\":\"Zm9v\"}}"
		  "{\"create_request\":{\"key\":\"Zm9v\",\"watch_id\":5}}\n"
		  "{\"create_request\":{\"key\":\"YQ==\"}}"
		  "{\"progress_request\":{}}"
		  "{\"cancel_request\":{\"watch_id\":5}}"
		  "{\"cancel_request\":{\"watch_id\":77}}", 0);
	CHECK(raw_wait(&r, "\"canceled\":true", 2000), "no cancel");
	pump_ms(20);
	raw_pump(&r);
	CHECK(body_is(&r, R(10) ",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"5\",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"1\",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"-1\"}}\n"
			  R(10) ",\"watch_id\":\"5\",\"canceled\":true}}\n", 5),
	      "framing");
	CHECK(strncmp(r.buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "status");
	CHECK(strstr(r.buf, "Content-Type: application/json\r\n") &&
	      strstr(r.buf, "Grpc-Metadata-Content-Type: application/grpc\r\n") &&
	      strstr(r.buf, "Transfer-Encoding: chunked\r\n") &&
	      strstr(r.buf, "Access-Control-Allow-Origin: *\r\n"), "headers");
	CHECK(n_creates == nc + 3, "%d creates", n_creates - nc);
	uint64_t w0 = creates[nc].watcher, w5 = creates[nc + 1].watcher,
		 w1 = creates[nc + 2].watcher;
	CHECK(strcmp(creates[nc].key, "foo") == 0 && creates[nc].start == 0 &&
	      !creates[nc].resume && creates[nc + 1].watch_id == 5,
	      "create requests");
	CHECK(w0 != w5 && w5 != w1 && w0 != w1, "watcher ids not unique");
	CHECK(n_cancels == nx + 1 && cancels[nx] == w5, "cancel of watch 5");

	/* One revision's events: each watch gets its own, prev_kv only if
	 * asked; the cancelled watch gets nothing. */
	Mvccpb__KeyValue kv1, pkv, kv2;
	Mvccpb__Event e1 = MVCCPB__EVENT__INIT, e2 = MVCCPB__EVENT__INIT;
	Mvccpb__Event *evs[] = { &e1, &e2 };
	Ipc__WatchHit h0 = IPC__WATCH_HIT__INIT, h5 = IPC__WATCH_HIT__INIT,
		      h1 = IPC__WATCH_HIT__INIT, *hits[] = { &h5, &h0, &h1 };
	uint32_t i0[] = { 0 }, i1[] = { 1 };
	kv_set(&kv1, "foo", "bar", 11, 11);
	kv_set(&pkv, "foo", "old", 3, 3);
	kv_set(&kv2, "a", NULL, 0, 11);
	e1.kv = &kv1;
	e1.prev_kv = &pkv;
	e2.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
	e2.kv = &kv2;
	h0.watcher = w0;
	h0.events = i0;
	h0.n_events = 1;
	h5.watcher = w5;
	h5.events = i0;
	h5.n_events = 1;
	h1.watcher = w1;
	h1.events = i1;
	h1.n_events = 1;
	send_events(11, evs, 2, hits, 3);
	CHECK(raw_wait(&r, "DELETE", 2000), "no events");
	CHECK(body_is(&r, R(10) ",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"5\",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"1\",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"-1\"}}\n"
			  R(10) ",\"watch_id\":\"5\",\"canceled\":true}}\n"
			  R(11) ",\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"11\","
			  "\"mod_revision\":\"11\",\"version\":\"1\",\"value\":\"YmFy\"}}]}}\n"
			  R(11) ",\"watch_id\":\"1\",\"events\":[{\"type\":\"DELETE\","
			  "\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"11\"}}]}}\n", 7),
	      "events");

	/* A progress notification for a watch (progress_notify). */
	Ipc__WatchHit hp = IPC__WATCH_HIT__INIT, *hps[] = { &hp };
	hp.watcher = w1;
	hp.progress = 1;
	send_events(12, NULL, 0, hps, 1);
	CHECK(raw_wait(&r, R(12) ",\"watch_id\":\"1\"}}\n", 2000), "progress notify");

	/* The client leaves: its watches are cancelled at storaged. */
	size_t streams = gw.n_streams;
	nx = n_cancels;
	raw_close(&r);
	for (int i = 0; i < 2000 && gw.n_streams == streams; i++)
		pump_ms(1);
	CHECK(gw.n_streams == streams - 1, "stream not dropped");
	CHECK(was_cancelled(w0, nx) && was_cancelled(w1, nx) &&
	      !was_cancelled(w5, nx), "disconnect cancels");
	CHECK(gw.n_watches == 0, "%zu watches left", gw.n_watches);
}

static void test_errors_and_refusals(void)
{
	struct exchange *x = http(EVHTTP_REQ_POST, "/v3/watch", "{b");
	EXPECT(x, 500, ERRBODY("invalid character 'b' looking for beginning of object key string", 2));
	x = http(EVHTTP_REQ_POST, "/v3/watch", "{\"create_request\":{\"key\":\"!!\"}}");
	EXPECT(x, 500, ERRBODY("illegal base64 data at input byte 0", 2));
	x = http(EVHTTP_REQ_POST, "/v3beta/watch", "[]");
	EXPECT(x, 500, ERRBODY("json: cannot unmarshal array into Go value of type map[string]json.RawMessage", 2));

	struct raw r;
	int nc = n_creates;
	revision = 10;
	/* An empty range, a duplicate id, a later request that does not
	 * decode (reading stops there), a from-key range. */
	raw_start(&r, "/v3/watch",
		  "{\"create_request\":{\"key\":\"Zm9v\",\"range_end\":\"YQ==\"}}"
		  "{\"create_request\":{\"key\":\"Zm9v\",\"watch_id\":3}}"
		  "{\"create_request\":{\"key\":\"Zm9v\",\"watch_id\":3}}"
		  "{\"create_request\":{\"key\":\"YQ==\",\"range_end\":\"AA==\"}}"
		  "{b}{\"create_request\":{\"key\":\"Zm9v\"}}", 0);
	CHECK(raw_wait(&r, "duplicate", 2000), "no duplicate");
	pump_ms(20);
	raw_pump(&r);
	CHECK(body_is(&r, R(10) ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true,"
			  "\"cancel_reason\":\"mvcc: watcher range is empty\"}}\n"
			  R(10) ",\"watch_id\":\"3\",\"created\":true}}\n"
			  R(10) ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true,"
			  "\"cancel_reason\":\"mvcc: duplicate watch ID provided on the WatchStream\"}}\n"
			  R(10) ",\"created\":true}}\n", 4),
	      "refusals");
	CHECK(n_creates == nc + 2, "%d creates", n_creates - nc);
	raw_close(&r);

	/* A compacted start revision: created, then the cancel, whose
	 * header has no revision. */
	auto_created = 0;
	nc = n_creates;
	raw_start(&r, "/v3/watch", "{\"create_request\":{\"key\":\"YQ==\",\"start_revision\":2}}", 0);
	wait_creates(nc + 1);
	CHECK(creates[nc].start == 2, "start revision %lld", (long long)creates[nc].start);
	Ipc__WatchHit h = IPC__WATCH_HIT__INIT, *hits[] = { &h };
	h.watcher = creates[nc].watcher;
	h.created = 1;
	h.canceled = 1;
	h.compact_revision = 4;
	send_events(10, NULL, 0, hits, 1);
	CHECK(raw_wait(&r, "compact_revision", 2000), "no compaction cancel");
	CHECK(body_is(&r, R(10) ",\"created\":true}}\n"
			  "{\"result\":{\"header\":" HDR ",\"raft_term\":\"2\"},"
			  "\"canceled\":true,\"compact_revision\":\"4\"}}\n", 2),
	      "compacted");
	auto_created = 1;
	raw_close(&r);

	/* An empty body: no answer at all, and the stream goes with its
	 * client. */
	size_t streams = gw.n_streams;
	raw_start(&r, "/v3/watch", "", 0);
	for (int i = 0; i < 2000 && gw.n_streams == streams; i++)
		raw_pump(&r);
	pump_ms(50);
	raw_pump(&r);
	CHECK(r.len == 0, "empty body answered: %s", r.buf);
	raw_close(&r);
	for (int i = 0; i < 2000 && gw.n_streams > streams; i++)
		pump_ms(1);
	CHECK(gw.n_streams == streams, "empty stream not dropped on close");
}

static void test_storaged_restart(void)
{
	struct raw r;
	int nc = n_creates;
	revision = 20;
	raw_start(&r, "/v3/watch",
		  "{\"create_request\":{\"key\":\"YQ==\"}}"
		  "{\"create_request\":{\"key\":\"Yg==\"}}"
		  "{\"create_request\":{\"key\":\"Yw==\",\"start_revision\":5}}", 0);
	CHECK(raw_wait(&r, "\"watch_id\":\"2\",\"created\":true", 2000), "created");
	uint64_t wa = creates[nc].watcher;
	Mvccpb__KeyValue kv;
	Mvccpb__Event e = MVCCPB__EVENT__INIT, *evs[] = { &e };
	Ipc__WatchHit h = IPC__WATCH_HIT__INIT, *hits[] = { &h };
	uint32_t i0[] = { 0 };
	kv_set(&kv, "a", "1", 22, 22);
	e.kv = &kv;
	h.watcher = wa;
	h.events = i0;
	h.n_events = 1;
	send_events(22, evs, 1, hits, 1);
	CHECK(raw_wait(&r, "\"mod_revision\":\"22\"", 2000), "event 22");

	/* storaged restarts: every watch is registered again, from the
	 * revision after the last one its client got. */
	nc = n_creates;
	restart_storaged();
	wait_creates(nc + 3);
	int64_t want[3] = { 23, 21, 5 };
	for (int i = 0; i < 3; i++) {
		struct fake_create *c = &creates[nc + i];
		int k = c->key[0] - 'a';
		CHECK(k >= 0 && k < 3 && c->resume && c->start == want[k] &&
		      c->watcher != wa, "re-create %s: resume %d start %lld",
		      c->key, c->resume, (long long)c->start);
		if (k == 0)
			h.watcher = c->watcher;
	}
	kv_set(&kv, "a", "2", 22, 23);
	send_events(23, evs, 1, hits, 1);
	CHECK(raw_wait(&r, "\"mod_revision\":\"23\"", 2000), "event 23 after restart");
	char *b = raw_body(&r, NULL, NULL);
	int created = 0;
	for (char *p = b; (p = strstr(p, "\"created\"")); p++)
		created++;
	CHECK(created == 3, "%d created messages (resumed ones shown)", created);
	free(b);
	raw_close(&r);
	pump_ms(20);
}

/* The client stops reading: its watch is paused at storaged, then
 * registered again from the revision after the last one queued for it. */
static void test_slow_client(void)
{
	struct raw r;
	int nc = n_creates, nx = n_cancels;
	revision = 99;
	raw_start(&r, "/v3/watch", "{\"create_request\":{\"key\":\"YQ==\"}}", 4096);
	CHECK(raw_wait(&r, "created", 2000), "created");
	uint64_t wa = creates[nc].watcher;
	size_t vlen = 256 << 10;
	char *val = malloc(vlen + 1);
	memset(val, 'v', vlen);
	val[vlen] = 0;
	Mvccpb__KeyValue kv;
	Mvccpb__Event e = MVCCPB__EVENT__INIT, *evs[] = { &e };
	Ipc__WatchHit h = IPC__WATCH_HIT__INIT, *hits[] = { &h };
	uint32_t i0[] = { 0 };
	e.kv = &kv;
	h.watcher = wa;
	h.events = i0;
	h.n_events = 1;
	int64_t rev = 100;
	for (; rev < 300 && !was_cancelled(wa, nx); rev++) {
		kv_set(&kv, "a", val, 100, rev);
		send_events(rev, evs, 1, hits, 1);
		pump_ms(2);
	}
	CHECK(was_cancelled(wa, nx), "not paused after %lld events", (long long)(rev - 100));
	/* A few more in flight: dropped while paused. */
	for (int i = 0; i < 3; i++, rev++) {
		kv_set(&kv, "a", val, 100, rev);
		send_events(rev, evs, 1, hits, 1);
	}
	pump_ms(20);
	/* The client reads again: the watch resumes. */
	for (int i = 0; i < 20000 && n_creates == nc + 1; i++)
		raw_pump(&r);
	CHECK(n_creates == nc + 2 && creates[nc + 1].resume, "not resumed");
	for (int i = 0; i < 300; i++) {
		raw_pump(&r);
		pump_ms(1);
	}
	char *b = raw_body(&r, NULL, NULL);
	int64_t last = 99, gaps = 0;
	for (char *p = b; (p = strstr(p, "\"mod_revision\":\"")); p++) {
		int64_t v = strtoll(p + 16, NULL, 10);
		if (v != last + 1)
			gaps++;
		last = v;
	}
	free(b);
	CHECK(gaps == 0, "gaps in what the client got");
	CHECK(last > 100 && creates[nc + 1].start == last + 1,
	      "resumed at %lld, client got up to %lld",
	      (long long)creates[nc + 1].start, (long long)last);
	free(val);
	raw_close(&r);
	pump_ms(20);
}

static void test_prev_kv_and_fragment(void)
{
	struct raw r;
	int nc = n_creates;
	revision = 30;
	raw_start(&r, "/v3/watch",
		  "{\"create_request\":{\"key\":\"YQ==\",\"prev_kv\":true}}"
		  "{\"create_request\":{\"key\":\"YQ==\",\"fragment\":true}}", 0);
	CHECK(raw_wait(&r, "\"watch_id\":\"1\",\"created\":true", 2000), "created");
	CHECK(creates[nc].prev_kv && creates[nc + 1].fragment, "flags to storaged");
	Mvccpb__KeyValue kv[4], pkv;
	Mvccpb__Event e[4], *evs[4];
	Ipc__WatchHit ha = IPC__WATCH_HIT__INIT, hb = IPC__WATCH_HIT__INIT,
		      *hits[] = { &ha, &hb };
	uint32_t idx[] = { 0, 1, 2, 3 };
	static const char *vals[] = {
		"0123456789012345678901234567890123456789012345678901234567890",
		"1123456789012345678901234567890123456789012345678901234567890",
		"2123456789012345678901234567890123456789012345678901234567890",
		"3123456789012345678901234567890123456789012345678901234567890",
	};
	kv_set(&pkv, "a", "old", 5, 5);
	for (int i = 0; i < 4; i++) {
		mvccpb__event__init(&e[i]);
		kv_set(&kv[i], "a", vals[i], 5, 31);
		e[i].kv = &kv[i];
		e[i].prev_kv = i == 0 ? &pkv : NULL;
		evs[i] = &e[i];
	}
	ha.watcher = creates[nc].watcher;
	ha.events = idx;
	ha.n_events = 4;
	hb = ha;
	hb.watcher = creates[nc + 1].watcher;
	uint64_t mrb = gw.max_request_bytes;
	gw.max_request_bytes = 250;
	send_events(31, evs, 4, hits, 2);
	CHECK(raw_wait(&r, "MzEy", 2000) && raw_wait(&r, "\"watch_id\":\"1\",\"events\"", 2000),
	      "events");
	pump_ms(20);
	raw_pump(&r);
	gw.max_request_bytes = mrb;
	int chunks;
	char *b = raw_body(&r, &chunks, NULL);
	/* Watch 0: one message with prev_kv. Watch 1: parts of at least
	 * two events each below 250 bytes, all but the last marked. */
	char *m0 = strstr(b, R(31) ",\"events\"");
	CHECK(m0 && strstr(m0, "\"prev_kv\":{\"key\":\"YQ==\"") &&
	      strstr(m0, "\"prev_kv\"") < strchr(m0, '\n'), "prev_kv for watch 0");
	char *m1 = strstr(b, R(31) ",\"watch_id\":\"1\"");
	CHECK(m1 && !strstr(m1, "prev_kv"), "no prev_kv for watch 1");
	int parts = 0, marked = 0, events = 0;
	for (char *p = m1; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		char *nl = strchr(p, '\n');
		parts++;
		for (char *q = p; (q = strstr(q, "\"kv\":")) && q < nl; q++)
			events++;
		char *f = strstr(p, "\"fragment\":true");
		if (f && f < nl)
			marked++;
	}
	CHECK(parts >= 2 && marked == parts - 1 && events == 4,
	      "fragments: %d parts, %d marked, %d events\n%s", parts, marked,
	      events, m1 ? m1 : "");
	free(b);
	raw_close(&r);
	pump_ms(20);
}

int main(void)
{
	harness_init();
	test_framing_events_cancel();
	test_errors_and_refusals();
	test_storaged_restart();
	test_prev_kv_and_fragment();
	test_slow_client();
	harness_done();
	return failures ? 1 : 0;
}
