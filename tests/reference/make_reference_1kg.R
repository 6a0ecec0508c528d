# Per-variant score statistics on the 1000 Genomes chr22 slice with simulated
# survival, from R survival::coxph at (0, gamma_hat) with iter.max = 0.
# Run from this folder after make_inputs_1kg.py:  Rscript make_reference_1kg.R

suppressPackageStartupMessages(library(survival))

score_rows <- function(d, stratified) {
  variants <- grep("^22:", names(d), value = TRUE)
  d$site <- factor(d$site)
  if (stratified) {
    rhs <- "age_years:site + male:site + strata(site)"
  } else {
    rhs <- "age_years + male"
  }
  null <- coxph(as.formula(paste("Surv(followup_days, event) ~", rhs)), data = d,
                ties = "breslow", control = coxph.control(eps = 1e-11, iter.max = 100))
  rows <- list()
  for (variant in variants) {
    g <- d[[variant]]
    # A biomarker with no variation within any stratum carries no information.
    if (stratified) {
      spread <- tapply(g, d$site, function(x) diff(range(x)))
      if (all(spread == 0)) next
    } else if (diff(range(g)) == 0) next
    d$g <- g
    fit <- coxph(as.formula(paste("Surv(followup_days, event) ~ g +", rhs)), data = d,
                 ties = "breslow", init = c(0, coef(null)),
                 control = coxph.control(iter.max = 0))
    u <- sum(residuals(fit, type = "score")[, 1])
    v <- 1 / fit$var[1, 1]
    rows[[length(rows) + 1]] <- data.frame(variant = variant, U = u, V = v,
                                           p = pchisq(u^2 / v, 1, lower.tail = FALSE))
  }
  do.call(rbind, rows)
}

for (name in c("one_site", "three_sites")) {
  d <- read.delim(paste0("1kg_", name, ".tsv"), check.names = FALSE)
  out <- score_rows(d, stratified = name == "three_sites")
  write.table(out, paste0("reference_1kg_", name, ".tsv"), sep = "\t",
              row.names = FALSE, quote = FALSE)
}
