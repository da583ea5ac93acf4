/*
 * The configuration the workers start with (ipc.WorkerConfig), made from
 * the parsed flags: URL lists, the initial members, TLS settings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tls_conf.h"
#include "wcfg.h"

static char **url_strings(const struct url_list *l)
{
	char **v = calloc(l->n ? l->n : 1, sizeof(*v));
	if (v)
		for (size_t i = 0; i < l->n; i++)
			v[i] = l->v[i].str;
	return v;
}

/* A side's TLS settings for the workers, or NULL when no flag set them. */
static Ipc__TlsInfo *tls_info(const struct tls_side *s, Ipc__TlsInfo *ti)
{
	if (!s->given)
		return NULL;
	ipc__tls_info__init(ti);
	ti->cert_file = (char *)s->cert_file;
	ti->key_file = (char *)s->key_file;
	ti->trusted_ca_file = (char *)s->trusted_ca_file;
	ti->client_cert_auth = s->client_cert_auth;
	ti->crl_file = (char *)s->crl_file;
	ti->allowed_cn = (char *)s->allowed_cn;
	ti->allowed_hostname = (char *)s->allowed_hostname;
	ti->auto_tls = s->auto_tls;
	return ti;
}

/*
 * bootstrap: a new cluster's member; join: a new member of a running one
 * (before discoveryd's answer: member_id 0). Both get the --initial-cluster
 * members, as raftd's first log entries or as what discoveryd matches.
 */
int build_wcfg(const struct config *c, const struct tls_conf *tls,
		      uint64_t member_id, uint64_t cluster_id, const char *name,
		      bool bootstrap, bool join, struct wcfg_store *st)
{
	Ipc__WorkerConfig *w = &st->w;
	static const enum flag_id lf[4] = {
		F_LISTEN_CLIENT_URLS, F_ADVERTISE_CLIENT_URLS,
		F_LISTEN_PEER_URLS, F_INITIAL_ADVERTISE_PEER_URLS,
	};

	ipc__worker_config__init(w);
	w->name = (char *)name;
	w->data_dir = (char *)config_data_dir(c);
	w->member_id = member_id;
	w->cluster_id = cluster_id;
	for (int i = 0; i < 4; i++)
		if (!(st->lists[i] = url_strings(cfg_urls(c, lf[i]))))
			return -ENOMEM;
	w->n_listen_client_urls = cfg_urls(c, lf[0])->n;
	w->listen_client_urls = st->lists[0];
	w->n_advertise_client_urls = cfg_urls(c, lf[1])->n;
	w->advertise_client_urls = st->lists[1];
	w->n_listen_peer_urls = cfg_urls(c, lf[2])->n;
	w->listen_peer_urls = st->lists[2];
	w->n_initial_advertise_peer_urls = cfg_urls(c, lf[3])->n;
	w->initial_advertise_peer_urls = st->lists[3];
	w->bootstrap = bootstrap;
	w->join = join;
	if (bootstrap || join) {
		size_t n = c->n_members, nurls = 0;
		for (size_t i = 0; i < n; i++)
			nurls += c->members[i].peer_urls.n;
		st->members = calloc(n ? n : 1, sizeof(*st->members));
		st->member_ptrs = calloc(n ? n : 1, sizeof(*st->member_ptrs));
		st->member_urls = calloc(nurls ? nurls : 1, sizeof(char *));
		if (!st->members || !st->member_ptrs || !st->member_urls)
			return -ENOMEM;
		char **u = st->member_urls;
		for (size_t i = 0; i < n; i++) {
			Etcdserverpb__Member *m = &st->members[i];
			etcdserverpb__member__init(m);
			m->id = c->members[i].id;
			m->name = c->members[i].name;
			m->n_peerurls = c->members[i].peer_urls.n;
			m->peerurls = u;
			for (size_t k = 0; k < m->n_peerurls; k++)
				*u++ = c->members[i].peer_urls.v[k].str;
			/*
			 * No client URLs: every member must write the same
			 * bootstrap entries; each publishes its own client URLs
			 * through Raft once it runs (etcd's publish).
			 */
			st->member_ptrs[i] = m;
		}
		w->n_initial_members = n;
		w->initial_members = st->member_ptrs;
	}
	w->initial_cluster_token = (char *)config_cluster_token(c);
	w->snapshot_count = c->v[F_SNAPSHOT_COUNT].u;
	w->heartbeat_interval_ms = (uint32_t)c->v[F_HEARTBEAT_INTERVAL].u;
	w->election_timeout_ms = (uint32_t)c->v[F_ELECTION_TIMEOUT].u;
	w->max_request_bytes = c->v[F_MAX_REQUEST_BYTES].u;
	w->quota_backend_bytes = c->v[F_QUOTA_BACKEND_BYTES].i;
	w->enable_v2 = c->v[F_ENABLE_V2].b;
	w->log_level = (char *)(c->log_level == LOG_DEBUG ? "debug" :
				cfg_str(c, F_LOG_LEVEL));
	w->max_txn_ops = c->v[F_MAX_TXN_OPS].u > UINT32_MAX ?
				 UINT32_MAX : (uint32_t)c->v[F_MAX_TXN_OPS].u;
	w->auto_compaction_retention_s =
		c->compaction_retention > UINT32_MAX ?
			UINT32_MAX : (uint32_t)c->compaction_retention;
	w->auto_compaction_mode = (char *)cfg_str(c, F_AUTO_COMPACTION_MODE);
	w->wal_dir = (char *)cfg_str(c, F_WAL_DIR);
	w->strict_reconfig_check = c->v[F_STRICT_RECONFIG_CHECK].b;
	w->client_tls = tls_info(&tls->client, &st->client_tls);
	w->peer_tls = tls_info(&tls->peer, &st->peer_tls);
	w->n_cipher_suites = tls->n_ciphers;
	w->cipher_suites = tls->ciphers;
	w->discovery_srv = (char *)cfg_str(c, F_DISCOVERY_SRV);
	w->discovery_srv_name = (char *)cfg_str(c, F_DISCOVERY_SRV_NAME);
	w->discovery = (char *)cfg_str(c, F_DISCOVERY);
	w->discovery_proxy = (char *)cfg_str(c, F_DISCOVERY_PROXY);
	w->discovery_fallback = (char *)cfg_str(c, F_DISCOVERY_FALLBACK);
	/* Not an etcd flag: where to send DNS queries instead of the
	 * system's resolver (split DNS, tests). README documents it. */
	const char *res = getenv("ETCDC_RESOLVER");
	w->dns_resolver = (char *)(res ? res : "");
	return 0;
}

void wcfg_store_clear(struct wcfg_store *st)
{
	for (int i = 0; i < 4; i++)
		free(st->lists[i]);
	free(st->members);
	free(st->member_ptrs);
	free(st->member_urls);
	proxy_peers_clear(&st->peers);
}
