/* Block kernels of the fractional LIF recurrence (spikede.fused), for one element type T;
   included by kernels.c once per type, NAME(f) giving f its type suffix.

   One call runs `b` consecutive time steps of `m` independent neurons: the near history (lags
   inside the block), the scheme's update, the spike and the reset -- and, backwards, the same
   steps of the discrete adjoint.  The row of the far history of the block's step k is at
   far + k * far_step (far_step = -m walks a buffer whose rows lie in reverse step order).

   Scheme (DESIGN.md; spikede/solvers/schemes.py):  H_n = sum_j W_j u_{n-j},
     gl:  p_n = v_rest  - H_n + c F_n,  u_n = v_n - v_rest
     l1:  p_n = v_{n-1} - H_n + c F_n,  u_n = v_n - v_{n-1}
   with F_n = (I_n - (v_{n-1} - v_rest)) / tau (leaky) or I_n / tau, the spike
   s_n = H(p_n - theta) (H(0) = 1, H(NaN) = NaN) and the reset v_n = p_n - theta s_n
   ('subtract'), (1 - s_n) p_n + s_n v_reset ('zero') or p_n ('none').

   Pointers are `restrict`: the caller passes distinct buffers (a buffer that is read and
   written, such as `rows` or `g`, is one pointer), which lets the compiler vectorise every loop
   over neurons; so does -fno-trapping-math (spikede.solvers.native), without which the selects on
   the reset and the flags are branches. */

/* Forward: steps n0 .. n0+b-1.  rows: u_{n0} .. u_{n0+b-1} are written there (near lags read
   back); v: v_{n0-1} in, v_{n0+b-1} out; spikes, proposed, membrane: [b, m] (last two may be
   NULL); bits: [b, ceil(m / 8)] bytes, the spikes eight to a byte as SpikeBits keeps them (bit
   i % 8 of byte i / 8 is neuron i; a NaN spike is 0). */
void NAME(lif_forward)(long b, long m, long far_step, const T *restrict far, const T *restrict x,
                       const T *restrict W, T *restrict rows, T *restrict v, T *restrict spikes,
                       T *restrict proposed, T *restrict membrane, unsigned char *restrict bits, double c_,
                       double tau_, double theta_, double v_rest_, double v_reset_, int leak, int l1, int reset)
{
    const long row_bytes = (m + 7) / 8;
    const T c = (T)c_, tau = (T)tau_, theta = (T)theta_, v_rest = (T)v_rest_, v_reset = (T)v_reset_;
    T acc[CHUNK];
    for (long lo = 0; lo < m; lo += CHUNK) {  /* a chunk of neurons through all b steps: its rows stay in cache */
        const long n = m - lo < CHUNK ? m - lo : CHUNK;
        for (long k = 0; k < b; ++k) {
            const T *restrict f = far + k * far_step + lo;
            for (long i = 0; i < n; ++i) acc[i] = f[i];
            NAME(add_lags)(acc, n, W, k, rows + k * m + lo, -m);
            const long o = k * m + lo;
            T *restrict vv = v + lo;
            T *restrict p_out = proposed ? proposed + o : acc;  /* acc is free once read */
            for (long i = 0; i < n; ++i) {
                const T v_prev = vv[i];
                const T drive = leak ? (x[o + i] - (v_prev - v_rest)) / tau : x[o + i] / tau;
                const T p = ((l1 ? v_prev : v_rest) - acc[i]) + c * drive;
                const T d = p - theta;
                const T s = d >= (T)0 ? (T)1 : (d < (T)0 ? (T)0 : (T)NAN);  /* H(0) = 1, H(NaN) = NaN */
                const T v_new = reset == RESET_SUBTRACT ? p - theta * s
                              : reset == RESET_ZERO ? ((T)1 - s) * p + s * v_reset : p;
                rows[o + i] = v_new - (l1 ? v_prev : v_rest);
                spikes[o + i] = s;
                p_out[i] = p;
                vv[i] = v_new;
            }
            if (membrane)
                for (long i = 0; i < n; ++i) membrane[o + i] = vv[i];
            unsigned char *restrict packed = bits + k * row_bytes + lo / 8;  /* lo: a multiple of CHUNK */
            const T *restrict fired = spikes + o;
            for (long j = 0; j < n / 8; ++j) {  /* whole bytes: eight compares the compiler vectorises */
                const T *restrict e = fired + 8 * j;
                packed[j] = (unsigned char)((e[0] == (T)1) | (e[1] == (T)1) << 1 | (e[2] == (T)1) << 2
                                            | (e[3] == (T)1) << 3 | (e[4] == (T)1) << 4 | (e[5] == (T)1) << 5
                                            | (e[6] == (T)1) << 6 | (e[7] == (T)1) << 7);
            }
            if (n % 8) {  /* the last, partial byte */
                unsigned int byte = 0;
                for (long q = 0; q < n % 8; ++q) byte |= (unsigned int)(fired[n - n % 8 + q] == (T)1) << q;
                packed[n / 8] = (unsigned char)byte;
            }
        }
    }
}

/* The reverse sweep's view of step n = n_bot + q of a block, for the n values of a chunk at
   neuron lo: the post-reset potential v_n (in `v`, which then becomes v_{n-1}), the previous one
   v_{n-1}, the spike s_n (bit (lo + i) % 8 of byte (lo + i) / 8 of `bits_q`; a NaN spike was
   stored as 0) and the proposed potential p_n: v_n + theta s_n ('subtract'), v_n ('none') or
   the kept `proposed_q` ('zero').  Stored rows: gl u_{n-1} = v_{n-1} - v_rest (`u_prev`),
   l1 u_n = v_n - v_{n-1} (`u_now`). */
static inline void NAME(step_state)(long n, long lo, const T *restrict u_prev, const T *restrict u_now,
                                    const unsigned char *restrict bits_q, const T *restrict proposed_q,
                                    T *restrict v, T *restrict v_prev, T *restrict s, T *restrict p,
                                    T theta, T v_rest, int l1, int reset)
{
    const T lift = reset == RESET_SUBTRACT ? theta : (T)0;
    for (long i = 0; i < n; ++i) {
        const T v_now = v[i];
        const T before = l1 ? v_now - u_now[i] : u_prev[i] + v_rest;
        const T spike = (T)((bits_q[(lo + i) >> 3] >> ((lo + i) & 7)) & 1);
        s[i] = spike;
        p[i] = reset == RESET_ZERO ? proposed_q[i] : v_now + lift * spike;
        v_prev[i] = before;
        v[i] = before;
    }
}

/* The proposed potentials p of a block's b steps ([b, m], natural order), as lif_backward sees
   them (step_state), for a surrogate whose bumps the caller computes.  u: rows u_{n_bot-1} ..
   u_{n_top}; v_top: v_{n_top}; proposed: the kept ones ('zero'), else NULL. */
void NAME(lif_proposed)(long b, long m, long row_bytes, const unsigned char *restrict bits, const T *restrict u,
                        const T *restrict v_top, const T *restrict proposed, T *restrict p, double theta_,
                        double v_rest_, int l1, int reset)
{
    T v[CHUNK], v_prev[CHUNK], s[CHUNK];
    for (long lo = 0; lo < m; lo += CHUNK) {
        const long n = m - lo < CHUNK ? m - lo : CHUNK;
        for (long i = 0; i < n; ++i) v[i] = v_top[lo + i];
        for (long q = b - 1; q >= 0; --q)
            NAME(step_state)(n, lo, u + q * m + lo, u + (q + 1) * m + lo, bits + q * row_bytes,
                             proposed ? proposed + q * m + lo : 0, v, v_prev, s, p + q * m + lo, (T)theta_,
                             (T)v_rest_, l1, reset);
    }
}

/* The surrogate bumps sigma'(p - theta) of n potentials, for the built-in surrogates (spikede.surrogate;
   the same formulas, kind = SurrogateSpec.native, scale its kappa, gamma or sigma). */
static void NAME(surrogate_bumps)(T *restrict out, const T *restrict p, long n, T theta, double scale, int kind)
{
    if (kind == BUMP_SIGMOID) {
        const T k = (T)scale;
        for (long i = 0; i < n; ++i) {
            const T s = (T)(1.0 / (1.0 + vector_exp(-(double)(k * (p[i] - theta)))));
            out[i] = k * s * ((T)1 - s);
        }
    } else if (kind == BUMP_ARCTAN) {
        const T a = (T)(0.5 * SPIKEDE_PI * scale), top = (T)(0.5 * scale);
        for (long i = 0; i < n; ++i) {
            const T z = a * (p[i] - theta);
            out[i] = top / ((T)1 + z * z);
        }
    } else if (kind == BUMP_LINEAR) {
        const T width = (T)scale, height = (T)(0.5 / scale);
        for (long i = 0; i < n; ++i) out[i] = fabs((double)(p[i] - theta)) <= (double)width ? height : (T)0;
    } else {  /* BUMP_GAUSSIAN */
        const T a = (T)(-0.5 / (scale * scale)), height = (T)(1.0 / (sqrt(2.0 * SPIKEDE_PI) * scale));
        for (long i = 0; i < n; ++i) {
            const T x = p[i] - theta;
            out[i] = (T)vector_exp((double)(x * x * a)) * height;
        }
    }
}

/* Reverse sweep over steps n_top = n_bot+b-1 down to n_bot.  g: the input gradients G_n of the
   block's steps (row q = step n_bot + q), written here, near lags read back; far (row q at
   far + q * far_step) holds sum_j W_j G_{n+j} over the steps after the block.  The states come
   from what the forward kept (step_state): bits [b, row_bytes] (the spikes), u: rows u_{n_bot-1}
   .. u_{n_top}, v_top: v_{n_top} in, v_{n_bot-1} out (the next block's), proposed [b, m] for
   'zero' (else NULL).  bump: [b, m] if bump_kind is BUMP_GIVEN (else NULL: the bumps are computed
   here with bump_scale); g_spikes [b, m]; x [b, m] or NULL unless the drive is needed;
   carry: [m] in/out.  partials: [3, m] float64, per neuron += the threshold gradient,
   sum g_f * drive and sum g_p * drive (the caller adds them up once, after the sweep). */
void NAME(lif_backward)(long b, long m, long far_step, long row_bytes, const T *restrict far, const T *restrict W,
                        T *restrict g, const unsigned char *restrict bits, const T *restrict u,
                        T *restrict v_top, const T *restrict proposed, const T *restrict bump,
                        const T *restrict g_spikes, const T *restrict x,
                        T *restrict carry, double *restrict partials, double c_, double tau_,
                        double theta_, double v_rest_, double v_reset_, double to_history_, double bump_scale,
                        int leak, int l1, int reset, int detach_reset, int bump_kind)
{
    const T c = (T)c_, tau = (T)tau_, theta = (T)theta_, v_rest = (T)v_rest_, v_reset = (T)v_reset_;
    const T to_history = (T)to_history_;
    T acc[CHUNK], bumps[CHUNK], v[CHUNK], v_prev[CHUNK], s[CHUNK], p[CHUNK];
    for (long lo = 0; lo < m; lo += CHUNK) {
        const long n = m - lo < CHUNK ? m - lo : CHUNK;
        double *restrict part_theta = partials + lo;
        double *restrict part_tau = partials + m + lo;
        double *restrict part_coef = partials + 2 * m + lo;
        T *restrict cc = carry + lo;
        for (long i = 0; i < n; ++i) v[i] = v_top[lo + i];
        for (long q = b - 1; q >= 0; --q) {
            const T *restrict f = far + q * far_step + lo;
            for (long i = 0; i < n; ++i) acc[i] = f[i];
            NAME(add_lags)(acc, n, W, b - 1 - q, g + q * m + lo, m);
            const long o = q * m + lo;
            NAME(step_state)(n, lo, u + o, u + o + m, bits + q * row_bytes, proposed ? proposed + o : 0, v, v_prev,
                             s, p, theta, v_rest, l1, reset);
            const T *restrict bq = bump_kind == BUMP_GIVEN ? bump + o : bumps;
            if (bump_kind != BUMP_GIVEN) NAME(surrogate_bumps)(bumps, p, n, theta, bump_scale, bump_kind);
            for (long i = 0; i < n; ++i) {
                const T mu = to_history * acc[i];
                const T g_v = cc[i] + mu;
                const T sq = s[i], pq = p[i];
                const T dv_dp = reset == RESET_ZERO ? (T)1 - sq : (T)1;
                const T dv_ds = reset == RESET_SUBTRACT ? -theta : reset == RESET_ZERO ? v_reset - pq : (T)0;
                const T dv_dtheta = reset == RESET_SUBTRACT ? -sq : (T)0;
                const T g_spike = detach_reset ? g_spikes[o + i] : g_spikes[o + i] + g_v * dv_ds;
                const T pulled = g_spike * bq[i];
                const T g_p = g_v * dv_dp + pulled;
                part_theta[i] += (double)(g_v * dv_dtheta) - (double)pulled;
                const T g_in = (c * g_p) / tau;
                cc[i] = (l1 ? g_p - mu : (T)0) - (leak ? g_in : (T)0);
                g[o + i] = g_in;
                acc[i] = g_p;  /* read above; kept for the drive sums */
            }
            if (x) {
                for (long i = 0; i < n; ++i) {
                    const T g_p = acc[i];
                    const T drive = leak ? x[o + i] - (v_prev[i] - v_rest) : x[o + i];
                    part_tau[i] += (double)((c * g_p) * drive);
                    part_coef[i] += (double)(g_p * drive);
                }
            }
        }
        for (long i = 0; i < n; ++i) v_top[lo + i] = v[i];
    }
}
