/*
 * The table of etcd 3.4's flags and how each kind of value is parsed, with
 * the error texts of Go's flag and strconv packages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define ENUM(...) .values = (const char *const[]){__VA_ARGS__, NULL}

const struct flag_def config_flags[F_COUNT] = {
	[F_CONFIG_FILE] = {"config-file", FT_STR, ""},
	[F_CORS] = {"cors", FT_UNIQUE_URLS, "*"},
	[F_DATA_DIR] = {"data-dir", FT_STR, ""},
	[F_WAL_DIR] = {"wal-dir", FT_STR, ""},
	[F_LISTEN_PEER_URLS] = {"listen-peer-urls", FT_URLS, "http://localhost:2380"},
	[F_LISTEN_CLIENT_URLS] = {"listen-client-urls", FT_URLS, "http://localhost:2379"},
	[F_LISTEN_METRICS_URLS] = {"listen-metrics-urls", FT_URLS, ""},
	[F_MAX_SNAPSHOTS] = {"max-snapshots", FT_UINT, "5"},
	[F_MAX_WALS] = {"max-wals", FT_UINT, "5"},
	[F_NAME] = {"name", FT_STR, "default"},
	[F_SNAPSHOT_COUNT] = {"snapshot-count", FT_UINT, "100000"},
	[F_HEARTBEAT_INTERVAL] = {"heartbeat-interval", FT_UINT, "100"},
	[F_ELECTION_TIMEOUT] = {"election-timeout", FT_UINT, "1000"},
	[F_INITIAL_ELECTION_TICK_ADVANCE] = {"initial-election-tick-advance", FT_BOOL, "true"},
	[F_QUOTA_BACKEND_BYTES] = {"quota-backend-bytes", FT_INT, "0"},
	[F_BACKEND_BATCH_LIMIT] = {"backend-batch-limit", FT_UINT, "0"},
	[F_BACKEND_BATCH_INTERVAL] = {"backend-batch-interval", FT_DURATION, "0s"},
	[F_MAX_TXN_OPS] = {"max-txn-ops", FT_UINT, "128"},
	[F_MAX_REQUEST_BYTES] = {"max-request-bytes", FT_UINT, "1572864"},
	[F_MAX_CONCURRENT_STREAMS] = {"max-concurrent-streams", FT_UINT32, "4294967295"},
	[F_GRPC_KEEPALIVE_MIN_TIME] = {"grpc-keepalive-min-time", FT_DURATION, "5s"},
	[F_GRPC_KEEPALIVE_INTERVAL] = {"grpc-keepalive-interval", FT_DURATION, "2h"},
	[F_GRPC_KEEPALIVE_TIMEOUT] = {"grpc-keepalive-timeout", FT_DURATION, "20s"},

	[F_INITIAL_ADVERTISE_PEER_URLS] = {"initial-advertise-peer-urls", FT_URLS, "http://localhost:2380"},
	[F_ADVERTISE_CLIENT_URLS] = {"advertise-client-urls", FT_URLS, "http://localhost:2379"},
	[F_DISCOVERY] = {"discovery", FT_STR, ""},
	[F_DISCOVERY_FALLBACK] = {"discovery-fallback", FT_ENUM, "proxy", ENUM("proxy", "exit")},
	[F_DISCOVERY_PROXY] = {"discovery-proxy", FT_STR, ""},
	[F_DISCOVERY_SRV] = {"discovery-srv", FT_STR, ""},
	[F_DISCOVERY_SRV_NAME] = {"discovery-srv-name", FT_STR, ""},
	[F_INITIAL_CLUSTER] = {"initial-cluster", FT_STR, "default=http://localhost:2380"},
	[F_INITIAL_CLUSTER_TOKEN] = {"initial-cluster-token", FT_STR, "etcd-cluster"},
	[F_INITIAL_CLUSTER_STATE] = {"initial-cluster-state", FT_ENUM, "new", ENUM("new", "existing")},
	[F_STRICT_RECONFIG_CHECK] = {"strict-reconfig-check", FT_BOOL, "true"},
	[F_ENABLE_V2] = {"enable-v2", FT_BOOL, "false"},
	[F_EXPERIMENTAL_ENABLE_V2V3] = {"experimental-enable-v2v3", FT_STR, ""},
	[F_PRE_VOTE] = {"pre-vote", FT_BOOL, "false"},

	[F_PROXY] = {"proxy", FT_ENUM, "off", ENUM("off", "readonly", "on")},
	[F_PROXY_FAILURE_WAIT] = {"proxy-failure-wait", FT_UINT, "5000"},
	[F_PROXY_REFRESH_INTERVAL] = {"proxy-refresh-interval", FT_UINT, "30000"},
	[F_PROXY_DIAL_TIMEOUT] = {"proxy-dial-timeout", FT_UINT, "1000"},
	[F_PROXY_WRITE_TIMEOUT] = {"proxy-write-timeout", FT_UINT, "5000"},
	[F_PROXY_READ_TIMEOUT] = {"proxy-read-timeout", FT_UINT, "0"},

	[F_CERT_FILE] = {"cert-file", FT_STR, ""},
	[F_KEY_FILE] = {"key-file", FT_STR, ""},
	[F_CLIENT_CERT_AUTH] = {"client-cert-auth", FT_BOOL, "false"},
	[F_CLIENT_CRL_FILE] = {"client-crl-file", FT_STR, ""},
	[F_CLIENT_CERT_ALLOWED_HOSTNAME] = {"client-cert-allowed-hostname", FT_STR, ""},
	[F_TRUSTED_CA_FILE] = {"trusted-ca-file", FT_STR, ""},
	[F_AUTO_TLS] = {"auto-tls", FT_BOOL, "false"},
	[F_PEER_CERT_FILE] = {"peer-cert-file", FT_STR, ""},
	[F_PEER_KEY_FILE] = {"peer-key-file", FT_STR, ""},
	[F_PEER_CLIENT_CERT_AUTH] = {"peer-client-cert-auth", FT_BOOL, "false"},
	[F_PEER_TRUSTED_CA_FILE] = {"peer-trusted-ca-file", FT_STR, ""},
	[F_PEER_AUTO_TLS] = {"peer-auto-tls", FT_BOOL, "false"},
	[F_PEER_CERT_ALLOWED_CN] = {"peer-cert-allowed-cn", FT_STR, ""},
	[F_PEER_CERT_ALLOWED_HOSTNAME] = {"peer-cert-allowed-hostname", FT_STR, ""},
	[F_PEER_CRL_FILE] = {"peer-crl-file", FT_STR, ""},
	[F_CIPHER_SUITES] = {"cipher-suites", FT_STR, ""},
	[F_HOST_WHITELIST] = {"host-whitelist", FT_STR, "*"},

	[F_LOGGER] = {"logger", FT_STR, "capnslog"},
	[F_LOG_OUTPUT] = {"log-output", FT_STR, "default"},
	[F_LOG_OUTPUTS] = {"log-outputs", FT_STR, "default"},
	[F_DEBUG] = {"debug", FT_BOOL, "false"},
	[F_LOG_LEVEL] = {"log-level", FT_STR, "info"},
	[F_LOG_PACKAGE_LEVELS] = {"log-package-levels", FT_STR, ""},

	[F_FORCE_NEW_CLUSTER] = {"force-new-cluster", FT_BOOL, "false"},
	[F_UNSAFE_NO_FSYNC] = {"unsafe-no-fsync", FT_BOOL, "false"},
	[F_VERSION] = {"version", FT_BOOL, "false"},
	[F_AUTO_COMPACTION_RETENTION] = {"auto-compaction-retention", FT_STR, "0"},
	[F_AUTO_COMPACTION_MODE] = {"auto-compaction-mode", FT_STR, "periodic"},
	[F_ENABLE_PPROF] = {"enable-pprof", FT_BOOL, "false"},
	[F_METRICS] = {"metrics", FT_STR, "basic"},

	[F_AUTH_TOKEN] = {"auth-token", FT_STR, "simple"},
	[F_BCRYPT_COST] = {"bcrypt-cost", FT_UINT, "10"},
	[F_AUTH_TOKEN_TTL] = {"auth-token-ttl", FT_UINT, "300"},

	[F_EXPERIMENTAL_INITIAL_CORRUPT_CHECK] = {"experimental-initial-corrupt-check", FT_BOOL, "false"},
	[F_EXPERIMENTAL_CORRUPT_CHECK_TIME] = {"experimental-corrupt-check-time", FT_DURATION, "0s"},
	[F_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT] = {"experimental-enable-lease-checkpoint", FT_BOOL, "false"},
	[F_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT_PERSIST] = {"experimental-enable-lease-checkpoint-persist", FT_BOOL, "false"},
	[F_EXPERIMENTAL_COMPACTION_BATCH_LIMIT] = {"experimental-compaction-batch-limit", FT_INT, "1000"},
	[F_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION] = {"experimental-peer-skip-client-san-verification", FT_BOOL, "false"},
	[F_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL] = {"experimental-watch-progress-notify-interval", FT_DURATION, "10m"},
	[F_EXPERIMENTAL_BACKEND_BBOLT_FREELIST_TYPE] = {"experimental-backend-bbolt-freelist-type", FT_STR, "array"},
	[F_EXPERIMENTAL_WARNING_APPLY_DURATION] = {"experimental-warning-apply-duration", FT_DURATION, "100ms"},
	[F_ENABLE_GRPC_GATEWAY] = {"enable-grpc-gateway", FT_BOOL, "true"},

	/* etcdmain's "ignored" list: flags of etcd 0.4 and 2.x. */
	[F_IGNORED_FIRST + 0] = {"cluster-active-size", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 1] = {"cluster-remove-delay", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 2] = {"cluster-sync-interval", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 3] = {"config", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 4] = {"force", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 5] = {"max-result-buffer", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 6] = {"max-retry-attempts", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 7] = {"peer-heartbeat-interval", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 8] = {"peer-election-timeout", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 9] = {"retry-interval", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 10] = {"snapshot", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 11] = {"v", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 12] = {"vv", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 13] = {"test.coverprofile", FT_IGNORED, ""},
	[F_IGNORED_FIRST + 14] = {"test.outputdir", FT_IGNORED, ""},
};

int flag_lookup(const char *name, size_t len)
{
	for (int i = 0; i < F_COUNT; i++)
		if (strlen(config_flags[i].name) == len &&
		    memcmp(config_flags[i].name, name, len) == 0)
			return i;
	return -1;
}

bool flag_is_bool(enum flag_id f)
{
	/* Go's IgnoredFlag says it is a boolean flag: it takes no value. */
	return config_flags[f].type == FT_BOOL ||
	       config_flags[f].type == FT_IGNORED;
}

/* strconv.ParseBool */
static int parse_bool(const char *s, bool *ret)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, t[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * strconv.ParseUint(s, base, 64): base 0 takes Go's 0x, 0o, 0b and leading 0
 * prefixes (and underscores between digits after a prefix). -EINVAL or -ERANGE.
 */
static int parse_u64(const char *s, int base, uint64_t *ret)
{
	bool underscores = false;
	if (*s == '\0')
		return -EINVAL;
	if (base == 0) {
		base = 10;
		if (s[0] == '0') {
			if (s[1] == 'x' || s[1] == 'X') {
				base = 16;
				s += 2;
			} else if (s[1] == 'o' || s[1] == 'O') {
				base = 8;
				s += 2;
			} else if (s[1] == 'b' || s[1] == 'B') {
				base = 2;
				s += 2;
			} else {
				base = 8;
				s += 1;
			}
			underscores = true;
			if (*s == '\0' && base == 8) {
				*ret = 0;
				return 0;
			}
		}
	}
	uint64_t v = 0;
	bool digits = false, range = false;
	char prev = '_';
	for (; *s; s++) {
		int d;
		char c = *s;
		if (c == '_' && underscores && prev != '_') {
			prev = c;
			continue;
		}
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'z')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'Z')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		if (d >= base)
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			range = true;
		v = v * (uint64_t)base + (uint64_t)d;
		digits = true;
		prev = c;
	}
	if (!digits || prev == '_')
		return -EINVAL;
	if (range)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* strconv.ParseInt(s, 0, 64) */
static int parse_i64(const char *s, int64_t *ret)
{
	bool neg = false;
	uint64_t u;
	if (*s == '+' || *s == '-') {
		neg = *s == '-';
		s++;
	}
	int r = parse_u64(s, 0, &u);
	if (r < 0)
		return r;
	if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
		return -ERANGE;
	*ret = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

int config_parse_duration(const char *s, int64_t *ret_ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
		{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
		{"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
	};
	bool neg = false;
	double total = 0;

	if (*s == '+' || *s == '-') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*ret_ns = 0;
		return 0;
	}
	if (*s == '\0')
		return -EINVAL;
	while (*s) {
		const char *start = s;
		double v = 0, scale = 1;
		bool digits = false;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (*s++ - '0');
			digits = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				scale /= 10;
				v += (*s++ - '0') * scale;
				digits = true;
			}
		}
		if (!digits || s == start)
			return -EINVAL;
		size_t ul = 0;
		while (s[ul] && s[ul] != '.' && (s[ul] < '0' || s[ul] > '9'))
			ul++;
		size_t k;
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++)
			if (strlen(units[k].unit) == ul &&
			    memcmp(units[k].unit, s, ul) == 0)
				break;
		if (k == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		total += v * units[k].ns;
		s += ul;
	}
	if (total > 9223372036854775807.0)
		return -ERANGE;
	*ret_ns = neg ? -(int64_t)total : (int64_t)total;
	return 0;
}

int flag_set(struct config *c, enum flag_id f, const char *value, char *err,
	     size_t errlen)
{
	const struct flag_def *d = &config_flags[f];
	struct cfg_val *v = &c->v[f];
	struct cfg_val nv = {0};
	int r = 0;

	if (strlen(value) > CONFIG_MAX_VALUE) {
		snprintf(err, errlen, "value longer than %u bytes",
			 CONFIG_MAX_VALUE);
		return -EINVAL;
	}
	switch (d->type) {
	case FT_STR:
	case FT_IGNORED:
		break;
	case FT_BOOL:
		r = parse_bool(value, &nv.b);
		if (r < 0)
			snprintf(err, errlen, "parse error");
		break;
	case FT_UINT:
		r = parse_u64(value, 0, &nv.u);
		if (r < 0)
			snprintf(err, errlen, "%s",
				 r == -ERANGE ? "value out of range" : "parse error");
		break;
	case FT_UINT32:
		r = parse_u64(value, 10, &nv.u);
		if (r == 0 && nv.u > UINT32_MAX)
			r = -ERANGE;
		if (r < 0)
			snprintf(err, errlen, "strconv.ParseUint: parsing \"%s\": %s",
				 value, r == -ERANGE ? "value out of range" : "invalid syntax");
		break;
	case FT_INT:
		r = parse_i64(value, &nv.i);
		if (r < 0)
			snprintf(err, errlen, "%s",
				 r == -ERANGE ? "value out of range" : "parse error");
		break;
	case FT_DURATION:
		r = config_parse_duration(value, &nv.i);
		if (r < 0)
			snprintf(err, errlen, "parse error");
		break;
	case FT_ENUM:
		r = -EINVAL;
		for (const char *const *p = d->values; *p; p++)
			if (strcmp(*p, value) == 0)
				r = 0;
		if (r < 0)
			snprintf(err, errlen, "invalid value");
		break;
	case FT_UNIQUE_URLS:
		/* "*" stands for itself; anything else is a URL list. */
		if (strcmp(value, "*") == 0)
			break;
		/* fall through */
	case FT_URLS:
		r = url_list_parse(value, &nv.urls, err, errlen);
		break;
	}
	if (r < 0)
		return r;
	nv.raw = strdup(value);
	if (!nv.raw) {
		url_list_clear(&nv.urls);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(v->raw);
	url_list_clear(&v->urls);
	*v = nv;
	return 0;
}
