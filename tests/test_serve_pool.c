/* test_serve_pool.c - cmcr serve's worker pool (tools/serve_pool.c): every job is run or
 * expired exactly once; a job nobody takes before its deadline is expired by the sweeper even
 * while every worker is busy (the server's 503); jobs are taken in the order they came; a
 * stop answers everything queued, and the pool refuses jobs from then on. No timed
 * assertion: a test waits on the outcome it expects (and fails on a generous bound). */
#include "testutil.h"
#include "serve_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

/* The outcomes the jobs report, under one lock. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int runs, expiries, order[64], norder;
static bool release; /* a blocking job waits for this */

typedef struct tjob {
    job j;
    int id;
    bool blocks; /* runs until release */
    int outcome; /* 0 pending, 1 run, 2 expired */
} tjob;

static void reset(void)
{
    runs = expiries = norder = 0;
    release = false;
}

static void ran(job *j)
{
    tjob *t = (tjob *)j;
    pthread_mutex_lock(&mu);
    if (norder < 64) order[norder++] = t->id;
    while (t->blocks && !release) pthread_cond_wait(&changed, &mu);
    t->outcome = 1;
    runs++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
}

static void expired(job *j)
{
    tjob *t = (tjob *)j;
    pthread_mutex_lock(&mu);
    t->outcome = 2;
    expiries++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
}

static void submit(pool *p, tjob *t, int id, double timeout, bool blocks)
{
    *t = (tjob){.j = {.deadline = pool_now() + timeout, .run = ran, .expired = expired}, .id = id, .blocks = blocks};
    assert_true(pool_submit(p, &t->j));
}

/* Wait (at most 20 s: a hang is a failure, not a slow pass) until *v reaches want. */
static void wait_for(const int *v, int want)
{
    double until = pool_now() + 20;
    pthread_mutex_lock(&mu);
    while (*v < want && pool_now() < until) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 10000000;
        if (t.tv_nsec >= 1000000000) t.tv_sec++, t.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&changed, &mu, &t);
    }
    int got = *v;
    pthread_mutex_unlock(&mu);
    assert_int_equal(got, want);
}

static void test_every_job_runs_once(void **s)
{
    (void)s;
    reset();
    pool p;
    assert_int_equal(pool_start(&p, 3), 0);
    tjob t[40];
    for (int i = 0; i < 40; i++) submit(&p, &t[i], i, 60, false);
    wait_for(&runs, 40);
    pool_stop(&p);
    pool_free(&p);
    assert_int_equal(expiries, 0);
    for (int i = 0; i < 40; i++) assert_int_equal(t[i].outcome, 1);
}

/* One worker, busy until released: the next job passes its deadline in the queue and the
 * sweeper expires it while the worker is still busy; a job with time left waits and runs. */
static void test_expired_while_workers_busy(void **s)
{
    (void)s;
    reset();
    pool p;
    assert_int_equal(pool_start(&p, 1), 0);
    tjob busy, late, patient;
    submit(&p, &busy, 0, 60, true);
    submit(&p, &late, 1, 0.05, false);
    submit(&p, &patient, 2, 60, false);
    wait_for(&expiries, 1); /* the worker is still blocked: only the sweeper can do this */
    pthread_mutex_lock(&mu);
    assert_int_equal(late.outcome, 2);
    assert_int_equal(busy.outcome, 0);
    release = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
    wait_for(&runs, 2);
    pool_stop(&p);
    pool_free(&p);
    assert_int_equal(busy.outcome, 1);
    assert_int_equal(patient.outcome, 1);
    assert_int_equal(expiries, 1);
}

static void test_first_come_first_served(void **s)
{
    (void)s;
    reset();
    pool p;
    assert_int_equal(pool_start(&p, 1), 0);
    tjob t[10];
    submit(&p, &t[0], 0, 60, true); /* hold the worker until all are queued */
    for (int i = 1; i < 10; i++) submit(&p, &t[i], i, 60, false);
    pthread_mutex_lock(&mu);
    release = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
    wait_for(&runs, 10);
    pool_stop(&p);
    pool_free(&p);
    for (int i = 0; i < 10; i++) assert_int_equal(order[i], i);
}

/* A stop answers what was queued (run, or expired when its deadline passed), then refuses. */
static void test_stop_answers_everything(void **s)
{
    (void)s;
    reset();
    pool p;
    assert_int_equal(pool_start(&p, 2), 0);
    tjob t[30];
    for (int i = 0; i < 30; i++) submit(&p, &t[i], i, i % 3 ? 60 : -1, false); /* every third already late */
    pool_stop(&p);
    assert_int_equal(runs + expiries, 30);
    for (int i = 0; i < 30; i++) assert_int_equal(t[i].outcome, i % 3 ? 1 : 2);
    tjob after = {.j = {.deadline = pool_now() + 60, .run = ran, .expired = expired}};
    assert_false(pool_submit(&p, &after.j));
    assert_int_equal(after.outcome, 0);
    pool_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_runs_once),
        cmocka_unit_test(test_expired_while_workers_busy),
        cmocka_unit_test(test_first_come_first_served),
        cmocka_unit_test(test_stop_answers_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
