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

/* Sorts urls in byte order (Go's sort.Strings). */
void member_sort_urls(char **urls, size_t n);

#endif
