"""Per-key bookkeeping: live connections, publish budgets, and the inbox rule.

**The inbox rule.** Topics carry a type byte (``willow_core.wire``): a connection may subscribe
to any community topic and to exactly one inbox, its own key's (``inbox_topic(key)``); any
other inbox, and any unknown topic type, is refused with ERROR ``FORBIDDEN_TOPIC``. Publishing
*to* any inbox is allowed: that is how sync answers and direct messages reach a key.
The relay needs no memory of keys for this: the topic says what it is.

**Publish budgets.** Each key has two token buckets (envelopes and bytes per second) shared by
all of its connections, so opening more connections does not buy more budget. A bucket is kept
after the key's last connection closes until it has refilled; forgetting a full bucket loses
nothing, so reconnecting never resets a spent budget.
"""

from __future__ import annotations

from willow_core.wire import COMMUNITY_TOPIC, INBOX_TOPIC, inbox_topic

from .limits import Limits, TokenBucket

__all__ = ["KeyBudget", "Access"]


class KeyBudget:
    """One key's publish budget: envelopes and bytes per second."""

    __slots__ = ("publishes", "bytes")

    def __init__(self, limits: Limits, now: float) -> None:
        self.publishes = TokenBucket(limits.key_publishes_per_s, limits.key_publish_burst, now)
        self.bytes = TokenBucket(limits.key_bytes_per_s, limits.key_byte_burst, now)

    def take(self, now: float, size: int) -> bool:
        """Charge one publish of ``size`` bytes; false (nothing charged) when over either."""
        if not self.publishes.take(now):
            return False
        if not self.bytes.take(now, size):
            self.publishes.tokens += 1  # refund: the publish did not happen
            return False
        return True

    def full(self, now: float) -> bool:
        return self.publishes.full(now) and self.bytes.full(now)


class Access:
    """Which keys are here, who owns which inbox, and each key's publish budget."""

    def __init__(self, limits: Limits, relay_key: bytes) -> None:
        self.limits = limits
        self._live: dict[bytes, int] = {}
        self._budgets: dict[bytes, KeyBudget] = {}
        #: keys without connections whose budget is still refilling, oldest first
        self._draining: dict[bytes, None] = {}

    def connections(self, key: bytes) -> int:
        return self._live.get(key, 0)

    def acquire(self, key: bytes, now: float) -> bool:
        """Count a new authenticated connection for ``key``; false when it holds its maximum."""
        count = self._live.get(key, 0)
        if count >= self.limits.max_connections_per_key:
            return False
        self._live[key] = count + 1
        self._draining.pop(key, None)
        if key not in self._budgets:
            self._budgets[key] = KeyBudget(self.limits, now)
        self._sweep(now)
        return True

    def release(self, key: bytes, now: float) -> None:
        count = self._live.get(key, 0) - 1
        if count > 0:
            self._live[key] = count
            return
        self._live.pop(key, None)
        budget = self._budgets.get(key)
        if budget is not None and budget.full(now):
            del self._budgets[key]
        elif budget is not None:
            self._draining[key] = None

    def budget(self, key: bytes) -> KeyBudget:
        return self._budgets[key]

    def may_subscribe(self, key: bytes, topic: bytes) -> bool:
        """Community topics: anyone. Inbox topics (type byte ``INBOX_TOPIC``): only the owner."""
        if topic[:1] == bytes([INBOX_TOPIC]):
            return topic == inbox_topic(key)
        return topic[:1] == bytes([COMMUNITY_TOPIC])

    @property
    def tracked_budgets(self) -> int:
        return len(self._budgets)

    def _sweep(self, now: float) -> None:
        """Forget refilled budgets of departed keys (oldest first), and any beyond the bound."""
        while self._draining:
            key = next(iter(self._draining))
            full = self._budgets[key].full(now)
            if not full and len(self._draining) <= self.limits.known_inboxes:
                break
            del self._draining[key]
            del self._budgets[key]
