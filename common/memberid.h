/* Member and cluster IDs, derived exactly as etcd 3.4 derives them
 * (etcdserver/api/membership's NewMember and genID). */
#ifndef ETCD_COMMON_MEMBERID_H
#define ETCD_COMMON_MEMBERID_H

#include <stddef.h>
#include <stdint.h>

/* The most members of one cluster whose IDs are hashed. */
#define MEMBERID_MAX_MEMBERS 128

/*
 * First 8 bytes, big-endian, of sha1(the peer URLs sorted and concatenated,
 * then cluster_name, then the decimal unix time if unix_s >= 0). A member of
 * an initial cluster hashes the cluster token and no time; one added at
 * runtime (etcd's MemberAdd) hashes "" and the time. urls is borrowed and
 * need not be sorted.
 */
uint64_t memberid_new(const char *const *urls, size_t n,
		      const char *cluster_name, int64_t unix_s);
/* First 8 bytes of sha1(the member IDs sorted, each 8 bytes big-endian);
 * n <= MEMBERID_MAX_MEMBERS. */
uint64_t memberid_cluster(const uint64_t *member_ids, size_t n);

#endif
