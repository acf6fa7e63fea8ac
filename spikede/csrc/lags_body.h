/* The near history of one step over a tile of n values, for one element type T; included by
   kernels.c once per type, before the kernels that use it:

     acc[k] += sum_{j=1..lags} W_j row_j[k],   row_j = origin + j * step,

   four lags per pass over acc (a quarter of its loads and stores). */
static inline void NAME(add_lags)(T *restrict acc, long n, const T *restrict W, long lags, const T *origin, long step)
{
    long j = 1;
    for (; j + 3 <= lags; j += 4) {
        const T w0 = W[j], w1 = W[j + 1], w2 = W[j + 2], w3 = W[j + 3];
        const T *restrict u0 = origin + j * step;
        const T *restrict u1 = u0 + step, *restrict u2 = u0 + 2 * step, *restrict u3 = u0 + 3 * step;
        for (long k = 0; k < n; ++k) acc[k] += w0 * u0[k] + w1 * u1[k] + w2 * u2[k] + w3 * u3[k];
    }
    for (; j <= lags; ++j) {
        const T w = W[j];
        const T *restrict u = origin + j * step;
        for (long k = 0; k < n; ++k) acc[k] += w * u[k];
    }
}
