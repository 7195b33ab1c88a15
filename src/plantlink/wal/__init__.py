"""The write-ahead log: arriving batches are durable on disk before anyone is shown them. See ``log``."""

from plantlink.wal.log import SEQ_KEY, WalSettings, WriteAheadLog, seq_of

__all__ = ["SEQ_KEY", "WalSettings", "WriteAheadLog", "seq_of"]
