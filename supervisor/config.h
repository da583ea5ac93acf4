/*
 * etcd 3.4's command line: every flag, its ETCD_* variable, its default, and
 * the checks etcd makes before it starts (same words, same exit codes).
 * Pure: no I/O besides reading what it is given, no logging (what etcd would
 * log while parsing is handed back in config.notes for main to print).
 */
#ifndef ETCD_SUPERVISOR_CONFIG_H
#define ETCD_SUPERVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "url.h"

/* A flag's value is at most this long (an --initial-cluster of 128 members). */
#define CONFIG_MAX_VALUE (64u << 10)

enum flag_id {
	F_CONFIG_FILE,
	/* member */
	F_CORS, F_DATA_DIR, F_WAL_DIR, F_LISTEN_PEER_URLS, F_LISTEN_CLIENT_URLS,
	F_LISTEN_METRICS_URLS, F_MAX_SNAPSHOTS, F_MAX_WALS, F_NAME,
	F_SNAPSHOT_COUNT, F_HEARTBEAT_INTERVAL, F_ELECTION_TIMEOUT,
	F_INITIAL_ELECTION_TICK_ADVANCE, F_QUOTA_BACKEND_BYTES,
	F_BACKEND_BATCH_LIMIT, F_BACKEND_BATCH_INTERVAL, F_MAX_TXN_OPS,
	F_MAX_REQUEST_BYTES, F_MAX_CONCURRENT_STREAMS,
	F_GRPC_KEEPALIVE_MIN_TIME, F_GRPC_KEEPALIVE_INTERVAL,
	F_GRPC_KEEPALIVE_TIMEOUT,
	/* clustering */
	F_INITIAL_ADVERTISE_PEER_URLS, F_ADVERTISE_CLIENT_URLS, F_DISCOVERY,
	F_DISCOVERY_FALLBACK, F_DISCOVERY_PROXY, F_DISCOVERY_SRV,
	F_DISCOVERY_SRV_NAME, F_INITIAL_CLUSTER, F_INITIAL_CLUSTER_TOKEN,
	F_INITIAL_CLUSTER_STATE, F_STRICT_RECONFIG_CHECK, F_ENABLE_V2,
	F_EXPERIMENTAL_ENABLE_V2V3, F_PRE_VOTE,
	/* v2 proxy */
	F_PROXY, F_PROXY_FAILURE_WAIT, F_PROXY_REFRESH_INTERVAL,
	F_PROXY_DIAL_TIMEOUT, F_PROXY_WRITE_TIMEOUT, F_PROXY_READ_TIMEOUT,
	/* security */
	F_CERT_FILE, F_KEY_FILE, F_CLIENT_CERT_AUTH, F_CLIENT_CRL_FILE,
	F_CLIENT_CERT_ALLOWED_HOSTNAME, F_TRUSTED_CA_FILE, F_AUTO_TLS,
	F_PEER_CERT_FILE, F_PEER_KEY_FILE, F_PEER_CLIENT_CERT_AUTH,
	F_PEER_TRUSTED_CA_FILE, F_PEER_AUTO_TLS, F_PEER_CERT_ALLOWED_CN,
	F_PEER_CERT_ALLOWED_HOSTNAME, F_PEER_CRL_FILE, F_CIPHER_SUITES,
	F_HOST_WHITELIST,
	/* logging */
	F_LOGGER, F_LOG_OUTPUT, F_LOG_OUTPUTS, F_DEBUG, F_LOG_LEVEL,
	F_LOG_PACKAGE_LEVELS,
	/* unsafe */
	F_FORCE_NEW_CLUSTER, F_UNSAFE_NO_FSYNC,
	F_VERSION,
	F_AUTO_COMPACTION_RETENTION, F_AUTO_COMPACTION_MODE,
	F_ENABLE_PPROF, F_METRICS,
	/* auth */
	F_AUTH_TOKEN, F_BCRYPT_COST, F_AUTH_TOKEN_TTL,
	/* experimental */
	F_EXPERIMENTAL_INITIAL_CORRUPT_CHECK, F_EXPERIMENTAL_CORRUPT_CHECK_TIME,
	F_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT,
	F_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT_PERSIST,
	F_EXPERIMENTAL_COMPACTION_BATCH_LIMIT,
	F_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION,
	F_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL,
	F_EXPERIMENTAL_BACKEND_BBOLT_FREELIST_TYPE,
	F_EXPERIMENTAL_WARNING_APPLY_DURATION,
	F_ENABLE_GRPC_GATEWAY,
	/* flags of older etcd versions: accepted with a warning */
	F_IGNORED_FIRST,
	F_COUNT = F_IGNORED_FIRST + 15,
};

/* One flag's current value. */
struct cfg_val {
	char *raw; /* owned: the text it was set from (or its default) */
	bool set;  /* given on the command line or by its ETCD_* variable */
	union {
		bool b;
		uint64_t u;
		int64_t i;  /* also durations, in nanoseconds */
	};
	struct url_list urls; /* URL flags */
};

/* What went wrong, and how etcd reports it. */
enum cfg_err_kind {
	/* Go's flag package: "<msg>" then the usage lines (etcd exits 2; we 1). */
	CFG_ERR_FLAG = 1,
	/* "E | etcdmain: error verifying flags, <msg>. See 'etcd --help'.", exit 1. */
	CFG_ERR_VERIFY,
	/* "C | <pkg>: <msg>", exit 1. */
	CFG_ERR_FATAL,
	/* "etcd: <msg>" (the Clustering Guide's wording, and ours), exit 1. */
	CFG_ERR_PLAIN,
};

struct cfg_error {
	enum cfg_err_kind kind;
	char pkg[32];
	char msg[1024];
	char extra[256]; /* a second E line etcd prints after some errors */
};

/* A line etcd logs while parsing (env variables used, ignored flags). */
struct cfg_note {
	enum log_level lvl;
	char *pkg;  /* owned */
	char *text; /* owned */
};

/* One entry of the initial cluster. */
struct cfg_member {
	char *name; /* owned */
	struct url_list peer_urls;
	uint64_t id;
};

struct config {
	struct cfg_val v[F_COUNT];
	bool print_version;
	bool print_help;

	/* Derived by config_parse. */
	enum log_level log_level;
	uint64_t compaction_retention; /* seconds (periodic) or revisions */

	/* Set by config_bootstrap for a new member. */
	struct cfg_member *members; /* owned, sorted by ID */
	size_t n_members;
	uint64_t member_id;
	uint64_t cluster_id;

	struct cfg_note *notes; /* owned */
	size_t n_notes;
};

/*
 * Parses argv (argv[0] is the program) and the environment (envp, NULL
 * terminated) as etcd 3.4 does, and checks the result (embed.Config.Validate
 * and etcdmain's checks, and ours: what is not supported yet). c must be
 * zeroed. On failure returns -EINVAL and fills err; c must still be cleared.
 * --version and --help set print_version / print_help and return 0.
 */
int config_parse(struct config *c, int argc, char **argv, char **envp,
		 struct cfg_error *err);

/*
 * The checks that depend on whether the data dir already holds a member
 * (initialized: its WAL exists). For a new member: the initial cluster is
 * resolved and checked (the Clustering Guide's error cases), and the member
 * and cluster IDs computed. 0 or -EINVAL with err filled.
 */
int config_bootstrap(struct config *c, bool initialized, struct cfg_error *err);

/*
 * Sets c's initial cluster from ic ("name=url,...") as config_bootstrap does
 * for --initial-cluster: this member listed (and, with check_advertised, at
 * its advertised peer URLs), no URL twice, IDs from the token. For a cluster
 * from DNS SRV records, whose URLs discoveryd matched by address, or from
 * a discovery URL. 0 or
 * -EINVAL with err filled.
 */
int config_initial_cluster(struct config *c, const char *ic,
			   bool check_advertised, struct cfg_error *err);

/* --initial-cluster into c->members as it is, without the checks a member
 * of it needs (a v2 proxy's view of the cluster). 0 or -EINVAL. */
int config_parse_cluster(struct config *c, struct cfg_error *err);

/* The token member IDs are made from: --initial-cluster-token, or the
 * --discovery URL when there is one (as etcd does). */
const char *config_cluster_token(const struct config *c);

/* Frees what c holds; c may be reused after. NULL is a no-op. */
void config_clear(struct config *c);

/* The exit code etcd uses for an error of this kind. */
int config_exit_code(enum cfg_err_kind kind);

/* Typed accessors. */
static inline const char *cfg_str(const struct config *c, enum flag_id f)
{
	return c->v[f].raw ? c->v[f].raw : "";
}
static inline const struct url_list *cfg_urls(const struct config *c,
					      enum flag_id f)
{
	return &c->v[f].urls;
}

/* The data dir: --data-dir, or "<name>.etcd". */
const char *config_data_dir(const struct config *c);

/* etcd's help text (stdout on --help) and the short usage (stderr). */
extern const char config_help_text[];
extern const char config_usage_text[];

#endif
