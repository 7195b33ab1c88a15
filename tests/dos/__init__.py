"""Denial-of-service tests (issue 8, items 7, 9, 10, 13): plantlink as it is run, attacked over real sockets."""
