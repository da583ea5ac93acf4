/* Starting a member as etcd's v2 proxy (proxy_run.c). */
#ifndef ETCD_SUPERVISOR_PROXY_RUN_H
#define ETCD_SUPERVISOR_PROXY_RUN_H

#include "ipc.pb-c.h"
#include "wcfg.h"

struct config;
struct tls_conf;

/* --proxy on|readonly with a new data dir, or a data dir holding a proxy:
 * runs it; returns the exit code. */
int proxy_run(struct config *c, const struct tls_conf *tls, const char *dir);

/* discoveryd found the discovery cluster full (r->proxy): st (built for
 * the member) becomes a proxy's, in front of r's members. 0 or -1 logged. */
int proxy_fallback(const struct config *c, const char *dir,
		   const Ipc__JoinResult *r, struct wcfg_store *st);

#endif
