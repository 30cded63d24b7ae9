"""Output stage: the result log, progress, reports, diagnostics, redaction."""
