/* One explicit step of fdeint's blocked loop for the schemes that store the state's own history
   (spikede/solvers/schemes.py), for one element type T; included by kernels.c once per type.

   Step n = n0 + i of a block that starts at n0, for a state of m values:
     H   = far + sum_{j=1..i} W_j u_{n-j}      (u_{n0} .. u_{n-1}: rows 0 .. i-1 of `block`)
     u_n = c F - H                             (written to row i of `block`)
     y_n = base + u_n                          (base: y_0 for gl, y_{n-1} for l1)
   with F = f(t_{n-1}, y_{n-1}) evaluated by the caller.  Returns 1 if y_n has a value that is not
   finite, else 0. */
int NAME(fde_step)(long i, long m, const T *restrict far, const T *restrict W, T *restrict block,
                   const T *restrict F, const T *restrict base, T *restrict y, double c_)
{
    const T c = (T)c_;
    T acc[CHUNK];
    T poison = 0;  /* sum of 0 * y: 0 while every y is finite, NaN once one is not */
    for (long lo = 0; lo < m; lo += CHUNK) {
        const long n = m - lo < CHUNK ? m - lo : CHUNK;
        for (long k = 0; k < n; ++k) acc[k] = far[lo + k];
        NAME(add_lags)(acc, n, W, i, block + i * m + lo, -m);
        T *restrict out = block + i * m + lo;
        for (long k = 0; k < n; ++k) {
            const T u = c * F[lo + k] - acc[k];
            const T v = base[lo + k] + u;
            out[k] = u;
            y[lo + k] = v;
            poison += (T)0 * v;
        }
    }
    return poison != poison;
}
