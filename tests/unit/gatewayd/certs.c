/* The TLS tests' certificates, made at test time with the openssl CLI. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "certs.h"

char certs_dir[64];

char *certs_path(const char *name)
{
	static char bufs[8][128];
	static int n;
	char *b = bufs[n++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", certs_dir, name);
	return b;
}

/* EC keys: quick to make. */
void certs_make(void)
{
	char cmd[4096];
	snprintf(certs_dir, sizeof(certs_dir), "/tmp/gwtls.XXXXXX");
	assert(mkdtemp(certs_dir));
	snprintf(cmd, sizeof(cmd),
		"(set -e; cd %s; "
		"K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; "
		"for c in ca ca2; do openssl req -x509 $K -keyout $c.key -out $c.crt "
		"  -days 2 -subj /CN=$c; done; "
		"printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > srv.ext; "
		"printf 'extendedKeyUsage=clientAuth\\n' > cli.ext; "
		"sign() { openssl req $K -keyout $1.key -out $1.csr -subj /CN=$2; "
		"  openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial "
		"  -out $1.crt -days 2 -extfile $4.ext; }; "
		"sign m infra0 ca srv; sign client client ca cli; "
		"sign revoked revoked ca cli; sign other other ca2 srv; "
		"printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\n"
		"crlnumber=crlnum\\ndefault_md=sha256\\ndefault_crl_days=2\\n' > ca.cnf; "
		": > index.txt; echo 01 > crlnum; "
		"openssl ca -config ca.cnf -keyfile ca.key -cert ca.crt -revoke revoked.crt; "
		"openssl ca -config ca.cnf -keyfile ca.key -cert ca.crt -gencrl -out ca.crl"
		") >/dev/null 2>&1",
		certs_dir);
	int r = system(cmd);
	assert(r == 0);
}

void certs_remove(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", certs_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", certs_dir);
}
