/* etcd's v2 proxy (--proxy): not written yet; gatewayd refuses to start in
 * that mode rather than pretend. */
#include <errno.h>

#include "gw.h"
#include "log.h"
#include "modes.h"

int proxy_init(struct gw *gw)
{
	(void)gw;
	log_crit("etcdmain", "the v2 proxy (--proxy) is not supported yet");
	return -ENOTSUP;
}

void proxy_handle(struct gw *gw, struct evhttp_request *req,
		  struct gw_listener *l)
{
	(void)gw;
	(void)l;
	http_reply_text(req, 501, "", NULL);
}

void proxy_done(struct gw *gw)
{
	(void)gw;
}
