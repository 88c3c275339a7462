/* Outbound HTTP against a real server on loopback (a small one in a thread): answers, deadlines, retries with
 * backoff, bounded bodies, refused connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

static int listener;
static int port;
static int flaky_calls;
static char last_request[4096];
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;

static void reply(int fd, int status, const char *body, size_t len)
{
    char head[256];
    int n =
        snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, len);
    /* the client may have given up (the timeout test): no SIGPIPE for that */
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(fd, body, len, MSG_NOSIGNAL) < 0)
        return;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        char req[4096];
        ssize_t n, total = 0;
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        /* headers, then a body if Content-Length says so */
        while (total < (ssize_t)sizeof(req) - 1 && (n = read(fd, req + total, sizeof(req) - 1 - (size_t)total)) > 0) {
            char *end, *cl;
            total += n;
            req[total] = '\0';
            end = strstr(req, "\r\n\r\n");
            if (end == NULL)
                continue;
            cl = strstr(req, "Content-Length: ");
            if (cl == NULL || total >= (end + 4 - req) + atol(cl + 16))
                break;
        }
        req[total > 0 ? total : 0] = '\0';
        pthread_mutex_lock(&last_lock);
        memcpy(last_request, req, sizeof(last_request));
        pthread_mutex_unlock(&last_lock);
        if (strncmp(req, "GET /ok ", 8) == 0) {
            reply(fd, 200, "hello", 5);
        } else if (strncmp(req, "POST /echo ", 11) == 0) {
            char *body = strstr(req, "\r\n\r\n") + 4;
            reply(fd, 201, body, strlen(body));
        } else if (strncmp(req, "GET /slow ", 10) == 0) {
            sleep(2);
            reply(fd, 200, "late", 4);
        } else if (strncmp(req, "GET /flaky ", 11) == 0) {
            if (__atomic_add_fetch(&flaky_calls, 1, __ATOMIC_SEQ_CST) < 3)
                reply(fd, 503, "busy", 4);
            else
                reply(fd, 200, "ok now", 6);
        } else if (strncmp(req, "GET /big ", 9) == 0) {
            static char big[100000];
            memset(big, 'x', sizeof(big));
            reply(fd, 200, big, sizeof(big));
        } else {
            reply(fd, 404, "no", 2);
        }
        close(fd);
    }
}

static int setup(void **state)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    pthread_t thread;
    int one = 1;
    (void)state;

    listener = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(listener, 16) != 0)
        return -1;
    getsockname(listener, (struct sockaddr *)&addr, &len);
    port = ntohs(addr.sin_port);
    pthread_create(&thread, NULL, serve, NULL);
    pthread_detach(thread);
    return http_global_init();
}

static char *url(const char *path)
{
    static char buf[128];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", port, path);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_get(void **state)
{
    http_request req = {.method = "GET", .url = url("/ok")};
    http_response resp;
    (void)state;
    assert_int_equal(http_perform(&req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(resp.attempts, 1);
    http_response_free(&resp);
}

static void test_post_with_headers(void **state)
{
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "Idempotency-Key: k1", NULL};
    http_request req = {.method = "POST", .url = url("/echo"), .headers = headers, .body = "a=1&b=2", .body_len = 7};
    http_response resp;
    (void)state;
    assert_int_equal(http_perform(&req, &resp), 0);
    assert_int_equal(resp.status, 201);
    assert_string_equal(resp.body, "a=1&b=2");
    pthread_mutex_lock(&last_lock);
    assert_non_null(strstr(last_request, "Idempotency-Key: k1\r\n"));
    assert_non_null(strstr(last_request, "Content-Type: application/x-www-form-urlencoded\r\n"));
    pthread_mutex_unlock(&last_lock);
    http_response_free(&resp);
}

static void test_timeout(void **state)
{
    http_request req = {.method = "GET", .url = url("/slow"), .timeout_ms = 300};
    http_response resp;
    double start = now_s();
    (void)state;
    assert_int_equal(http_perform(&req, &resp), -1);
    assert_true(now_s() - start < 1.5);
    assert_int_equal(resp.status, 0);
    assert_non_null(strstr(resp.error, "imeout"));
    http_response_free(&resp);
}

static void test_retries_with_backoff(void **state)
{
    http_request req = {.method = "GET", .url = url("/flaky"), .retries = 3, .backoff_ms = 20};
    http_response resp;
    (void)state;
    flaky_calls = 0;
    assert_int_equal(http_perform(&req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "ok now");
    assert_int_equal(resp.attempts, 3);
    http_response_free(&resp);

    /* out of retries: the last 503 is still the answer */
    flaky_calls = -10;
    req.retries = 1;
    assert_int_equal(http_perform(&req, &resp), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.attempts, 2);
    http_response_free(&resp);
}

static void test_body_limit(void **state)
{
    http_request req = {.method = "GET", .url = url("/big"), .max_body = 1000, .retries = 2};
    http_response resp;
    (void)state;
    assert_int_equal(http_perform(&req, &resp), -1);
    assert_non_null(strstr(resp.error, "larger than 1000 bytes"));
    assert_int_equal(resp.attempts, 1); /* not retried: it would be as big again */
    assert_null(resp.body);
    http_response_free(&resp);
}

static void test_refused(void **state)
{
    http_request req = {.method = "GET", .url = "http://127.0.0.1:1/", .retries = 1, .backoff_ms = 10};
    http_response resp;
    (void)state;
    assert_int_equal(http_perform(&req, &resp), -1);
    assert_int_equal(resp.attempts, 2);
    assert_true(strlen(resp.error) > 0);
    http_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),        cmocka_unit_test(test_post_with_headers),
        cmocka_unit_test(test_timeout),    cmocka_unit_test(test_retries_with_backoff),
        cmocka_unit_test(test_body_limit), cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
