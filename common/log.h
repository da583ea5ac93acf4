/*
 * Log lines in etcd 3.4's default (capnslog) shape, on stderr:
 *   2026-11-21 23:53:58.423744 I | etcdserver: message
 * Process main files log; library code in common/ and the Raft core never do.
 */
#ifndef ETCD_COMMON_LOG_H
#define ETCD_COMMON_LOG_H

enum log_level {
	LOG_CRIT = 0, /* C */
	LOG_ERR,      /* E */
	LOG_WARN,     /* W */
	LOG_NOTICE,   /* N */
	LOG_INFO,     /* I */
	LOG_DEBUG,    /* D */
};

/* Lines above this level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level lvl);
/* Parses etcd's --log-level words (debug, info, warn, error, panic, fatal). */
int log_level_parse(const char *s, enum log_level *ret_lvl);

void log_msg(enum log_level lvl, const char *pkg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_crit(pkg, ...) log_msg(LOG_CRIT, pkg, __VA_ARGS__)
#define log_err(pkg, ...) log_msg(LOG_ERR, pkg, __VA_ARGS__)
#define log_warn(pkg, ...) log_msg(LOG_WARN, pkg, __VA_ARGS__)
#define log_notice(pkg, ...) log_msg(LOG_NOTICE, pkg, __VA_ARGS__)
#define log_info(pkg, ...) log_msg(LOG_INFO, pkg, __VA_ARGS__)
#define log_debug(pkg, ...) log_msg(LOG_DEBUG, pkg, __VA_ARGS__)

#endif
