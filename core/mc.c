#include "mc.h"

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_MAX_RELATIVE_EXPTIME (60 * 60 * 24 * 30)

struct mc_cluster {
    memcached_st *master;       /* configured like php-memcached's session handler; never used directly */
    memcached_pool_st *ring;    /* clones of master */
    memcached_pool_st **nodes;  /* one single-server pool per node, for mc_get_any_node */
    size_t node_count;
    unsigned io_timeout_ms;
};

static void mc_write_error(char *err, size_t errlen, const char *what, memcached_st *memc, memcached_return_t rc)
{
    if (errlen == 0)
        return;
    snprintf(err, errlen, "%s: %s", what, memc ? memcached_last_error_message(memc) : memcached_strerror(NULL, rc));
}

static int mc_configure(memcached_st *memc, const mc_config *config, int single)
{
    unsigned connect_ms = config->connect_timeout_ms ? config->connect_timeout_ms : 200;
    unsigned io_ms = config->io_timeout_ms ? config->io_timeout_ms : 500;
    unsigned retry_s = config->retry_timeout_s ? config->retry_timeout_s : 2;

    /* The same behaviours php-memcached sets from its memcached.sess_* defaults, so both place a key alike. */
    if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1) != MEMCACHED_SUCCESS)
        return -1;
    if (!single) {
        if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA, 1) != MEMCACHED_SUCCESS)
            return -1;
        if (config->replicas &&
            memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS, config->replicas) != MEMCACHED_SUCCESS)
            return -1;
        /* A dead node leaves the ring for retry_timeout, so requests do not each wait on it. */
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1);
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 1);
    }
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry_s);
    memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, retry_s);
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
    if (memc == NULL || mc_configure(memc, walk->config, 1) != 0) {
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

    if (config->servers == NULL || config->servers[0] == '\0') {
        snprintf(err, errlen, "no memcached servers configured");
        return NULL;
    }
    cluster = calloc(1, sizeof(*cluster));
    if (cluster == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cluster->io_timeout_ms = config->io_timeout_ms ? config->io_timeout_ms : 500;
    cluster->master = mc_master_from_list(config->servers, config, err, errlen);
    if (cluster->master == NULL)
        goto fail;
    if (mc_configure(cluster->master, config, 0) != 0) {
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
    cluster->ring = memcached_pool_create(cluster->master, 1, config->max_connections ? config->max_connections : 64);
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

static int mc_is_miss(memcached_return_t rc)
{
    return rc == MEMCACHED_NOTFOUND || rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS;
}

static mc_status mc_get_from(memcached_pool_st *pool, unsigned wait_ms, const char *hash_key, size_t hash_len,
                             const char *key, size_t key_len, mc_value *out, char *err, size_t errlen)
{
    memcached_st *memc = mc_fetch(pool, wait_ms, err, errlen);
    memcached_return_t rc;
    mc_status status;
    char *value;

    out->data = NULL;
    out->len = 0;
    out->flags = 0;
    if (memc == NULL)
        return MC_OUTAGE;
    if (hash_key)
        value = memcached_get_by_key(memc, hash_key, hash_len, key, key_len, &out->len, &out->flags, &rc);
    else
        value = memcached_get(memc, key, key_len, &out->len, &out->flags, &rc);
    if (rc == MEMCACHED_SUCCESS) {
        if (value == NULL) {
            /* An empty item: libmemcached returns NULL data for it. */
            value = calloc(1, 1);
            if (value == NULL) {
                memcached_pool_release(pool, memc);
                snprintf(err, errlen, "out of memory");
                return MC_OUTAGE;
            }
        }
        out->data = value;
        status = MC_OK;
    } else {
        free(value);
        if (mc_is_miss(rc)) {
            status = MC_MISS;
        } else {
            mc_write_error(err, errlen, "memcached get failed", memc, rc);
            status = MC_OUTAGE;
        }
    }
    memcached_pool_release(pool, memc);
    return status;
}

mc_status mc_get(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 mc_value *out, char *err, size_t errlen)
{
    return mc_get_from(cluster->ring, cluster->io_timeout_ms, hash_key, hash_len, key, key_len, out, err, errlen);
}

mc_status mc_get_any_node(mc_cluster *cluster, const char *key, size_t key_len, mc_value *out, char *err,
                          size_t errlen)
{
    size_t i, answered = 0;
    mc_status status;

    for (i = 0; i < cluster->node_count; i++) {
        status = mc_get_from(cluster->nodes[i], cluster->io_timeout_ms, NULL, 0, key, key_len, out, err, errlen);
        if (status == MC_OK)
            return MC_OK;
        if (status == MC_MISS)
            answered++;
    }
    return answered ? MC_MISS : MC_OUTAGE;
}

typedef enum { MC_STORE_SET, MC_STORE_ADD } mc_store_mode;

static mc_status mc_store(mc_cluster *cluster, mc_store_mode mode, const char *hash_key, size_t hash_len,
                          const char *key, size_t key_len, const char *value, size_t value_len, uint32_t flags,
                          time_t exptime, char *err, size_t errlen)
{
    memcached_st *memc = mc_fetch(cluster->ring, cluster->io_timeout_ms, err, errlen);
    memcached_return_t rc;
    mc_status status;

    if (memc == NULL)
        return MC_OUTAGE;
    if (exptime > MC_MAX_RELATIVE_EXPTIME)
        exptime += time(NULL);
    if (mode == MC_STORE_ADD)
        rc = memcached_add_by_key(memc, hash_key, hash_len, key, key_len, value, value_len, exptime, flags);
    else
        rc = memcached_set_by_key(memc, hash_key, hash_len, key, key_len, value, value_len, exptime, flags);
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED) {
        status = MC_OK;
    } else if (mc_is_miss(rc)) {
        status = MC_MISS;
    } else {
        mc_write_error(err, errlen, mode == MC_STORE_ADD ? "memcached add failed" : "memcached set failed", memc, rc);
        status = MC_OUTAGE;
    }
    memcached_pool_release(cluster->ring, memc);
    return status;
}

mc_status mc_set(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen)
{
    return mc_store(cluster, MC_STORE_SET, hash_key, hash_len, key, key_len, value, value_len, flags, exptime, err,
                    errlen);
}

mc_status mc_add(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                 const char *value, size_t value_len, uint32_t flags, time_t exptime, char *err, size_t errlen)
{
    return mc_store(cluster, MC_STORE_ADD, hash_key, hash_len, key, key_len, value, value_len, flags, exptime, err,
                    errlen);
}

mc_status mc_delete(mc_cluster *cluster, const char *hash_key, size_t hash_len, const char *key, size_t key_len,
                    char *err, size_t errlen)
{
    memcached_st *memc = mc_fetch(cluster->ring, cluster->io_timeout_ms, err, errlen);
    memcached_return_t rc;
    mc_status status;

    if (memc == NULL)
        return MC_OUTAGE;
    rc = memcached_delete_by_key(memc, hash_key, hash_len, key, key_len, 0);
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED) {
        status = MC_OK;
    } else if (mc_is_miss(rc)) {
        status = MC_MISS;
    } else {
        mc_write_error(err, errlen, "memcached delete failed", memc, rc);
        status = MC_OUTAGE;
    }
    memcached_pool_release(cluster->ring, memc);
    return status;
}
