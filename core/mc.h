/* memcached cluster client shared by the modules.
 *
 * Keys are placed exactly as php-memcached's session handler places them: ketama consistent hashing over the
 * server list, binary protocol, optional replicas on the next servers; the node is chosen by a hash key (the
 * session id) while the stored key carries the prefix, as libmemcached does for a namespace. A miss and an outage
 * are different results, so that callers never mistake a broken node for a logged-out visitor.
 * Thread-safe: connections come from a libmemcachedutil pool; create the pool in each server child process.
 */
#ifndef CORE_MC_H
#define CORE_MC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef enum {
    MC_OK,     /* found (get) or stored (set, add, delete) */
    MC_MISS,   /* not found (get, delete) or not stored because it exists (add) */
    MC_OUTAGE, /* the node(s) could not answer: connection refused, timeout, protocol error */
} mc_status;

typedef struct {
    /* php-memcached's session.save_path ("host:port,host:port weight", spaces allowed) or a libmemcached
     * configuration string starting with "--SERVER=". */
    const char *servers;
    unsigned replicas;           /* memcached.sess_number_of_replicas */
    unsigned connect_timeout_ms; /* default 200 */
    unsigned io_timeout_ms;      /* default 500 */
    unsigned max_connections;    /* pool size; default 64 */
} mc_config;

typedef struct mc_cluster mc_cluster;

/* Returns NULL and writes err on a malformed server list or allocation failure. Opens no connection. */
mc_cluster *mc_cluster_create(const mc_config *config, char *err, size_t errlen);
void mc_cluster_destroy(mc_cluster *cluster);
size_t mc_cluster_node_count(const mc_cluster *cluster);

/* Seconds a node the ring had to go around stays reported by mc_cluster_degraded after the last time it happened. */
#define MC_DEGRADED_WINDOW 30
/* 1 when an operation of the last MC_DEGRADED_WINDOW seconds found its key's node dead and went on, as
 * php-memcached does, to the next node of the ring; why gets what the dead node answered. The operations themselves
 * succeed then, so this is how a module learns of, and logs, the loss of one node of a working cluster. */
int mc_cluster_degraded(mc_cluster *cluster, char *why, size_t whylen);

typedef struct {
    char *data; /* malloc'd, NUL-terminated; free() it */
    size_t len;
    uint32_t flags;
} mc_value;

/* hash_key chooses the node (php-memcached: the session id), key is what is stored (prefix + id). */
mc_status mc_get(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 mc_value *out, char *err, size_t errlen);
/* Two keys that hash alike (same hash_key) in one round trip: the status is key's; out2->data is NULL when key2
 * is absent. */
mc_status mc_get2(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  const char *key2, size_t key2_len, mc_value *out, mc_value *out2, char *err, size_t errlen);
/* Asks every node directly, ignoring the ring: finds a copy left on a replica or on a node that was out of the
 * ring when it was written. MC_MISS only when every node answered that it has no such key, so that a caller can
 * tell "gone everywhere" from "not found among the nodes that answered" (MC_OUTAGE). */
mc_status mc_get_any_node(mc_cluster *cluster, const char *key, size_t key_len, mc_value *out, char *err,
                          size_t errlen);
/* exptime: seconds from now (0 = never); over 30 days is sent as an absolute time, as memcached requires. */
mc_status mc_set(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen);
mc_status mc_add(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen);
mc_status mc_delete(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                    char *err, size_t errlen);
/* Adds delta to a counter, creating it with initial (and exptime) when absent, in one round trip (binary protocol):
 * the meters count on every node alike. The expiry is set only when the counter is created. *value gets the new
 * count. */
mc_status mc_incr(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  uint64_t delta, uint64_t initial, time_t exptime, uint64_t *value, char *err, size_t errlen);
/* Subtracts delta from an existing counter (memcached stops at 0): MC_MISS when there is none. *value gets the new
 * count. A counter taken away after it was read keeps what others added meanwhile. */
mc_status mc_decr(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  uint64_t delta, uint64_t *value, char *err, size_t errlen);

#endif
