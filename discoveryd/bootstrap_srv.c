/*
 * Bootstrapping a new cluster from DNS SRV records (--discovery-srv): the
 * initial cluster as etcd's GetDNSCluster builds it (srv.c), logged as etcd
 * logs it, handed to the supervisor as a JoinResult with bootstrap set; the
 * supervisor then starts the member as a static one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join.h"
#include "log.h"
#include "srv.h"
#include "worker.h"

static void send_error(struct worker *w, const char *why)
{
	char msg[SRV_ERR_MAX + 64];
	Ipc__JoinResult r = IPC__JOIN_RESULT__INIT;
	Ipc__Error e = IPC__ERROR__INIT;
	log_err("embed", "couldn't resolve during SRV discovery (%s)", why);
	snprintf(msg, sizeof(msg), "error setting up initial cluster: %s", why);
	e.code = 1;
	e.message = msg;
	r.error = &e;
	worker_send_pb(w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &r.base);
}

int bootstrap_srv(struct worker *w)
{
	const Ipc__WorkerConfig *c = w->cfg;
	char err[SRV_ERR_MAX];
	struct srv_resolver *res = NULL;
	struct srv_cluster *cl = NULL;
	int r = srv_resolver_new(c->dns_resolver, &res, err, sizeof(err));
	if (r == 0)
		r = srv_server_cluster(res, c->discovery_srv, c->discovery_srv_name,
				       c->name,
				       (const char *const *)c->initial_advertise_peer_urls,
				       c->n_initial_advertise_peer_urls, &cl, err,
				       sizeof(err));
	srv_resolver_free(res);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		send_error(w, err);
		return 0;
	}

	Etcdserverpb__Member *m = calloc(cl->n ? cl->n : 1, sizeof(*m));
	Etcdserverpb__Member **mp = calloc(cl->n ? cl->n : 1, sizeof(*mp));
	if (!m || !mp) {
		free(m);
		free(mp);
		srv_cluster_free(cl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cl->n; i++) {
		log_notice("embed", "%s", cl->members[i].log);
		etcdserverpb__member__init(&m[i]);
		m[i].name = cl->members[i].name;
		m[i].n_peerurls = 1;
		m[i].peerurls = &cl->members[i].url;
		mp[i] = &m[i];
	}
	Ipc__JoinResult jr = IPC__JOIN_RESULT__INIT;
	jr.bootstrap = 1;
	jr.n_members = cl->n;
	jr.members = mp;
	worker_send_pb(w, PROC_SUPERVISOR, MSG_JOIN_RESULT, 0, &jr.base);
	free(m);
	free(mp);
	srv_cluster_free(cl);
	return 0;
}
