"""Which model class could represent a world's best actions, and which can learn them from a loop's data?

Reads the JSON lines `offerloop demo --oracle-dump FILE` writes (the oracle's value and P(conversion) of
every eligible joint action for a sample of the AI's decisions) and, on 3,000 of those customers split
in two halves, fits each model class on the first half and plays its greedy action on the second. The
score is the demo's: (value of the greedy actions - uniform random) / (ceiling - uniform random), in %.

Two modes:
  --truth          fit the noise-free values (each customer's values centred on their mean, since only
                   differences between actions decide): what the class can represent at best;
  --logged N       fit N uniformly logged visits of the first half (one random eligible action each, a
                   conversion drawn with its probability, the value per conversion v / P when it
                   converts): what the class learns from a loop's worth of noisy data.

Classes: `linear` (context x option per dimension), `linear+pairs` (plus option x option: the product's
`pairwise_interactions = true`), `bins+pairs` (plus quartile steps of every number), `bins+3way` (plus
categories, flags and steps x option pairs), `gbm3` / `gbm6` (gradient-boosted trees of depth 3 / 6 on
the context and the option one-hots); in --logged mode also `hurdle linear+pairs` and `hurdle gbm3`
(P(conversion) times the value per conversion, as `logistic_ts` models an amount).

Needs numpy and scikit-learn (the bench harness's virtualenv: `bash ../shared/bench/setup.sh DIR`).
Usage: python model_classes.py DUMP.jsonl (--truth | --logged N) [--seed S]
"""
import argparse
import collections
import itertools
import json

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

CUSTOMERS = 3000


def load(path):
    lines = open(path).read().splitlines()
    meta = json.loads(lines[0])
    rows = [json.loads(line) for line in lines[1:]][:CUSTOMERS]
    return meta, rows


def encode_context(meta, rows):
    """Intercept, standardised numbers (log for skewed positive ones, a flag when missing), one-hot
    categories (6 most frequent labels, the first as reference) and flags; plus the numbers' quartile
    steps and the category/flag slots, as separate matrices."""
    n = len(rows)
    kinds = {}
    for r in rows:
        for j, v in enumerate(r['x']):
            if v['type'] != 'missing':
                kinds.setdefault(j, v['type'])
    lin, steps, cats = [np.ones(n)], [], []
    for j, kind in sorted(kinds.items()):
        vals = [r['x'][j].get('value') for r in rows]
        if kind == 'number':
            a = np.array([np.nan if v is None else float(v) for v in vals])
            missing = np.isnan(a)
            a = np.where(missing, np.nanmean(a), a)
            if a.min() >= 0 and a.max() > 10 * (np.median(a) + 1):
                a = np.log1p(a)
            lin.append(np.clip((a - a.mean()) / (a.std() + 1e-9), -4, 4))
            if missing.any():
                lin.append(missing.astype(float))
            if len(np.unique(a)) > 2:
                for q in np.unique(np.quantile(a, [0.25, 0.5, 0.75])):
                    steps.append((a > q).astype(float))
        elif kind == 'boolean':
            lin.append(np.array([1.0 if v else 0.0 for v in vals]))
            cats.append(lin[-1])
        elif kind == 'category':
            labels = [l for l, _ in collections.Counter(vals).most_common(6) if l is not None]
            for label in labels[1:]:
                lin.append(np.array([1.0 if v == label else 0.0 for v in vals]))
                cats.append(lin[-1])
    stack = lambda cols: np.stack(cols, 1) if cols else np.zeros((n, 0))
    return stack(lin), stack(steps), stack(cats)


class Classes:
    def __init__(self, meta, rows):
        self.sizes = [len(options) for _, options in meta['dims']]
        self.X, self.S, self.C = encode_context(meta, rows)

    def onehots(self, a):
        return [np.eye(k)[o] for k, o in zip(self.sizes, a)]

    def design(self, i, a, cls):
        oh = self.onehots(a)
        ctx = self.X[i] if cls in ('linear', 'linear+pairs') else np.concatenate([self.X[i], self.S[i]])
        parts = [np.kron(ctx, o) for o in oh]
        pairs = [np.kron(oh[p], oh[q]) for p, q in itertools.combinations(range(len(oh)), 2)]
        if cls != 'linear':
            parts += pairs
        if cls == 'bins+3way':
            segment = np.concatenate([self.C[i], self.S[i]])
            parts += [np.kron(segment, pair) for pair in pairs]
        return np.concatenate(parts)

    def tree_features(self, i, a):
        return np.concatenate([self.X[i], np.concatenate(self.onehots(a))])


def score(rows, test, predict):
    got, uniform, ceiling = [], [], []
    for i in test:
        values = [v for _, v, _ in rows[i]['a']]
        p = predict(i, [a for a, _, _ in rows[i]['a']])
        got.append(values[int(np.argmax(p))])
        uniform.append(np.mean(values))
        ceiling.append(max(values))
    got, uniform, ceiling = map(np.mean, (got, uniform, ceiling))
    return 100 * (got - uniform) / (ceiling - uniform)


def ridge(A, y, lam):
    return np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y)


def gbm(depth, classifier=False):
    kind = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
    return kind(max_iter=300, learning_rate=0.05, max_depth=depth, random_state=0)


def truth(rows, m, train, test):
    samples = [(i, a, v - np.mean([w for _, w, _ in rows[i]['a']])) for i in train for a, v, _ in rows[i]['a']]
    y = np.array([t for _, _, t in samples])
    out = {}
    for cls in ['linear', 'linear+pairs', 'bins+pairs', 'bins+3way']:
        A = np.array([m.design(i, a, cls) for i, a, _ in samples])
        w = ridge(A, y, 1e-3 * len(y))
        out[cls] = score(rows, test, lambda i, acts: [m.design(i, a, cls) @ w for a in acts])
    T = np.array([m.tree_features(i, a) for i, a, _ in samples])
    for depth in (3, 6):
        model = gbm(depth).fit(T, y)
        out[f'gbm{depth}'] = score(rows, test, lambda i, acts: model.predict(np.array([m.tree_features(i, a) for a in acts])))
    return out


def logged(rows, m, train, test, n, rng):
    visits = []
    for i in rng.choice(train, n):
        a, v, c = rows[i]['a'][rng.integers(len(rows[i]['a']))]
        converted = rng.random() < c
        visits.append((i, a, v / max(c, 1e-9) if converted else 0.0, converted))
    y = np.array([r for _, _, r, _ in visits])
    conv = np.array([k for _, _, _, k in visits], dtype=int)
    out = {}
    for cls in ['linear', 'linear+pairs', 'bins+pairs', 'bins+3way']:
        A = np.array([m.design(i, a, cls) for i, a, _, _ in visits])
        w = ridge(A, y, 1.0)
        out[cls] = score(rows, test, lambda i, acts: [m.design(i, a, cls) @ w for a in acts])
        if cls == 'linear+pairs':
            p = LogisticRegression(C=1.0, max_iter=2000).fit(A, conv)
            value = Ridge(alpha=1.0).fit(A[conv == 1], y[conv == 1])
            def hurdle(i, acts):
                D = np.array([m.design(i, a, cls) for a in acts])
                return p.predict_proba(D)[:, 1] * value.predict(D)
            out['hurdle linear+pairs'] = score(rows, test, hurdle)
    T = np.array([m.tree_features(i, a) for i, a, _, _ in visits])
    for depth in (3, 6):
        model = gbm(depth).fit(T, y)
        out[f'gbm{depth}'] = score(rows, test, lambda i, acts: model.predict(np.array([m.tree_features(i, a) for a in acts])))
    p3 = gbm(3, classifier=True).fit(T, conv)
    v3 = gbm(3).fit(T[conv == 1], y[conv == 1])
    def hurdle_trees(i, acts):
        D = np.array([m.tree_features(i, a) for a in acts])
        return p3.predict_proba(D)[:, 1] * v3.predict(D)
    out['hurdle gbm3'] = score(rows, test, hurdle_trees)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dump')
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument('--truth', action='store_true')
    mode.add_argument('--logged', type=int, metavar='N')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    meta, rows = load(args.dump)
    m = Classes(meta, rows)
    order = np.random.default_rng(args.seed).permutation(len(rows))
    train, test = order[: len(rows) // 2], order[len(rows) // 2:]
    if args.truth:
        out = truth(rows, m, train, test)
    else:
        out = logged(rows, m, train, test, args.logged, np.random.default_rng(args.seed + 1))
    label = 'truth' if args.truth else f'logged {args.logged}'
    print(json.dumps({'dump': args.dump, 'mode': label, 'seed': args.seed, 'scores': {k: round(v, 1) for k, v in out.items()}}))


if __name__ == '__main__':
    main()
