/* Fuzz target: the CSV reader of `sikka-wallet bulk` (bulkfile_parse). Any
 * bytes either parse into 1..1000 checked payments or are refused with a
 * message naming what was wrong; a parsed file always makes a batch whose
 * frame a strict decoder accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkfile.h"
#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bulkfile f;
    char err[512] = "";
    if (bulkfile_parse((const char *)data, size, &f, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || f.rows != NULL || f.n != 0)
            abort(); /* a refusal always says why and keeps nothing */
        return 0;
    }
    if (f.n == 0 || f.n > BULKFILE_MAX_ITEMS)
        abort();
    for (size_t i = 0; i < f.n; i++) {
        const struct bulkfile_row *r = &f.rows[i];
        /* a payee: an agent (ACCOUNT@CODE) or an alias, never both nor none */
        if (r->amount <= 0 || r->line < 2 ||
            (r->creditor_agent[0] == '\0') == (r->creditor_alias[0] == '\0') ||
            (i > 0 && r->line <= f.rows[i - 1].line))
            abort();
    }
    struct bulkfile_batch b;
    if (bulkfile_batch(&b, &f, "JAZZ", "03001234567", NULL, err, sizeof(err)) == 0) {
        if (codec_check_strict(&b.env.base, err, sizeof(err)) != 0)
            abort(); /* everything accepted makes a frame a strict decoder takes */
        bulkfile_batch_free(&b);
    }
    bulkfile_free(&f);
    return 0;
}
