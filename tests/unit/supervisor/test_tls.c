/*
 * The supervisor's TLS side: the flags' checks with etcd 3.4.23's words
 * (certificates made at test time by the openssl CLI, in a temp dir), and
 * the auto TLS certificate (its properties, reuse, permissions).
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "autotls.h"
#include "check.h"
#include "config.h"
#include "tls_conf.h"
#include "tls_files.h"

static char dir[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		exit(1);
	}
}

static const char *P(const char *name)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

/* A CA, a member certificate it signs, and odd files. No key is kept. */
static void make_files(void)
{
	sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt "
	   "-days 2 -subj /CN=ca 2>/dev/null");
	sh("openssl req -newkey rsa:2048 -nodes -keyout m.key -out m.csr "
	   "-subj /CN=infra0 2>/dev/null");
	sh("printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext");
	sh("openssl x509 -req -in m.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	   "-out m.crt -days 2 -extfile ext 2>/dev/null");
	sh("openssl req -newkey rsa:2048 -nodes -keyout other.key -out o.csr "
	   "-subj /CN=o 2>/dev/null");
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	   "-keyout ec.key -out ec.crt -days 2 -subj /CN=ec 2>/dev/null");
	sh("openssl pkey -in m.key -traditional -out m-rsa.key");
	sh("cat m.crt ca.crt > chain.crt");
	sh("echo garbage > junk.pem");
	sh("printf -- '-----BEGIN FOO-----\\nAAAA\\n-----END FOO-----\\n' > foo.pem");
	sh("printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n' > bad.crt");
	sh("cp ca.crt crl.pem && cp ca.crt ca-peer.crt && mkdir d");
}

static void keypair(const char *cert, const char *key, const char *want)
{
	char err[1024] = "";
	int r = tls_check_keypair(P(cert), P(key), err, sizeof(err));
	if (!want) {
		CHECK(r == 0);
		if (r)
			fprintf(stderr, "  %s %s: %s\n", cert, key, err);
		return;
	}
	CHECK(r == -EINVAL);
	char w[1024];
	snprintf(w, sizeof(w), want, dir);
	CHECK_STR(err, w);
}

static void keypairs(void)
{
	keypair("m.crt", "m.key", NULL);
	keypair("m.crt", "m-rsa.key", NULL);
	keypair("chain.crt", "m.key", NULL);
	keypair("ec.crt", "ec.key", NULL);
	keypair("nope.crt", "m.key", "open %s/nope.crt: no such file or directory");
	keypair("m.crt", "nope.key", "open %s/nope.key: no such file or directory");
	keypair("d", "m.key", "read %s/d: is a directory");
	keypair("m.crt", "other.key", "tls: private key does not match public key");
	keypair("ec.crt", "m.key", "tls: private key type does not match public key type");
	keypair("junk.pem", "m.key", "tls: failed to find any PEM data in certificate input");
	keypair("m.crt", "junk.pem", "tls: failed to find any PEM data in key input");
	keypair("m.key", "m.crt", "tls: failed to find certificate PEM data in certificate "
		"input, but did find a private key; PEM inputs may have been switched");
	keypair("foo.pem", "m.key", "tls: failed to find \"CERTIFICATE\" PEM block in "
		"certificate input after skipping PEM blocks of the following types: [FOO]");
	keypair("m.crt", "ca.crt", "tls: found a certificate rather than a key in the "
		"PEM for the private key");
	keypair("m.crt", "chain.crt", "tls: failed to find PEM block with type ending in "
		"\"PRIVATE KEY\" in key input after skipping PEM blocks of the following "
		"types: [CERTIFICATE CERTIFICATE]");
	keypair("bad.crt", "m.key", "x509: malformed certificate");

	char err[1024];
	CHECK(tls_check_ca(P("ca.crt"), err, sizeof(err)) == 0);
	CHECK(tls_check_ca(P("chain.crt"), err, sizeof(err)) == 0);
	/* etcd takes a file without PEM data as an empty pool. */
	CHECK(tls_check_ca(P("junk.pem"), err, sizeof(err)) == 0);
	CHECK(tls_check_ca(P("m.key"), err, sizeof(err)) == -EINVAL);
	CHECK_STR(err, "x509: malformed certificate");
	CHECK(tls_check_ca(P("nope"), err, sizeof(err)) == -EINVAL);
	char w[512];
	snprintf(w, sizeof(w), "open %s/nope: no such file or directory", dir);
	CHECK_STR(err, w);
}

/* The lines tls_conf_check logged, one per line. */
static char notes[8192];

static void note(void *arg, enum log_level lvl, const char *pkg, const char *text)
{
	(void)arg;
	size_t l = strlen(notes);
	snprintf(notes + l, sizeof(notes) - l, "%c %s: %s\n",
		 lvl == LOG_WARN ? 'W' : lvl == LOG_INFO ? 'I' : '?', pkg, text);
}

#define MAXA 80

/* The last run's configuration: t borrows its strings until the next run. */
static struct config c;

/*
 * Parses args (a single member on 127.0.0.1 unless they say otherwise),
 * bootstraps, then checks TLS: 0 or the error's text in msg.
 */
static int run(const char *const *args, struct tls_conf *t, char *msg, size_t len)
{
	const char *base[] = {
		"etcd", "--name", "infra0", "--data-dir", P("data"),
		"--listen-client-urls", "http://127.0.0.1:2379",
		"--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380",
		"--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "infra0=http://127.0.0.1:2380",
	};
	char *argv[MAXA];
	int argc = 0;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		argv[argc++] = (char *)base[i];
	for (size_t i = 0; args[i] && argc < MAXA - 1; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;

	struct cfg_error e;
	char *env[] = {NULL};
	int r;
	config_clear(&c);
	memset(&c, 0, sizeof(c));
	memset(&e, 0, sizeof(e));
	memset(t, 0, sizeof(*t));
	notes[0] = '\0';
	msg[0] = '\0';
	if ((r = config_parse(&c, argc, argv, env, &e)) == 0 &&
	    (r = config_bootstrap(&c, false, &e)) == 0 &&
	    (r = tls_conf_init(t, &c)) == 0)
		r = tls_conf_check(t, &c, note, NULL, &e);
	if (r < 0) {
		if (e.kind == CFG_ERR_FATAL)
			snprintf(msg, len, "C | %s: %s", e.pkg, e.msg);
		else
			snprintf(msg, len, "%s", e.msg);
	}
	return r;
}

static void expect(const char *const *args, const char *want_msg, const char *want_notes)
{
	struct tls_conf t;
	char msg[2048], w[2048];
	int r = run(args, &t, msg, sizeof(msg));
	tls_conf_clear(&t);
	if (want_msg) {
		CHECK(r == -EINVAL);
		snprintf(w, sizeof(w), want_msg, dir);
		CHECK_STR(msg, w);
	} else {
		CHECK(r == 0);
		if (r)
			fprintf(stderr, "  unexpected error: %s\n", msg);
	}
	if (want_notes) {
		snprintf(w, sizeof(w), want_notes, dir, dir, dir, dir);
		CHECK_STR(notes, w);
	}
}

#define A(...) ((const char *const[]){__VA_ARGS__, NULL})
#define HC "--listen-client-urls", "https://127.0.0.1:2379"
#define HP "--listen-peer-urls", "https://127.0.0.1:2380"

static void checks(void)
{
	char cert[512], key[512], ca[512];
	snprintf(cert, sizeof(cert), "--cert-file=%s", P("m.crt"));
	snprintf(key, sizeof(key), "--key-file=%s", P("m.key"));
	snprintf(ca, sizeof(ca), "--trusted-ca-file=%s", P("ca.crt"));

	/* No TLS at all: nothing logged, nothing sent. */
	expect(A("--enable-v2"), NULL, "");
	/* https without a certificate (the facts' peer line; the client's). */
	expect(A(HP), "C | etcdmain: cannot listen on TLS for 127.0.0.1:2380: KeyFile "
	       "and CertFile are not presented", "");
	expect(A(HC), "C | etcdmain: TLS key/cert (--cert-file, --key-file) must be "
	       "provided for client url https://127.0.0.1:2379 with HTTPS scheme", "");
	/* A CA alone is not a certificate. */
	expect(A(HP, "--peer-trusted-ca-file", P("ca.crt"), "--peer-client-cert-auth"),
	       "C | etcdmain: cannot listen on TLS for 127.0.0.1:2380: KeyFile and "
	       "CertFile are not presented", "");
	expect(A("--peer-trusted-ca-file", P("ca.crt"), "--peer-client-cert-auth"), NULL,
	       "W embed: The scheme of peer url http://127.0.0.1:2380 is HTTP while "
	       "client cert auth (--peer-client-cert-auth) is enabled. Ignored client "
	       "cert auth for this url.\n");
	/* Client files: checked for https only, with etcd's ClientTLS line first. */
	expect(A(HC, "--cert-file", P("nope.crt"), "--key-file", P("m.key")),
	       "C | etcdmain: open %s/nope.crt: no such file or directory",
	       "I embed: ClientTLS: cert = %s/nope.crt, key = %s/m.key, trusted-ca = , "
	       "client-cert-auth = false, crl-file = \n");
	expect(A("--cert-file", P("nope.crt"), "--key-file", P("m.key")), NULL,
	       "W embed: The scheme of client url http://127.0.0.1:2379 is HTTP while "
	       "peer key/cert files are presented. Ignored key/cert files.\n");
	expect(A(HC, cert, "--key-file", P("other.key")),
	       "C | etcdmain: tls: private key does not match public key", NULL);
	expect(A(HC, cert, key, "--trusted-ca-file", P("nope"), "--client-cert-auth"),
	       "C | etcdmain: open %s/nope: no such file or directory", NULL);
	expect(A(HC, cert, key, ca, "--client-crl-file", P("nope")),
	       "C | etcdmain: open %s/nope: no such file or directory", NULL);
	expect(A(HC, cert), "C | etcdmain: KeyFile and CertFile must both be "
	       "present[key: , cert: %s/m.crt]", NULL);
	/* Peer files: checked whatever the scheme (peers dial out with them). */
	expect(A("--peer-key-file", P("m.key")), "C | etcdmain: KeyFile and CertFile "
	       "must both be present[key: %s/m.key, cert: ]",
	       "I embed: peerTLS: cert = , key = %s/m.key, trusted-ca = , "
	       "client-cert-auth = false, crl-file = \n"
	       "W embed: The scheme of peer url http://127.0.0.1:2380 is HTTP while "
	       "peer key/cert files are presented. Ignored peer key/cert files.\n");
	expect(A("--peer-trusted-ca-file", P("nope")),
	       "C | etcdmain: open %s/nope: no such file or directory", "");
	expect(A(HP, "--peer-cert-file", P("m.crt"), "--peer-key-file", P("m.key"),
		 "--peer-crl-file", P("nope")),
	       "C | etcdmain: open %s/nope: no such file or directory", NULL);
	expect(A(HP, "--peer-cert-file", P("m.crt"), "--peer-key-file", P("other.key")),
	       "C | etcdmain: tls: private key does not match public key", NULL);
	/* Cipher suites: Go's names only, checked first. */
	expect(A(HP, "--cipher-suites", "FOO,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
	       "C | etcdmain: unexpected TLS cipher suite \"FOO\"", "");
	expect(A("--cipher-suites", ""), "C | etcdmain: unexpected TLS cipher suite \"\"", "");
	expect(A("--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"),
	       "C | etcdmain: unexpected TLS cipher suite \"\"", "");
	/* All of it, valid. */
	expect(A(HC, HP, cert, key, ca, "--client-cert-auth", "--client-crl-file", P("crl.pem"),
		 "--peer-cert-file", P("m.crt"), "--peer-key-file", P("m.key"),
		 "--peer-trusted-ca-file", P("ca.crt"), "--peer-client-cert-auth",
		 "--peer-cert-allowed-cn", "infra0", "--cipher-suites",
		 "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		 "--auto-tls"),
	       NULL, "I embed: peerTLS: cert = %s/m.crt, key = %s/m.key, trusted-ca = "
	       "%s/ca.crt, client-cert-auth = true, crl-file = \n"
	       "W embed: ignoring client auto TLS since certs given\n");
}

/* What the workers get. */
static void sides(void)
{
	struct tls_conf t;
	char msg[1024], buf[2048];

	CHECK(run(A("--enable-v2"), &t, msg, sizeof(msg)) == 0);
	CHECK(!t.client.given && !t.peer.given && t.n_ciphers == 0);
	tls_conf_clear(&t);

	CHECK(run(A("--peer-cert-file", P("m.crt"), "--peer-key-file", P("m.key"),
		    "--peer-cert-allowed-hostname", "h", "--client-cert-auth",
		    "--client-cert-allowed-hostname", "c", "--cipher-suites",
		    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), &t, msg, sizeof(msg)) == 0);
	CHECK(t.peer.given && !t.peer.auto_tls);
	CHECK_STR(t.peer.cert_file, P("m.crt"));
	CHECK_STR(t.peer.allowed_hostname, "h");
	CHECK(t.client.given && t.client.client_cert_auth);
	CHECK_STR(t.client.allowed_hostname, "c");
	CHECK(t.n_ciphers == 1);
	CHECK_STR(t.ciphers[0], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
	tls_side_string(&t.peer, buf, sizeof(buf));
	char w[2048];
	snprintf(w, sizeof(w), "cert = %s/m.crt, key = %s/m.key, trusted-ca = , "
		 "client-cert-auth = false, crl-file = ", dir, dir);
	CHECK_STR(buf, w);
	tls_conf_clear(&t);
	tls_conf_clear(NULL);

	/* Auto TLS: the fixtures paths (Go's filepath.Join), not checked yet. */
	char dd[512];
	snprintf(dd, sizeof(dd), "%s/./auto//", dir);
	CHECK(run(A(HC, HP, "--auto-tls", "--peer-auto-tls", "--data-dir", dd,
		    "--peer-trusted-ca-file", P("ca-peer.crt")), &t, msg, sizeof(msg)) == 0);
	CHECK(t.client.auto_tls && t.peer.auto_tls);
	CHECK_STR(t.client.cert_file, P("auto/fixtures/client/cert.pem"));
	CHECK_STR(t.peer.key_file, P("auto/fixtures/peer/key.pem"));
	CHECK_STR(t.peer.auto_dir, P("auto/fixtures/peer"));
	tls_conf_clear(&t);
}

/* The guide's TLS command (infra0), with its files made here. */
static void guide(void)
{
	static const char *const guide_args[] = {
		"etcd", "--name", "infra0", "--initial-advertise-peer-urls", "https://10.0.1.10:2380",
		"--listen-peer-urls", "https://10.0.1.10:2380",
		"--listen-client-urls", "https://10.0.1.10:2379,https://127.0.0.1:2379",
		"--advertise-client-urls", "https://10.0.1.10:2379",
		"--initial-cluster-token", "etcd-cluster-1",
		"--initial-cluster", "infra0=https://10.0.1.10:2380,infra1=https://10.0.1.11:2380,"
		"infra2=https://10.0.1.12:2380",
		"--initial-cluster-state", "new",
		"--client-cert-auth", "--trusted-ca-file=/path/to/ca-client.crt",
		"--cert-file=/path/to/infra0-client.crt", "--key-file=/path/to/infra0-client.key",
		"--peer-client-cert-auth", "--peer-trusted-ca-file=ca-peer.crt",
		"--peer-cert-file=/path/to/infra0-peer.crt", "--peer-key-file=/path/to/infra0-peer.key",
		NULL,
	};
	char *argv[64];
	int argc = 0;
	struct cfg_error e;
	struct tls_conf t;
	char *env[] = {NULL};
	char cwd[512];

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(dir) == 0); /* ca-peer.crt is relative */
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 0: verbatim (no /path/to); pass 1: /path/to is our dir. */
		char paths[8][512];
		int np = 0;
		argc = 0;
		for (int i = 0; guide_args[i]; i++) {
			const char *a = guide_args[i];
			const char *p = strstr(a, "/path/to/");
			if (pass == 1 && p) {
				const char *f = p + strlen("/path/to/");
				const char *real = strstr(f, "-client.crt") || strstr(f, "-peer.crt") ?
							   "m.crt" : strstr(f, ".key") ? "m.key" : "ca.crt";
				snprintf(paths[np], sizeof(paths[np]), "%.*s%s/%s",
					 (int)(p - a), a, dir, real);
				a = paths[np++];
			}
			argv[argc++] = (char *)a;
		}
		argv[argc] = NULL;
		config_clear(&c);
		memset(&c, 0, sizeof(c));
		memset(&t, 0, sizeof(t));
		notes[0] = '\0';
		CHECK(config_parse(&c, argc, argv, env, &e) == 0);
		CHECK(config_bootstrap(&c, false, &e) == 0);
		CHECK(c.n_members == 3);
		CHECK(tls_conf_init(&t, &c) == 0);
		int r = tls_conf_check(&t, &c, note, NULL, &e);
		if (pass == 0) {
			CHECK(r == -EINVAL);
			CHECK_STR(e.msg, "open /path/to/infra0-peer.crt: no such file or directory");
		} else {
			CHECK(r == 0);
			if (r)
				fprintf(stderr, "  guide: %s\n", e.msg);
			CHECK(t.client.given && t.client.client_cert_auth);
			CHECK(t.peer.given && t.peer.client_cert_auth);
			CHECK_STR(t.peer.trusted_ca_file, "ca-peer.crt");
		}
		tls_conf_clear(&t);
		config_clear(&c);
	}
	CHECK(chdir(cwd) == 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return x;
}

static void check_autocert(X509 *x)
{
	CHECK(X509_get_version(x) == X509_VERSION_3);
	/* Subject = issuer = O=etcd, printable string, no CN. */
	const X509_NAME *sn = X509_get_subject_name(x);
	CHECK(X509_NAME_cmp(sn, X509_get_issuer_name(x)) == 0);
	CHECK(X509_NAME_entry_count(sn) == 1);
	const X509_NAME_ENTRY *ne = X509_NAME_get_entry(sn, 0);
	CHECK(OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne)) == NID_organizationName);
	const ASN1_STRING *o = X509_NAME_ENTRY_get_data(ne);
	CHECK(ASN1_STRING_type(o) == V_ASN1_PRINTABLESTRING);
	CHECK(ASN1_STRING_length(o) == 4 && memcmp(ASN1_STRING_get0_data(o), "etcd", 4) == 0);
	/* 128-bit serial. */
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	CHECK(bn && BN_num_bits(bn) <= 128 && BN_num_bits(bn) > 64 && !BN_is_negative(bn));
	BN_free(bn);
	/* P-521, signed with SHA-512 by itself. */
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char grp[64] = "";
	size_t gl;
	CHECK(pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC);
	CHECK(EVP_PKEY_get_utf8_string_param(pk, "group", grp, sizeof(grp), &gl) == 1);
	CHECK_STR(grp, "secp521r1");
	CHECK(X509_get_signature_nid(x) == NID_ecdsa_with_SHA512);
	CHECK(X509_verify(x, pk) == 1);
	/* One year, from about now. */
	int days = -1, secs = -1;
	CHECK(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)) == 1);
	CHECK(days == 365 && secs == 0);
	CHECK(X509_cmp_time(X509_get0_notBefore(x), NULL) <= 0);
	time_t soon = time(NULL) - 120;
	CHECK(X509_cmp_time(X509_get0_notBefore(x), &soon) > 0);
	/* Extensions: exactly KU, EKU, BC and SAN. */
	CHECK(X509_get_ext_count(x) == 4);
	int crit = 0;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	CHECK(ku && crit == 1);
	CHECK(X509_get_key_usage(x) == (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
	ASN1_BIT_STRING_free(ku);
	CHECK(X509_get_extended_key_usage(x) == XKU_SSL_SERVER);
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	CHECK(eku && crit == 0 && sk_ASN1_OBJECT_num(eku) == 1);
	EXTENDED_KEY_USAGE_free(eku);
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	CHECK(bc && crit == 1 && !bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	/* SANs: DNS names first, then IPs (IPv4 in 4 bytes), as Go writes. */
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	CHECK(g && crit == 0 && sk_GENERAL_NAME_num(g) == 3);
	if (g && sk_GENERAL_NAME_num(g) == 3) {
		GENERAL_NAME *n0 = sk_GENERAL_NAME_value(g, 0);
		GENERAL_NAME *n1 = sk_GENERAL_NAME_value(g, 1);
		GENERAL_NAME *n2 = sk_GENERAL_NAME_value(g, 2);
		CHECK(n0->type == GEN_DNS && ASN1_STRING_length(n0->d.dNSName) == 9 &&
		      memcmp(ASN1_STRING_get0_data(n0->d.dNSName), "localhost", 9) == 0);
		CHECK(n1->type == GEN_IPADD && ASN1_STRING_length(n1->d.iPAddress) == 16);
		CHECK(n2->type == GEN_IPADD && ASN1_STRING_length(n2->d.iPAddress) == 4 &&
		      memcmp(ASN1_STRING_get0_data(n2->d.iPAddress), "\x7f\x00\x00\x01", 4) == 0);
	}
	GENERAL_NAMES_free(g);
	/* Only with an IP's SAN, as openssl checks it. */
	CHECK(X509_check_ip_asc(x, "127.0.0.1", 0) == 1);
	CHECK(X509_check_ip_asc(x, "127.0.0.2", 0) == 0);
	CHECK(X509_check_host(x, "localhost", 0, 0, NULL) == 1);
}

static void autotls(void)
{
	struct url_list urls = {0};
	char err[1024], fx[512], cert[600], key[600];
	CHECK(url_list_parse("https://127.0.0.1:2380,https://localhost:2380,"
			     "http://[::1]:2381", &urls, err, sizeof(err)) == 0);
	snprintf(fx, sizeof(fx), "%s/dd/fixtures/peer", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", fx);
	snprintf(key, sizeof(key), "%s/key.pem", fx);

	CHECK(autotls_ensure(fx, &urls, err, sizeof(err)) == 1);
	CHECK(mode_of(P("dd")) == 0700);
	CHECK(mode_of(P("dd/fixtures")) == 0700);
	CHECK(mode_of(fx) == 0700);
	CHECK(mode_of(cert) == 0644);
	CHECK(mode_of(key) == 0600);
	CHECK(access(P("dd/fixtures/peer/cert.pem.tmp"), F_OK) < 0);
	X509 *x = load_cert(cert);
	CHECK(x != NULL);
	if (x)
		check_autocert(x);
	/* SEC1 key, and the pair passes etcd's check. */
	FILE *f = fopen(key, "r");
	char line[64] = "";
	CHECK(f && fgets(line, sizeof(line), f));
	if (f)
		fclose(f);
	CHECK_STR(line, "-----BEGIN EC PRIVATE KEY-----\n");
	CHECK(tls_check_keypair(cert, key, err, sizeof(err)) == 0);

	/* Reused as it is on the next start. */
	CHECK(autotls_ensure(fx, &urls, err, sizeof(err)) == 0);
	X509 *y = load_cert(cert);
	CHECK(x && y && X509_cmp(x, y) == 0);
	X509_free(y);
	/* One file missing: a new pair (a new serial). */
	CHECK(unlink(key) == 0);
	CHECK(autotls_ensure(fx, &urls, err, sizeof(err)) == 1);
	y = load_cert(cert);
	CHECK(x && y && ASN1_INTEGER_cmp(X509_get0_serialNumber(x),
					 X509_get0_serialNumber(y)) != 0);
	CHECK(tls_check_keypair(cert, key, err, sizeof(err)) == 0);
	X509_free(y);
	X509_free(x);

	/* Two sides, two certificates. */
	snprintf(fx, sizeof(fx), "%s/dd/fixtures/client", dir);
	CHECK(autotls_ensure(fx, &urls, err, sizeof(err)) == 1);
	x = load_cert(P("dd/fixtures/client/cert.pem"));
	y = load_cert(cert);
	CHECK(x && y && X509_cmp(x, y) != 0);
	X509_free(x);
	X509_free(y);

	/* A file where the directory should be. */
	snprintf(fx, sizeof(fx), "%s/junk.pem/fixtures/peer", dir);
	CHECK(autotls_ensure(fx, &urls, err, sizeof(err)) == -ENOTDIR);
	char w[1024];
	snprintf(w, sizeof(w), "mkdir %s/junk.pem/fixtures: not a directory", dir);
	CHECK_STR(err, w);
	url_list_clear(&urls);

	/* Through tls_conf: pending before, checked after. */
	struct tls_conf t;
	char msg[1024];
	CHECK(run(A(HC, HP, "--auto-tls", "--peer-auto-tls", "--data-dir", P("dd")),
		  &t, msg, sizeof(msg)) == 0);
	CHECK_STR(t.peer.cert_file, cert);
	tls_conf_clear(&t);
	CHECK(truncate(cert, 10) == 0);
	CHECK(run(A(HC, HP, "--auto-tls", "--peer-auto-tls", "--data-dir", P("dd")),
		  &t, msg, sizeof(msg)) == -EINVAL);
	CHECK_STR(msg, "C | etcdmain: tls: failed to find any PEM data in certificate input");
	tls_conf_clear(&t);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_sup_tls.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_files();
	keypairs();
	checks();
	sides();
	guide();
	autotls();
	config_clear(&c);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	CHECK_DONE();
}
