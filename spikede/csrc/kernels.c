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
enum { CHUNK = 512 };  /* values per tile: a block's rows of one tile stay in the core's cache */

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
