/*
 * Unit test of the pure parts of discoveryd's etcd discovery client: URLs
 * and proxies, requests as Go writes them, the registered value, the v2
 * answers, checkCluster's sort and "full" test, nodesToCluster, the
 * backoff and its log text, and the member ID with the URL as token.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "discovery.h"
#include "memberid.h"

#define STREQ(a, b) (strcmp((a), (b)) == 0)

static void test_url(void)
{
	struct disc_url u;
	CHECK(disc_url_parse("http://127.0.3.21:2379/v2/keys/discovery/tok1", &u) == 0);
	CHECK(STREQ(u.scheme, "http") && STREQ(u.host, "127.0.3.21"));
	CHECK(u.port == 2379 && STREQ(u.hostport, "127.0.3.21:2379"));
	CHECK(STREQ(u.endpoint, "http://127.0.3.21:2379"));
	CHECK(STREQ(u.path, "/v2/keys/discovery/tok1"));
	disc_url_clear(&u);

	CHECK(disc_url_parse("https://myetcd.local/v2/keys//discovery/./x/?a=b", &u) == 0);
	CHECK(u.port == 443 && STREQ(u.hostport, "myetcd.local"));
	CHECK(STREQ(u.endpoint, "https://myetcd.local"));
	CHECK(STREQ(u.path, "/v2/keys/discovery/x"));
	disc_url_clear(&u);

	CHECK(disc_url_parse("http://[::1]:4001/a/../b", &u) == 0);
	CHECK(STREQ(u.host, "::1") && u.port == 4001 && STREQ(u.hostport, "[::1]:4001"));
	CHECK(STREQ(u.path, "/b"));
	disc_url_clear(&u);

	CHECK(disc_url_parse("http://h:1", &u) == 0 && STREQ(u.path, ""));
	disc_url_clear(&u);

	static const char *const bad[] = {
		"", "h:2379/x", "ftp://h/x", "http://:80/x", "http://h:99999/x",
		"http://h:12a/x", "http://[::1/x", "http://[::1]x/y",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(disc_url_parse(bad[i], &u) == -EINVAL);
}

static void test_proxy(void)
{
	struct disc_url p;
	char *shown;
	CHECK(disc_proxy_parse("http://127.0.3.22:3128", &p, &shown) == 0);
	CHECK(STREQ(shown, "http://127.0.3.22:3128") && p.port == 3128);
	free(shown);
	disc_url_clear(&p);
	/* newProxyFunc puts http:// in front of a bare host:port... */
	CHECK(disc_proxy_parse("127.0.3.22:3128", &p, &shown) == 0);
	CHECK(STREQ(shown, "http://127.0.3.22:3128") && STREQ(p.host, "127.0.3.22"));
	free(shown);
	disc_url_clear(&p);
	/* ...and of a "scheme" that is a host name. */
	CHECK(disc_proxy_parse("localhost:3128", &p, &shown) == 0);
	CHECK(STREQ(shown, "http://localhost:3128") && p.port == 3128);
	free(shown);
	disc_url_clear(&p);
	CHECK(disc_proxy_parse("proxy.local", &p, &shown) == 0 && p.port == 80);
	free(shown);
	disc_url_clear(&p);
	CHECK(disc_proxy_parse("https://p:3129", &p, &shown) == -EPROTONOSUPPORT);
}

static void test_requests(void)
{
	struct disc_url u;
	char *s;
	CHECK(disc_url_parse("http://127.0.3.20:2379/v2/keys/discovery/tok", &u) == 0);
	CHECK(disc_request_format(&u, false, "GET",
				  "/v2/keys/discovery/tok/_config/size?quorum=false&recursive=false&sorted=false",
				  NULL, &s) == 0);
	CHECK(STREQ(s, "GET /v2/keys/discovery/tok/_config/size?quorum=false&recursive=false&sorted=false HTTP/1.1\r\n"
		       "Host: 127.0.3.20:2379\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"));
	free(s);
	/* Through an http proxy: absolute form, the target's Host. */
	CHECK(disc_request_format(&u, true, "PUT", "/v2/keys/discovery/tok/bd556a29af55639f?prevExist=false",
				  "value=infra0%3Dhttp%3A%2F%2F127.0.3.10%3A2380", &s) == 0);
	CHECK(STREQ(s, "PUT http://127.0.3.20:2379/v2/keys/discovery/tok/bd556a29af55639f?prevExist=false HTTP/1.1\r\n"
		       "Host: 127.0.3.20:2379\r\nUser-Agent: Go-http-client/1.1\r\n"
		       "Content-Length: 45\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
		       "value=infra0%3Dhttp%3A%2F%2F127.0.3.10%3A2380"));
	free(s);
	disc_url_clear(&u);

	CHECK(disc_url_parse("https://myetcd.local/v2/keys/discovery/x", &u) == 0);
	CHECK(disc_connect_format(&u, &s) == 0);
	CHECK(STREQ(s, "CONNECT myetcd.local:443 HTTP/1.1\r\nHost: myetcd.local:443\r\n"
		       "User-Agent: Go-http-client/1.1\r\n\r\n"));
	free(s);
	disc_url_clear(&u);
	CHECK(disc_url_parse("https://[::1]:2379/x", &u) == 0);
	CHECK(disc_connect_format(&u, &s) == 0);
	CHECK(strncmp(s, "CONNECT [::1]:2379 HTTP/1.1\r\nHost: [::1]:2379\r\n", 47) == 0);
	free(s);
	disc_url_clear(&u);
}

static void test_value(void)
{
	char *v, *f;
	char *one[] = {"http://127.0.3.10:2380"};
	CHECK(disc_self_value("infra0", one, 1, &v) == 0);
	CHECK(STREQ(v, "infra0=http://127.0.3.10:2380"));
	CHECK(disc_form_value("value", v, &f) == 0);
	CHECK(STREQ(f, "value=infra0%3Dhttp%3A%2F%2F127.0.3.10%3A2380"));
	free(v);
	free(f);
	/* URLsMap.String(): the pairs sorted, joined with ",". */
	char *two[] = {"https://b:2380", "http://a:2380"};
	CHECK(disc_self_value("m 1", two, 2, &v) == 0);
	CHECK(STREQ(v, "m 1=http://a:2380,m 1=https://b:2380"));
	CHECK(disc_form_value("value", v, &f) == 0);
	CHECK(STREQ(f, "value=m+1%3Dhttp%3A%2F%2Fa%3A2380%2Cm+1%3Dhttps%3A%2F%2Fb%3A2380"));
	free(v);
	free(f);
	CHECK(disc_form_value("value", "a~b-c_d.e/é", &f) == 0);
	CHECK(STREQ(f, "value=a~b-c_d.e%2F%C3%A9"));
	free(f);
}

static void test_id(void)
{
	/* The facts file's check: the discovery URL is the cluster token. */
	const char *u[] = {"http://127.0.3.10:2380"};
	CHECK(memberid_new(u, 1, "http://127.0.3.21:2379/v2/keys/discovery/tok1", -1) ==
	      0xbd556a29af55639full);
}

static void test_size_backoff(void)
{
	long s;
	CHECK(disc_parse_size("3", &s) == 0 && s == 3);
	CHECK(disc_parse_size("+03", &s) == 0 && s == 3);
	CHECK(disc_parse_size("-1", &s) == 0 && s == -1);
	CHECK(disc_parse_size("9223372036854775807", &s) == 0);
	static const char *const bad[] = {"", "x", "3 ", " 3", "3.0", "+",
					  "9223372036854775808", "0x3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(disc_parse_size(bad[i], &s) == -EINVAL);

	static const unsigned want[] = {2, 4, 8, 16, 32, 64, 128, 256, 256, 256};
	for (unsigned i = 0; i < 10; i++)
		CHECK(disc_backoff_s(i + 1) == want[i]);
	char d[32];
	disc_go_duration(2, d, sizeof(d));
	CHECK(STREQ(d, "2s"));
	disc_go_duration(64, d, sizeof(d));
	CHECK(STREQ(d, "1m4s"));
	disc_go_duration(256, d, sizeof(d));
	CHECK(STREQ(d, "4m16s"));
	disc_go_duration(3600, d, sizeof(d));
	CHECK(STREQ(d, "1h0m0s"));
}

static void test_parse(void)
{
	struct disc_node n, *v;
	size_t cnt;
	const char *size = "{\"action\":\"get\",\"node\":{\"key\":\"/discovery/tok1/_config/size\","
			   "\"value\":\"3\",\"modifiedIndex\":4,\"createdIndex\":4}}\n";
	CHECK(disc_parse_node(size, strlen(size), &n) == 0);
	CHECK(STREQ(n.value, "3") && n.created == 4 && n.modified == 4);
	free(n.key);
	free(n.value);

	/* Only _config below: no "nodes" field. */
	const char *empty = "{\"action\":\"get\",\"node\":{\"key\":\"/discovery/tok1\",\"dir\":true,"
			    "\"modifiedIndex\":4,\"createdIndex\":4}}";
	CHECK(disc_parse_dir(empty, strlen(empty), &v, &cnt) == 0 && cnt == 0);
	disc_nodes_free(v, cnt);

	const char *dir = "{\"action\":\"get\",\"node\":{\"key\":\"/d/t\",\"dir\":true,\"nodes\":["
			  "{\"key\":\"/d/t/b\",\"value\":\"b=http://b:2380\",\"modifiedIndex\":9,\"createdIndex\":9},"
			  "{\"key\":\"/d/t/_config\",\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4},"
			  "{\"key\":\"/d/t/a\",\"value\":\"a=http://a:2380\",\"modifiedIndex\":5,\"createdIndex\":5},"
			  "{\"key\":\"/d/t/c\",\"value\":\"c=http://c:2380\",\"modifiedIndex\":12,\"createdIndex\":7}"
			  "],\"modifiedIndex\":4,\"createdIndex\":4}}";
	CHECK(disc_parse_dir(dir, strlen(dir), &v, &cnt) == 0 && cnt == 4);
	CHECK(STREQ(v[1].key, "/d/t/_config") && STREQ(v[1].value, ""));
	/* Sorted by createdIndex, _config dropped; self "b" is third. */
	CHECK(disc_check_nodes(v, &cnt, 3, "b") == 0 && cnt == 3);
	CHECK(STREQ(v[0].key, "/d/t/a") && STREQ(v[1].key, "/d/t/c") && STREQ(v[2].key, "/d/t/b"));
	disc_nodes_free(v, cnt);

	/* Full: self is not among the first size nodes (or not there). */
	CHECK(disc_parse_dir(dir, strlen(dir), &v, &cnt) == 0);
	CHECK(disc_check_nodes(v, &cnt, 2, "b") == -ENOSPC && cnt == 2);
	CHECK(STREQ(v[0].key, "/d/t/a") && STREQ(v[1].key, "/d/t/c"));
	disc_nodes_free(v, cnt);
	CHECK(disc_parse_dir(dir, strlen(dir), &v, &cnt) == 0);
	CHECK(disc_check_nodes(v, &cnt, 3, "zz") == -ENOSPC && cnt == 3);
	disc_nodes_free(v, cnt);
	/* Not full yet: fewer nodes than size, self absent (the fast path). */
	CHECK(disc_parse_dir(dir, strlen(dir), &v, &cnt) == 0);
	CHECK(disc_check_nodes(v, &cnt, 5, "zz") == 0 && cnt == 3);
	disc_nodes_free(v, cnt);
	/* Self first: never full, even with more nodes than size. */
	CHECK(disc_parse_dir(dir, strlen(dir), &v, &cnt) == 0);
	CHECK(disc_check_nodes(v, &cnt, 1, "a") == 0 && cnt == 3);
	disc_nodes_free(v, cnt);

	static const char *const bad[] = {
		"", "[]", "{}", "{\"node\":3}", "{\"node\":{\"key\":1}}",
		"{\"node\":{\"value\":true}}", "{\"node\":{\"createdIndex\":-1}}",
		"{\"node\":{\"createdIndex\":1.5}}", "{\"node\":{\"nodes\":{}}}",
		"{\"node\":{\"nodes\":[3]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(disc_parse_dir(bad[i], strlen(bad[i]), &v, &cnt) == -EINVAL);

	char buf[256];
	int code;
	const char *e = "{\"errorCode\":100,\"message\":\"Key not found\","
			"\"cause\":\"/discovery/nosize\",\"index\":7}\n";
	CHECK(disc_parse_error(e, strlen(e), &code, buf, sizeof(buf)) == 0);
	CHECK(code == 100 && STREQ(buf, "100: Key not found (/discovery/nosize) [7]"));
	CHECK(disc_parse_error("<html>", 6, &code, buf, sizeof(buf)) == -EINVAL);

	size_t bl;
	const char *b = disc_key_base("/d/t/bd55/", &bl);
	CHECK(bl == 4 && strncmp(b, "bd55", 4) == 0);
	b = disc_key_base("", &bl);
	CHECK(bl == 1 && b[0] == '.');
}

static void test_cluster(void)
{
	struct disc_cluster *c;
	char *dup;
	char *v1[] = {"infra0=http://10.0.1.10:2380", "infra1=http://10.0.1.11:2380",
		      "infra2=https://10.0.1.12:2380,infra2=http://10.0.1.12:2381"};
	CHECK(disc_cluster_new(v1, 3, 3, &c) == 0 && c->n == 3);
	CHECK(STREQ(c->m[0].name, "infra0") && c->m[0].n == 1);
	CHECK(STREQ(c->m[2].name, "infra2") && c->m[2].n == 2);
	CHECK(STREQ(c->m[2].urls[0], "http://10.0.1.12:2381")); /* sorted */
	CHECK(STREQ(c->joined, "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,"
			       "infra2=https://10.0.1.12:2380,infra2=http://10.0.1.12:2381"));
	CHECK(disc_cluster_dup_url(c, &dup) == 0);
	disc_cluster_free(c);

	/* ErrDuplicateName: the names are fewer than size. */
	char *v2[] = {"infra0=http://a:2380", "infra1=http://b:2380", "infra1=http://c:2380"};
	CHECK(disc_cluster_new(v2, 3, 3, &c) == -ENOTUNIQ);
	/* ErrInvalidURL comes first. */
	static const char *const bad[] = {
		"x=ftp://a:1", "x=http://a", "x=http://a:1/p", "x", "x=", "x=http://a:1:2",
		"x=http://[::1]", "x=h:1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *v[] = {(char *)bad[i], "infra1=http://b:2380"};
		CHECK(disc_cluster_new(v, 2, 2, &c) == -EINVAL);
	}
	/* Accepted by types.NewURLs: spaces trimmed, IPv6, unix, empty
	 * entries skipped. */
	char *v3[] = {"a= http://[::1]:2380 ,,", "b=unix://sock:0"};
	CHECK(disc_cluster_new(v3, 2, 2, &c) == 0 && c->n == 2);
	CHECK(STREQ(c->m[0].urls[0], "http://[::1]:2380"));
	disc_cluster_free(c);

	/* checkDuplicateURL: one URL under two names. */
	char *v4[] = {"b=http://a:2380", "a=http://a:2380"};
	CHECK(disc_cluster_new(v4, 2, 2, &c) == 0);
	CHECK(disc_cluster_dup_url(c, &dup) == 1);
	CHECK(STREQ(dup, "a=http://a:2380,b=http://a:2380"));
	free(dup);
	disc_cluster_free(c);
}

int main(void)
{
	test_url();
	test_proxy();
	test_requests();
	test_value();
	test_id();
	test_size_backoff();
	test_parse();
	test_cluster();
	return 0;
}
