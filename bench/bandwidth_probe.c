/* DRAM read bandwidth: each of T threads streams its own slice of one large
 * buffer with the widest vector loads the compiler may use (-march=native),
 * as decode reads the weights. The buffer (1 GiB by default) is far larger
 * than any cache, so the figure is the memory system's, which is what bounds
 * decode speed (tokens/s <= bandwidth / bytes of weights per token).
 *
 * Like STREAM (McCalpin, https://www.cs.virginia.edu/stream/) every pass is
 * timed and the best pass is reported as the sustainable rate; the median is
 * printed too so a noisy machine shows up.
 *
 *     cc -O2 -march=native -pthread bandwidth_probe.c -o probe
 *     ./probe [MiB=1024] [passes=7] [threads...=1 2]
 *
 * Output: one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define MAX_THREADS 64
#define MAX_PASSES 64

typedef struct {
  const unsigned char* base;
  size_t bytes;
  int passes;
  pthread_barrier_t* start;
  uint64_t sink;
  double t0[MAX_PASSES + 1], t1[MAX_PASSES + 1];
} slice_t;

/* Sums the slice so the loads cannot be optimised away; four independent
 * accumulators keep several loads in flight. */
static uint64_t read_slice(const unsigned char* p, size_t n) {
#if defined(__AVX512F__)
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void*)(p + i)));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void*)(p + i + 64)));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void*)(p + i + 128)));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void*)(p + i + 192)));
  }
  a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
  return (uint64_t)_mm512_reduce_add_epi64(a0);
#elif defined(__AVX2__)
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i*)(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i*)(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i*)(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i*)(p + i + 96)));
  }
  a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t lanes[4];
  _mm256_storeu_si256((__m256i*)lanes, a0);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
#elif defined(__ARM_NEON)
  uint64x2_t a0 = vdupq_n_u64(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = vaddq_u64(a0, vld1q_u64((const uint64_t*)(p + i)));
    a1 = vaddq_u64(a1, vld1q_u64((const uint64_t*)(p + i + 16)));
    a2 = vaddq_u64(a2, vld1q_u64((const uint64_t*)(p + i + 32)));
    a3 = vaddq_u64(a3, vld1q_u64((const uint64_t*)(p + i + 48)));
  }
  a0 = vaddq_u64(vaddq_u64(a0, a1), vaddq_u64(a2, a3));
  return vgetq_lane_u64(a0, 0) + vgetq_lane_u64(a0, 1);
#else
  const uint64_t* q = (const uint64_t*)p;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= n / 8; i += 4) {
    s0 += q[i];
    s1 += q[i + 1];
    s2 += q[i + 2];
    s3 += q[i + 3];
  }
  return s0 + s1 + s2 + s3;
#endif
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Persistent workers, one barrier per pass, each timing itself: the main
 * thread may not run again until they finish when there are as many workers
 * as cores, and thread start-up must not be in the timed region. Pass 0 is a
 * warm-up. */
static void* worker(void* arg) {
  slice_t* s = (slice_t*)arg;
  for (int p = 0; p <= s->passes; ++p) {
    pthread_barrier_wait(s->start);
    s->t0[p] = now_s();
    s->sink += read_slice(s->base, s->bytes);
    s->t1[p] = now_s();
  }
  return NULL;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* `passes` timed passes with T threads over the whole buffer; GB/s (1e9 bytes) per pass. */
static void run(unsigned char* buf, size_t bytes, int T, int passes, double* gbps, uint64_t* sink) {
  pthread_t tid[MAX_THREADS];
  slice_t* sl = (slice_t*)calloc((size_t)T, sizeof(slice_t));
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)T);
  const size_t chunk = (bytes / (size_t)T) & ~(size_t)255; /* keeps every slice 256-byte aligned */
  for (int t = 0; t < T; ++t) {
    sl[t].base = buf + (size_t)t * chunk;
    sl[t].bytes = chunk;
    sl[t].passes = passes;
    sl[t].start = &start;
    pthread_create(&tid[t], NULL, worker, &sl[t]);
  }
  for (int t = 0; t < T; ++t) pthread_join(tid[t], NULL);
  for (int p = 1; p <= passes; ++p) {
    double t0 = sl[0].t0[p], t1 = sl[0].t1[p];
    for (int t = 1; t < T; ++t) {
      if (sl[t].t0[p] < t0) t0 = sl[t].t0[p];
      if (sl[t].t1[p] > t1) t1 = sl[t].t1[p];
    }
    gbps[p - 1] = (double)(chunk * (size_t)T) / (t1 - t0) / 1e9;
  }
  for (int t = 0; t < T; ++t) *sink += sl[t].sink;
  pthread_barrier_destroy(&start);
  free(sl);
}

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
  const int passes = argc > 2 ? atoi(argv[2]) : 7;
  int threads[16] = {1, 2};
  int n_threads = 2;
  if (argc > 3) {
    n_threads = 0;
    for (int i = 3; i < argc && n_threads < 16; ++i) threads[n_threads++] = atoi(argv[i]);
  }
  if (mib == 0 || passes < 1 || passes > MAX_PASSES) {
    fprintf(stderr, "usage: %s [MiB>0] [passes in 1..%d] [threads...]\n", argv[0], MAX_PASSES);
    return 2;
  }
  for (int i = 0; i < n_threads; ++i)
    if (threads[i] < 1 || threads[i] > MAX_THREADS) {
      fprintf(stderr, "thread counts must be in [1, %d]\n", MAX_THREADS);
      return 2;
    }
  const size_t bytes = mib << 20;
  unsigned char* buf = (unsigned char*)aligned_alloc(4096, bytes);
  if (!buf) {
    fprintf(stderr, "cannot allocate %zu MiB\n", mib);
    return 1;
  }
  /* Touch every page (and give it non-zero content) before timing. */
  for (size_t i = 0; i < bytes; i += 8) *(uint64_t*)(buf + i) = i * 0x9E3779B97F4A7C15ull;

  uint64_t sink = 0;
  double* gbps = (double*)malloc(sizeof(double) * (size_t)passes);
  printf("{\"buffer_mib\": %zu, \"passes\": %d, \"results\": [", mib, passes);
  for (int i = 0; i < n_threads; ++i) {
    const int T = threads[i];
    run(buf, bytes, T, passes, gbps, &sink);
    printf("%s{\"threads\": %d, \"samples_gbps\": [", i ? ", " : "", T);
    for (int p = 0; p < passes; ++p) printf("%s%.3f", p ? ", " : "", gbps[p]);
    qsort(gbps, (size_t)passes, sizeof(double), cmp_double);
    printf("], \"best_gbps\": %.3f, \"median_gbps\": %.3f}", gbps[passes - 1], gbps[passes / 2]);
  }
  printf("], \"checksum\": %llu}\n", (unsigned long long)sink);
  free(gbps);
  free(buf);
  return 0;
}
