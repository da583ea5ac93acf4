/* Internals shared by the config*.c files (not for the rest of supervisor/). */
#ifndef ETCD_SUPERVISOR_CONFIG_INT_H
#define ETCD_SUPERVISOR_CONFIG_INT_H

#include "config.h"

enum flag_type {
	FT_STR,
	FT_BOOL,
	FT_UINT,        /* Go uint (64 bits): ParseUint(s, 0, 64) */
	FT_UINT32,      /* etcd's Uint32Value: ParseUint(s, 10, 32) */
	FT_INT,         /* Go int64: ParseInt(s, 0, 64) */
	FT_DURATION,    /* Go time.Duration */
	FT_URLS,        /* etcd's URLsValue */
	FT_UNIQUE_URLS, /* etcd's UniqueURLs, "*" allowed */
	FT_ENUM,        /* etcd's StringsFlag */
	FT_IGNORED,     /* etcd's IgnoredFlag: warns, takes no value */
};

struct flag_def {
	const char *name;
	enum flag_type type;
	const char *def;            /* default, as text */
	const char *const *values;  /* FT_ENUM: the accepted words */
};

extern const struct flag_def config_flags[F_COUNT];

/* The flag called name (len bytes, not terminated), or -1. */
int flag_lookup(const char *name, size_t len);
/* Takes no value after it (--flag alone means true). */
bool flag_is_bool(enum flag_id f);
/*
 * Sets flag f from text, with Go's and etcd's checks. On error returns
 * -EINVAL with the value's error (e.g. "parse error") in err; the old value
 * stays.
 */
int flag_set(struct config *c, enum flag_id f, const char *value, char *err,
	     size_t errlen);
/* Adds a line for main to log. 0 or -ENOMEM. */
int config_note(struct config *c, enum log_level lvl, const char *pkg,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Shared by config.c and config_cluster.c. */
int config_fail(struct cfg_error *err, enum cfg_err_kind kind, const char *pkg,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Go's time.ParseDuration: 0 or -EINVAL / -ERANGE. */
int config_parse_duration(const char *s, int64_t *ret_ns);

#endif
