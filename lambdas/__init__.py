"""AWS Lambda handlers: parse the event, make one ``plateseg`` call, shape the result.

One container image holds ``plateseg/`` and ``lambdas/``; each function picks its
handler by the image command (``lambdas.lookup.handler`` …). The local engine binds
the very same handlers by name (``plateseg.definition.LOCAL_FUNCTIONS``).
"""
