/* Randomness, MACs and encodings shared by every module. Thread-safe (OpenSSL 3 is). */
#ifndef CORE_CRYPTO_H
#define CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32

/* Fills buf from the system CSPRNG (getrandom(2), OpenSSL RAND_bytes as fallback). Returns 0 or -1. */
int crypto_random_bytes(void *buf, size_t len);

/* A new session id in PHP's alphabet for session.sid_bits_per_character = 5 ("0-9a-v"), nchars characters,
 * NUL-terminated in out (out must hold nchars + 1). nchars * 5 must give at least 128 bits: nchars >= 26.
 * Returns 0, or -1 when nchars is too small or randomness is unavailable. */
int crypto_session_id_new(char *out, size_t nchars);

void crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                        unsigned char out[CRYPTO_SHA256_LEN]);

/* 1 when equal, 0 otherwise; the time taken depends only on len. */
int crypto_equal_consttime(const void *a, const void *b, size_t len);

/* base64url without padding. out needs crypto_base64url_len(len) + 1 bytes; returns the length written. */
size_t crypto_base64url_len(size_t len);
size_t crypto_base64url_encode(const void *in, size_t len, char *out);
/* Returns the decoded length, or (size_t)-1 on a character outside the alphabet. out needs len * 3 / 4 + 1. */
size_t crypto_base64url_decode(const char *in, size_t len, unsigned char *out);

/* Lower-case hex; out needs 2 * len + 1. */
void crypto_hex_encode(const void *in, size_t len, char *out);

/* FNV-1a, 64 bits: a fingerprint or a hash-table index, not a defence (for what nothing here keeps secret and no
 * visitor chooses against us: statement texts, cache keys of the server's own making, session contents). */
uint64_t crypto_fnv1a64(const void *data, size_t len);

/* Reads a secret from a file (signing keys, API keys): the first line, without its line end and trailing blanks,
 * min_len to 4096 bytes. malloc'd NUL-terminated into *out; returns NULL, or err filled with a phrase naming the
 * file. Servers call it at start-up, as root, so the file can be readable by root alone. */
const char *crypto_read_secret_file(const char *path, size_t min_len, char **out, size_t *out_len, char *err,
                                    size_t errlen);

#endif
