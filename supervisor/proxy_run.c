/*
 * Starting a v2 proxy, as etcd's startProxy: the peer URLs from the cluster
 * file, else from --initial-cluster (or, later, a discovery URL), the file
 * written, the client listeners bound (a proxy serves no peers), then
 * gatewayd alone. Also the fallback of a member whose discovery cluster
 * was full: it becomes such a proxy in front of that cluster.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listen.h"
#include "log.h"
#include "proxy_run.h"
#include "supervisor.h"

#define PKG "etcdmain"

/* The peer URLs of --initial-cluster, sorted (etcd's URLsMap.URLs()). */
static int peers_from_flags(struct config *c, struct proxy_peers *p)
{
	struct cfg_error e;
	if (config_parse_cluster(c, &e) < 0) {
		log_crit(PKG, "error setting up initial cluster: %s", e.msg);
		return -1;
	}
	for (size_t i = 0; i < c->n_members; i++)
		for (size_t k = 0; k < c->members[i].peer_urls.n; k++)
			if (proxy_peers_add(p, c->members[i].peer_urls.v[k].str) < 0) {
				log_crit(PKG, "too many peer URLs in --initial-cluster");
				return -1;
			}
	proxy_peers_sort(p);
	return 0;
}

static void log_peers(const struct proxy_peers *p, const char *file)
{
	char *s = proxy_peers_go(p);
	if (file)
		log_info(PKG, "proxy: using peer urls %s from cluster file \"%s\"",
			 s ? s : "", file);
	else
		log_info(PKG, "proxy: using peer urls %s ", s ? s : "");
	free(s);
}

/* Writes the cluster file and fills st's proxy settings; 0 or -1 logged. */
static int settle(const struct config *c, const char *dir, struct wcfg_store *st)
{
	int r = proxy_cluster_write(dir, &st->peers);
	if (r < 0) {
		log_crit(PKG, "cannot write %s/proxy/cluster: %s", dir, strerror(-r));
		return -1;
	}
	proxy_config(c, &st->peers, &st->proxy);
	st->w.proxy = &st->proxy;
	return 0;
}

int proxy_run(struct config *c, const struct tls_conf *tls, const char *dir)
{
	struct listener ls[2 * URL_LIST_MAX];
	size_t n_ls = 0;
	struct wcfg_store st;
	char path[PATH_MAX], err[512];
	int code = 1;

	memset(&st, 0, sizeof(st));
	log_notice(PKG, "proxy: this proxy supports v2 API only!");
	snprintf(path, sizeof(path), "%s/proxy/cluster", dir);
	int r = proxy_cluster_read(dir, &st.peers);
	if (r == 0) {
		if (cfg_str(c, F_DISCOVERY)[0])
			log_warn(PKG, "discovery token ignored since the proxy has already been initialized. Valid cluster file found at \"%s\"",
				 path);
		if (cfg_str(c, F_DISCOVERY_SRV)[0])
			log_warn(PKG, "DNS SRV discovery ignored since the proxy has already been initialized. Valid cluster file found at \"%s\"",
				 path);
		log_peers(&st.peers, path);
	} else if (r != -ENOENT) {
		log_crit(PKG, "cannot read %s: %s", path,
			 r == -EBADMSG ? "not etcd's cluster file" : strerror(-r));
		goto out;
	} else if (cfg_str(c, F_DISCOVERY)[0] || cfg_str(c, F_DISCOVERY_SRV)[0]) {
		/* etcd's proxy reads the discovery cluster (or the SRV
		 * records) without registering: not done here yet. */
		log_crit(PKG, "--proxy with --%s is not supported yet",
			 cfg_str(c, F_DISCOVERY)[0] ? "discovery" : "discovery-srv");
		goto out;
	} else {
		if (peers_from_flags(c, &st.peers) < 0)
			goto out;
		log_peers(&st.peers, NULL);
	}

	if (listeners_open(c, true, ls, &n_ls, err, sizeof(err)) < 0) {
		log_crit(PKG, "%s", err);
		goto out;
	}
	if (build_wcfg(c, tls, 0, 0, cfg_str(c, F_NAME), false, false, &st) < 0) {
		log_crit(PKG, "out of memory");
		goto out;
	}
	if (settle(c, dir, &st) < 0)
		goto out;
	for (size_t i = 0; i < n_ls; i++)
		log_info(PKG, "v2 proxy started listening on client requests on \"%s\"",
			 ls[i].url);
	code = supervisor_run(&st.w, NULL, ls, n_ls);
out:
	for (size_t i = 0; i < n_ls; i++)
		listener_close(&ls[i]);
	wcfg_store_clear(&st);
	return code;
}

int proxy_fallback(const struct config *c, const char *dir,
		   const Ipc__JoinResult *r, struct wcfg_store *st)
{
	log_notice(PKG, "proxy: this proxy supports v2 API only!");
	for (size_t i = 0; i < r->n_members; i++)
		for (size_t k = 0; k < r->members[i]->n_peerurls; k++)
			if (proxy_peers_add(&st->peers, r->members[i]->peerurls[k]) < 0) {
				log_crit(PKG, "too many peer URLs in the discovery cluster");
				return -1;
			}
	proxy_peers_sort(&st->peers);
	log_peers(&st->peers, NULL);
	/* The member dir made at the start stays empty: a data dir holds a
	 * member or a proxy, never both. */
	char member[PATH_MAX];
	snprintf(member, sizeof(member), "%s/member", dir);
	rmdir(member);
	return settle(c, dir, st);
}
