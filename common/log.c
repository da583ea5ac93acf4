/* capnslog-shaped log lines on stderr, one write(2) per line so that the
 * lines of our five processes never interleave mid-line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level max_level = LOG_INFO;

void log_set_level(enum log_level lvl)
{
	max_level = lvl;
}

int log_level_parse(const char *s, enum log_level *ret_lvl)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} t[] = {
		{"debug", LOG_DEBUG}, {"info", LOG_INFO},  {"warn", LOG_WARN},
		{"error", LOG_ERR},   {"dpanic", LOG_CRIT}, {"panic", LOG_CRIT},
		{"fatal", LOG_CRIT},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(s, t[i].name) == 0) {
			*ret_lvl = t[i].lvl;
			return 0;
		}
	return -1;
}

void log_msg(enum log_level lvl, const char *pkg, const char *fmt, ...)
{
	static const char letters[] = "CEWNID";
	char line[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if (lvl > max_level)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	int n = (int)strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, ".%06ld %c | %s: ",
		      (long)tv.tv_usec, letters[lvl], pkg);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}
