/* Collecting metrics into ipc.Metrics, and rendering them as Prometheus text. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

void metrics_hist_init_exp(struct metrics_hist *h, double start, double factor,
			   size_t n)
{
	memset(h, 0, sizeof(*h));
	if (n > METRICS_MAX_BUCKETS)
		n = METRICS_MAX_BUCKETS;
	h->n = n;
	double b = start;
	for (size_t i = 0; i < n; i++, b *= factor)
		h->bounds[i] = b;
}

void metrics_hist_init_disk(struct metrics_hist *h)
{
	/* etcd: prometheus.ExponentialBuckets(0.001, 2, 14). */
	metrics_hist_init_exp(h, 0.001, 2, 14);
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
	for (size_t i = 0; i < h->n; i++)
		if (v <= h->bounds[i]) {
			h->counts[i]++;
			break;
		}
	h->sum += v;
	h->count++;
}

void metrics_out_init(struct metrics_out *o, struct arena *a)
{
	memset(o, 0, sizeof(*o));
	o->a = a;
	ipc__metrics__init(&o->msg);
}

static char *dupstr(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s) + 1);
}

static size_t count_list(const char *const *l)
{
	size_t n = 0;
	while (l && l[n])
		n++;
	return n;
}

static Ipc__Metric *new_metric(struct metrics_out *o, enum metric_type type,
			       const char *name, const char *help)
{
	if (o->msg.n_metrics == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		Ipc__Metric **v = arena_alloc(o->a, cap * sizeof(*v));
		if (!v)
			return NULL;
		if (o->msg.n_metrics)
			memcpy(v, o->msg.metrics, o->msg.n_metrics * sizeof(*v));
		o->msg.metrics = v;
		o->cap = cap;
	}
	Ipc__Metric *m = ARENA_NEW(o->a, Ipc__Metric, IPC__METRIC__INIT);
	if (!m)
		return NULL;
	m->name = dupstr(o->a, name);
	m->help = dupstr(o->a, help ? help : "");
	m->type = type;
	o->msg.metrics[o->msg.n_metrics++] = m;
	return m;
}

Ipc__Metric *metrics_add(struct metrics_out *o, enum metric_type type,
			 const char *name, const char *help, double value,
			 const char *const *label_names,
			 const char *const *label_values)
{
	Ipc__Metric *m = new_metric(o, type, name, help);
	if (!m)
		return NULL;
	m->value = value;
	size_t n = count_list(label_names);
	if (n != count_list(label_values))
		n = 0;
	if (n) {
		m->label_names = arena_alloc(o->a, n * sizeof(char *));
		m->label_values = arena_alloc(o->a, n * sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			m->label_names[i] = dupstr(o->a, label_names[i]);
			m->label_values[i] = dupstr(o->a, label_values[i]);
		}
		m->n_label_names = m->n_label_values = n;
	}
	return m;
}

Ipc__Metric *metrics_add_hist(struct metrics_out *o, const char *name,
			      const char *help, const struct metrics_hist *h)
{
	Ipc__Metric *m = new_metric(o, METRIC_HISTOGRAM, name, help);
	if (!m)
		return NULL;
	m->n_bucket_bounds = m->n_bucket_counts = h->n;
	m->bucket_bounds = arena_memdup(o->a, h->bounds, h->n * sizeof(double));
	m->bucket_counts = arena_alloc(o->a, h->n * sizeof(uint64_t));
	uint64_t cum = 0;
	for (size_t i = 0; i < h->n; i++) {
		cum += h->counts[i];
		m->bucket_counts[i] = cum;
	}
	m->sum = h->sum;
	m->count = h->count;
	return m;
}

static int read_file(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t r = fread(buf, 1, n - 1, f);
	fclose(f);
	buf[r] = 0;
	return 0;
}

void metrics_add_process(struct metrics_out *o, const char *name, pid_t pid)
{
	char path[64], buf[1024];
	const char *ln[] = {"process", NULL};
	const char *lv[] = {name, NULL};
	if (pid == 0)
		pid = getpid();
	long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	unsigned long size, resident;
	if (read_file(path, buf, sizeof(buf)) == 0 &&
	    sscanf(buf, "%lu %lu", &size, &resident) == 2) {
		metrics_add(o, METRIC_GAUGE, "process_resident_memory_bytes",
			    "Resident memory size in bytes.",
			    (double)resident * (double)page, ln, lv);
		metrics_add(o, METRIC_GAUGE, "process_virtual_memory_bytes",
			    "Virtual memory size in bytes.",
			    (double)size * (double)page, ln, lv);
	}

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d) {
		int n = 0;
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
		/* Not counting the descriptor opendir itself used. */
		if (pid == getpid())
			n--;
		metrics_add(o, METRIC_GAUGE, "process_open_fds",
			    "Number of open file descriptors.", n, ln, lv);
	}

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) == 0) {
		/* Fields after the command name, which may hold spaces. */
		const char *p = strrchr(buf, ')');
		unsigned long utime, stime;
		unsigned long long start;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
				"%*u %lu %lu %*d %*d %*d %*d %*d %*d %llu",
				&utime, &stime, &start) == 3) {
			metrics_add(o, METRIC_COUNTER, "process_cpu_seconds_total",
				    "Total user and system CPU time spent in seconds.",
				    (double)(utime + stime) / (double)tck, ln, lv);
			char st[4096];
			const char *bt;
			if (read_file("/proc/stat", st, sizeof(st)) == 0 &&
			    (bt = strstr(st, "btime ")))
				metrics_add(o, METRIC_GAUGE,
					    "process_start_time_seconds",
					    "Start time of the process since unix epoch in seconds.",
					    strtod(bt + 6, NULL) +
						    (double)start / (double)tck,
					    ln, lv);
		}
	}
}

/*
 * Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' Go client uses,
 * so our numbers read as etcd's: the shortest digits that read back as v, in
 * exponent form when the exponent is below -4 or at least 6 ("2.480128e+07").
 */
static void put_value(FILE *f, double v)
{
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (v == 0) {
		fputs("0", f);
		return;
	}
	char e[40];
	int digits = 1;
	for (; digits <= 17; digits++) {
		snprintf(e, sizeof(e), "%.*e", digits - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	const char *ep = strchr(e, 'e');
	int exp = ep ? atoi(ep + 1) : 0;
	if (exp < -4 || exp >= 6) {
		fputs(e, f);
		return;
	}
	int decimals = digits - 1 - exp;
	fprintf(f, "%.*f", decimals > 0 ? decimals : 0, v);
}

static void put_escaped(FILE *f, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* {a="x",b="y"} with an extra label (le) when extra_name is set. */
static void put_labels(FILE *f, const Ipc__Metric *m, const char *extra_name,
		       double extra)
{
	if (m->n_label_names == 0 && !extra_name)
		return;
	fputc('{', f);
	for (size_t i = 0; i < m->n_label_names; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", m->label_names[i]);
		put_escaped(f, m->label_values[i], 1);
		fputc('"', f);
	}
	if (extra_name) {
		fprintf(f, "%s%s=\"", m->n_label_names ? "," : "", extra_name);
		put_value(f, extra);
		fputc('"', f);
	}
	fputc('}', f);
}

static void put_sample(FILE *f, const Ipc__Metric *m)
{
	if (m->type != METRIC_HISTOGRAM) {
		fputs(m->name, f);
		put_labels(f, m, NULL, 0);
		fputc(' ', f);
		put_value(f, m->value);
		fputc('\n', f);
		return;
	}
	for (size_t i = 0; i < m->n_bucket_bounds && i < m->n_bucket_counts; i++) {
		fprintf(f, "%s_bucket", m->name);
		put_labels(f, m, "le", m->bucket_bounds[i]);
		fprintf(f, " %llu\n", (unsigned long long)m->bucket_counts[i]);
	}
	fprintf(f, "%s_bucket", m->name);
	put_labels(f, m, "le", INFINITY);
	fprintf(f, " %llu\n", (unsigned long long)m->count);
	fprintf(f, "%s_sum", m->name);
	put_labels(f, m, NULL, 0);
	fputc(' ', f);
	put_value(f, m->sum);
	fprintf(f, "\n%s_count", m->name);
	put_labels(f, m, NULL, 0);
	fprintf(f, " %llu\n", (unsigned long long)m->count);
}

char *metrics_render(const Ipc__Metrics *const *parts, size_t n,
		     size_t *ret_len)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (parts[i])
			total += parts[i]->n_metrics;
	const Ipc__Metric **all = calloc(total ? total : 1, sizeof(*all));
	char *done = calloc(total ? total : 1, 1);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!all || !done || !f) {
		free(all);
		free(done);
		if (f)
			fclose(f);
		free(out);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; parts[i] && j < parts[i]->n_metrics; j++)
			all[k++] = parts[i]->metrics[j];

	/* A family's samples must stand together, under one HELP and TYPE. */
	for (size_t i = 0; i < total; i++) {
		if (done[i])
			continue;
		const Ipc__Metric *m = all[i];
		fprintf(f, "# HELP %s ", m->name);
		put_escaped(f, m->help, 0);
		fprintf(f, "\n# TYPE %s %s\n", m->name,
			m->type < 3 ? types[m->type] : "untyped");
		for (size_t j = i; j < total; j++)
			if (!done[j] && strcmp(all[j]->name, m->name) == 0) {
				put_sample(f, all[j]);
				done[j] = 1;
			}
	}
	fclose(f);
	free(all);
	free(done);
	*ret_len = len;
	return out;
}
