/*
 * recorder: with `capture_file` set, the switch records what participants
 * send into a capture file (proto/capture.proto, the format sikka-replay
 * replays), so that real traffic can be replayed later.
 *
 * A transfer is recorded once its payee's answer is known (accept, reject
 * with its code, or no answer: AB05), with the time it was received, so a
 * replay reproduces both sides; the records are therefore in the order the
 * switch decided them and offsets may step back by up to the payee timeout
 * (sikka-replay sorts by offset). Retries answered from the idempotency index
 * are recorded as retries; frames that were not valid Envelopes as malformed.
 *
 * Writing is buffered stdio on the loop; the recorder is a load-testing and
 * debugging aid, off by default. Owns its capture writer.
 */
#ifndef SIKKA_RECORDER_H
#define SIKKA_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transfer.h"

int recorder_open(const char *path) __attribute__((warn_unused_result));
/* A transfer whose payee answer is now known. `action`: 0 accept, 1 reject
 * (reason), 2 no answer. */
void recorder_transfer(const struct transfer *t, int action, const char *reason, bool retry);
/* Bytes a participant sent that were not a valid Envelope. */
void recorder_malformed(const char *participant, const void *frame, size_t len);
void recorder_flush(void);
void recorder_close(void);

#endif
