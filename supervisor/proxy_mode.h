/* etcd's v2 proxy mode: the cluster file and gatewayd's proxy settings. */
#ifndef ETCD_SUPERVISOR_PROXY_MODE_H
#define ETCD_SUPERVISOR_PROXY_MODE_H

#include <stddef.h>

#include "ipc.pb-c.h"

struct config;

#define PROXY_MAX_PEERS 1024

/* The cluster's peer URLs (owned strings). */
struct proxy_peers {
	char **urls;
	size_t n;
};

/* Adds url unless it is there; 0, -E2BIG or -ENOMEM. */
int proxy_peers_add(struct proxy_peers *p, const char *url);
void proxy_peers_sort(struct proxy_peers *p);
void proxy_peers_clear(struct proxy_peers *p);
/* The list as Go's %v prints a []string ("[a b]"), malloc'd, or NULL. */
char *proxy_peers_go(const struct proxy_peers *p);

/* <dir>/proxy/cluster into *ret (empty on entry): 0, -ENOENT when there
 * is none, -EBADMSG when it is not etcd's JSON, or -errno. */
int proxy_cluster_read(const char *dir, struct proxy_peers *ret);
/* Writes it (mkdir <dir>/proxy 0700, the file synced then renamed into
 * place). 0 or -errno. */
int proxy_cluster_write(const char *dir, const struct proxy_peers *p);

/* gatewayd's settings from the --proxy* flags and p (borrowed). */
int proxy_config(const struct config *c, const struct proxy_peers *p,
		 Ipc__ProxyConfig *pc);

#endif
