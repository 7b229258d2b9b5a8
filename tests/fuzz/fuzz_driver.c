/*
 * fuzz_driver: runs a libFuzzer-style target without libFuzzer, so every
 * build (gcc, sanitizers) exercises the decoders in ctest: each file of the
 * corpus directory, then a fixed number of mutations of them (bit flips,
 * byte overwrites, insertions, deletions, truncations, splices), from a
 * fixed seed so a failure is reproducible. With clang, configure
 * -DSIKKA_LIBFUZZER=ON to build the same targets for real coverage-guided
 * fuzzing instead.
 *
 * usage: fuzz_<target> CORPUS_DIR [ITERATIONS] [SEED]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 8192
#define MAX_SEEDS      256

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic and good enough to pick mutations */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

struct seed {
    uint8_t *data;
    size_t len;
};

static size_t mutate(uint8_t *buf, size_t len, const struct seed *seeds, size_t nseeds)
{
    int rounds = 1 + (int)(rnd() % 4);
    for (int r = 0; r < rounds; r++) {
        switch (rnd() % 7) {
        case 0: /* flip a bit */
            if (len > 0)
                buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1: /* overwrite a byte with an interesting value */
            if (len > 0) {
                static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x08, 0x12};
                buf[rnd() % len] = vals[rnd() % sizeof(vals)];
            }
            break;
        case 2: /* insert a random byte */
            if (len < FUZZ_MAX_INPUT) {
                size_t at = len ? rnd() % (len + 1) : 0;
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rnd();
                len++;
            }
            break;
        case 3: /* delete a byte */
            if (len > 0) {
                size_t at = rnd() % len;
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        case 4: /* truncate */
            if (len > 0)
                len = rnd() % len;
            break;
        case 5: /* splice in part of another seed */
            if (nseeds > 0) {
                const struct seed *o = &seeds[rnd() % nseeds];
                if (o->len > 0) {
                    size_t from = rnd() % o->len, n = 1 + rnd() % (o->len - from);
                    size_t at = len ? rnd() % len : 0;
                    if (at + n > FUZZ_MAX_INPUT)
                        n = FUZZ_MAX_INPUT - at;
                    memcpy(buf + at, o->data + from, n);
                    if (at + n > len)
                        len = at + n;
                }
            }
            break;
        default: /* a random 32-bit value, e.g. over a length prefix */
            if (len >= 4) {
                size_t at = rnd() % (len - 3);
                uint32_t v = (uint32_t)rnd();
                memcpy(buf + at, &v, 4);
            }
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS] [SEED]\n", argv[0]);
        return 2;
    }
    long iterations = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
    rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 0x5eed5eedULL;
    if (rng_state == 0)
        rng_state = 1;
    struct seed seeds[MAX_SEEDS];
    size_t nseeds = 0;
    DIR *d = opendir(argv[1]);
    if (d == NULL) {
        perror(argv[1]);
        return 2;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && nseeds < MAX_SEEDS) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        uint8_t *buf = malloc(FUZZ_MAX_INPUT);
        size_t n = buf ? fread(buf, 1, FUZZ_MAX_INPUT, f) : 0;
        fclose(f);
        if (buf == NULL)
            continue;
        seeds[nseeds].data = buf;
        seeds[nseeds].len = n;
        nseeds++;
        LLVMFuzzerTestOneInput(buf, n);
    }
    closedir(d);
    if (nseeds == 0) {
        fprintf(stderr, "%s: empty corpus\n", argv[1]);
        return 2;
    }
    static uint8_t buf[FUZZ_MAX_INPUT + 1];
    for (long i = 0; i < iterations; i++) {
        const struct seed *s = &seeds[rnd() % nseeds];
        memcpy(buf, s->data, s->len);
        size_t len = mutate(buf, s->len, seeds, nseeds);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%s: %zu seeds, %ld mutated inputs, no crash\n", argv[0], nseeds, iterations);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i].data);
    return 0;
}
