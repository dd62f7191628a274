"""The MTA turnstile streaming pipeline: cleaning rules, the job (applyInPandasWithState), lake and MySQL outputs."""
