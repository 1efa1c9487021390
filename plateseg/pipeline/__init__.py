"""The three steps of a run, as library functions the Lambda handlers call.

- :func:`plateseg.pipeline.lookup.lookup` — list an experiment, write the manifest;
- :func:`plateseg.pipeline.segment.segment_batch` — segment one batch of fields;
- :func:`plateseg.pipeline.aggregate.aggregate_run` — write the run to the database.
"""
