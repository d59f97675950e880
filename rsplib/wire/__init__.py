"""Pure codecs: bytes <-> frozen dataclasses. No I/O, no clock.

- Values: ``params`` (the parameters), ``asap`` and ``enrp`` (the messages), ``csp``,
  ``tcpmap``; number spaces in ``constants``, errors in ``errors``, limits in ``limits``.
- ``reference/``: the ASAP/ENRP codec written down as RFC 5352-5354 describe it.
- ``codec``: the ASAP/ENRP codec rsplib runs: the reference's interface with fast paths
  (``fastencode``, ``fastdecode`` with its compiled ``layouts``, ``fastvalues`` and the
  optional C helper ``_slots``),
  held to the reference's results by the tests.
"""
