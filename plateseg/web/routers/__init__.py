"""One router per resource: health, experiments, preview, runs, results, pages."""
