/* Cells and rows of CSV exports (see csv.h). */
#include "csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CSV_INITIAL 4096

/* Room for extra more bytes and the NUL, growing by doubling so that 100,000 rows cost a few dozen reallocs. */
static int csv_reserve(csv_buf *buf, size_t extra)
{
    size_t need, cap;
    char *data;

    if (extra > SIZE_MAX - 1 - buf->len) {
        return -1;
    }
    need = buf->len + extra + 1;
    if (need <= buf->cap) {
        return 0;
    }
    cap = buf->cap > 0 ? buf->cap : CSV_INITIAL;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    data = realloc(buf->data, cap);
    if (data == NULL) {
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int csv_append(csv_buf *buf, const char *bytes, size_t len)
{
    if (csv_reserve(buf, len) != 0) {
        return -1;
    }
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int csv_cell(csv_buf *buf, const char *value)
{
    size_t len, i;
    int neutralise, quote;
    char *p;

    if (value == NULL) {
        value = "";
    }
    len = strlen(value);
    /* TAB and CR too: some spreadsheets skip them before looking for the formula sign */
    neutralise = len > 0 && strchr("=+-@\t\r", value[0]) != NULL;
    quote = neutralise || (len > 0 && (value[0] == ' ' || value[len - 1] == ' ')) ||
            value[strcspn(value, ",\"\r\n")] != '\0';
    if (!quote) {
        return csv_append(buf, value, len);
    }
    if (len > (SIZE_MAX - 4) / 2 || csv_reserve(buf, 2 * len + 3) != 0) {
        return -1;
    }
    p = buf->data + buf->len;
    *p++ = '"';
    if (neutralise) {
        *p++ = '\'';
    }
    for (i = 0; i < len; i++) {
        if (value[i] == '"') {
            *p++ = '"';
        }
        *p++ = value[i];
    }
    *p++ = '"';
    *p = '\0';
    buf->len = (size_t)(p - buf->data);
    return 0;
}

int csv_row(csv_buf *buf, const char *const *cells, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((i > 0 && csv_append(buf, ",", 1) != 0) || csv_cell(buf, cells[i]) != 0) {
            return -1;
        }
    }
    return csv_append(buf, "\r\n", 2);
}

void csv_reset(csv_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL) {
        buf->data[0] = '\0';
    }
}

void csv_free(csv_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}
