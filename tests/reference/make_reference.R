# Reference values from R (survival, metafor) for the naipo-bio tests.
# Run from this folder after make_inputs.py:  Rscript make_reference.R
# Writes reference_score.tsv, reference_fits.tsv and reference_meta.tsv.

suppressPackageStartupMessages({
  library(survival)
  library(metafor)
})

d <- read.delim("synthetic_sites.tsv")
d$site <- factor(d$site)
biomarkers <- c("g_bin", "g_dose", "g_cont")

# Centralized score test stratified by site with site-specific covariate effects:
# fit the null model, then evaluate the full model at (0, gamma_hat) without
# iterating. U is the sum of the score residuals, and V = 1 / var[1, 1], the
# efficient information of the biomarker given the covariates.
score_rows <- list()
for (ties in c("breslow", "efron")) {
  null <- coxph(Surv(time, event) ~ age:site + sex:site + strata(site),
                data = d, ties = ties)
  for (g in biomarkers) {
    f <- as.formula(paste("Surv(time, event) ~", g, "+ age:site + sex:site + strata(site)"))
    fit <- coxph(f, data = d, ties = ties, init = c(0, coef(null)),
                 control = coxph.control(iter.max = 0))
    u <- sum(residuals(fit, type = "score")[, 1])
    v <- 1 / fit$var[1, 1]
    score_rows[[length(score_rows) + 1]] <- data.frame(
      biomarker = g, ties = ties, U = u, V = v, chisq = fit$score)
  }
}
write.table(do.call(rbind, score_rows), "reference_score.tsv", sep = "\t",
            row.names = FALSE, quote = FALSE)

# Per-site Cox fits: biomarker + covariates, each tie method.
fit_rows <- list()
for (ties in c("breslow", "efron")) {
  for (s in levels(d$site)) {
    for (g in biomarkers) {
      f <- as.formula(paste("Surv(time, event) ~", g, "+ age + sex"))
      fit <- coxph(f, data = d[d$site == s, ], ties = ties,
                   control = coxph.control(eps = 1e-11, iter.max = 100))
      fit_rows[[length(fit_rows) + 1]] <- data.frame(
        site = s, biomarker = g, ties = ties, beta = coef(fit)[[1]],
        se = sqrt(fit$var[1, 1]), loglik = fit$loglik[2])
    }
  }
}
write.table(do.call(rbind, fit_rows), "reference_fits.tsv", sep = "\t",
            row.names = FALSE, quote = FALSE)

# Meta-analysis: fixed effect and DerSimonian-Laird random effects.
m <- read.delim("meta_inputs.tsv")
meta_rows <- list()
for (grp in unique(m$group)) {
  x <- m[m$group == grp, ]
  fe <- rma(yi = x$yi, sei = x$sei, method = "FE")
  dl <- rma(yi = x$yi, sei = x$sei, method = "DL")
  meta_rows[[length(meta_rows) + 1]] <- data.frame(
    group = grp, k = nrow(x), fe = fe$b[[1]], se_fe = fe$se, re = dl$b[[1]],
    se_re = dl$se, tau2 = dl$tau2, Q = dl$QE, Q_p = dl$QEp, I2 = dl$I2 / 100)
}
write.table(do.call(rbind, meta_rows), "reference_meta.tsv", sep = "\t",
            row.names = FALSE, quote = FALSE)

writeLines(capture.output(sessionInfo()), "R_session.txt")
