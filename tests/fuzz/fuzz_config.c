/* Fuzz target: the configuration parser. Any text either loads into a
 * complete, validated config or is refused with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512];
    struct config *cfg = config_parse(text, "fuzz", err, sizeof(err));
    if (cfg != NULL) {
        /* a config that loaded has every required setting */
        if (cfg->tls_cert == NULL || cfg->database_url == NULL || cfg->max_frame_bytes < 256)
            abort();
        config_free(cfg);
    } else if (err[0] == '\0') {
        abort(); /* a refusal always says why */
    }
    free(text);
    return 0;
}
