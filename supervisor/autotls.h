/* etcd's --auto-tls / --peer-auto-tls certificates (transport.SelfCert). */
#ifndef ETCD_SUPERVISOR_AUTOTLS_H
#define ETCD_SUPERVISOR_AUTOTLS_H

#include <stddef.h>

#include "url.h"

/*
 * Makes sure dir/cert.pem and dir/key.pem exist, as etcd 3.4 does: when both
 * are there they are reused as they are; otherwise dir is created (0700,
 * with its parents) and a new self-signed certificate written: ECDSA P-521,
 * ecdsa-with-SHA512, O=etcd, a random 128-bit serial, valid for one year
 * from now, server auth only, SANs from the hosts of urls (IPs as IP
 * addresses, others as DNS names). key.pem (SEC1, 0600) and cert.pem (0644)
 * are each written atomically. Returns 1 when generated, 0 when reused,
 * -errno with Go's words in err on failure.
 */
int autotls_ensure(const char *dir, const struct url_list *urls, char *err,
		   size_t errlen);

#endif
