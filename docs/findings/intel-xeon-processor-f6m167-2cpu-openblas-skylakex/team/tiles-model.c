/* A model of one team thread's first layer at [784, 30, 10], float32, batch 10,
 * AVX-512: W1ᵀ rows of 32 floats (two vectors), the forward tile of ten samples
 * by two vectors (a pair of sweeps) and the update tile of five features by two
 * vectors, as rust/src/kernels/outer.rs has them, with the next batch's rows of
 * X prefetched as the forward pass goes (every 16 features, as the kernel does).
 *
 *   gcc -O3 -march=native -o tiles-model tiles-model.c
 *   [AHEAD=1|2|3] [HINT=0|1|2|3] ./tiles-model FEATURES WHAT [BLOCK] [SAMPLES_IN_X]
 *
 * WHAT: team (the update with the last batch's rows, then the forward pass of
 * this batch's, as a team thread does), both (update and forward with this
 * batch's rows), forward, update (nothing prefetched), forward-l1 / update-l1
 * (ten passes over the same FEATURES, few enough for W1ᵀ to stay in L1), or
 * blocks (the update of BLOCK features, then the next batch's forward over
 * them). X holds SAMPLES_IN_X rows (50,000; 200 keep it in L2), taken in a
 * shuffled order. AHEAD: batches ahead prefetched (1). HINT: 0, 1, 2 or 3
 * prefetch a line of every row every 16 features into L1, L2, L3 or
 * non-temporally (1, into L2, is the kernel's); 4 one line a feature, the rows
 * in turn, into L2; 5 nothing. TOUCH_PAGES: load from every 1 KB of the next
 * batch's rows first, which waits for them. Prints the least of five runs
 * in time-stamp-counter cycles per mini-batch (per pass for the -l1 forms) and
 * the cycles two multiply-adds a cycle would take. */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

enum { S = 10, WIDTH = 784, STRIDE = 32 };
static float *X, *wt, nd[S * STRIDE], z[S * STRIDE];
static int *order;
static const float **pf;
static int hint = 1;
static volatile float sink;

static void forward(int k0, int k1, const float **x, int carry) {
    __m512 acc[S][2];
    for (int q = 0; q < S; q++)
        for (int v = 0; v < 2; v++)
            acc[q][v] = carry ? _mm512_loadu_ps(z + q * STRIDE + v * 16) : _mm512_setzero_ps();
    for (int k = k0; k < k1; k++) {
        if (hint == 4) {  /* one line a feature, row by row in turn */
            int r = k - k0, q = r % S, j = r / S;
            if (k0 + j * 16 < k1) _mm_prefetch((const char *)(pf[q] + k0 + j * 16), _MM_HINT_T1);
        } else if (hint < 4 && k % 16 == 0)
            for (int q = 0; q < S; q++) {
                const char *p = (const char *)(pf[q] + k);
                if (hint == 0) _mm_prefetch(p, _MM_HINT_T0); else if (hint == 1) _mm_prefetch(p, _MM_HINT_T1); else if (hint == 2) _mm_prefetch(p, _MM_HINT_T2); else _mm_prefetch(p, _MM_HINT_NTA);
            }
        __m512 w0 = _mm512_load_ps(wt + k * STRIDE), w1 = _mm512_load_ps(wt + k * STRIDE + 16);
        for (int q = 0; q < S; q++) {
            __m512 b = _mm512_set1_ps(x[q][k]);
            acc[q][0] = _mm512_fmadd_ps(w0, b, acc[q][0]);
            acc[q][1] = _mm512_fmadd_ps(w1, b, acc[q][1]);
        }
    }
    for (int q = 0; q < S; q++)
        for (int v = 0; v < 2; v++) _mm512_storeu_ps(z + q * STRIDE + v * 16, acc[q][v]);
}

static void update(int k0, int k1, const float **x) {
    for (int k = k0; k + 5 <= k1; k += 5) {
        __m512 a[5][2];
        for (int r = 0; r < 5; r++)
            for (int v = 0; v < 2; v++) a[r][v] = _mm512_load_ps(wt + (k + r) * STRIDE + v * 16);
        for (int i = 0; i < S; i++) {
            __m512 d0 = _mm512_loadu_ps(nd + i * STRIDE), d1 = _mm512_loadu_ps(nd + i * STRIDE + 16);
            for (int r = 0; r < 5; r++) {
                __m512 b = _mm512_set1_ps(x[i][k + r]);
                a[r][0] = _mm512_fmadd_ps(d0, b, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(d1, b, a[r][1]);
            }
        }
        for (int r = 0; r < 5; r++)
            for (int v = 0; v < 2; v++) _mm512_store_ps(wt + (k + r) * STRIDE + v * 16, a[r][v]);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s FEATURES WHAT [BLOCK] [SAMPLES_IN_X]\n", argv[0]); return 2; }
    int features = atoi(argv[1]), block = argc > 3 ? atoi(argv[3]) : 40;
    if (features > WIDTH) features = WIDTH;
    features = features / 5 * 5;  /* whole update tiles */
    block = block < 5 ? 5 : block / 5 * 5;
    int n = argc > 4 ? atoi(argv[4]) : 50000;
    const char *what = argv[2];
    if (getenv("HINT")) hint = atoi(getenv("HINT"));
    int lead = getenv("AHEAD") ? atoi(getenv("AHEAD")) : 1, touch = getenv("TOUCH_PAGES") != NULL;
    X = aligned_alloc(64, (size_t)n * WIDTH * sizeof(float));
    wt = aligned_alloc(64, WIDTH * STRIDE * sizeof(float));
    order = malloc(n * sizeof(int));
    for (size_t i = 0; i < (size_t)n * WIDTH; i++) X[i] = (i % 97) * 1e-3f;
    for (int i = 0; i < WIDTH * STRIDE; i++) wt[i] = (i % 13) * 1e-3f;
    for (int i = 0; i < S * STRIDE; i++) nd[i] = 1e-6f * (i % 7);
    srand(1);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) { int j = rand() % (i + 1), t = order[i]; order[i] = order[j]; order[j] = t; }
    int l1 = strstr(what, "-l1") != NULL, passes = l1 ? 10 : 1;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        int batches = n / S - 2;
        unsigned long long start = __rdtsc();
        for (int b = 0; b < batches; b++) {
            const float *now[S], *next[S], *before[S], *ahead[S];
            /* the forward pass prefetches the rows `lead` batches after the one it reads */
            int read = strcmp(what, "blocks") ? b : b + 1;
            for (int q = 0; q < S; q++) ahead[q] = X + (size_t)order[((read + lead) * S + q) % n] * WIDTH;
            pf = ahead;
            if (touch) {  /* a load from every 1 KB of the next rows' runs: their pages' TLB entries */
                float t = 0;
                for (int q = 0; q < S; q++) {
                    for (int k = 0; k < features; k += 256) t += ahead[q][k];
                    t += ahead[q][features - 1];
                }
                sink = t;
            }
            for (int q = 0; q < S; q++) {
                before[q] = X + (size_t)order[((b + n / S - 1) * S + q) % n] * WIDTH;  /* batch b - 1 */
                now[q] = X + (size_t)order[(b * S + q) % n] * WIDTH;
                next[q] = X + (size_t)order[((b + 1) * S + q) % n] * WIDTH;
            }
            if (!strcmp(what, "both")) { update(0, features, now); forward(0, features, now, 0); }
            else if (!strcmp(what, "team")) { update(0, features, before); forward(0, features, now, 0); }
            else if (!strncmp(what, "forward", 7)) for (int p = 0; p < passes; p++) forward(0, features, now, 0);
            else if (!strncmp(what, "update", 6)) for (int p = 0; p < passes; p++) update(0, features, now);
            else if (!strcmp(what, "blocks"))
                for (int k = 0; k < features; k += block) {
                    int end = k + block < features ? k + block : features;
                    update(k, end, now);
                    forward(k, end, next, k > 0);
                }
            else { fprintf(stderr, "WHAT: team, both, forward, update, forward-l1, update-l1 or blocks\n"); return 2; }
        }
        double cycles = (double)(__rdtsc() - start) / batches / passes;
        if (cycles < best) best = cycles;
    }
    int fmas = features * S * 2 * (strcmp(what, "both") && strcmp(what, "blocks") && strcmp(what, "team") ? 1 : 2);
    printf("%d features, %s: %.0f cycles a mini-batch%s (two FMAs a cycle: %d); z[3] %g\n", features, what, best,
           l1 ? " pass" : "", fmas / 2, z[3]);
    return 0;
}
