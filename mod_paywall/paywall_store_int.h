/* What the parts of mod_paywall's store side share among themselves (the gate, the webhook, Stripe calls, the
 * export); the adapters use paywall_store.h only. */
#ifndef PAYWALL_STORE_INT_H
#define PAYWALL_STORE_INT_H

#include <pthread.h>

#include "paywall_store.h"

/* Long enough to spare PostgreSQL, short enough that a change a webhook could not publish (memcached down at that
 * moment) still shows within a minute. */
#define PAYWALL_ENTITLEMENT_MC_TTL 60

typedef struct paywall_cached paywall_cached;

struct paywall_store {
    paywall_store *next;
    paywall_store_config config;
    mc_cluster *mc; /* NULL without PaywallMemcached */
    pg_pool *pg;    /* NULL without PaywallPostgres */
    int migrated;
    pthread_mutex_t lock;
    int mc_down;      /* an outage was logged and has not been seen to end */
    int mc_node_lost; /* the loss of one node was logged and has not been seen to end */
    int pg_down;
    int failing; /* the fail mode applies */
    pthread_mutex_t cache_lock;
    paywall_cached **cache;
};

/* A user's subscriptions as the gate needs them. */
typedef struct {
    paywall_subscription subs[PAYWALL_ENTITLEMENT_SUBS_MAX]; /* plan pointers unset: see plans */
    char plans[PAYWALL_ENTITLEMENT_SUBS_MAX][PAYWALL_PLAN_MAX + 1];
    size_t nsubs;
} paywall_entitlement;

void paywall_note_mc(paywall_store *store, int down, const char *why, char *note, size_t notelen, int *is_error);
void paywall_note_pg(paywall_store *store, int down, const char *why, char *note, size_t notelen, int *is_error);
/* A connection with the paywall schema migrated; NULL and err when PostgreSQL is not configured or unreachable. */
PGconn *paywall_pg_acquire(paywall_store *store, char *err, size_t errlen);
size_t paywall_entitlement_key(const char *user, size_t len, char *out, size_t outlen);
int paywall_entitlement_query(PGconn *conn, const char *user, paywall_entitlement *ent, char *err, size_t errlen);
void paywall_entitlement_publish(paywall_store *store, const char *user, const paywall_entitlement *ent, char *note,
                                 size_t notelen, int *is_error);

#endif
