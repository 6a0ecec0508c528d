# Stratified log-rank reference values from R survival::survdiff.
# Run from this folder:  Rscript make_reference_km.R

suppressPackageStartupMessages(library(survival))
d <- read.delim("synthetic_sites.tsv")
rows <- list()
for (g in c("g_bin", "g_dose")) {
  fit <- survdiff(as.formula(paste("Surv(time, event) ~", g, "+ strata(site)")), data = d)
  rows[[length(rows) + 1]] <- data.frame(
    biomarker = g, chisq = fit$chisq, df = length(fit$n) - 1,
    observed = paste(format(rowSums(as.matrix(fit$obs)), digits = 15), collapse = ","),
    expected = paste(format(rowSums(as.matrix(fit$exp)), digits = 15), collapse = ","))
}
write.table(do.call(rbind, rows), "reference_logrank.tsv", sep = "\t",
            row.names = FALSE, quote = FALSE)
