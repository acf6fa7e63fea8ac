"""The discrete adjoint of a multi-step fractional spiking layer.

One autograd Function runs the whole sequence without a graph and differentiates it by a
hand-written reverse sweep through the transposed history (see `SequenceAdjoint`).  The
layer ([FractionalLIF][spikede.neurons.FractionalLIF] and its subclasses) chooses it; nothing
here depends on the module class or its equation: the neuron is used through its `_start`,
`_march`, `_scheme_for_alpha` and `_kernel_options` methods, its membrane `drive`
([spikede.membrane][]: the drive and its vector-Jacobian product), its `events` (the reset and
its derivatives, `EventParams.undo`) and its `surrogate`, `memory`, `method` and `v_rest`.
"""

from __future__ import annotations

import torch

from . import fused
from .solvers.adjoint import lag_gradient
from .solvers.engine import step_threads
from .solvers.memory import HistoryKernel, make_kernel

__all__ = ["SequenceAdjoint", "SpikeBits", "order_gradients"]


class SequenceAdjoint(torch.autograd.Function):
    """Spikes of a multi-step `FractionalLIF` (or subclass) with a discrete-adjoint backward.

    Forward: the ordinary loop without a graph.  Saved are the history's stored rows `u_n`
    (for `memory=None` or a window the kernel's own buffer, so nothing is copied), the
    spikes as bits (`SpikeBits`), the last potential and, only where it cannot be rebuilt, more:
    the proposed potentials `p_n` for the `'zero'` reset, the input where the drive's value
    (for `tau`, `alpha`) or its products need it.  Backward, for `n = T .. 1` the potentials
    are rebuilt from the rows (`previous`) and `p_n` by the reset's `undo` (`v_n + theta s_n`
    for `'subtract'`, `v_n` for `'none'`); with `g` the gradients, `c` the scheme's step
    coefficient, `F` the layer's drive ([spikede.membrane][]):

    ```text
    g_v[n]    += sum_{j>=1} W_j g_H[n + j]            (transposed history, same kernel)
    g_p[n]     = g_s[n] sigma'(p_n - theta) + g_v[n] dv/dp      (p: proposed potential)
    g_theta   += -g_s[n] sigma' + g_v[n] dv/dtheta
    g_H[n]     = -g_p[n];  g_I[n] = c g_p[n] dF/dI;  g_v[n-1] += c g_p[n] dF/dv (+ g_p[n] for l1)
    ```

    with `dv/dp`, `dv/dtheta` of the reset (subtract, zero, none; the spike's part is
    dropped with `detach_reset`), and for `l1` (`u_n = v_n - v_{n-1}`) the history term
    moves to `g_v[n-1]` with a minus sign.  For a drive linear in the current
    (`F = (I + r(v)) / tau`, the LIF's) `g_H[n] = -(tau / c) g_I[n-1]`, so the transposed
    history runs over the input gradient itself (a descending kernel writing into it) and
    the sweep keeps no second sequence.  Gradients of `tau` and `c` are sums
    of the local terms; `alpha` enters through `c` and the weights,
    `g_W_j = sum_n <g_H[n], u_{n-j}>`.
    """

    @staticmethod
    def forward(ctx, x, threshold, tau, alpha, coefficients, neuron):
        with step_threads(x[0]):
            return SequenceAdjoint._forward(ctx, x, threshold, tau, alpha, coefficients, neuron)

    @staticmethod
    def backward(ctx, grad_spikes, grad_membrane):
        with step_threads(grad_spikes[0]):
            return SequenceAdjoint._backward(ctx, grad_spikes)

    @staticmethod
    def _forward(ctx, x, threshold, tau, alpha, coefficients, neuron):
        if fused.applies(neuron, x):
            return SequenceAdjoint._forward_compiled(ctx, x, threshold, tau, alpha, coefficients, neuron)
        ctx.recurrence = None
        steps = x.shape[0]
        with torch.no_grad():
            tau_, theta = tau.to(x.dtype), threshold.to(x.dtype)
            state = neuron._start(x[0], steps)
            rows = None  # the kernel's own rows, unless it keeps only a few ('soe')
            if not isinstance(state.kernel, HistoryKernel):
                rows = x.new_empty(steps + 1, *x.shape[1:])
                rows[0] = state.scheme.first_stored(state.v, None)
            out, spiked = torch.empty_like(x), SpikeBits(steps, x[0])
            proposed = torch.empty_like(x) if neuron.events.reset == "zero" else None
            membrane = torch.empty_like(x) if (neuron.record or neuron.return_membrane) else x.new_empty(0)
            scheme, previous = state.scheme, [state.v, None]  # v_n and v_{n-1} after step n

            def keep(n, p, s, v):
                previous[0], previous[1] = v, previous[0]
                if rows is not None:
                    rows[n + 1] = scheme.stored(v, previous[1], None)
                out[n] = s
                spiked.write(n, s)
                if proposed is not None:
                    proposed[n] = p
                if membrane.numel():
                    membrane[n] = v

            state = neuron._march(state, x.unbind(0), tau_, theta, keep)
            if rows is None:
                # the step loop stores no row after its last step; the backward reads them all
                state.kernel.append(scheme.stored(state.v, previous[1], None))
                rows = state.kernel.stored()
        if neuron.record:
            neuron.membrane = membrane
        neuron._last_v = state.v.detach()
        ctx.neuron = neuron
        ctx.save_for_backward(rows, spiked.bits, proposed, state.v, _drive_input(x, tau, alpha, coefficients, neuron),
                              threshold, tau, alpha, coefficients)
        ctx.mark_non_differentiable(membrane)
        return out, membrane

    @staticmethod
    def _forward_compiled(ctx, x, threshold, tau, alpha, coefficients, neuron):
        """`_forward` by the compiled block kernels (`spikede.fused`): the same saved tensors."""
        steps = x.shape[0]
        with torch.no_grad():
            flat = x.reshape(steps, -1).contiguous()
            scheme = fused.scheme_for(neuron, x)
            recurrence = fused.Recurrence(neuron, scheme, steps, flat.shape[1], tau.item(), threshold.item())
            keep_membrane = neuron.record or neuron.return_membrane
            rows, out, bits, v_last, proposed, membrane = recurrence.forward(
                flat, keep_proposed=neuron.events.reset == "zero", keep_membrane=keep_membrane)
            shape = x.shape[1:]
            out, rows = out.view(x.shape), rows.view(steps + 1, *shape)
            membrane = membrane.view(x.shape) if keep_membrane else x.new_empty(0)
            proposed = None if proposed is None else proposed.view(x.shape)
        if neuron.record:
            neuron.membrane = membrane
        v_last = v_last.view(shape)
        neuron._last_v = v_last
        ctx.neuron, ctx.recurrence = neuron, recurrence
        ctx.save_for_backward(rows, bits, proposed, v_last, _drive_input(x, tau, alpha, coefficients, neuron),
                              threshold, tau, alpha, coefficients)
        ctx.mark_non_differentiable(membrane)
        return out, membrane

    @staticmethod
    def _backward(ctx, grad_spikes):
        if ctx.recurrence is not None:
            return SequenceAdjoint._backward_compiled(ctx, grad_spikes)
        rows, bits, proposed, v_last, x, threshold, tau_in, alpha, coefficients = ctx.saved_tensors
        neuron = ctx.neuron
        steps, dtype = bits.shape[0], rows.dtype
        spiked = SpikeBits(steps, rows[0], bits)
        rest = torch.full_like(rows[0], neuron.v_rest)
        scheme, alpha_, coefficients_ = _order_scheme(ctx, rest, steps, alpha, coefficients)
        coef = scheme.step_coef
        tau = tau_in.detach().to(dtype)
        theta = threshold.detach().to(dtype)
        c = coef.detach()
        events, surrogate, drive = neuron.events, neuron.surrogate, neuron.drive
        needs_drive = any(ctx.needs_input_grad[2:5])

        # The transposed history runs over a sequence proportional to g_H (g_H[n] = to_history * row n - 1).
        # For a drive linear in the current that is the input gradient itself (g_H[n] = -(tau / c) g_I[n - 1]),
        # whose rows the kernel writes; otherwise g_H[n] = -g_p[n], kept in a sequence of its own.
        g_rows = rows.new_empty(rows.shape)
        shared = drive.linear_in_current
        reverse_rows = g_rows if shared else rows.new_empty(rows.shape)
        to_history = -tau / c if shared else -torch.ones_like(c)
        if neuron.memory == "soe":
            kernel = make_kernel(scheme, steps, rest, "soe", **neuron._kernel_options())
        else:
            kernel = HistoryKernel(scheme.weights, steps, rest, window=neuron.memory, storage=reverse_rows,
                                   descending=True)
        kernel.append(torch.zeros_like(rest))
        l1 = neuron.method == "l1"
        g_theta = torch.zeros((), dtype=dtype, device=rows.device)
        g_tau = torch.zeros_like(g_theta)
        g_coef = torch.zeros_like(g_theta)
        carry = torch.zeros_like(rest)  # gradient reaching v_n from later steps
        with torch.no_grad():
            v = v_last
            v_prev = scheme.previous(v, rows, steps)
            for n in range(steps, 0, -1):
                mu = to_history * kernel.read(steps + 1 - n)[0]  # sum_j W_j g_H[n + j]
                g_v = carry + mu
                carry = -mu if l1 else torch.zeros_like(mu)
                s = spiked.read(n - 1)
                p, dv_dp, dv_ds, dv_dtheta = events.undo(v, s, theta, None if proposed is None else proposed[n - 1])
                bump = surrogate.derivative(p - theta)
                g_s = grad_spikes[n - 1]
                g_spike = g_s if events.detach_reset else g_s + g_v * dv_ds
                g_p = g_v * dv_dp + g_spike * bump
                g_theta = g_theta - (g_spike * bump).sum() + (g_v * dv_dtheta).sum()
                g_f = c * g_p  # cotangent of the drive F
                current = None if x is None else x[n - 1]
                value = drive(v_prev, current, tau) if needs_drive else None
                g_v_drive, g_input, g_tau_step = drive.vjp(g_f, v_prev, current, tau, value)
                if needs_drive:
                    g_tau = g_tau + g_tau_step
                    g_coef = g_coef + (g_p * value).sum()
                carry = carry + (g_p if l1 else 0.0) + (g_v_drive if g_v_drive is not None else 0.0)
                if shared:
                    kernel.append(g_input)
                    if neuron.memory == "soe":
                        g_rows[n - 1] = g_input
                else:
                    kernel.append(g_p)
                    g_rows[n - 1] = g_input
                    if neuron.memory == "soe":
                        reverse_rows[n - 1] = g_p
                if n > 1:
                    v, v_prev = v_prev, scheme.previous(v_prev, rows, n - 1)
        return _gradients(ctx, scheme, (alpha_, coefficients_), coef, g_coef, to_history, g_rows[:steps],
                          reverse_rows[:steps], rows, g_theta, g_tau)

    @staticmethod
    def _backward_compiled(ctx, grad_spikes):
        """`_backward` by the compiled block kernels: the same gradients."""
        rows, bits, proposed, v_last, x, _, _, alpha, coefficients = ctx.saved_tensors
        neuron, recurrence = ctx.neuron, ctx.recurrence
        steps, shape = bits.shape[0], rows.shape[1:]
        if any(ctx.needs_input_grad[3:5]):  # the weights' gradients need the scheme rebuilt from leaves
            scheme, alpha_, coefficients_ = _order_scheme(ctx, torch.full_like(rows[0], neuron.v_rest), steps, alpha,
                                                          coefficients)
            coef = scheme.step_coef
        else:
            scheme = alpha_ = coefficients_ = coef = None
        to_history = -recurrence.tau / recurrence.c
        g_x, (g_theta, drive_f, drive_p) = recurrence.backward(
            rows.reshape(steps + 1, -1), bits, None if proposed is None else proposed.reshape(steps, -1),
            v_last.reshape(-1), None if x is None else x.reshape(steps, -1), grad_spikes.reshape(steps, -1),
            to_history)
        sums = torch.tensor([drive_p / recurrence.tau, g_theta, -drive_f / recurrence.tau**2], dtype=torch.float64,
                            device=rows.device)
        g_x = g_x.view(steps, *shape)
        return _gradients(ctx, scheme, (alpha_, coefficients_), coef, sums[0].to(rows.dtype), to_history, g_x, g_x,
                          rows, sums[1], sums[2])


def _drive_input(x, tau, alpha, coefficients, neuron) -> torch.Tensor | None:
    """The input, where the backward needs it: for the drive's value (gradients of tau, the order or the
    multi-term coefficients) or for a drive whose products need the current."""
    needs_value = tau.requires_grad or alpha.requires_grad or (coefficients is not None and coefficients.requires_grad)
    return x if needs_value or neuron.drive.vjp_needs_current else None


def _order_scheme(ctx, template: torch.Tensor, steps: int, alpha, coefficients) -> tuple:
    """The layer's scheme rebuilt from leaves of the order (and multi-term coefficients) that carry
    gradients where the backward needs them: `(scheme, alpha_leaf, coefficients_leaf)`."""
    with torch.enable_grad():
        alpha_ = alpha.detach().requires_grad_(ctx.needs_input_grad[3])
        coefficients_ = None if coefficients is None else coefficients.detach().requires_grad_(ctx.needs_input_grad[4])
        return ctx.neuron._scheme_for_alpha(template, steps, alpha_, coefficients_), alpha_, coefficients_


def _gradients(ctx, scheme, order_leaves, coef, g_coef, to_history, g_x, reverse_rows, rows, g_theta, g_tau) -> tuple:
    """`SequenceAdjoint.backward`'s result: the input gradient `g_x`, the threshold's and tau's from
    their sums, and the orders' (and multi-term coefficients') through `order_gradients`, with
    `g_H[n] = to_history * reverse_rows[n - 1]`."""
    threshold, tau = ctx.saved_tensors[5:7]
    needs = ctx.needs_input_grad
    targets = [leaf for leaf, needed in zip(order_leaves, needs[3:5]) if needed]
    grads = iter(order_gradients(scheme, targets, coef, g_coef, to_history, reverse_rows, rows[: g_x.shape[0]],
                                 ctx.neuron.memory) if targets else ())
    g_alpha = next(grads) if needs[3] else None
    g_coefficients = next(grads) if needs[4] else None
    g_threshold = g_theta.to(threshold.dtype) if needs[1] else None
    g_tau = g_tau.to(tau.dtype) if needs[2] else None
    return g_x, g_threshold, g_tau, g_alpha, g_coefficients, None


class SpikeBits:
    """Binary spike trains kept eight to a byte: `[T, ceil(m / 8)]` `uint8` for `T` steps of
    `m` neurons (1/32 of the float32 trains).  `template`: one step's shape, dtype and device."""

    def __init__(self, steps: int, template: torch.Tensor, bits: torch.Tensor | None = None):
        self.shape, self.dtype, self.size = template.shape, template.dtype, template.numel()
        self.bits = template.new_empty(steps, -(-self.size // 8), dtype=torch.uint8) if bits is None else bits
        self._masks = 2 ** torch.arange(8, device=template.device, dtype=torch.uint8)
        self._weights = self._masks.to(template.dtype)

    def write(self, n: int, spikes: torch.Tensor) -> None:
        """Keep step `n`'s spikes (exactly 0 or 1)."""
        self.bits[n] = _packed(spikes.reshape(1, -1), self._weights)[0]

    def read(self, n: int) -> torch.Tensor:
        """Step `n`'s spikes, 0 or 1 in the template's dtype."""
        flat = (self.bits[n, :, None] & self._masks) != 0
        return flat.reshape(-1)[: self.size].view(self.shape).to(self.dtype)


def _packed(flat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Rows `[k, m]` of 0/1 values as `[k, ceil(m / 8)]` byte values (in `flat`'s dtype): bit `i % 8`
    of byte `i // 8` is value `i`; `weights` holds `1, 2, .., 128`."""
    if flat.shape[1] % 8:
        flat = torch.cat([flat, flat.new_zeros(flat.shape[0], 8 - flat.shape[1] % 8)], dim=1)
    return flat.view(flat.shape[0], -1, 8) @ weights


def order_gradients(scheme, targets, coef, g_coef, to_history, g_input, rows, window) -> tuple:
    """The gradients of `targets` (the orders, and the multi-term coefficients where they are learned)
    through the step coefficient and the weights (`lag_gradient`), with `g_H[n] = to_history *
    g_input[n - 1]` and `rows` the stored `u_0 .. u_{T-1}`."""
    steps = g_input.shape[0]
    g_weights = lag_gradient(g_input.reshape(steps, 1, -1), rows.reshape(steps, -1), scheme.weights.shape[1],
                             window if isinstance(window, int) else None)[0]
    with torch.enable_grad():
        weights = scheme.weights[0]
    g_weights = (to_history * g_weights).to(weights.dtype)
    return torch.autograd.grad((weights, coef), targets, (g_weights, g_coef.to(coef.dtype)))
