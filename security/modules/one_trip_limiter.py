"""Flask-Limiter checking every limit of a request in one Redis round trip.

Flask-Limiter evaluates a request's limits one at a time: a fixed-window ``hit`` per limit
(an ``EVALSHA`` each), then ``GET`` and ``TTL`` of the limit it reports in the
``X-RateLimit-*`` headers: five round trips for the three limits every API request
carries (the per-route default, the per-principal and the per-IP application limits).
:class:`OneTripLimiter` sends them as one Lua script that increments every counter and
answers each count with its time to live, and fills the header limit from that same
answer, so the headers cost nothing more.

Everything else stays Flask-Limiter's: which limits apply (its resolution of defaults,
application and route limits, exemptions), the 429 it raises, the breach callbacks, the
headers, and the in-memory fallback while Redis does not answer (the first failure here
hands the request to Flask-Limiter's own path, which logs it and falls back). A limit the
script cannot express (a conditional ``deduct_when`` or meta limits) and any other
storage or strategy also take Flask-Limiter's own path.

The counting is the fixed window of ``limits`` (its ``incr_expire.lua``): the same keys,
so both paths share the counters.
"""

from __future__ import annotations

import time
from typing import Any

from flask import request
from flask_limiter import Limiter, RequestLimit
from flask_limiter._limits import RuntimeLimit
from flask_limiter.errors import RateLimitExceeded
from limits import WindowStats
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

# KEYS: the counters; ARGV: (expiry seconds, cost) per counter. Answers {count, ttl} each.
HIT_EVERY_COUNTER = b"""
local answers = {}
for index, key in ipairs(KEYS) do
  local expiry, cost = ARGV[index * 2 - 1], tonumber(ARGV[index * 2])
  local count = redis.call("incrby", key, cost)
  if count == cost then
    redis.call("expire", key, expiry)
  end
  answers[index] = {count, redis.call("ttl", key)}
end
return answers
"""


class OneTripLimiter(Limiter):
    """A :class:`flask_limiter.Limiter` whose request check is one Redis round trip."""

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        storage = self._storage
        if (
            self._storage_dead
            or not isinstance(storage, RedisStorage)
            or not isinstance(self.limiter, FixedWindowRateLimiter)
            or self._meta_limits
        ):
            return super()._check_request_limit(callable_name, in_middleware)
        seen_before = set(self.context.seen_limits)
        endpoint = self.identify_request()
        limits = self._Limiter__filter_limits(  # type: ignore[attr-defined]
            endpoint, request.blueprint, callable_name, in_middleware
        )
        checked = [limit for limit in limits if not (limit.is_exempt or limit.method_exempt)]
        if any(limit.deduct_when or limit.meta_limits for limit in checked):
            self._restore_seen(seen_before)
            return super()._check_request_limit(callable_name, in_middleware)
        try:
            self._evaluate(storage, endpoint, checked)
        except storage.base_exceptions:
            # Flask-Limiter's own path notices the outage again, logs it once and falls back.
            self._restore_seen(seen_before)
            super()._check_request_limit(callable_name, in_middleware)
        return None

    def _restore_seen(self, seen_before: set) -> None:
        self.context.seen_limits.clear()
        self.context.seen_limits.update(seen_before)

    def _evaluate(self, storage: RedisStorage, endpoint: str, limits: list[RuntimeLimit]) -> None:
        """Count the request against every limit at once; 429 for the strictest breached."""
        checks: list[tuple[RuntimeLimit, RequestLimit]] = []
        for limit in sorted(limits, key=lambda runtime: runtime.limit):
            args = [limit.key_func(), limit.scope_for(endpoint, request.method)]
            if not all(args):
                self.logger.error(f"Skipping limit: {limit.limit}. Empty value found.")
                continue
            if self._key_prefix:
                args = [self._key_prefix, *args]
            checks.append((limit, RequestLimit(self, limit.limit, args, False, limit.shared)))
        if not checks:
            return
        keys, arguments = [], []
        for limit, request_limit in checks:
            keys.append(storage.prefixed_key(request_limit.key))
            arguments += [limit.limit.get_expiry(), limit.deduction_amount]
        answers = self._script(storage)(keys, arguments)
        now = time.time()
        for (limit, request_limit), (count, ttl) in zip(checks, answers, strict=True):
            amount = limit.limit.amount
            request_limit._window = WindowStats(now + max(int(ttl), 0), max(0, amount - count))
            request_limit.breached = int(count) > amount
        self._report(checks)

    def _script(self, storage: RedisStorage) -> Any:
        """The registered script (its SHA-1 is computed once per storage, not per request)."""
        if getattr(self, "_hit_script_storage", None) is not storage:
            self._hit_script = storage.get_connection().register_script(HIT_EVERY_COUNTER)
            self._hit_script_storage = storage
        return self._hit_script

    def _report(self, checks: list[tuple[RuntimeLimit, RequestLimit]]) -> None:
        """What Flask-Limiter's own evaluation leaves behind: the limits for the headers,
        the breach callbacks, and the 429 naming the strictest breached limit."""
        request_limits = [request_limit for _, request_limit in checks]
        breached = [
            (limit, request_limit) for limit, request_limit in checks if request_limit.breached
        ]
        unshared = [each for each in request_limits if not each.shared]
        header_limit = breached[0][1] if breached else (unshared or request_limits)[0]
        self.context.view_rate_limit = header_limit
        self.context.view_rate_limits = request_limits
        response = None
        for limit, request_limit in breached:
            self.logger.info("ratelimit %s exceeded at endpoint: %s", limit.limit, request.path)
            for callback in dict.fromkeys([self._on_breach, limit.on_breach]):
                answer = callback(request_limit) if callback else None
                response = answer if answer is not None else response
        if breached:
            raise RateLimitExceeded(breached[0][0], response=response)
