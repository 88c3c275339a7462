/* PHP session and serialize() codec (see phpser.h).
 *
 * References ("r:N;" an object seen before, "R:N;" a PHP reference) are kept twice: as the index the text carried,
 * and as a link from the reference node to the node it named. The links let the encoder number references again
 * the way PHP's serializer does (by identity, so an entry may be removed or replaced without the indices of later
 * entries going stale), and let removal hand a removed value over to the references that still need it, as unset()
 * does in PHP.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l() and newlocale(): the text of a double must not depend on the process locale */
#endif

#include "phpser.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PHPSER_MAX_DEPTH    64
#define PHPSER_BIN_UNDEF    0x80
#define PHPSER_BIN_NAME_MAX 127
/* PHP writes at most 24 bytes for a double; a longer text is hand-made and refused rather than copied. */
#define PHPSER_DOUBLE_MAX 128
/* "i:0;N;" is the shortest key and value: a count that needs more bytes than remain is refused before allocating. */
#define PHPSER_MIN_PAIR 6

/* php-memcached's item flags (php_memcached.c, MEMC_VAL_*): type in bits 0-3, compression in bits 4-11 (shifted
 * left by 4 from MEMC_VAL_COMPRESSED 1<<0, _ZLIB 1<<1, _FASTLZ 1<<2, _ZSTD 1<<3), user flags in bits 16-31. */
#define PHPSER_MC_TYPE_MASK  0x0fu
#define PHPSER_MC_STRING     0u
#define PHPSER_MC_LONG       1u
#define PHPSER_MC_DOUBLE     2u
#define PHPSER_MC_BOOL       3u
#define PHPSER_MC_SERIALIZED 4u
#define PHPSER_MC_IGBINARY   5u
#define PHPSER_MC_JSON       6u
#define PHPSER_MC_MSGPACK    7u
#define PHPSER_MC_COMPRESSED 0x10u
#define PHPSER_MC_ZLIB       0x20u
#define PHPSER_MC_FASTLZ     0x40u
#define PHPSER_MC_ZSTD       0x80u
/* The stored length is the allocation size: bounded so a corrupt header cannot ask for gigabytes. */
#define PHPSER_MC_MAX_PLAIN (64u * 1024u * 1024u)
/* Deflate cannot shrink data by more than about 1032:1; a larger claimed length is corrupt. */
#define PHPSER_ZLIB_MAX_RATIO 1032u

typedef struct {
    phpser_value *ref;    /* a PHPSER_REFERENCE node */
    phpser_value *target; /* the node it refers to */
    int handle; /* ref holds a copy of an object handle (read as r:), also once an R: has made it a PHP reference
                 * (by_ref 1): assigning to it replaces the handle, not the object */
} phpser_link;

typedef struct {
    phpser_link *items; /* sorted by ref address, except while a decode appends */
    size_t count;
    size_t cap;
} phpser_links;

typedef struct {
    phpser_entry view;   /* what callers see: a top-level reference shows the value it refers to */
    phpser_value *value; /* what is encoded; NULL for an undefined entry */
} phpser_item;

struct phpser_session {
    phpser_item *items;
    size_t count;
    size_t cap;
    phpser_links links;
    phpser_format origin; /* whose numbering the indices stored in reference nodes follow */
};

/* Stands for php_serialize's outer array (value number 1), which "R:1;" can name but which is no entry's value. */
static phpser_value phpser_session_array = {.type = PHPSER_ARRAY};

/* ---- errors, locale, small helpers ---- */

static int phpser_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int phpser_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static pthread_once_t phpser_locale_once = PTHREAD_ONCE_INIT;
static locale_t phpser_c_locale;

static void phpser_init_locale(void)
{
    phpser_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static int phpser_strtod(const char *text, double *out)
{
    char *end;

    pthread_once(&phpser_locale_once, phpser_init_locale);
    if (phpser_c_locale == (locale_t)0) {
        return -1;
    }
    *out = strtod_l(text, &end, phpser_c_locale);
    return *end == '\0' ? 0 : -1;
}

static char *phpser_dup_bytes(const char *bytes, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(copy, bytes, len);
    }
    copy[len] = '\0';
    return copy;
}

static int phpser_order(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y ? -1 : x > y;
}

/* qsort()/bsearch() over arrays of node pointers */
static int phpser_compare_nodes(const void *a, const void *b)
{
    return phpser_order(*(phpser_value *const *)a, *(phpser_value *const *)b);
}

static int phpser_is_compound(const phpser_value *v)
{
    return v->type == PHPSER_ARRAY || v->type == PHPSER_OBJECT;
}

/* ---- values ---- */

void phpser_value_free(phpser_value *value)
{
    size_t i;

    if (value == NULL) {
        return;
    }
    switch (value->type) {
    case PHPSER_STRING:
    case PHPSER_ENUM:
        free(value->u.str.bytes);
        break;
    case PHPSER_ARRAY:
    case PHPSER_OBJECT:
    case PHPSER_CUSTOM:
        for (i = 0; i < value->u.compound.count; i++) {
            phpser_value_free(value->u.compound.pairs[i].key);
            phpser_value_free(value->u.compound.pairs[i].value);
        }
        free(value->u.compound.pairs);
        free(value->u.compound.class_name);
        break;
    default:
        break;
    }
    free(value);
}

static phpser_value *phpser_new_string(const char *bytes, size_t len)
{
    phpser_value *v = calloc(1, sizeof(*v));

    if (v == NULL) {
        return NULL;
    }
    v->u.str.bytes = phpser_dup_bytes(bytes, len);
    if (v->u.str.bytes == NULL) {
        free(v);
        return NULL;
    }
    v->type = PHPSER_STRING;
    v->u.str.len = len;
    return v;
}

/* ---- links ---- */

static int links_compare(const void *a, const void *b)
{
    return phpser_order(((const phpser_link *)a)->ref, ((const phpser_link *)b)->ref);
}

static int links_append(phpser_links *links, phpser_value *ref, phpser_value *target, int handle)
{
    phpser_link *grown;
    size_t cap;

    if (links->count == links->cap) {
        cap = links->cap ? links->cap * 2 : 16;
        grown = realloc(links->items, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        links->items = grown;
        links->cap = cap;
    }
    links->items[links->count].ref = ref;
    links->items[links->count].target = target;
    links->items[links->count].handle = handle;
    links->count++;
    return 0;
}

static phpser_link *links_find(const phpser_links *links, const phpser_value *ref)
{
    phpser_link key = {(phpser_value *)ref, NULL, 0};

    if (links == NULL || links->count == 0) {
        return NULL;
    }
    return bsearch(&key, links->items, links->count, sizeof(key), links_compare);
}

static phpser_value *links_target(const phpser_links *links, const phpser_value *ref)
{
    phpser_link *link = links_find(links, ref);

    return link != NULL ? link->target : NULL;
}

/* only_handles: the links of object references (r:, also those an R: made PHP references) and not of R: */
static void links_retarget(phpser_links *links, const phpser_value *from, phpser_value *to, int only_handles)
{
    size_t i;

    for (i = 0; i < links->count; i++) {
        if (links->items[i].target == from && (!only_handles || links->items[i].handle)) {
            links->items[i].target = to;
        }
    }
}

/* Gives link a new ref node and moves it to its sorted place; no allocation. */
static void links_rekey(phpser_links *links, phpser_link *link, phpser_value *ref)
{
    phpser_link moved = {ref, link->target, link->handle};
    size_t from = (size_t)(link - links->items), to = 0, lo = 0, hi = links->count - 1;

    memmove(link, link + 1, (links->count - from - 1) * sizeof(*link));
    while (lo < hi) {
        to = lo + (hi - lo) / 2;
        if ((uintptr_t)links->items[to].ref < (uintptr_t)ref) {
            lo = to + 1;
        } else {
            hi = to;
        }
    }
    memmove(links->items + lo + 1, links->items + lo, (links->count - 1 - lo) * sizeof(*link));
    links->items[lo] = moved;
}

static void links_delete(phpser_links *links, phpser_link *link)
{
    size_t i = (size_t)(link - links->items);

    memmove(link, link + 1, (links->count - i - 1) * sizeof(*link));
    links->count--;
}

/* ---- decoding ---- */

typedef struct {
    const unsigned char *buf;
    size_t len;
    size_t pos;
    int depth;
    phpser_value **slots; /* slots[i] is the value "r:i+1;" names, numbered as PHP's unserialize() does */
    size_t nslots;
    size_t slots_cap;
    phpser_links *links; /* each reference and the node it names; NULL only where no value is read */
    /* slots of r: nodes that a later R: made PHP references (by_ref 0 -> 1), in the order it happened: the one
     * change a value makes to nodes read before it, undone when that value fails and is read again as something
     * else (slot numbers rather than nodes: the failed value's own nodes are freed by then) */
    size_t *promoted;
    size_t npromoted;
    size_t promoted_cap;
    char *err;
    size_t errlen;
} phpser_reader;

/* What reading a value changes in the reader, saved so that a value that fails can leave no trace. */
typedef struct {
    size_t pos;
    int depth;
    size_t nslots;
    size_t nlinks;
    size_t npromoted;
} phpser_reader_state;

static void reader_save(const phpser_reader *r, phpser_reader_state *state)
{
    state->pos = r->pos;
    state->depth = r->depth;
    state->nslots = r->nslots;
    state->nlinks = r->links != NULL ? r->links->count : 0;
    state->npromoted = r->npromoted;
}

/* The slots and links past the saved counts name nodes of the failed value, which are freed already. */
static void reader_restore(phpser_reader *r, const phpser_reader_state *state)
{
    size_t slot;

    while (r->npromoted > state->npromoted) {
        slot = r->promoted[--r->npromoted];
        if (slot < state->nslots) {
            r->slots[slot]->u.ref.by_ref = 0;
        }
    }
    r->pos = state->pos;
    r->depth = state->depth;
    r->nslots = state->nslots;
    if (r->links != NULL) {
        r->links->count = state->nlinks;
    }
}

static int reader_fail(phpser_reader *r, const char *what)
{
    return phpser_fail(r->err, r->errlen, "%s at byte %zu", what, r->pos);
}

static int reader_end(phpser_reader *r)
{
    return reader_fail(r, "unexpected end of data");
}

static int reader_expect(phpser_reader *r, char c)
{
    if (r->pos >= r->len) {
        return reader_end(r);
    }
    if (r->buf[r->pos] != (unsigned char)c) {
        return phpser_fail(r->err, r->errlen, "expected '%c' at byte %zu", c, r->pos);
    }
    r->pos++;
    return 0;
}

static int reader_is_digit(const phpser_reader *r)
{
    return r->pos < r->len && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9';
}

/* Lengths, counts and reference numbers: PHP writes them as bare digits, never signed. */
static int reader_size(phpser_reader *r, size_t *out)
{
    size_t value = 0;
    unsigned digit;

    if (!reader_is_digit(r)) {
        return r->pos >= r->len ? reader_end(r) : reader_fail(r, "expected a digit");
    }
    while (reader_is_digit(r)) {
        digit = (unsigned)(r->buf[r->pos] - '0');
        if (value > (SIZE_MAX - digit) / 10) {
            return reader_fail(r, "length or count overflows");
        }
        value = value * 10 + digit;
        r->pos++;
    }
    *out = value;
    return 0;
}

static int reader_int(phpser_reader *r, int64_t *out)
{
    uint64_t limit = (uint64_t)INT64_MAX, value = 0;
    unsigned digit;
    int negative = 0;

    if (r->pos < r->len && (r->buf[r->pos] == '-' || r->buf[r->pos] == '+')) {
        negative = r->buf[r->pos] == '-';
        limit += (uint64_t)negative;
        r->pos++;
    }
    if (!reader_is_digit(r)) {
        return r->pos >= r->len ? reader_end(r) : reader_fail(r, "expected a digit");
    }
    while (reader_is_digit(r)) {
        digit = (unsigned)(r->buf[r->pos] - '0');
        if (value > (limit - digit) / 10) {
            return reader_fail(r, "integer out of range");
        }
        value = value * 10 + digit;
        r->pos++;
    }
    if (negative) {
        *out = value == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)value;
    } else {
        *out = (int64_t)value;
    }
    return 0;
}

static size_t phpser_count_digits(const char *s, size_t len, size_t *i)
{
    size_t start = *i;

    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        (*i)++;
    }
    return *i - start;
}

/* PHP's grammar for d: besides INF/-INF/NAN: [+-]? (digits | digits? "." digits | digits "." digits?) ([eE] iv)?
 * checked here because strtod() alone would also take hex, "infinity", spaces and the locale's decimal point. */
static int phpser_is_decimal(const char *s, size_t len)
{
    size_t i = 0, mantissa;

    if (i < len && (s[i] == '+' || s[i] == '-')) {
        i++;
    }
    mantissa = phpser_count_digits(s, len, &i);
    if (i < len && s[i] == '.') {
        i++;
        mantissa += phpser_count_digits(s, len, &i);
    }
    if (mantissa == 0) {
        return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (phpser_count_digits(s, len, &i) == 0) {
            return 0;
        }
    }
    return i == len;
}

static int reader_double(phpser_reader *r, double *out)
{
    const char *text = (const char *)r->buf + r->pos;
    size_t len = 0;
    char copy[PHPSER_DOUBLE_MAX + 1];

    while (r->pos + len < r->len && text[len] != ';' && len <= PHPSER_DOUBLE_MAX) {
        len++;
    }
    if (r->pos + len >= r->len) {
        return reader_end(r);
    }
    if (len > PHPSER_DOUBLE_MAX) {
        return reader_fail(r, "double too long");
    }
    if (len == 3 && memcmp(text, "NAN", 3) == 0) {
        *out = NAN;
    } else if (len == 3 && memcmp(text, "INF", 3) == 0) {
        *out = INFINITY;
    } else if (len == 4 && memcmp(text, "-INF", 4) == 0) {
        *out = -INFINITY;
    } else {
        memcpy(copy, text, len);
        copy[len] = '\0';
        if (!phpser_is_decimal(copy, len) || phpser_strtod(copy, out) != 0) {
            return reader_fail(r, "malformed double");
        }
    }
    r->pos += len;
    return 0;
}

/* After the opening quote of a length-prefixed string: exactly len bytes, then the closing quote. */
static int reader_quoted(phpser_reader *r, size_t len, char **out)
{
    if (len > r->len - r->pos) {
        return reader_fail(r, "string length beyond the end of data");
    }
    *out = phpser_dup_bytes((const char *)r->buf + r->pos, len);
    if (*out == NULL) {
        return reader_fail(r, "out of memory");
    }
    r->pos += len;
    return reader_expect(r, '"');
}

static int reader_hex_digit(phpser_reader *r, unsigned *out)
{
    unsigned char c;

    if (r->pos >= r->len) {
        return reader_end(r);
    }
    c = r->buf[r->pos];
    if (c >= '0' && c <= '9') {
        *out = c - '0';
    } else if (c >= 'a' && c <= 'f') {
        *out = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
        *out = c - 'A' + 10;
    } else {
        return reader_fail(r, "bad escape in S: string");
    }
    r->pos++;
    return 0;
}

/* S:len:"..."; (written by PHP 6 betas, still read by PHP 8): len bytes, each a plain byte or \xx. */
static int reader_escaped(phpser_reader *r, size_t len, char **out)
{
    unsigned hi, lo;
    size_t i;
    char *bytes;

    if (len > r->len - r->pos) {
        return reader_fail(r, "string length beyond the end of data");
    }
    bytes = malloc(len + 1);
    if (bytes == NULL) {
        return reader_fail(r, "out of memory");
    }
    for (i = 0; i < len; i++) {
        if (r->pos >= r->len) {
            free(bytes);
            return reader_end(r);
        }
        if (r->buf[r->pos] != '\\') {
            bytes[i] = (char)r->buf[r->pos++];
            continue;
        }
        r->pos++;
        if (reader_hex_digit(r, &hi) != 0 || reader_hex_digit(r, &lo) != 0) {
            free(bytes);
            return -1;
        }
        bytes[i] = (char)(hi << 4 | lo);
    }
    bytes[len] = '\0';
    if (reader_expect(r, '"') != 0) {
        free(bytes);
        return -1;
    }
    *out = bytes;
    return 0;
}

/* zend_is_valid_class_name(): letters, digits, '_', '\\' and bytes >= 0x80. */
static int phpser_is_class_name(const char *name, size_t len)
{
    size_t i;
    unsigned char c;

    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '\\' ||
              c >= 0x80)) {
            return 0;
        }
    }
    return 1;
}

static int phpser_is_enum_name(const char *name, size_t len)
{
    const char *colon = memchr(name, ':', len);

    if (colon == NULL) {
        return 0;
    }
    return phpser_is_class_name(name, (size_t)(colon - name)) &&
           phpser_is_class_name(colon + 1, len - (size_t)(colon - name) - 1) &&
           memchr(colon + 1, '\\', len - (size_t)(colon - name) - 1) == NULL;
}

/* s:, S: and E: after the type letter and ':' */
static int reader_string(phpser_reader *r, char type, phpser_value *v)
{
    size_t len;
    int rc;

    if (reader_size(r, &len) != 0 || reader_expect(r, ':') != 0 || reader_expect(r, '"') != 0) {
        return -1;
    }
    /* typed first, so that the bytes are freed with v whichever check fails */
    v->type = type == 'E' ? PHPSER_ENUM : PHPSER_STRING;
    v->u.str.len = len;
    rc = type == 'S' ? reader_escaped(r, len, &v->u.str.bytes) : reader_quoted(r, len, &v->u.str.bytes);
    if (rc != 0) {
        return -1;
    }
    if (type == 'E' && !phpser_is_enum_name(v->u.str.bytes, len)) {
        return reader_fail(r, "malformed enum name");
    }
    return reader_expect(r, ';');
}

/* The scalars that can also be array keys (no value number): b: i: d: s: S: E: after the type letter and ':'. */
static int reader_scalar(phpser_reader *r, char type, phpser_value *v)
{
    switch (type) {
    case 'b':
        if (r->pos >= r->len) {
            return reader_end(r);
        }
        if (r->buf[r->pos] != '0' && r->buf[r->pos] != '1') {
            return reader_fail(r, "boolean must be 0 or 1");
        }
        v->type = PHPSER_BOOL;
        v->u.boolean = r->buf[r->pos++] == '1';
        break;
    case 'i':
        v->type = PHPSER_INT;
        if (reader_int(r, &v->u.integer) != 0) {
            return -1;
        }
        break;
    case 'd':
        v->type = PHPSER_DOUBLE;
        if (reader_double(r, &v->u.dbl) != 0) {
            return -1;
        }
        break;
    default:
        return reader_string(r, type, v);
    }
    return reader_expect(r, ';');
}

static int reader_value(phpser_reader *r, phpser_value **out);

static int reader_key(phpser_reader *r, phpser_value **out)
{
    char type;
    phpser_value *key;

    if (r->pos >= r->len) {
        return reader_end(r);
    }
    type = (char)r->buf[r->pos];
    if (type != 'i' && type != 's' && type != 'S') {
        return reader_fail(r, "array key must be an integer or a string");
    }
    r->pos++;
    if (reader_expect(r, ':') != 0) {
        return -1;
    }
    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        return reader_fail(r, "out of memory");
    }
    if (reader_scalar(r, type, key) != 0) {
        phpser_value_free(key);
        return -1;
    }
    *out = key;
    return 0;
}

/* count:{key;value...} of a:, and of O: after the class name */
static int reader_pairs(phpser_reader *r, phpser_value *v)
{
    size_t count, i;
    phpser_pair *pairs;

    if (reader_size(r, &count) != 0 || reader_expect(r, ':') != 0 || reader_expect(r, '{') != 0) {
        return -1;
    }
    if (count > (r->len - r->pos) / PHPSER_MIN_PAIR) {
        return reader_fail(r, "element count larger than the data");
    }
    if (count > 0) {
        pairs = calloc(count, sizeof(*pairs));
        if (pairs == NULL) {
            return reader_fail(r, "out of memory");
        }
        v->u.compound.pairs = pairs;
        for (i = 0; i < count; i++) {
            v->u.compound.count = i + 1;
            if (reader_key(r, &pairs[i].key) != 0 || reader_value(r, &pairs[i].value) != 0) {
                return -1;
            }
        }
    }
    return reader_expect(r, '}');
}

/* "len:"Class":" of O: and C: */
static int reader_class(phpser_reader *r, phpser_value *v)
{
    size_t len;

    if (reader_size(r, &len) != 0 || reader_expect(r, ':') != 0 || reader_expect(r, '"') != 0 ||
        reader_quoted(r, len, &v->u.compound.class_name) != 0) {
        return -1;
    }
    v->u.compound.class_len = len;
    if (!phpser_is_class_name(v->u.compound.class_name, len)) {
        return reader_fail(r, "malformed class name");
    }
    return reader_expect(r, ':');
}

static int reader_compound(phpser_reader *r, char type, phpser_value *v)
{
    int rc;

    if (++r->depth > PHPSER_MAX_DEPTH) {
        return reader_fail(r, "nesting deeper than 64 levels");
    }
    v->type = type == 'a' ? PHPSER_ARRAY : PHPSER_OBJECT;
    rc = type == 'O' && reader_class(r, v) != 0 ? -1 : reader_pairs(r, v);
    r->depth--;
    return rc;
}

/* C:len:"Class":len:{payload}: the payload, opaque, is kept as the one value of the compound (see phpser.h). */
static int reader_custom(phpser_reader *r, phpser_value *v)
{
    size_t len;

    v->type = PHPSER_CUSTOM;
    if (reader_class(r, v) != 0 || reader_size(r, &len) != 0 || reader_expect(r, ':') != 0 ||
        reader_expect(r, '{') != 0) {
        return -1;
    }
    if (len > r->len - r->pos) {
        return reader_fail(r, "payload length beyond the end of data");
    }
    v->u.compound.pairs = calloc(1, sizeof(phpser_pair));
    if (v->u.compound.pairs == NULL) {
        return reader_fail(r, "out of memory");
    }
    v->u.compound.count = 1;
    v->u.compound.pairs[0].value = phpser_new_string((const char *)r->buf + r->pos, len);
    if (v->u.compound.pairs[0].value == NULL) {
        return reader_fail(r, "out of memory");
    }
    r->pos += len;
    return reader_expect(r, '}');
}

static int reader_push_slot(phpser_reader *r, phpser_value *v)
{
    phpser_value **grown;
    size_t cap;

    if (r->nslots == r->slots_cap) {
        cap = r->slots_cap ? r->slots_cap * 2 : 32;
        grown = realloc(r->slots, cap * sizeof(*grown));
        if (grown == NULL) {
            return reader_fail(r, "out of memory");
        }
        r->slots = grown;
        r->slots_cap = cap;
    }
    r->slots[r->nslots++] = v;
    return 0;
}

/* R: naming an r: value makes that value a PHP reference too: PHP writes both as R: afterwards. */
static int reader_promote(phpser_reader *r, size_t slot)
{
    size_t *grown;
    size_t cap;

    if (r->npromoted == r->promoted_cap) {
        cap = r->promoted_cap ? r->promoted_cap * 2 : 16;
        grown = realloc(r->promoted, cap * sizeof(*grown));
        if (grown == NULL) {
            return reader_fail(r, "out of memory");
        }
        r->promoted = grown;
        r->promoted_cap = cap;
    }
    r->promoted[r->npromoted++] = slot;
    r->slots[slot]->u.ref.by_ref = 1;
    return 0;
}

/* What r: may name: PHP 8 refuses an r: to anything but an object (an enum or a C: value is one too). A slot
 * holding a reference holds an r: (R: takes no number), which named an object itself. */
static int phpser_is_object_slot(const phpser_value *v)
{
    return v->type == PHPSER_OBJECT || v->type == PHPSER_CUSTOM || v->type == PHPSER_ENUM ||
           v->type == PHPSER_REFERENCE;
}

/* r:N; or R:N;. PHP numbers every value but R: itself, from 1, and r: may not name itself (it has no number yet). */
static int reader_reference(phpser_reader *r, int by_ref, phpser_value *v)
{
    phpser_value *target;
    size_t index;

    v->type = PHPSER_REFERENCE;
    v->u.ref.by_ref = by_ref;
    if (reader_size(r, &index) != 0) {
        return -1;
    }
    if (index == 0 || index > r->nslots) {
        return reader_fail(r, "reference to a value not seen yet");
    }
    v->u.ref.index = (int64_t)index;
    target = r->slots[index - 1];
    if (!by_ref && !phpser_is_object_slot(target)) {
        return reader_fail(r, "r: names a value that is not an object");
    }
    if (reader_expect(r, ';') != 0) {
        return -1;
    }
    if (r->links != NULL && links_append(r->links, v, target, !by_ref) != 0) {
        return reader_fail(r, "out of memory");
    }
    if (by_ref && target->type == PHPSER_REFERENCE && !target->u.ref.by_ref && reader_promote(r, index - 1) != 0) {
        return -1;
    }
    return by_ref ? 0 : reader_push_slot(r, v);
}

static int reader_typed(phpser_reader *r, char type, phpser_value *v)
{
    if (type == 'N') {
        return reader_expect(r, ';');
    }
    if (reader_expect(r, ':') != 0) {
        return -1;
    }
    switch (type) {
    case 'a':
    case 'O':
        return reader_compound(r, type, v);
    case 'C':
        return reader_custom(r, v);
    default:
        return reader_scalar(r, type, v);
    }
}

static int reader_value(phpser_reader *r, phpser_value **out)
{
    phpser_value *v;
    char type;
    int rc;

    *out = NULL;
    if (r->pos >= r->len) {
        return reader_end(r);
    }
    type = (char)r->buf[r->pos];
    if (strchr("NbidsSEaOCrR", type) == NULL || type == '\0') {
        return phpser_fail(r->err, r->errlen, "unknown type 0x%02x at byte %zu", (unsigned char)type, r->pos);
    }
    r->pos++;
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return reader_fail(r, "out of memory");
    }
    if (type == 'r' || type == 'R') {
        rc = reader_expect(r, ':') != 0 ? -1 : reader_reference(r, type == 'R', v);
    } else {
        rc = reader_push_slot(r, v) != 0 ? -1 : reader_typed(r, type, v);
    }
    if (rc != 0) {
        phpser_value_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

static int value_renumber(phpser_value *value, const phpser_links *links);
static int session_renumber(phpser_session *session);

int phpser_value_decode(const char *buf, size_t len, size_t *consumed, phpser_value **out, char *err, size_t errlen)
{
    phpser_links links = {NULL, 0, 0};
    phpser_reader r = {(const unsigned char *)buf, len, 0, 0, NULL, 0, 0, &links, NULL, 0, 0, err, errlen};
    int rc;

    if (out == NULL || (buf == NULL && len > 0)) {
        return phpser_fail(err, errlen, "invalid arguments");
    }
    rc = reader_value(&r, out);
    /* An r: that an R: made a PHP reference is written as R: from then on, and R: takes no number: the indices the
     * text carried after it would name the wrong values. */
    if (rc == 0 && r.npromoted > 0) {
        if (links.count > 1) {
            qsort(links.items, links.count, sizeof(phpser_link), links_compare);
        }
        if (value_renumber(*out, &links) != 0) {
            phpser_value_free(*out);
            *out = NULL;
            rc = phpser_fail(err, errlen, "out of memory");
        }
    }
    free(links.items);
    free(r.slots);
    free(r.promoted);
    if (rc == 0 && consumed != NULL) {
        *consumed = r.pos;
    }
    return rc;
}

/* ---- sessions ---- */

phpser_session *phpser_session_new(void)
{
    return calloc(1, sizeof(phpser_session));
}

void phpser_session_free(phpser_session *session)
{
    size_t i;

    if (session == NULL) {
        return;
    }
    for (i = 0; i < session->count; i++) {
        free(session->items[i].view.name);
        phpser_value_free(session->items[i].value);
    }
    free(session->items);
    free(session->links.items);
    free(session);
}

size_t phpser_session_count(const phpser_session *session)
{
    return session != NULL ? session->count : 0;
}

const phpser_entry *phpser_session_entry(const phpser_session *session, size_t index)
{
    if (session == NULL || index >= session->count) {
        return NULL;
    }
    return &session->items[index].view;
}

static phpser_item *session_find_item(const phpser_session *session, const char *name, size_t name_len)
{
    size_t i;

    if (session == NULL || (name == NULL && name_len > 0)) {
        return NULL;
    }
    for (i = 0; i < session->count; i++) {
        if (session->items[i].view.name_len == name_len &&
            (name_len == 0 || memcmp(session->items[i].view.name, name, name_len) == 0)) {
            return &session->items[i];
        }
    }
    return NULL;
}

const phpser_entry *phpser_session_find(const phpser_session *session, const char *name, size_t name_len)
{
    phpser_item *item = session_find_item(session, name, name_len);

    return item != NULL ? &item->view : NULL;
}

/* Follows top-level references so that callers reading $_SESSION['x'] see what PHP would. */
static phpser_value *session_resolve(const phpser_session *session, phpser_value *v)
{
    phpser_value *target;
    int hops;

    for (hops = 0; v != NULL && v->type == PHPSER_REFERENCE && hops < PHPSER_MAX_DEPTH; hops++) {
        target = links_target(&session->links, v);
        if (target == NULL || target == &phpser_session_array) {
            break;
        }
        v = target;
    }
    return v;
}

static void session_refresh_views(phpser_session *session)
{
    size_t i;

    for (i = 0; i < session->count; i++) {
        session->items[i].view.value = session_resolve(session, session->items[i].value);
    }
}

static int session_append(phpser_session *session, const char *name, size_t name_len, phpser_value *value)
{
    phpser_item *grown;
    size_t cap;
    char *copy;

    if (session->count == session->cap) {
        cap = session->cap ? session->cap * 2 : 8;
        grown = realloc(session->items, cap * sizeof(*grown));
        if (grown == NULL) {
            return -1;
        }
        session->items = grown;
        session->cap = cap;
    }
    copy = phpser_dup_bytes(name, name_len);
    if (copy == NULL) {
        return -1;
    }
    session->items[session->count].view.name = copy;
    session->items[session->count].view.name_len = name_len;
    session->items[session->count].view.value = value;
    session->items[session->count].value = value;
    session->count++;
    return 0;
}

static int reader_add_entry(phpser_reader *r, phpser_session *session, const char *name, size_t name_len,
                            phpser_value *value)
{
    if (session_append(session, name, name_len, value) != 0) {
        phpser_value_free(value);
        return reader_fail(r, "out of memory");
    }
    return 0;
}

/* name|value... where "!name|" (PHP 5) marks an undefined variable. PHP 7 and later have no undefined variables
 * and read "!name|value" as a name starting with '!', so a value after such a name makes it part of the name.
 * PHP 5 never reads what follows "!name|" as a value: when it is none, reading it must have changed nothing. */
static int session_read_php(phpser_reader *r, phpser_session *session)
{
    const unsigned char *bar;
    const char *name;
    size_t name_len;
    phpser_reader_state saved;
    phpser_value *value;

    while (r->pos < r->len) {
        bar = memchr(r->buf + r->pos, '|', r->len - r->pos);
        if (bar == NULL) {
            return reader_fail(r, "entry name without '|'");
        }
        name = (const char *)r->buf + r->pos;
        name_len = (size_t)(bar - (r->buf + r->pos));
        r->pos += name_len + 1;
        if (name_len > 0 && name[0] == '!') {
            reader_save(r, &saved);
            if (reader_value(r, &value) != 0) {
                reader_restore(r, &saved);
                if (reader_add_entry(r, session, name + 1, name_len - 1, NULL) != 0) {
                    return -1;
                }
                continue;
            }
        } else if (reader_value(r, &value) != 0) {
            return -1;
        }
        if (reader_add_entry(r, session, name, name_len, value) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One length byte (bit 0x80: undefined, PHP 5 only), the name, the value. */
static int session_read_php_binary(phpser_reader *r, phpser_session *session)
{
    const char *name;
    size_t name_len;
    unsigned char head;
    phpser_value *value = NULL;

    while (r->pos < r->len) {
        head = r->buf[r->pos++];
        name_len = head & PHPSER_BIN_NAME_MAX;
        if (name_len > r->len - r->pos) {
            return reader_fail(r, "entry name beyond the end of data");
        }
        name = (const char *)r->buf + r->pos;
        r->pos += name_len;
        if (!(head & PHPSER_BIN_UNDEF) && reader_value(r, &value) != 0) {
            return -1;
        }
        if (reader_add_entry(r, session, name, name_len, (head & PHPSER_BIN_UNDEF) ? NULL : value) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One serialize()d array; its integer keys become decimal names, as $_SESSION[5] reads back as "5". */
static int session_read_php_serialize(phpser_reader *r, phpser_session *session)
{
    phpser_value *top;
    phpser_pair *pair;
    char number[24];
    size_t i;
    int rc = 0;

    if (r->len == 0) {
        return 0;
    }
    if (reader_value(r, &top) != 0) {
        return -1;
    }
    if (top->type != PHPSER_ARRAY) {
        phpser_value_free(top);
        return phpser_fail(r->err, r->errlen, "php_serialize session is not an array");
    }
    if (r->pos != r->len) {
        phpser_value_free(top);
        return reader_fail(r, "trailing data after the session array");
    }
    links_retarget(r->links, top, &phpser_session_array, 0);
    for (i = 0; i < top->u.compound.count && rc == 0; i++) {
        pair = &top->u.compound.pairs[i];
        if (pair->key->type == PHPSER_INT) {
            snprintf(number, sizeof(number), "%" PRId64, pair->key->u.integer);
            rc = reader_add_entry(r, session, number, strlen(number), pair->value);
        } else {
            rc = reader_add_entry(r, session, pair->key->u.str.bytes, pair->key->u.str.len, pair->value);
        }
        pair->value = NULL;
    }
    phpser_value_free(top);
    return rc;
}

static int item_compare_name(const void *a, const void *b)
{
    const phpser_entry *x = &(*(const phpser_item *const *)a)->view;
    const phpser_entry *y = &(*(const phpser_item *const *)b)->view;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = n > 0 ? memcmp(x->name, y->name, n) : 0;

    if (c != 0) {
        return c;
    }
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* PHP never writes a name twice; when it reads one twice the last value wins, in the first one's place. Rather
 * than guess which copy a reader here should see, such a session is refused. */
static int session_check_unique(const phpser_session *session, char *err, size_t errlen)
{
    const phpser_item **sorted;
    size_t i;
    int rc = 0;

    if (session->count < 2) {
        return 0;
    }
    sorted = malloc(session->count * sizeof(*sorted));
    if (sorted == NULL) {
        return phpser_fail(err, errlen, "out of memory");
    }
    for (i = 0; i < session->count; i++) {
        sorted[i] = &session->items[i];
    }
    qsort(sorted, session->count, sizeof(*sorted), item_compare_name);
    for (i = 1; i < session->count && rc == 0; i++) {
        if (item_compare_name(&sorted[i - 1], &sorted[i]) == 0) {
            rc = phpser_fail(err, errlen, "entry name appears twice");
        }
    }
    free(sorted);
    return rc;
}

int phpser_session_decode(phpser_format format, const char *buf, size_t len, phpser_session **out, char *err,
                          size_t errlen)
{
    phpser_session *session;
    phpser_reader r = {(const unsigned char *)buf, len, 0, 0, NULL, 0, 0, NULL, NULL, 0, 0, err, errlen};
    int rc;

    if (out == NULL || (buf == NULL && len > 0)) {
        return phpser_fail(err, errlen, "invalid arguments");
    }
    *out = NULL;
    session = phpser_session_new();
    if (session == NULL) {
        return phpser_fail(err, errlen, "out of memory");
    }
    r.links = &session->links;
    session->origin = format;
    switch (format) {
    case PHPSER_FORMAT_PHP:
        rc = session_read_php(&r, session);
        break;
    case PHPSER_FORMAT_PHP_BINARY:
        rc = session_read_php_binary(&r, session);
        break;
    case PHPSER_FORMAT_PHP_SERIALIZE:
        rc = session_read_php_serialize(&r, session);
        break;
    default:
        rc = phpser_fail(err, errlen, "unknown session format");
        break;
    }
    free(r.slots);
    free(r.promoted);
    if (rc == 0) {
        rc = session_check_unique(session, err, errlen);
    }
    if (rc != 0) {
        phpser_session_free(session);
        return -1;
    }
    if (session->links.count > 1) {
        qsort(session->links.items, session->links.count, sizeof(phpser_link), links_compare);
    }
    session_refresh_views(session);
    /* as in phpser_value_decode(): the indices a value shows (phpser_value_to_text()) must match how it is written */
    if (r.npromoted > 0 && session_renumber(session) != 0) {
        phpser_session_free(session);
        return phpser_fail(err, errlen, "out of memory");
    }
    *out = session;
    return 0;
}

/* ---- removing values that references still need ----
 *
 * When an entry is unset in PHP, a reference elsewhere to its value (or into it) keeps the value alive: the first
 * such reference now holds the value and the later ones refer to it. Here the nodes about to be freed are the
 * "doomed" set; walking the remaining entries in the order they are written, the first reference to a doomed node
 * takes that node's content (the node's children move with it, so references into them stay valid) and the other
 * references to it follow.
 */

typedef struct {
    phpser_value **roots; /* subtrees about to be freed */
    size_t nroots;
    phpser_value **nodes; /* every node in them, sorted by address; NULL if that allocation failed */
    unsigned char *moved; /* nodes[i] was handed over to a reference and is no longer doomed */
    size_t count;
} phpser_doomed;

static size_t phpser_count_nodes(const phpser_value *v)
{
    size_t n = 1, i;

    if (v == NULL) {
        return 0;
    }
    if (phpser_is_compound(v) || v->type == PHPSER_CUSTOM) {
        for (i = 0; i < v->u.compound.count; i++) {
            n += phpser_count_nodes(v->u.compound.pairs[i].value);
        }
    }
    return n;
}

/* Keys are left out: a reference never names a key. */
static void phpser_collect_nodes(phpser_value *v, phpser_value **nodes, size_t *n)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    nodes[(*n)++] = v;
    if (phpser_is_compound(v) || v->type == PHPSER_CUSTOM) {
        for (i = 0; i < v->u.compound.count; i++) {
            phpser_collect_nodes(v->u.compound.pairs[i].value, nodes, n);
        }
    }
}

static int phpser_subtree_contains(const phpser_value *v, const phpser_value *node)
{
    size_t i;

    if (v == NULL) {
        return 0;
    }
    if (v == node) {
        return 1;
    }
    if (phpser_is_compound(v)) {
        for (i = 0; i < v->u.compound.count; i++) {
            if (phpser_subtree_contains(v->u.compound.pairs[i].value, node)) {
                return 1;
            }
        }
    }
    return 0;
}

static void doomed_init(phpser_doomed *d, phpser_value **roots, size_t nroots)
{
    size_t i, total = 0;

    memset(d, 0, sizeof(*d));
    d->roots = roots;
    d->nroots = nroots;
    for (i = 0; i < nroots; i++) {
        total += phpser_count_nodes(roots[i]);
    }
    if (total == 0) {
        return;
    }
    d->nodes = malloc(total * sizeof(*d->nodes));
    d->moved = calloc(total, 1);
    if (d->nodes == NULL || d->moved == NULL) {
        /* Without the index the subtrees are searched instead: slower, same result. */
        free(d->nodes);
        free(d->moved);
        d->nodes = NULL;
        d->moved = NULL;
        return;
    }
    for (i = 0; i < nroots; i++) {
        phpser_collect_nodes(roots[i], d->nodes, &d->count);
    }
    qsort(d->nodes, d->count, sizeof(*d->nodes), phpser_compare_nodes);
}

static void doomed_release(phpser_doomed *d)
{
    free(d->nodes);
    free(d->moved);
}

static phpser_value **doomed_slot(const phpser_doomed *d, const phpser_value *node)
{
    phpser_value *key = (phpser_value *)node;

    return bsearch(&key, d->nodes, d->count, sizeof(*d->nodes), phpser_compare_nodes);
}

static int doomed_has(const phpser_doomed *d, const phpser_value *node)
{
    phpser_value **slot;
    size_t i;

    if (node == NULL) {
        return 0;
    }
    if (d->nodes != NULL) {
        slot = doomed_slot(d, node);
        return slot != NULL && !d->moved[slot - d->nodes];
    }
    /* Moved content is no longer reachable from the roots, so the search needs no marks. */
    for (i = 0; i < d->nroots; i++) {
        if (phpser_subtree_contains(d->roots[i], node)) {
            return 1;
        }
    }
    return 0;
}

static void doomed_mark_moved(phpser_doomed *d, const phpser_value *v)
{
    phpser_value **slot;
    size_t i;

    if (v == NULL || d->nodes == NULL) {
        return;
    }
    slot = doomed_slot(d, v);
    if (slot != NULL) {
        d->moved[slot - d->nodes] = 1;
    }
    if (phpser_is_compound(v) || v->type == PHPSER_CUSTOM) {
        for (i = 0; i < v->u.compound.count; i++) {
            doomed_mark_moved(d, v->u.compound.pairs[i].value);
        }
    }
}

/* v, a reference to doomed target, becomes the value: it takes target's content, the other references to target
 * now refer to v, and target itself becomes a reference to v, the same link turned around, in case an enclosing
 * value is handed over later (its element is then still the same PHP value as v). */
static void doomed_hand_over(phpser_session *session, phpser_doomed *d, phpser_link *link)
{
    phpser_value *v = link->ref, *target = link->target;
    phpser_value *next;
    int by_ref = v->u.ref.by_ref;

    if (target->type == PHPSER_REFERENCE) {
        /* A reference to an r: node: refer to what that node refers to instead, holding the object handle
         * itself now, as an R: that was in the r:'s reference set does in PHP once the r: is gone. */
        next = links_target(&session->links, target);
        if (next != NULL) {
            link->target = next;
            link->handle = 1;
            return;
        }
    }
    v->type = target->type;
    v->u = target->u;
    links_retarget(&session->links, target, v, 0); /* link itself included: it now reads v -> v */
    memset(&target->u, 0, sizeof(target->u));
    target->type = PHPSER_REFERENCE;
    target->u.ref.by_ref = by_ref;
    links_rekey(&session->links, link, target);
    doomed_mark_moved(d, v);
}

static void doomed_walk(phpser_session *session, phpser_doomed *d, phpser_value *v)
{
    phpser_link *link;
    size_t i;
    int hops;

    if (v == NULL || doomed_has(d, v)) {
        return;
    }
    for (hops = 0; v->type == PHPSER_REFERENCE && hops < PHPSER_MAX_DEPTH; hops++) {
        link = links_find(&session->links, v);
        if (link == NULL || !doomed_has(d, link->target)) {
            return;
        }
        doomed_hand_over(session, d, link);
    }
    if (phpser_is_compound(v)) {
        for (i = 0; i < v->u.compound.count; i++) {
            doomed_walk(session, d, v->u.compound.pairs[i].value);
        }
    }
}

/* Prepares roots for freeing: afterwards no link leads into them or out of them. */
static void session_detach(phpser_session *session, phpser_value **roots, size_t nroots)
{
    phpser_doomed d;
    size_t i, kept = 0;

    doomed_init(&d, roots, nroots);
    for (i = 0; i < session->count; i++) {
        doomed_walk(session, &d, session->items[i].value);
    }
    for (i = 0; i < session->links.count; i++) {
        if (!doomed_has(&d, session->links.items[i].ref)) {
            session->links.items[kept++] = session->links.items[i];
        }
    }
    session->links.count = kept;
    doomed_release(&d);
}

size_t phpser_session_remove(phpser_session *session, const char *name, size_t name_len)
{
    phpser_item *item;
    phpser_value *roots[1];
    size_t removed = 0, index;

    while ((item = session_find_item(session, name, name_len)) != NULL) {
        roots[0] = item->value;
        session_detach(session, roots, 1);
        phpser_value_free(item->value);
        free(item->view.name);
        index = (size_t)(item - session->items);
        memmove(item, item + 1, (session->count - index - 1) * sizeof(*item));
        session->count--;
        removed++;
    }
    if (removed > 0) {
        session_refresh_views(session);
        (void)session_renumber(session);
    }
    return removed;
}

/* Assigning to $_SESSION[name] in PHP writes through a PHP reference ("R:"), so the value every member of the
 * reference set sees changes; an object reference ("r:") only loses this holder. An r: that an R: named is a PHP
 * reference too, whose value is the object handle: that handle is what the assignment replaces, not the object. */
static phpser_value *session_assign_target(phpser_session *session, phpser_value *v)
{
    phpser_link *link;
    int hops;

    for (hops = 0; v->type == PHPSER_REFERENCE && v->u.ref.by_ref && hops < PHPSER_MAX_DEPTH; hops++) {
        link = links_find(&session->links, v);
        /* an r: that an R: made a PHP reference holds the handle the reference set shares: it is what changes */
        if (link == NULL || link->handle || link->target == &phpser_session_array) {
            break;
        }
        v = link->target;
    }
    return v;
}

int phpser_session_set_string(phpser_session *session, const char *name, size_t name_len, const char *value,
                              size_t value_len)
{
    phpser_item *item;
    phpser_value *fresh, *target, *old, *next;
    phpser_link *link;

    if (session == NULL || (name == NULL && name_len > 0) || (value == NULL && value_len > 0)) {
        return -1;
    }
    fresh = phpser_new_string(value, value_len);
    if (fresh == NULL) {
        return -1;
    }
    item = session_find_item(session, name, name_len);
    if (item == NULL) {
        if (session_append(session, name, name_len, fresh) != 0) {
            phpser_value_free(fresh);
            return -1;
        }
        return 0;
    }
    if (item->value == NULL) {
        item->value = fresh;
        session_refresh_views(session);
        return 0;
    }
    target = session_assign_target(session, item->value);
    old = calloc(1, sizeof(*old));
    if (old == NULL) {
        phpser_value_free(fresh);
        return -1;
    }
    if (target->type == PHPSER_REFERENCE) {
        link = links_find(&session->links, target);
        if (link != NULL) {
            /* other holders of the object it named keep naming the object */
            next = link->target;
            links_retarget(&session->links, target, next, 1);
            links_delete(&session->links, links_find(&session->links, target));
        }
    }
    /* The old content moves to a node of its own; object references follow it, PHP references stay. */
    old->type = target->type;
    old->u = target->u;
    target->type = PHPSER_STRING;
    target->u = fresh->u;
    free(fresh);
    links_retarget(&session->links, target, old, 1);
    session_detach(session, &old, 1);
    phpser_value_free(old);
    session_refresh_views(session);
    (void)session_renumber(session);
    return 0;
}

/* ---- encoding ---- */

/* A node some reference names, and the number it got when written (0: not yet). */
typedef struct {
    const phpser_value *node;
    int64_t slot;
    int by_ref; /* it was first written in place of an R: reference, so a later sight of it is an R: too */
} phpser_mark;

typedef struct {
    char **buf;
    size_t *len;
    size_t *cap;
    const phpser_links *links; /* NULL: references are written with the index they carry */
    phpser_mark *marks;        /* sorted by node address */
    size_t nmarks;
    int64_t slot; /* values written so far, as PHP counts them */
    char *err;
    size_t errlen;
    int renumber; /* count only, writing nothing, and store in each reference node the index it gets */
} phpser_writer;

static int writer_reserve(phpser_writer *w, size_t more)
{
    size_t need, cap;
    char *grown;

    if (more > SIZE_MAX - *w->len - 1) {
        return phpser_fail(w->err, w->errlen, "output too large");
    }
    need = *w->len + more + 1;
    if (*w->buf != NULL && need <= *w->cap) {
        return 0;
    }
    cap = *w->buf != NULL && *w->cap > 0 ? *w->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    grown = realloc(*w->buf, cap);
    if (grown == NULL) {
        return phpser_fail(w->err, w->errlen, "out of memory");
    }
    grown[*w->len] = '\0';
    *w->buf = grown;
    *w->cap = cap;
    return 0;
}

static int writer_bytes(phpser_writer *w, const char *bytes, size_t n)
{
    if (w->renumber) {
        return 0;
    }
    if (writer_reserve(w, n) != 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(*w->buf + *w->len, bytes, n);
    }
    *w->len += n;
    (*w->buf)[*w->len] = '\0';
    return 0;
}

static int writer_printf(phpser_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int writer_printf(phpser_writer *w, const char *fmt, ...)
{
    char text[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        return phpser_fail(w->err, w->errlen, "internal formatting error");
    }
    return writer_bytes(w, text, (size_t)n);
}

/* s:len:"bytes"; and the like: prefix, length, quoted bytes, suffix */
static int writer_quoted(phpser_writer *w, const char *prefix, const char *bytes, size_t len, const char *suffix)
{
    if (writer_printf(w, "%s:%zu:\"", prefix, len) != 0 || writer_bytes(w, bytes, len) != 0) {
        return -1;
    }
    return writer_bytes(w, suffix, strlen(suffix));
}

/* Digits of d (finite, >= 0) and the decimal point position as zend_dtoa() gives them (value = 0.DIGITS x
 * 10^decpt): mode 0 (the shortest digits that read back as d) for serialize(), 14 digits for (string). The text
 * comes from snprintf("%e"), taken apart without assuming the locale's decimal point. */
static void phpser_double_digits(double d, int shortest, char digits[24], int *decpt)
{
    char text[48], canonical[48];
    double back;
    int precision, n, i;
    const char *e;

    for (precision = shortest ? 1 : 14;; precision++) {
        snprintf(text, sizeof(text), "%.*e", precision - 1, d);
        e = strchr(text, 'e');
        for (n = 0, i = 0; text + i < e && n < 23; i++) {
            if (text[i] >= '0' && text[i] <= '9') {
                digits[n++] = text[i];
            }
        }
        digits[n] = '\0';
        *decpt = atoi(e + 1) + 1;
        if (!shortest || precision >= 17) {
            break;
        }
        snprintf(canonical, sizeof(canonical), "%c.%se%d", digits[0], digits + 1, *decpt - 1);
        if (phpser_strtod(canonical, &back) == 0 && back == d) {
            break;
        }
    }
    while (n > 1 && digits[n - 1] == '0') {
        digits[--n] = '\0';
    }
}

/* php_gcvt()'s layout: exponent form when the point falls before 4 leading zeros or beyond ndigit digits. */
static void phpser_double_text(double d, int shortest, char out[48])
{
    char digits[24];
    int decpt, ndigit = shortest ? 17 : 14, exponent, i;
    size_t n = 0, len;

    if (isnan(d)) {
        strcpy(out, "NAN");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d < 0 ? "-INF" : "INF");
        return;
    }
    if (signbit(d)) {
        out[n++] = '-';
        d = -d;
    }
    phpser_double_digits(d, shortest, digits, &decpt);
    len = strlen(digits);
    if (decpt < 0 ? decpt < -3 : decpt > ndigit) {
        exponent = decpt - 1;
        out[n++] = digits[0];
        out[n++] = '.';
        if (len == 1) {
            out[n++] = '0';
        } else {
            memcpy(out + n, digits + 1, len - 1);
            n += len - 1;
        }
        snprintf(out + n, 48 - n, "E%c%d", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
        return;
    }
    if (decpt <= 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (i = decpt; i < 0; i++) {
            out[n++] = '0';
        }
        memcpy(out + n, digits, len);
        n += len;
    } else {
        for (i = 0; i < decpt; i++) {
            out[n++] = (size_t)i < len ? digits[i] : '0';
        }
        if ((size_t)decpt < len) {
            out[n++] = '.';
            memcpy(out + n, digits + decpt, len - (size_t)decpt);
            n += len - (size_t)decpt;
        }
    }
    out[n] = '\0';
}

static int writer_compare_marks(const void *a, const void *b)
{
    return phpser_order(((const phpser_mark *)a)->node, ((const phpser_mark *)b)->node);
}

static phpser_mark *writer_mark(const phpser_writer *w, const phpser_value *node)
{
    phpser_mark key = {node, 0, 0};

    if (w->nmarks == 0) {
        return NULL;
    }
    return bsearch(&key, w->marks, w->nmarks, sizeof(key), writer_compare_marks);
}

static int writer_value(phpser_writer *w, const phpser_value *v);

static int writer_key(phpser_writer *w, const phpser_value *key)
{
    if (key != NULL && key->type == PHPSER_INT) {
        return writer_printf(w, "i:%" PRId64 ";", key->u.integer);
    }
    if (key != NULL && key->type == PHPSER_STRING) {
        return writer_quoted(w, "s", key->u.str.bytes, key->u.str.len, "\";");
    }
    return phpser_fail(w->err, w->errlen, "array key must be an integer or a string");
}

static int writer_pairs(phpser_writer *w, const phpser_value *v)
{
    size_t i;

    if (v->u.compound.count > 0 && v->u.compound.pairs == NULL) {
        return phpser_fail(w->err, w->errlen, "compound value without elements");
    }
    if (writer_printf(w, "%zu:{", v->u.compound.count) != 0) {
        return -1;
    }
    for (i = 0; i < v->u.compound.count; i++) {
        if (writer_key(w, v->u.compound.pairs[i].key) != 0 || writer_value(w, v->u.compound.pairs[i].value) != 0) {
            return -1;
        }
    }
    return writer_bytes(w, "}", 1);
}

static int writer_class(phpser_writer *w, const char *prefix, const phpser_value *v)
{
    if (v->u.compound.class_name == NULL) {
        return phpser_fail(w->err, w->errlen, "object without a class name");
    }
    return writer_quoted(w, prefix, v->u.compound.class_name, v->u.compound.class_len, "\":");
}

static int writer_custom(phpser_writer *w, const phpser_value *v)
{
    const phpser_value *payload = v->u.compound.count == 1 ? v->u.compound.pairs[0].value : NULL;

    if (payload == NULL || payload->type != PHPSER_STRING) {
        return phpser_fail(w->err, w->errlen, "C: value without its payload string");
    }
    if (writer_class(w, "C", v) != 0 || writer_printf(w, "%zu:{", payload->u.str.len) != 0 ||
        writer_bytes(w, payload->u.str.bytes, payload->u.str.len) != 0) {
        return -1;
    }
    return writer_bytes(w, "}", 1);
}

static int writer_content(phpser_writer *w, const phpser_value *v)
{
    char text[48];

    switch (v->type) {
    case PHPSER_NULL:
        return writer_bytes(w, "N;", 2);
    case PHPSER_BOOL:
        return writer_bytes(w, v->u.boolean ? "b:1;" : "b:0;", 4);
    case PHPSER_INT:
        return writer_printf(w, "i:%" PRId64 ";", v->u.integer);
    case PHPSER_DOUBLE:
        phpser_double_text(v->u.dbl, 1, text);
        return writer_printf(w, "d:%s;", text);
    case PHPSER_STRING:
    case PHPSER_ENUM:
        if (v->u.str.bytes == NULL && v->u.str.len > 0) {
            return phpser_fail(w->err, w->errlen, "string without bytes");
        }
        return writer_quoted(w, v->type == PHPSER_ENUM ? "E" : "s", v->u.str.bytes, v->u.str.len, "\";");
    case PHPSER_ARRAY:
        return writer_bytes(w, "a:", 2) != 0 ? -1 : writer_pairs(w, v);
    case PHPSER_OBJECT:
        return writer_class(w, "O", v) != 0 ? -1 : writer_pairs(w, v);
    case PHPSER_CUSTOM:
        return writer_custom(w, v);
    case PHPSER_REFERENCE:
        return writer_printf(w, "%c:%" PRId64 ";", v->u.ref.by_ref ? 'R' : 'r', v->u.ref.index);
    }
    return phpser_fail(w->err, w->errlen, "unknown value type %d", (int)v->type);
}

/* Writes v as PHP's serializer would meet it: a node some reference names is written in full the first time it is
 * reached (directly or through a reference) and as a reference to that number afterwards. */
static int writer_value(phpser_writer *w, const phpser_value *v)
{
    const phpser_value *node = v, *target;
    phpser_mark *mark;
    int via_ref = 0, by_ref = 0, hops;

    if (v == NULL) {
        return phpser_fail(w->err, w->errlen, "array element without a value");
    }
    if (v->type == PHPSER_REFERENCE && w->links != NULL && links_target(w->links, v) != NULL) {
        via_ref = 1;
        by_ref = v->u.ref.by_ref;
        for (hops = 0; node->type == PHPSER_REFERENCE && hops < PHPSER_MAX_DEPTH; hops++) {
            target = links_target(w->links, node);
            if (target == NULL) {
                break;
            }
            node = target;
        }
    }
    mark = writer_mark(w, node);
    if (mark != NULL && mark->slot > 0) {
        if (!via_ref) {
            by_ref = mark->by_ref;
        }
        if (!by_ref) {
            w->slot++;
        }
        if (w->renumber && v->type == PHPSER_REFERENCE) {
            ((phpser_value *)v)->u.ref.index = mark->slot;
        }
        return writer_printf(w, "%c:%" PRId64 ";", by_ref ? 'R' : 'r', mark->slot);
    }
    if (node == &phpser_session_array) {
        return phpser_fail(w->err, w->errlen, "a reference to the session array itself needs php_serialize");
    }
    if (!(node->type == PHPSER_REFERENCE && node->u.ref.by_ref)) {
        w->slot++;
    }
    if (mark != NULL) {
        mark->slot = w->slot;
        mark->by_ref = by_ref;
    }
    return writer_content(w, node);
}

/* One mark per distinct link target. */
static int writer_init_marks(phpser_writer *w, const phpser_links *links)
{
    size_t i, n = 0;

    w->links = links;
    if (links->count == 0) {
        return 0;
    }
    w->marks = calloc(links->count, sizeof(*w->marks));
    if (w->marks == NULL) {
        return phpser_fail(w->err, w->errlen, "out of memory");
    }
    for (i = 0; i < links->count; i++) {
        w->marks[i].node = links->items[i].target;
    }
    qsort(w->marks, links->count, sizeof(*w->marks), writer_compare_marks);
    for (i = 0; i < links->count; i++) {
        if (n == 0 || w->marks[n - 1].node != w->marks[i].node) {
            w->marks[n++] = w->marks[i];
        }
    }
    w->nmarks = n;
    return 0;
}

int phpser_value_encode(const phpser_value *value, char **buf, size_t *len, size_t *cap)
{
    phpser_writer w = {buf, len, cap, NULL, NULL, 0, 0, NULL, 0, 0};

    if (value == NULL || buf == NULL || len == NULL || cap == NULL) {
        return -1;
    }
    return writer_value(&w, value);
}

/* PHP stores $_SESSION["5"] under the integer key 5 (ZEND_HANDLE_NUMERIC_STR), and php_serialize writes it so. */
static int phpser_is_integer_name(const char *name, size_t len, int64_t *out)
{
    phpser_reader r = {(const unsigned char *)name, len, 0, 0, NULL, 0, 0, NULL, NULL, 0, 0, NULL, 0};
    size_t digits = len > 0 && name[0] == '-' ? len - 1 : len;

    if (digits == 0 || digits > 19 || (name[len - digits] == '0' && digits > 1) || name[0] == '+' ||
        (len == 2 && name[0] == '-' && name[1] == '0')) {
        return 0;
    }
    return reader_int(&r, out) == 0 && r.pos == len;
}

static int writer_entry_name(phpser_writer *w, phpser_format format, const phpser_entry *entry, int defined)
{
    int64_t number;
    char head;

    switch (format) {
    case PHPSER_FORMAT_PHP:
        if (memchr(entry->name, '|', entry->name_len) != NULL) {
            return phpser_fail(w->err, w->errlen, "the php format cannot carry a name containing '|'");
        }
        if (!defined && writer_bytes(w, "!", 1) != 0) {
            return -1;
        }
        return writer_bytes(w, entry->name, entry->name_len) != 0 ? -1 : writer_bytes(w, "|", 1);
    case PHPSER_FORMAT_PHP_BINARY:
        if (entry->name_len > PHPSER_BIN_NAME_MAX) {
            return phpser_fail(w->err, w->errlen, "the php_binary format cannot carry a name over 127 bytes");
        }
        head = (char)(entry->name_len | (defined ? 0 : PHPSER_BIN_UNDEF));
        return writer_bytes(w, &head, 1) != 0 ? -1 : writer_bytes(w, entry->name, entry->name_len);
    default:
        if (phpser_is_integer_name(entry->name, entry->name_len, &number)) {
            return writer_printf(w, "i:%" PRId64 ";", number);
        }
        return writer_quoted(w, "s", entry->name, entry->name_len, "\";");
    }
}

static int session_write(const phpser_session *session, phpser_format format, phpser_writer *w)
{
    const phpser_item *item;
    phpser_mark *mark;
    size_t i, defined = 0;

    if (format == PHPSER_FORMAT_PHP_SERIALIZE) {
        for (i = 0; i < session->count; i++) {
            defined += session->items[i].value != NULL;
        }
        /* The outer array is value number 1. */
        w->slot = 1;
        mark = writer_mark(w, &phpser_session_array);
        if (mark != NULL) {
            mark->slot = 1;
        }
        if (writer_printf(w, "a:%zu:{", defined) != 0) {
            return -1;
        }
    }
    for (i = 0; i < session->count; i++) {
        item = &session->items[i];
        if (format == PHPSER_FORMAT_PHP_SERIALIZE && item->value == NULL) {
            continue; /* an undefined variable is simply absent from an array */
        }
        if (!w->renumber && writer_entry_name(w, format, &item->view, item->value != NULL) != 0) {
            return -1;
        }
        if (item->value != NULL && writer_value(w, item->value) != 0) {
            return -1;
        }
    }
    return format == PHPSER_FORMAT_PHP_SERIALIZE ? writer_bytes(w, "}", 1) : 0;
}

/* "!a|" followed by a name that reads as a value ("N;x|...") would come back as a different session. */
static int session_verify_php(const phpser_session *session, const char *text, size_t len, char *err, size_t errlen)
{
    phpser_session *back;
    size_t i;
    int same;

    if (phpser_session_decode(PHPSER_FORMAT_PHP, text, len, &back, NULL, 0) != 0) {
        return phpser_fail(err, errlen, "the php format cannot carry these undefined entries unambiguously");
    }
    same = back->count == session->count;
    for (i = 0; same && i < session->count; i++) {
        same = back->items[i].view.name_len == session->items[i].view.name_len &&
               memcmp(back->items[i].view.name, session->items[i].view.name, session->items[i].view.name_len) == 0 &&
               (back->items[i].value == NULL) == (session->items[i].value == NULL);
    }
    phpser_session_free(back);
    return same ? 0 : phpser_fail(err, errlen, "the php format cannot carry these undefined entries unambiguously");
}

/* After a change the indices stored in reference nodes are recomputed, so that a caller reading them (or encoding
 * one value alone) sees the numbers the session would be written with. */
static int session_renumber(phpser_session *session)
{
    phpser_writer w = {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, 1};
    int rc = writer_init_marks(&w, &session->links);

    if (rc == 0) {
        (void)session_write(session, session->origin, &w);
    }
    free(w.marks);
    return rc;
}

/* The same for a lone value: numbered from 1, the value itself. */
static int value_renumber(phpser_value *value, const phpser_links *links)
{
    phpser_writer w = {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, 1};
    int rc = writer_init_marks(&w, links);

    if (rc == 0) {
        (void)writer_value(&w, value);
    }
    free(w.marks);
    return rc;
}

int phpser_session_encode(const phpser_session *session, phpser_format format, char **out, size_t *len, char *err,
                          size_t errlen)
{
    char *buf = NULL;
    size_t used = 0, cap = 0, i;
    phpser_writer w = {&buf, &used, &cap, NULL, NULL, 0, 0, err, errlen, 0};
    int rc, undefined = 0;

    if (session == NULL || out == NULL || len == NULL) {
        return phpser_fail(err, errlen, "invalid arguments");
    }
    if (format != PHPSER_FORMAT_PHP && format != PHPSER_FORMAT_PHP_BINARY && format != PHPSER_FORMAT_PHP_SERIALIZE) {
        return phpser_fail(err, errlen, "unknown session format");
    }
    rc = writer_init_marks(&w, &session->links);
    if (rc == 0) {
        rc = writer_reserve(&w, 0);
    }
    if (rc == 0) {
        rc = session_write(session, format, &w);
    }
    free(w.marks);
    for (i = 0; rc == 0 && format == PHPSER_FORMAT_PHP && i < session->count; i++) {
        undefined |= session->items[i].value == NULL;
    }
    if (rc == 0 && undefined) {
        rc = session_verify_php(session, buf, used, err, errlen);
    }
    if (rc != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = used;
    return 0;
}

char *phpser_value_to_text(const phpser_value *value, size_t *len)
{
    char text[48], *buf = NULL;
    size_t used = 0, cap = 0;

    if (value == NULL) {
        return NULL;
    }
    switch (value->type) {
    case PHPSER_NULL:
        text[0] = '\0';
        break;
    case PHPSER_BOOL:
        strcpy(text, value->u.boolean ? "1" : "");
        break;
    case PHPSER_INT:
        snprintf(text, sizeof(text), "%" PRId64, value->u.integer);
        break;
    case PHPSER_DOUBLE:
        /* (string) uses the precision ini setting, 14 digits by default, not serialize()'s shortest form. */
        phpser_double_text(value->u.dbl, 0, text);
        break;
    case PHPSER_STRING:
        buf = phpser_dup_bytes(value->u.str.bytes, value->u.str.len);
        if (buf != NULL && len != NULL) {
            *len = value->u.str.len;
        }
        return buf;
    default:
        if (phpser_value_encode(value, &buf, &used, &cap) != 0) {
            free(buf);
            return NULL;
        }
        if (len != NULL) {
            *len = used;
        }
        return buf;
    }
    buf = phpser_dup_bytes(text, strlen(text));
    if (buf != NULL && len != NULL) {
        *len = strlen(text);
    }
    return buf;
}

/* ---- php-memcached items ---- */

static char *phpser_zlib_inflate(const char *buf, size_t len, size_t *out_len, char *err, size_t errlen)
{
    uint32_t plain_len;
    uLongf produced;
    char *plain;
    int rc;

    if (len < sizeof(plain_len)) {
        phpser_fail(err, errlen, "compressed item shorter than its length header");
        return NULL;
    }
    /* php-memcached memcpy()s a uint32_t: host order, little-endian on every platform it is built for here. */
    memcpy(&plain_len, buf, sizeof(plain_len));
    buf += sizeof(plain_len);
    len -= sizeof(plain_len);
    if (plain_len > PHPSER_MC_MAX_PLAIN || (uint64_t)plain_len > (uint64_t)len * PHPSER_ZLIB_MAX_RATIO + 64) {
        phpser_fail(err, errlen, "compressed item claims an implausible length (%" PRIu32 ")", plain_len);
        return NULL;
    }
    plain = malloc((size_t)plain_len + 1);
    if (plain == NULL) {
        phpser_fail(err, errlen, "out of memory");
        return NULL;
    }
    produced = plain_len;
    rc = uncompress((Bytef *)plain, &produced, (const Bytef *)buf, (uLong)len);
    if (rc != Z_OK || produced != plain_len) {
        free(plain);
        phpser_fail(err, errlen, "corrupt zlib data (%s)", rc == Z_OK ? "length mismatch" : zError(rc));
        return NULL;
    }
    plain[plain_len] = '\0';
    *out_len = plain_len;
    return plain;
}

char *phpser_memcached_value(uint32_t flags, const char *buf, size_t len, size_t *out_len, char *err, size_t errlen)
{
    uint32_t type = flags & PHPSER_MC_TYPE_MASK;
    size_t plain_len = 0;
    char *plain;

    if (out_len == NULL || (buf == NULL && len > 0)) {
        phpser_fail(err, errlen, "invalid arguments");
        return NULL;
    }
    switch (type) {
    case PHPSER_MC_STRING:
    case PHPSER_MC_LONG:
    case PHPSER_MC_DOUBLE:
    case PHPSER_MC_BOOL:
    case PHPSER_MC_SERIALIZED:
    case PHPSER_MC_JSON:
        break;
    case PHPSER_MC_IGBINARY:
        phpser_fail(err, errlen, "igbinary items are not supported");
        return NULL;
    case PHPSER_MC_MSGPACK:
        phpser_fail(err, errlen, "msgpack items are not supported");
        return NULL;
    default:
        phpser_fail(err, errlen, "unknown php-memcached item type %" PRIu32, type);
        return NULL;
    }
    if (!(flags & PHPSER_MC_COMPRESSED)) {
        plain = phpser_dup_bytes(buf, len);
        if (plain == NULL) {
            phpser_fail(err, errlen, "out of memory");
            return NULL;
        }
        *out_len = len;
        return plain;
    }
    /* Same precedence as php-memcached's s_decompress_value(): zstd, then fastlz, then zlib. */
    if (flags & PHPSER_MC_ZSTD) {
        phpser_fail(err, errlen, "zstd-compressed items are not supported");
        return NULL;
    }
    if (flags & PHPSER_MC_FASTLZ) {
        phpser_fail(err, errlen, "fastlz-compressed items are not supported");
        return NULL;
    }
    if (!(flags & PHPSER_MC_ZLIB)) {
        phpser_fail(err, errlen, "compressed item without a known compression type");
        return NULL;
    }
    plain = phpser_zlib_inflate(buf, len, &plain_len, err, errlen);
    if (plain != NULL) {
        *out_len = plain_len;
    }
    return plain;
}
