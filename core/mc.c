#include "mc.h"

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define MC_MAX_RELATIVE_EXPTIME (60 * 60 * 24 * 30)

typedef enum {
    MC_ROLE_RING,  /* every node in the ring, as a fresh php-memcached client sees it */
    MC_ROLE_EJECT, /* drops a node that fails, as php-memcached does with sess_remove_failed_servers */
    MC_ROLE_NODE,  /* one node alone */
} mc_role;

struct mc_cluster {
    memcached_st *master; /* MC_ROLE_RING; the pool clones it */
    memcached_pool_st *ring;
    memcached_st *eject_master; /* MC_ROLE_EJECT; cloned afresh for each fallback */
    pthread_mutex_t eject_lock;
    memcached_pool_st **nodes; /* one MC_ROLE_NODE pool per node, for mc_get_any_node */
    size_t node_count;
    unsigned io_timeout_ms;
    /* a node the ring had to go around (mc_cluster_degraded): until when to report it, and what it answered */
    pthread_mutex_t degraded_lock;
    time_t degraded_until;
    char degraded_why[256];
};

/* libmemcached's messages begin with the client's address and end with its own source line ("(0x7f..) SYSTEM
 * ERROR(Broken pipe),  host: 127.0.0.1:11212 -> ./src/libmemcached/io.cc:346"): only the middle helps a sysadmin. */
static void mc_error_text(const char *raw, char *out, size_t outlen)
{
    const char *start = raw ? raw : "", *end;

    if (strncmp(start, "(0x", 3) == 0 && (end = strstr(start, ") ")) != NULL)
        start = end + 2;
    end = strstr(start, " -> ");
    snprintf(out, outlen, "%.*s", (int)(end ? (size_t)(end - start) : strlen(start)), start);
}

static void mc_write_error(char *err, size_t errlen, const char *what, memcached_st *memc, memcached_return_t rc)
{
    char text[256];

    if (errlen == 0)
        return;
    mc_error_text(memc ? memcached_last_error_message(memc) : memcached_strerror(NULL, rc), text, sizeof(text));
    snprintf(err, errlen, "%s: %s", what, text);
}

static int mc_configure(memcached_st *memc, const mc_config *config, mc_role role)
{
    unsigned connect_ms = config->connect_timeout_ms ? config->connect_timeout_ms : 200;
    unsigned io_ms = config->io_timeout_ms ? config->io_timeout_ms : 500;

    /* The same behaviours php-memcached sets from its memcached.sess_* defaults, so both place a key alike. */
    if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1) != MEMCACHED_SUCCESS)
        return -1;
    if (role != MC_ROLE_NODE) {
        if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA, 1) != MEMCACHED_SUCCESS)
            return -1;
        if (config->replicas &&
            memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS, config->replicas) != MEMCACHED_SUCCESS)
            return -1;
    }
    if (role == MC_ROLE_EJECT) {
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1);
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1);
    }
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, connect_ms);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, io_ms);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, io_ms * 1000);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, io_ms * 1000);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    return 0;
}

static memcached_st *mc_master_from_list(const char *servers, const mc_config *config, char *err, size_t errlen)
{
    memcached_st *memc;
    memcached_server_list_st list;
    memcached_return_t rc;

    if (strncmp(servers, "--", 2) == 0) {
        memc = memcached(servers, strlen(servers));
        if (memc == NULL) {
            char why[256] = "";
            libmemcached_check_configuration(servers, strlen(servers), why, sizeof(why));
            snprintf(err, errlen, "invalid libmemcached configuration \"%s\": %s", servers, why);
            return NULL;
        }
    } else {
        list = memcached_servers_parse(servers);
        if (list == NULL || memcached_server_list_count(list) == 0) {
            memcached_server_list_free(list);
            snprintf(err, errlen, "no memcached server in \"%s\"", servers);
            return NULL;
        }
        memc = memcached_create(NULL);
        if (memc == NULL) {
            memcached_server_list_free(list);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        rc = memcached_server_push(memc, list);
        memcached_server_list_free(list);
        if (rc != MEMCACHED_SUCCESS) {
            mc_write_error(err, errlen, "cannot use the memcached server list", memc, rc);
            memcached_free(memc);
            return NULL;
        }
    }
    (void)config;
    return memc;
}

typedef struct {
    mc_cluster *cluster;
    const mc_config *config;
    int failed;
} mc_node_walk;

static memcached_return_t mc_add_node_pool(const memcached_st *ptr, const memcached_instance_st *server, void *ctx)
{
    mc_node_walk *walk = ctx;
    char single[300];
    memcached_st *memc;
    memcached_pool_st *pool;

    (void)ptr;
    snprintf(single, sizeof(single), "--SERVER=%s:%u", memcached_server_name(server), memcached_server_port(server));
    memc = memcached(single, strlen(single));
    if (memc == NULL || mc_configure(memc, walk->config, MC_ROLE_NODE) != 0) {
        memcached_free(memc);
        walk->failed = 1;
        return MEMCACHED_FAILURE;
    }
    pool = memcached_pool_create(memc, 1, walk->config->max_connections ? walk->config->max_connections : 64);
    if (pool == NULL) {
        memcached_free(memc);
        walk->failed = 1;
        return MEMCACHED_FAILURE;
    }
    walk->cluster->nodes[walk->cluster->node_count++] = pool;
    return MEMCACHED_SUCCESS;
}

mc_cluster *mc_cluster_create(const mc_config *config, char *err, size_t errlen)
{
    mc_cluster *cluster;
    memcached_server_fn walker[1] = {mc_add_node_pool};
    mc_node_walk walk;
    uint32_t count;
    unsigned max = config->max_connections ? config->max_connections : 64;

    if (config->servers == NULL || config->servers[0] == '\0') {
        snprintf(err, errlen, "no memcached servers configured");
        return NULL;
    }
    cluster = calloc(1, sizeof(*cluster));
    if (cluster == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&cluster->eject_lock, NULL);
    pthread_mutex_init(&cluster->degraded_lock, NULL);
    cluster->io_timeout_ms = config->io_timeout_ms ? config->io_timeout_ms : 500;
    cluster->master = mc_master_from_list(config->servers, config, err, errlen);
    if (cluster->master == NULL)
        goto fail;
    cluster->eject_master = memcached_clone(NULL, cluster->master);
    if (cluster->eject_master == NULL || mc_configure(cluster->master, config, MC_ROLE_RING) != 0 ||
        mc_configure(cluster->eject_master, config, MC_ROLE_EJECT) != 0) {
        snprintf(err, errlen, "cannot set memcached behaviours for \"%s\"", config->servers);
        goto fail;
    }
    count = memcached_server_count(cluster->master);
    cluster->nodes = calloc(count, sizeof(*cluster->nodes));
    if (cluster->nodes == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    walk.cluster = cluster;
    walk.config = config;
    walk.failed = 0;
    memcached_server_cursor(cluster->master, walker, &walk, 1);
    if (walk.failed || cluster->node_count != count) {
        snprintf(err, errlen, "cannot create per-node memcached clients for \"%s\"", config->servers);
        goto fail;
    }
    cluster->ring = memcached_pool_create(cluster->master, 1, max);
    if (cluster->ring == NULL) {
        snprintf(err, errlen, "cannot create the memcached connection pool");
        goto fail;
    }
    return cluster;

fail:
    mc_cluster_destroy(cluster);
    return NULL;
}

void mc_cluster_destroy(mc_cluster *cluster)
{
    size_t i;

    if (cluster == NULL)
        return;
    for (i = 0; i < cluster->node_count; i++)
        memcached_free(memcached_pool_destroy(cluster->nodes[i]));
    free(cluster->nodes);
    if (cluster->ring)
        memcached_pool_destroy(cluster->ring);
    memcached_free(cluster->master);
    memcached_free(cluster->eject_master);
    pthread_mutex_destroy(&cluster->eject_lock);
    pthread_mutex_destroy(&cluster->degraded_lock);
    free(cluster);
}

size_t mc_cluster_node_count(const mc_cluster *cluster)
{
    return cluster->node_count;
}

static memcached_st *mc_fetch(memcached_pool_st *pool, unsigned wait_ms, char *err, size_t errlen)
{
    struct timespec wait = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
    memcached_return_t rc;
    memcached_st *memc = memcached_pool_fetch(pool, &wait, &rc);

    if (memc == NULL)
        mc_write_error(err, errlen, "no memcached connection available", NULL, rc);
    return memc;
}

/* Errors of a connection the node closed (it restarted): worth one immediate retry on a fresh connection. */
static int mc_retryable(memcached_return_t rc)
{
    return rc == MEMCACHED_CONNECTION_FAILURE || rc == MEMCACHED_WRITE_FAILURE || rc == MEMCACHED_READ_FAILURE ||
           rc == MEMCACHED_UNKNOWN_READ_FAILURE || rc == MEMCACHED_ERRNO || rc == MEMCACHED_PROTOCOL_ERROR;
}

static int mc_is_miss(memcached_return_t rc)
{
    return rc == MEMCACHED_NOTFOUND || rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS;
}

static int mc_is_done(memcached_return_t rc)
{
    return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED || mc_is_miss(rc);
}

typedef enum { MC_OP_GET, MC_OP_GET2, MC_OP_SET, MC_OP_ADD, MC_OP_DELETE, MC_OP_INCR, MC_OP_DECR } mc_op_kind;

typedef struct {
    mc_op_kind kind;
    const char *hash_key; /* NULL: hash the key itself */
    size_t hash_len;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    uint32_t flags;
    time_t exptime;
    mc_value *out;
    const char *what; /* for error messages */
    const char *key2; /* MC_OP_GET2: a second key on the same node, fetched in the same round trip */
    size_t key2_len;
    mc_value *out2;
    uint64_t delta; /* MC_OP_INCR */
    uint64_t initial;
    uint64_t *counter;
} mc_op;

static int mc_value_copy(mc_value *out, memcached_result_st *result)
{
    size_t len = memcached_result_length(result);

    out->data = malloc(len + 1);
    if (out->data == NULL)
        return -1;
    if (len > 0) /* an empty item has no buffer at all */
        memcpy(out->data, memcached_result_value(result), len);
    out->data[len] = '\0';
    out->len = len;
    out->flags = memcached_result_flags(result);
    return 0;
}

static void mc_value_reset(mc_value *value)
{
    if (value == NULL)
        return;
    free(value->data);
    value->data = NULL;
    value->len = 0;
    value->flags = 0;
}

static memcached_return_t mc_get2_run(memcached_st *memc, const char *hash, size_t hash_len, mc_op *op)
{
    const char *keys[2] = {op->key, op->key2};
    size_t lens[2] = {op->key_len, op->key2_len};
    memcached_result_st *result;
    memcached_return_t rc;
    mc_value *target;

    mc_value_reset(op->out);
    mc_value_reset(op->out2);
    rc = memcached_mget_by_key(memc, hash, hash_len, keys, lens, 2);
    if (rc != MEMCACHED_SUCCESS)
        return rc;
    while ((result = memcached_fetch_result(memc, NULL, &rc)) != NULL) {
        const char *key = memcached_result_key_value(result);
        size_t key_len = memcached_result_key_length(result);
        target = key_len == op->key_len && memcmp(key, op->key, key_len) == 0 ? op->out : op->out2;
        if (target->data == NULL && mc_value_copy(target, result) != 0)
            rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
        memcached_result_free(result);
        if (rc == MEMCACHED_MEMORY_ALLOCATION_FAILURE)
            return rc;
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        mc_value_reset(op->out);
        mc_value_reset(op->out2);
        return rc;
    }
    return op->out->data ? MEMCACHED_SUCCESS : MEMCACHED_NOTFOUND;
}

static memcached_return_t mc_op_run_once(memcached_st *memc, mc_op *op)
{
    memcached_return_t rc = MEMCACHED_FAILURE;
    const char *hash = op->hash_key ? op->hash_key : op->key;
    size_t hash_len = op->hash_key ? op->hash_len : op->key_len;
    char *value;

    switch (op->kind) {
    case MC_OP_GET:
        value = memcached_get_by_key(memc, hash, hash_len, op->key, op->key_len, &op->out->len, &op->out->flags, &rc);
        if (rc == MEMCACHED_SUCCESS && value == NULL)
            value = calloc(1, 1); /* an empty item: libmemcached returns no buffer for it */
        if (rc != MEMCACHED_SUCCESS) {
            free(value);
            value = NULL;
        } else if (value == NULL) {
            rc = MEMCACHED_MEMORY_ALLOCATION_FAILURE;
        }
        op->out->data = value;
        break;
    case MC_OP_GET2:
        rc = mc_get2_run(memc, hash, hash_len, op);
        break;
    case MC_OP_SET:
        rc = memcached_set_by_key(memc, hash, hash_len, op->key, op->key_len, op->value, op->value_len, op->exptime,
                                  op->flags);
        break;
    case MC_OP_ADD:
        rc = memcached_add_by_key(memc, hash, hash_len, op->key, op->key_len, op->value, op->value_len, op->exptime,
                                  op->flags);
        break;
    case MC_OP_DELETE:
        rc = memcached_delete_by_key(memc, hash, hash_len, op->key, op->key_len, 0);
        break;
    case MC_OP_INCR:
        rc = memcached_increment_with_initial_by_key(memc, hash, hash_len, op->key, op->key_len, op->delta, op->initial,
                                                     op->exptime, op->counter);
        break;
    case MC_OP_DECR:
        rc = memcached_decrement_by_key(memc, hash, hash_len, op->key, op->key_len, op->delta, op->counter);
        break;
    }
    return rc;
}

static memcached_return_t mc_op_run(memcached_st *memc, mc_op *op)
{
    memcached_return_t rc = mc_op_run_once(memc, op);

    if (mc_retryable(rc))
        rc = mc_op_run_once(memc, op);
    return rc;
}

static mc_status mc_op_status(memcached_return_t rc, memcached_st *memc, const mc_op *op, char *err, size_t errlen)
{
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED)
        return MC_OK;
    if (mc_is_miss(rc))
        return MC_MISS;
    mc_write_error(err, errlen, op->what, memc, rc);
    return MC_OUTAGE;
}

static void mc_note_degraded(mc_cluster *cluster, const char *why)
{
    pthread_mutex_lock(&cluster->degraded_lock);
    snprintf(cluster->degraded_why, sizeof(cluster->degraded_why), "%s", why ? why : "");
    __atomic_store_n(&cluster->degraded_until, time(NULL) + MC_DEGRADED_WINDOW, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&cluster->degraded_lock);
}

/* On the ring as a fresh php-memcached client sees it; when the key's node is down, again the way php-memcached
 * then does: drop the node and hash again, on a fresh client so that no node stays dropped longer than in PHP. */
static mc_status mc_ring_run(mc_cluster *cluster, mc_op *op, char *err, size_t errlen)
{
    memcached_st *memc, *fresh;
    memcached_return_t rc;
    mc_status status;

    if (op->out)
        memset(op->out, 0, sizeof(*op->out));
    if (op->out2)
        memset(op->out2, 0, sizeof(*op->out2));
    memc = mc_fetch(cluster->ring, cluster->io_timeout_ms, err, errlen);
    if (memc == NULL)
        return MC_OUTAGE;
    rc = mc_op_run(memc, op);
    status = mc_op_status(rc, memc, op, err, errlen);
    /* With replicas libmemcached reads a copy when the key's node fails, and the operation succeeds: only the
     * client's error list (cleared when an operation starts) remembers the node. */
    if (status != MC_OUTAGE && !mc_is_done(memcached_last_error(memc))) {
        char text[256];

        mc_error_text(memcached_last_error_message(memc), text, sizeof(text));
        mc_note_degraded(cluster, text);
    }
    memcached_pool_release(cluster->ring, memc);
    if (status != MC_OUTAGE)
        return status;

    pthread_mutex_lock(&cluster->eject_lock);
    fresh = memcached_clone(NULL, cluster->eject_master);
    pthread_mutex_unlock(&cluster->eject_lock);
    if (fresh == NULL)
        return MC_OUTAGE;
    rc = mc_op_run_once(fresh, op);
    if (!mc_is_done(rc))
        rc = mc_op_run_once(fresh, op);
    if (mc_is_done(rc)) {
        /* err still holds what the ring's node answered: the node the key left, which the caller never learns */
        mc_note_degraded(cluster, errlen ? err : "");
        status = mc_op_status(rc, fresh, op, err, errlen);
    }
    memcached_free(fresh);
    return status;
}

int mc_cluster_degraded(mc_cluster *cluster, char *why, size_t whylen)
{
    /* asked after every operation that succeeded: no lock unless a node was lost */
    time_t until = __atomic_load_n(&cluster->degraded_until, __ATOMIC_ACQUIRE);

    if (until == 0 || time(NULL) >= until)
        return 0;
    if (whylen) {
        pthread_mutex_lock(&cluster->degraded_lock);
        snprintf(why, whylen, "%s", cluster->degraded_why);
        pthread_mutex_unlock(&cluster->degraded_lock);
    }
    return 1;
}

mc_status mc_get(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 mc_value *out, char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_GET,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .out = out,
                .what = "memcached get failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}

mc_status mc_get2(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  const char *key2, size_t key2_len, mc_value *out, mc_value *out2, char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_GET2,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .key2 = key2,
                .key2_len = key2_len,
                .out = out,
                .out2 = out2,
                .what = "memcached get failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}

mc_status mc_get_any_node(mc_cluster *cluster, const char *key, size_t key_len, mc_value *out, char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_GET, .key = key, .key_len = key_len, .out = out, .what = "memcached get failed"};
    size_t i, missed = 0;
    memcached_st *memc;
    memcached_return_t rc;

    for (i = 0; i < cluster->node_count; i++) {
        memc = mc_fetch(cluster->nodes[i], cluster->io_timeout_ms, err, errlen);
        if (memc == NULL)
            continue;
        rc = mc_op_run(memc, &op);
        if (mc_op_status(rc, memc, &op, err, errlen) == MC_OK) {
            memcached_pool_release(cluster->nodes[i], memc);
            return MC_OK;
        }
        memcached_pool_release(cluster->nodes[i], memc);
        if (mc_is_miss(rc))
            missed++;
    }
    return missed == cluster->node_count ? MC_MISS : MC_OUTAGE;
}

static time_t mc_exptime(time_t exptime)
{
    /* memcached reads anything over 30 days as an absolute Unix time */
    return exptime > MC_MAX_RELATIVE_EXPTIME ? exptime + time(NULL) : exptime;
}

static mc_status mc_store(mc_cluster *cluster, mc_op_kind kind, const char *hash_key, size_t hash_len, const char *key,
                          size_t key_len, const char *value, size_t value_len, uint32_t flags, time_t exptime,
                          char *err, size_t errlen)
{
    mc_op op = {.kind = kind,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .value = value,
                .value_len = value_len,
                .flags = flags,
                .exptime = mc_exptime(exptime),
                .what = kind == MC_OP_ADD ? "memcached add failed" : "memcached set failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}

mc_status mc_set(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen)
{
    return mc_store(cluster, MC_OP_SET, hash_key, hash_len, key, key_len, value, value_len, flags, exptime, err,
                    errlen);
}

mc_status mc_add(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen)
{
    return mc_store(cluster, MC_OP_ADD, hash_key, hash_len, key, key_len, value, value_len, flags, exptime, err,
                    errlen);
}

mc_status mc_delete(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                    char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_DELETE,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .what = "memcached delete failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}

mc_status mc_incr(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  uint64_t delta, uint64_t initial, time_t exptime, uint64_t *value, char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_INCR,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .delta = delta,
                .initial = initial,
                .counter = value,
                .exptime = mc_exptime(exptime),
                .what = "memcached increment failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}

mc_status mc_decr(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                  uint64_t delta, uint64_t *value, char *err, size_t errlen)
{
    mc_op op = {.kind = MC_OP_DECR,
                .hash_key = hash_key,
                .hash_len = hash_len,
                .key = key,
                .key_len = key_len,
                .delta = delta,
                .counter = value,
                .what = "memcached decrement failed"};

    return mc_ring_run(cluster, &op, err, errlen);
}
