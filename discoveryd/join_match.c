/*
 * Matching a joining member's --initial-cluster to the cluster its peers
 * listed (etcd 3.4's membership.ValidateClusterAndAssignIDs): the same
 * number of members, and every existing member's peer URLs found among the
 * local ones; each local member then takes the existing member's ID. The
 * error texts are etcd's, with the remote cluster printed as Go's %+v
 * prints etcd's RaftCluster, since operators search for these lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Go's %v of a []string: [a b c]. */
static void put_list(FILE *b, char **v, size_t n)
{
	fputc('[', b);
	for (size_t i = 0; i < n; i++)
		fprintf(b, "%s%s", i ? " " : "", v[i]);
	fputc(']', b);
}

/* Go's %q of a []string: ["a" "b"]. */
static void put_qlist(FILE *b, char **v, size_t n)
{
	fputc('[', b);
	for (size_t i = 0; i < n; i++)
		fprintf(b, "%s\"%s\"", i ? " " : "", v[i]);
	fputc(']', b);
}

static void put_cluster(FILE *b, uint64_t cid,
			Etcdserverpb__Member *const *m, size_t n)
{
	fprintf(b, "{ClusterID:%llx Members:[", (unsigned long long)cid);
	for (size_t i = 0; i < n; i++) {
		fprintf(b, "%s&{ID:%llx RaftAttributes:{PeerURLs:", i ? " " : "",
			    (unsigned long long)m[i]->id);
		put_list(b, m[i]->peerurls, m[i]->n_peerurls);
		fprintf(b, " IsLearner:%s} Attributes:{Name:%s ClientURLs:",
			    m[i]->islearner ? "true" : "false",
			    m[i]->name ? m[i]->name : "");
		put_list(b, m[i]->clienturls, m[i]->n_clienturls);
		fputs("}}", b);
	}
	fputs("] RemovedMemberIDs:[]}", b);
}

/*
 * netutil.URLStringsEqual without DNS (our URLs are IP literals or names
 * compared as written): 1 if a and b hold the same URLs in any order; else
 * 0 with etcd's reason written to why.
 */
static int urls_equal(char **a, size_t na, char **b, size_t nb, FILE *why)
{
	if (na != nb) {
		fputs("len(", why);
		put_qlist(why, a, na);
		fputs(") != len(", why);
		put_qlist(why, b, nb);
		fputc(')', why);
		return 0;
	}
	char **sa = malloc((na ? na : 1) * sizeof(*sa));
	char **sb = malloc((nb ? nb : 1) * sizeof(*sb));
	int eq = sa && sb;
	if (eq) {
		memcpy(sa, a, na * sizeof(*sa));
		memcpy(sb, b, nb * sizeof(*sb));
		qsort(sa, na, sizeof(*sa), cmp_str);
		qsort(sb, nb, sizeof(*sb), cmp_str);
		for (size_t i = 0; eq && i < na; i++)
			if (strcmp(sa[i], sb[i]) != 0) {
				fprintf(why, "resolved urls: \"%s\" != \"%s\"",
					sa[i], sb[i]);
				eq = 0;
			}
	} else {
		fputs("out of memory", why);
	}
	free(sa);
	free(sb);
	return eq;
}

/* A stream writing into buf, which stays NUL-terminated when it fills up. */
static FILE *open_buf(char *buf, size_t len)
{
	memset(buf, 0, len);
	return fmemopen(buf, len - 1, "w");
}

/* The reason of the last failed comparison, as a string in buf. */
static const char *last_reason(char **a, size_t na, char **b, size_t nb,
			       char *buf, size_t len, int *ret_eq)
{
	FILE *f = open_buf(buf, len);
	if (!f) {
		*ret_eq = 0;
		return "out of memory";
	}
	*ret_eq = urls_equal(a, na, b, nb, f);
	fclose(f);
	return buf;
}

int join_match(uint64_t cluster_id, Etcdserverpb__Member *const *remote,
	       size_t nr, Etcdserverpb__Member *const *local, size_t nl,
	       const char *self_name, uint64_t *ret_self, char *err,
	       size_t errlen)
{
	char why[1024] = "member count is unequal";
	uint64_t *ids = calloc(nl ? nl : 1, sizeof(*ids));
	int r = nr == nl ? 0 : -EINVAL;

	if (!ids) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < nr; i++) {
		char last[512] = "";
		int ok = 0;
		for (size_t j = 0; !ok && j < nl; j++) {
			last_reason(remote[i]->peerurls, remote[i]->n_peerurls,
				    local[j]->peerurls, local[j]->n_peerurls,
				    last, sizeof(last), &ok);
			if (ok)
				ids[j] = remote[i]->id;
		}
		if (!ok) {
			FILE *f = open_buf(why, sizeof(why));
			if (f) {
				fprintf(f, "PeerURLs: no match found for existing member (%llx, ",
					(unsigned long long)remote[i]->id);
				put_list(f, remote[i]->peerurls, remote[i]->n_peerurls);
				fprintf(f, "), last resolver error (%s)", last);
				fclose(f);
			}
			r = -EINVAL;
		}
	}
	if (r == 0) {
		for (size_t j = 0; j < nl; j++)
			if (strcmp(local[j]->name, self_name) == 0)
				*ret_self = ids[j];
	} else {
		FILE *f = open_buf(err, errlen);
		if (f) {
			fputs("error validating peerURLs ", f);
			put_cluster(f, cluster_id, remote, nr);
			fprintf(f, ": %s", why);
			fclose(f);
		} else {
			snprintf(err, errlen, "%s", why);
		}
	}
	free(ids);
	return r;
}
