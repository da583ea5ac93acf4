/*
 * The checks etcd's API layer (etcdserver/api/v3rpc/key.go) makes before a
 * request is proposed or served. Each returns 0, or -EINVAL with etcd's
 * message in *ret_msg (a static string; gRPC code InvalidArgument), or
 * -ENOMEM.
 */
#ifndef ETCD_GATEWAYD_VALIDATE_H
#define ETCD_GATEWAYD_VALIDATE_H

#include <stdint.h>

#include "rpc.pb-c.h"

#define ERR_EMPTY_KEY "etcdserver: key is not provided"
#define ERR_VALUE_PROVIDED "etcdserver: value is provided"
#define ERR_LEASE_PROVIDED "etcdserver: lease is provided"
#define ERR_KEY_NOT_FOUND "etcdserver: key not found"
#define ERR_DUPLICATE_KEY "etcdserver: duplicate key given in txn request"
#define ERR_TOO_MANY_OPS "etcdserver: too many operations in txn request"

int validate_range(const Etcdserverpb__RangeRequest *r, const char **ret_msg);
int validate_put(const Etcdserverpb__PutRequest *r, const char **ret_msg);
int validate_delete(const Etcdserverpb__DeleteRangeRequest *r,
		    const char **ret_msg);
/* checkTxnRequest, then checkIntervals on success and failure. */
int validate_txn(const Etcdserverpb__TxnRequest *r, uint32_t max_txn_ops,
		 const char **ret_msg);

/* True if the txn, nested ones included, holds no put or delete. */
int txn_is_read_only(const Etcdserverpb__TxnRequest *r);
/* etcd's isTxnSerializable: every op of both branches is a serializable
 * range (so a nested txn makes it linearizable). */
int txn_is_serializable(const Etcdserverpb__TxnRequest *r);

#endif
