/* CRC-32C (Castagnoli), as etcd's WAL uses; hardware when the CPU has it. */
#ifndef ETCD_RAFTD_CRC32C_H
#define ETCD_RAFTD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over n bytes of p. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
