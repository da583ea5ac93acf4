/* TEMPORARY skeleton, replaced by the real discoveryd. */
#include "worker.h"

static void on_msg(struct worker *w, enum proc_role from,
		   const struct msg_hdr *hdr, const uint8_t *body, int fd)
{
	(void)w; (void)from; (void)hdr; (void)body; (void)fd;
}

static const struct worker_ops ops = { .on_msg = on_msg };

int discoveryd_main(int argc, char **argv)
{
	return worker_run(PROC_DISCOVERYD, &ops, NULL, argc, argv);
}
