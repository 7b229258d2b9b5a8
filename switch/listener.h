/*
 * listener: the participants' TCP listener. Accepted sockets become
 * sessions (which do the TLS handshake). Owns its evconnlistener.
 */
#ifndef SIKKA_LISTENER_H
#define SIKKA_LISTENER_H

#include <event2/event.h>

struct listener;

/* Binds host:port; NULL (logged) on failure. */
struct listener *listener_new(struct event_base *base, const char *addr);
void listener_free(struct listener *l);
/* The bound port (useful when the address asked for port 0). */
int listener_port(const struct listener *l);

#endif
