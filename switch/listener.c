#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "session.h"

struct listener {
    struct evconnlistener *evl;
    struct event_base *base;
    struct event *retry;
    char addr[128];
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)evl;
    (void)arg;
    /* frames are small and each waits for an answer: Nagle would hold a
     * frame back behind an unacknowledged one for a delayed-ACK period */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        log_warn("event=nodelay_failed why=\"%s\"", strerror(errno));
    evutil_make_socket_nonblocking(fd);
    (void)session_accept(fd, sa, socklen);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener *l = arg;
    evconnlistener_enable(l->evl);
}

static void on_error(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    /* out of descriptors: stop accepting for a moment instead of spinning */
    log_error("event=accept_failed listen=%s why=\"%s\" action=pause_100ms", l->addr,
              evutil_socket_error_to_string(e));
    evconnlistener_disable(evl);
    struct timeval tv = {0, 100000};
    evtimer_add(l->retry, &tv);
}

struct listener *listener_new(struct event_base *base, const char *addr)
{
    char host[100];
    int port;
    if (config_split_addr(addr, host, sizeof(host), &port) != 0) {
        log_error("event=listen_failed listen=%s why=\"not host:port\"", addr);
        return NULL;
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        log_error("event=listen_failed listen=%s why=\"host must be an IPv4 address\"", addr);
        return NULL;
    }
    struct listener *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        log_error("event=oom what=listener");
        return NULL;
    }
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    l->base = base;
    l->retry = evtimer_new(base, on_retry, l);
    l->evl = evconnlistener_new_bind(
        base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
        (struct sockaddr *)&sin, sizeof(sin));
    if (l->evl == NULL || l->retry == NULL) {
        log_error("event=listen_failed listen=%s why=\"%s\"", addr, strerror(errno));
        listener_free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_error);
    return l;
}

int listener_port(const struct listener *l)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    if (getsockname(evconnlistener_get_fd(l->evl), (struct sockaddr *)&sin, &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    if (l->evl != NULL)
        evconnlistener_free(l->evl);
    if (l->retry != NULL)
        event_free(l->retry);
    free(l);
}
