/*
 * Unit test of discoveryd's join: reading a peer's GET /members answer
 * (IDs beyond 2^63 intact, bad bodies refused) and matching it to the local
 * --initial-cluster with etcd's messages.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "join.h"

static Etcdserverpb__Member **parse(const char *s, size_t *n)
{
	Etcdserverpb__Member **v = NULL;
	CHECK(join_parse_members(s, strlen(s), &v, n) == 0);
	return v;
}

static void test_parse(void)
{
	size_t n;
	Etcdserverpb__Member **v = parse(
		"[{\"id\":1032128782005473832,\"peerURLs\":[\"http://a:2380\"],"
		"\"name\":\"infra0\",\"clientURLs\":[\"http://a:2379\"]},"
		"{\"id\":16034580659886723586,\"peerURLs\":[\"http://b:2380\","
		"\"http://b2:2380\"],\"isLearner\":true}]", &n);
	CHECK(n == 2);
	CHECK(v[0]->id == 1032128782005473832ull);
	CHECK(strcmp(v[0]->name, "infra0") == 0 && v[0]->n_clienturls == 1);
	CHECK(!v[0]->islearner);
	CHECK(v[1]->id == 16034580659886723586ull); /* > INT64_MAX */
	CHECK(v[1]->islearner && v[1]->n_peerurls == 2 && v[1]->name[0] == 0);
	CHECK(strcmp(v[1]->peerurls[1], "http://b2:2380") == 0);
	join_members_free(v, n);

	/* Digits inside strings stay strings. */
	v = parse("[ {\"peerURLs\": [\"http://10.0.0.1:2380\"], \"id\" : 7 } ]", &n);
	CHECK(n == 1 && v[0]->id == 7);
	CHECK(strcmp(v[0]->peerurls[0], "http://10.0.0.1:2380") == 0);
	join_members_free(v, n);

	static const char *const bad[] = {
		"", "{}", "[1]", "[{\"id\":0,\"peerURLs\":[]}]",
		"[{\"peerURLs\":[]}]", "[{\"id\":1.5,\"peerURLs\":[]}]",
		"[{\"id\":-3,\"peerURLs\":[]}]",
		"[{\"id\":18446744073709551616,\"peerURLs\":[]}]",
		"[{\"id\":1,\"peerURLs\":[3]}]", "[{\"id\":1,\"isLearner\":\"yes\"}]",
		"[{\"id\":1,\"peerURLs\":[]}", "[{\"id\":1,\"id\":2}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Etcdserverpb__Member **w = NULL;
		CHECK(join_parse_members(bad[i], strlen(bad[i]), &w, &n) == -EINVAL);
	}
}

static Etcdserverpb__Member *member(uint64_t id, const char *name, char **urls,
				    size_t n)
{
	static Etcdserverpb__Member pool[8];
	static size_t used;
	Etcdserverpb__Member *m = &pool[used++];
	etcdserverpb__member__init(m);
	m->id = id;
	m->name = (char *)name;
	m->peerurls = urls;
	m->n_peerurls = n;
	return m;
}

static void test_match(void)
{
	static char *ua[] = {"http://a:2380"}, *ub[] = {"http://b:2380"},
		    *uc[] = {"http://c:2380"};
	Etcdserverpb__Member *remote[] = {
		member(0x0e52dba8a5e49228, "infra0", ua, 1),
		member(0x813787ba09f04b02, "", ub, 1),
	};
	Etcdserverpb__Member *local[] = {
		member(111, "new", ub, 1), member(222, "infra0", ua, 1),
	};
	Etcdserverpb__Member *other[] = {
		member(333, "infra0", ua, 1), member(444, "new", uc, 1),
	};
	char err[JOIN_ERR_MAX];
	uint64_t self = 0;

	CHECK(join_match(0xd116fbd7bb384f31, remote, 2, local, 2, "new", &self,
			 err, sizeof(err)) == 0);
	CHECK(self == 0x813787ba09f04b02);

	CHECK(join_match(0xd116fbd7bb384f31, remote, 2, local, 1, "new", &self,
			 err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "error validating peerURLs {ClusterID:d116fbd7bb384f31 "
		     "Members:[&{ID:e52dba8a5e49228 RaftAttributes:{PeerURLs:"
		     "[http://a:2380] IsLearner:false} Attributes:{Name:infra0 "
		     "ClientURLs:[]}} &{ID:813787ba09f04b02 RaftAttributes:"
		     "{PeerURLs:[http://b:2380] IsLearner:false} Attributes:"
		     "{Name: ClientURLs:[]}}] RemovedMemberIDs:[]}: member count "
		     "is unequal") == 0);

	CHECK(join_match(1, remote, 2, other, 2, "new", &self, err,
			 sizeof(err)) == -EINVAL);
	const char *want = ": PeerURLs: no match found for existing member "
			   "(813787ba09f04b02, [http://b:2380]), last resolver "
			   "error (resolved urls: \"http://b:2380\" != "
			   "\"http://c:2380\")";
	CHECK(strlen(err) > strlen(want) &&
	      strcmp(err + strlen(err) - strlen(want), want) == 0);

	/* A long error is cut, never overrun. */
	char small[40];
	CHECK(join_match(1, remote, 2, other, 2, "new", &self, small,
			 sizeof(small)) == -EINVAL);
	CHECK(strlen(small) < sizeof(small));
}

int main(void)
{
	test_parse();
	test_match();
	return 0;
}
