"""The perception process itself: CPU threads, Python's thread switch interval, one-off warm-up costs and
freed heap pages (what the node and the CLI set or do once, not per window)."""

from .heap import trim_heap
from .threads import prepare_process, resolve_threads, set_switch_interval, set_threads

__all__ = ["prepare_process", "resolve_threads", "set_switch_interval", "set_threads", "trim_heap"]
