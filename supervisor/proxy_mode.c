/*
 * etcd's v2 proxy mode (--proxy on|readonly, or --discovery-fallback proxy
 * when the discovery cluster is full): the member keeps only the cluster's
 * peer URLs, in <data-dir>/proxy/cluster ({"PeerURLs":[...]}, etcd's file),
 * and gatewayd alone forwards clients to the members it learns from them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "datadir.h"
#include "proxy_mode.h"

#define CLUSTER_FILE_MAX (1u << 20)

void proxy_peers_clear(struct proxy_peers *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->urls[i]);
	free(p->urls);
	p->urls = NULL;
	p->n = 0;
}

int proxy_peers_add(struct proxy_peers *p, const char *url)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->urls[i], url) == 0)
			return 0;
	if (p->n == PROXY_MAX_PEERS)
		return -E2BIG;
	char **v = realloc(p->urls, (p->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->urls = v;
	if (!(v[p->n] = strdup(url)))
		return -ENOMEM;
	p->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void proxy_peers_sort(struct proxy_peers *p)
{
	if (p->n)
		qsort(p->urls, p->n, sizeof(*p->urls), cmp_str);
}

char *proxy_peers_go(const struct proxy_peers *p)
{
	size_t len = 3;
	for (size_t i = 0; i < p->n; i++)
		len += strlen(p->urls[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	strcpy(s, "[");
	for (size_t i = 0; i < p->n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, p->urls[i]);
	}
	strcat(s, "]");
	return s;
}

static void cluster_path(const char *dir, char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "%s/proxy/cluster%s", dir, suffix);
}

int proxy_cluster_read(const char *dir, struct proxy_peers *ret)
{
	char path[PATH_MAX];
	cluster_path(dir, path, sizeof(path), "");
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	if (!root) {
		struct stat st;
		return stat(path, &st) < 0 ? -errno : -EBADMSG;
	}
	json_t *urls = json_object_get(root, "PeerURLs");
	int r = json_is_array(urls) ? 0 : -EBADMSG;
	size_t i;
	json_t *u;
	json_array_foreach(urls, i, u) {
		if (r == 0 && !json_is_string(u))
			r = -EBADMSG;
		if (r == 0)
			r = proxy_peers_add(ret, json_string_value(u));
	}
	json_decref(root);
	if (r < 0)
		proxy_peers_clear(ret);
	return r;
}

int proxy_cluster_write(const char *dir, const struct proxy_peers *p)
{
	char path[PATH_MAX], tmp[PATH_MAX], pdir[PATH_MAX];
	snprintf(pdir, sizeof(pdir), "%s/proxy", dir);
	int e = datadir_mkdir_p(pdir, 0700);
	if (e < 0)
		return e;
	cluster_path(dir, path, sizeof(path), "");
	cluster_path(dir, tmp, sizeof(tmp), ".bak");
	json_t *urls = json_array(), *root = json_object();
	int r = urls && root ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < p->n; i++)
		if (json_array_append_new(urls, json_string(p->urls[i])) < 0)
			r = -ENOMEM;
	if (r == 0 && json_object_set(root, "PeerURLs", urls) < 0)
		r = -ENOMEM;
	char *text = r == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(urls);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	/* As etcd: the .bak written and synced, then renamed over. */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0 ||
	    rename(tmp, path) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(text);
	return r;
}

int proxy_config(const struct config *c, const struct proxy_peers *p,
		 Ipc__ProxyConfig *pc)
{
	ipc__proxy_config__init(pc);
	/* The fallback from a full discovery cluster is an "on" proxy. */
	pc->readonly = strcmp(cfg_str(c, F_PROXY), "readonly") == 0;
	pc->n_peer_urls = p->n;
	pc->peer_urls = p->urls;
	const struct {
		enum flag_id f;
		uint32_t *to;
	} ms[] = {
		{F_PROXY_FAILURE_WAIT, &pc->failure_wait_ms},
		{F_PROXY_REFRESH_INTERVAL, &pc->refresh_interval_ms},
		{F_PROXY_DIAL_TIMEOUT, &pc->dial_timeout_ms},
		{F_PROXY_WRITE_TIMEOUT, &pc->write_timeout_ms},
		{F_PROXY_READ_TIMEOUT, &pc->read_timeout_ms},
	};
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		uint64_t v = c->v[ms[i].f].u;
		*ms[i].to = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	}
	return 0;
}
