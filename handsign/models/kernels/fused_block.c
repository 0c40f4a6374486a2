/* ConvBlock's training step after the convolution, in C: BatchNorm (batch statistics) -> ReLU ->
 * Dropout -> 2x2 max-pool, forward and backward, in three passes over the block's activation.
 *
 * handsign/models/kernels/native.py compiles this file with the machine's C compiler on first use (plain C, no torch
 * headers: about a second) and calls it through ctypes; handsign/models/kernels/fused.py holds the same math in torch
 * ops, which is what runs when no compiler is found. Every tensor is a channels-last buffer:
 *   y     (B, H, W, C)   the convolution's output, float32 or bfloat16 (under bf16 autocast)
 *   out   (B, Ho, Wo, C) float32, Ho = H / 2, Wo = W / 2 (floor: an odd last row or column is not pooled)
 *   arg   (B, Ho, Wo, C) uint8, which of the window's 4 elements was the max: 0 1 / 2 3
 * OpenMP threads are torch's own: torch loads libgomp.so.1 first, and this library links the same one.
 * Without OpenMP (a compiler that lacks it) the same code builds and runs on one thread.
 *
 * Speed: every loop runs either over a whole image row (W*C contiguous values) or over channels in
 * groups of LANES, on row buffers whose channels are padded to a multiple of LANES ("padded rows",
 * (W, CP)). A plain loop over 25 channels leaves gcc a scalar remainder with branches, which made a
 * first version 4x slower on the first block than on the second.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define THREAD omp_get_thread_num()
#define MAX_THREADS omp_get_max_threads()
#else
#define THREAD 0
#define MAX_THREADS 1
#endif

#define INLINE static inline __attribute__((always_inline))

INLINE float load(const void *p, long i, int bf16) {
    if (bf16) {  /* bfloat16 is the top half of a float32 */
        union { uint32_t u; float f; } v = { .u = (uint32_t)((const uint16_t *)p)[i] << 16 };
        return v.f;
    }
    return ((const float *)p)[i];
}

INLINE void store(void *p, long i, float x, int bf16) {
    if (bf16) {  /* round to nearest even, as torch does (NaN stays NaN) */
        union { float f; uint32_t u; } v = { .f = x };
        uint32_t u = v.u;
        u = ((u & 0x7fffffffu) > 0x7f800000u) ? (u | 0x00400000u) : u + 0x7fffu + ((u >> 16) & 1u);
        ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
    } else {
        ((float *)p)[i] = x;
    }
}

/* Dropout: element i of the block's (B, H, W, C) buffer is kept unless its 16-bit uniform draw is below
 * `threshold` (= round(p * 65536)); the draws are the four 16-bit lanes of word i / 4, SplitMix64 of the
 * seed and the word's index (little-endian: lane i % 4 is bits 16 * (i % 4) and up). */
INLINE uint64_t splitmix(uint64_t seed, long word) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(word + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

INLINE void accumulate_row(const void *restrict y, int bf16, long p0, long wc, double *restrict s,
                           double *restrict q) {
    for (long j = 0; j < wc; j++) {
        const double v = load(y, p0 + j, bf16);
        s[j] += v;
        q[j] += v * v;
    }
}

/* sum[ch] = the threads' partial sums (threads, 2, n) at every index j with j % c == ch, added in thread
 * order: a run's sums do not depend on which thread finishes first (same seed, same threads: same bits) */
static void reduce_in_order(const double *part, int threads, long n, int c, double *sum, double *sum2) {
    memset(sum, 0, sizeof(double) * c);
    memset(sum2, 0, sizeof(double) * c);
    for (int t = 0; t < threads; t++)
        for (long j = 0; j < n; j++) {
            sum[j % c] += part[(size_t)t * 2 * n + j];
            sum2[j % c] += part[(size_t)t * 2 * n + n + j];
        }
}

/* Per-channel sum and sum of squares of y, as a (rows, W*C) matrix: the inner loop runs over W*C
 * contiguous values (it vectorises; a loop over C alone, 25-75 wide, does not), W is folded at the end. */
INLINE void stats(const void *restrict y, int bf16, long rows, int w, int c, double *restrict sum,
                  double *restrict sumsq) {
    const long wc = (long)w * c;
    const int threads = MAX_THREADS;
    double *part = calloc((size_t)threads * 2 * wc, sizeof(double));  /* each thread's sums, (threads, 2, W*C) */
    #pragma omp parallel num_threads(threads)
    {
        double *restrict s = part + (size_t)THREAD * 2 * wc, *restrict q = s + wc;
        #pragma omp for schedule(static)
        for (long r = 0; r < rows; r++)
            accumulate_row(y, bf16, r * wc, wc, s, q);
    }
    reduce_in_order(part, threads, wc, c, sum, sumsq);
    free(part);
}

void channel_stats_f32(const void *y, long rows, int w, int c, double *sum, double *sumsq) {
    stats(y, 0, rows, w, c, sum, sumsq);
}
void channel_stats_bf16(const void *y, long rows, int w, int c, double *sum, double *sumsq) {
    stats(y, 1, rows, w, c, sum, sumsq);
}

#define LANES 8
/* LANES floats, ints and bytes as gcc/clang vector types: the loops over channel groups are written in
 * them, since gcc leaves the equivalent scalar loops with per-element branches */
typedef float vf __attribute__((vector_size(4 * LANES), aligned(4), may_alias));
typedef int32_t vi __attribute__((vector_size(4 * LANES), aligned(4), may_alias));
typedef uint8_t vb __attribute__((vector_size(LANES), aligned(1), may_alias));
#define V(p) (*(vf *)(p))
INLINE vf masked(vi mask, vf a) { return (vf)(mask & (vi)a); }  /* a where mask (-1), else +0.0 */
INLINE vf select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
INLINE vi bytes_to_ints(const uint8_t *p) { return __builtin_convertvector(*(const vb *)p, vi); }

/* a per-channel vector repeated W times: (W*C), so that a row's loops run over contiguous W*C values */
static float *tile(const float *v, int w, int c) {
    float *t = malloc(sizeof(float) * (size_t)w * c);
    for (int i = 0; i < w; i++)
        memcpy(t + (size_t)i * c, v, sizeof(float) * c);
    return t;
}

INLINE void read_row(const void *restrict y, int bf16, long p0, long n, float *restrict dst) {
    for (long j = 0; j < n; j++)
        dst[j] = load(y, p0 + j, bf16);
}

/* LANES elements of `size` bytes (float or uint8), as one vector move */
INLINE void move(char *restrict dst, const char *restrict src, size_t size) {
    if (size == sizeof(float))
        *(vf *)dst = *(const vf *)src;
    else
        *(vb *)dst = *(const vb *)src;
}

/* (n, c) -> (n, cp) and back. All segments but the last move whole LANES-element vectors: pad reads,
 * and unpad writes, up to cp - c elements into the next segment (rewritten right after), so the padding
 * holds a neighbour's values, never read as channels. The last segment is copied exactly (the tensors'
 * ends), and so is every segment when c < LANES (the overrun would pass the next segment). memcpy of
 * 25 floats per segment was a call per 100 bytes. */
INLINE void pad(const void *restrict src, size_t size, int n, int c, int cp, void *restrict dst) {
    int i = 0;
    if (c >= LANES)
        for (; i < n - 1; i++)
            for (int k = 0; k < cp; k += LANES)
                move((char *)dst + ((size_t)i * cp + k) * size, (const char *)src + ((size_t)i * c + k) * size, size);
    for (; i < n; i++) {
        memcpy((char *)dst + (size_t)i * cp * size, (const char *)src + (size_t)i * c * size, (size_t)c * size);
        memset((char *)dst + ((size_t)i * cp + c) * size, 0, (size_t)(cp - c) * size);
    }
}
INLINE void unpad(const void *restrict src, size_t size, int n, int c, int cp, void *restrict dst) {
    int i = 0;
    if (c >= LANES)
        for (; i < n - 1; i++)
            for (int k = 0; k < cp; k += LANES)
                move((char *)dst + ((size_t)i * c + k) * size, (const char *)src + ((size_t)i * cp + k) * size, size);
    for (; i < n; i++)
        memcpy((char *)dst + (size_t)i * c * size, (const char *)src + (size_t)i * cp * size, (size_t)c * size);
}

/* one image row of the normalised, dropped-out values: a[j] = keep ? scale * y + shift : 0 over W*C */
INLINE void normalised_row(const void *restrict y, int bf16, long p0, long wc, const float *restrict scale_w,
                           const float *restrict shift_w, const uint8_t *restrict keep, uint64_t seed,
                           uint32_t threshold, uint16_t *restrict draws, float *restrict a) {
    for (long j = 0; j < wc; j++)
        a[j] = scale_w[j] * load(y, p0 + j, bf16) + shift_w[j];
    if (keep) {
        for (long j = 0; j < wc; j++)
            a[j] = keep[p0 + j] ? a[j] : 0.0f;
    } else if (threshold) {
        const long first = p0 >> 2, last = (p0 + wc - 1) >> 2;
        uint64_t *restrict words = (uint64_t *)draws;
        for (long k = first; k <= last; k++)
            words[k - first] = splitmix(seed, k);
        const long off = p0 & 3;  /* the row may start mid-word */
        for (long j = 0; j < wc; j++)
            a[j] = draws[off + j] >= threshold ? a[j] : 0.0f;
    }
}

/* out = keep_scale * relu(max over each 2x2 window of dropout(scale * y + shift)), arg = the max's place.
 * A dropped element is 0, which the ReLU after the pool treats as any value <= 0. Ties go to the first
 * element in row-major order, as torch's max_pool2d does. keep: (B, H, W, C) bytes, or NULL to draw. */
INLINE void forward(const void *restrict y, int bf16, int b, int h, int w, int c, const float *scale,
                    const float *shift, const uint8_t *restrict keep, uint64_t seed, uint32_t threshold,
                    float keep_scale, float *restrict out, uint8_t *restrict arg) {
    const int ho = h / 2, wo = w / 2, cp = (c + LANES - 1) / LANES * LANES;
    const long wc = (long)w * c;
    float *scale_w = tile(scale, w, c), *shift_w = tile(shift, w, c);
    #pragma omp parallel
    {
        float *restrict a = malloc(sizeof(float) * wc);
        float *restrict top = malloc(sizeof(float) * 2 * w * cp), *restrict bottom = top + (long)w * cp;
        float *restrict o = malloc(sizeof(float) * wo * cp);
        uint8_t *restrict g = malloc((size_t)wo * cp);
        uint16_t *draws = malloc(sizeof(uint64_t) * (wc / 4 + 2));
        #pragma omp for schedule(static)
        for (long row = 0; row < (long)b * ho; row++) {
            const long bi = row / ho, i = row % ho, p0 = (bi * h + 2 * i) * wc;
            normalised_row(y, bf16, p0, wc, scale_w, shift_w, keep, seed, threshold, draws, a);
            pad(a, sizeof(float), w, c, cp, top);
            normalised_row(y, bf16, p0 + wc, wc, scale_w, shift_w, keep, seed, threshold, draws, a);
            pad(a, sizeof(float), w, c, cp, bottom);
            for (int j = 0; j < wo; j++)
                for (int ch = 0; ch < cp; ch += LANES)
                {
                    const long q = (2L * j) * cp + ch;
                    const vf v0 = V(top + q), v1 = V(top + q + cp), v2 = V(bottom + q), v3 = V(bottom + q + cp);
                    /* a NaN wins, as in torch's max_pool2d: a diverged run shows, it is not pooled away */
                    const vf m01 = select((v1 > v0) | (v1 != v1), v1, v0);
                    const vf m23 = select((v3 > v2) | (v3 != v3), v3, v2);
                    const vf m = select((m23 > m01) | (m23 != m23), m23, m01);
                    /* the first element equal to the max, as torch picks it */
                    const vi n0 = (v0 != m) & 1, n1 = (v1 != m) & 1, n2 = (v2 != m) & 1;
                    *(vb *)(g + j * cp + ch) = __builtin_convertvector(n0 * (1 + n1 * (1 + n2)), vb);
                    V(o + j * cp + ch) = masked((m > 0.0f) | (m != m), m) * keep_scale;
                }
            unpad(o, sizeof(float), wo, c, cp, out + row * wo * c);
            unpad(g, 1, wo, c, cp, arg + row * wo * c);
        }
        free(a);
        free(top);
        free(o);
        free(g);
        free(draws);
    }
    free(scale_w);
    free(shift_w);
}

void pool_forward_f32(const void *y, int b, int h, int w, int c, const float *scale, const float *shift,
                      const uint8_t *keep, uint64_t seed, uint32_t threshold, float keep_scale, float *out,
                      uint8_t *arg) {
    forward(y, 0, b, h, w, c, scale, shift, keep, seed, threshold, keep_scale, out, arg);
}
void pool_forward_bf16(const void *y, int b, int h, int w, int c, const float *scale, const float *shift,
                       const uint8_t *keep, uint64_t seed, uint32_t threshold, float keep_scale, float *out,
                       uint8_t *arg) {
    forward(y, 1, b, h, w, c, scale, shift, keep, seed, threshold, keep_scale, out, arg);
}

/* a pooled row of g = keep_scale * grad_out where out > 0, else 0 (padded, (Wo, CP)), and of arg */
INLINE void pooled_row(const float *restrict grad_out, const float *restrict out, const uint8_t *restrict arg,
                       long o0, int wo, int c, int cp, float keep_scale, float *restrict tmp, float *restrict g,
                       uint8_t *restrict k) {
    const long n = (long)wo * c;
    for (long j = 0; j < n; j++)
        tmp[j] = out[o0 + j] > 0.0f ? grad_out[o0 + j] * keep_scale : 0.0f;
    pad(tmp, sizeof(float), wo, c, cp, g);
    pad(arg + o0, 1, wo, c, cp, k);
}

/* Backward, pass 1 (pooled resolution): per-channel sums of g and of g * y at each window's max (the
 * caller turns the second into the sum of g * xhat). */
INLINE void backward_sums(const void *restrict y, int bf16, int b, int h, int w, int c,
                          const float *restrict grad_out, const float *restrict out, const uint8_t *restrict arg,
                          float keep_scale, double *restrict sum_g, double *restrict sum_gy) {
    const int ho = h / 2, wo = w / 2, cp = (c + LANES - 1) / LANES * LANES;
    const long wc = (long)w * c;
    const int threads = MAX_THREADS;
    double *part = calloc((size_t)threads * 2 * cp, sizeof(double));  /* each thread's sums, (threads, 2, CP) */
    #pragma omp parallel num_threads(threads)
    {
        float *restrict tmp = malloc(sizeof(float) * wc);
        float *restrict top = malloc(sizeof(float) * 2 * w * cp), *restrict bottom = top + (long)w * cp;
        float *restrict g = malloc(sizeof(float) * wo * cp);
        uint8_t *restrict k = malloc((size_t)wo * cp);
        float *restrict s = calloc(2 * (size_t)cp, sizeof(float)), *restrict q = s + cp;
        double *restrict sd = part + (size_t)THREAD * 2 * cp, *restrict qd = sd + cp;
        #pragma omp for schedule(static)
        for (long row = 0; row < (long)b * ho; row++) {
            const long bi = row / ho, i = row % ho, p0 = (bi * h + 2 * i) * wc;
            read_row(y, bf16, p0, wc, tmp);
            pad(tmp, sizeof(float), w, c, cp, top);
            read_row(y, bf16, p0 + wc, wc, tmp);
            pad(tmp, sizeof(float), w, c, cp, bottom);
            pooled_row(grad_out, out, arg, row * wo * c, wo, c, cp, keep_scale, tmp, g, k);
            for (int j = 0; j < wo; j++)
                for (int ch = 0; ch < cp; ch += LANES)
                {
                    const long p = (2L * j) * cp + ch, o = (long)j * cp + ch;
                    const vi kk = bytes_to_ints(k + o);
                    const vf v = masked(kk == 0, V(top + p)) + masked(kk == 1, V(top + p + cp))
                                 + masked(kk == 2, V(bottom + p)) + masked(kk == 3, V(bottom + p + cp));
                    V(s + ch) += V(g + o);
                    V(q + ch) += V(g + o) * v;
                }
            for (int ch = 0; ch < cp; ch++) {  /* float sums over one pooled row, then into doubles */
                sd[ch] += s[ch];
                qd[ch] += q[ch];
                s[ch] = q[ch] = 0.0f;
            }
        }
        free(tmp);
        free(top);
        free(g);
        free(k);
        free(s);
    }
    memset(sum_g, 0, sizeof(double) * c);
    memset(sum_gy, 0, sizeof(double) * c);
    for (int t = 0; t < threads; t++)  /* in thread order, as reduce_in_order */
        for (int ch = 0; ch < c; ch++) {
            sum_g[ch] += part[(size_t)t * 2 * cp + ch];
            sum_gy[ch] += part[(size_t)t * 2 * cp + cp + ch];
        }
    free(part);
}

void backward_sums_f32(const void *y, int b, int h, int w, int c, const float *grad_out, const float *out,
                       const uint8_t *arg, float keep_scale, double *sum_g, double *sum_gy) {
    backward_sums(y, 0, b, h, w, c, grad_out, out, arg, keep_scale, sum_g, sum_gy);
}
void backward_sums_bf16(const void *y, int b, int h, int w, int c, const float *grad_out, const float *out,
                        const uint8_t *arg, float keep_scale, double *sum_g, double *sum_gy) {
    backward_sums(y, 1, b, h, w, c, grad_out, out, arg, keep_scale, sum_g, sum_gy);
}

/* grad row = k0 + k1 * y over W*C values, written padded into dst (W, CP) */
INLINE void affine_row(const void *restrict y, int bf16, long p0, long wc, const float *restrict k0_w,
                       const float *restrict k1_w, int w, int c, int cp, float *restrict tmp, float *restrict dst) {
    for (long j = 0; j < wc; j++)
        tmp[j] = k0_w[j] + k1_w[j] * load(y, p0 + j, bf16);
    pad(tmp, sizeof(float), w, c, cp, dst);
}

INLINE void store_row(const float *restrict src, int w, int c, int cp, float *restrict tmp, void *restrict grad,
                      long p0, int bf16) {
    unpad(src, sizeof(float), w, c, cp, tmp);
    for (long j = 0; j < (long)w * c; j++)
        store(grad, p0 + j, tmp[j], bf16);
}

/* Backward, pass 2 (full resolution): grad_y = k0 + k1 * y everywhere (BatchNorm's mean and variance
 * terms), plus scale * g at each window's max. An odd last row or column gets the first part only. */
INLINE void backward_grad(const void *restrict y, int bf16, int b, int h, int w, int c,
                          const float *restrict grad_out, const float *restrict out, const uint8_t *restrict arg,
                          float keep_scale, const float *scale, const float *k0, const float *k1,
                          void *restrict grad) {
    const int ho = h / 2, wo = w / 2, cp = (c + LANES - 1) / LANES * LANES;
    const long wc = (long)w * c;
    float *k0_w = tile(k0, w, c), *k1_w = tile(k1, w, c);
    float *scale_p = calloc(cp, sizeof(float));
    memcpy(scale_p, scale, sizeof(float) * c);
    #pragma omp parallel
    {
        float *restrict tmp = malloc(sizeof(float) * wc);
        float *restrict top = malloc(sizeof(float) * 2 * w * cp), *restrict bottom = top + (long)w * cp;
        float *restrict g = malloc(sizeof(float) * wo * cp);
        uint8_t *restrict k = malloc((size_t)wo * cp);
        #pragma omp for schedule(static)
        for (long row = 0; row < (long)b * ho; row++) {  /* image rows 2i and 2i + 1 */
            const long bi = row / ho, i = row % ho, p0 = (bi * h + 2 * i) * wc;
            affine_row(y, bf16, p0, wc, k0_w, k1_w, w, c, cp, tmp, top);
            affine_row(y, bf16, p0 + wc, wc, k0_w, k1_w, w, c, cp, tmp, bottom);
            pooled_row(grad_out, out, arg, row * wo * c, wo, c, cp, keep_scale, tmp, g, k);
            for (int j = 0; j < wo; j++)
                for (int ch = 0; ch < cp; ch += LANES)
                {
                    const long p = (2L * j) * cp + ch, o = (long)j * cp + ch;
                    const vf d = V(scale_p + ch) * V(g + o);
                    const vi kk = bytes_to_ints(k + o);
                    V(top + p) += masked(kk == 0, d);
                    V(top + p + cp) += masked(kk == 1, d);
                    V(bottom + p) += masked(kk == 2, d);
                    V(bottom + p + cp) += masked(kk == 3, d);
                }
            store_row(top, w, c, cp, tmp, grad, p0, bf16);
            store_row(bottom, w, c, cp, tmp, grad, p0 + wc, bf16);
        }
        #pragma omp for schedule(static)
        for (long bi = 0; bi < (h & 1 ? b : 0); bi++) {  /* an odd last row: no window reaches it */
            const long p0 = (bi * h + h - 1) * wc;
            for (long j = 0; j < wc; j++)
                store(grad, p0 + j, k0_w[j] + k1_w[j] * load(y, p0 + j, bf16), bf16);
        }
        free(tmp);
        free(top);
        free(g);
        free(k);
    }
    free(k0_w);
    free(k1_w);
    free(scale_p);
}

void backward_grad_f32(const void *y, int b, int h, int w, int c, const float *grad_out, const float *out,
                       const uint8_t *arg, float keep_scale, const float *scale, const float *k0, const float *k1,
                       void *grad) {
    backward_grad(y, 0, b, h, w, c, grad_out, out, arg, keep_scale, scale, k0, k1, grad);
}
void backward_grad_bf16(const void *y, int b, int h, int w, int c, const float *grad_out, const float *out,
                        const uint8_t *arg, float keep_scale, const float *scale, const float *k0, const float *k1,
                        void *grad) {
    backward_grad(y, 1, b, h, w, c, grad_out, out, arg, keep_scale, scale, k0, k1, grad);
}

int omp_threads(void) {  /* 1 where the compiler has no OpenMP (Apple's clang): the pragmas are ignored */
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
