/* PHP session and serialize() codec.
 *
 * Decodes the three session formats PHP writes (session.serialize_handler = php, php_binary, php_serialize)
 * into an ordered list of top-level entries, each with its value parsed into a tree, and encodes them back.
 * Every length in the input is checked against the bytes that remain: a hostile or truncated value yields an
 * error, never a read past the buffer. Memory comes from malloc and is released with phpser_session_free().
 */
#ifndef CORE_PHPSER_H
#define CORE_PHPSER_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PHPSER_FORMAT_PHP, PHPSER_FORMAT_PHP_BINARY, PHPSER_FORMAT_PHP_SERIALIZE } phpser_format;

typedef enum {
    PHPSER_NULL,      /* N; */
    PHPSER_BOOL,      /* b:0; */
    PHPSER_INT,       /* i:42; */
    PHPSER_DOUBLE,    /* d:0.5; (also INF, -INF, NAN) */
    PHPSER_STRING,    /* s:5:"hello"; (binary safe) */
    PHPSER_ARRAY,     /* a:N:{key;value...} */
    PHPSER_OBJECT,    /* O:len:"Class":N:{prop;value...} */
    PHPSER_CUSTOM,    /* C:len:"Class":len:{opaque} (Serializable): see compound below */
    PHPSER_ENUM,      /* E:len:"Class:Case"; */
    PHPSER_REFERENCE, /* r:N; (an object seen before, as PHP 8 requires) or R:N; (a PHP reference to any value) */
} phpser_type;

typedef struct phpser_value phpser_value;

typedef struct {
    phpser_value *key; /* PHPSER_INT or PHPSER_STRING, for objects too (__serialize() may return integer keys);
                        * NULL only for PHPSER_CUSTOM's payload */
    phpser_value *value;
} phpser_pair;

struct phpser_value {
    phpser_type type;
    union {
        int boolean;
        int64_t integer;
        double dbl;
        struct {
            char *bytes; /* NUL-terminated copy; len excludes the NUL; may contain NULs */
            size_t len;
        } str; /* PHPSER_STRING; PHPSER_ENUM ("Class:Case") */
        struct {
            char *class_name; /* NULL for arrays */
            size_t class_len;
            phpser_pair *pairs;
            size_t count;
        } compound; /* PHPSER_ARRAY, PHPSER_OBJECT; PHPSER_CUSTOM: class_name, and count 1 with pairs[0].key NULL
                     * and pairs[0].value the opaque payload as a PHPSER_STRING (str would overlap class_name) */
        struct {
            int by_ref; /* 1 for R:, 0 for r: */
            int64_t index;
        } ref;
    } u;
};

typedef struct {
    char *name; /* top-level $_SESSION key, NUL-terminated */
    size_t name_len;
    phpser_value *value; /* NULL for an entry the php format marks undefined ("!name|"); a top-level reference
                          * ("ro|r:8;") shows the value it refers to, as $_SESSION['ro'] would */
} phpser_entry;

typedef struct phpser_session phpser_session;

/* Parses buf. Returns 0 and sets *out, or -1 and writes a one-line reason into err (never NULL when errlen > 0).
 * An empty buffer is a valid empty session. Nesting deeper than 64 levels is refused, and so is a name that appears
 * twice (PHP never writes one). "!name|value" is the name "!name" (PHP 7+ writes that); "!name|" not followed by a
 * value is PHP 5's undefined entry. */
int phpser_session_decode(phpser_format format, const char *buf, size_t len, phpser_session **out, char *err,
                          size_t errlen);
phpser_session *phpser_session_new(void);
void phpser_session_free(phpser_session *session);

size_t phpser_session_count(const phpser_session *session);
const phpser_entry *phpser_session_entry(const phpser_session *session, size_t index);
/* First entry with this exact name, or NULL. */
const phpser_entry *phpser_session_find(const phpser_session *session, const char *name, size_t name_len);

/* Replaces (in place, keeping the order) or appends a string value. Returns 0, or -1 on allocation failure.
 * As in PHP, references stay meaningful: assigning through an R: reference changes every member of its reference
 * set, and other entries that referred to the old value (or into it) keep that value, as after unset(). */
int phpser_session_set_string(phpser_session *session, const char *name, size_t name_len, const char *value,
                              size_t value_len);
/* Removes every entry with this name; returns how many were removed. References from other entries to the removed
 * value keep it, as after unset() in PHP. */
size_t phpser_session_remove(phpser_session *session, const char *name, size_t name_len);

/* Encodes into a malloc'd, NUL-terminated buffer (*len excludes the NUL). Returns 0 or -1 and writes err.
 * References are numbered again the way PHP's serializer would, so any format can be written from any other.
 * The php format cannot carry names containing '|' (nor undefined entries that would read back differently),
 * php_binary names longer than 127 bytes: refused. A name starting with '!' is written as PHP 7+ does. */
int phpser_session_encode(const phpser_session *session, phpser_format format, char **out, size_t *len, char *err,
                          size_t errlen);

/* How a value reaches a backend as a variable: scalars as PHP's (string) cast would print them
 * (true -> "1", false and null -> "", 1.5 -> "1.5"), strings as is, anything else as its serialize() text.
 * Returns a malloc'd NUL-terminated string (length in *len), or NULL on allocation failure. */
char *phpser_value_to_text(const phpser_value *value, size_t *len);

/* Parses one serialize() value (the php_serialize format's unit) from buf; *consumed tells how many bytes. */
int phpser_value_decode(const char *buf, size_t len, size_t *consumed, phpser_value **out, char *err, size_t errlen);
void phpser_value_free(phpser_value *value);
/* Appends serialize() text of value to a malloc'd buffer (*buf, *len, *cap grow as needed; kept NUL-terminated).
 * Returns 0 or -1. References inside a value are written with the index they carry (numbered in the session or
 * the value they were decoded from). */
int phpser_value_encode(const phpser_value *value, char **buf, size_t *len, size_t *cap);

/* php-memcached stores values with item flags (php_memcached.c MEMC_VAL_*): bits 0-3 are the type (0 string,
 * 1 long, 2 double, 3 bool, 4 serialized, 5 igbinary, 6 json, 7 msgpack), bit 0x10 marks compression with 0x20 zlib,
 * 0x40 fastlz, 0x80 zstd (3.3+), bits 16-31 are user flags. A compressed value starts with its uncompressed length
 * as a uint32_t memcpy'd in host order (little-endian on x86/arm64), then a zlib stream (compress2()) or fastlz/zstd
 * data. long, double and bool items are text ("42", "1.5", "1" or ""); json is JSON text. Its session handler
 * stores the session string as is, with flags 0, never compressed. This returns the plain bytes of a string,
 * serialized, long, double, bool or json item (malloc'd, NUL-terminated), or NULL with err written for types or
 * compressions it cannot read (igbinary, msgpack, types 8-15, fastlz, zstd) or for corrupt data. */
char *phpser_memcached_value(uint32_t flags, const char *buf, size_t len, size_t *out_len, char *err, size_t errlen);

#endif
