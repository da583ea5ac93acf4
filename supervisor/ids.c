/* Member and cluster IDs of an initial cluster (common/memberid.c hashes). */
#include <assert.h>

#include "ids.h"
#include "memberid.h"

uint64_t ids_member_id(const struct url_list *peer_urls, const char *token)
{
	const char *s[URL_LIST_MAX];

	assert(peer_urls->n <= URL_LIST_MAX); /* url_list_parse's bound */
	for (size_t i = 0; i < peer_urls->n; i++)
		s[i] = peer_urls->v[i].str;
	return memberid_new(s, peer_urls->n, token, -1);
}

uint64_t ids_cluster_id(const uint64_t *member_ids, size_t n)
{
	return memberid_cluster(member_ids, n);
}
