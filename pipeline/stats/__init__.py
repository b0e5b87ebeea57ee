"""Statistics shared by the stages, the bundle fit, generate, validate and the exports.

- `names`: the families' names (one vocabulary; v1 and ServeGen spellings mapped);
- `families`: the distribution families (one vocabulary of lowercase names), their vectorized
  maximum-likelihood fits, CDFs and Kolmogorov-Smirnov distances;
- `correlation`: Pearson, Spearman and Kendall tau-b over weighted distinct pairs (exact at scale);
- `pmf`: empirical PMFs of token counts (binning, pooling) and their moment-matched family fits;
- `fidelity`: the metrics that compare two traces (two-sample KS, Wasserstein, Spearman, window
  rates, IAT CV, index of dispersion).
"""
