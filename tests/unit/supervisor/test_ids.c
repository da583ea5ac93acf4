/* Member and cluster IDs against values etcd 3.4.23 computed. */
#include "check.h"
#include "ids.h"

static uint64_t mid(const char *urls, const char *token)
{
	struct url_list l = {0};
	char err[256];
	CHECK(url_list_parse(urls, &l, err, sizeof(err)) == 0);
	uint64_t id = ids_member_id(&l, token);
	url_list_clear(&l);
	return id;
}

int main(void)
{
	/* static.md: the guide's infra0 with token etcd-cluster-1. */
	uint64_t a = mid("http://127.0.2.10:2380", "etcd-cluster-1");
	CHECK(a == 14288156331571396022ull);
	CHECK(a == 0xc649ba7b4e8fbdb6ull);

	/* etcd's defaults: member 8e9e05c52164694d in cluster cdf818194e3a8c32. */
	uint64_t d = mid("http://localhost:2380", "etcd-cluster");
	CHECK(d == 0x8e9e05c52164694dull);
	CHECK(ids_cluster_id(&d, 1) == 0xcdf818194e3a8c32ull);

	/* Order of the URLs given does not matter; the token does. */
	CHECK(mid("http://127.0.0.2:2380,http://127.0.0.1:2380", "t") ==
	      mid("http://127.0.0.1:2380,http://127.0.0.2:2380", "t"));
	CHECK(mid("http://127.0.0.1:2380", "t1") != mid("http://127.0.0.1:2380", "t2"));
	CHECK(mid("http://127.0.0.1:2380", "t") != mid("https://127.0.0.1:2380", "t"));

	/* Cluster ID: the member IDs sorted, whatever order they come in. */
	uint64_t x[3] = {3, 1, 2}, y[3] = {1, 2, 3};
	CHECK(ids_cluster_id(x, 3) == ids_cluster_id(y, 3));
	CHECK(ids_cluster_id(x, 3) != ids_cluster_id(y, 2));
	CHECK_DONE();
}
