/* The process's stores: one PostgreSQL pool per BookingPostgres conninfo, shared by every virtual host that names
 * it, with the schema migrated on first use (a database that is down at start-up is migrated when it comes back). */
#include "booking_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct booking_store {
    char *postgres;
    pg_pool *pg;
    booking_cache *cache;
    int migrated;
    pthread_mutex_t migrate_lock;
    booking_store *next;
};

static pthread_mutex_t booking_stores_lock = PTHREAD_MUTEX_INITIALIZER;
static booking_store *booking_stores;

static void booking_store_free(booking_store *store)
{
    if (store->pg)
        pg_pool_destroy(store->pg);
    booking_cache_destroy(store->cache);
    pthread_mutex_destroy(&store->migrate_lock);
    free(store->postgres);
    free(store);
}

booking_store *booking_store_get(const char *postgres, char *err, size_t errlen)
{
    booking_store *store;
    pg_config pg = {0};

    if (postgres == NULL) {
        snprintf(err, errlen, "no BookingPostgres configured");
        return NULL;
    }
    pthread_mutex_lock(&booking_stores_lock);
    for (store = booking_stores; store; store = store->next)
        if (strcmp(store->postgres, postgres) == 0)
            goto out;
    store = calloc(1, sizeof(*store));
    if (store == NULL || (store->postgres = strdup(postgres)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(store);
        store = NULL;
        goto out;
    }
    pthread_mutex_init(&store->migrate_lock, NULL);
    store->cache = booking_cache_create();
    pg.conninfo = postgres;
    if ((store->pg = pg_pool_create(&pg, err, errlen)) == NULL) {
        booking_store_free(store);
        store = NULL;
        goto out;
    }
    store->next = booking_stores;
    booking_stores = store;
out:
    pthread_mutex_unlock(&booking_stores_lock);
    return store;
}

void booking_stores_close_all(void)
{
    booking_store *store, *next;

    pthread_mutex_lock(&booking_stores_lock);
    for (store = booking_stores; store; store = next) {
        next = store->next;
        booking_store_free(store);
    }
    booking_stores = NULL;
    pthread_mutex_unlock(&booking_stores_lock);
}

/* Applies the migrations once per process; pg_migrate's advisory lock makes concurrent nodes safe, the mutex only
 * saves this process's threads from all queuing on it. Returns 0 or -1 (err). */
static int booking_store_migrate(booking_store *store, char *err, size_t errlen)
{
    int rc = 0;

    if (__atomic_load_n(&store->migrated, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&store->migrate_lock);
    if (!store->migrated) {
        rc = pg_migrate(store->pg, "booking", booking_migrations, err, errlen);
        if (rc == 0)
            __atomic_store_n(&store->migrated, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&store->migrate_lock);
    return rc;
}

booking_cache *booking_store_cache(booking_store *store)
{
    return store->cache;
}

pg_pool *booking_store_pool(booking_store *store)
{
    char err[256];

    /* A failure here shows again as the caller's own query failing, which it reports. */
    (void)booking_store_migrate(store, err, sizeof(err));
    return store->pg;
}

PGconn *booking_store_acquire(booking_store *store, char *err, size_t errlen)
{
    if (booking_store_migrate(store, err, errlen) != 0)
        return NULL;
    return pg_pool_acquire(store->pg, err, errlen);
}
