"""Plan a run: measure a sample locally, model the run on AWS and on this machine.

``plateseg plan`` (:mod:`plateseg.cli.plan`) measures an experiment
(:mod:`~plateseg.planning.workload`), predicts a grid of AWS settings with a
discrete-event model of the Distributed Map (:mod:`~plateseg.planning.model`), prices
them with one dated price table (:mod:`~plateseg.planning.prices`), recommends a
setting with its ``cdk.json`` values (:mod:`~plateseg.planning.recommend`) and compares
with a static fleet (:mod:`~plateseg.planning.fleet`). The same model, given this
machine's parameters, predicts local runs; ``bench/plan.py`` checks it against real ones.
"""

from __future__ import annotations

from plateseg.planning.costs import lambda_cost_usd, run_cost_usd
from plateseg.planning.estimate import RunEstimate, estimate_run
from plateseg.planning.prices import PRICES, PRICES_DATE

__all__ = [
    "PRICES",
    "PRICES_DATE",
    "RunEstimate",
    "estimate_run",
    "lambda_cost_usd",
    "run_cost_usd",
]
