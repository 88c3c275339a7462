/* BookingCacheTTL: answers of the availability route kept in the process for a few seconds, so that the pages a
 * campaign sends to the same salon and day cost one PostgreSQL read per process per interval instead of one per
 * visitor. A slot shown from the cache may have been taken since; the booking itself is always checked against the
 * database (409). Any write this process makes through the API empties the cache, so a visitor who just booked sees
 * the slot gone here at once; other processes and nodes see it within the TTL. */
#include "booking_int.h"
#include "crypto.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BOOKING_CACHE_BUCKETS 1024
#define BOOKING_CACHE_MAX     4096 /* entries; past this the cache starts over (it refills within a TTL) */

typedef struct booking_cache_entry {
    struct booking_cache_entry *next;
    uint64_t hash;
    long long expires_ms;
    char *key;
    char *body;
    size_t body_len;
} booking_cache_entry;

struct booking_cache {
    pthread_mutex_t lock;
    booking_cache_entry *buckets[BOOKING_CACHE_BUCKETS];
    size_t count;
};

static long long booking_cache_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

booking_cache *booking_cache_create(void)
{
    booking_cache *cache = calloc(1, sizeof(*cache));

    if (cache != NULL)
        pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

static void booking_cache_entry_free(booking_cache_entry *entry)
{
    free(entry->key);
    free(entry->body);
    free(entry);
}

static void booking_cache_clear_locked(booking_cache *cache)
{
    booking_cache_entry *entry, *next;
    size_t i;

    for (i = 0; i < BOOKING_CACHE_BUCKETS; i++) {
        for (entry = cache->buckets[i]; entry; entry = next) {
            next = entry->next;
            booking_cache_entry_free(entry);
        }
        cache->buckets[i] = NULL;
    }
    cache->count = 0;
}

void booking_cache_clear(booking_cache *cache)
{
    if (cache == NULL)
        return;
    pthread_mutex_lock(&cache->lock);
    booking_cache_clear_locked(cache);
    pthread_mutex_unlock(&cache->lock);
}

void booking_cache_destroy(booking_cache *cache)
{
    if (cache == NULL)
        return;
    booking_cache_clear_locked(cache);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* What identifies an answer: the host's settings that shape it, the Host itself when it picks the partner, and the
 * request. NULL when the request is not one the cache serves. malloc'd. */
static char *booking_cache_key(const booking_config *config, const booking_request *request)
{
    const char *path = request->path, *suffix = "/availability";
    size_t path_len = strlen(path), suffix_len = strlen(suffix), len;
    char *key;

    if (config->cache_ttl <= 0 || (strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0) ||
        path_len < suffix_len || strcmp(path + path_len - suffix_len, suffix) != 0)
        return NULL;
    len = strlen(config->time_zone ? config->time_zone : "") + strlen(config->partner_id ? config->partner_id : "") +
          strlen(request->host ? request->host : "") + path_len + strlen(request->args ? request->args : "") + 16;
    key = malloc(len);
    if (key != NULL)
        snprintf(key, len, "%d|%s|%s|%s|%s?%s", (int)config->partner_mode, config->time_zone ? config->time_zone : "",
                 config->partner_id ? config->partner_id : "",
                 config->partner_mode == BOOKING_PARTNER_FROM_HOST && request->host ? request->host : "", path,
                 request->args ? request->args : "");
    return key;
}

int booking_cache_answer(booking_cache *cache, const booking_config *config, const booking_request *request,
                         booking_response *response)
{
    char *key = cache ? booking_cache_key(config, request) : NULL;
    uint64_t hash;
    booking_cache_entry *entry;
    long long now = booking_cache_now_ms();
    int hit = 0;

    if (key == NULL)
        return 0;
    hash = crypto_fnv1a64(key, strlen(key));
    pthread_mutex_lock(&cache->lock);
    for (entry = cache->buckets[hash % BOOKING_CACHE_BUCKETS]; entry; entry = entry->next) {
        if (entry->hash == hash && strcmp(entry->key, key) == 0 && entry->expires_ms > now) {
            memset(response, 0, sizeof(*response));
            response->body = malloc(entry->body_len + 1);
            if (response->body != NULL) {
                memcpy(response->body, entry->body, entry->body_len + 1);
                response->body_len = entry->body_len;
                response->status = 200;
                response->content_type = "application/json";
                hit = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    free(key);
    return hit;
}

void booking_cache_keep(booking_cache *cache, const booking_config *config, const booking_request *request,
                        const booking_response *response)
{
    booking_cache_entry *entry, **slot;
    char *key;

    if (cache == NULL)
        return;
    if (strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0) {
        /* A write may have changed any calendar this process shows. */
        if (response->status >= 200 && response->status < 300 && strcmp(request->method, "OPTIONS") != 0)
            booking_cache_clear(cache);
        return;
    }
    if (response->status != 200 || response->body == NULL || (key = booking_cache_key(config, request)) == NULL)
        return;
    entry = calloc(1, sizeof(*entry));
    if (entry == NULL || (entry->body = malloc(response->body_len + 1)) == NULL) {
        free(entry);
        free(key);
        return;
    }
    memcpy(entry->body, response->body, response->body_len);
    entry->body[response->body_len] = '\0';
    entry->body_len = response->body_len;
    entry->key = key;
    entry->hash = crypto_fnv1a64(key, strlen(key));
    entry->expires_ms = booking_cache_now_ms() + config->cache_ttl * 1000;
    pthread_mutex_lock(&cache->lock);
    if (cache->count >= BOOKING_CACHE_MAX)
        booking_cache_clear_locked(cache);
    /* A newer answer for the same key replaces the old one. */
    for (slot = &cache->buckets[entry->hash % BOOKING_CACHE_BUCKETS]; *slot; slot = &(*slot)->next) {
        if ((*slot)->hash == entry->hash && strcmp((*slot)->key, key) == 0) {
            booking_cache_entry *old = *slot;
            *slot = old->next;
            booking_cache_entry_free(old);
            cache->count--;
            break;
        }
    }
    entry->next = cache->buckets[entry->hash % BOOKING_CACHE_BUCKETS];
    cache->buckets[entry->hash % BOOKING_CACHE_BUCKETS] = entry;
    cache->count++;
    pthread_mutex_unlock(&cache->lock);
}
