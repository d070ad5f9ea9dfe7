"""The human-feedback review app: pairwise preferences and rubric ratings on stored run outputs.

`harness.review.app.serve` runs it, `harness.review.export.export` writes preference data for the
reward model and DPO, and `harness.review.summary.human_eval_summary` feeds the reports.
"""
