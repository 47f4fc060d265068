/* serve_pool.h - cmcr serve's computations: a fixed number of worker threads take jobs in the
 * order they came, and a job that no worker took before its deadline is expired instead of
 * run (the server answers 503), also while every worker is busy. The HTTP threads never
 * compute: they hand a job over and suspend the connection until it is answered. */
#ifndef CMCR_SERVE_POOL_H
#define CMCR_SERVE_POOL_H
#include <pthread.h>
#include <stdbool.h>

typedef struct job job;
struct job {
    job *next;
    double deadline;          /* pool_now() seconds */
    void (*run)(job *j);      /* a worker took it in time */
    void (*expired)(job *j);  /* none did */
};

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t more;      /* a job came, or stop */
    pthread_cond_t sweep;     /* the sweeper's: a job came to an empty queue, or stop */
    job *head, *tail;         /* in the order they came */
    pthread_t *threads;       /* the workers, then the sweeper */
    int workers, started;
    bool stop;
} pool;

/* A monotonic clock in seconds. */
double pool_now(void);
/* Start `workers` threads and the sweeper: 0, or an errno value (nothing left running). */
int pool_start(pool *p, int workers);
/* Queue j (its deadline set): run or expired is called once, on another thread. false
 * (and nothing called) once pool_stop has begun. */
bool pool_submit(pool *p, job *j);
/* Run what is queued, then join every thread; from then on pool_submit refuses. */
void pool_stop(pool *p);
/* After pool_stop, once nothing can call pool_submit any more. */
void pool_free(pool *p);
#endif
