/* Member and cluster IDs, derived exactly as etcd 3.4 derives them. */
#ifndef ETCD_SUPERVISOR_IDS_H
#define ETCD_SUPERVISOR_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "memberid.h"
#include "url.h"

/* The most members an initial cluster may list. */
#define IDS_MAX_MEMBERS MEMBERID_MAX_MEMBERS

/*
 * First 8 bytes, big-endian, of sha1(the peer URLs sorted and concatenated,
 * then the cluster token). peer_urls is borrowed; it need not be sorted.
 */
uint64_t ids_member_id(const struct url_list *peer_urls, const char *token);
/*
 * First 8 bytes of sha1(the member IDs sorted, each 8 bytes big-endian);
 * n <= IDS_MAX_MEMBERS.
 */
uint64_t ids_cluster_id(const uint64_t *member_ids, size_t n);

#endif
