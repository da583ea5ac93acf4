/*
 * etcd's publish: a member makes its name and client URLs known to the
 * cluster through Raft (InternalRaftRequest cluster_member_attr_set), so
 * that every member's list shows them. As etcd does at every start, storaged
 * proposes it once a leader is known and again every second until it sees
 * its own request applied. (Its own record may already look right locally:
 * the bootstrap entries a member writes for itself carry its client URLs,
 * the other members' do not.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "raft_internal.pb-c.h"
#include "storaged.h"

/* etcd's line once its publish went through. */
static void log_published(const Ipc__WorkerConfig *cfg)
{
	char urls[1024];
	size_t n = 0;
	urls[0] = 0;
	for (size_t i = 0; i < cfg->n_advertise_client_urls && n < sizeof(urls);
	     i++) {
		int k = snprintf(urls + n, sizeof(urls) - n, "%s%s", i ? " " : "",
				 cfg->advertise_client_urls[i]);
		if (k < 0)
			break;
		n += (size_t)k;
	}
	log_info("etcdserver", "published {Name:%s ClientURLs:[%s]} to cluster "
		 "%" PRIx64, cfg->name, urls, cfg->cluster_id);
}

void storaged_published(struct storaged *st)
{
	st->published = 1;
	log_published(st->w->cfg);
}

void storaged_publish(struct storaged *st)
{
	const Ipc__WorkerConfig *cfg = st->w->cfg;
	if (st->published || !st->leader_id || !st->w->peer[PROC_RAFTD])
		return;
	/* No record yet: our ConfChange is not applied (or we were
	 * removed); nothing to publish to. */
	if (mvcc_member_attr_equal(st->m, cfg->member_id, cfg->name,
				   cfg->advertise_client_urls,
				   cfg->n_advertise_client_urls) == -ENOENT)
		return;

	Etcdserverpb__Attributes at = ETCDSERVERPB__ATTRIBUTES__INIT;
	Etcdserverpb__ClusterMemberAttrSetRequest set =
		ETCDSERVERPB__CLUSTER_MEMBER_ATTR_SET_REQUEST__INIT;
	Etcdserverpb__RequestHeader hdr = ETCDSERVERPB__REQUEST_HEADER__INIT;
	Etcdserverpb__InternalRaftRequest r =
		ETCDSERVERPB__INTERNAL_RAFT_REQUEST__INIT;
	at.name = cfg->name;
	at.client_urls = cfg->advertise_client_urls;
	at.n_client_urls = cfg->n_advertise_client_urls;
	set.member_id = cfg->member_id;
	set.member_attributes = &at;
	/* One ID for every retry: seeing it applied ends them. */
	if (!st->publish_id)
		st->publish_id = storaged_own_id(st);
	r.id = hdr.id = st->publish_id;
	r.header = &hdr;
	r.cluster_member_attr_set = &set;

	size_t len = etcdserverpb__internal_raft_request__get_packed_size(&r);
	uint8_t *buf = malloc(len);
	if (!buf)
		return; /* the next second tries again */
	etcdserverpb__internal_raft_request__pack(&r, buf);
	if (worker_send(st->w, PROC_RAFTD, MSG_PROPOSE, r.id, buf, len) == 0)
		log_debug("etcdserver", "publishing %s %016" PRIx64 " (request "
			  "%016" PRIx64 ")", cfg->name, cfg->member_id, r.id);
	free(buf);
}
