/* RFC 4180 CSV text for exports and reports (the paywall's routing export, the booking reports): quoting, and
 * OWASP's neutralisation of cells a spreadsheet would run as formulas, since names and addresses come from the
 * public. */
#ifndef CORE_CSV_H
#define CORE_CSV_H

#include <stddef.h>

/* The text being built: data[0..len) is the CSV so far, always NUL-terminated (data is NULL before the first append).
 * Start from {0}; reuse it for the next chunk with csv_reset, which keeps the memory. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} csv_buf;

/* Appends one cell, without separator. NULL is an empty cell. A value containing ',', '"', CR or LF, or with a
 * leading or trailing space, is quoted, '"' doubled. A value starting with '=', '+', '-', '@', TAB or CR would be a
 * formula to a spreadsheet: it gets a leading "'" and is quoted (OWASP's CSV injection advice). Bytes are otherwise
 * copied as they are (UTF-8 stays UTF-8). Returns 0, or -1 when out of memory (buf unchanged). */
int csv_cell(csv_buf *buf, const char *value);
/* Appends n cells separated by ',' and the CRLF that ends a row. Returns 0, or -1 when out of memory (buf then holds
 * part of the row: reset it or drop the export). */
int csv_row(csv_buf *buf, const char *const *cells, size_t n);
void csv_reset(csv_buf *buf);
void csv_free(csv_buf *buf);

#endif
