"""The write-ahead log: arriving batches are durable on disk before anyone is shown them. See ``log``."""

from plantlink.wal.delivery import SEQ_KEY
from plantlink.wal.log import WalSettings, WriteAheadLog, seq_of

__all__ = ["SEQ_KEY", "WalSettings", "WriteAheadLog", "seq_of"]
