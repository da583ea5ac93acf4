/*
 * The command line and ETCD_* variables: defaults, both flag forms,
 * precedence, and every error with the text etcd 3.4.23 prints for it.
 */
#include "check.h"
#include "config.h"

#define MAXA 64

struct run {
	struct config c;
	struct cfg_error e;
	int r;
};

/* Parses the NULL-terminated args (after "etcd") with env (NULL-terminated). */
static void parse(struct run *t, const char *const *args, const char *const *env)
{
	char *argv[MAXA] = {(char *)"etcd"};
	int argc = 1;
	for (; args && args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	memset(t, 0, sizeof(*t));
	t->r = config_parse(&t->c, argc, argv, (char **)env, &t->e);
}

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOENV ((const char *const[]){NULL})

static void expect_err(const char *const *args, const char *const *env,
		       enum cfg_err_kind kind, const char *msg)
{
	struct run t;
	parse(&t, args, env);
	CHECK(t.r == -22);
	CHECK(t.e.kind == kind);
	CHECK_STR(t.e.msg, msg);
	CHECK(config_exit_code(t.e.kind) == 1);
	config_clear(&t.c);
}

/* Parses, then the bootstrap checks for a new data dir. */
static void expect_boot_err(const char *const *args, enum cfg_err_kind kind,
			    const char *msg)
{
	struct run t;
	parse(&t, args, NOENV);
	CHECK(t.r == 0);
	if (t.r == 0) {
		CHECK(config_bootstrap(&t.c, false, &t.e) == -22);
		CHECK(t.e.kind == kind);
		CHECK_STR(t.e.msg, msg);
	} else {
		fprintf(stderr, "  parse failed: %s\n", t.e.msg);
	}
	config_clear(&t.c);
}

static bool has_note(const struct config *c, const char *text)
{
	for (size_t i = 0; i < c->n_notes; i++)
		if (strcmp(c->notes[i].text, text) == 0)
			return true;
	return false;
}

static void defaults(void)
{
	struct run t;
	parse(&t, NULL, NOENV);
	CHECK(t.r == 0);
	CHECK_STR(cfg_str(&t.c, F_NAME), "default");
	CHECK_STR(config_data_dir(&t.c), "default.etcd");
	CHECK_STR(cfg_urls(&t.c, F_LISTEN_CLIENT_URLS)->v[0].str, "http://localhost:2379");
	CHECK_STR(cfg_urls(&t.c, F_ADVERTISE_CLIENT_URLS)->v[0].str, "http://localhost:2379");
	CHECK_STR(cfg_urls(&t.c, F_LISTEN_PEER_URLS)->v[0].str, "http://localhost:2380");
	CHECK_STR(cfg_urls(&t.c, F_INITIAL_ADVERTISE_PEER_URLS)->v[0].str,
		  "http://localhost:2380");
	CHECK_STR(cfg_str(&t.c, F_INITIAL_CLUSTER), "default=http://localhost:2380");
	CHECK_STR(cfg_str(&t.c, F_INITIAL_CLUSTER_TOKEN), "etcd-cluster");
	CHECK_STR(cfg_str(&t.c, F_INITIAL_CLUSTER_STATE), "new");
	CHECK(t.c.v[F_SNAPSHOT_COUNT].u == 100000);
	CHECK(t.c.v[F_HEARTBEAT_INTERVAL].u == 100);
	CHECK(t.c.v[F_ELECTION_TIMEOUT].u == 1000);
	CHECK(t.c.v[F_MAX_REQUEST_BYTES].u == 1572864);
	CHECK(t.c.v[F_MAX_TXN_OPS].u == 128);
	CHECK(t.c.v[F_QUOTA_BACKEND_BYTES].i == 0);
	CHECK(t.c.v[F_STRICT_RECONFIG_CHECK].b);
	CHECK(!t.c.v[F_ENABLE_V2].b);
	CHECK(t.c.v[F_GRPC_KEEPALIVE_INTERVAL].i == 7200000000000ll);
	CHECK(t.c.log_level == LOG_INFO);
	CHECK(!t.c.print_help && !t.c.print_version);

	/* A new member from the defaults: etcd's IDs. */
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK(t.c.n_members == 1);
	CHECK(t.c.member_id == 0x8e9e05c52164694dull);
	CHECK(t.c.cluster_id == 0xcdf818194e3a8c32ull);
	CHECK_STR(t.c.members[0].name, "default");
	config_clear(&t.c);
	config_clear(&t.c); /* twice is harmless */
	config_clear(NULL);
}

static void flag_forms(void)
{
	struct run t;
	/* --flag value, --flag=value, -flag value; the last one given wins. */
	parse(&t, A("--name", "a", "-snapshot-count=7", "--max-txn-ops", "9",
		    "--name=b", "--enable-v2", "--pre-vote=true",
		    "--strict-reconfig-check=F", "--heartbeat-interval", "0x10",
		    "--election-timeout=02000", "--quota-backend-bytes=-1"),
	      NOENV);
	CHECK(t.r == 0);
	CHECK_STR(cfg_str(&t.c, F_NAME), "b");
	CHECK_STR(config_data_dir(&t.c), "b.etcd");
	CHECK(t.c.v[F_SNAPSHOT_COUNT].u == 7);
	CHECK(t.c.v[F_MAX_TXN_OPS].u == 9);
	CHECK(t.c.v[F_ENABLE_V2].b);
	CHECK(t.c.v[F_PRE_VOTE].b);
	CHECK(!t.c.v[F_STRICT_RECONFIG_CHECK].b);
	CHECK(t.c.v[F_HEARTBEAT_INTERVAL].u == 16);
	CHECK(t.c.v[F_ELECTION_TIMEOUT].u == 1024); /* Go reads a leading 0 as octal */
	CHECK(t.c.v[F_QUOTA_BACKEND_BYTES].i == -1);
	config_clear(&t.c);

	/* Listen URLs set without advertise URLs: no default advertise URL. */
	parse(&t, A("--listen-client-urls", "http://127.0.0.1:2379",
		    "--advertise-client-urls=http://127.0.0.2:2379,http://127.0.0.1:2379"),
	      NOENV);
	CHECK(t.r == 0);
	CHECK(cfg_urls(&t.c, F_ADVERTISE_CLIENT_URLS)->n == 2);
	CHECK_STR(cfg_urls(&t.c, F_ADVERTISE_CLIENT_URLS)->v[0].str, "http://127.0.0.1:2379");
	config_clear(&t.c);

	/* An empty URL list is allowed (no client listener at all). */
	parse(&t, A("--listen-client-urls", ""), NOENV);
	CHECK(t.r == 0);
	CHECK(cfg_urls(&t.c, F_LISTEN_CLIENT_URLS)->n == 0);
	config_clear(&t.c);

	/* Old flags are accepted with etcd's warning, and take no value. */
	parse(&t, A("--v", "--name", "x"), NOENV);
	CHECK(t.r == 0);
	CHECK(has_note(&t.c, "flag \"-v\" is no longer supported - ignoring."));
	CHECK_STR(cfg_str(&t.c, F_NAME), "x");
	config_clear(&t.c);

	parse(&t, A("--help"), NOENV);
	CHECK(t.r == 0 && t.c.print_help);
	config_clear(&t.c);
	parse(&t, A("-h"), NOENV);
	CHECK(t.r == 0 && t.c.print_help);
	config_clear(&t.c);
	parse(&t, A("--version"), NOENV);
	CHECK(t.r == 0 && t.c.print_version);
	config_clear(&t.c);
	parse(&t, A("--debug"), NOENV);
	CHECK(t.r == 0 && t.c.log_level == LOG_DEBUG);
	config_clear(&t.c);
	parse(&t, A("--log-level", "warn"), NOENV);
	CHECK(t.r == 0 && t.c.log_level == LOG_WARN);
	config_clear(&t.c);

	/* Compaction retention: hours, or a duration; revisions in revision mode. */
	parse(&t, A("--auto-compaction-retention", "2"), NOENV);
	CHECK(t.r == 0 && t.c.compaction_retention == 7200);
	config_clear(&t.c);
	parse(&t, A("--auto-compaction-retention", "1m30s"), NOENV);
	CHECK(t.r == 0 && t.c.compaction_retention == 90);
	config_clear(&t.c);
	parse(&t, A("--auto-compaction-retention", "1000", "--auto-compaction-mode",
		    "revision"), NOENV);
	CHECK(t.r == 0 && t.c.compaction_retention == 1000);
	config_clear(&t.c);
}

static void environment(void)
{
	struct run t;
	parse(&t, NULL, A("ETCD_NAME=envname", "ETCD_INITIAL_CLUSTER_TOKEN=tok",
			  "ETCD_ENABLE_V2=true", "ETCD_HEARTBEAT_INTERVAL=50",
			  "ETCD_FOOBAR=1", "ETCD_DATA_DIR=", "HOME=/x",
			  "ETCDCTL_API=3"));
	CHECK(t.r == 0);
	CHECK_STR(cfg_str(&t.c, F_NAME), "envname");
	CHECK_STR(config_data_dir(&t.c), "envname.etcd"); /* empty is unset */
	CHECK_STR(cfg_str(&t.c, F_INITIAL_CLUSTER_TOKEN), "tok");
	CHECK(t.c.v[F_ENABLE_V2].b);
	CHECK(t.c.v[F_HEARTBEAT_INTERVAL].u == 50);
	CHECK(has_note(&t.c, "recognized and used environment variable ETCD_NAME=envname"));
	CHECK(has_note(&t.c, "unrecognized environment variable ETCD_FOOBAR=1"));
	CHECK(t.c.n_notes == 5);
	config_clear(&t.c);

	/* The flag wins over its variable, with a warning. */
	parse(&t, A("--name", "flagname"), A("ETCD_NAME=envname"));
	CHECK(t.r == 0);
	CHECK_STR(cfg_str(&t.c, F_NAME), "flagname");
	CHECK(has_note(&t.c, "recognized environment variable ETCD_NAME, but unused: "
			     "shadowed by corresponding flag"));
	config_clear(&t.c);

	/* A variable counts as set: listen without advertise fails the same. */
	expect_err(NULL, A("ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:2379"), CFG_ERR_VERIFY,
		   "--advertise-client-urls is required when --listen-client-urls is set explicitly");

	expect_err(NULL, A("ETCD_HEARTBEAT_INTERVAL=abc"), CFG_ERR_VERIFY,
		   "invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error");
	expect_err(NULL, A("ETCD_ENABLE_V2=maybe"), CFG_ERR_VERIFY,
		   "invalid value \"maybe\" for ETCD_ENABLE_V2: parse error");
	expect_err(NULL, A("ETCD_LISTEN_PEER_URLS=foo"), CFG_ERR_VERIFY,
		   "invalid value \"foo\" for ETCD_LISTEN_PEER_URLS: URL scheme must be "
		   "http, https, unix, or unixs: foo");
}

static void flag_errors(void)
{
	expect_err(A("--zzz"), NOENV, CFG_ERR_FLAG, "flag provided but not defined: -zzz");
	expect_err(A("--foo=1"), NOENV, CFG_ERR_FLAG, "flag provided but not defined: -foo");
	expect_err(A("--name"), NOENV, CFG_ERR_FLAG, "flag needs an argument: -name");
	expect_err(A("---name", "x"), NOENV, CFG_ERR_FLAG, "bad flag syntax: ---name");
	expect_err(A("--=x"), NOENV, CFG_ERR_FLAG, "bad flag syntax: --=x");
	expect_err(A("--heartbeat-interval=abc"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"abc\" for flag -heartbeat-interval: parse error");
	expect_err(A("--snapshot-count", "-5"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"-5\" for flag -snapshot-count: parse error");
	expect_err(A("--heartbeat-interval", "99999999999999999999"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"99999999999999999999\" for flag -heartbeat-interval: "
		   "value out of range");
	expect_err(A("--enable-v2=maybe"), NOENV, CFG_ERR_FLAG,
		   "invalid boolean value \"maybe\" for -enable-v2: parse error");
	expect_err(A("--initial-cluster-state", "bogus"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"bogus\" for flag -initial-cluster-state: invalid value");
	expect_err(A("--proxy", "maybe"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"maybe\" for flag -proxy: invalid value");
	expect_err(A("--max-concurrent-streams", "qqq"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"qqq\" for flag -max-concurrent-streams: "
		   "strconv.ParseUint: parsing \"qqq\": invalid syntax");
	expect_err(A("--grpc-keepalive-min-time", "5 s"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"5 s\" for flag -grpc-keepalive-min-time: parse error");
	expect_err(A("--listen-client-urls", "http://127.0.0.77"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"http://127.0.0.77\" for flag -listen-client-urls: "
		   "URL address does not have the form \"host:port\": http://127.0.0.77");
	expect_err(A("--cors", "qqq"), NOENV, CFG_ERR_FLAG,
		   "invalid value \"qqq\" for flag -cors: URL scheme must be http, https, "
		   "unix, or unixs: qqq");
	/* Positional arguments, also after "--" or a bool given a separate value. */
	expect_err(A("extra"), NOENV, CFG_ERR_VERIFY, "'extra' is not a valid flag");
	expect_err(A("--enable-v2", "false"), NOENV, CFG_ERR_VERIFY,
		   "'false' is not a valid flag");
	expect_err(A("--", "--name", "x"), NOENV, CFG_ERR_VERIFY,
		   "'--name' is not a valid flag");
}

static void verify_errors(void)
{
	const char *lc = "--listen-client-urls=http://127.0.0.77:2379";
	const char *ac = "--advertise-client-urls=http://127.0.0.77:2379";

	expect_err(A("--heartbeat-interval", "300"), NOENV, CFG_ERR_VERIFY,
		   "--election-timeout[1000ms] should be at least as 5 times as "
		   "--heartbeat-interval[300ms]");
	expect_err(A("--heartbeat-interval", "0"), NOENV, CFG_ERR_VERIFY,
		   "--heartbeat-interval must be >0 (set to 0ms)");
	expect_err(A("--election-timeout", "0"), NOENV, CFG_ERR_VERIFY,
		   "--election-timeout must be >0 (set to 0ms)");
	expect_err(A("--election-timeout", "100000"), NOENV, CFG_ERR_VERIFY,
		   "--election-timeout[100000ms] is too long, and should be set less than 50000ms");
	expect_err(A("--listen-client-urls", "http://example.com:2379", ac), NOENV,
		   CFG_ERR_VERIFY, "expected IP in URL for binding (http://example.com:2379)");
	expect_err(A("--listen-peer-urls", "http://example.com:2380"), NOENV,
		   CFG_ERR_VERIFY, "expected IP in URL for binding (http://example.com:2380)");
	expect_err(A("--listen-client-urls", "http://:2379", ac), NOENV, CFG_ERR_VERIFY,
		   "expected IP in URL for binding (http://:2379)");
	expect_err(A("--initial-advertise-peer-urls", "http://:2380"), NOENV, CFG_ERR_VERIFY,
		   "--initial-advertise-peer-urls \"http://:2380\" must be \"host:port\" "
		   "(unexpected empty host (http://:2380))");

	struct run t;
	parse(&t, A(lc), NOENV);
	CHECK(t.r == -22 && t.e.kind == CFG_ERR_VERIFY);
	CHECK_STR(t.e.msg, "--advertise-client-urls is required when --listen-client-urls "
			   "is set explicitly");
	CHECK_STR(t.e.extra, "When listening on specific address(es), this etcd process "
			     "must advertise accessible url(s) to each connected client.");
	config_clear(&t.c);

	expect_err(A("--discovery", "http://127.0.0.1:1/x", "--initial-cluster",
		     "default=http://localhost:2380"), NOENV, CFG_ERR_VERIFY,
		   "multiple discovery or bootstrap flags are set. Choose one of "
		   "\"initial-cluster\", \"discovery\" or \"discovery-srv\"");
	expect_err(A("--discovery-srv", "example.com", "--initial-cluster", "a=http://1.2.3.4:1"),
		   NOENV, CFG_ERR_VERIFY,
		   "multiple discovery or bootstrap flags are set. Choose one of "
		   "\"initial-cluster\", \"discovery\" or \"discovery-srv\"");
	expect_err(A("--auto-compaction-mode", "foo"), NOENV, CFG_ERR_VERIFY,
		   "unknown auto-compaction-mode \"foo\"");
	expect_err(A("--logger", "foo"), NOENV, CFG_ERR_VERIFY,
		   "unknown logger option \"foo\"");
	expect_err(A("--log-level", "foo"), NOENV, CFG_ERR_VERIFY, "unknown level \"foo\"");
	expect_err(A("--auto-compaction-retention", "foo"), NOENV, CFG_ERR_FATAL,
		   "error parsing CompactionRetention: time: invalid duration \"foo\"");
}

static void bootstrap(void)
{
	struct run t;
	const char *base[] = {
		"--name", "infra0",
		"--initial-advertise-peer-urls", "http://127.0.2.10:2380",
		"--listen-peer-urls", "http://127.0.2.10:2380",
		"--listen-client-urls", "http://127.0.2.10:2379",
		"--advertise-client-urls", "http://127.0.2.10:2379",
		"--initial-cluster-token", "etcd-cluster-1",
		"--initial-cluster", "infra0=http://127.0.2.10:2380",
		NULL,
	};
	parse(&t, base, NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK(t.c.member_id == 14288156331571396022ull);
	CHECK(t.c.n_members == 1);
	CHECK(t.c.members[0].peer_urls.n == 1);
	config_clear(&t.c);

	/* Only --name: the initial cluster is that name at the advertised URLs. */
	parse(&t, A("--name", "solo", "--initial-advertise-peer-urls", "http://127.0.2.10:2380",
		    "--initial-cluster-token", "etcd-cluster-1"), NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK_STR(t.c.members[0].name, "solo");
	CHECK(t.c.member_id == 14288156331571396022ull);
	config_clear(&t.c);

	/* localhost and 127.0.0.1 are the same advertised URL, as etcd resolves. */
	parse(&t, A("--initial-advertise-peer-urls", "http://127.0.0.1:2380"), NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	config_clear(&t.c);

	/* The Clustering Guide's error cases, in its words. */
	expect_boot_err(A("--name", "infra1", "--initial-advertise-peer-urls",
			  "http://127.0.2.11:2380", "--listen-peer-urls", "https://127.0.2.11:2380",
			  "--initial-cluster", "infra0=http://127.0.2.10:2380",
			  "--initial-cluster-state", "new"),
			CFG_ERR_PLAIN, "infra1 not listed in the initial cluster config");
	expect_boot_err(A("--name", "infra0", "--initial-advertise-peer-urls",
			  "http://127.0.0.1:2380", "--initial-cluster",
			  "infra0=http://127.0.2.10:2380,infra1=http://127.0.2.11:2380,"
			  "infra2=http://127.0.2.12:2380", "--initial-cluster-state=new"),
			CFG_ERR_PLAIN, "error setting up initial cluster: infra0 has different "
			"advertised URLs in the cluster and advertised peer URLs list");
	/* Default name with custom advertise URLs: etcd's case 2 as well. */
	expect_boot_err(A("--initial-advertise-peer-urls", "http://127.0.0.77:2380"),
			CFG_ERR_PLAIN, "error setting up initial cluster: default has different "
			"advertised URLs in the cluster and advertised peer URLs list");
	expect_boot_err(A("--name", "a", "--initial-cluster", ""), CFG_ERR_PLAIN,
			"a not listed in the initial cluster config");
	expect_boot_err(A("--name", "a", "--initial-cluster", "a"), CFG_ERR_FATAL,
			"error setting up initial cluster: URL scheme must be http, https, "
			"unix, or unixs: ");
	expect_boot_err(A("--name", "a", "--initial-cluster", "a=foo"), CFG_ERR_FATAL,
			"error setting up initial cluster: URL scheme must be http, https, "
			"unix, or unixs: foo");
	expect_boot_err(A("--name", "a", "--initial-advertise-peer-urls",
			  "http://127.0.0.77:2380", "--initial-cluster",
			  "a=http://127.0.0.77:2380,b=http://127.0.0.77:2380"),
			CFG_ERR_FATAL, "initial cluster a=http://127.0.0.77:2380,"
			"b=http://127.0.0.77:2380 has duplicate url");

	/* Later features: refused by name, never ignored. */
	expect_boot_err(A("--listen-client-urls", "unixs://127.0.0.1:2379",
			  "--advertise-client-urls", "http://127.0.0.1:2379"),
			CFG_ERR_PLAIN, "unix URLs (in --listen-client-urls) are not supported yet");
	expect_boot_err(A("--listen-peer-urls", "unix://127.0.0.1:2380"), CFG_ERR_PLAIN,
			"unix URLs (in --listen-peer-urls) are not supported yet");
	expect_boot_err(A("--force-new-cluster"), CFG_ERR_PLAIN,
			"--force-new-cluster is not supported yet");
	expect_boot_err(A("--experimental-enable-v2v3", "/v2"), CFG_ERR_PLAIN,
			"--experimental-enable-v2v3 is not supported yet");
	/* TLS flags and https URLs pass (tls_conf checks them, see test_tls). */
	{
		static const char *const tls_args[][12] = {
			{"--auto-tls", "--peer-auto-tls"},
			{"--cert-file", "c", "--key-file", "k", "--client-cert-auth",
			 "--trusted-ca-file", "ca", "--client-crl-file", "crl"},
			{"--peer-cert-file", "c", "--peer-key-file", "k",
			 "--peer-client-cert-auth=true", "--peer-crl-file", "x"},
			{"--peer-cert-allowed-cn", "a", "--peer-cert-allowed-hostname", "h",
			 "--client-cert-allowed-hostname", "h", "--cipher-suites",
			 "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			{"--peer-trusted-ca-file", "ca"},
			{"--listen-client-urls", "https://127.0.0.1:2379",
			 "--advertise-client-urls", "https://127.0.0.1:2379",
			 "--listen-peer-urls", "https://127.0.0.1:2380",
			 "--initial-advertise-peer-urls", "https://127.0.0.1:2380",
			 "--initial-cluster", "default=https://127.0.0.1:2380"},
		};
		for (size_t i = 0; i < sizeof(tls_args) / sizeof(tls_args[0]); i++) {
			const char *args[14] = {0};
			for (size_t k = 0; k < 12 && tls_args[i][k]; k++)
				args[k] = tls_args[i][k];
			parse(&t, args, NOENV);
			CHECK(t.r == 0);
			CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
			if (t.e.msg[0])
				fprintf(stderr, "  %zu: %s\n", i, t.e.msg);
			config_clear(&t.c);
		}
		/* The guide's cluster over https, from the ETCD_* variables. */
		parse(&t, A("--name", "infra0"),
		      ((const char *const[]){
			      "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.1.10:2380",
			      "ETCD_INITIAL_CLUSTER=infra0=https://10.0.1.10:2380,"
			      "infra1=https://10.0.1.11:2380,infra2=https://10.0.1.12:2380",
			      "ETCD_AUTO_TLS=true", "ETCD_PEER_AUTO_TLS=true",
			      "ETCD_CERT_FILE=/x/c.crt", NULL}));
		CHECK(t.r == 0);
		CHECK(t.c.v[F_AUTO_TLS].b && t.c.v[F_PEER_AUTO_TLS].b);
		CHECK_STR(cfg_str(&t.c, F_CERT_FILE), "/x/c.crt");
		CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
		if (t.e.msg[0])
			fprintf(stderr, "  %s\n", t.e.msg);
		CHECK(t.c.n_members == 3);
		config_clear(&t.c);
	}
	/* A discovery URL: no initial cluster either; the URL is the token. */
	parse(&t, A("--discovery", "http://127.0.0.1:1/x", "--initial-cluster-token", "t"),
	      NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK(t.c.n_members == 0);
	CHECK_STR(config_cluster_token(&t.c), "http://127.0.0.1:1/x");
	config_clear(&t.c);
	expect_boot_err(A("--discovery", "http://127.0.0.1:1/x", "--initial-cluster-state",
			  "existing"), CFG_ERR_PLAIN,
		   "--discovery with --initial-cluster-state existing is not supported yet");
	/* DNS SRV: no initial cluster of its own; discoveryd finds it. */
	parse(&t, A("--discovery-srv", "example.com"), NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK(t.c.n_members == 0);
	config_clear(&t.c);
	/* A proxy: the listen URLs alone keep the default advertise URL
	 * (etcd checks that only for members), and its cluster is read
	 * as it is, without this member in it. */
	parse(&t, A("--proxy", "readonly", "--listen-client-urls", "http://127.0.0.1:2379",
		    "--initial-cluster", "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"),
	      NOENV);
	CHECK(t.r == 0);
	CHECK(config_parse_cluster(&t.c, &t.e) == 0 && t.c.n_members == 2);
	config_clear(&t.c);
	/* A new member joining: the local cluster is checked as for a new
	 * one (discoveryd matches it to the running cluster later). */
	parse(&t, A("--initial-cluster-state", "existing"), NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, false, &t.e) == 0);
	CHECK(t.c.n_members == 1);
	config_clear(&t.c);
	expect_err(A("--config-file", "etcd.conf.yml"), NOENV, CFG_ERR_PLAIN,
		   "--config-file is not supported yet");
	expect_err(A("grpc-proxy", "start"), NOENV, CFG_ERR_PLAIN,
		   "etcd grpc-proxy is not supported yet");

	/* A restart ignores --initial-cluster* (even a cluster without us). */
	parse(&t, A("--name", "r", "--initial-cluster", "other=http://127.0.0.9:2380",
		    "--initial-cluster-state", "existing"), NOENV);
	CHECK(t.r == 0);
	CHECK(config_bootstrap(&t.c, true, &t.e) == 0);
	CHECK(t.c.n_members == 0);
	config_clear(&t.c);
}

int main(void)
{
	defaults();
	flag_forms();
	environment();
	flag_errors();
	verify_errors();
	bootstrap();
	CHECK_DONE();
}
