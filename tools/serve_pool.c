/* serve_pool.c - cmcr serve's worker threads and the sweeper that expires jobs nobody took in
 * time (serve_pool.h). */
#include <stdio.h>
#include "serve_pool.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

double pool_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static job *pop(pool *p)
{
    job *j = p->head;
    p->head = j->next;
    if (!p->head) p->tail = NULL;
    j->next = NULL;
    return j;
}

/* A worker: the oldest job, run unless its deadline passed while it waited. Leaves once
 * stopped and the queue is empty, so nothing handed over is dropped. */
static void *worker(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) pthread_cond_wait(&p->more, &p->mu);
        if (!p->head) break;
        job *j = pop(p);
        pthread_mutex_unlock(&p->mu);
        if (pool_now() > j->deadline) j->expired(j);
        else j->run(j);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The first queued job whose deadline has passed (taken out of the queue), or NULL with
 * *next the earliest deadline still ahead (INFINITY: the queue is empty). */
static job *take_expired(pool *p, double now, double *next)
{
    *next = INFINITY;
    for (job **at = &p->head, *prev = NULL; *at; prev = *at, at = &(*at)->next) {
        job *j = *at;
        if (j->deadline > now) {
            if (j->deadline < *next) *next = j->deadline;
            continue;
        }
        *at = j->next;
        if (p->tail == j) p->tail = prev;
        j->next = NULL;
        return j;
    }
    return NULL;
}

/* The sweeper sleeps until the earliest deadline in the queue and expires the jobs past it:
 * the workers cannot, while each is busy with a long computation. */
static void *sweeper(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        double next;
        job *j = take_expired(p, pool_now(), &next);
        if (j) {
            pthread_mutex_unlock(&p->mu);
            j->expired(j);
            pthread_mutex_lock(&p->mu);
        } else if (isinf(next)) {
            pthread_cond_wait(&p->sweep, &p->mu);
        } else {
            struct timespec t = {(time_t)next, (long)((next - (double)(time_t)next) * 1e9)};
            pthread_cond_timedwait(&p->sweep, &p->mu, &t);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int init_sync(pool *p)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC); /* the deadlines are pool_now() times */
    if (!rc) rc = pthread_cond_init(&p->sweep, &a);
    pthread_condattr_destroy(&a);
    if (rc) return rc;
    if ((rc = pthread_cond_init(&p->more, NULL))) {
        pthread_cond_destroy(&p->sweep);
        return rc;
    }
    if ((rc = pthread_mutex_init(&p->mu, NULL))) {
        pthread_cond_destroy(&p->sweep);
        pthread_cond_destroy(&p->more);
    }
    return rc;
}

int pool_start(pool *p, int workers)
{
    *p = (pool){.workers = workers};
    int rc = init_sync(p);
    if (rc) return rc;
    p->threads = calloc((size_t)workers + 1, sizeof *p->threads);
    if (!p->threads) rc = ENOMEM;
    for (int i = 0; !rc && i <= workers; i++) {
        rc = pthread_create(&p->threads[i], NULL, i < workers ? worker : sweeper, p);
        if (!rc) p->started++;
    }
    if (rc) pool_stop(p), pool_free(p);
    return rc;
}

bool pool_submit(pool *p, job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    j->next = NULL;
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->more);
    pthread_cond_signal(&p->sweep); /* its deadline may be the earliest */
    pthread_mutex_unlock(&p->mu);
    return true;
}

void pool_stop(pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->more);
    pthread_cond_broadcast(&p->sweep);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    p->started = 0;
}

void pool_free(pool *p)
{
    free(p->threads);
    pthread_cond_destroy(&p->more);
    pthread_cond_destroy(&p->sweep);
    pthread_mutex_destroy(&p->mu);
    *p = (pool){0};
}
