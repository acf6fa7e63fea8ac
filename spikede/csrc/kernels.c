/* spikede's compiled kernels (built and loaded by spikede.solvers.native).
 *
 * Two families, each instantiated for float (suffix _f32) and double (_f64):
 *   lif_blocks_body.h  blocks of steps of the fractional LIF recurrence and its adjoint (spikede.fused);
 *   fde_body.h         one explicit gl / l1 step of fdeint's blocked loop (spikede.solvers.blocks);
 *   lags_body.h        the near history of a step (lags inside the block), which both use.
 * In both the far history of a block (rows before it) is one matrix product done by the caller and
 * handed in as `far`; the kernels add the near lags (rows inside the block) and do the update.
 * Arrays are contiguous, row-major, `m` values per step.
 */
#include <math.h>

enum { RESET_SUBTRACT = 0, RESET_ZERO = 1, RESET_NONE = 2 };
#define SPIKEDE_PI 3.14159265358979323846
/* the built-in surrogate bumps, numbered as SurrogateSpec.native */
enum { BUMP_GIVEN = 0, BUMP_SIGMOID = 1, BUMP_ARCTAN = 2, BUMP_LINEAR = 3, BUMP_GAUSSIAN = 4 };
enum { CHUNK = 512 };  /* values per tile: a block's rows of one tile stay in the core's cache (a multiple of 8) */

/* exp(x) in a form the compiler vectorises (libm's exp is one call per value): x = n ln 2 + r with
   |r| <= ln(2)/2 (n by the round-to-nearest of adding 1.5 * 2^52; ln 2 in two parts, Cody & Waite),
   e^r by its Taylor series to r^13 (remainder below 5e-18 relative), times 2^n built in the
   exponent bits (as 2 * 2^(n-1), so that n = 1024 near the top still fits).  Within 1 ulp of
   exp on [-708, 709.78]; 0 below (where exp is subnormal), infinity above, NaN for NaN.  The
   selects vectorise because the build passes -fno-trapping-math (spikede.solvers.native). */
static inline double vector_exp(double x)
{
    const double shift = 0x1.8p52, log2e = 1.4426950408889634, ln2_hi = 0x1.62e42fefa39efp-1,
                 ln2_lo = 0x1.abc9e3b39803fp-56;
    double c = x < -708.0 ? -708.0 : x;  /* NaN stays NaN */
    c = c > 709.78 ? 709.78 : c;
    const double shifted = c * log2e + shift;
    const double n = shifted - shift;
    const double r = (c - n * ln2_hi) - n * ln2_lo;
    double e = 1.0 / 6227020800.0;  /* 1/13! */
    e = e * r + 1.0 / 479001600.0;
    e = e * r + 1.0 / 39916800.0;
    e = e * r + 1.0 / 3628800.0;
    e = e * r + 1.0 / 362880.0;
    e = e * r + 1.0 / 40320.0;
    e = e * r + 1.0 / 5040.0;
    e = e * r + 1.0 / 720.0;
    e = e * r + 1.0 / 120.0;
    e = e * r + 1.0 / 24.0;
    e = e * r + 1.0 / 6.0;
    e = e * r + 0.5;
    e = e * r + 1.0;
    e = e * r + 1.0;
    long long bits;
    __builtin_memcpy(&bits, &shifted, sizeof bits);  /* n in the low bits of the shifted value */
    bits = (bits + 1022) << 52;
    double half_scale;
    __builtin_memcpy(&half_scale, &bits, sizeof half_scale);
    double y = (e + e) * half_scale;
    y = x < -708.0 ? 0.0 : y;
    return x > 709.78 ? (double)INFINITY : y;
}

#define CONCAT(a, b) a##_##b
#define EXPAND(a, b) CONCAT(a, b)
#define NAME(f) EXPAND(f, SUFFIX)

#define T float
#define SUFFIX f32
#include "lags_body.h"
#include "lif_blocks_body.h"
#include "fde_body.h"
#undef T
#undef SUFFIX

#define T double
#define SUFFIX f64
#include "lags_body.h"
#include "lif_blocks_body.h"
#include "fde_body.h"
#undef T
#undef SUFFIX
