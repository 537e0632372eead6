"""Bayesian Knowledge Tracing (Corbett & Anderson, 1995), fitted per skill with EM, numpy only.

Why our own: BKT is the classic, interpretable baseline (a learner either knows a skill or not;
they may guess or slip), and a few dozen lines of vectorised Baum–Welch fit all skills at once in
seconds, without pulling pyBKT and its compiled extension into the platform.

Vectorisation: every (learner, skill) answer sequence is one HMM chain. Chains are sorted by
length, longest first, and answers laid out step-major, so step ``t`` of all chains still running is
one contiguous slice and the forward/backward recursions run once per step for all chains and
skills together.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._validation import sorted_positions
from .tracing import _TracerBase


def _layout(answers: pd.DataFrame):
    """Return (rows, starts, counts): ``rows[starts[t]:starts[t]+counts[t]]`` are the input
    positions of step ``t`` of every chain still running, chains in a fixed order."""
    order = sorted_positions(answers)
    s = answers.iloc[order]
    chain = pd.factorize(pd.MultiIndex.from_arrays([s["learner"], s["skill"]]))[0]
    step = pd.Series(chain).groupby(chain).cumcount().to_numpy()
    length = np.bincount(chain)
    rank = np.empty(len(length), dtype=np.int64)
    rank[np.argsort(-length, kind="stable")] = np.arange(len(length))
    rerank = np.lexsort((rank[chain], step))
    rows = order[rerank]
    counts = np.bincount(step)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return rows, starts, counts


class BKT(_TracerBase):
    """Per-skill Bayesian Knowledge Tracing fitted by expectation–maximisation.

    Four parameters per skill: ``prior`` (knows it before the first answer), ``learn`` (chance to
    learn it at each answer), ``guess`` and ``slip``. Guess and slip are capped (``max_guess``,
    ``max_slip``) to keep the model identifiable — without the caps EM happily explains a skill
    with "everybody guesses" instead of "everybody knows". Skills unseen in ``fit`` use the
    mean parameters over skills.

    Parameters
    ----------
    n_iter : int
        Maximum EM iterations.
    tol : float
        Stop when the log-likelihood per answer improves by less than this.
    max_guess, max_slip : float
        Upper bounds for guess and slip.
    """

    def __init__(self, n_iter: int = 30, tol: float = 1e-5, max_guess: float = 0.3,
                 max_slip: float = 0.3):
        self.n_iter = n_iter
        self.tol = tol
        self.max_guess = max_guess
        self.max_slip = max_slip

    # --- fitting -------------------------------------------------------------------------
    def _fit(self, answers):
        skills = pd.unique(answers["skill"])
        self.skill_index_ = {s: i for i, s in enumerate(skills)}
        k = len(skills)
        sk = answers["skill"].map(self.skill_index_).to_numpy(int)
        c = answers["correct"].to_numpy(float)
        rows, starts, counts = _layout(answers)
        prior = np.full(k, 0.4)
        learn = np.full(k, 0.1)
        guess = np.full(k, 0.2)
        slip = np.full(k, 0.1)
        n = len(c)
        prev_ll = -np.inf
        self.n_iter_ = 0
        for it in range(self.n_iter):
            p_prior = np.empty(n)  # P(known) before the answer
            p_post = np.empty(n)  # P(known) after seeing it
            scale = np.empty(n)
            e0 = np.empty(n)  # P(obs | unknown)
            e1 = np.empty(n)  # P(obs | known)
            # forward
            p = None
            for t, (a, m) in enumerate(zip(starts, counts)):
                r = rows[a:a + m]
                s = sk[r]
                if t == 0:
                    p = prior[s].copy()
                else:
                    p = p[:m]
                obs = c[r]
                like1 = np.where(obs == 1, 1 - slip[s], slip[s])
                like0 = np.where(obs == 1, guess[s], 1 - guess[s])
                z = p * like1 + (1 - p) * like0
                post = np.clip(p * like1 / z, 1e-9, 1 - 1e-9)
                p_prior[r], p_post[r], scale[r], e0[r], e1[r] = p, post, z, like0, like1
                p = post + (1 - post) * learn[s]
            ll = np.log(scale).mean()
            # backward: b0, b1 = scaled P(future | state), gamma, xi(0->1)
            b0 = np.ones(n)
            b1 = np.ones(n)
            xi01 = np.zeros(n)  # expected unknown->known transitions after each answer
            has_next = np.zeros(n, dtype=bool)
            for t in range(len(counts) - 2, -1, -1):
                a, m = starts[t], counts[t + 1]
                r = rows[a:a + m]  # chains that continue to step t+1 (a prefix)
                rn = rows[starts[t + 1]:starts[t + 1] + m]
                s = sk[r]
                T = learn[s]
                w0 = (1 - T) * e0[rn] * b0[rn] + T * e1[rn] * b1[rn]  # from unknown
                w1 = e1[rn] * b1[rn]  # from known
                # renormalise each step (scale-free): gamma and xi below are ratios
                zb = w0 + w1
                b0[r] = np.maximum(w0 / zb, 1e-12)
                b1[r] = np.maximum(w1 / zb, 1e-12)
                zx = (1 - p_post[r]) * w0 + p_post[r] * w1
                xi01[r] = (1 - p_post[r]) * T * e1[rn] * b1[rn] / zx
                has_next[r] = True
            g1 = p_post * b1
            g0 = (1 - p_post) * b0
            tot = g0 + g1
            g0, g1 = g0 / tot, g1 / tot
            # M-step, aggregated per skill
            first = rows[starts[0]:starts[0] + counts[0]]
            kk = np.bincount(sk[first], minlength=k)
            prior_new = np.bincount(sk[first], g1[first], minlength=k) / np.maximum(kk, 1)
            num_t = np.bincount(sk, xi01, minlength=k)
            den_t = np.bincount(sk, np.where(has_next, g0, 0.0), minlength=k)
            den0 = np.bincount(sk, g0, minlength=k)
            den1 = np.bincount(sk, g1, minlength=k)
            guess_new = np.bincount(sk, g0 * c, minlength=k) / np.maximum(den0, 1e-12)
            slip_new = np.bincount(sk, g1 * (1 - c), minlength=k) / np.maximum(den1, 1e-12)
            learn_new = np.where(den_t > 1e-12, num_t / np.maximum(den_t, 1e-12), learn)
            eps = 1e-4
            prior = np.clip(prior_new, eps, 1 - eps)
            learn = np.clip(learn_new, eps, 1 - eps)
            guess = np.clip(guess_new, eps, self.max_guess)
            slip = np.clip(slip_new, eps, self.max_slip)
            self.n_iter_ = it + 1
            if ll - prev_ll < self.tol:
                break
            prev_ll = ll
        self.log_likelihood_ = float(ll)
        self.params_ = pd.DataFrame(
            {"prior": prior, "learn": learn, "guess": guess, "slip": slip}, index=skills
        )
        self.params_.index.name = "skill"

    # --- prediction ----------------------------------------------------------------------
    def _predict(self, answers):
        par = self.params_
        default = par.mean()
        idx = answers["skill"].map(self.skill_index_)
        cols = {}
        for name in ("prior", "learn", "guess", "slip"):
            v = par[name].to_numpy()
            cols[name] = np.where(idx.notna(), v[idx.fillna(0).to_numpy(int)], default[name])
        c = answers["correct"].to_numpy(float)
        rows, starts, counts = _layout(answers)
        out = np.empty(len(c))
        p = None
        for t, (a, m) in enumerate(zip(starts, counts)):
            r = rows[a:a + m]
            prior, learn, guess, slip = (cols[x][r] for x in ("prior", "learn", "guess", "slip"))
            p = prior.copy() if t == 0 else p[:m]
            out[r] = p * (1 - slip) + (1 - p) * guess
            obs = c[r]
            like1 = np.where(obs == 1, 1 - slip, slip)
            like0 = np.where(obs == 1, guess, 1 - guess)
            post = np.clip(p * like1 / (p * like1 + (1 - p) * like0), 1e-9, 1 - 1e-9)
            nxt = post + (1 - post) * learn
            # an unanswered row (NaN) is not practice: knowledge stays as it was
            p = np.where(np.isnan(obs), p, nxt)
        return out
