/* The configuration the workers start with, made from the parsed flags. */
#ifndef ETCD_SUPERVISOR_WCFG_H
#define ETCD_SUPERVISOR_WCFG_H

#include <stdbool.h>
#include <stdint.h>

#include "ipc.pb-c.h"
#include "proxy_mode.h"

struct config;
struct tls_conf;

/* The configuration every worker gets; strings borrowed from c. */
struct wcfg_store {
	Ipc__WorkerConfig w;
	char **lists[4];
	Etcdserverpb__Member *members;
	Etcdserverpb__Member **member_ptrs;
	char **member_urls;
	Ipc__TlsInfo client_tls, peer_tls;
	/* A v2 proxy: its settings and the cluster's peer URLs. */
	Ipc__ProxyConfig proxy;
	struct proxy_peers peers;
};

/*
 * Fills st->w from c: bootstrap: a new cluster's member; join: a new member
 * of a running one (before discoveryd's answer: member_id 0). Both get the
 * --initial-cluster members, as raftd's first log entries or as what
 * discoveryd matches. 0 or -ENOMEM.
 */
int build_wcfg(const struct config *c, const struct tls_conf *tls,
	       uint64_t member_id, uint64_t cluster_id, const char *name,
	       bool bootstrap, bool join, struct wcfg_store *st);
/* Frees what build_wcfg allocated in st (not st itself). */
void wcfg_store_clear(struct wcfg_store *st);

#endif
