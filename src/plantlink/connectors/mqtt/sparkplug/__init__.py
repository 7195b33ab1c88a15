"""Sparkplug B 3.0: the generated payload module (``sparkplug_b_pb2``, ``make proto``) and the host
application's state machine (``host``), which takes (topic, payload) and gives Arrow batches and actions."""
