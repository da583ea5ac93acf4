/* URL parsing: Go's net/url and etcd's types.NewURLs, error texts included. */
#include "check.h"
#include "url.h"

static void ok(const char *in, const char *str, const char *scheme,
	       const char *host, const char *port)
{
	struct url u;
	char err[512] = "";
	int r = url_parse(in, &u, err, sizeof(err));
	CHECK(r == 0);
	if (r != 0) {
		fprintf(stderr, "  input %s: %s\n", in, err);
		return;
	}
	CHECK_STR(u.str, str);
	CHECK_STR(u.scheme, scheme);
	CHECK_STR(u.host, host);
	CHECK_STR(u.port, port);
	url_clear(&u);
}

static void bad(const char *in, const char *msg)
{
	struct url u = {0};
	char err[512] = "";
	CHECK(url_parse(in, &u, err, sizeof(err)) == -22);
	CHECK_STR(err, msg);
	CHECK(u.str == NULL);
}

static void lists(void)
{
	struct url_list l = {0};
	char err[512];

	CHECK(url_list_parse("", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 0);
	/* Sorted by printed form, spaces trimmed. */
	CHECK(url_list_parse(" http://127.0.0.2:2379 ,http://127.0.0.1:2379", &l,
			     err, sizeof(err)) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.v[0].str, "http://127.0.0.1:2379");
	CHECK_STR(l.v[1].str, "http://127.0.0.2:2379");
	char *j = url_list_join(&l, ",");
	CHECK_STR(j, "http://127.0.0.1:2379,http://127.0.0.2:2379");
	free(j);

	struct url_list c = {0};
	CHECK(url_list_copy(&l, &c) == 0);
	CHECK(url_list_equal(&l, &c));
	url_list_clear(&c);

	/* A failed parse leaves the old list alone. */
	CHECK(url_list_parse("http://127.0.0.77:2379,", &l, err, sizeof(err)) < 0);
	CHECK_STR(err, "URL scheme must be http, https, unix, or unixs: ");
	CHECK(l.n == 2);
	CHECK(url_list_parse("http://127.0.0.77:2379,,http://127.0.0.78:2379", &l,
			     err, sizeof(err)) < 0);
	url_list_clear(&l);
	url_list_clear(&l);

	/* The limit on the number of URLs. */
	char big[URL_LIST_MAX * 32];
	big[0] = '\0';
	for (int i = 0; i <= URL_LIST_MAX; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "%shttp://127.0.0.1:%d",
			 i ? "," : "", 1000 + i);
	CHECK(url_list_parse(big, &l, err, sizeof(err)) < 0);
	CHECK(l.n == 0);
}

int main(void)
{
	ok("http://127.0.0.1:2379", "http://127.0.0.1:2379", "http", "127.0.0.1", "2379");
	ok("HTTP://127.0.0.77:2379", "http://127.0.0.77:2379", "http", "127.0.0.77", "2379");
	ok("https://10.0.1.10:2380", "https://10.0.1.10:2380", "https", "10.0.1.10", "2380");
	ok("http://[::1]:2379", "http://[::1]:2379", "http", "::1", "2379");
	ok("http://localhost:2380", "http://localhost:2380", "http", "localhost", "2380");
	ok("http://infra0.example.com:2380", "http://infra0.example.com:2380", "http",
	   "infra0.example.com", "2380");
	ok("http://:2379", "http://:2379", "http", "", "2379");
	ok("  http://127.0.0.1:2379\t", "http://127.0.0.1:2379", "http", "127.0.0.1", "2379");
	ok("unix://127.0.0.77:2379", "unix://127.0.0.77:2379", "unix", "127.0.0.77", "2379");
	ok("http://user@127.0.0.77:2379", "http://user@127.0.0.77:2379", "http",
	   "127.0.0.77", "2379");
	ok("http://127.0.0.77:2379?x=1", "http://127.0.0.77:2379?x=1", "http",
	   "127.0.0.77", "2379");
	/* Go accepts any digits here; the bind refuses it later. */
	ok("http://127.0.0.77:99999", "http://127.0.0.77:99999", "http", "127.0.0.77", "99999");

	/* etcd 3.4.23's own words for each. */
	bad("qqq", "URL scheme must be http, https, unix, or unixs: qqq");
	bad("", "URL scheme must be http, https, unix, or unixs: ");
	bad("ftp://127.0.0.77:2379",
	    "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.77:2379");
	bad("http//bad:2379", "URL scheme must be http, https, unix, or unixs: http//bad:2379");
	bad("http://127.0.0.77",
	    "URL address does not have the form \"host:port\": http://127.0.0.77");
	bad("http:127.0.0.1:2379",
	    "URL address does not have the form \"host:port\": http:127.0.0.1:2379");
	bad("http://127.0.0.77:abc",
	    "parse \"http://127.0.0.77:abc\": invalid port \":abc\" after host");
	bad("http://127.0.0.77:-1",
	    "parse \"http://127.0.0.77:-1\": invalid port \":-1\" after host");
	bad("http://127.0.0.77:2379/path",
	    "URL must not contain a path: http://127.0.0.77:2379/path");
	bad("http://127.0.0.77:2379/", "URL must not contain a path: http://127.0.0.77:2379/");
	bad("127.0.0.77:2379",
	    "parse \"127.0.0.77:2379\": first path segment in URL cannot contain colon");
	bad("://x:1", "parse \"://x:1\": missing protocol scheme");
	bad("http://[::1:2379", "parse \"http://[::1:2379\": missing ']' in host");
	bad("http://a:b:2379",
	    "URL address does not have the form \"host:port\": http://a:b:2379");

	CHECK(url_host_is_ip("127.0.0.1"));
	CHECK(url_host_is_ip("::1"));
	CHECK(url_host_is_ip("::ffff:10.0.0.1"));
	CHECK(!url_host_is_ip("localhost"));
	CHECK(!url_host_is_ip("example.com"));
	CHECK(!url_host_is_ip(""));

	lists();
	CHECK_DONE();
}
