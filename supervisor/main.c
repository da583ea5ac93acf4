/*
 * The etcd executable. "etcd -P <role>" runs a worker; anything else is the
 * supervisor: configuration, data dir, listeners, then the workers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "autotls.h"
#include "config.h"
#include "datadir.h"
#include "listen.h"
#include "log.h"
#include "proc.h"
#include "rpc.pb-c.h"
#include "supervisor.h"
#include "tls_conf.h"

extern char **environ;

#define PKG "etcdmain"

static const char *go_arch(void)
{
	static struct utsname u;
	if (uname(&u) < 0)
		return "unknown";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	if (strcmp(u.machine, "i686") == 0 || strcmp(u.machine, "i386") == 0)
		return "386";
	return u.machine;
}

static int report(const struct config *c, const struct cfg_error *e)
{
	for (size_t i = 0; c && i < c->n_notes; i++)
		log_msg(c->notes[i].lvl, c->notes[i].pkg, "%s", c->notes[i].text);
	switch (e->kind) {
	case CFG_ERR_FLAG:
		fprintf(stderr, "%s\n%s", e->msg, config_usage_text);
		break;
	case CFG_ERR_VERIFY:
		log_err(PKG, "error verifying flags, %s. See 'etcd --help'.", e->msg);
		if (e->extra[0])
			log_err(PKG, "%s", e->extra);
		break;
	case CFG_ERR_FATAL:
		log_crit(e->pkg[0] ? e->pkg : PKG, "%s", e->msg);
		break;
	case CFG_ERR_PLAIN:
		fprintf(stderr, "etcd: %s\n", e->msg);
		break;
	}
	return config_exit_code(e->kind);
}

/* The configuration every worker gets; strings borrowed from c. */
struct wcfg_store {
	Ipc__WorkerConfig w;
	char **lists[4];
	Etcdserverpb__Member *members;
	Etcdserverpb__Member **member_ptrs;
	char **member_urls;
	Ipc__TlsInfo client_tls, peer_tls;
};

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
static int build_wcfg(const struct config *c, const struct tls_conf *tls,
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

static void wcfg_store_clear(struct wcfg_store *st)
{
	for (int i = 0; i < 4; i++)
		free(st->lists[i]);
	free(st->members);
	free(st->member_ptrs);
	free(st->member_urls);
}

/* A new member's state while discoveryd finds its cluster (a running one
 * it joins, or DNS SRV records). */
struct join_ctx {
	struct config *c;
	const struct tls_conf *tls;
	const char *dir;
	struct identity *id;
	struct wcfg_store st; /* the workers' configuration, once joined */
	Ipc__JoinResult *r;   /* owned: the members st points into */
};

/*
 * The initial cluster from DNS SRV records or a discovery URL: as if it had
 * been given with --initial-cluster (IDs from the token), except that for
 * SRV records discoveryd matched this member's advertised URLs by address.
 * 0 or -1 once logged.
 */
static int discovered_bootstrap(struct join_ctx *j, const Ipc__JoinResult *r)
{
	size_t len = 1;
	for (size_t i = 0; i < r->n_members; i++)
		for (size_t k = 0; k < r->members[i]->n_peerurls; k++)
			len += strlen(r->members[i]->name) +
			       strlen(r->members[i]->peerurls[k]) + 2;
	char *ic = calloc(1, len);
	if (!ic) {
		log_crit(PKG, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->n_members; i++)
		for (size_t k = 0; k < r->members[i]->n_peerurls; k++) {
			if (ic[0])
				strcat(ic, ",");
			strcat(ic, r->members[i]->name);
			strcat(ic, "=");
			strcat(ic, r->members[i]->peerurls[k]);
		}
	struct cfg_error e;
	int rc = config_initial_cluster(j->c, ic, false, &e);
	free(ic);
	if (rc < 0) {
		report(NULL, &e);
		return -1;
	}
	j->id->member_id = j->c->member_id;
	j->id->cluster_id = j->c->cluster_id;
	return 0;
}

/* discoveryd's answer: this member's identity, then its workers' config. */
static int joined(void *arg, Ipc__JoinResult *r,
		  const Ipc__WorkerConfig **ret_wcfg)
{
	struct join_ctx *j = arg;
	/* Kept: the configuration borrows its members. */
	j->r = r;
	if (r->bootstrap) {
		if (discovered_bootstrap(j, r) < 0)
			return -1;
	} else if (!r->member_id || !r->cluster_id) {
		log_crit(PKG, "discoveryd found no IDs for this member");
		return -1;
	} else {
		j->id->member_id = r->member_id;
		j->id->cluster_id = r->cluster_id;
	}
	int e = identity_write(j->dir, j->id);
	if (e < 0) {
		log_crit(PKG, "cannot write %s/member/identity: %s", j->dir,
			 strerror(-e));
		return -1;
	}
	log_info("etcdserver", "starting member %llx in cluster %llx",
		 (unsigned long long)j->id->member_id,
		 (unsigned long long)j->id->cluster_id);
	/* A cluster from SRV records bootstraps as a static one does; a
	 * joining member starts empty. */
	if (build_wcfg(j->c, j->tls, j->id->member_id, j->id->cluster_id,
		       j->id->name, r->bootstrap, !r->bootstrap, &j->st) < 0) {
		log_crit(PKG, "out of memory");
		return -1;
	}
	if (!r->bootstrap) {
		/* gatewayd's first peers: the members the cluster listed. */
		j->st.w.n_initial_members = r->n_members;
		j->st.w.initial_members = r->members;
	}
	*ret_wcfg = &j->st.w;
	return 0;
}

static void log_urls(const char *what, const struct url_list *l)
{
	char *s = url_list_join(l, ",");
	log_info("embed", "%s = %s", what, s ? s : "");
	free(s);
}

static void tls_note(void *arg, enum log_level lvl, const char *pkg,
		     const char *text)
{
	(void)arg;
	log_msg(lvl, pkg, "%s", text);
}

/* etcd's ClientSelfCert / PeerSelfCert: 0, or -1 once logged. */
static int self_certs(const struct config *c, const struct tls_conf *tls)
{
	const struct {
		const struct tls_side *s;
		enum flag_id urls;
	} sides[] = {
		{&tls->peer, F_LISTEN_PEER_URLS},
		{&tls->client, F_LISTEN_CLIENT_URLS},
	};
	for (size_t i = 0; i < 2; i++) {
		char err[1024];
		if (!sides[i].s->auto_tls)
			continue;
		/* The SANs are the hosts the member listens on, as etcd's. */
		if (autotls_ensure(sides[i].s->auto_dir, cfg_urls(c, sides[i].urls),
				   err, sizeof(err)) < 0) {
			log_crit("embed", "could not get certs (%s)", err);
			return -1;
		}
	}
	return 0;
}

static int run(int argc, char **argv)
{
	struct config c;
	struct cfg_error e;
	struct listener ls[2 * URL_LIST_MAX];
	size_t n_ls = 0;
	struct identity id;
	struct wcfg_store st;
	struct tls_conf tls;
	struct join_ctx jc;
	struct sup_join join = { joined, &jc };
	bool joining = false, discovering = false;
	int code = 1, r;

	memset(&c, 0, sizeof(c));
	memset(&st, 0, sizeof(st));
	memset(&tls, 0, sizeof(tls));
	memset(&jc, 0, sizeof(jc));
	if (config_parse(&c, argc, argv, environ, &e) < 0) {
		code = report(&c, &e);
		goto out;
	}
	if (c.print_help) {
		fputs(config_usage_text, stderr);
		fputs(config_help_text, stdout);
		code = 0;
		goto out;
	}
	if (c.print_version) {
		printf("etcd Version: %s\n", ETCD_VERSION);
		printf("Git SHA: Not provided\n");
		printf("Go Version: not applicable (C)\n");
		printf("Go OS/Arch: linux/%s\n", go_arch());
		code = 0;
		goto out;
	}
	log_set_level(c.log_level);
	for (size_t i = 0; i < c.n_notes; i++)
		log_msg(c.notes[i].lvl, c.notes[i].pkg, "%s", c.notes[i].text);
	log_info(PKG, "etcd Version: %s", ETCD_VERSION);
	log_info(PKG, "Git SHA: Not provided");
	log_info(PKG, "Go Version: not applicable (C)");
	log_info(PKG, "Go OS/Arch: linux/%s", go_arch());

	const char *dir = config_data_dir(&c);
	bool initialized = datadir_initialized(dir, cfg_str(&c, F_WAL_DIR));
	size_t old_notes = c.n_notes;
	r = config_bootstrap(&c, initialized, &e);
	for (size_t i = old_notes; i < c.n_notes; i++)
		log_msg(c.notes[i].lvl, c.notes[i].pkg, "%s", c.notes[i].text);
	if (r < 0) {
		code = report(NULL, &e);
		goto out;
	}
	if (strlen(cfg_str(&c, F_NAME)) >= sizeof(id.name)) {
		fprintf(stderr, "etcd: --name is longer than %zu bytes\n",
			sizeof(id.name) - 1);
		goto out;
	}
	/* TLS: every file is checked before anything is bound or written. */
	r = tls_conf_init(&tls, &c);
	if (r == -E2BIG) {
		fprintf(stderr, "etcd: --cipher-suites lists more than %d suites\n",
			TLS_CIPHERS_MAX);
		goto out;
	}
	if (r < 0) {
		log_crit(PKG, "out of memory");
		goto out;
	}
	if (tls_conf_check(&tls, &c, tls_note, NULL, &e) < 0) {
		code = report(NULL, &e);
		goto out;
	}
	if (initialized) {
		r = identity_read(dir, &id);
		if (r < 0) {
			log_crit(PKG, "cannot read the member identity in %s/member/identity: %s",
				 dir, strerror(-r));
			goto out;
		}
		log_notice(PKG, "the server is already initialized as member before, starting as etcd member...");
		if (cfg_str(&c, F_DISCOVERY)[0]) {
			const char *wd = cfg_str(&c, F_WAL_DIR);
			log_warn("etcdserver", "discovery token ignored since a cluster has already been initialized. Valid log found at \"%s%s\"",
				 wd[0] ? wd : dir, wd[0] ? "" : "/member/wal");
		}
	} else {
		joining = strcmp(cfg_str(&c, F_INITIAL_CLUSTER_STATE), "existing") == 0;
		/* A joining member learns its IDs from the cluster, one from
		 * DNS SRV records or a discovery URL from its initial cluster
		 * there: discoveryd finds them first. */
		discovering = joining || cfg_str(&c, F_DISCOVERY_SRV)[0] ||
			      cfg_str(&c, F_DISCOVERY)[0];
		id.member_id = discovering ? 0 : c.member_id;
		id.cluster_id = discovering ? 0 : c.cluster_id;
		snprintf(id.name, sizeof(id.name), "%s", cfg_str(&c, F_NAME));
	}

	/* Listeners first: a port in use fails the start with nothing written. */
	static const struct {
		enum flag_id f;
		bool peer;
	} lf[] = {{F_LISTEN_PEER_URLS, true}, {F_LISTEN_CLIENT_URLS, false}};
	for (size_t k = 0; k < 2; k++) {
		const struct url_list *l = cfg_urls(&c, lf[k].f);
		for (size_t i = 0; i < l->n; i++) {
			char err[512];
			if (listener_open(&l->v[i], lf[k].peer, &ls[n_ls], err,
					  sizeof(err)) < 0) {
				log_crit(PKG, "%s", err);
				goto out;
			}
			n_ls++;
			const char *hp = strstr(l->v[i].str, "://");
			log_info("embed", "listening for %s on %s",
				 lf[k].peer ? "peers" : "client requests",
				 hp ? hp + 3 : l->v[i].str);
		}
	}

	r = datadir_create(dir);
	if (r < 0) {
		log_crit(PKG, "cannot access data directory: mkdir %s: %s", dir,
			 strerror(-r));
		goto out;
	}
	if (self_certs(&c, &tls) < 0)
		goto out;
	if (!initialized && !discovering) {
		r = identity_write(dir, &id);
		if (r < 0) {
			log_crit(PKG, "cannot write %s/member/identity: %s", dir,
				 strerror(-r));
			goto out;
		}
	}

	log_info("embed", "name = %s", cfg_str(&c, F_NAME));
	log_info("embed", "data dir = %s", dir);
	log_info("embed", "member dir = %s/member", dir);
	if (cfg_str(&c, F_WAL_DIR)[0])
		log_info("embed", "dedicated WAL dir = %s", cfg_str(&c, F_WAL_DIR));
	log_info("embed", "heartbeat = %llums",
		 (unsigned long long)c.v[F_HEARTBEAT_INTERVAL].u);
	log_info("embed", "election = %llums",
		 (unsigned long long)c.v[F_ELECTION_TIMEOUT].u);
	log_info("embed", "snapshot count = %llu",
		 (unsigned long long)c.v[F_SNAPSHOT_COUNT].u);
	if (cfg_str(&c, F_DISCOVERY)[0])
		log_info("embed", "discovery URL= %s", cfg_str(&c, F_DISCOVERY));
	if (cfg_str(&c, F_DISCOVERY_PROXY)[0])
		log_info("embed", "discovery proxy = %s", cfg_str(&c, F_DISCOVERY_PROXY));
	log_urls("advertise client URLs", cfg_urls(&c, F_ADVERTISE_CLIENT_URLS));
	if (!initialized) {
		log_urls("initial advertise peer URLs",
			 cfg_urls(&c, F_INITIAL_ADVERTISE_PEER_URLS));
		if (!discovering)
			log_info("etcdserver", "starting member %llx in cluster %llx",
				 (unsigned long long)id.member_id,
				 (unsigned long long)id.cluster_id);
	} else {
		log_info("etcdserver", "restarting member %llx in cluster %llx",
			 (unsigned long long)id.member_id,
			 (unsigned long long)id.cluster_id);
	}
	if (!tls_side_empty(&tls.client)) {
		char line[4096];
		tls_side_string(&tls.client, line, sizeof(line));
		log_info("embed", "ClientTLS: %s", line);
	}

	if (build_wcfg(&c, &tls, id.member_id, id.cluster_id, id.name,
		       !initialized && !discovering, joining, &st) < 0) {
		log_crit(PKG, "out of memory");
		goto out;
	}
	jc.c = &c;
	jc.tls = &tls;
	jc.dir = dir;
	jc.id = &id;
	code = supervisor_run(&st.w, discovering ? &join : NULL, ls, n_ls);
out:
	for (size_t i = 0; i < n_ls; i++)
		listener_close(&ls[i]);
	wcfg_store_clear(&st);
	wcfg_store_clear(&jc.st);
	tls_conf_clear(&tls);
	if (jc.r)
		protobuf_c_message_free_unpacked(&jc.r->base, NULL);
	config_clear(&c);
	return code;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "-P") == 0) {
		switch (proc_by_name(argv[2])) {
		case PROC_RAFTD: return raftd_main(argc, argv);
		case PROC_STORAGED: return storaged_main(argc, argv);
		case PROC_GATEWAYD: return gatewayd_main(argc, argv);
		case PROC_DISCOVERYD: return discoveryd_main(argc, argv);
		default:
			fprintf(stderr, "etcd: unknown process role %s\n", argv[2]);
			return 1;
		}
	}
	return run(argc, argv);
}
