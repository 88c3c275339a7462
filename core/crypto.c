/* Randomness, MACs and encodings (see crypto.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getrandom() */
#endif

#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static const char crypto_sid_alphabet[] = "0123456789abcdefghijklmnopqrstuv";
static const char crypto_b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int crypto_getrandom(unsigned char *buf, size_t len)
{
    ssize_t got;

    while (len > 0) {
        got = getrandom(buf, len, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += got;
        len -= (size_t)got;
    }
    return 0;
}

int crypto_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t chunk;

    if (len == 0) {
        return 0;
    }
    if (buf == NULL) {
        return -1;
    }
    if (crypto_getrandom(p, len) == 0) {
        return 0;
    }
    /* Old kernels (ENOSYS) or seccomp filters: OpenSSL's DRBG, seeded from whatever the system offers. */
    while (len > 0) {
        chunk = len > INT_MAX ? INT_MAX : len;
        if (RAND_bytes(p, (int)chunk) != 1) {
            return -1;
        }
        p += chunk;
        len -= chunk;
    }
    return 0;
}

int crypto_session_id_new(char *out, size_t nchars)
{
    unsigned char random[(256 * 5 + 7) / 8];
    unsigned char *bytes = random;
    size_t nbytes, i, bit;
    unsigned value;

    if (out == NULL || nchars < 26 || nchars > SIZE_MAX / 5) {
        return -1;
    }
    nbytes = (nchars * 5 + 7) / 8;
    if (nbytes > sizeof(random)) {
        bytes = OPENSSL_malloc(nbytes);
        if (bytes == NULL) {
            return -1;
        }
    }
    if (crypto_random_bytes(bytes, nbytes) != 0) {
        OPENSSL_cleanse(bytes, nbytes);
        if (bytes != random) {
            OPENSSL_free(bytes);
        }
        return -1;
    }
    for (i = 0; i < nchars; i++) {
        bit = i * 5;
        value = bytes[bit / 8] | (bit / 8 + 1 < nbytes ? (unsigned)bytes[bit / 8 + 1] << 8 : 0u);
        out[i] = crypto_sid_alphabet[(value >> (bit % 8)) & 0x1f];
    }
    out[nchars] = '\0';
    OPENSSL_cleanse(bytes, nbytes);
    if (bytes != random) {
        OPENSSL_free(bytes);
    }
    return 0;
}

void crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        unsigned char out[CRYPTO_SHA256_LEN])
{
    static const unsigned char empty[1] = {0};
    unsigned int out_len = CRYPTO_SHA256_LEN;

    if (key_len > INT_MAX ||
        HMAC(EVP_sha256(), key != NULL ? key : empty, (int)key_len, msg != NULL ? msg : empty, msg_len, out,
             &out_len) == NULL ||
        out_len != CRYPTO_SHA256_LEN) {
        /* There is no error to return: a MAC nobody can predict makes every comparison fail, unlike zeros. */
        if (crypto_random_bytes(out, CRYPTO_SHA256_LEN) != 0) {
            memset(out, 0, CRYPTO_SHA256_LEN);
            out[0] = 1;
        }
    }
}

int crypto_equal_consttime(const void *a, const void *b, size_t len)
{
    if (len == 0) {
        return 1;
    }
    return CRYPTO_memcmp(a, b, len) == 0;
}

size_t crypto_base64url_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

size_t crypto_base64url_encode(const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    size_t i, n = 0;
    unsigned long group;

    for (i = 0; i + 2 < len; i += 3) {
        group = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];
        out[n++] = crypto_b64url_alphabet[group >> 18 & 0x3f];
        out[n++] = crypto_b64url_alphabet[group >> 12 & 0x3f];
        out[n++] = crypto_b64url_alphabet[group >> 6 & 0x3f];
        out[n++] = crypto_b64url_alphabet[group & 0x3f];
    }
    if (len - i == 1) {
        out[n++] = crypto_b64url_alphabet[p[i] >> 2];
        out[n++] = crypto_b64url_alphabet[(p[i] & 0x03) << 4];
    } else if (len - i == 2) {
        group = (unsigned long)p[i] << 8 | p[i + 1];
        out[n++] = crypto_b64url_alphabet[group >> 10 & 0x3f];
        out[n++] = crypto_b64url_alphabet[group >> 4 & 0x3f];
        out[n++] = crypto_b64url_alphabet[(group & 0x0f) << 2];
    }
    out[n] = '\0';
    return n;
}

static int crypto_b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

/* Strict: a length of 4n+1 and unused low bits that are not zero are refused too, so that one token has exactly
 * one spelling (a MAC over the decoded bytes cannot be replayed under another text). */
size_t crypto_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned long group = 0;
    size_t i, n = 0, bits = 0;
    int v;

    if (len % 4 == 1) {
        return (size_t)-1;
    }
    for (i = 0; i < len; i++) {
        v = crypto_b64url_value((unsigned char)in[i]);
        if (v < 0) {
            return (size_t)-1;
        }
        group = (group << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(group >> bits);
        }
    }
    if (bits > 0 && (group & ((1ul << bits) - 1)) != 0) {
        return (size_t)-1;
    }
    out[n] = 0;
    return n;
}

uint64_t crypto_fnv1a64(const void *data, size_t len)
{
    const unsigned char *byte = data;
    uint64_t hash = 14695981039346656037ULL;
    size_t i;

    for (i = 0; i < len; i++)
        hash = (hash ^ byte[i]) * 1099511628211ULL;
    return hash;
}

void crypto_hex_encode(const void *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

const char *crypto_read_secret_file(const char *path, size_t min_len, char **out, size_t *out_len, char *err,
                                    size_t errlen)
{
    char buf[4098];
    size_t n;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return err;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n < min_len || n > 4096) {
        snprintf(err, errlen, "\"%s\" must hold a secret of %zu to 4096 bytes on its first line", path, min_len);
        return err;
    }
    *out = malloc(n + 1);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return err;
    }
    memcpy(*out, buf, n + 1);
    *out_len = n;
    return NULL;
}
