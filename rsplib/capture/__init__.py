"""Reading RSerPool traffic out of pcap/pcapng captures, and the ``rsp-decode`` CLI.

Pure over bytes: containers (files), link and IP (net), TCP-mapping streams
(tcp), SCTP chunks (sctp), put together by reader; the messages themselves are
decoded by ``rsplib.wire``.
"""
