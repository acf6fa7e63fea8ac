"""Independent high-precision references (mpmath), used only by the tests."""

import mpmath


def mittag_leffler_mp(z: float, a: float, b: float = 1.0) -> float:
    """E_{a,b}(z) for real z: power series at high precision where |z|^(1/a) <= 50,
    otherwise the asymptotic expansion cut at its smallest term (about e^-x, x = |z|^(1/a) > 50)."""
    x = abs(z) ** (1.0 / a)
    if x <= 50.0:
        with mpmath.workdps(int(x / 2.3) + 40):
            zz, aa, bb = mpmath.mpf(z), mpmath.mpf(a), mpmath.mpf(b)
            total = mpmath.mpf(0)
            k_max = int((2.0 * x + 120.0) / a) + 10
            for k in range(k_max):
                total += zz**k * mpmath.rgamma(aa * k + bb)
            return float(total)
    with mpmath.workdps(40):
        zz, aa, bb = mpmath.mpf(z), mpmath.mpf(a), mpmath.mpf(b)
        total = mpmath.mpf(0)
        # terms behave like |z|^-k Gamma(a k): smallest (about e^-x) near k = x / a
        tiny = mpmath.mpf(10) ** -45
        for k in range(1, int(min(x / a, 1e5)) + 1):
            term = zz ** (-k) * mpmath.rgamma(bb - aa * k)
            total -= term
            if term != 0 and abs(term) < tiny * abs(total):
                break
        if z > 0:
            total += zz ** ((1 - bb) / aa) * mpmath.exp(zz ** (1 / aa)) / aa
        return float(total)


def scheme_variants(adjoint: bool = False, soe: bool = False):
    """Every `(method, implicit)` of the scheme registry: tests that iterate over it cover a new
    scheme without being edited.  `adjoint=True` keeps the schemes with a discrete adjoint,
    `soe=True` those whose weights the soe kernel compresses."""
    from spikede.solvers import SCHEMES

    return [(name, implicit) for name, cls in SCHEMES.items() for implicit in cls.implicit_modes
            if not (adjoint and cls.coupled_start) and not (soe and not cls.compressible)]


def mittag_leffler_series(z: complex, a: float, b: float = 1.0) -> complex:
    """E_{a,b}(z) for complex z by its power series at a precision that covers the largest term
    (about exp(|z|^(1/a))), summed until the terms past the peak fall below 1e-30 of the sum."""
    x = abs(z) ** (1.0 / a)
    with mpmath.workdps(int(x / 2.3) + 40):
        zz, aa, bb = mpmath.mpc(z), mpmath.mpf(a), mpmath.mpf(b)
        total, k = mpmath.mpc(0), 0
        while True:
            term = zz**k * mpmath.rgamma(aa * k + bb)
            total += term
            k += 1
            if a * k > x + 10 and abs(term) < mpmath.mpf(10) ** -30 * max(abs(total), mpmath.mpf(10) ** -300):
                return complex(total)
