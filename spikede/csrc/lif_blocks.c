/* Block kernels of the fractional LIF recurrence (spikede.fused).
 *
 * One call runs `b` consecutive time steps of `m` independent neurons: the near history
 * (lags inside the block), the scheme's update, the spike and the reset -- and, backwards, the
 * same steps of the discrete adjoint.  The far history of the block (rows before it) is one
 * matrix product done by the caller and handed in as `far`: the row of the block's step k is at
 * far + k * far_step (far_step = -m walks a buffer whose rows lie in reverse step order).  All
 * other arrays are contiguous, row-major, `m` values per step.
 *
 * Scheme (DESIGN.md; spikede/solvers/schemes.py):  H_n = sum_j W_j u_{n-j},
 *   gl:  p_n = v_rest  - H_n + c F_n,  u_n = v_n - v_rest
 *   l1:  p_n = v_{n-1} - H_n + c F_n,  u_n = v_n - v_{n-1}
 * with F_n = (I_n - (v_{n-1} - v_rest)) / tau (leaky) or I_n / tau, the spike
 * s_n = H(p_n - theta) (H(0) = 1, H(NaN) = NaN) and the reset v_n = p_n - theta s_n
 * ('subtract'), (1 - s_n) p_n + s_n v_reset ('zero') or p_n ('none').
 */
#include <math.h>

enum { RESET_SUBTRACT = 0, RESET_ZERO = 1, RESET_NONE = 2 };
enum { CHUNK = 512 };  /* neurons per tile: a block's rows of one tile stay in the core's cache */

#define CONCAT(a, b) a##_##b
#define EXPAND(a, b) CONCAT(a, b)
#define NAME(f) EXPAND(f, SUFFIX)

#define T float
#define SUFFIX f32
#include "lif_blocks_body.h"
#undef T
#undef SUFFIX

#define T double
#define SUFFIX f64
#include "lif_blocks_body.h"
#undef T
#undef SUFFIX
