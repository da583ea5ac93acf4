/*
 * Command line and ETCD_* variables, parsed and checked as etcd 3.4 does
 * (Go's flag package, etcd's pkg/flags, embed.Config.Validate).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

int config_fail(struct cfg_error *err, enum cfg_err_kind kind,
		const char *pkg, const char *fmt, ...)
{
	va_list ap;
	memset(err, 0, sizeof(*err));
	err->kind = kind;
	snprintf(err->pkg, sizeof(err->pkg), "%s", pkg ? pkg : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int config_exit_code(enum cfg_err_kind kind)
{
	/*
	 * etcd exits 2 after a flag syntax error (Go's flag.ExitOnError) and
	 * 1 otherwise; we exit 1 for every bad input (README).
	 */
	(void)kind;
	return 1;
}

int config_note(struct config *c, enum log_level lvl, const char *pkg,
		const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	struct cfg_note *n = realloc(c->notes, (c->n_notes + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	c->notes = n;
	n = &c->notes[c->n_notes];
	n->lvl = lvl;
	n->pkg = strdup(pkg);
	n->text = strdup(buf);
	if (!n->pkg || !n->text) {
		free(n->pkg);
		free(n->text);
		return -ENOMEM;
	}
	c->n_notes++;
	return 0;
}

/* Sets f, from the command line or the environment. */
static int set_flag(struct config *c, enum flag_id f, const char *value,
		    char *verr, size_t verrlen)
{
	int r = flag_set(c, f, value, verr, verrlen);
	if (r < 0)
		return r;
	c->v[f].set = true;
	if (config_flags[f].type == FT_IGNORED)
		config_note(c, LOG_WARN, "pkg/flags",
			    "flag \"-%s\" is no longer supported - ignoring.",
			    config_flags[f].name);
	return 0;
}

/* Go's flag.FlagSet.Parse; returns the index of the first positional. */
static int parse_args(struct config *c, int argc, char **argv,
		      struct cfg_error *err, int *ret_rest)
{
	char verr[1024];
	int i = 1;

	while (i < argc) {
		const char *s = argv[i];
		size_t n = strlen(s);
		if (n < 2 || s[0] != '-')
			break;
		int minuses = 1;
		if (s[1] == '-') {
			minuses = 2;
			if (n == 2) {
				i++;
				break;
			}
		}
		const char *name = s + minuses;
		if (name[0] == '-' || name[0] == '=')
			return config_fail(err, CFG_ERR_FLAG, NULL, "bad flag syntax: %s", s);
		i++;
		const char *eq = strchr(name + 1, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const char *value = eq ? eq + 1 : NULL;
		int f = flag_lookup(name, nlen);
		if (f < 0) {
			if ((nlen == 4 && memcmp(name, "help", 4) == 0) ||
			    (nlen == 1 && name[0] == 'h')) {
				c->print_help = true;
				*ret_rest = argc;
				return 0;
			}
			return config_fail(err, CFG_ERR_FLAG, NULL,
				    "flag provided but not defined: -%.*s",
				    (int)nlen, name);
		}
		if (flag_is_bool((enum flag_id)f)) {
			if (set_flag(c, (enum flag_id)f, value ? value : "true",
				     verr, sizeof(verr)) < 0)
				return config_fail(err, CFG_ERR_FLAG, NULL,
					    "invalid boolean value \"%s\" for -%s: %s",
					    value, config_flags[f].name, verr);
			continue;
		}
		if (!value) {
			if (i >= argc)
				return config_fail(err, CFG_ERR_FLAG, NULL,
					    "flag needs an argument: -%s",
					    config_flags[f].name);
			value = argv[i++];
		}
		if (set_flag(c, (enum flag_id)f, value, verr, sizeof(verr)) < 0)
			return config_fail(err, CFG_ERR_FLAG, NULL,
				    "invalid value \"%s\" for flag -%s: %s", value,
				    config_flags[f].name, verr);
	}
	*ret_rest = i;
	return 0;
}

static void env_key(enum flag_id f, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "ETCD_");
	for (const char *p = config_flags[f].name; *p && k + 1 < len; p++)
		buf[k++] = *p == '-' ? '_' :
			   (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
	buf[k] = '\0';
}

static const char *env_get(char **envp, const char *key)
{
	size_t kl = strlen(key);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			return *e + kl + 1;
	return NULL;
}

static int cmp_flag_name(const void *a, const void *b)
{
	return strcmp(config_flags[*(const int *)a].name,
		      config_flags[*(const int *)b].name);
}

/* etcd's pkg/flags.SetFlagsFromEnv and verifyEnv. */
static int parse_env(struct config *c, char **envp, struct cfg_error *err)
{
	int order[F_COUNT];
	bool used[F_COUNT] = {0}, cli[F_COUNT];
	char key[128], verr[1024], first_err[1536] = "";

	for (int f = 0; f < F_COUNT; f++) {
		order[f] = f;
		cli[f] = c->v[f].set;
	}
	/* Go's VisitAll goes in lexical order; the last error wins. */
	qsort(order, F_COUNT, sizeof(order[0]), cmp_flag_name);
	for (int k = 0; k < F_COUNT; k++) {
		enum flag_id f = (enum flag_id)order[k];
		if (cli[f])
			continue;
		env_key(f, key, sizeof(key));
		const char *val = env_get(envp, key);
		if (!val || !*val)
			continue;
		used[f] = true;
		if (set_flag(c, f, val, verr, sizeof(verr)) < 0) {
			snprintf(first_err, sizeof(first_err),
				 "invalid value \"%s\" for %s: %s", val, key, verr);
			continue;
		}
		config_note(c, LOG_INFO, "pkg/flags",
			    "recognized and used environment variable %s=%s",
			    key, val);
	}
	for (char **e = envp; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t kl = eq ? (size_t)(eq - *e) : strlen(*e);
		bool known = false;
		for (int f = 0; f < F_COUNT && !known; f++) {
			env_key((enum flag_id)f, key, sizeof(key));
			if (strlen(key) != kl || memcmp(key, *e, kl) != 0)
				continue;
			known = true;
			if (used[f])
				break;
			/*
			 * etcd 3.4 refuses to start here; we let the flag win
			 * with etcd 3.3's warning (README, "Configuration").
			 */
			if (cli[f])
				config_note(c, LOG_WARN, "pkg/flags",
					    "recognized environment variable %s, but unused: shadowed by corresponding flag",
					    key);
		}
		if (!known && strncmp(*e, "ETCD_", 5) == 0)
			config_note(c, LOG_WARN, "pkg/flags",
				    "unrecognized environment variable %s", *e);
	}
	if (first_err[0])
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain", "%s", first_err);
	return 0;
}

/* embed.checkBindURLs */
static int check_bind(const struct url_list *l, struct cfg_error *err)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct url *u = &l->v[i];
		if (strcmp(u->scheme, "unix") == 0 || strcmp(u->scheme, "unixs") == 0)
			continue;
		if (strcmp(u->host, "localhost") == 0)
			continue;
		if (!url_host_is_ip(u->host))
			return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
				    "expected IP in URL for binding (%s)", u->str);
	}
	return 0;
}

/* embed.checkHostURLs, with etcd's wrapping of its error. */
static int check_host(const struct config *c, enum flag_id f,
		      struct cfg_error *err)
{
	const struct url_list *l = cfg_urls(c, f);
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].host[0])
			continue;
		char *all = url_list_join(l, ",");
		config_fail(err, CFG_ERR_VERIFY, "etcdmain",
		     "--%s \"%s\" must be \"host:port\" (unexpected empty host (%s))",
		     config_flags[f].name, all ? all : "", l->v[i].str);
		free(all);
		return -EINVAL;
	}
	return 0;
}

static int check_logging(struct config *c, struct cfg_error *err)
{
	const char *logger = cfg_str(c, F_LOGGER);
	if (strcmp(logger, "capnslog") != 0 && strcmp(logger, "zap") != 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "unknown logger option \"%s\"", logger);
	if (strcmp(logger, "zap") == 0)
		config_note(c, LOG_WARN, "etcdmain",
			    "--logger=zap is not supported yet; logging in the capnslog format");
	const char *lvl = cfg_str(c, F_LOG_LEVEL);
	if (log_level_parse(lvl, &c->log_level) < 0 ||
	    strcmp(lvl, "dpanic") == 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "unknown level \"%s\"", lvl);
	if (c->v[F_DEBUG].b)
		c->log_level = LOG_DEBUG;
	/* capnslog takes exactly one output. */
	const char *out = cfg_str(c, F_LOG_OUTPUTS);
	if (strchr(out, ','))
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "--logger=capnslog supports only 1 value in '--log-outputs', got [%s]",
			    out);
	if (strcmp(out, "default") != 0 && strcmp(out, "stderr") != 0 &&
	    strcmp(out, "stdout") != 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "unknown log-output \"%s\" (only supports \"default\", \"stderr\", \"stdout\")",
			    out);
	return 0;
}

/* embed.Config.Validate, in its order. */
static int validate(struct config *c, bool may_be_proxy, struct cfg_error *err)
{
	int r;
	if ((r = check_logging(c, err)) < 0 ||
	    (r = check_bind(cfg_urls(c, F_LISTEN_PEER_URLS), err)) < 0 ||
	    (r = check_bind(cfg_urls(c, F_LISTEN_CLIENT_URLS), err)) < 0 ||
	    (r = check_bind(cfg_urls(c, F_LISTEN_METRICS_URLS), err)) < 0 ||
	    (r = check_host(c, F_INITIAL_ADVERTISE_PEER_URLS, err)) < 0 ||
	    (r = check_host(c, F_ADVERTISE_CLIENT_URLS, err)) < 0)
		return r;
	int nset = (cfg_str(c, F_DISCOVERY)[0] != 0) +
		   (cfg_str(c, F_INITIAL_CLUSTER)[0] != 0) +
		   (cfg_str(c, F_DISCOVERY_SRV)[0] != 0);
	if (nset > 1)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\" or \"discovery-srv\"");
	uint64_t tick = c->v[F_HEARTBEAT_INTERVAL].u;
	uint64_t election = c->v[F_ELECTION_TIMEOUT].u;
	if (tick == 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "--heartbeat-interval must be >0 (set to 0ms)");
	if (election == 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "--election-timeout must be >0 (set to 0ms)");
	/* Go's uint arithmetic wraps; so does ours. */
	if (5 * tick > election)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "--election-timeout[%llums] should be at least as 5 times as --heartbeat-interval[%llums]",
			    (unsigned long long)election, (unsigned long long)tick);
	if (election > 50000)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "--election-timeout[%llums] is too long, and should be set less than 50000ms",
			    (unsigned long long)election);
	if (cfg_urls(c, F_LISTEN_CLIENT_URLS)->n > 0 &&
	    cfg_urls(c, F_ADVERTISE_CLIENT_URLS)->n == 0 && !may_be_proxy) {
		config_fail(err, CFG_ERR_VERIFY, "etcdmain",
		     "--advertise-client-urls is required when --listen-client-urls is set explicitly");
		snprintf(err->extra, sizeof(err->extra),
			 "When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.");
		return -EINVAL;
	}
	const char *mode = cfg_str(c, F_AUTO_COMPACTION_MODE);
	if (*mode && strcmp(mode, "periodic") != 0 && strcmp(mode, "revision") != 0)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "unknown auto-compaction-mode \"%s\"", mode);
	return 0;
}

/* embed's parseCompactionRetention: hours (or revisions) or a duration. */
static int parse_retention(struct config *c, struct cfg_error *err)
{
	const char *s = cfg_str(c, F_AUTO_COMPACTION_RETENTION);
	bool revision = strcmp(cfg_str(c, F_AUTO_COMPACTION_MODE), "revision") == 0;
	char *end;
	if (!*s)
		s = "0";
	errno = 0;
	long long h = strtoll(s, &end, 10);
	if (*end == '\0' && errno == 0 && h >= 0 && s[0] != ' ') {
		c->compaction_retention =
			revision ? (uint64_t)h : (uint64_t)h * 3600;
		return 0;
	}
	int64_t ns;
	if (config_parse_duration(s, &ns) < 0)
		return config_fail(err, CFG_ERR_FATAL, "etcdmain",
			    "error parsing CompactionRetention: time: invalid duration \"%s\"",
			    s);
	/* In revision mode etcd counts the duration's nanoseconds as revisions. */
	if (ns < 0)
		ns = 0;
	c->compaction_retention =
		revision ? (uint64_t)ns : (uint64_t)ns / 1000000000u;
	return 0;
}

int config_parse(struct config *c, int argc, char **argv, char **envp,
		 struct cfg_error *err)
{
	char verr[1024];
	int rest = 0, r;

	for (int f = 0; f < F_COUNT; f++)
		if (flag_set(c, (enum flag_id)f, config_flags[f].def, verr,
			     sizeof(verr)) < 0)
			return config_fail(err, CFG_ERR_FATAL, "etcdmain",
				    "bad default for --%s: %s",
				    config_flags[f].name, verr);

	/* "etcd gateway" is gateway_cmd.c's. */
	if (argc > 1 && strcmp(argv[1], "grpc-proxy") == 0)
		return config_fail(err, CFG_ERR_PLAIN, NULL,
			    "etcd %s is not supported yet", argv[1]);

	if ((r = parse_args(c, argc, argv, err, &rest)) < 0)
		return r;
	if (c->print_help)
		return 0;
	if (rest < argc)
		return config_fail(err, CFG_ERR_VERIFY, "etcdmain",
			    "'%s' is not a valid flag", argv[rest]);
	if (c->v[F_VERSION].b) {
		c->print_version = true;
		return 0;
	}
	if (cfg_str(c, F_CONFIG_FILE)[0])
		return config_fail(err, CFG_ERR_PLAIN, NULL,
			    "--config-file is not supported yet");
	if ((r = parse_env(c, envp, err)) < 0)
		return r;

	bool discovery = cfg_str(c, F_DISCOVERY)[0] != 0;
	bool may_be_proxy = strcmp(cfg_str(c, F_PROXY), "off") != 0 ||
			    (discovery && strcmp(cfg_str(c, F_DISCOVERY_FALLBACK),
						 "proxy") == 0);
	/* No default advertise URL when the listen URLs were chosen. */
	if (c->v[F_LISTEN_CLIENT_URLS].set &&
	    !c->v[F_ADVERTISE_CLIENT_URLS].set && !may_be_proxy)
		url_list_clear(&c->v[F_ADVERTISE_CLIENT_URLS].urls);
	/* No default initial cluster when discovery is asked for. */
	if ((discovery || cfg_str(c, F_DISCOVERY_SRV)[0]) &&
	    !c->v[F_INITIAL_CLUSTER].set) {
		free(c->v[F_INITIAL_CLUSTER].raw);
		c->v[F_INITIAL_CLUSTER].raw = strdup("");
		if (!c->v[F_INITIAL_CLUSTER].raw)
			return config_fail(err, CFG_ERR_FATAL, "etcdmain", "out of memory");
	}
	if ((r = validate(c, may_be_proxy, err)) < 0)
		return r;
	if ((r = parse_retention(c, err)) < 0)
		return r;

	if (!cfg_str(c, F_DATA_DIR)[0]) {
		char *d;
		if (asprintf(&d, "%s.etcd", cfg_str(c, F_NAME)) < 0)
			return config_fail(err, CFG_ERR_FATAL, "etcdmain", "out of memory");
		free(c->v[F_DATA_DIR].raw);
		c->v[F_DATA_DIR].raw = d;
	}
	return 0;
}

const char *config_data_dir(const struct config *c)
{
	return cfg_str(c, F_DATA_DIR);
}

void config_clear(struct config *c)
{
	if (!c)
		return;
	for (int f = 0; f < F_COUNT; f++) {
		free(c->v[f].raw);
		url_list_clear(&c->v[f].urls);
	}
	for (size_t i = 0; i < c->n_members; i++) {
		free(c->members[i].name);
		url_list_clear(&c->members[i].peer_urls);
	}
	free(c->members);
	for (size_t i = 0; i < c->n_notes; i++) {
		free(c->notes[i].pkg);
		free(c->notes[i].text);
	}
	free(c->notes);
	memset(c, 0, sizeof(*c));
}
