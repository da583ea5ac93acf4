/*
 * The membership API's pure parts (peer URL checks, new member IDs), apart
 * so that tests can reach them.
 */
#ifndef ETCD_GATEWAYD_MEMBER_H
#define ETCD_GATEWAYD_MEMBER_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/*
 * Checks one peer URL as etcd's types.NewURLs does (spaces around it are
 * trimmed) and sets *ret to the URL as etcd keeps it (Go's url.String: the
 * scheme in lower case), allocated in a. Returns -EINVAL if etcd refuses
 * it, -ENOMEM.
 */
int peerurl_check(const char *in, struct arena *a, char **ret);

/*
 * etcd's membership.NewMember ID: the first 8 bytes, big-endian, of
 * sha1(urls concatenated + token + decimal unix_s); urls (borrowed) must
 * be sorted as Go's sort.Strings sorts them (byte order). Returns 0, or
 * -ENOMEM (*ret_id untouched).
 */
int member_id_new(char *const *urls, size_t n, const char *token,
		  int64_t unix_s, uint64_t *ret_id);

/* Sorts urls in byte order (Go's sort.Strings). */
void member_sort_urls(char **urls, size_t n);

#endif
