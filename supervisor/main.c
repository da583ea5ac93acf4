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
#include "gateway_cmd.h"
#include "listen.h"
#include "proxy_run.h"
#include "log.h"
#include "proc.h"
#include "rpc.pb-c.h"
#include "supervisor.h"
#include "tls_conf.h"
#include "wcfg.h"

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
	if (r->proxy) {
		/* A full discovery cluster and --discovery-fallback proxy. */
		if (build_wcfg(j->c, j->tls, 0, 0, j->id->name, false, false,
			       &j->st) < 0) {
			log_crit(PKG, "out of memory");
			return -1;
		}
		if (proxy_fallback(j->c, j->dir, r, &j->st) < 0)
			return -1;
		*ret_wcfg = &j->st.w;
		return 0;
	}
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
	/* etcd's identifyDataDirOrDie: a data dir holding a proxy runs one,
	 * whatever --proxy says; one holding a member, a member. */
	enum datadir_kind kind = datadir_kind(dir, cfg_str(&c, F_WAL_DIR));
	if (kind == DATADIR_BOTH) {
		log_crit(PKG, "invalid datadir. Both member and proxy directories exist.");
		goto out;
	}
	bool initialized = kind == DATADIR_MEMBER;
	bool proxy = kind == DATADIR_PROXY ||
		     (kind == DATADIR_EMPTY && strcmp(cfg_str(&c, F_PROXY), "off") != 0);
	size_t old_notes = c.n_notes;
	/* A proxy is no member of the cluster: none of a member's checks. */
	r = config_bootstrap(&c, initialized || proxy, &e);
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
	if (proxy) {
		code = proxy_run(&c, &tls, dir);
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
	char err[512];
	if (listeners_open(&c, false, ls, &n_ls, err, sizeof(err)) < 0) {
		log_crit(PKG, "%s", err);
		goto out;
	}
	for (size_t i = 0; i < n_ls; i++) {
		const char *hp = strstr(ls[i].url, "://");
		log_info("embed", "listening for %s on %s",
			 ls[i].peer ? "peers" : "client requests",
			 hp ? hp + 3 : ls[i].url);
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
	if (argc >= 2 && strcmp(argv[1], "gateway") == 0)
		return gateway_cmd(argc, argv);
	return run(argc, argv);
}
