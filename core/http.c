#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int too_big;
} http_buffer;

int http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static size_t http_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_buffer *buf = userdata;
    size_t n = size * nmemb;

    if (buf->len + n > buf->max) {
        buf->too_big = 1;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (buf->len + n + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        char *grown;
        while (cap < buf->len + n + 1)
            cap *= 2;
        grown = realloc(buf->data, cap);
        if (grown == NULL)
            return 0;
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

static void http_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int http_attempt(const http_request *request, struct curl_slist *headers, http_buffer *buf,
                        http_response *response)
{
    CURL *curl = curl_easy_init();
    CURLcode rc;

    if (curl == NULL) {
        snprintf(response->error, sizeof(response->error), "cannot create a libcurl handle");
        return -1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, request->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method ? request->method : "GET");
    if (request->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(request->timeout_ms ? request->timeout_ms : 5000));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(request->connect_timeout_ms ? request->connect_timeout_ms : 1000));
    /* No signals: timeouts must work in threaded servers. */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, buf);
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
    } else if (buf->too_big) {
        snprintf(response->error, sizeof(response->error), "response from %s larger than %zu bytes", request->url,
                 buf->max);
    } else {
        snprintf(response->error, sizeof(response->error), "%s %s: %s", request->method ? request->method : "GET",
                 request->url, curl_easy_strerror(rc));
    }
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? 0 : -1;
}

int http_perform(const http_request *request, http_response *response)
{
    struct curl_slist *headers = NULL, *grown;
    const char *const *h;
    unsigned attempt, wait_ms = request->backoff_ms ? request->backoff_ms : 100;
    http_buffer buf;
    int rc = -1;

    memset(response, 0, sizeof(*response));
    for (h = request->headers; h && *h; h++) {
        grown = curl_slist_append(headers, *h);
        if (grown == NULL) {
            curl_slist_free_all(headers);
            snprintf(response->error, sizeof(response->error), "out of memory");
            return -1;
        }
        headers = grown;
    }
    for (attempt = 0; attempt <= request->retries; attempt++) {
        if (attempt > 0) {
            http_sleep_ms(wait_ms);
            wait_ms *= 2;
        }
        memset(&buf, 0, sizeof(buf));
        buf.max = request->max_body ? request->max_body : 1024 * 1024;
        response->status = 0;
        response->error[0] = '\0';
        response->attempts = attempt + 1;
        rc = http_attempt(request, headers, &buf, response);
        if (rc == 0 && response->status != 429 && response->status < 500) {
            response->body = buf.data ? buf.data : calloc(1, 1);
            response->body_len = buf.len;
            break;
        }
        if (buf.too_big || attempt == request->retries) {
            if (rc == 0) {
                /* the last answer was a 429 or 5xx: still an answer */
                response->body = buf.data ? buf.data : calloc(1, 1);
                response->body_len = buf.len;
            } else {
                free(buf.data);
            }
            break;
        }
        free(buf.data);
    }
    curl_slist_free_all(headers);
    return rc;
}

void http_response_free(http_response *response)
{
    free(response->body);
    response->body = NULL;
    response->body_len = 0;
}
