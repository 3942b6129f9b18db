# mclust's fits of the fourteen covariance models, for benchmarks/compare_mclust_models.py.
#
#   Rscript benchmarks/compare_mclust_models.R OUT_DIR NAME=FILE.csv [NAME=FILE.csv ...]
#
# Each FILE.csv holds only numeric columns with a header. For every data set, model and
# G = 1..9 this runs
#
#   Mclust(X, G = G, modelNames = M, verbose = FALSE)
#
# (mclust's defaults: hierarchical initialisation, no prior, no noise) and writes
# OUT_DIR/results.csv (dataset, model, G, n, loglik, df, bic, fitted model name; NA when
# mclust cannot fit) and OUT_DIR/parameters.csv (the fitted pro, mean and sigma, long).

suppressPackageStartupMessages(library(mclust))

args <- commandArgs(trailingOnly = TRUE)
out_dir <- args[1]
sets <- args[-1]
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
            "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")

results <- list()
params <- list()
for (spec in sets) {
  parts <- strsplit(spec, "=", fixed = TRUE)[[1]]
  name <- parts[1]
  X <- as.matrix(read.csv(parts[2]))
  d <- ncol(X)
  for (M in models) {
    for (G in 1:9) {
      fit <- tryCatch(suppressWarnings(Mclust(X, G = G, modelNames = M, verbose = FALSE)),
                      error = function(e) NULL)
      if (is.null(fit)) {
        results[[length(results) + 1]] <- data.frame(
          dataset = name, model = M, G = G, n = nrow(X), loglik = NA, df = NA, bic = NA,
          fitted = NA)
        next
      }
      results[[length(results) + 1]] <- data.frame(
        dataset = name, model = M, G = G, n = nrow(X), loglik = fit$loglik, df = fit$df,
        bic = fit$bic, fitted = fit$modelName)
      p <- fit$parameters
      pro <- rep_len(p$pro, G)
      mu <- matrix(p$mean, nrow = d)
      sigma <- array(p$variance$sigma, c(d, d, G))
      rows <- list(data.frame(dataset = name, model = M, G = G, what = "pro",
                              k = seq_len(G), i = 0, j = 0, value = pro))
      for (k in seq_len(G)) {
        rows[[length(rows) + 1]] <- data.frame(dataset = name, model = M, G = G,
                                               what = "mean", k = k, i = seq_len(d), j = 0,
                                               value = mu[, k])
        ij <- expand.grid(i = seq_len(d), j = seq_len(d))
        rows[[length(rows) + 1]] <- data.frame(dataset = name, model = M, G = G,
                                               what = "sigma", k = k, i = ij$i, j = ij$j,
                                               value = sigma[cbind(ij$i, ij$j, k)])
      }
      params[[length(params) + 1]] <- do.call(rbind, rows)
    }
  }
}
write.csv(do.call(rbind, results), file.path(out_dir, "results.csv"), row.names = FALSE)
write.csv(do.call(rbind, params), file.path(out_dir, "parameters.csv"), row.names = FALSE)
cat("mclust", as.character(packageVersion("mclust")), "\n")
